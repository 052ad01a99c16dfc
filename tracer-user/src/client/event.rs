//! The client's hook events, named after Go's `httptrace.ClientTrace`.

use std::net::{IpAddr, SocketAddr};

/// One hook firing: which request, when (CLOCK_MONOTONIC ns, the clock of
/// `bpf_ktime_get_ns`), and what the client saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientEvent {
    /// The request this event belongs to; 0 when a connection-level hook
    /// fired outside any [`with_request`](super::with_request) scope.
    pub request: u32,
    pub ts_ns: u64,
    pub hook: Hook,
    /// The time was decided after the fact, not taken where the hook
    /// happened: a reused connection's `GotConn` (hyper takes it from its
    /// pool unseen) and `PutIdleConn` (hyper returns it from its own task).
    pub derived: bool,
}

/// What happened. Go's hook names where Go has one; the client's own
/// `GotResponseHeaders`, `BodyDone` and `RequestError` otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Hook {
    /// The request starts looking for a connection to `host_port`.
    GetConn {
        host_port: String,
    },
    DNSStart {
        host: String,
    },
    /// Resolution finished: the addresses in the order the connector tries
    /// them, or the resolver's error.
    DNSDone {
        addrs: Vec<IpAddr>,
        error: Option<String>,
    },
    /// The TCP connect began; `addr` is the first address the connector
    /// tries (see the module docs for what is and is not visible).
    ConnectStart {
        addr: SocketAddr,
    },
    /// The TCP connect ended; `addr` is the address the socket reached (or,
    /// on failure, the one in `ConnectStart`).
    ConnectDone {
        addr: SocketAddr,
        local_addr: Option<SocketAddr>,
        error: Option<String>,
    },
    TLSHandshakeStart {
        server_name: String,
    },
    /// `alpn` is `Some("h2")` when the server chose h2; `None` means it did
    /// not (http/1.1 or no ALPN: reqwest exposes only that bit).
    TLSHandshakeDone {
        alpn: Option<String>,
        error: Option<String>,
    },
    /// The connection that carried the response: `reused` if it had carried
    /// an earlier response of this client, `was_idle` if it sat in the pool.
    GotConn {
        reused: bool,
        was_idle: bool,
        idle_time_ns: Option<u64>,
        local_addr: Option<SocketAddr>,
        remote_addr: Option<SocketAddr>,
    },
    /// The request's header block was handed to TLS (HTTPS only: see
    /// `WroteRequest`).
    WroteHeaders,
    /// The request's last byte was handed to TLS. On plain HTTP the
    /// kernel's first send of the request says the same, exactly.
    WroteRequest,
    /// The response's first record was decrypted for the client.
    GotFirstResponseByte,
    /// reqwest's response future resolved: status line and headers are in.
    GotResponseHeaders {
        status: u16,
        version: String,
    },
    /// The body was read to its end.
    BodyDone {
        bytes: u64,
    },
    /// Body fully read and the protocol keeps the connection open, so hyper
    /// returns it to the pool (HTTP/1.1 keep-alive, or HTTP/2).
    PutIdleConn {
        error: Option<String>,
    },
    RequestError {
        message: String,
    },
}

impl Hook {
    /// The hook's name: Go's spelling for Go's hooks.
    pub fn name(&self) -> &'static str {
        match self {
            Hook::GetConn { .. } => "GetConn",
            Hook::DNSStart { .. } => "DNSStart",
            Hook::DNSDone { .. } => "DNSDone",
            Hook::ConnectStart { .. } => "ConnectStart",
            Hook::ConnectDone { .. } => "ConnectDone",
            Hook::TLSHandshakeStart { .. } => "TLSHandshakeStart",
            Hook::TLSHandshakeDone { .. } => "TLSHandshakeDone",
            Hook::GotConn { .. } => "GotConn",
            Hook::WroteHeaders => "WroteHeaders",
            Hook::WroteRequest => "WroteRequest",
            Hook::GotFirstResponseByte => "GotFirstResponseByte",
            Hook::GotResponseHeaders { .. } => "GotResponseHeaders",
            Hook::BodyDone { .. } => "BodyDone",
            Hook::PutIdleConn { .. } => "PutIdleConn",
            Hook::RequestError { .. } => "RequestError",
        }
    }

    /// A short text for people, e.g. `127.0.0.1:8080` or `reused idle 1.2ms`.
    pub fn detail(&self) -> String {
        match self {
            Hook::GetConn { host_port } => host_port.clone(),
            Hook::DNSStart { host } => host.clone(),
            Hook::DNSDone { error: Some(e), .. } => format!("error: {e}"),
            Hook::DNSDone { addrs, .. } => join(addrs),
            Hook::ConnectStart { addr } => addr.to_string(),
            Hook::ConnectDone {
                addr, error: None, ..
            } => addr.to_string(),
            Hook::ConnectDone {
                addr,
                error: Some(e),
                ..
            } => format!("{addr} error: {e}"),
            Hook::TLSHandshakeStart { server_name } => server_name.clone(),
            Hook::TLSHandshakeDone { error: Some(e), .. } => format!("error: {e}"),
            Hook::TLSHandshakeDone { alpn, .. } => match alpn {
                Some(p) => format!("alpn {p}"),
                None => "no h2".to_string(),
            },
            Hook::GotConn {
                reused,
                was_idle,
                idle_time_ns,
                local_addr,
                ..
            } => got_conn_detail(*reused, *was_idle, *idle_time_ns, *local_addr),
            Hook::GotResponseHeaders { status, version } => format!("{version} {status}"),
            Hook::WroteHeaders | Hook::WroteRequest | Hook::GotFirstResponseByte => String::new(),
            Hook::BodyDone { bytes } => format!("{bytes} B"),
            Hook::PutIdleConn { error: None } => String::new(),
            Hook::PutIdleConn { error: Some(e) } => format!("error: {e}"),
            Hook::RequestError { message } => message.clone(),
        }
    }
}

fn join(addrs: &[IpAddr]) -> String {
    let texts: Vec<String> = addrs.iter().map(IpAddr::to_string).collect();
    texts.join(", ")
}

fn got_conn_detail(
    reused: bool,
    was_idle: bool,
    idle_time_ns: Option<u64>,
    local: Option<SocketAddr>,
) -> String {
    let mut text = String::from(if reused { "reused" } else { "new" });
    if was_idle {
        text.push_str(" idle");
        if let Some(ns) = idle_time_ns {
            text.push_str(&format!(" {:.1}ms", ns as f64 / 1e6));
        }
    }
    if let Some(local) = local {
        text.push_str(&format!(" local {local}"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn got_conn_detail_reads_like_go() {
        let hook = Hook::GotConn {
            reused: true,
            was_idle: true,
            idle_time_ns: Some(1_200_000),
            local_addr: None,
            remote_addr: None,
        };
        assert_eq!(hook.name(), "GotConn");
        assert_eq!(hook.detail(), "reused idle 1.2ms");
    }

    #[test]
    fn connect_done_detail_names_the_error() {
        let hook = Hook::ConnectDone {
            addr: "127.0.0.1:1".parse().expect("literal address"),
            local_addr: None,
            error: Some("Connection refused".into()),
        };
        assert_eq!(hook.detail(), "127.0.0.1:1 error: Connection refused");
    }
}
