//! HTTP/1.x messages in the payload heads of one connection, and the bytes
//! of each send and recv counted to the message they belong to. The kernel
//! hands a head first and the I/O that carried it right after: the head
//! decides how the I/O's bytes divide ([`HeadIo`]), the I/O counts them.
//! Every message that starts inside a captured head is parsed (pipelined
//! requests in one write, responses coalesced in one read, a 100 Continue
//! and its answer together); one known to start past it is `unparsed`.
use super::{
    super::{
        framing::{Body, request_used, response_body},
        http::{RequestLine, looks_like_tls, parse_request, parse_status, request_start},
        model::{HeadIo, SplitHead},
    },
    Effect, Request, Tracker,
};
use crate::probes::KernelEvent;

/// What one message in a head is: its request, the bytes of the I/O it
/// takes when it ends inside it, and whether it completes a response.
type Step = (Option<usize>, Option<u64>, bool);

impl Tracker {
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

    /// A send or recv that moved `n` bytes: counted to its messages, or,
    /// on a connection whose plaintext is probed, to the connection only
    /// (those are TLS records; the plaintext counts to the requests).
    pub(super) fn io(&mut self, c: usize, ts_ns: u64, send: bool, n: u64, fx: &mut Effect) {
        let conn = &mut self.connections[c];
        if send {
            conn.bytes_sent += n;
        } else {
            conn.bytes_received += n;
        }
        if !conn.plaintext {
            self.count_to_messages(c, ts_ns, send, n, fx);
        }
    }

    /// Plaintext that the TLS library wrote or read on connection `c`
    /// (after the handshake, whose records the kernel heads showed): parsed
    /// and counted as a plaintext send or recv with its head would be.
    pub(super) fn plaintext(
        &mut self,
        c: usize,
        ev: &KernelEvent,
        send: bool,
        len: u64,
        head: &[u8],
        fx: &mut Effect,
    ) {
        let conn = &mut self.connections[c];
        (conn.plaintext, conn.encrypted) = (true, true);
        self.heads(c, ev, send, len, head, fx);
        self.count_to_messages(c, ev.ts_ns, send, len, fx);
    }

    /// `n` bytes moved in direction `send`, counted to the messages of the
    /// head parsed for them, or to the request they continue.
    fn count_to_messages(&mut self, c: usize, ts_ns: u64, send: bool, n: u64, fx: &mut Effect) {
        let conn = &mut self.connections[c];
        if let Some(h) = conn.head_io.take_if(|h| h.ts_ns == ts_ns && h.send == send) {
            for s in &h.shares[..h.len] {
                self.count(c, ts_ns, send, s.request, s.bytes, s.completes, fx);
            }
            return;
        }
        let r = self.owner(c, send);
        // No head came with these bytes (lost, or no user buffer): a
        // Content-Length still counts down; chunks are out of sight.
        let body = r.is_some_and(|r| {
            Some(r) == self.connections[c].responding && self.answered_by(r, send)
        });
        let conn = &mut self.connections[c];
        if body {
            conn.body.advance(&[], n);
        }
        let completes = body && conn.body.complete();
        self.count(c, ts_ns, send, r, n, completes, fx);
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one share of one I/O, spelled out"
    )]
    fn count(
        &mut self,
        c: usize,
        ts_ns: u64,
        send: bool,
        r: Option<usize>,
        n: u64,
        completes: bool,
        fx: &mut Effect,
    ) {
        fx.request = fx.request.or(r);
        let Some((r, req)) = r.and_then(|r| Some((r, self.requests.get_mut(&r)?))) else {
            return;
        };
        if send {
            req.bytes_sent += n;
        } else {
            req.bytes_received += n;
        }
        if req.outbound == send {
            req.request_end_ns = Some(ts_ns);
        } else {
            // A 1xx is not the response's first byte: the final one is.
            if req.interim.is_none() || req.status.is_some() {
                req.first_byte_ns.get_or_insert(ts_ns);
            }
            req.last_byte_ns = Some(ts_ns);
        }
        if completes {
            let conn = &mut self.connections[c];
            conn.open.retain(|&o| o != r);
            conn.awaiting.retain(|&o| o != r);
            if conn.responding == Some(r) {
                (conn.responding, conn.body) = (None, Body::Unknown);
            }
            fx.finished.push(r);
        }
    }

    pub(super) fn payload(
        &mut self,
        c: usize,
        ev: &KernelEvent,
        send: bool,
        len: u64,
        head: &[u8],
        fx: &mut Effect,
    ) {
        // A TLS connection's heads are records, never parsed: ciphertext
        // could read as a chunk line of the response under way.
        let conn = &mut self.connections[c];
        if conn.encrypted || looks_like_tls(head) {
            conn.encrypted = true;
            return;
        }
        self.heads(c, ev, send, len, head, fx);
    }

    /// The HTTP/1.x messages in `head`, the start of an I/O of `len` bytes.
    fn heads(
        &mut self,
        c: usize,
        ev: &KernelEvent,
        send: bool,
        len: u64,
        head: &[u8],
        fx: &mut Effect,
    ) {
        let mut io = HeadIo::new(ev.ts_ns, send);
        // A request head split across sends: the held start goes before
        // this head, and the request starts with it.
        let conn = &mut self.connections[c];
        if let Some(mut held) = conn.split_head.take().filter(|h| h.send == send) {
            let carried = held.bytes.len() as u64;
            held.bytes.extend_from_slice(head);
            if let Some(line) = parse_request(&held.bytes) {
                let r = self.new_request(c, line, send, held.ts_ns, carried, &io, fx);
                io.push(Some(r), len, false);
                self.connections[c].head_io = Some(io);
                return;
            }
        }
        if head.len() as u64 == len && request_start(head) {
            // Every byte of the I/O is here and the request line goes on
            // in the next one: its bytes are the connection's until then.
            let (ts_ns, bytes) = (ev.ts_ns, head.to_vec());
            conn.split_head = Some(SplitHead { send, ts_ns, bytes });
            conn.head_io = Some(io);
            return;
        }
        let (mut at, mut left) = (0, len);
        loop {
            let Some((r, used, completes)) = self.message(c, ev, send, &head[at..], left, &io, fx)
            else {
                if at == 0 {
                    // Not a message: the owner takes the bytes ([`Self::io`]).
                    return;
                }
                self.unparsed += 1;
                io.push(None, left, false);
                break;
            };
            match used {
                Some(u) if u > 0 && u < left => {
                    if !io.push(r, u, completes) {
                        self.unparsed += 1;
                        break;
                    }
                    (at, left) = (at + u as usize, left - u);
                    if at >= head.len() {
                        // The next message starts past what was captured.
                        self.unparsed += 1;
                        io.push(None, left, false);
                        break;
                    }
                }
                _ => {
                    io.push(r, left, completes);
                    break;
                }
            }
        }
        self.connections[c].head_io = Some(io);
    }

    /// The message that starts `msg` (`left` bytes of the I/O from there).
    #[expect(clippy::too_many_arguments, reason = "one message of one head")]
    fn message(
        &mut self,
        c: usize,
        ev: &KernelEvent,
        send: bool,
        msg: &[u8],
        left: u64,
        io: &HeadIo,
        fx: &mut Effect,
    ) -> Option<Step> {
        if let Some(line) = parse_request(msg) {
            let r = self.new_request(c, line, send, ev.ts_ns, 0, io, fx);
            return Some((Some(r), request_used(msg, left), false));
        }
        let waiting = self.connections[c].awaiting.front().copied();
        if let Some(status) = parse_status(msg)
            && let Some(r) = waiting.filter(|&r| self.answered_by(r, send))
            && let Some(req) = self.requests.get_mut(&r)
        {
            let conn = &mut self.connections[c];
            conn.responding = Some(r);
            fx.request = Some(r);
            let code = status.code;
            // 101 switches protocols: final. Other 1xx come before the answer.
            if (100..200).contains(&code) && code != 101 {
                req.interim = Some(code);
                fx.interim = Some(code);
                return Some((Some(r), response_body(msg, left, "", code).1, false));
            }
            conn.awaiting.pop_front();
            req.status = Some(code);
            req.first_byte_ns.get_or_insert(ev.ts_ns);
            let (body, used) = response_body(msg, left, req.method, code);
            let completes = body.complete();
            conn.body = body;
            fx.http_line = Some(false);
            // Pipelining: an answer to a newer request ends the older
            // answered ones (those in this I/O end when it is counted).
            self.finish(c, fx, |o| o < r && !io.has(o));
            return Some((Some(r), used, completes));
        }
        // More of the response under way.
        let r = self.connections[c].responding?;
        if !self.answered_by(r, send) {
            return None;
        }
        let body = &mut self.connections[c].body;
        let used = body.advance(msg, left);
        Some((Some(r), used, body.complete()))
    }

    #[expect(clippy::too_many_arguments, reason = "a request's every origin")]
    fn new_request(
        &mut self,
        c: usize,
        line: RequestLine,
        send: bool,
        start_ns: u64,
        carried: u64,
        io: &HeadIo,
        fx: &mut Effect,
    ) -> usize {
        // Older requests that already have their answer end here.
        self.finish(c, fx, |o| !io.has(o));
        let conn = &mut self.connections[c];
        let r = self.request_count;
        self.request_count += 1;
        conn.requests += 1;
        let reused = conn.requests > 1 || conn.preexisting_fd.is_some();
        self.reused_count += usize::from(reused);
        let first = conn.requests == 1 && conn.preexisting_fd.is_none();
        if first {
            conn.first_request = Some(r + 1);
        }
        // The handshake belongs to the request the process dialled it for.
        let connect_ns = conn.connect_ns.filter(|_| first && send);
        // The parsed target is kept as it is unless a secret was redacted
        // (not copied again: this runs for every request).
        let redacted = match crate::secrets::shown_target(&line.target) {
            std::borrow::Cow::Owned(shown) => Some(shown),
            std::borrow::Cow::Borrowed(_) => None,
        };
        self.requests.insert(
            r,
            Request {
                number: r + 1,
                connection: c,
                cookie: conn.cookie,
                method: line.method,
                target: redacted.unwrap_or(line.target),
                host: line.host,
                version: line.version,
                outbound: send,
                status: None,
                interim: None,
                start_ns,
                request_end_ns: (carried > 0).then_some(start_ns),
                first_byte_ns: None,
                last_byte_ns: None,
                bytes_sent: if send { carried } else { 0 },
                bytes_received: if send { 0 } else { carried },
                reused,
                reused_from: conn.first_request.filter(|_| reused),
                connect_ns,
            },
        );
        conn.awaiting.push_back(r);
        conn.open.push(r);
        fx.request = Some(r);
        fx.http_line = Some(true);
        r
    }
}
