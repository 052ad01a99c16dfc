//! Faults: a server that stalls past --timeout, and a target killed while
//! attached. What was recorded is printed, with the documented exit code.
use std::{
    io::Read,
    net::TcpListener,
    process::Command,
    time::{Duration, Instant},
};

use tracer_tests::{
    http,
    process::{Proc, attach, can_trace_or_skip},
    tracer_bin::tracer,
};

const TARGET: &str = env!("CARGO_BIN_EXE_http-target");

#[test]
fn a_stalled_server_times_out_with_the_timeline_and_exit_1() {
    // Accepts and reads the request, then never answers (for 20 s at most).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            std::thread::sleep(Duration::from_secs(20));
        }
    });
    let kernel = can_trace_or_skip();
    let url = format!("http://{addr}/");
    let mut args = vec!["trace", &url, "--timeout", "1", "-n", "2"];
    if !kernel {
        args.push("--no-ebpf");
    }
    let started = Instant::now();
    let run = tracer(&args);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "bounded by --timeout"
    );
    let out = &run.stdout;
    assert!(out.contains("request 1"), "{out}");
    assert!(!out.contains("request 2"), "stops at the failure: {out}");
    let failed = out
        .lines()
        .find(|l| l.trim_start().starts_with("failed:"))
        .unwrap_or_else(|| panic!("no failed line: {out}"));
    assert!(failed.contains("timed out"), "{failed}");
    if kernel {
        // The kernel saw the connection and the request go out.
        assert!(out.contains("kernel  connect fd="), "{out}");
        assert!(out.contains("kernel  send "), "{out}");
    }
}

#[test]
fn a_target_killed_mid_attach_ends_with_a_summary_and_exit_0() {
    if !can_trace_or_skip() {
        return;
    }
    let addr = http::serve("127.0.0.1:0").unwrap().to_string();
    let mut target = Proc::spawn_ready(Command::new(TARGET).args(["keepalive", &addr, "/k"]));
    let mut tracer = attach(target.pid(), "text");
    target.child.kill().unwrap();
    let _ = target.wait_exit(Duration::from_secs(5));
    let status = tracer.wait_exit(Duration::from_secs(10));
    let out = tracer.stdout();
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{out}{}",
        tracer.stderr()
    );
    assert!(out.contains("summary: 0 requests"), "{out}");
    assert!(
        out.trim_end()
            .ends_with(&format!("process {} exited", target.pid())),
        "{out}"
    );
}
