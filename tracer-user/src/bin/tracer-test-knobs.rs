//! `tracer` that honours the `TRACER_TEST_*` variables (see `knobs`), for
//! the tests that simulate a missing tracepoint, missing BTF or a slow ring
//! reader. Built only with the `test-knobs` feature; never installed.
fn main() {
    tracer_user::knobs::enable_test_knobs();
    std::process::exit(tracer_user::cli::main());
}
