//! attach: three keep-alive requests on one connection and two with
//! `Connection: close` are reconstructed from the kernel alone, and a second
//! process making the same traffic is not reported.
use std::{collections::BTreeMap, process::Command, time::Duration};

use tracer_tests::{
    http,
    process::{Proc, attach, can_trace_or_skip, json_lines, of_type},
};

const TARGET: &str = env!("CARGO_BIN_EXE_http-target");

fn target(addr: &str, prefix: &str) -> Proc {
    Proc::spawn_ready(Command::new(TARGET).args(["keepalive", addr, prefix]))
}

#[test]
fn keepalive_and_close_requests_each_get_their_request() {
    if !can_trace_or_skip() {
        return;
    }
    let addr = http::serve("127.0.0.1:0").unwrap().to_string();
    let mut mine = target(&addr, "/mine");
    let mut other = target(&addr, "/other");
    let mut tracer = attach(mine.pid(), "json");

    other.send_line("go").unwrap();
    mine.send_line("go").unwrap();
    for p in [&mut mine, &mut other] {
        let status = p.wait_exit(Duration::from_secs(20));
        assert!(
            status.is_some_and(|s| s.success()),
            "target: {}",
            p.stderr()
        );
    }
    let status = tracer.wait_exit(Duration::from_secs(20));
    let (out, err) = (tracer.stdout(), tracer.stderr());
    assert_eq!(status.and_then(|s| s.code()), Some(0), "stderr: {err}");
    assert!(
        err.contains(&format!("process {} exited", mine.pid())),
        "{err}"
    );

    let lines = json_lines(&out);
    let requests = of_type(&lines, "request");
    let summary = of_type(&lines, "summary");
    assert_eq!(summary.len(), 1, "{out}");
    let s = summary[0];
    assert_eq!(
        (s["requests"].as_u64(), s["connections"].as_u64()),
        (Some(5), Some(3)),
        "{s}"
    );
    assert_eq!(s["reused"], 2, "{s}");
    assert_eq!(s["lost_events"], 0, "{s}");
    assert_eq!(s["verdict"], "mixed", "{s}");

    let paths: Vec<String> = requests
        .iter()
        .map(|r| {
            let url = r["url"].as_str().unwrap_or_default();
            assert_eq!(
                url,
                format!("http://{addr}{}", url.split(&addr).nth(1).unwrap_or("?"))
            );
            url.split(&addr).nth(1).unwrap_or_default().to_string()
        })
        .collect();
    assert_eq!(
        paths,
        [
            "/mine/keep/1",
            "/mine/keep/2",
            "/mine/keep/3",
            "/mine/close/4",
            "/mine/close/5"
        ]
    );
    for r in &requests {
        assert_eq!(
            (r["method"].as_str(), r["status"].as_u64()),
            (Some("GET"), Some(200)),
            "{r}"
        );
        assert_eq!(r["remote_addr"], addr.as_str(), "{r}");
        assert!(r["phases_us"]["total"].is_u64(), "{r}");
    }
    // Requests per socket: the keep-alive connection carries three.
    let mut per_cookie: BTreeMap<u64, Vec<bool>> = BTreeMap::new();
    for r in &requests {
        let cookie = r["socket_cookie"].as_u64().expect("cookie");
        per_cookie
            .entry(cookie)
            .or_default()
            .push(r["reused"] == true);
    }
    let mut shapes: Vec<Vec<bool>> = per_cookie.into_values().collect();
    shapes.sort();
    assert_eq!(shapes, [vec![false], vec![false], vec![false, true, true]]);
    assert_eq!(requests[0]["socket_cookie"], requests[2]["socket_cookie"]);

    // Nothing of the other process: no paths, no pids.
    assert!(
        !out.contains("/other"),
        "the untraced process leaked into the output"
    );
    let conns = of_type(&lines, "connection");
    assert!(!conns.is_empty(), "its connections open and close: {out}");
    for e in conns {
        assert_eq!(e["pid"], mine.pid(), "{e}");
    }
}
