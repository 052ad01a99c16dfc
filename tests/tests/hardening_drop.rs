//! Once the probes are attached, every thread of the tracer holds no
//! capability and has no_new_privs set, and tracing goes on regardless.
use std::{process::Command, time::Duration};

use tracer_tests::{
    http,
    http_server::{Behaviour, TestServer},
    process::{Proc, attach, can_trace_or_skip},
    tracer_bin::tracer_bin,
};

const TARGET: &str = env!("CARGO_BIN_EXE_http-target");

/// For each thread of `pid`, the status lines that say what it may do.
fn threads_holding_privilege(pid: u32) -> Vec<String> {
    let mut held = Vec::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
    for task in tasks.filter_map(Result::ok) {
        let Ok(status) = std::fs::read_to_string(task.path().join("status")) else {
            continue; // the thread ended
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .unwrap_or("?")
                .trim()
                .to_string()
        };
        let caps = ["CapEff:", "CapPrm:", "CapInh:", "CapAmb:", "CapBnd:"];
        if caps.iter().any(|c| field(c) != "0000000000000000") || field("NoNewPrivs:") != "1" {
            let shown: Vec<String> = caps
                .iter()
                .chain(&["NoNewPrivs:"])
                .map(|c| format!("{c} {}", field(c)))
                .collect();
            held.push(format!(
                "thread {:?}: {}",
                task.file_name(),
                shown.join(" ")
            ));
        }
    }
    held
}

#[test]
fn trace_holds_no_capability_while_requests_run() {
    if !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let mut tracer = Proc::spawn(Command::new(tracer_bin()).args([
        "trace",
        &server.url(),
        "-n",
        "2",
        "--interval",
        "1500",
    ]))
    .unwrap();
    for _ in 0..200 {
        if server.accepted() > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(server.accepted(), 1, "{}", tracer.stderr());
    assert_eq!(
        threads_holding_privilege(tracer.pid()),
        Vec::<String>::new()
    );
    let status = tracer.wait_exit(Duration::from_secs(20));
    let out = tracer.stdout();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{}",
        tracer.stderr()
    );
    // The second request, made without privilege, is still seen by the kernel.
    assert!(
        out.contains("verdict: request 2 reused the connection of request 1"),
        "{out}"
    );
    assert!(
        !tracer.stderr().contains("could not drop"),
        "{}",
        tracer.stderr()
    );
}

#[test]
fn attach_holds_no_capability_once_attached() {
    if !can_trace_or_skip() {
        return;
    }
    let addr = http::serve("127.0.0.1:0").unwrap().to_string();
    let mut target = Proc::spawn_ready(Command::new(TARGET).args(["keepalive", &addr, "/d"]));
    let mut tracer = attach(target.pid(), "text");
    assert_eq!(
        threads_holding_privilege(tracer.pid()),
        Vec::<String>::new()
    );
    target.go_and_succeed();
    let out = tracer.exit_0_stdout();
    assert!(
        out.contains("summary: 5 requests on 3 connections, 2 reused"),
        "{out}"
    );
}
