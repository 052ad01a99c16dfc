//! The JSON Lines contract as types: one `#[derive(Serialize)]` record per
//! line type, borrowing what it shows, written by serde_json straight into
//! the caller's reused buffer. A line allocates nothing: text fields are
//! `&str` or [`Shown`]. attach writes one `event` line per kernel event
//! (hundreds of thousands a second on a busy server); that record also has
//! a hand-written encoder, [`EventLine::write_fast`], held to serde's bytes
//! by its tests.
//!
//! Fields are declared in the order they are written: sorted keys, as the
//! `serde_json::Value` maps wrote them, except the `event` line, whose
//! order is attach's for trace and attach alike. Consumers should not
//! depend on key order; tests parse the lines.
use std::fmt::Display;

use serde::{Serialize, Serializer, ser::SerializeMap};

mod event;
mod fast;
mod stat;
mod summary;

pub use event::{ClientFields, EventFields, EventLine, KernelFields, Place};
pub use stat::{EndpointRecord, StatLine};
pub use summary::{
    AttachOnly, AttachRequestLine, AttachSummary, ConnectionLine, ConnectionRecord, EvidenceMap,
    FindingLine, Headers, PhasesUs, ProcessRecord, RequestLine, TlsRecord, TraceOnly,
    TraceRequestLine, TraceSummary, Url,
};

/// The `type` of a line.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LineType {
    Event,
    Request,
    Finding,
    Summary,
    Stat,
    Connection,
}

/// A value written as its `Display` text: serde_json escapes it as it is
/// formatted, with no `String` in between.
pub struct Shown<T>(pub T);

impl<T: Display> Serialize for Shown<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// `{"name": count}` in name order (the order the maps used to sort them
/// in), e.g. findings by kind or lost events by name.
pub struct Counts<'a, N>(pub &'a [(&'a str, N)]);

impl<N: Serialize> Serialize for Counts<'_, N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut sorted: Vec<&(&str, N)> = self.0.iter().collect();
        sorted.sort_by_key(|(k, _)| *k);
        let mut m = s.serialize_map(Some(sorted.len()))?;
        for (k, n) in sorted {
            m.serialize_entry(k, n)?;
        }
        m.end()
    }
}

/// Appends `record` and a newline to `buf`.
pub fn write_line(buf: &mut Vec<u8>, record: &impl Serialize) {
    let at = buf.len();
    // Writing into a Vec fails only for a map key that is not a string,
    // which no record has; never leave half a line behind.
    if serde_json::to_writer(&mut *buf, record).is_err() {
        buf.truncate(at);
        return;
    }
    buf.push(b'\n');
}

/// `record` as one line of text, without the newline.
#[cfg(test)]
pub fn to_line(record: &impl Serialize) -> String {
    let mut buf = Vec::with_capacity(256);
    write_line(&mut buf, record);
    buf.pop();
    String::from_utf8(buf).unwrap_or_default()
}
