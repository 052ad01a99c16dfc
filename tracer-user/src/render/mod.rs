//! Output: text for people, JSON Lines for machines, Chrome trace events.
mod check;
mod chrome;
mod json;
mod text;

pub use check::check_table;
pub use chrome::chrome;
pub use json::{FieldSink, JsonLine, json_lines, kernel_fields};
pub use text::{TextStyle, count, text};

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
    let udp = |p: u16| if p == IPPROTO_UDP { " udp" } else { "" };
    match k {
        KernelDetail::Connect {
            fd, ret, remote, ..
        } => {
            let fd = if *fd >= 0 {
                format!("fd={fd} ")
            } else {
                String::new()
            };
            match *ret {
                0 => format!("{fd}-> {remote}"),
                CONNECT_ABANDONED => format!("{fd}-> {remote} closed before the handshake ended"),
                err => format!("{fd}-> {remote} failed: {}", errno_text(-err)),
            }
        }
        KernelDetail::State { old, new, .. } => {
            format!("{} -> {}", tcp_state::name(*old), tcp_state::name(*new))
        }
        KernelDetail::Send { bytes, protocol } | KernelDetail::Recv { bytes, protocol } => {
            if *bytes >= 0 {
                format!("{bytes} B{}", udp(*protocol))
            } else {
                format!("failed: {}{}", errno_text(-bytes), udp(*protocol))
            }
        }
        KernelDetail::Close { fd } => format!("fd={fd}"),
        KernelDetail::Destroy => "socket freed".to_string(),
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
            format!("first seen {local} -> {remote} {proto}")
        }
        KernelDetail::Payload { len, .. } => format!("{len} B"),
        KernelDetail::DnsStart { host } => format!("getaddrinfo {host}"),
        KernelDetail::DnsDone {
            host,
            ret,
            duration_ns,
        } => {
            let result = if *ret == 0 {
                "ok".to_string()
            } else {
                format!("error {ret}")
            };
            format!(
                "getaddrinfo {host} -> {result} in {:.3} ms",
                ms(*duration_ns)
            )
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
