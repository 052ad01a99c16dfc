//! `new-connection-while-idle` under `tracer run`: a client that dials its
//! server again while its own kept-alive connection to it sits idle, its
//! response read to the end. Provoked by Python on purpose and by Node's
//! `fetch` when its pool does it; not by curl's reuse, nor by two
//! connections busy at once. The server's accept count is the other side's
//! view.
use serde_json::Value;
use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip, of_type},
    run_cmd::{have, run_json},
};

const KIND: &str = "new-connection-while-idle";

fn idle_findings(lines: &[Value]) -> Vec<&Value> {
    of_type(lines, "finding")
        .into_iter()
        .filter(|f| f["kind"] == KIND)
        .collect()
}

/// `python3 -c CODE` under `tracer run`, its JSON lines.
fn python(name: &str, code: &str) -> Vec<Value> {
    let (run, lines) = run_json(name, &["--", "python3", "-c", code]);
    assert_eq!(run.code, 0, "stderr {}", run.stderr);
    lines
}

#[test]
fn python_opening_a_second_connection_beside_an_idle_one_is_found() {
    if !have("python3") || !can_trace_or_skip() {
        return;
    }
    for round in 0..5 {
        let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
        let (host, port) = (server.addr.ip(), server.addr.port());
        let code = format!(
            "import http.client,time\n\
             a=http.client.HTTPConnection('{host}',{port}); a.request('GET','/1'); a.getresponse().read()\n\
             time.sleep(0.02)\n\
             b=http.client.HTTPConnection('{host}',{port}); b.request('GET','/2'); b.getresponse().read()\n\
             a.close(); b.close()"
        );
        let lines = python("idle-python", &code);
        let found = idle_findings(&lines);
        println!(
            "round {round}: {found:?}; server accepted {}",
            server.accepted()
        );
        assert_eq!(server.accepted(), 2, "round {round}");
        assert_eq!(found.len(), 1, "round {round}: {lines:?}");
        let f = found[0];
        let requests = of_type(&lines, "request");
        let first = requests.iter().find(|r| r["request"] == 1).unwrap();
        let second = requests.iter().find(|r| r["request"] == 2).unwrap();
        assert_eq!(f["evidence"]["idle_socket_cookie"], first["socket_cookie"]);
        assert_eq!(f["evidence"]["idle_connection"], first["connection"]);
        assert_eq!(f["evidence"]["idle_request"], 1);
        assert_eq!(f["socket_cookie"], second["socket_cookie"]);
        assert_eq!(f["evidence"]["connection"], second["connection"]);
        assert_eq!(
            f["evidence"]["remote_addr"].as_str(),
            Some(server.addr.to_string().as_str())
        );
        // It slept 20 ms between the two.
        let idle = f["evidence"]["idle_us"].as_i64().unwrap();
        assert!((15_000..1_000_000).contains(&idle), "round {round}: {idle}");
        assert_eq!(of_type(&lines, "summary")[0]["findings"][KIND], 1);
    }
}

#[test]
fn two_connections_busy_at_once_are_not_found() {
    if !have("python3") || !can_trace_or_skip() {
        return;
    }
    // The first response takes 100 ms to finish: the second connection is
    // dialled while the first still waits for it.
    let server = TestServer::start("127.0.0.1:0", Behaviour::SlowChunks).unwrap();
    let (host, port) = (server.addr.ip(), server.addr.port());
    let code = format!(
        "import http.client\n\
         a=http.client.HTTPConnection('{host}',{port}); a.request('GET','/1')\n\
         b=http.client.HTTPConnection('{host}',{port}); b.request('GET','/2')\n\
         a.getresponse().read(); b.getresponse().read(); a.close(); b.close()"
    );
    let lines = python("busy-python", &code);
    println!(
        "saw: {}; server accepted {}",
        of_type(&lines, "summary")[0],
        server.accepted()
    );
    assert_eq!(server.accepted(), 2);
    assert_eq!(of_type(&lines, "request").len(), 2, "{lines:?}");
    assert!(idle_findings(&lines).is_empty(), "{lines:?}");
}

#[test]
fn curl_reusing_one_connection_is_not_found() {
    if !have("curl") || !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let url = server.url();
    let null = "/dev/null";
    let (run, lines) = run_json(
        "idle-curl",
        &[
            "--", "curl", "-sS", "-o", null, "-o", null, "-o", null, &url, &url, &url,
        ],
    );
    assert_eq!(run.code, 0, "stderr {}", run.stderr);
    assert_eq!(server.accepted(), 1);
    assert_eq!(of_type(&lines, "request").len(), 3);
    assert!(idle_findings(&lines).is_empty(), "{lines:?}");
}

/// Node's fetch (undici), three requests one after another: whenever the
/// server accepted a second connection, the tracer says why it matters;
/// when it accepted one, it says nothing.
#[test]
fn node_fetch_dialling_beside_its_idle_connection_is_found_whenever_it_happens() {
    if !have("node") || !can_trace_or_skip() {
        return;
    }
    let mut seen = [0usize; 3];
    for round in 0..6 {
        let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
        let url = server.url();
        let code = format!(
            "(async () => {{ for (let i = 1; i <= 3; i++) {{ \
             const r = await fetch('{url}' + i); await r.text(); }} }})()\
             .catch(e => {{ console.error(e); process.exit(1); }});"
        );
        let (run, lines) = run_json("idle-node", &["--", "node", "-e", &code]);
        assert_eq!(run.code, 0, "round {round}: stderr {}", run.stderr);
        let accepted = server.accepted();
        let found = idle_findings(&lines);
        println!(
            "round {round}: server accepted {accepted}, {} finding(s)",
            found.len()
        );
        let numbers: Vec<u64> = of_type(&lines, "request")
            .iter()
            .filter_map(|r| r["request"].as_u64())
            .collect();
        assert_eq!(numbers, [1, 2, 3], "round {round}: request numbers ascend");
        match accepted {
            1 => assert!(found.is_empty(), "round {round}: {lines:?}"),
            n => assert_eq!(found.len(), n - 1, "round {round}: {lines:?}"),
        }
        seen[accepted.min(2)] += 1;
    }
    println!("rounds by connections accepted (0, 1, 2+): {seen:?}");
}
