//! Hand-made requests and kernel events for the timeline's unit tests.
use std::net::SocketAddr;

use super::RequestInfo;
use crate::probes::{KernelDetail, KernelEvent};

pub(crate) const SERVER: &str = "127.0.0.1:8080";

pub(crate) fn addr(s: &str) -> SocketAddr {
    s.parse().expect("address")
}

/// A GET to [`SERVER`] from `local` that ended 900 ns after `start_ns`.
pub(crate) fn request(number: u32, start_ns: u64, local: &str, reused: bool) -> RequestInfo {
    RequestInfo {
        number,
        method: "GET".into(),
        url: format!("http://{SERVER}/"),
        status: Some(200),
        local_addr: Some(addr(local)),
        remote_addr: Some(addr(SERVER)),
        client_reused: Some(reused),
        start_ns,
        end_ns: start_ns + 900,
        ..RequestInfo::default()
    }
}

pub(crate) fn kernel(ts_ns: u64, cookie: u64, what: KernelDetail) -> KernelEvent {
    KernelEvent {
        ts_ns,
        tgid: 1,
        tid: 1,
        cookie,
        what,
    }
}
