//! Output: text for people, JSON Lines for machines, Chrome trace events.
mod check;
mod chrome;
mod json;
pub mod records;
mod text;

pub use check::check_table;
pub use chrome::{ChromeEvent, ChromeTrace, chrome, track_name};
#[cfg(test)]
pub use json::request as trace_request_line;
pub use json::{finding as finding_json, json_lines};
pub use text::{TextStyle, count, finding_line, text};

use std::fmt;

use crate::probes::KernelDetail;
use tracer_ebpf::{CONNECT_ABANDONED, IPPROTO_UDP, tcp_state};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Merged timeline for people.
    Text,
    /// JSON Lines: event, request and summary objects.
    Json,
    /// Trace Event Format (Perfetto, chrome://tracing).
    Chrome,
}

/// A short text for a kernel event, without its cookie.
pub fn kernel_detail(k: &KernelDetail) -> String {
    KernelDetailText(k).to_string()
}

/// [`kernel_detail`] as `Display`, so that a line can be written without
/// a `String` for it (attach writes one per event).
pub struct KernelDetailText<'a>(pub &'a KernelDetail);

impl fmt::Display for KernelDetailText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let udp = |p: u16| if p == IPPROTO_UDP { " udp" } else { "" };
        match self.0 {
            KernelDetail::Connect {
                fd, ret, remote, ..
            } => {
                // -1: not known on this architecture.
                if *fd >= 0 {
                    write!(f, "fd={fd} ")?;
                }
                match *ret {
                    0 => write!(f, "-> {remote}"),
                    CONNECT_ABANDONED => {
                        write!(f, "-> {remote} closed before the handshake ended")
                    }
                    err => write!(f, "-> {remote} failed: {}", errno_text(-err)),
                }
            }
            KernelDetail::State { old, new, .. } => {
                write!(f, "{} -> {}", tcp_state::name(*old), tcp_state::name(*new))
            }
            KernelDetail::Send { bytes, protocol } | KernelDetail::Recv { bytes, protocol } => {
                if *bytes >= 0 {
                    write!(f, "{bytes} B{}", udp(*protocol))
                } else {
                    write!(f, "failed: {}{}", errno_text(-bytes), udp(*protocol))
                }
            }
            KernelDetail::Close { fd } => write!(f, "fd={fd}"),
            KernelDetail::Destroy => f.write_str("socket freed"),
            KernelDetail::Retransmit { state } => {
                write!(f, "segment sent again ({})", tcp_state::name(*state))
            }
            KernelDetail::Reset { sent, state } => {
                let way = if *sent { "sent" } else { "received" };
                write!(f, "{way} ({})", tcp_state::name(*state))
            }
            KernelDetail::Socket {
                local,
                remote,
                protocol,
            } => {
                let proto = if *protocol == IPPROTO_UDP {
                    "udp"
                } else {
                    "tcp"
                };
                write!(f, "first seen {local} -> {remote} {proto}")
            }
            KernelDetail::Payload { len, .. } => write!(f, "{len} B"),
            KernelDetail::Plaintext { len, .. } => write!(f, "{len} B plaintext"),
            KernelDetail::SegmentEnd(s) => write!(f, "{} B in {} I/Os", s.bytes, s.ios),
            KernelDetail::DnsStart { host } => write!(f, "getaddrinfo {host}"),
            KernelDetail::DnsDone {
                host,
                ret,
                duration_ns,
            } => {
                write!(f, "getaddrinfo {host} -> ")?;
                if *ret == 0 {
                    f.write_str("ok")?;
                } else {
                    write!(f, "error {ret}")?;
                }
                write!(f, " in {:.3} ms", ms(*duration_ns))
            }
        }
    }
}

fn errno_text(errno: i32) -> String {
    let msg = std::io::Error::from_raw_os_error(errno).to_string();
    // "Connection refused (os error 111)" -> "Connection refused (errno 111)"
    msg.replace("os error", "errno")
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// `-o FILE`: created or truncated, as a shell's `>` would.
pub fn open_output(path: &std::path::Path) -> Result<Box<dyn std::io::Write + Send>, String> {
    std::fs::File::create(path)
        .map(|f| Box::new(std::io::BufWriter::new(f)) as Box<dyn std::io::Write + Send>)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connect(fd: i32, ret: i32) -> String {
        kernel_detail(&KernelDetail::Connect {
            fd,
            ret,
            remote: "127.0.0.1:8080".parse().unwrap(),
            duration_ns: 1,
        })
    }

    #[test]
    fn a_connect_says_how_its_handshake_ended() {
        assert_eq!(connect(9, 0), "fd=9 -> 127.0.0.1:8080");
        assert_eq!(
            connect(9, -111),
            "fd=9 -> 127.0.0.1:8080 failed: Connection refused (errno 111)"
        );
        assert_eq!(
            connect(9, CONNECT_ABANDONED),
            "fd=9 -> 127.0.0.1:8080 closed before the handshake ended"
        );
        assert_eq!(
            connect(-1, 0),
            "-> 127.0.0.1:8080",
            "an unknown fd is left out"
        );
    }
}
