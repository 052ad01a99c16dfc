//! Kernel and environment: tracefs missing (not needed, never mounted), a
//! tracepoint missing (degraded, said plainly, or exit 4 when it is
//! required), kernel BTF missing (exit 4 naming CONFIG_DEBUG_INFO_BTF).
//! What this machine has is hidden by the test knobs of `tracer-test-knobs`.
use std::process::Command;

use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{Proc, can_trace_or_skip, json_lines, of_type},
    tracer_bin::{Run, tracer, tracer_with_test_knobs},
};

fn tracer_with_env(env: (&str, &str), args: &[&str]) -> Run {
    tracer_with_test_knobs(args, &[env])
}

const TRACEFS: &str = "/sys/kernel/tracing";

/// Mount points of tracefs, from this mount namespace's table.
fn tracefs_mounts() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (at, fstype) = (f.nth(1)?, f.next()?);
            (fstype == "tracefs").then(|| at.to_string())
        })
        .collect()
}

/// Mounts tracefs back when dropped, so that a failed assertion still
/// leaves the machine as the test found it.
struct RemountTracefs;

impl Drop for RemountTracefs {
    fn drop(&mut self) {
        if !tracefs_mounts().iter().any(|m| m == TRACEFS) {
            let _ = Command::new("mount")
                .args(["-t", "tracefs", "nodev", TRACEFS])
                .status();
        }
    }
}

#[test]
fn with_tracefs_unmounted_trace_works_and_nothing_gets_mounted() {
    if !can_trace_or_skip() {
        return;
    }
    // Held to the end of the test: remounts what it unmounted.
    let mut _remount = None;
    if tracefs_mounts().iter().any(|m| m == TRACEFS) {
        match Command::new("umount").arg(TRACEFS).output() {
            Ok(o) if o.status.success() => _remount = Some(RemountTracefs),
            Ok(o) => {
                println!(
                    "skipped: cannot unmount tracefs: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                return;
            }
            Err(e) => {
                println!("skipped: no umount: {e}");
                return;
            }
        }
    }
    let before = tracefs_mounts();
    assert!(!before.iter().any(|m| m == TRACEFS), "{before:?}");

    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let run = tracer(&["trace", &server.url(), "-n", "2", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = json_lines(&run.stdout);
    let requests = of_type(&lines, "request");
    assert_eq!(requests.len(), 2, "{}", run.stdout);
    for r in &requests {
        assert_eq!(r["kernel_confirmed"], true, "{r}");
    }
    assert_eq!(requests[1]["reused_from"], 1, "{}", requests[1]);
    assert_eq!(tracefs_mounts(), before, "trace mounted tracefs");

    let check = tracer(&["check"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(
        check.stdout.contains("verdict: tracing works here"),
        "{}",
        check.stdout
    );
    assert!(
        !check.stdout.to_lowercase().contains("tracefs"),
        "check does not ask for tracefs: {}",
        check.stdout
    );
    assert_eq!(tracefs_mounts(), before, "check mounted tracefs");

    // attach's getaddrinfo uprobe goes through the uprobe PMU, not tracefs.
    let sleeper = Proc::spawn(Command::new("sleep").arg("30")).unwrap();
    let attach = tracer(&[
        "attach",
        "--pid",
        &sleeper.pid().to_string(),
        "--duration",
        "1",
    ]);
    assert_eq!(attach.code, 0, "{}{}", attach.stdout, attach.stderr);
    assert!(
        attach.stdout.contains("dns: getaddrinfo probed in "),
        "{}",
        attach.stdout
    );
    assert_eq!(tracefs_mounts(), before, "attach mounted tracefs");
}

#[test]
fn missing_send_and_recv_tracepoints_degrade_with_a_plain_note() {
    if !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let run = tracer_with_env(
        (
            "TRACER_TEST_HIDE_TRACEPOINTS",
            "sock_send_length,sock_recv_length",
        ),
        &["trace", &server.url(), "-n", "2", "--format", "json"],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    for what in ["send bytes", "recv bytes"] {
        let note = run
            .stderr
            .lines()
            .find(|l| l.contains(&format!("no {what}")))
            .unwrap_or_else(|| panic!("no note about {what}: {}", run.stderr));
        assert!(note.starts_with("tracer: note: "), "{note}");
    }
    assert!(
        run.stderr.contains("sock:sock_send_length"),
        "{}",
        run.stderr
    );
    let lines = json_lines(&run.stdout);
    let kernel: Vec<&str> = of_type(&lines, "event")
        .iter()
        .filter(|e| e["source"] == "kernel")
        .filter_map(|e| e["name"].as_str())
        .collect();
    assert!(
        kernel.contains(&"connect"),
        "lifecycle still there: {kernel:?}"
    );
    assert!(
        !kernel.contains(&"send") && !kernel.contains(&"recv"),
        "{kernel:?}"
    );
    // The socket is still found (connect, states), and both requests on it.
    let requests = of_type(&lines, "request");
    assert_eq!(requests.len(), 2);
    assert!(requests[0]["socket_cookie"].is_u64(), "{}", requests[0]);
    assert_eq!(requests[0]["socket_cookie"], requests[1]["socket_cookie"]);
    // Reuse is still proven at socket level: same cookie, no connect or SYN
    // for it in request 2, so --expect reuse works on such kernels too.
    assert_eq!(requests[1]["reused"], true, "{}", requests[1]);
    assert_eq!(requests[1]["kernel_confirmed"], true, "{}", requests[1]);
}

#[test]
fn a_missing_required_tracepoint_exits_4_naming_it() {
    if !can_trace_or_skip() {
        return;
    }
    let run = tracer_with_env(
        ("TRACER_TEST_HIDE_TRACEPOINTS", "inet_sock_set_state"),
        &["trace", "http://127.0.0.1:9/"],
    );
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("sock:inet_sock_set_state") && run.stderr.contains("TCP states"),
        "{}",
        run.stderr
    );
}

#[test]
fn missing_kernel_btf_exits_4_naming_config_debug_info_btf() {
    if !can_trace_or_skip() {
        return;
    }
    let env = ("TRACER_TEST_BTF_PATH", "/nonexistent/vmlinux");
    for args in [&["trace", "http://127.0.0.1:9/"][..], &["check"]] {
        let run = tracer_with_env(env, args);
        assert_eq!(run.code, 4, "{args:?}: {}{}", run.stdout, run.stderr);
        let text = format!("{}{}", run.stdout, run.stderr);
        assert!(
            text.contains("BTF /nonexistent/vmlinux") && text.contains("CONFIG_DEBUG_INFO_BTF=y"),
            "{args:?}: {text}"
        );
    }
}
