//! The `request`, `finding` and `summary` lines, trace's and attach's.
use std::{borrow::Cow, collections::BTreeMap, fmt, net::SocketAddr};

use serde::{Serialize, Serializer, ser::SerializeMap};

use super::{Counts, LineType, Shown};
use crate::timeline::Evidence;

/// A `request` line: one core for every command, then what only the
/// command that wrote it knows (`E`: [`TraceOnly`] or [`AttachOnly`]). A
/// value the command cannot know is null, never absent.
#[derive(Serialize)]
pub struct RequestLine<'a, E> {
    pub bytes_received: Option<u64>,
    pub bytes_sent: Option<u64>,
    pub connection: Option<u64>,
    pub error: Option<&'a str>,
    pub http_version: Option<&'a str>,
    pub kernel_confirmed: bool,
    pub local_addr: Option<SocketAddr>,
    pub method: &'a str,
    pub phases_us: PhasesUs,
    pub remote_addr: Option<SocketAddr>,
    pub request: u64,
    pub reused: bool,
    /// The request that opened the connection this one reused.
    pub reused_from: Option<u64>,
    pub socket_cookie: Option<u64>,
    pub status: Option<u16>,
    #[serde(rename = "type")]
    pub line: LineType,
    pub url: Shown<Url<'a>>,
    /// Last, so that attach's hand-written encoder writes it last too.
    #[serde(flatten)]
    pub only: E,
}

/// What trace's own client alone knows of a request.
#[derive(Serialize)]
pub struct TraceOnly<'a> {
    pub body_bytes: u64,
    pub client_reused: Option<bool>,
    pub disagreement: Option<&'a str>,
    pub headers: Headers<'a>,
}

/// What attach and run alone know: whose request, and which way.
#[derive(Serialize)]
pub struct AttachOnly {
    pub direction: &'static str,
    pub pid: u32,
}

pub type TraceRequestLine<'a> = RequestLine<'a, TraceOnly<'a>>;
pub type AttachRequestLine<'a> = RequestLine<'a, AttachOnly>;

/// `http://host/path` (`https://` when read from a TLS library's
/// plaintext) when the Host header and an origin-form target are known,
/// else the target as it was sent.
pub struct Url<'a> {
    pub host: Option<&'a str>,
    pub target: &'a str,
    pub https: bool,
}

impl fmt::Display for Url<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        match self.host {
            Some(h) if self.target.starts_with('/') => {
                write!(f, "{scheme}://{h}{}", self.target)
            }
            _ => f.write_str(self.target),
        }
    }
}

/// httpstat's phases in µs; null when the phase did not happen or the
/// command cannot time it (attach has no DNS or TLS hooks).
#[derive(Serialize)]
pub struct PhasesUs {
    pub connect: Option<u64>,
    pub dns: Option<u64>,
    pub server: Option<u64>,
    pub tls: Option<u64>,
    pub total: Option<u64>,
    pub transfer: Option<u64>,
}

/// `{"Name": "value"}`; a header given twice has its values joined by ", ".
pub struct Headers<'a>(pub &'a [(String, String)]);

impl Serialize for Headers<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut joined: BTreeMap<&str, Cow<str>> = BTreeMap::new();
        for (name, value) in self.0 {
            joined
                .entry(name)
                .and_modify(|v| *v = Cow::Owned(format!("{v}, {value}")))
                .or_insert(Cow::Borrowed(value));
        }
        s.collect_map(joined)
    }
}

#[derive(Serialize)]
pub struct FindingLine<'a> {
    pub detail: &'a str,
    pub evidence: EvidenceMap<'a>,
    pub hint: &'a str,
    pub kind: &'static str,
    pub request: Option<u32>,
    pub socket_cookie: Option<u64>,
    #[serde(rename = "type")]
    pub line: LineType,
}

/// A finding's evidence, keys in name order.
pub struct EvidenceMap<'a>(pub &'a [(&'static str, Evidence)]);

impl Serialize for EvidenceMap<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut sorted: Vec<&(&str, Evidence)> = self.0.iter().collect();
        sorted.sort_by_key(|(k, _)| *k);
        let mut m = s.serialize_map(Some(sorted.len()))?;
        for (k, v) in sorted {
            match v {
                Evidence::Int(n) => m.serialize_entry(k, n)?,
                Evidence::Text(t) => m.serialize_entry(k, t)?,
                Evidence::Null => m.serialize_entry(k, &())?,
            }
        }
        m.end()
    }
}

#[derive(Serialize)]
pub struct TraceSummary<'a> {
    pub connections: usize,
    pub connections_opened: Option<usize>,
    pub connections_unused: Option<usize>,
    pub failed: usize,
    pub findings: Counts<'a, usize>,
    pub kernel: bool,
    pub lost_events: u64,
    pub requests: usize,
    pub reused: usize,
    #[serde(rename = "type")]
    pub line: LineType,
    pub verdict: &'static str,
}

/// attach's end. Requests, reuse and bytes are null, never 0, when no
/// send/recv events could be seen.
#[derive(Serialize)]
pub struct AttachSummary<'a> {
    pub connections: usize,
    /// Connections left out of `per_connection` (it lists at most 100).
    pub connections_unlisted: usize,
    pub ended: &'a str,
    pub findings: Counts<'a, usize>,
    pub lost_by_kind: Counts<'a, u64>,
    pub lost_events: u64,
    /// `--otlp`: spans the collector took, and spans dropped (queue full,
    /// collector slow or down).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_dropped: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub otlp_exported: Option<u64>,
    pub per_connection: Vec<ConnectionRecord>,
    pub per_process: Vec<ProcessRecord<'a>>,
    /// The one traced process; with several, `pids` names them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    pub pids: Vec<u32>,
    pub requests: Option<usize>,
    pub reused: Option<usize>,
    /// `--stat`: the endpoints over the whole run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stat: Option<Vec<super::EndpointRecord<'a>>>,
    #[serde(rename = "type")]
    pub line: LineType,
    pub unparsed: usize,
    pub verdict: &'a str,
}

#[derive(Serialize)]
pub struct ConnectionRecord {
    pub bytes_received: Option<u64>,
    pub bytes_sent: Option<u64>,
    pub closed: bool,
    pub connection: usize,
    pub encrypted: bool,
    pub local_addr: Option<SocketAddr>,
    /// A TLS connection whose requests were read from its library's
    /// plaintext (OpenSSL uprobes).
    pub plaintext: bool,
    pub preexisting: bool,
    pub remote_addr: Option<SocketAddr>,
    pub requests: Option<usize>,
    pub reused: Option<bool>,
    pub socket_cookie: u64,
    pub tls: Option<TlsRecord>,
}

#[derive(Serialize)]
pub struct ProcessRecord<'a> {
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub comm: Option<&'a str>,
    pub connections: usize,
    pub parent: Option<u32>,
    pub pid: u32,
    pub requests: usize,
    pub reused: usize,
}

/// attach's `connection` line (without `--events`): a connection seen to
/// open (`how`, `ret` of a connect, `error`) or close (what it carried).
#[derive(Serialize)]
pub struct ConnectionLine<'a> {
    #[serde(rename = "type")]
    pub line: LineType,
    pub event: &'a str,
    pub ts_ns: u64,
    pub offset_us: u64,
    pub connection: u64,
    pub socket_cookie: u64,
    pub pid: u32,
    pub local_addr: Option<SocketAddr>,
    pub remote_addr: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub how: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ret: Option<i32>,
    /// Open lines only: null, or why the connect failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Option<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_sent: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes_received: Option<u64>,
    /// Close lines only: the TLS handshake, null when not TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Option<TlsRecord>>,
}

/// A TLS connection's handshake as the kernel's bytes showed it; a figure
/// they did not show is null (`resumed`: "unknown").
#[derive(Clone, Copy, Serialize)]
pub struct TlsRecord {
    /// ClientHello to the flight with the handshake's last Finished.
    pub handshake_ms: Option<f64>,
    /// "yes", "no" or "unknown".
    pub resumed: &'static str,
    /// "client": the traced process sent the ClientHello; else "server".
    pub role: &'static str,
    /// ClientHello to the server's first flight (its hello).
    pub server_flight_ms: Option<f64>,
    /// "1.3", "1.2", ...
    pub version: Option<&'static str>,
}
