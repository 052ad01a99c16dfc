//! attach: curl fetching two URLs of one server in one command line uses
//! one connection for both requests.
use std::process::Command;

use tracer_tests::{
    http,
    process::{Proc, attach, can_trace_or_skip, json_lines, of_type},
};

#[test]
fn curl_two_urls_one_connection() {
    if Command::new("curl").arg("--version").output().is_err() {
        println!("skipped: curl not installed");
        return;
    }
    if !can_trace_or_skip() {
        return;
    }
    let addr = http::serve("127.0.0.1:0").unwrap().to_string();
    let (a, b) = (format!("http://{addr}/a"), format!("http://{addr}/b"));
    // The shell waits for a line, then becomes curl: same pid, attached before.
    let script = format!("read go && exec curl -sS -o /dev/null -o /dev/null {a} {b}");
    let mut curl = Proc::spawn(Command::new("sh").args(["-c", &script])).unwrap();
    let mut tracer = attach(curl.pid(), "json");
    curl.go_and_succeed();
    let lines = json_lines(&tracer.exit_0_stdout());
    let requests = of_type(&lines, "request");
    let urls: Vec<&str> = requests.iter().filter_map(|r| r["url"].as_str()).collect();
    assert_eq!(urls, [a.as_str(), b.as_str()]);
    assert!(
        requests
            .iter()
            .all(|r| r["status"] == 200 && r["method"] == "GET")
    );
    assert_eq!(requests[0]["socket_cookie"], requests[1]["socket_cookie"]);
    assert_eq!(
        (
            requests[0]["reused"].as_bool(),
            requests[1]["reused"].as_bool()
        ),
        (Some(false), Some(true))
    );
    let summary = of_type(&lines, "summary");
    assert_eq!(summary[0]["connections"], 1, "{}", summary[0]);
    assert_eq!(summary[0]["requests"], 2);
    assert_eq!(summary[0]["verdict"], "reused");
}
