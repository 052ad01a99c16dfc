//! Kernel and environment: tracefs missing (the tracer mounts it), a
//! tracepoint missing (degraded, said plainly, or exit 4 when it is
//! required), kernel BTF missing (exit 4 naming CONFIG_DEBUG_INFO_BTF).
use std::process::Command;

use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip, json_lines, of_type},
    tracer_bin::{Run, tracer_bin},
};

fn tracer_with_env(env: (&str, &str), args: &[&str]) -> Run {
    let out = Command::new(tracer_bin())
        .args(args)
        .env("NO_COLOR", "1")
        .env(env.0, env.1)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn unmounted_tracefs_is_mounted_by_the_tracer() {
    if !can_trace_or_skip() {
        return;
    }
    let umount = Command::new("umount").arg("/sys/kernel/tracing").output();
    match umount {
        Ok(o) if o.status.success() => {}
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
    let out = Command::new(tracer_bin()).arg("check").output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Whatever happened, leave tracefs mounted for the other tests.
    let _ = tracer_user::preflight::run();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("tracefs"))
        .unwrap_or_default();
    assert!(
        line.contains("ok") && line.contains("was not mounted; mounted it at /sys/kernel/tracing"),
        "{stdout}"
    );
    assert!(std::path::Path::new("/sys/kernel/tracing/events").is_dir());
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
