//! Streams into requests: each stream's header blocks, DATA lengths, ends
//! and timing, in the order its frames crossed the connection.

use std::collections::BTreeMap;

use super::fields::KeptFields;
use super::hpack::DecodedBlock;

/// Open streams tracked per connection, at most; beyond it the oldest is
/// given up (bounds memory against a peer that never ends streams).
pub const MAX_OPEN_STREAMS: usize = 1024;

/// Which way a frame went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Way {
    ClientToServer,
    ServerToClient,
}

/// First and last byte of one direction of a stream (probe timestamps).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub first_ns: u64,
    pub last_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// END_STREAM both ways.
    Complete,
    /// RST_STREAM from either side.
    Reset,
    /// A GOAWAY said the stream was not processed, or ended the connection
    /// with an error.
    GoAway,
    /// The connection ended (or its decoding did) with the stream open.
    Unfinished,
    /// More than MAX_OPEN_STREAMS were open.
    Evicted,
}

/// One stream as a request. Every `None` is a value that was not seen or
/// could not be decoded; none is ever filled in by guess.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H2Request {
    pub stream_id: u32,
    pub method: Option<String>,
    pub scheme: Option<String>,
    pub authority: Option<String>,
    pub path: Option<String>,
    pub status: Option<u16>,
    /// content-type, the response's if it had one, else the request's.
    pub content_type: Option<String>,
    pub grpc_status: Option<u32>,
    pub grpc_message: Option<String>,
    pub request: Option<Span>,
    pub response: Option<Span>,
    /// DATA bytes each way, without padding (a padded frame whose pad
    /// length was not captured counts whole and marks the stream partial).
    pub request_data_bytes: u64,
    pub response_data_bytes: u64,
    pub error: Option<String>,
    pub end: StreamEnd,
    /// A server push (PUSH_PROMISE): its request came from the server.
    pub pushed: bool,
    /// An earlier stream was seen on this connection; `None` when the
    /// connection was seen mid-way and none was.
    pub reused: Option<bool>,
    /// Some of this stream's fields or frames were not decoded: a table
    /// seen mid-way, a cut block, lost bytes, or a stream begun before the
    /// capture.
    pub partial: bool,
}

impl H2Request {
    fn new(stream_id: u32, reused: Option<bool>) -> Self {
        Self {
            stream_id,
            method: None,
            scheme: None,
            authority: None,
            path: None,
            status: None,
            content_type: None,
            grpc_status: None,
            grpc_message: None,
            request: None,
            response: None,
            request_data_bytes: 0,
            response_data_bytes: 0,
            error: None,
            end: StreamEnd::Unfinished,
            pushed: false,
            reused,
            partial: false,
        }
    }

    /// A gRPC call's service and method, from its path
    /// (`/package.Service/Method`), for OpenTelemetry's `rpc.service` and
    /// `rpc.method`.
    pub fn grpc_method(&self) -> Option<(&str, &str)> {
        if !self.is_grpc() {
            return None;
        }
        let path = self.path.as_deref()?.strip_prefix('/')?;
        let (service, method) = path.split_once('/')?;
        (!service.is_empty() && !method.is_empty() && !method.contains('/'))
            .then_some((service, method))
    }

    /// A gRPC call: its content-type says so.
    pub fn is_grpc(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/grpc"))
    }
}

struct Open {
    req: H2Request,
    request_headers: bool,
    ended_c2s: bool,
    ended_s2c: bool,
}

pub struct StreamTable {
    open: BTreeMap<u32, Open>,
    done: Vec<H2Request>,
    seen_any: bool,
    from_start: bool,
}

impl StreamTable {
    /// `from_start`: the connection's first stream will be seen.
    pub fn new(from_start: bool) -> Self {
        Self {
            open: BTreeMap::new(),
            done: Vec::new(),
            seen_any: false,
            from_start,
        }
    }

    fn stream(&mut self, id: u32) -> &mut Open {
        let mut reused = None;
        if !self.open.contains_key(&id) {
            if self.open.len() >= MAX_OPEN_STREAMS
                && let Some((_, mut old)) = self.open.pop_first()
            {
                old.req.end = StreamEnd::Evicted;
                self.done.push(old.req);
            }
            reused = if self.seen_any {
                Some(true)
            } else {
                self.from_start.then_some(false)
            };
            self.seen_any = true;
        }
        // A stream first seen on a connection seen mid-way may have begun
        // before the capture.
        let partial = !self.from_start;
        self.open.entry(id).or_insert_with(|| {
            let mut req = H2Request::new(id, reused);
            req.partial = partial;
            Open {
                req,
                request_headers: false,
                ended_c2s: false,
                ended_s2c: false,
            }
        })
    }

    /// Stream 1 was an HTTP/1.1 request upgraded to h2c: its request is
    /// over, and its fields are the HTTP/1 parser's to give.
    pub fn upgraded(&mut self) {
        let open = self.stream(1);
        open.request_headers = true;
        open.ended_c2s = true;
    }

    /// A header block for `id` (HEADERS, with its CONTINUATIONs).
    pub fn headers(
        &mut self,
        way: Way,
        id: u32,
        block: DecodedBlock,
        end_stream: bool,
        span: Span,
    ) {
        let open = self.stream(id);
        let first_c2s = !open.request_headers && open.req.request.is_none();
        if way == Way::ClientToServer && first_c2s {
            open.request_headers = true;
            open.req.partial = block.incomplete;
            set_request(&mut open.req, block.fields);
        } else {
            open.req.partial |= block.incomplete;
            if way == Way::ServerToClient {
                set_response(&mut open.req, block.fields);
            }
        }
        self.frame(way, id, span, end_stream);
    }

    /// A PUSH_PROMISE: the promised stream's request, from the server.
    pub fn promise(&mut self, promised: u32, block: DecodedBlock) {
        let open = self.stream(promised);
        open.request_headers = true;
        open.ended_c2s = true;
        open.req.pushed = true;
        open.req.partial = block.incomplete;
        set_request(&mut open.req, block.fields);
    }

    pub fn data(&mut self, way: Way, id: u32, len: u64, exact: bool, end_stream: bool, span: Span) {
        let open = self.stream(id);
        open.req.partial |= !exact;
        match way {
            Way::ClientToServer => open.req.request_data_bytes += len,
            Way::ServerToClient => open.req.response_data_bytes += len,
        }
        self.frame(way, id, span, end_stream);
    }

    fn frame(&mut self, way: Way, id: u32, span: Span, end_stream: bool) {
        let Some(open) = self.open.get_mut(&id) else {
            return;
        };
        let side = match way {
            Way::ClientToServer => &mut open.req.request,
            Way::ServerToClient => &mut open.req.response,
        };
        *side = Some(side.map_or(span, |s| Span {
            first_ns: s.first_ns,
            last_ns: span.last_ns.max(s.last_ns),
        }));
        match way {
            Way::ClientToServer => open.ended_c2s |= end_stream,
            Way::ServerToClient => open.ended_s2c |= end_stream,
        }
        if open.ended_c2s && open.ended_s2c {
            self.close(id, StreamEnd::Complete, None);
        }
    }

    /// RST_STREAM: NO_ERROR after the response ended is how a server stops
    /// an upload it no longer needs, not a failure.
    pub fn reset(&mut self, id: u32, code_name: String, no_error: bool) {
        let Some(open) = self.open.get(&id) else {
            return;
        };
        let error = (!(no_error && open.ended_s2c)).then(|| format!("RST_STREAM {code_name}"));
        self.close(id, StreamEnd::Reset, error);
    }

    /// GOAWAY: streams above `last_id` that `sender`'s peer opened were
    /// never processed; with an error code, every open stream ends.
    pub fn goaway(&mut self, last_id: u32, code_name: String, no_error: bool) {
        let ids: Vec<u32> = self
            .open
            .keys()
            .copied()
            .filter(|&id| id > last_id || !no_error)
            .collect();
        for id in ids {
            self.close(id, StreamEnd::GoAway, Some(format!("GOAWAY {code_name}")));
        }
    }

    /// Frames of `way` were lost: its open streams may miss frames.
    pub fn lost(&mut self) {
        for open in self.open.values_mut() {
            open.req.partial = true;
        }
    }

    fn close(&mut self, id: u32, end: StreamEnd, error: Option<String>) {
        if let Some(mut open) = self.open.remove(&id) {
            open.req.end = end;
            open.req.error = error;
            self.done.push(open.req);
        }
    }

    /// Streams that ended since the last call, in the order they ended.
    pub fn take_done(&mut self) -> Vec<H2Request> {
        std::mem::take(&mut self.done)
    }

    /// The connection ended: every stream still open, as unfinished.
    pub fn finish(&mut self) -> Vec<H2Request> {
        let mut all = self.take_done();
        all.extend(std::mem::take(&mut self.open).into_values().map(|o| o.req));
        all
    }
}

fn set_request(req: &mut H2Request, f: KeptFields) {
    req.method = f.method;
    req.scheme = f.scheme;
    req.authority = f.authority;
    req.path = f.path;
    if req.content_type.is_none() {
        req.content_type = f.content_type;
    }
}

fn set_response(req: &mut H2Request, f: KeptFields) {
    // An informational 1xx is followed by the final status.
    if let Some(status) = f.status.filter(|&s| s >= 200 || req.status.is_none()) {
        req.status = Some(status);
    }
    if f.content_type.is_some() {
        req.content_type = f.content_type;
    }
    if f.grpc_status.is_some() {
        req.grpc_status = f.grpc_status;
    }
    if f.grpc_message.is_some() {
        req.grpc_message = f.grpc_message;
    }
}
