//! attach: a connection the target opened before the attach is recognised
//! from /proc, learns its cookie on first use, and its later requests are
//! reconstructed.
use std::process::Command;

use tracer_tests::{
    http,
    process::{Proc, attach, can_trace_or_skip, json_lines, of_type},
};

const TARGET: &str = env!("CARGO_BIN_EXE_http-target");

#[test]
fn requests_on_a_connection_opened_before_attach_are_attributed() {
    if !can_trace_or_skip() {
        return;
    }
    let addr = http::serve("127.0.0.1:0").unwrap().to_string();
    let mut target = Proc::spawn_ready(Command::new(TARGET).args(["preopened", &addr, "/pre"]));
    let mut tracer = attach(target.pid(), "json");
    // Seeded from /proc before any traffic.
    assert!(
        tracer.stderr().contains("existing connection fd="),
        "{}",
        tracer.stderr()
    );

    target.go_and_succeed();
    let lines = json_lines(&tracer.exit_0_stdout());
    let requests = of_type(&lines, "request");
    let urls: Vec<&str> = requests.iter().filter_map(|r| r["url"].as_str()).collect();
    assert_eq!(
        urls,
        [
            format!("http://{addr}/pre/after/1"),
            format!("http://{addr}/pre/after/2")
        ]
    );
    for r in &requests {
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(
            r["reused"], true,
            "the connection was not opened for it: {r}"
        );
    }
    assert_eq!(requests[0]["socket_cookie"], requests[1]["socket_cookie"]);
    let cookie = &requests[0]["socket_cookie"];
    // Never seen connecting: known only from /proc and its first send.
    let opened: Vec<_> = of_type(&lines, "connection")
        .into_iter()
        .filter(|e| e["event"] == "open" && &e["socket_cookie"] == cookie)
        .collect();
    assert_eq!(opened.len(), 1, "{opened:?}");
    assert_eq!(opened[0]["how"], "seen", "{}", opened[0]);
    let summary = of_type(&lines, "summary");
    let conns = summary[0]["per_connection"]
        .as_array()
        .expect("per_connection");
    assert_eq!(conns.len(), 1, "{}", summary[0]);
    assert_eq!(conns[0]["preexisting"], true);
    assert_eq!(conns[0]["requests"], 2);
    assert_eq!(&conns[0]["socket_cookie"], cookie);
}
