//! The connections this client opened, keyed by local address, so that
//! `GotConn` is decided by the connection that carried the response
//! (reqwest's `HttpInfo`), not by whether the connector ran: hyper may
//! start a connect and still hand the request an idle connection.
//!
//! It also knows which kept connection is on its way back to hyper's pool
//! ([`ConnRegistry::returning`]), so the connector can wait for it rather
//! than dial a connection that no request will use.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::attempt::Target;
use super::plain_io::PlainIo;
use super::socket_cookie::SocketId;

/// How long after a response ends its kept connection may still be on its
/// way back to hyper's pool: hyper returns it from a task of its own once
/// the connection task asks for the next request, which takes microseconds
/// on an idle machine and a few milliseconds on a loaded one.
pub(crate) const RETURN_GRACE_NS: u64 = 10_000_000;

#[derive(Debug, Clone)]
struct ConnRecord {
    opened_by: u32,
    opened_ns: u64,
    /// Where the connector was asked to go (None when it could not tell).
    target: Option<Target>,
    /// The connected socket, with its `SO_COOKIE`.
    socket: Option<SocketId>,
    /// The client's plaintext marks, on TLS.
    plain: Option<Arc<PlainIo>>,
    /// Responses it carried so far.
    responses: u32,
    /// Responses whose bodies are still being read (HTTP/2 multiplexes).
    active: u32,
    idle_since_ns: Option<u64>,
}

/// How request `request` got its connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnClaim {
    pub(crate) reused: bool,
    pub(crate) was_idle: bool,
    pub(crate) idle_time_ns: Option<u64>,
    /// When the request had the connection (see `claim`).
    pub(crate) got_conn_ns: u64,
    /// `got_conn_ns` was decided after the fact (a pooled connection is
    /// taken inside hyper, unseen), not stamped where it happened.
    pub(crate) derived: bool,
    pub(crate) cookie: Option<u64>,
    pub(crate) plain: Option<Arc<PlainIo>>,
}

/// What the connector knew about the connection it made.
#[derive(Debug, Clone)]
pub(crate) struct Opened {
    pub(crate) local: SocketAddr,
    pub(crate) request: u32,
    pub(crate) ts_ns: u64,
    pub(crate) target: Option<Target>,
    pub(crate) socket: Option<SocketId>,
    pub(crate) plain: Option<Arc<PlainIo>>,
}

/// A kept connection that may still be on its way back to the pool.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Returning {
    until_ns: u64,
    socket: Option<SocketId>,
}

impl Returning {
    /// Worth waiting for at `now_ns`: within the grace, and (when its socket
    /// is known) not closed by either side, for hyper drops it then.
    pub(crate) fn may_come(&self, now_ns: u64) -> bool {
        now_ns < self.until_ns && self.socket.is_none_or(|s| s.established())
    }
}

#[derive(Debug, Default)]
pub(crate) struct ConnRegistry {
    conns: Mutex<HashMap<SocketAddr, ConnRecord>>,
}

impl ConnRegistry {
    /// The connector returned a connection bound to `local` at `ts_ns`.
    /// A record for the same local address (a closed earlier socket whose
    /// port the kernel handed out again) is replaced.
    pub(crate) fn opened(&self, conn: Opened) {
        let record = ConnRecord {
            opened_by: conn.request,
            opened_ns: conn.ts_ns,
            target: conn.target,
            socket: conn.socket,
            plain: conn.plain,
            responses: 0,
            active: 0,
            idle_since_ns: None,
        };
        self.lock().insert(conn.local, record);
    }

    /// The latest time until which a kept connection to `target` may still
    /// be on its way back to the pool, if one is: released by a response
    /// less than [`RETURN_GRACE_NS`] before `now_ns` and not taken since.
    pub(crate) fn returning(&self, target: &Target, now_ns: u64) -> Option<Returning> {
        self.lock()
            .values()
            .filter(|r| r.active == 0 && r.responses > 0 && r.target.as_ref() == Some(target))
            .filter_map(|r| {
                let until_ns = r.idle_since_ns? + RETURN_GRACE_NS;
                (until_ns > now_ns).then_some(Returning {
                    until_ns,
                    socket: r.socket,
                })
            })
            .max_by_key(|r| r.until_ns)
    }

    /// A response of `request` arrived on the connection bound to `local`.
    ///
    /// A connection this request opened is had when its connector finished.
    /// For any other, the time is `first_poll_ns`, the end of the request
    /// future's first poll: hyper takes a ready idle connection from its
    /// pool synchronously in that poll.
    pub(crate) fn claim(&self, local: SocketAddr, request: u32, first_poll_ns: u64) -> ConnClaim {
        let mut conns = self.lock();
        let record = conns.entry(local).or_insert(ConnRecord {
            opened_by: request,
            opened_ns: first_poll_ns,
            target: None,
            socket: None,
            plain: None,
            responses: 0,
            active: 0,
            idle_since_ns: None,
        });
        let own_new = record.responses == 0 && record.opened_by == request;
        let claim = if own_new {
            ConnClaim {
                reused: false,
                was_idle: false,
                idle_time_ns: None,
                got_conn_ns: record.opened_ns,
                derived: false,
                cookie: record.socket.map(|s| s.cookie),
                plain: record.plain.clone(),
            }
        } else {
            // A connection another request opened but did not use sat idle
            // in the pool from the moment it was ready, as in Go.
            let idle_since = match record.active {
                0 if record.responses == 0 => Some(record.opened_ns),
                0 => record.idle_since_ns,
                _ => None,
            };
            ConnClaim {
                reused: record.responses > 0,
                was_idle: idle_since.is_some(),
                idle_time_ns: idle_since.map(|since| first_poll_ns.saturating_sub(since)),
                got_conn_ns: first_poll_ns,
                derived: true,
                cookie: record.socket.map(|s| s.cookie),
                plain: record.plain.clone(),
            }
        };
        record.responses += 1;
        record.active += 1;
        record.idle_since_ns = None;
        claim
    }

    /// The response on `local` is finished; `kept_open` says whether the
    /// connection went back to the pool (it is forgotten otherwise).
    pub(crate) fn released(&self, local: SocketAddr, ts_ns: u64, kept_open: bool) {
        let mut conns = self.lock();
        if !kept_open {
            conns.remove(&local);
            return;
        }
        if let Some(record) = conns.get_mut(&local) {
            record.active = record.active.saturating_sub(1);
            if record.active == 0 {
                record.idle_since_ns = Some(ts_ns);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SocketAddr, ConnRecord>> {
        self.conns.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    fn target() -> Target {
        Target {
            host: "127.0.0.1".into(),
            port: 80,
        }
    }

    fn opened(pool: &ConnRegistry, port: u16, request: u32, ts_ns: u64) {
        pool.opened(Opened {
            local: addr(port),
            request,
            ts_ns,
            target: Some(target()),
            socket: None,
            plain: None,
        });
    }

    #[test]
    fn second_response_on_a_kept_connection_is_reused_and_was_idle() {
        let pool = ConnRegistry::default();
        opened(&pool, 5000, 1, 100);
        let first = pool.claim(addr(5000), 1, 90);
        assert_eq!(
            (first.reused, first.was_idle, first.got_conn_ns),
            (false, false, 100)
        );
        pool.released(addr(5000), 200, true);
        let second = pool.claim(addr(5000), 2, 450);
        assert!(second.reused && second.was_idle);
        assert_eq!(second.idle_time_ns, Some(250));
    }

    #[test]
    fn a_closed_connection_is_forgotten() {
        let pool = ConnRegistry::default();
        opened(&pool, 5001, 1, 100);
        pool.claim(addr(5001), 1, 90);
        pool.released(addr(5001), 200, false);
        assert!(!pool.claim(addr(5001), 2, 300).reused);
    }

    #[test]
    fn a_connection_opened_by_a_losing_connect_was_idle_but_not_reused() {
        let pool = ConnRegistry::default();
        opened(&pool, 5002, 1, 100);
        let claim = pool.claim(addr(5002), 2, 160);
        assert_eq!((claim.reused, claim.was_idle), (false, true));
        assert_eq!(claim.idle_time_ns, Some(60));
    }

    #[test]
    fn a_just_released_connection_is_returning_until_the_grace_ends() {
        let pool = ConnRegistry::default();
        opened(&pool, 5003, 1, 100);
        pool.claim(addr(5003), 1, 90);
        assert!(pool.returning(&target(), 150).is_none(), "still in use");
        pool.released(addr(5003), 200, true);
        let returning = pool.returning(&target(), 300).expect("on its way back");
        assert_eq!(returning.until_ns, 200 + RETURN_GRACE_NS);
        assert!(returning.may_come(300) && !returning.may_come(returning.until_ns));
        assert!(pool.returning(&target(), 200 + RETURN_GRACE_NS).is_none());
        let other = Target {
            host: "127.0.0.1".into(),
            port: 81,
        };
        assert!(pool.returning(&other, 300).is_none(), "another destination");
        let claim = pool.claim(addr(5003), 2, 400);
        assert!(claim.derived && claim.reused);
        assert!(pool.returning(&target(), 450).is_none(), "taken again");
    }
}
