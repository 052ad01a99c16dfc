//! `tracer run` and the set of traced processes: a child that outlives the
//! command is waited for, a thread's exit is not its process's, and
//! `--no-follow` leaves the children alone.
use std::process::Command;

use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip, of_type},
    run_cmd::{have, run_bounded, run_json},
};

#[test]
fn a_child_that_outlives_the_command_is_waited_for_and_then_let_go() {
    if !can_trace_or_skip() {
        return;
    }
    let started = std::time::Instant::now();
    let run = run_bounded(20, &["run", "--", "sh", "-c", "sleep 1 & exit 4"]);
    let took = started.elapsed();
    assert_eq!(run.code, 4, "the command's code: {}", run.stderr);
    assert!(took.as_millis() >= 900, "ended before the child: {took:?}");
    assert!(
        run.stderr
            .contains("exited with 4; still tracing 1 process it started"),
        "{}",
        run.stderr
    );
    println!(
        "saw: ended after {took:?}: {}",
        run.stderr.lines().last().unwrap_or("")
    );
}

/// A thread that exits is not its process: the process stays traced. The
/// kernel drops a process when its last thread exits, not its first.
#[test]
fn a_thread_exiting_leaves_its_process_traced() {
    if !can_trace_or_skip() {
        return;
    }
    if Command::new("python3").arg("--version").output().is_err() {
        println!("skipped: python3 not installed");
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let script = format!(
        "import threading, urllib.request\n\
         for _ in range(3):\n    t = threading.Thread(target=lambda: None); t.start(); t.join()\n\
         urllib.request.urlopen('{}').read()\n",
        server.url()
    );
    let (run, lines) = run_json("thread", &["--", "python3", "-c", &script]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let requests = of_type(&lines, "request");
    assert_eq!(requests.len(), 1, "{}", run.stderr);
    assert_eq!(server.accepted(), 1);
}

#[test]
fn no_follow_traces_the_command_alone() {
    if !have("curl") || !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    // `; true`: a shell would exec a last command in its own process.
    let script = format!("curl -sS -o /dev/null {}; true", server.url());
    let (run, lines) = run_json("no-follow", &["--no-follow", "--", "sh", "-c", &script]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.accepted(), 1, "curl did connect");
    assert_eq!(of_type(&lines, "request").len(), 0, "curl was not traced");
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(
        summary["pids"].as_array().map_or(0, Vec::len),
        1,
        "{summary}"
    );
    let (run, lines) = run_json("follow", &["--", "sh", "-c", &script]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        of_type(&lines, "request").len(),
        1,
        "followed, curl is traced"
    );
}
