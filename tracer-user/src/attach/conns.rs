//! Per-connection bookkeeping and HTTP/1.x request reconstruction from
//! kernel events alone. A request starts at the write that carries its
//! request line; its first byte is the first read after it; it ends when a
//! newer request on the connection is answered or starts, or at close.
//! Pipelined requests wait in a queue for their status lines, in order.
use std::{
    collections::HashMap,
    hash::{BuildHasherDefault, Hasher},
};

use tracer_ebpf::IPPROTO_UDP;

pub use super::model::{Connection, Effect, Request};
use super::{
    findings::Detector,
    http::{looks_like_tls, parse_request, parse_status},
    seed::{SeededSocket, same_addr},
};
use crate::probes::{KernelDetail, KernelEvent, SocketCookie};

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
    pub connections: Vec<Connection>,
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
        let i = self.connections.len();
        self.connections.push(Connection {
            number: i + 1,
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
            KernelDetail::Connect { remote, .. } => {
                let conn = &mut self.connections[c];
                conn.connect_seen = true;
                conn.remote.get_or_insert(*remote);
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
                (conn.local, conn.remote) = (Some(*local), Some(*remote));
                conn.udp = *protocol == IPPROTO_UDP;
                conn.preexisting_fd = fd;
            }
            KernelDetail::Send { bytes, .. } if *bytes > 0 => {
                let n = *bytes as u64;
                let conn = &mut self.connections[c];
                conn.bytes_sent += n;
                fx.request = conn.open.last().copied();
                conn.last_io = Some((fx.request, true, n));
                if let Some(req) = fx.request.and_then(|r| self.requests.get_mut(&r)) {
                    req.bytes_sent += n;
                }
            }
            KernelDetail::Recv { bytes, .. } if *bytes > 0 => {
                let n = *bytes as u64;
                let conn = &mut self.connections[c];
                conn.bytes_received += n;
                let waiting = conn.awaiting.front().copied();
                fx.request = waiting
                    .filter(|r| self.requests.get(r).is_some_and(|q| q.outbound))
                    .or(conn.open.last().copied());
                conn.last_io = Some((fx.request, false, n));
                if let Some(req) = fx.request.and_then(|r| self.requests.get_mut(&r)) {
                    req.bytes_received += n;
                    if req.outbound {
                        req.first_byte_ns.get_or_insert(ev.ts_ns);
                        req.last_byte_ns = Some(ev.ts_ns);
                    }
                }
            }
            KernelDetail::Payload { send, head, .. } => self.payload(c, ev, *send, head, &mut fx),
            KernelDetail::Close { .. } | KernelDetail::Destroy => {
                self.connections[c].closed = true;
                fx.finished = std::mem::take(&mut self.connections[c].open);
                self.connections[c].awaiting.clear();
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
        self.findings.observe(ev, response);
        fx
    }

    fn payload(&mut self, c: usize, ev: &KernelEvent, send: bool, head: &[u8], fx: &mut Effect) {
        if looks_like_tls(head) {
            self.connections[c].encrypted = true;
            return;
        }
        if let Some(line) = parse_request(head) {
            // Older requests that already have their answer end here.
            self.finish(c, fx, |_| true);
            // The send or recv just before carried this request line.
            let mut moved = 0;
            if let Some((prev, dir, n)) = self.connections[c].last_io.take()
                && dir == send
            {
                moved = n;
                // Gone when it was printed already: nothing to take back.
                if let Some(p) = prev.and_then(|p| self.requests.get_mut(&p)) {
                    let field = if send {
                        &mut p.bytes_sent
                    } else {
                        &mut p.bytes_received
                    };
                    *field = field.saturating_sub(n);
                }
            }
            let conn = &mut self.connections[c];
            let r = self.request_count;
            self.request_count += 1;
            conn.requests += 1;
            let reused = conn.requests > 1 || conn.preexisting_fd.is_some();
            self.reused_count += usize::from(reused);
            self.requests.insert(
                r,
                Request {
                    number: r + 1,
                    connection: c,
                    cookie: conn.cookie,
                    method: line.method,
                    target: line.target,
                    host: line.host,
                    version: line.version,
                    outbound: send,
                    status: None,
                    start_ns: ev.ts_ns,
                    first_byte_ns: None,
                    last_byte_ns: None,
                    bytes_sent: if send { moved } else { 0 },
                    bytes_received: if send { 0 } else { moved },
                    reused,
                },
            );
            conn.awaiting.push_back(r);
            conn.open.push(r);
            fx.request = Some(r);
            fx.http_line = Some(true);
            return;
        }
        let Some(status) = parse_status(head) else {
            return;
        };
        let conn = &mut self.connections[c];
        let Some(r) = conn.awaiting.pop_front() else {
            return;
        };
        let Some(req) = self.requests.get_mut(&r) else {
            return;
        };
        if req.outbound == send {
            // A status line in the same direction as the request: not its answer.
            conn.awaiting.push_front(r);
            return;
        }
        req.status = Some(status.code);
        req.first_byte_ns.get_or_insert(ev.ts_ns);
        fx.request = Some(r);
        fx.http_line = Some(false);
        // Pipelining: an answer to a newer request ends the older answered ones.
        self.finish(c, fx, |o| o < r);
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

    /// TCP connections seen (UDP sockets are DNS and the like, not counted).
    pub fn tcp_connections(&self) -> impl Iterator<Item = &Connection> {
        self.connections.iter().filter(|c| !c.udp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::PayloadHead;

    fn io(ts_ns: u64, send: bool, head: &[u8]) -> [KernelEvent; 2] {
        let at = |what| KernelEvent {
            ts_ns,
            tgid: 1,
            tid: 2,
            cookie: 9,
            what,
        };
        let (bytes, protocol) = (head.len() as i32, 6);
        let moved = if send {
            KernelDetail::Send { bytes, protocol }
        } else {
            KernelDetail::Recv { bytes, protocol }
        };
        let head = KernelDetail::Payload {
            send,
            len: bytes as u32,
            head: PayloadHead::new(head),
        };
        [at(moved), at(head)]
    }

    /// A long attach keeps the requests it has not printed, not all it saw:
    /// attach forgets each one once printed, and the counts stay right.
    #[test]
    fn printed_requests_are_forgotten_and_still_counted() {
        let mut t = Tracker::new(Vec::new());
        let mut printed = 0;
        for i in 0..1000u64 {
            let request = io(4 * i, true, b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n");
            let response = io(
                4 * i + 2,
                false,
                b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
            );
            for ev in request.iter().chain(&response) {
                let fx = t.handle(ev);
                for r in fx.finished {
                    assert!(t.request(r).is_some_and(|q| q.status == Some(200)));
                    t.forget(r);
                    printed += 1;
                }
            }
            assert!(t.requests.len() <= 2, "{} held", t.requests.len());
        }
        printed += t.finish_all().len();
        assert_eq!(
            (printed, t.request_count, t.reused_count),
            (1000, 1000, 999)
        );
        assert_eq!(t.connections[0].requests, 1000);
    }
}
