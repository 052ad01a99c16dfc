//! The `tracer` a user builds ignores the test and bench knobs. With every
//! one of them set it still reads the kernel's BTF and finds every
//! tracepoint, reads its ring at once, opens no spare connection and traces
//! send and recv. The knob binaries, given the same variables, do what the
//! knobs say (here for the floor; the hardening and findings tests use the
//! others), so these checks can fail.
use std::{path::Path, time::Instant};

use tracer_tests::{
    http_server::{Behaviour, TestServer},
    process::{can_trace_or_skip, of_type},
    tracer_bin::{Run, profile_bin, run_bin, tracer_bench_knobs_bin, tracer_bin},
};

/// Each knob set so that honouring it would show: exit 4 (no BTF, a
/// required tracepoint hidden), a 30 s wait, a second connection, no
/// send/recv events.
const KNOBS: &[(&str, &str)] = &[
    ("TRACER_TEST_BTF_PATH", "/nonexistent/vmlinux"),
    ("TRACER_TEST_HIDE_TRACEPOINTS", "inet_sock_set_state"),
    ("TRACER_TEST_READER_DELAY_MS", "30000"),
    ("TRACER_TEST_SPARE_CONNECT", "1"),
    ("TRACER_BENCH_FLOOR", "1"),
];

fn kernel_event_names(run: &Run) -> Vec<String> {
    of_type(&run.json(), "event")
        .iter()
        .filter(|e| e["source"] == "kernel")
        .filter_map(|e| e["name"].as_str().map(str::to_string))
        .collect()
}

fn assert_ignores_knobs(bin: &Path) {
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let started = Instant::now();
    let run = run_bin(
        bin,
        &["trace", &server.url(), "-n", "2", "--format", "json"],
        KNOBS,
    );
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{}: {}", bin.display(), run.stderr);
    assert!(
        took.as_secs() < 30,
        "{}: took {took:?}: the reader delay was honoured",
        bin.display()
    );
    let lines = run.json();
    let summary = of_type(&lines, "summary")[0];
    assert_eq!(summary["connections_opened"], 1, "{summary}");
    assert_eq!(server.accepted(), 1, "a spare connection was opened");
    let kernel = kernel_event_names(&run);
    assert!(
        kernel.iter().any(|n| n == "send") && kernel.iter().any(|n| n == "recv"),
        "{}: the bench floor was honoured: {kernel:?}",
        bin.display()
    );
}

/// The `tracer` of this very build, where the tests crate turned the knob
/// features on: the worst case, since the knob code is compiled in.
#[test]
fn tracer_built_with_the_knob_features_ignores_the_knobs() {
    if !can_trace_or_skip() {
        return;
    }
    assert_ignores_knobs(&tracer_bin());
}

/// `target/release/tracer` as users build it (`cargo build --release -p
/// tracer-user --bin tracer`, what `cargo xtask run` runs; `cargo xtask
/// test` builds it first): the knobs' names are not even in the binary.
#[test]
fn release_tracer_has_no_knobs() {
    let release = profile_bin("tracer")
        .parent()
        .and_then(Path::parent)
        .expect("target/")
        .join("release/tracer");
    let bytes = std::fs::read(&release).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: build it as users do, `cargo build --release -p tracer-user --bin tracer` \
             (`cargo xtask test` does)",
            release.display()
        )
    });
    for (name, _) in KNOBS {
        assert!(
            !bytes.windows(name.len()).any(|w| w == name.as_bytes()),
            "{} contains {name}: built with a knob feature?",
            release.display()
        );
    }
    if !can_trace_or_skip() {
        return;
    }
    assert_ignores_knobs(&release);
}

/// The bench's floor binary does drop send and recv: the control for the
/// floor check above, and the floor round's only test.
#[test]
fn bench_floor_binary_attaches_send_and_recv_programs_that_return_at_once() {
    if !can_trace_or_skip() {
        return;
    }
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let run = run_bin(
        &tracer_bench_knobs_bin(),
        &["trace", &server.url(), "-n", "2", "--format", "json"],
        &[("TRACER_BENCH_FLOOR", "1")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    let kernel = kernel_event_names(&run);
    assert!(kernel.iter().any(|n| n == "connect"), "{kernel:?}");
    assert!(
        !kernel.iter().any(|n| n == "send" || n == "recv"),
        "{kernel:?}"
    );
}
