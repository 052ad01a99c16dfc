//! `tracer` that honours `TRACER_BENCH_FLOOR` (see `knobs`), for the bench's
//! floor round. Built only with the `bench-knobs` feature; never installed.
fn main() {
    tracer_user::knobs::enable_bench_knobs();
    std::process::exit(tracer_user::cli::main());
}
