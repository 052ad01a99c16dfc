//! One direction of a connection: I/O chunks as the probes captured them
//! in, whole frames out. Only header blocks and control frames are kept;
//! DATA is counted by its header's length and never copied.

use super::frame::{FrameHeader, FrameKind, HEADER_LEN, MAX_FRAME_LEN, PREFACE, flags};

/// Bytes of one frame's payload kept, at most: a header block larger than
/// this is cut, which marks that direction's HPACK table unusable.
pub const MAX_KEPT_PAYLOAD: usize = 64 * 1024;
/// SETTINGS_MAX_FRAME_SIZE's initial value (RFC 9113 §6.5.2): the longest
/// frame a sync search accepts until the peer's SETTINGS say more.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;

/// One read or write as the probes saw it.
#[derive(Clone, Copy, Debug)]
pub struct Chunk<'a> {
    pub ts_ns: u64,
    /// The bytes captured: a prefix of the I/O, maybe all of it.
    pub bytes: &'a [u8],
    /// The I/O's real length; more than `bytes.len()` when the capture
    /// was cut.
    pub total_len: usize,
    /// Earlier I/O of this direction was lost (ring full, probe missed).
    pub gap_before: bool,
    /// Bytes captured past `bytes`, in offset order: a capture that keeps
    /// frame headers and header blocks and skips DATA payloads.
    pub later: &'a [Extent<'a>],
}

/// Captured bytes at an offset of their I/O.
#[derive(Clone, Copy, Debug)]
pub struct Extent<'a> {
    pub offset: usize,
    pub bytes: &'a [u8],
}

impl<'a> Chunk<'a> {
    /// The captured bytes from `pos` on, as far as they run unbroken.
    fn at(&self, pos: usize) -> &'a [u8] {
        if let Some(rest) = self.bytes.get(pos..).filter(|r| !r.is_empty()) {
            return rest;
        }
        self.later
            .iter()
            .find(|e| e.offset <= pos && pos < e.offset + e.bytes.len())
            .map_or(&[], |e| &e.bytes[pos - e.offset..])
    }

    /// Where the capture ends (the I/O may go on uncaptured).
    fn captured_end(&self) -> usize {
        self.later
            .last()
            .map_or(self.bytes.len(), |e| e.offset + e.bytes.len())
            .max(self.bytes.len())
    }
}

/// A frame whose last byte has been seen.
#[derive(Clone, Debug)]
pub struct Frame {
    pub header: FrameHeader,
    /// The kept part of the payload: all of it for header blocks and
    /// control frames (unless `truncated`), the pad length for padded DATA.
    pub payload: Vec<u8>,
    /// Bytes of the payload that were wanted were not captured.
    pub truncated: bool,
    /// When the I/O that carried its header, and its last byte, happened.
    pub first_ns: u64,
    pub last_ns: u64,
}

#[derive(Clone, Debug)]
pub enum ReaderEvent {
    Frame(Frame),
    /// Frames are followed from here on: after the preface, or after a
    /// confirmed sync on a connection seen mid-way.
    Synced {
        by_preface: bool,
    },
    /// The frame chain was lost (bytes not captured); frames are searched
    /// for again, and what was in the lost part is unknown.
    Lost(&'static str),
    /// Not HTTP/2, or a frame no peer would send: this direction is done.
    Failed(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Expecting the client preface; this many of its bytes seen.
    Preface(usize),
    /// Following frames from a known boundary.
    Synced,
    /// Looking for a frame boundary; `candidate`: the previous I/O was
    /// whole frames, so one more confirms.
    Searching {
        candidate: bool,
    },
    Failed,
}

struct Partial {
    header: FrameHeader,
    remaining: u32,
    keep: usize,
    payload: Vec<u8>,
    truncated: bool,
    first_ns: u64,
}

pub struct FrameReader {
    state: State,
    head: [u8; HEADER_LEN],
    head_len: usize,
    head_ns: u64,
    partial: Option<Partial>,
    max_frame: u32,
}

impl FrameReader {
    /// A direction whose first byte is the client preface.
    pub fn at_preface() -> Self {
        Self::with_state(State::Preface(0))
    }

    /// A direction whose first byte starts a frame (the server's side of a
    /// connection seen from its start).
    pub fn at_frame() -> Self {
        Self::with_state(State::Synced)
    }

    /// A direction seen mid-way: frames are found by a confirmed sync.
    pub fn mid_stream() -> Self {
        Self::with_state(State::Searching { candidate: false })
    }

    fn with_state(state: State) -> Self {
        Self {
            state,
            head: [0; HEADER_LEN],
            head_len: 0,
            head_ns: 0,
            partial: None,
            max_frame: DEFAULT_MAX_FRAME,
        }
    }

    pub fn is_synced(&self) -> bool {
        self.state == State::Synced
    }

    pub fn has_failed(&self) -> bool {
        self.state == State::Failed
    }

    /// The receiver's SETTINGS_MAX_FRAME_SIZE: longer frames become
    /// plausible to the sync search.
    pub fn allow_frames_up_to(&mut self, len: u32) {
        self.max_frame = self.max_frame.max(len.min(MAX_FRAME_LEN));
    }

    pub fn feed(&mut self, chunk: &Chunk<'_>, out: &mut Vec<ReaderEvent>) {
        let total = chunk.total_len.max(chunk.captured_end());
        if chunk.gap_before {
            match self.state {
                State::Synced | State::Preface(_) => self.lose("I/O lost before this one", out),
                State::Searching { .. } => self.state = State::Searching { candidate: false },
                State::Failed => {}
            }
        }
        let mut pos = 0;
        if let State::Preface(seen) = self.state {
            let want = &PREFACE[seen..];
            let n = want.len().min(total);
            // A cut capture shows part of it: what is seen must match.
            let seen_now = n.min(chunk.bytes.len());
            if seen + seen_now == 0 || chunk.bytes[..seen_now] != want[..seen_now] {
                self.fail("no HTTP/2 client preface", out);
                return;
            }
            pos = n;
            if seen + n < PREFACE.len() {
                self.state = State::Preface(seen + n);
                return;
            }
            self.state = State::Synced;
            out.push(ReaderEvent::Synced { by_preface: true });
        }
        if let State::Searching { candidate } = self.state {
            let whole = whole_frames(chunk, total, self.max_frame);
            self.state = State::Searching { candidate: whole };
            // The first I/O of whole frames may be the tail of a DATA
            // payload that happens to parse: only the next one is used.
            if !(whole && candidate) {
                return;
            }
            self.state = State::Synced;
            out.push(ReaderEvent::Synced { by_preface: false });
        }
        if self.state == State::Synced {
            self.follow(chunk, pos, total, out);
        }
    }

    fn follow(
        &mut self,
        chunk: &Chunk<'_>,
        mut pos: usize,
        total: usize,
        out: &mut Vec<ReaderEvent>,
    ) {
        while pos < total {
            let Some(p) = self.partial.as_mut() else {
                let avail = chunk.at(pos);
                if avail.is_empty() {
                    self.lose("a frame header was not captured", out);
                    return;
                }
                if self.head_len == 0 {
                    self.head_ns = chunk.ts_ns;
                }
                let n = (HEADER_LEN - self.head_len).min(avail.len());
                self.head[self.head_len..self.head_len + n].copy_from_slice(&avail[..n]);
                self.head_len += n;
                pos += n;
                if self.head_len < HEADER_LEN {
                    continue;
                }
                self.head_len = 0;
                let Some(header) = FrameHeader::parse(&self.head) else {
                    continue;
                };
                let known = !matches!(header.kind, FrameKind::Unknown(_));
                if known && FrameHeader::plausible(&self.head, MAX_FRAME_LEN).is_none() {
                    self.fail("a malformed frame header", out);
                    return;
                }
                let keep = if header.kind.wants_payload() {
                    MAX_KEPT_PAYLOAD
                } else if header.kind == FrameKind::Data && header.has(flags::PADDED) {
                    1
                } else {
                    0
                };
                self.partial = Some(Partial {
                    header,
                    remaining: header.len,
                    keep: keep.min(header.len as usize),
                    payload: Vec::new(),
                    truncated: false,
                    first_ns: self.head_ns,
                });
                if header.len == 0 {
                    self.complete(chunk.ts_ns, out);
                }
                continue;
            };
            let n = (p.remaining as usize).min(total - pos);
            let wanted = p.keep.saturating_sub(p.payload.len()).min(n);
            let avail = if wanted > 0 { chunk.at(pos) } else { &[] };
            let have = wanted.min(avail.len());
            p.payload.extend_from_slice(&avail[..have]);
            if have < wanted {
                p.truncated = true;
                // Keep the offsets right: later bytes of this frame are
                // not appended after a hole.
                p.keep = p.payload.len();
            }
            p.remaining -= n as u32;
            pos += n;
            if p.remaining == 0 {
                self.complete(chunk.ts_ns, out);
            }
        }
    }

    fn complete(&mut self, last_ns: u64, out: &mut Vec<ReaderEvent>) {
        if let Some(p) = self.partial.take() {
            let cut = p.header.kind.wants_payload() && p.header.len as usize > MAX_KEPT_PAYLOAD;
            out.push(ReaderEvent::Frame(Frame {
                header: p.header,
                payload: p.payload,
                truncated: p.truncated || cut,
                first_ns: p.first_ns,
                last_ns,
            }));
        }
    }

    fn lose(&mut self, why: &'static str, out: &mut Vec<ReaderEvent>) {
        self.partial = None;
        self.head_len = 0;
        self.state = State::Searching { candidate: false };
        out.push(ReaderEvent::Lost(why));
    }

    fn fail(&mut self, why: &'static str, out: &mut Vec<ReaderEvent>) {
        self.partial = None;
        self.state = State::Failed;
        out.push(ReaderEvent::Failed(why));
    }
}

/// Whether an I/O is made of whole, plausible frames: consecutive frame
/// headers, each within the captured bytes, the last frame ending exactly
/// where the I/O ends.
fn whole_frames(chunk: &Chunk<'_>, total: usize, max_frame: u32) -> bool {
    let mut off = 0usize;
    while off < total {
        let Some(h) = FrameHeader::plausible(chunk.at(off), max_frame) else {
            return false;
        };
        off += HEADER_LEN + h.len as usize;
    }
    off == total && total > 0
}

#[cfg(test)]
mod tests;
