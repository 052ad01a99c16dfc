//! attach --stat: a keep-alive client's requests, counted per endpoint
//! template in `stat` lines, add up to what the client made and the
//! server answered; the summary's table says the same.
use std::{collections::BTreeMap, process::Command, time::Duration};

use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{Proc, attach_with, can_trace_or_skip, json_lines, of_type},
};

/// Endpoint -> (count, new, reused, errors), summed over `endpoints` arrays.
fn counts<'a>(tables: impl Iterator<Item = &'a serde_json::Value>) -> BTreeMap<String, [u64; 4]> {
    let mut sum: BTreeMap<String, [u64; 4]> = BTreeMap::new();
    for e in tables.flat_map(|t| t.as_array().into_iter().flatten()) {
        let row = sum
            .entry(e["endpoint"].as_str().unwrap_or("?").to_string())
            .or_default();
        for (i, key) in ["count", "new_connections", "reused_connections", "errors"]
            .iter()
            .enumerate()
        {
            row[i] += e[*key].as_u64().unwrap_or(u64::MAX / 2);
        }
    }
    sum
}

#[test]
fn stat_lines_count_every_request_per_endpoint() {
    if !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    // 40 requests over about 2 s on one connection: more than one interval.
    let code = format!(
        "import http.client, sys, time, uuid\n\
         sys.stdin.readline()\n\
         c = http.client.HTTPConnection('127.0.0.1', {})\n\
         n = 0\n\
         for i in range(30):\n    c.request('GET', '/users/%d?page=2' % i); c.getresponse().read(); n += 1; time.sleep(0.05)\n\
         for i in range(10):\n    c.request('GET', '/items/%s' % uuid.uuid4()); c.getresponse().read(); n += 1; time.sleep(0.05)\n\
         print('done', n, flush=True)\n\
         sys.stdin.readline()\n",
        server.addr.port()
    );
    let mut client = Proc::spawn_ready(
        Command::new("sh").args(["-c", &format!("echo ready; exec python3 -c \"{code}\"")]),
    );
    let mut tracer = attach_with(client.pid(), "json", &["--stat"]);
    client.send_line("go").expect("the client reads its go");
    assert!(
        client.wait_for("done 40", false, Duration::from_secs(20)),
        "{}",
        client.stderr()
    );
    client.close_stdin();
    let out = tracer.exit_0_stdout();
    let lines = json_lines(&out);
    assert_eq!(server.request_bytes().len(), 40, "the server answered 40");

    let stats = of_type(&lines, "stat");
    assert!(stats.len() >= 2, "a line per second over about 2 s: {out}");
    assert!(
        of_type(&lines, "request").is_empty() && of_type(&lines, "event").is_empty(),
        "{out}"
    );
    let want = BTreeMap::from([
        ("GET /items/{id}".to_string(), [10, 0, 10, 0]),
        ("GET /users/{id}".to_string(), [30, 1, 29, 0]),
    ]);
    assert_eq!(counts(stats.iter().map(|s| &s["endpoints"])), want, "{out}");
    let summary = of_type(&lines, "summary");
    assert_eq!(summary.len(), 1, "{out}");
    assert_eq!(counts(std::iter::once(&summary[0]["stat"])), want, "{out}");
    assert_eq!(summary[0]["requests"], 40, "{out}");
}
