use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::attach::conns::Connection;

fn send(ts_ns: u64, tid: u32, cookie: u64) -> KernelEvent {
    KernelEvent {
        ts_ns,
        tgid: 1,
        tid,
        cookie,
        what: KernelDetail::Send {
            bytes: 78,
            protocol: 6,
        },
    }
}

fn written(out: &Output) -> String {
    String::from_utf8_lossy(&out.buf).into_owned()
}

/// Text lines, written piece by piece, read as the `format!`s made them.
#[test]
fn text_event_lines_keep_their_layout() {
    let mut out = Output::new(Format::Text, 1, 1_000_000).events(true);
    let mut t = Tracker::new(Vec::new());
    for ev in [send(2_234_567, 7, 9), send(3_000_000, 0, 0)] {
        let fx = t.handle(&ev);
        out.event(&ev, &fx, &t);
    }
    assert_eq!(
        written(&out),
        "     1.235 ms  conn 1   send 78 B  cookie=9  tid=7\n     2.000 ms          send 78 B\n"
    );
}

#[test]
fn json_event_lines_end_with_their_request() {
    let mut out = Output::new(Format::Json, 1, 0).events(true);
    let mut t = Tracker::new(Vec::new());
    let ev = send(5_000, 7, 9);
    let fx = t.handle(&ev);
    out.event(&ev, &fx, &t);
    assert_eq!(
        written(&out),
        concat!(
            r#"{"type":"event","source":"kernel","name":"send","ts_ns":5000,"offset_us":5,"#,
            r#""socket_cookie":9,"pid":1,"connection":1,"detail":"78 B","tid":7,"bytes":78,"#,
            r#""protocol":"tcp","request":null}"#,
            "\n"
        )
    );
}

fn request(target: &str, host: Option<&str>, version: &str) -> Request {
    Request {
        number: 2,
        connection: 0,
        cookie: 9,
        method: "GET",
        target: target.to_string(),
        host: host.map(str::to_string),
        version: version.to_string().into(),
        outbound: true,
        status: Some(200),
        interim: None,
        start_ns: 1_000_000,
        request_end_ns: Some(1_000_000),
        first_byte_ns: Some(1_250_000),
        last_byte_ns: Some(1_400_000),
        bytes_sent: 78,
        bytes_received: 120,
        reused: true,
        reused_from: Some(1),
        connect_ns: None,
    }
}

fn conn() -> Connection {
    Connection {
        number: 1,
        local: Some("127.0.0.1:50312".parse().unwrap_or_else(|_| unreachable!())),
        ..Connection::default()
    }
}

#[test]
fn json_request_lines_keep_their_sorted_keys() {
    let line = crate::render::records::to_line(&json::request_line(
        &request("/a", Some("h:80"), "HTTP/1.1"),
        &conn(),
        7,
    ));
    // The core, sorted, then what attach alone knows.
    assert_eq!(
        line,
        concat!(
            r#"{"bytes_received":120,"bytes_sent":78,"connection":1,"error":null,"#,
            r#""http_version":"HTTP/1.1","kernel_confirmed":true,"local_addr":"127.0.0.1:50312","#,
            r#""method":"GET","phases_us":{"connect":null,"dns":null,"server":250,"tls":null,"#,
            r#""total":400,"transfer":150},"remote_addr":null,"request":2,"reused":true,"#,
            r#""reused_from":1,"socket_cookie":9,"status":200,"type":"request","#,
            r#""url":"http://h:80/a","direction":"outbound","pid":7}"#
        )
    );
}

/// Every command's request line carries the same core keys.
#[test]
fn trace_and_attach_request_lines_share_their_core() {
    use std::collections::BTreeSet;
    let keys = |line: String| -> BTreeSet<String> {
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let attach = keys(crate::render::records::to_line(&json::request_line(
        &request("/a", Some("h:80"), "HTTP/1.1"),
        &conn(),
        7,
    )));
    let t = crate::timeline::RequestTimeline {
        info: crate::timeline::RequestInfo::default(),
        cookie: None,
        events: Vec::new(),
        verdict: Default::default(),
        phases: Default::default(),
    };
    let trace = keys(crate::render::records::to_line(
        &crate::render::trace_request_line(&t, false, &mut Vec::new()),
    ));
    let core: BTreeSet<String> = [
        "request",
        "connection",
        "method",
        "url",
        "status",
        "http_version",
        "reused",
        "reused_from",
        "socket_cookie",
        "local_addr",
        "remote_addr",
        "phases_us",
        "bytes_sent",
        "bytes_received",
        "kernel_confirmed",
        "error",
        "type",
    ]
    .map(String::from)
    .into();
    let only = |all: &BTreeSet<String>| -> Vec<String> { all.difference(&core).cloned().collect() };
    assert!(core.is_subset(&attach), "{attach:?}");
    assert!(core.is_subset(&trace), "{trace:?}");
    assert_eq!(only(&attach), ["direction", "pid"]);
    assert_eq!(
        only(&trace),
        ["body_bytes", "client_reused", "disagreement", "headers"]
    );
}

#[test]
fn the_json_summary_names_one_process_and_says_unknown_as_null() {
    let t = Tracker::new(Vec::new());
    let mut out = Output::new(Format::Json, 42, 0);
    out.io_unknown = true;
    out.summary(&t, &[("send", 3), ("recv", 2)], "duration");
    let v: Value = serde_json::from_str(written(&out).trim_end()).unwrap_or_default();
    assert_eq!(v["type"], "summary");
    assert_eq!(v["pid"], 42);
    assert_eq!(v["requests"], Value::Null);
    assert_eq!(v["verdict"], "unknown");
    assert_eq!(v["lost_events"], 5);
    assert_eq!(v["lost_by_kind"], serde_json::json!({"send": 3, "recv": 2}));
    assert_eq!(v["findings"], serde_json::json!({}));
}

proptest! {
    /// Any text a process sent (target, Host, version) comes back out of
    /// the line as it went in.
    #[test]
    fn request_text_is_escaped_whatever_it_holds(target in any::<String>(), host in proptest::option::of(any::<String>()), version in any::<String>(), slash in any::<bool>()) {
        let target = if slash { format!("/{target}") } else { target };
        let r = request(&target, host.as_deref(), &version);
        let line = crate::render::records::to_line(&json::request_line(&r, &conn(), 7));
        let v: Value = serde_json::from_str(&line).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let url = match &host {
            Some(h) if target.starts_with('/') => format!("http://{h}{target}"),
            _ => target.clone(),
        };
        prop_assert_eq!(&v["url"], &Value::from(url));
        prop_assert_eq!(&v["http_version"], &Value::from(version));
    }
}

/// `--stat`: requests are counted, not written; the end writes the last
/// interval's `stat` line and the whole run's table in the summary.
#[test]
fn stat_counts_requests_per_endpoint_instead_of_lines() {
    let t = Tracker::new(Vec::new());
    let mut out = Output::new(Format::Json, 1, 0).stat();
    for target in ["/u/1?x", "/u/2", "/health"] {
        out.request(&request(target, None, "HTTP/1.1"), &t);
    }
    assert!(out.buf.is_empty(), "no request lines");
    out.summary(&t, &[], "duration");
    let text = written(&out);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_default())
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0]["type"], "stat");
    let counts = |v: &Value| -> Vec<(String, u64)> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["endpoint"].as_str().unwrap_or_default().to_string(),
                    e["count"].as_u64().unwrap_or(0),
                )
            })
            .collect()
    };
    let want = vec![
        ("GET /u/{id}".to_string(), 2),
        ("GET /health".to_string(), 1),
    ];
    assert_eq!(counts(&lines[0]["endpoints"]), want);
    assert_eq!(lines[0]["endpoints"][0]["reused_connections"], 2);
    assert_eq!(lines[1]["type"], "summary");
    assert_eq!(counts(&lines[1]["stat"]), want);
}

#[test]
fn without_stat_the_summary_has_no_stat_key() {
    let t = Tracker::new(Vec::new());
    let mut out = Output::new(Format::Json, 1, 0);
    out.summary(&t, &[], "duration");
    let v: Value = serde_json::from_str(written(&out).trim_end()).unwrap_or_default();
    assert_eq!(v.get("stat"), None);
}

/// Without `--events`, a connection's kernel events show as one line when
/// it opens and one when it closes, with what it carried; its I/O does not.
#[test]
fn by_default_a_connection_is_a_line_when_it_opens_and_when_it_closes() {
    let mut out = Output::new(Format::Json, 1, 0);
    let mut t = Tracker::new(Vec::new());
    let at = |ts_ns, what| KernelEvent {
        ts_ns,
        tgid: 1,
        tid: 2,
        cookie: 9,
        what,
    };
    let remote: std::net::SocketAddr = "127.0.0.1:80".parse().unwrap();
    let connect = KernelDetail::Connect {
        fd: 3,
        ret: 0,
        remote,
        duration_ns: 10,
    };
    for ev in [
        at(1_000, connect),
        send(2_000, 2, 9),
        at(3_000, KernelDetail::Close { fd: 3 }),
        at(4_000, KernelDetail::Destroy),
    ] {
        let fx = t.handle(&ev);
        out.event(&ev, &fx, &t);
    }
    let lines: Vec<Value> = written(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let (open, close) = (&lines[0], &lines[1]);
    assert_eq!(
        (
            &open["type"],
            &open["event"],
            &open["how"],
            &open["ret"],
            &open["error"]
        ),
        (
            &"connection".into(),
            &"open".into(),
            &"connect".into(),
            &0.into(),
            &Value::Null
        )
    );
    assert_eq!(open["remote_addr"], "127.0.0.1:80");
    assert_eq!(
        (&close["event"], &close["bytes_sent"], &close["ts_ns"]),
        (&"close".into(), &78.into(), &3000.into())
    );
    assert_eq!(close.get("how"), None);
}
