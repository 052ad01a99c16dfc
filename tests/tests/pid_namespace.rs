//! tracer inside a PID namespace of its own (a container without
//! `--pid=host`): `trace`, `run` and `attach` see the processes of that
//! namespace by the pids it gives them, and refuse with exit 4 what they
//! could not see. Run on the host and in the guest kernels (Linux 6.1 has
//! no send/recv bytes: there the connections, not the requests, are checked).
use std::{path::PathBuf, process::Command};

use serde_json::Value;
use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip, json_lines, of_type},
    run_cmd::have,
    tracer_bin::{Run, tracer_bin},
};

/// True when this kernel lacks the send/recv byte tracepoints.
fn lifecycle_only() -> bool {
    tracer_user::preflight::run()
        .skip_programs
        .contains(&"tracer_send")
}

/// Whether tracing works and `unshare` can make a PID namespace here.
fn can_unshare_or_skip() -> bool {
    if !can_trace_or_skip() {
        return false;
    }
    let ok = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("skipped: `unshare --pid --fork --mount-proc` does not work here");
    }
    ok
}

/// `sh -c SCRIPT` as pid 1 of a new PID namespace with its own /proc
/// (`mount_proc`), bounded in time; `$TRACER` is the tracer binary.
fn in_pid_ns(mount_proc: bool, script: &str) -> Run {
    let mut cmd = Command::new("timeout");
    cmd.args(["60", "unshare", "--pid", "--fork"]);
    if mount_proc {
        cmd.arg("--mount-proc");
    }
    let out = cmd
        .args(["sh", "-c", script])
        .env("TRACER", tracer_bin())
        .env("NO_COLOR", "1")
        .output()
        .expect("unshare runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tracer-pidns-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn kernel_events<'a>(lines: &'a [Value], name: &str, cookie: &Value) -> Vec<&'a Value> {
    of_type(lines, "event")
        .into_iter()
        .filter(|e| e["source"] == "kernel" && e["name"] == name && &e["socket_cookie"] == cookie)
        .collect()
}

#[test]
fn trace_in_a_pid_namespace_has_the_kernel_confirm_reuse() {
    if !can_unshare_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let run = in_pid_ns(
        true,
        &format!(
            "exec \"$TRACER\" trace {} -n 2 --expect reuse --format json",
            server.url()
        ),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!run.stderr.contains("did not confirm"), "{}", run.stderr);
    let lines = run.json();
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["kernel"], true, "{summary}");
    assert_eq!(summary["verdict"], "reused", "{summary}");
    assert_eq!(summary["connections_opened"], 1, "{summary}");
    let requests = of_type(&lines, "request");
    assert_eq!(requests.len(), 2);
    let cookie = &requests[0]["socket_cookie"];
    for r in &requests {
        assert_eq!(r["kernel_confirmed"], true, "{r}");
        assert_eq!(&r["socket_cookie"], cookie, "one socket: {r}");
    }
    // The kernel's own events of that socket, joined by its cookie.
    assert_eq!(kernel_events(&lines, "connect", cookie).len(), 1);
    assert!(!kernel_events(&lines, "state", cookie).is_empty());
    if !lifecycle_only() {
        assert!(kernel_events(&lines, "send", cookie).len() >= 2);
    }
    assert_eq!(server.accepted(), 1);
}

/// The run's JSON lines, and the pid it started (as its namespace numbers it).
fn run_in_pid_ns(name: &str, command: &str) -> (Run, Vec<Value>, u64) {
    let dir = scratch(name);
    let file = dir.join("run.jsonl");
    let run = in_pid_ns(
        true,
        &format!(
            "exec \"$TRACER\" run --format json -o {} -- {command}",
            file.display()
        ),
    );
    let lines = json_lines(&std::fs::read_to_string(&file).unwrap_or_default());
    let _ = std::fs::remove_dir_all(&dir);
    let started = run
        .stderr
        .split("started pid ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no `started pid` in {}", run.stderr));
    (run, lines, started)
}

#[test]
fn run_in_a_pid_namespace_sees_the_commands_connection_by_its_pid() {
    if !have("curl") || !can_unshare_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let (a, b) = (format!("{}a", server.url()), format!("{}b", server.url()));
    let (run, lines, curl) = run_in_pid_ns(
        "curl",
        &format!("curl -sS -o /dev/null -o /dev/null {a} {b}"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // The tracer is pid 1 there: its command has a small pid, not the host's.
    assert!(curl < 100, "pid {curl} is not the namespace's");
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["pids"], serde_json::json!([curl]), "{summary}");
    assert_eq!(summary["connections"], 1, "{summary}");
    let connect: Vec<_> = of_type(&lines, "connection")
        .into_iter()
        .filter(|e| e["event"] == "open" && e["how"] == "connect")
        .collect();
    assert_eq!(connect.len(), 1, "{lines:?}");
    assert_eq!(connect[0]["pid"], curl);
    if !lifecycle_only() {
        assert_eq!(summary["requests"], 2, "{summary}");
        assert_eq!(summary["reused"], 1, "{summary}");
    }
    assert_eq!(server.accepted(), 1);
}

#[test]
fn run_in_a_pid_namespace_follows_children_by_their_pids() {
    if !have("curl") || !can_unshare_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let url = server.url();
    let (run, lines, sh) = run_in_pid_ns(
        "sh",
        &format!("sh -c 'curl -sS -o /dev/null {url}; curl -sS -o /dev/null {url}'"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary = of_type(&lines, "summary")[0];
    let children: Vec<&Value> = summary["per_process"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["parent"] == sh)
        .collect();
    assert_eq!(children.len(), 2, "{summary}");
    for child in children {
        // Each curl's connection is attributed to that curl's pid.
        assert_eq!(child["connections"], 1, "{child}");
    }
    assert_eq!(server.accepted(), 2);
}

/// A child born into a namespace below the tracer's is out of its sight
/// (the kernel's helper answers only for the tracer's own): run says so,
/// and claims nothing of it.
#[test]
fn run_in_a_pid_namespace_says_which_children_it_could_not_follow() {
    if !have("curl") || !can_unshare_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let url = server.url();
    let (run, lines, _) = run_in_pid_ns(
        "nested",
        &format!("unshare --pid --fork curl -sS -o /dev/null {url}"),
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    // curl made its request: the server is the witness.
    assert_eq!(server.accepted(), 1);
    assert!(
        run.stderr.contains(
            "note: 1 child processes not followed: they started in a PID namespace nested inside tracer's"
        ),
        "{}",
        run.stderr
    );
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["connections"], 0, "{summary}");
}

#[test]
fn attach_in_a_pid_namespace_sees_the_targets_connection() {
    if !have("python3") || !can_unshare_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let dir = scratch("attach");
    let go = dir.join("go");
    // Two requests on one kept-alive connection, once the tracer is attached.
    let client = format!(
        "import http.client, os, time\n\
         while not os.path.exists('{go}'): time.sleep(0.02)\n\
         c = http.client.HTTPConnection('127.0.0.1', {port})\n\
         for p in ('/a', '/b'):\n    c.request('GET', p); c.getresponse().read()\n\
         c.close()\n",
        go = go.display(),
        port = server.addr.port(),
    );
    std::fs::write(dir.join("client.py"), client).unwrap();
    let script = format!(
        "cd {dir}; python3 client.py & echo $! > pid; \
         \"$TRACER\" attach --pid $! --format json 2> err & \
         until grep -q 'attached to pid' err; do sleep 0.05; done; touch go; wait",
        dir = dir.display()
    );
    let run = in_pid_ns(true, &script);
    let err = std::fs::read_to_string(dir.join("err")).unwrap_or_default();
    let pid: u64 = std::fs::read_to_string(dir.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(run.code, 0, "{err}");
    let lines = run.json();
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["pid"], pid, "{summary}");
    assert_eq!(summary["connections"], 1, "{summary}\n{err}");
    if !lifecycle_only() {
        assert_eq!(summary["requests"], 2, "{summary}");
        assert_eq!(summary["reused"], 1, "{summary}");
    }
    assert_eq!(server.accepted(), 1);
}

#[test]
fn an_outer_namespaces_proc_is_exit_4_with_what_to_mount() {
    if !can_unshare_or_skip() {
        return;
    }
    let run = in_pid_ns(false, "exec \"$TRACER\" run -- true");
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert_eq!(run.stderr.lines().count(), 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("mount this namespace's own /proc"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_target_in_a_nested_namespace_is_exit_4_not_silence() {
    if !can_unshare_or_skip() {
        return;
    }
    // The sleep outlives a slow guest's start-up; it dies with the
    // namespace's pid 1, the shell, when the shell ends.
    let run = in_pid_ns(
        true,
        "unshare --pid --fork sleep 60 & \
         until p=$(pgrep -x sleep); do sleep 0.05; done; \
         \"$TRACER\" attach --pid $p --duration 1; echo \"exit $?\"",
    );
    assert!(
        run.stdout.contains("exit 4"),
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(
        run.stderr
            .contains("in a PID namespace nested inside tracer's"),
        "{}",
        run.stderr
    );
}
