//! Environment knobs for the tests and the bench: they simulate what this
//! machine does not lack (a missing tracepoint, no kernel BTF, a slow ring
//! reader, a pool's spare connection) or measure a floor.
//!
//! The `tracer` binary never reads them: it may run privileged (root or
//! setcap), and `TRACER_TEST_BTF_PATH` would let any user who can write a
//! file choose the kernel offsets it trusts. They are compiled in only with
//! the `test-knobs` / `bench-knobs` features, and even then honoured only by
//! the binaries that turn them on at start (`tracer-test-knobs`,
//! `tracer-bench-knobs`), so a feature that cargo unifies into some build
//! still cannot reach `tracer`.
#[cfg(any(feature = "test-knobs", feature = "bench-knobs"))]
use std::sync::atomic::{AtomicBool, Ordering};

#[cfg(feature = "test-knobs")]
static TEST_KNOBS: AtomicBool = AtomicBool::new(false);
#[cfg(feature = "bench-knobs")]
static BENCH_KNOBS: AtomicBool = AtomicBool::new(false);

/// Called first by `tracer-test-knobs`: the `TRACER_TEST_*` variables apply.
#[cfg(feature = "test-knobs")]
pub fn enable_test_knobs() {
    TEST_KNOBS.store(true, Ordering::Relaxed);
}

/// Called first by `tracer-bench-knobs`: `TRACER_BENCH_FLOOR` applies.
#[cfg(feature = "bench-knobs")]
pub fn enable_bench_knobs() {
    BENCH_KNOBS.store(true, Ordering::Relaxed);
}

#[cfg(feature = "test-knobs")]
fn test_var(name: &str) -> Option<String> {
    if TEST_KNOBS.load(Ordering::Relaxed) {
        std::env::var(name).ok()
    } else {
        None
    }
}

#[cfg(not(feature = "test-knobs"))]
fn test_var(_name: &str) -> Option<String> {
    None
}

/// `TRACER_TEST_BTF_PATH=FILE`: preflight reads kernel BTF from FILE (e.g.
/// a missing one) for its offset and tracepoint checks.
pub(crate) fn btf_path() -> Option<String> {
    test_var("TRACER_TEST_BTF_PATH")
}

/// `TRACER_TEST_HIDE_TRACEPOINTS=a,b`: preflight pretends these tracepoints
/// are not in the kernel.
pub(crate) fn hidden_tracepoints() -> Vec<String> {
    test_var("TRACER_TEST_HIDE_TRACEPOINTS")
        .map(|v| v.split(',').map(str::to_string).collect())
        .unwrap_or_default()
}

/// `TRACER_TEST_FORCE_KPROBE=1`: hooks that stand in for a missing
/// tracepoint skip BPF trampolines and take kprobes, as on kernels that
/// cannot attach trampolines (the guest tests cover both fallbacks).
pub(crate) fn force_kprobe() -> bool {
    test_var("TRACER_TEST_FORCE_KPROBE").is_some_and(|v| v == "1")
}

/// `TRACER_TEST_READER_DELAY_MS=N`: `trace`'s ring reader starts N ms late,
/// so that a small ring overflows and the lost count can be checked.
pub(crate) fn reader_delay_ms() -> Option<u64> {
    test_var("TRACER_TEST_READER_DELAY_MS").and_then(|v| v.parse().ok())
}

/// `TRACER_TEST_SPARE_CONNECT=N`: before request N, `trace` opens a TCP
/// connection to the URL's host that no request rides, as a pool racing its
/// returning idle connection does (hyper issue 4134).
pub(crate) fn spare_connect_before() -> Option<u32> {
    test_var("TRACER_TEST_SPARE_CONNECT").and_then(|v| v.parse().ok())
}

/// `TRACER_BENCH_FLOOR=1` (`cargo xtask bench`'s floor round): the send/recv
/// programs are attached but return at once, so what remains is the cost of
/// the kernel's tracepoint dispatch alone.
pub(crate) fn bench_floor() -> bool {
    #[cfg(feature = "bench-knobs")]
    if BENCH_KNOBS.load(Ordering::Relaxed) {
        return std::env::var_os("TRACER_BENCH_FLOOR").is_some_and(|v| v == "1");
    }
    false
}
