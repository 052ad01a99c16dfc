//! attach: it ends by itself when the target exits (summary, exit 0), and
//! refuses PIDs it cannot trace with a one-line error and exit 1.
use std::process::Command;

use tracer_tests::{
    http,
    process::{Proc, attach, can_trace_or_skip},
};

const TARGET: &str = env!("CARGO_BIN_EXE_http-target");

#[test]
fn target_exit_ends_the_trace_with_a_summary() {
    if !can_trace_or_skip() {
        return;
    }
    let addr = http::serve("127.0.0.1:0").unwrap().to_string();
    let mut target = Proc::spawn_ready(Command::new(TARGET).args(["keepalive", &addr, "/x"]));
    let mut tracer = attach(target.pid(), "text");
    target.go_and_succeed();
    let out = tracer.exit_0_stdout();
    assert!(
        out.contains("summary: 5 requests on 3 connections, 2 reused"),
        "{out}"
    );
    assert!(
        out.contains(&format!("GET http://{addr}/x/keep/2 -> 200")),
        "{out}"
    );
    assert!(
        out.trim_end()
            .ends_with(&format!("process {} exited", target.pid())),
        "{out}"
    );
}

fn attach_exit(pid: &str) -> (Option<i32>, String) {
    let out = Command::new(tracer_tests::tracer_bin::tracer_bin())
        .args(["attach", "--pid", pid])
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_pid_that_does_not_exist_is_refused() {
    let (code, err) = attach_exit(&i32::MAX.to_string());
    assert_eq!(code, Some(1));
    assert_eq!(err, format!("tracer: no process with pid {}\n", i32::MAX));
}

#[test]
fn a_kernel_thread_is_refused() {
    let comm = std::fs::read_to_string("/proc/2/comm").unwrap_or_default();
    if comm.trim() != "kthreadd" {
        println!("skipped: pid 2 is not kthreadd here (a pid namespace?)");
        return;
    }
    let (code, err) = attach_exit("2");
    assert_eq!(code, Some(1));
    assert!(
        err.starts_with("tracer: pid 2 is a kernel thread") && err.lines().count() == 1,
        "{err}"
    );
}
