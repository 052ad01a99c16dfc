//! One HTTP/2 connection: both directions' frames, their header blocks
//! through each direction's HPACK table, and the streams they make.

use super::frame::{FrameKind, error_code_name, flags};
use super::hpack::BlockDecoder;
use super::reader::{Chunk, Frame, FrameReader, MAX_KEPT_PAYLOAD, ReaderEvent};
use super::streams::{H2Request, Span, StreamTable, Way};

/// A header block (HEADERS or PUSH_PROMISE with its CONTINUATIONs) larger
/// than this is cut, and its direction's table given up.
pub const MAX_BLOCK: usize = MAX_KEPT_PAYLOAD;
/// Notes kept per connection: the first ones say what went wrong.
const MAX_NOTES: usize = 16;

/// The traced process's side of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// Which way bytes went, seen from the traced process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Egress,
    Ingress,
}

/// Where the capture began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// At the connection's first byte (the client sends the preface).
    Preface,
    /// After an HTTP/1.1 `Upgrade: h2c` and its 101 (fed from the byte
    /// after each): stream 1 is the upgraded request, whose method and
    /// path the HTTP/1 parser has; its response comes as HTTP/2.
    Upgrade,
    /// Mid-way: frames are found by a confirmed sync, tables are unknown.
    MidStream,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detection {
    Undecided,
    Http2,
    NotHttp2,
}

struct PendingBlock {
    stream: u32,
    promised: Option<u32>,
    end_stream: bool,
    bytes: Vec<u8>,
    cut: bool,
    first_ns: u64,
}

struct Side {
    reader: FrameReader,
    hpack: BlockDecoder,
    block: Option<PendingBlock>,
}

pub struct Http2Connection {
    local: Role,
    c2s: Side,
    s2c: Side,
    streams: StreamTable,
    detection: Detection,
    ended: bool,
    notes: Vec<String>,
    events: Vec<ReaderEvent>,
}

impl Http2Connection {
    pub fn new(local: Role, start: Start) -> Self {
        let side = |reader, hpack| Side {
            reader,
            hpack,
            block: None,
        };
        let (c2s, s2c) = match start {
            Start::Preface | Start::Upgrade => (
                side(FrameReader::at_preface(), BlockDecoder::in_step()),
                side(FrameReader::at_frame(), BlockDecoder::in_step()),
            ),
            Start::MidStream => (
                side(FrameReader::mid_stream(), BlockDecoder::unusable()),
                side(FrameReader::mid_stream(), BlockDecoder::unusable()),
            ),
        };
        let mut streams = StreamTable::new(start != Start::MidStream);
        if start == Start::Upgrade {
            streams.upgraded();
        }
        Self {
            local,
            c2s,
            s2c,
            streams,
            detection: Detection::Undecided,
            ended: false,
            notes: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn detection(&self) -> Detection {
        self.detection
    }

    /// What went wrong or was given up, in order (at most 16).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    pub fn feed(&mut self, dir: Direction, chunk: &Chunk<'_>) {
        if self.ended {
            return;
        }
        let way = match (self.local, dir) {
            (Role::Client, Direction::Egress) | (Role::Server, Direction::Ingress) => {
                Way::ClientToServer
            }
            _ => Way::ServerToClient,
        };
        let mut events = std::mem::take(&mut self.events);
        self.side(way).reader.feed(chunk, &mut events);
        for event in events.drain(..) {
            if self.ended {
                break;
            }
            self.on_event(way, event);
        }
        self.events = events;
    }

    /// Streams that ended since the last call.
    pub fn take_requests(&mut self) -> Vec<H2Request> {
        self.streams.take_done()
    }

    /// The connection closed: every stream, ended or not.
    pub fn finish(&mut self) -> Vec<H2Request> {
        self.ended = true;
        self.streams.finish()
    }

    fn side(&mut self, way: Way) -> &mut Side {
        match way {
            Way::ClientToServer => &mut self.c2s,
            Way::ServerToClient => &mut self.s2c,
        }
    }

    fn note(&mut self, way: Way, what: &str) {
        if self.notes.len() < MAX_NOTES {
            let way = match way {
                Way::ClientToServer => "client->server",
                Way::ServerToClient => "server->client",
            };
            self.notes.push(format!("h2 {way}: {what}"));
        }
    }

    fn on_event(&mut self, way: Way, event: ReaderEvent) {
        match event {
            ReaderEvent::Synced { by_preface } => {
                self.detection = Detection::Http2;
                if !by_preface {
                    self.note(way, "frames found mid-connection; header table unknown");
                }
            }
            ReaderEvent::Lost(why) => {
                self.note(way, why);
                let side = self.side(way);
                side.hpack.lose_table();
                side.block = None;
                self.streams.lost();
            }
            ReaderEvent::Failed(why) => {
                self.note(way, why);
                if self.detection == Detection::Undecided {
                    self.detection = Detection::NotHttp2;
                }
                self.ended = true;
            }
            ReaderEvent::Frame(frame) => self.on_frame(way, frame),
        }
    }

    fn on_frame(&mut self, way: Way, f: Frame) {
        let h = f.header;
        if self.side(way).block.is_some() && h.kind != FrameKind::Continuation {
            self.note(way, "a header block was interrupted; header table given up");
            let side = self.side(way);
            side.block = None;
            side.hpack.lose_table();
        }
        let span = Span {
            first_ns: f.first_ns,
            last_ns: f.last_ns,
        };
        match h.kind {
            FrameKind::Headers | FrameKind::PushPromise => {
                let push = h.kind == FrameKind::PushPromise;
                let Some((promised, fragment)) = block_fragment(&f, push) else {
                    self.malformed(way, "a HEADERS or PUSH_PROMISE frame with bad padding");
                    return;
                };
                self.side(way).block = Some(PendingBlock {
                    stream: h.stream_id,
                    promised,
                    end_stream: h.end_stream(),
                    bytes: fragment.to_vec(),
                    cut: f.truncated,
                    first_ns: f.first_ns,
                });
                if h.has(flags::END_HEADERS) {
                    self.end_block(way, f.last_ns);
                }
            }
            FrameKind::Continuation => {
                let side = self.side(way);
                let Some(block) = side.block.as_mut().filter(|b| b.stream == h.stream_id) else {
                    return;
                };
                let room = MAX_BLOCK.saturating_sub(block.bytes.len());
                block.cut |= f.truncated || f.payload.len() > room;
                block
                    .bytes
                    .extend_from_slice(&f.payload[..f.payload.len().min(room)]);
                if h.has(flags::END_HEADERS) {
                    self.end_block(way, f.last_ns);
                }
            }
            FrameKind::Data => {
                // Padding is not body: its length is the payload's first byte.
                let (len, known) = if h.has(flags::PADDED) {
                    match f.payload.first() {
                        Some(&pad) => (h.len.saturating_sub(1 + u32::from(pad)), true),
                        None => (h.len, false),
                    }
                } else {
                    (h.len, true)
                };
                self.streams.data(
                    way,
                    h.stream_id,
                    u64::from(len),
                    known,
                    h.end_stream(),
                    span,
                );
            }
            FrameKind::Settings if !h.has(flags::ACK) && !f.truncated => {
                // A peer's SETTINGS govern what it receives: the other way.
                let other = match way {
                    Way::ClientToServer => Way::ServerToClient,
                    Way::ServerToClient => Way::ClientToServer,
                };
                for p in f.payload.chunks_exact(6) {
                    let value = u32::from_be_bytes([p[2], p[3], p[4], p[5]]);
                    match u16::from_be_bytes([p[0], p[1]]) {
                        0x1 => self.side(other).hpack.peer_allows(value as usize),
                        0x5 => self.side(other).reader.allow_frames_up_to(value),
                        _ => {}
                    }
                }
            }
            FrameKind::RstStream => {
                if let Some(code) = code_at(&f.payload, 0) {
                    self.streams.reset(h.stream_id, code_name(code), code == 0);
                }
            }
            FrameKind::GoAway => {
                if let (Some(last), Some(code)) = (code_at(&f.payload, 0), code_at(&f.payload, 4)) {
                    self.streams
                        .goaway(last & 0x7fff_ffff, code_name(code), code == 0);
                }
            }
            _ => {}
        }
    }

    fn end_block(&mut self, way: Way, last_ns: u64) {
        let side = self.side(way);
        let Some(block) = side.block.take() else {
            return;
        };
        let (decoded, note) = side.hpack.decode(&block.bytes, block.cut);
        if let Some(note) = note {
            self.note(way, note);
        }
        match block.promised {
            Some(promised) => self.streams.promise(promised, decoded),
            None => {
                let span = Span {
                    first_ns: block.first_ns,
                    last_ns,
                };
                self.streams
                    .headers(way, block.stream, decoded, block.end_stream, span);
            }
        }
    }

    /// Bytes no peer would send: this connection is decoded no further.
    fn malformed(&mut self, way: Way, what: &str) {
        self.note(way, what);
        self.ended = true;
    }
}

/// The header block fragment of a HEADERS or PUSH_PROMISE frame, without
/// padding, priority and (for a push) the promised stream id.
fn block_fragment(f: &Frame, push: bool) -> Option<(Option<u32>, &[u8])> {
    let h = f.header;
    let mut start = 0usize;
    let mut pad = 0usize;
    if h.has(flags::PADDED) {
        pad = usize::from(*f.payload.first()?);
        start = 1;
    }
    if h.kind == FrameKind::Headers && h.has(flags::PRIORITY) {
        start += 5;
    }
    let mut promised = None;
    if push {
        promised = Some(code_at(&f.payload, start)? & 0x7fff_ffff);
        start += 4;
    }
    let end = (h.len as usize).checked_sub(pad)?;
    if start > end {
        return None;
    }
    // A cut payload holds a prefix: its end may fall before `end`.
    let bytes = f.payload.get(start..end.min(f.payload.len()))?;
    Some((promised, bytes))
}

fn code_at(payload: &[u8], at: usize) -> Option<u32> {
    let b = payload.get(at..at + 4)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

fn code_name(code: u32) -> String {
    error_code_name(code).map_or_else(|| format!("0x{code:x}"), str::to_string)
}

#[cfg(test)]
mod tests;
