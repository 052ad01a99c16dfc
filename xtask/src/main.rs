//! Project tasks: `cargo xtask setup | test | run | bench`.
mod bench;
mod setup;
mod shell;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "tracer's project tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Make this machine ready to build tracer: nightly rust-src and a
    /// bpf-linker on the nightly's LLVM. Idempotent.
    Setup,
    /// Set up, build, then run every test as root, one at a time.
    Test {
        /// Extra arguments for `cargo test` (after `--`: test filters).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Set up, build the release binary, and run `tracer ARGS` as root.
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build, then measure the tracer's overhead, event throughput, start-up
    /// and memory beside untraced baselines; writes target/bench/bench.{md,json}.
    Bench {
        /// Shorter rounds: a smoke run of every workload in about a minute.
        #[arg(long)]
        quick: bool,
    },
}

fn main() {
    let cli = Cli::parse();
    let result: Result<()> = match cli.task {
        Task::Setup => setup::run().map(|_| ()),
        Task::Test { args } => test(&args),
        Task::Run { args } => run(&args),
        Task::Bench { quick } => bench::run(quick),
    };
    if let Err(e) = result {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}

fn test(args: &[String]) -> Result<()> {
    setup::run()?;
    let mut build = shell::cargo();
    build.args(["test", "--workspace", "--no-run"]);
    shell::status(&mut build, "building the tests")?;
    // Tests load eBPF programs: they run as root, and serially, because the
    // kernel's tracepoints and the loopback ports are shared by all of them.
    let mut cmd = shell::cargo();
    cmd.args(["test", "--workspace"]);
    if !shell::is_root() {
        cmd.args(["--config", r#"target."cfg(all())".runner="sudo -E""#]);
    }
    let (cargo_args, test_args) = split_dashdash(args);
    cmd.args(cargo_args)
        .arg("--")
        .arg("--test-threads=1")
        .args(test_args);
    shell::status(&mut cmd, "the tests")
}

fn run(args: &[String]) -> Result<()> {
    setup::run()?;
    let mut build = shell::cargo();
    build.args([
        "build",
        "--release",
        "--package",
        "tracer-user",
        "--bin",
        "tracer",
    ]);
    shell::status(&mut build, "building tracer")?;
    let bin = shell::workspace_root()?.join("target/release/tracer");
    let mut cmd = shell::as_root(&bin);
    cmd.args(args);
    let status = cmd.status()?;
    std::process::exit(status.code().unwrap_or(1));
}

fn split_dashdash(args: &[String]) -> (&[String], &[String]) {
    match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (args, &[]),
    }
}
