//! `tracer run -- CMD`: the command is traced from its first syscall, its
//! children are followed, its exit code is passed on, and it runs as the
//! invoking user. Checked against the test server's own accept count.
use std::process::Command;

use serde_json::Value;
use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip, of_type},
    run_cmd::{have, run_json},
    tracer_bin::tracer,
};

/// Rounds of each scenario: a race between fork, exec and the filter would
/// show in some of them.
const ROUNDS: usize = 20;

#[test]
fn curl_two_urls_first_connect_seen_second_request_reused() {
    if !have("curl") || !can_trace_or_skip() {
        return;
    }
    for round in 0..ROUNDS {
        let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
        let (a, b) = (format!("{}a", server.url()), format!("{}b", server.url()));
        let (run, lines) = run_json(
            "reuse",
            &[
                "--",
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-o",
                "/dev/null",
                &a,
                &b,
            ],
        );
        assert_eq!(run.code, 0, "round {round}: stderr {}", run.stderr);
        let requests = of_type(&lines, "request");
        let urls: Vec<&str> = requests.iter().filter_map(|r| r["url"].as_str()).collect();
        assert_eq!(urls, [a.as_str(), b.as_str()], "round {round}");
        assert_eq!(
            requests[1]["reused"], true,
            "round {round}: {}",
            requests[1]
        );
        assert_eq!(requests[0]["socket_cookie"], requests[1]["socket_cookie"]);
        let cookie = &requests[0]["socket_cookie"];
        let connects: Vec<_> = of_type(&lines, "connection")
            .into_iter()
            .filter(|e| e["event"] == "open" && &e["socket_cookie"] == cookie)
            .collect();
        assert_eq!(
            connects.len(),
            1,
            "round {round}: the first connect is seen"
        );
        assert_eq!(connects[0]["how"], "connect");
        assert_eq!(connects[0]["error"], serde_json::Value::Null);
        let summary = of_type(&lines, "summary")[0];
        assert_eq!(summary["connections"], server.accepted(), "round {round}");
        assert_eq!(
            (summary["requests"].clone(), summary["reused"].clone()),
            (2.into(), 1.into())
        );
        assert_eq!(summary["pid"], requests[0]["pid"], "{summary}");
        if round == 0 {
            println!("saw: {} / {}", requests[1], summary);
        }
    }
}

#[test]
fn exit_code_is_the_commands_unless_the_tracer_or_expect_failed() {
    if !have("curl") || !can_trace_or_skip() {
        return;
    }
    // A refused port: curl exits 7.
    let refused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = refused.local_addr().unwrap().port();
    drop(refused);
    let url = format!("http://127.0.0.1:{port}/");
    let (run, lines) = run_json("refused", &["--", "curl", "-sS", &url]);
    assert_eq!(run.code, 7, "stderr {}", run.stderr);
    let connects: Vec<_> = of_type(&lines, "connection")
        .into_iter()
        .filter(|e| e["event"] == "open" && e["how"] == "connect")
        .collect();
    assert_eq!(connects.len(), 1, "{lines:?}");
    assert_eq!(connects[0]["ret"], -111, "ECONNREFUSED: {}", connects[0]);
    let killed = tracer(&["run", "-o", "/dev/null", "--", "sh", "-c", "kill -9 $$"]);
    assert_eq!(killed.code, 128 + 9, "stderr {}", killed.stderr);
    let five = tracer(&["run", "-o", "/dev/null", "--", "sh", "-c", "exit 5"]);
    assert_eq!(five.code, 5);
    // One request cannot reuse anything: the expectation fails over curl's 0.
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let (run, _) = run_json(
        "expect",
        &[
            "--expect",
            "reuse",
            "--",
            "curl",
            "-sS",
            "-o",
            "/dev/null",
            &server.url(),
        ],
    );
    assert_eq!(run.code, 3, "stderr {}", run.stderr);
    assert!(
        run.stderr.contains("--expect reuse did not hold"),
        "{}",
        run.stderr
    );
    let missing = tracer(&["run", "--", "no-such-command-here"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
}

#[test]
fn a_shell_running_curl_twice_is_three_processes_two_connections() {
    if !have("curl") || !can_trace_or_skip() {
        return;
    }
    for round in 0..ROUNDS {
        let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
        let url = server.url();
        let script = format!("curl -sS -o /dev/null {url}; curl -sS -o /dev/null {url}");
        let (run, lines) = run_json("children", &["--", "sh", "-c", &script]);
        assert_eq!(run.code, 0, "round {round}: stderr {}", run.stderr);
        let summary = of_type(&lines, "summary")[0];
        let shell = summary["per_process"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["parent"].is_null()))
            .and_then(|p| p["pid"].as_u64())
            .unwrap_or_else(|| panic!("round {round}: no root process in {summary}"));
        let requests = of_type(&lines, "request");
        let pids: Vec<u64> = requests.iter().filter_map(|r| r["pid"].as_u64()).collect();
        assert_eq!(pids.len(), 2, "round {round}: {summary}");
        assert!(
            pids[0] != pids[1] && !pids.contains(&shell),
            "round {round}: {pids:?}"
        );
        assert_eq!(summary["connections"], 2, "round {round}: {summary}");
        assert_eq!(server.accepted(), 2, "round {round}");
        assert!(
            summary.get("pid").is_none(),
            "several processes: pids, not pid"
        );
        let listed: Vec<u64> = summary["pids"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        assert_eq!(
            listed.len(),
            3,
            "round {round}: sh and two curls: {summary}"
        );
        for p in &pids {
            let entry = summary["per_process"]
                .as_array()
                .and_then(|all| all.iter().find(|e| e["pid"] == *p))
                .unwrap_or_else(|| panic!("no per_process entry for {p}"));
            assert_eq!(
                (entry["requests"].clone(), entry["parent"].clone()),
                (1.into(), shell.into())
            );
            assert_eq!(entry["comm"], "curl", "named after its exec: {entry}");
        }
        if round == 0 {
            println!("saw: {summary}");
        }
    }
}

#[test]
fn the_command_runs_as_the_invoking_user() {
    if !can_trace_or_skip() {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: needs root to switch users");
        return;
    }
    let bin = tracer_tests::tracer_bin::tracer_bin();
    let as_sudo = Command::new(&bin)
        .args(["run", "-o", "/dev/null", "--", "sh", "-c", "id -u; id -G"])
        .env("SUDO_UID", "65534")
        .env("SUDO_GID", "65534")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&as_sudo.stdout);
    assert_eq!(as_sudo.status.code(), Some(0), "{stdout}");
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["65534", "65534"],
        "{stdout}"
    );
    let as_user = tracer(&[
        "run",
        "--user",
        "nobody",
        "-o",
        "/dev/null",
        "--",
        "id",
        "-u",
    ]);
    assert_eq!(as_user.stdout.trim(), "65534");
    // CapEff of the command: nothing of the tracer's root.
    let caps = tracer(&[
        "run",
        "--user",
        "65534",
        "-o",
        "/dev/null",
        "--",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert_eq!(
        caps.stdout.split_whitespace().nth(1),
        Some("0000000000000000"),
        "{}",
        caps.stdout
    );
    println!(
        "saw: SUDO_UID=65534 -> {stdout:?}; --user nobody -> {:?}",
        as_user.stdout.trim()
    );
}
