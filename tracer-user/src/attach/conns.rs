//! Per-connection bookkeeping and HTTP/1.x request reconstruction from
//! kernel events alone (the HTTP side is in `messages`). A request starts
//! at the write that carries its request line and ends when its response
//! is complete, or, when its framing is unknown, when a newer request on
//! the connection is answered or starts, or at close. Pipelined requests
//! wait in a queue for their status lines, in order.
use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
};

use tracer_ebpf::IPPROTO_UDP;

pub use super::model::{Connection, Effect, Request};
use super::{
    conn_table::ConnTable,
    findings::{ConnState, Detector},
    handshake::{self, Handshake},
    seed::{SeededSocket, same_addr},
};
use crate::probes::{KernelDetail, KernelEvent, SocketCookie};

mod messages;

/// One multiply per lookup (FxHash's). Every event looks its cookie up, and
/// SipHash was a tenth of the tracker's time; its resistance to chosen keys
/// buys little here: cookies come from a kernel counter, the traced process
/// cannot pick them, and the worst it could do is slow its own tracer.
#[derive(Default)]
pub(super) struct CookieHasher(u64);

impl Hasher for CookieHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0xf135_7aea_2e62_a9c5);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits: bring the
        // well-mixed high bits of the product down.
        self.0.rotate_left(26)
    }
}

#[derive(Default)]
pub struct Tracker {
    /// Live connections, and totals of the closed ones.
    pub connections: ConnTable,
    /// Connections seen so far (numbers them).
    seen: usize,
    /// Requests not printed yet, by index (their number minus 1). Printed
    /// ones are forgotten ([`Tracker::forget`]): a long attach to a busy
    /// server would otherwise keep every request it ever saw.
    requests: HashMap<usize, Request, BuildHasherDefault<CookieHasher>>,
    /// Requests seen, and how many of them reused their connection.
    pub request_count: usize,
    pub reused_count: usize,
    by_cookie: HashMap<SocketCookie, usize, BuildHasherDefault<CookieHasher>>,
    seeded: Vec<SeededSocket>,
    pub findings: Detector,
    /// Messages known to start in an I/O past its captured head (or past
    /// the eighth in one head): counted, never parsed.
    pub unparsed: usize,
}

impl Tracker {
    pub fn new(seeded: Vec<SeededSocket>) -> Self {
        Self {
            seeded,
            ..Self::default()
        }
    }

    fn conn(&mut self, cookie: SocketCookie) -> usize {
        if let Some(&i) = self.by_cookie.get(&cookie) {
            return i;
        }
        self.seen += 1;
        let i = self.connections.insert(Connection {
            number: self.seen,
            cookie,
            ..Connection::default()
        });
        self.by_cookie.insert(cookie, i);
        i
    }

    pub fn handle(&mut self, ev: &KernelEvent) -> Effect {
        let mut fx = Effect::default();
        if ev.cookie == 0 {
            return fx;
        }
        let c = self.conn(ev.cookie);
        fx.connection = Some(c);
        if self.connections[c].pid == 0 {
            self.connections[c].pid = ev.tgid;
        }
        match &ev.what {
            KernelDetail::Connect {
                remote,
                ret,
                duration_ns,
                ..
            } => {
                let conn = &mut self.connections[c];
                fx.opened = Some(true);
                conn.connect_seen = true;
                conn.remote.get_or_insert(*remote);
                if *ret == 0 {
                    conn.connect_ns = Some((ev.ts_ns, ev.ts_ns.saturating_add(*duration_ns)));
                }
            }
            KernelDetail::State { local, remote, .. } => {
                // Before bind and after unhash the local port reads 0.
                let conn = &mut self.connections[c];
                if local.port() != 0 {
                    conn.local = Some(*local);
                }
                conn.remote.get_or_insert(*remote);
            }
            KernelDetail::Socket {
                local,
                remote,
                protocol,
            } => {
                let fd = self
                    .seeded
                    .iter()
                    .find(|s| same_addr(s.local, *local) && same_addr(s.remote, *remote))
                    .map(|s| s.fd);
                let conn = &mut self.connections[c];
                if !conn.connect_seen {
                    fx.opened = Some(true);
                }
                (conn.local, conn.remote) = (Some(*local), Some(*remote));
                conn.udp = *protocol == IPPROTO_UDP;
                conn.preexisting_fd = fd;
            }
            KernelDetail::Send { bytes, .. } | KernelDetail::Recv { bytes, .. } if *bytes > 0 => {
                let send = matches!(ev.what, KernelDetail::Send { .. });
                self.handshake(c, ev.ts_ns, send, None);
                self.io(c, ev.ts_ns, send, *bytes as u64, &mut fx);
            }
            KernelDetail::Payload { send, len, head } => {
                self.handshake(c, ev.ts_ns, *send, Some(head));
                self.payload(c, ev, *send, u64::from(*len), head, &mut fx)
            }
            KernelDetail::Plaintext { send, len, head } => {
                self.plaintext(c, ev, *send, u64::from(*len), head, &mut fx)
            }
            KernelDetail::Close { .. } | KernelDetail::Destroy => {
                if !self.connections[c].closed {
                    fx.opened = Some(false);
                }
                self.connections[c].closed = true;
                let conn = &mut self.connections[c];
                fx.finished = std::mem::take(&mut conn.open);
                conn.awaiting.clear();
                (conn.responding, conn.head_io, conn.split_head) = (None, None, None);
            }
            _ => {}
        }
        // A status line answering a request the process wrote.
        let response = fx
            .request
            .filter(|_| fx.http_line == Some(false))
            .and_then(|r| self.requests.get(&r))
            .filter(|r| r.outbound)
            .map(|r| r.number);
        let conn = &self.connections[c];
        let idle = if fx.http_line == Some(true) {
            Some((false, None))
        } else if !fx.finished.is_empty() && conn.open.is_empty() && !conn.closed {
            let last = fx.finished.iter().max().and_then(|r| self.requests.get(r));
            Some((true, last.map(|r| r.number)))
        } else {
            None
        };
        let state = ConnState {
            response,
            number: conn.number,
            idle,
        };
        self.findings.observe(ev, state);
        fx
    }

    /// An I/O of connection `c` for its TLS handshake (one begins with a
    /// handshake record as the connection's first bytes), before it counts.
    fn handshake(&mut self, c: usize, ts_ns: u64, send: bool, head: Option<&[u8]>) {
        let conn = &mut self.connections[c];
        let offset = if send {
            conn.bytes_sent
        } else {
            conn.bytes_received
        };
        if conn.handshake.is_none() {
            let first = conn.bytes_sent == 0 && conn.bytes_received == 0;
            if !first
                || conn.udp
                || conn.preexisting_fd.is_some()
                || !head.is_some_and(handshake::starts_handshake)
            {
                return;
            }
            conn.handshake = Some(Box::new(Handshake::new(send, ts_ns)));
        }
        if let Some(h) = conn.handshake.as_mut().filter(|h| !h.settled()) {
            h.io(send, ts_ns, offset, head);
        }
    }

    /// Ends the open requests of connection `c` that have their answer and
    /// that `which` picks, oldest first.
    fn finish(&mut self, c: usize, fx: &mut Effect, which: impl Fn(usize) -> bool) {
        let requests = &self.requests;
        self.connections[c].open.retain(|&r| {
            let done = which(r) && requests.get(&r).is_some_and(|q| q.status.is_some());
            if done {
                fx.finished.push(r);
            }
            !done
        });
    }

    /// Ends every request still open (the trace is over).
    pub fn finish_all(&mut self) -> Vec<usize> {
        let mut all: Vec<usize> = self
            .connections
            .iter_mut()
            .flat_map(|c| std::mem::take(&mut c.open))
            .collect();
        all.sort_unstable();
        all
    }

    /// Request `r` (an index from an [`Effect`]), until it is forgotten.
    pub fn request(&self, r: usize) -> Option<&Request> {
        self.requests.get(&r)
    }

    /// Drops a request that has been printed.
    pub fn forget(&mut self, r: usize) {
        self.requests.remove(&r);
    }

    /// Whether socket `cookie`'s connection has a request waiting for (the
    /// rest of) its answer.
    pub fn waits(&self, cookie: SocketCookie) -> bool {
        self.by_cookie
            .get(&cookie)
            .is_some_and(|&i| !self.connections[i].open.is_empty())
    }

    /// Socket `cookie`'s connection, until it is forgotten.
    pub fn connection_of(&self, cookie: SocketCookie) -> Option<&Connection> {
        self.by_cookie.get(&cookie).map(|&i| &self.connections[i])
    }

    /// The newest request on socket `cookie`'s connection that has not
    /// ended (an index, as in an [`Effect`]).
    pub fn open_request(&self, cookie: SocketCookie) -> Option<usize> {
        self.connection_of(cookie)?.open.last().copied()
    }

    /// Live TCP connections (UDP sockets are DNS and the like, not counted).
    pub fn tcp_connections(&self) -> impl Iterator<Item = &Connection> {
        self.connections.iter().filter(|c| !c.udp)
    }

    /// Forgets the connection of a freed socket, once its events are
    /// printed: a long attach keeps the live ones, not all it saw.
    pub fn forget_connection(&mut self, cookie: SocketCookie) {
        if let Some(i) = self.by_cookie.remove(&cookie) {
            self.connections.forget(i);
        }
    }
}

#[cfg(test)]
mod tests;
