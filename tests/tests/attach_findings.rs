//! Findings under `tracer attach`: another process (curl, Python, bash)
//! against loopback servers that count their connections.
use std::process::Command;

use serde_json::Value;
use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{Proc, attach, can_trace_or_skip, json_lines, of_type},
};

/// Runs `script` (it waits for a line, then execs the client, so the pid
/// is the one attached to) under `tracer attach --format json`.
fn under_attach(script: &str) -> Vec<Value> {
    let mut client = Proc::spawn(Command::new("sh").args(["-c", script])).unwrap();
    let mut tracer = attach(client.pid(), "json");
    client.go_and_succeed();
    json_lines(&tracer.exit_0_stdout())
}

fn findings<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    of_type(lines, "finding")
        .into_iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

fn have(tool: &str) -> bool {
    let ok = Command::new(tool).arg("--version").output().is_ok();
    if !ok {
        println!("skipped: {tool} not installed");
    }
    ok
}

fn curl_three(server: &TestServer) -> Vec<Value> {
    let url = server.url();
    let outs = "-o /dev/null -o /dev/null -o /dev/null";
    under_attach(&format!(
        "read go && exec curl -sS {outs} {url} {url} {url}"
    ))
}

#[test]
fn curl_against_a_two_write_server_shows_delayed_ack_stalls() {
    if !have("curl") || !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::SplitHeadBody).unwrap();
    let lines = curl_three(&server);
    let found = findings(&lines, "delayed-ack-stall");
    println!("saw: {found:?}; server accepted {}", server.accepted());
    assert_eq!(server.accepted(), 1);
    let requests: Vec<u64> = found.iter().filter_map(|f| f["request"].as_u64()).collect();
    assert_eq!(requests, [2, 3], "the reused requests stall");
    for f in found {
        let stall = f["evidence"]["stall_us"].as_i64().unwrap();
        assert!((35_000..=250_000).contains(&stall), "{stall}");
        assert_eq!(f["evidence"]["head_bytes"], 39);
    }
    assert_eq!(
        of_type(&lines, "summary")[0]["findings"]["delayed-ack-stall"],
        2
    );
}

#[test]
fn curl_against_a_one_write_server_finds_nothing() {
    if !have("curl") || !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let lines = curl_three(&server);
    println!("saw: {}", of_type(&lines, "summary")[0]);
    assert_eq!(of_type(&lines, "request").len(), 3);
    assert!(of_type(&lines, "finding").is_empty(), "{lines:?}");
}

fn python_get_then_sleep(server: &TestServer) -> Vec<Value> {
    let (host, port) = (server.addr.ip(), server.addr.port());
    let code = format!(
        "import http.client,time; c=http.client.HTTPConnection('{host}',{port}); \
         c.request('GET','/'); c.getresponse().read(); time.sleep(0.4)"
    );
    under_attach(&format!("read go && exec python3 -c \"{code}\""))
}

#[test]
fn a_server_closing_an_idle_kept_alive_connection_is_found() {
    if !have("python3") || !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::IdleClose(150)).unwrap();
    let lines = python_get_then_sleep(&server);
    let found = findings(&lines, "server-closed-idle");
    println!("saw: {found:?}");
    assert_eq!(found.len(), 1, "{lines:?}");
    let idle = found[0]["evidence"]["idle_us"].as_i64().unwrap();
    assert!((145_000..=250_000).contains(&idle), "{idle}");

    let close = TestServer::start("127.0.0.1:0", Behaviour::Close).unwrap();
    let lines = python_get_then_sleep(&close);
    println!(
        "saw with Connection: close: {}",
        of_type(&lines, "summary")[0]
    );
    assert!(
        findings(&lines, "server-closed-idle").is_empty(),
        "{lines:?}"
    );
}

#[test]
fn a_connection_that_moves_no_byte_is_unused() {
    if !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let (host, port) = (server.addr.ip(), server.addr.port());
    let script = format!("read go && exec bash -c 'exec 3<>/dev/tcp/{host}/{port}; exec 3>&-'");
    let lines = under_attach(&script);
    let found = findings(&lines, "unused-connection");
    println!("saw: {found:?}; server accepted {}", server.accepted());
    assert_eq!(server.accepted(), 1);
    assert_eq!(found.len(), 1, "{lines:?}");
    assert_eq!(found[0]["evidence"]["handshake"], "established");
}

#[test]
fn a_server_resetting_the_connection_is_found_under_attach() {
    if !have("python3") || !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::ResetMidResponse).unwrap();
    let (host, port) = (server.addr.ip(), server.addr.port());
    let code = format!(
        "import http.client\ntry:\n c=http.client.HTTPConnection('{host}',{port}); \
         c.request('GET','/'); c.getresponse().read()\nexcept Exception as e: print(e)"
    );
    let lines = under_attach(&format!("read go && exec python3 -c \"{code}\""));
    let found = findings(&lines, "reset");
    println!("saw: {found:?}");
    assert_eq!(found.len(), 1, "{lines:?}");
    assert_eq!(found[0]["evidence"]["direction"], "received");
    assert!(findings(&lines, "retransmit").is_empty());
}
