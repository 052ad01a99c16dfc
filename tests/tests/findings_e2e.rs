//! Findings and the accounting of every connection, end to end: the real
//! binary and probes against loopback servers that count what happened.
use serde_json::Value;
use tracer_tests::{
    http_server::{Behaviour, TestServer},
    tracer_bin::{Run, tracer},
};

fn kernel_or_skip() -> bool {
    let report = tracer_user::preflight::run();
    if !report.can_trace() {
        println!("skipped: {}", report.missing());
    }
    report.can_trace()
}

fn json(run: &Run) -> Vec<Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn of_type<'a>(lines: &'a [Value], ty: &str) -> Vec<&'a Value> {
    lines.iter().filter(|v| v["type"] == ty).collect()
}

fn findings<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines
        .iter()
        .filter(|v| v["type"] == "finding" && v["kind"] == kind)
        .collect()
}

fn trace_json(url: &str, extra: &[&str]) -> (Run, Vec<Value>) {
    let mut args = vec!["trace", url, "--format", "json"];
    args.extend_from_slice(extra);
    let run = tracer(&args);
    let lines = json(&run);
    (run, lines)
}

#[test]
fn a_connection_no_request_rode_is_counted_named_and_fails_expect_reuse() {
    if !kernel_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let spare = [("TRACER_TEST_SPARE_CONNECT", "2")];
    let run = tracer_bin_env(
        &["trace", &server.url(), "-n", "3", "--format", "json"],
        &spare,
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = json(&run);
    let summary = of_type(&lines, "summary")[0];
    println!("saw: {summary}; server accepted {}", server.accepted());
    assert_eq!(server.accepted(), 2, "the server saw the spare connection");
    assert_eq!(summary["connections"], 1, "requests rode one connection");
    assert_eq!(summary["connections_opened"], 2);
    assert_eq!(summary["connections_unused"], 1);
    assert_eq!(summary["findings"]["unused-connection"], 1);
    // Opened just before request 2 started: in request 1's window, after
    // request 1 had its connection.
    let found = findings(&lines, "unused-connection");
    let request_cookie = &of_type(&lines, "request")[0]["socket_cookie"];
    assert_eq!(found[0]["request"], 1);
    assert_eq!(
        found[0]["evidence"]["when"],
        "after request 1 got its connection"
    );
    assert_ne!(&found[0]["socket_cookie"], request_cookie);
    assert_eq!(found[0]["evidence"]["handshake"], "established");
    assert_eq!(found[0]["evidence"]["sent_bytes"], 0);

    let text = tracer_bin_env(&["trace", &server.url(), "-n", "3"], &spare);
    let verdict = |n: u32| {
        let line = text
            .stdout
            .lines()
            .find(|l| l.starts_with(&format!("verdict: request {n} ")))
            .expect("a verdict");
        println!("saw: {line}");
        line
    };
    let first = verdict(1);
    assert!(first.contains("was also opened after it got its connection and never used"));
    let second = verdict(2);
    assert!(second.contains("reused the connection of request 1"));
    assert!(
        !second.contains("no connect"),
        "a connect happened in between"
    );
    assert!(
        text.stdout
            .contains("finding: unused-connection: request 1, cookie ")
    );
    assert!(
        text.stdout
            .contains("2 connections opened (1 unused), 1 finding (unused-connection 1)"),
        "{}",
        text.stdout
    );

    let expect = tracer_bin_env(
        &["trace", &server.url(), "-n", "3", "--expect", "reuse"],
        &spare,
    );
    println!("saw: exit {}, {}", expect.code, expect.stderr.trim());
    assert_eq!(expect.code, 3, "{}", expect.stderr);
    assert!(
        expect.stderr.contains("connection cookie ")
            && expect
                .stderr
                .contains("was opened after request 1 got its connection; no request rode it"),
        "{}",
        expect.stderr
    );
}

#[test]
fn a_spare_connect_before_request_1_has_its_own_is_reported_but_keeps_expect_reuse() {
    if !kernel_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let spare = [("TRACER_TEST_SPARE_CONNECT", "1")];
    let run = tracer_bin_env(
        &[
            "trace",
            &server.url(),
            "-n",
            "2",
            "--format",
            "json",
            "--expect",
            "reuse",
        ],
        &spare,
    );
    println!("saw: exit {}, {}", run.code, run.stderr.trim());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines = json(&run);
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(
        (summary["connections_opened"].as_u64(), server.accepted()),
        (Some(2), 2)
    );
    assert_eq!(findings(&lines, "unused-connection")[0]["request"], 1);
}

#[test]
fn plain_keep_alive_opens_one_connection_and_finds_nothing() {
    if !kernel_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let (run, lines) = trace_json(&server.url(), &["-n", "3"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let summary = of_type(&lines, "summary")[0];
    println!("saw: {summary}");
    assert_eq!(summary["connections_opened"], server.accepted() as u64);
    assert_eq!(summary["connections_unused"], 0);
    assert_eq!(summary["findings"], serde_json::json!({}));
    assert!(of_type(&lines, "finding").is_empty());
}

fn tracer_bin_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = std::process::Command::new(tracer_tests::tracer_bin::tracer_bin())
        .args(args)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .output()
        .expect("tracer runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
