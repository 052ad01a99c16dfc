//! `-o FILE`: the trace goes to the file and nothing of it to stdout; a
//! path that cannot be written is a usage error before anything is traced.
use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip, json_lines, of_type},
    tracer_bin::tracer,
};

#[test]
fn trace_writes_its_json_lines_to_the_file() {
    if !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let file = std::env::temp_dir().join(format!("tracer-o-{}.jsonl", std::process::id()));
    let path = file.to_string_lossy().into_owned();
    let run = tracer(&[
        "trace",
        &server.url(),
        "-n",
        "2",
        "--format",
        "json",
        "-o",
        &path,
    ]);
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let _ = std::fs::remove_file(&file);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "", "the trace goes to the file only");
    let lines = json_lines(&text);
    assert_eq!(of_type(&lines, "request").len(), 2);
    assert_eq!(
        of_type(&lines, "summary")[0]["connections"],
        server.accepted()
    );
}

#[test]
fn an_unwritable_file_is_a_usage_error() {
    for cmd in [
        &["trace", "http://127.0.0.1:9/", "-o", "/nonexistent-dir/x"][..],
        &["attach", "--pid", "1", "-o", "/nonexistent-dir/x"][..],
        &["run", "-o", "/nonexistent-dir/x", "--", "true"][..],
    ] {
        let run = tracer(cmd);
        assert_eq!(run.code, 2, "{cmd:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("cannot write /nonexistent-dir/x"),
            "{}",
            run.stderr
        );
    }
}
