//! attach's JSON `event` and `request` lines (the kernel fields come from
//! render), written field by field with no `serde_json::Value` in between.
use super::conns::{Connection, Request};
use crate::{
    probes::KernelEvent,
    render::{FieldSink, JsonLine, kernel_fields},
};

pub fn us(ns: u64) -> u64 {
    ns / 1000
}

/// The contract's `event` line for a kernel event (without `request`).
pub fn event_fields(
    m: &mut impl FieldSink,
    ev: &KernelEvent,
    conn: Option<&Connection>,
    start_ns: u64,
) {
    m.str("type", "event");
    m.str("source", "kernel");
    m.str("name", ev.name());
    m.u64("ts_ns", ev.ts_ns);
    m.u64("offset_us", us(ev.ts_ns.saturating_sub(start_ns)));
    m.opt_u64("socket_cookie", (ev.cookie != 0).then_some(ev.cookie));
    m.u64("pid", ev.tgid.into());
    m.opt_u64("connection", conn.map(|c| c.number as u64));
    kernel_fields(m, &ev.what, ev.tid);
}

/// A reconstructed request. The keys are in the sorted order that
/// `serde_json`'s map gave this line when it was built as one.
pub fn request_fields(m: &mut JsonLine<'_>, r: &Request, c: &Connection, pid: u32) {
    let fb = r.first_byte_ns.map(|f| f.saturating_sub(r.start_ns));
    let total = r.last_byte_ns.unwrap_or(r.start_ns).max(r.start_ns) - r.start_ns;
    m.u64("bytes_received", r.bytes_received);
    m.u64("bytes_sent", r.bytes_sent);
    m.u64("connection", c.number as u64);
    m.str("direction", if r.outbound { "outbound" } else { "inbound" });
    m.str("http_version", &r.version);
    m.bool("kernel_confirmed", true);
    m.opt_display("local_addr", c.local.as_ref().map(|a| a as _));
    m.str("method", r.method);
    m.object("phases_us", |p| {
        p.opt_u64("server", fb.map(us));
        p.u64("total", us(total));
        p.opt_u64("transfer", fb.map(|f| us(total.saturating_sub(f))));
    });
    m.u64("pid", pid.into());
    m.opt_display("remote_addr", c.remote.as_ref().map(|a| a as _));
    m.u64("request", r.number as u64);
    m.bool("reused", r.reused);
    m.u64("socket_cookie", r.cookie);
    m.opt_u64("status", r.status.map(u64::from));
    m.str("type", "request");
    match &r.host {
        Some(h) if r.target.starts_with('/') => {
            m.display("url", &format_args!("http://{h}{}", r.target));
        }
        _ => m.str("url", &r.target),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use crate::render::reference::{Fields, socket_addr};

    /// The request line as it was built before: one `json!` map.
    fn request_before(r: &Request, c: &Connection, pid: u32) -> String {
        let fb = r.first_byte_ns.map(|f| f.saturating_sub(r.start_ns));
        let end = r.last_byte_ns.unwrap_or(r.start_ns).max(r.start_ns);
        let total = end - r.start_ns;
        let url = match &r.host {
            Some(h) if r.target.starts_with('/') => format!("http://{h}{}", r.target),
            _ => r.target.clone(),
        };
        json!({
            "type": "request", "request": r.number, "method": r.method, "url": url,
            "status": r.status, "http_version": r.version,
            "local_addr": c.local.map(|a| a.to_string()),
            "remote_addr": c.remote.map(|a| a.to_string()),
            "socket_cookie": r.cookie, "connection": c.number, "pid": pid,
            "reused": r.reused, "kernel_confirmed": true,
            "direction": if r.outbound { "outbound" } else { "inbound" },
            "bytes_sent": r.bytes_sent, "bytes_received": r.bytes_received,
            "phases_us": {
                "server": fb.map(us),
                "transfer": fb.map(|f| us(total.saturating_sub(f))),
                "total": us(total),
            },
        })
        .to_string()
    }

    fn request() -> impl Strategy<Value = Request> {
        (
            (
                1usize..1 << 40,
                any::<u64>(),
                proptest::sample::select(super::super::http::METHODS),
                any::<String>(),
            ),
            (
                proptest::option::of(any::<String>()),
                "HTTP/1\\.[0-9a-z]{0,3}|",
                any::<bool>(),
                proptest::option::of(any::<u16>()),
            ),
            (
                any::<u64>(),
                proptest::option::of(any::<u64>()),
                proptest::option::of(any::<u64>()),
            ),
            (any::<u64>(), any::<u64>(), any::<bool>()),
        )
            .prop_map(
                |(
                    (number, cookie, method, target),
                    (host, version, outbound, status),
                    (start_ns, first_byte_ns, last_byte_ns),
                    (bytes_sent, bytes_received, reused),
                )| Request {
                    number,
                    connection: 0,
                    cookie,
                    method,
                    // Half the targets are paths, so that the url joins the host.
                    target: if number % 2 == 0 {
                        format!("/{target}")
                    } else {
                        target
                    },
                    host,
                    version,
                    outbound,
                    status,
                    interim: None,
                    start_ns,
                    first_byte_ns,
                    last_byte_ns,
                    bytes_sent,
                    bytes_received,
                    reused,
                },
            )
    }

    proptest! {
        /// An event line, fields and order, is what the `json!` values
        /// of each field made before.
        #[test]
        fn event_lines_are_written_as_before(
            what in crate::render::reference::kernel_detail_strategy(),
            (ts_ns, start_ns, tgid, tid) in (any::<u64>(), any::<u64>(), any::<u32>(), any::<u32>()),
            cookie in prop_oneof![Just(0u64), any::<u64>()],
            number in proptest::option::of(1usize..1 << 40),
            request in proptest::option::of(1usize..1 << 40),
        ) {
            let ev = KernelEvent { ts_ns, tgid, tid, cookie, what };
            let conn = number.map(|number| Connection { number, ..Connection::default() });
            let mut buf = Vec::new();
            let mut line = JsonLine::new(&mut buf);
            event_fields(&mut line, &ev, conn.as_ref(), start_ns);
            line.opt_u64("request", request.map(|r| r as u64));
            line.end();
            let mut before = Fields::default();
            before.put("type", json!("event"));
            before.put("source", json!("kernel"));
            before.put("name", json!(ev.name()));
            before.put("ts_ns", json!(ev.ts_ns));
            before.put("offset_us", json!(us(ev.ts_ns.saturating_sub(start_ns))));
            before.put("socket_cookie", json!((ev.cookie != 0).then_some(ev.cookie)));
            before.put("pid", json!(ev.tgid));
            before.put("connection", json!(number));
            crate::render::reference::kernel_fields(&mut before, &ev.what, ev.tid);
            before.put("request", json!(request));
            prop_assert_eq!(String::from_utf8(buf).unwrap_or_default(), before.line());
        }

        /// Written field by field, the request line is the same bytes as
        /// the map it used to be.
        #[test]
        fn request_lines_are_written_as_before(
            r in request(),
            number in 1usize..1 << 40,
            local in proptest::option::of(socket_addr()),
            remote in proptest::option::of(socket_addr()),
            pid in any::<u32>(),
        ) {
            let c = Connection { number, local, remote, ..Connection::default() };
            let mut buf = Vec::new();
            let mut line = JsonLine::new(&mut buf);
            request_fields(&mut line, &r, &c, pid);
            line.end();
            prop_assert_eq!(String::from_utf8(buf).unwrap_or_default(), request_before(&r, &c, pid));
        }
    }
}
