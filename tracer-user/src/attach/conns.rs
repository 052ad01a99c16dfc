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
use super::model::{HeadIo, SplitHead};
use super::{
    findings::Detector,
    framing::{Body, response_body},
    http::{looks_like_tls, parse_request, parse_status, request_start},
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
            KernelDetail::Send { bytes, .. } | KernelDetail::Recv { bytes, .. } if *bytes > 0 => {
                let send = matches!(ev.what, KernelDetail::Send { .. });
                self.io(c, ev.ts_ns, send, *bytes as u64, &mut fx);
            }
            KernelDetail::Payload { send, len, head } => {
                self.payload(c, ev, *send, u64::from(*len), head, &mut fx)
            }
            KernelDetail::Close { .. } | KernelDetail::Destroy => {
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
        self.findings.observe(ev, response);
        fx
    }

    /// Whether request `r` is answered by I/O in direction `send`.
    fn answered_by(&self, r: usize, send: bool) -> bool {
        self.requests.get(&r).is_some_and(|q| q.outbound != send)
    }

    /// The request that a send or recv on connection `c` with no parsed
    /// head belongs to: the response under way, else the oldest request
    /// waiting for one in that direction, else the newest request.
    fn owner(&self, c: usize, send: bool) -> Option<usize> {
        let conn = &self.connections[c];
        let answered = |r: &usize| self.answered_by(*r, send);
        conn.responding
            .filter(answered)
            .or_else(|| conn.awaiting.front().copied().filter(answered))
            .or_else(|| conn.open.last().copied())
    }

    /// A send or recv that moved `n` bytes: counted to its request, which
    /// ends here when its response is complete.
    fn io(&mut self, c: usize, ts_ns: u64, send: bool, n: u64, fx: &mut Effect) {
        let conn = &mut self.connections[c];
        if send {
            conn.bytes_sent += n;
        } else {
            conn.bytes_received += n;
        }
        let paired = conn.head_io.take_if(|h| h.ts_ns == ts_ns && h.send == send);
        let (r, completes) = match paired {
            Some(h) => (h.request, h.completes),
            None => {
                let r = self.owner(c, send);
                // No head came with these bytes (lost, or no user buffer):
                // a Content-Length still counts down; chunks are out of sight.
                let body = r.is_some_and(|r| {
                    Some(r) == self.connections[c].responding && self.answered_by(r, send)
                });
                let conn = &mut self.connections[c];
                if body {
                    conn.body.advance(&[], n);
                }
                (r, body && conn.body.complete())
            }
        };
        fx.request = r;
        let Some(req) = r.and_then(|r| self.requests.get_mut(&r)) else {
            return;
        };
        if send {
            req.bytes_sent += n;
        } else {
            req.bytes_received += n;
        }
        if req.outbound != send {
            // A 1xx is not the response's first byte: the final one is.
            if req.interim.is_none() || req.status.is_some() {
                req.first_byte_ns.get_or_insert(ts_ns);
            }
            req.last_byte_ns = Some(ts_ns);
        }
        if completes && let Some(r) = r {
            let conn = &mut self.connections[c];
            conn.open.retain(|&o| o != r);
            conn.awaiting.retain(|&o| o != r);
            (conn.responding, conn.body) = (None, Body::Unknown);
            fx.finished.push(r);
        }
    }

    fn payload(
        &mut self,
        c: usize,
        ev: &KernelEvent,
        send: bool,
        len: u64,
        head: &[u8],
        fx: &mut Effect,
    ) {
        if looks_like_tls(head) {
            self.connections[c].encrypted = true;
            return;
        }
        let mut head_io = HeadIo {
            ts_ns: ev.ts_ns,
            send,
            request: None,
            completes: false,
        };
        // A request head split across sends: the held start goes before
        // this head, and the request starts with it.
        let conn = &mut self.connections[c];
        let held = conn.split_head.take().filter(|h| h.send == send);
        let (mut start_ns, mut carried, joined) = (ev.ts_ns, 0, held.map(|h| (h.ts_ns, h.bytes)));
        let whole = if let Some((ts_ns, mut bytes)) = joined {
            (start_ns, carried) = (ts_ns, bytes.len() as u64);
            bytes.extend_from_slice(head);
            bytes
        } else {
            Vec::new()
        };
        let joined = if whole.is_empty() { head } else { &whole[..] };
        if joined.len() as u64 == len + carried && joined.len() < 1024 && request_start(joined) {
            // Every byte of the I/O is here and the request line goes on
            // in the next one: its bytes are the connection's until then.
            conn.split_head = Some(SplitHead {
                send,
                ts_ns: start_ns,
                bytes: joined.to_vec(),
            });
            conn.head_io = Some(head_io);
            return;
        }
        if let Some(line) = parse_request(joined).or_else(|| {
            carried = 0;
            start_ns = ev.ts_ns;
            parse_request(head)
        }) {
            // Older requests that already have their answer end here.
            self.finish(c, fx, |_| true);
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
                    interim: None,
                    start_ns,
                    first_byte_ns: None,
                    last_byte_ns: None,
                    bytes_sent: if send { carried } else { 0 },
                    bytes_received: if send { 0 } else { carried },
                    reused,
                },
            );
            conn.awaiting.push_back(r);
            conn.open.push(r);
            head_io.request = Some(r);
            conn.head_io = Some(head_io);
            fx.request = Some(r);
            fx.http_line = Some(true);
            return;
        }
        let waiting = self.connections[c].awaiting.front().copied();
        if let Some(status) = parse_status(head)
            && let Some(r) = waiting.filter(|&r| self.answered_by(r, send))
            && let Some(req) = self.requests.get_mut(&r)
        {
            let conn = &mut self.connections[c];
            conn.responding = Some(r);
            head_io.request = Some(r);
            fx.request = Some(r);
            // 101 switches protocols: final. Other 1xx come before the answer.
            if (100..200).contains(&status.code) && status.code != 101 {
                req.interim = Some(status.code);
                fx.interim = Some(status.code);
                conn.head_io = Some(head_io);
                return;
            }
            conn.awaiting.pop_front();
            req.status = Some(status.code);
            req.first_byte_ns.get_or_insert(ev.ts_ns);
            conn.body = response_body(head, len, req.method, status.code);
            head_io.completes = conn.body.complete();
            conn.head_io = Some(head_io);
            fx.http_line = Some(false);
            // Pipelining: an answer to a newer request ends the older answered ones.
            self.finish(c, fx, |o| o < r);
            return;
        }
        // More of the response under way.
        let conn = &mut self.connections[c];
        if let Some(r) = conn.responding
            && self.requests.get(&r).is_some_and(|q| q.outbound != send)
        {
            conn.body.advance(head, len);
            head_io.request = Some(r);
            head_io.completes = conn.body.complete();
            conn.head_io = Some(head_io);
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
        [at(head), at(moved)]
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
