//! The getaddrinfo uprobe: a name resolved through libc shows as a
//! `dns_start` / `dns_done` pair of the process that resolved it.
use tracer_tests::{
    process::{can_trace_or_skip, of_type},
    tracer_bin::tracer,
};

#[test]
fn getaddrinfo_of_a_traced_command_is_seen_with_its_name_and_result() {
    if !can_trace_or_skip() {
        return;
    }
    // getent resolves through libc's getaddrinfo (curl answers "localhost"
    // itself, without a lookup).
    let run = tracer(&[
        "run",
        "--events",
        "--format",
        "json",
        "--",
        "getent",
        "ahosts",
        "localhost",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("127.0.0.1"),
        "getent's own output: {}",
        run.stdout
    );
    // The trace goes to stderr, as strace's does.
    let lines = tracer_tests::process::json_lines_among(&run.stderr);
    let events = of_type(&lines, "event");
    let named = |name: &str| events.iter().filter(|e| e["name"] == name).count();
    println!(
        "dns_start {}, dns_done {}",
        named("dns_start"),
        named("dns_done")
    );
    let done = events
        .iter()
        .find(|e| e["name"] == "dns_done")
        .unwrap_or_else(|| panic!("no dns_done in {}", run.stderr));
    assert_eq!(done["host"], "localhost", "{done}");
    assert_eq!(done["ret"], 0, "resolved: {done}");
    assert!(
        done["duration_ns"].as_u64().is_some_and(|d| d > 0),
        "{done}"
    );
    assert_eq!(
        named("dns_start"),
        named("dns_done"),
        "each lookup starts and ends"
    );
}
