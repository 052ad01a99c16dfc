//! Project tasks: `cargo xtask setup | test | run | bench | dist | docs`.
mod bench;
mod dist;
mod dist_check;
mod docs;
mod guest;
mod otlp_receiver;
mod setup;
mod shell;
mod skips;
mod stable_lib;
mod tools;

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use clap::{Parser, Subcommand};
use skips::SkipLog;

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
    /// Set up, build, then run every test as root, one at a time; with no
    /// test selected, also `dist --check` and `docs`; then the probe and
    /// end-to-end tests again inside guest kernels (qemu): Debian 12's
    /// Linux 6.1 and its backports' 6.12.
    Test {
        /// Run the guest tests in this kernel alone, instead of the default
        /// kernels: an image (e.g. /boot/vmlinuz-6.1.0-57-amd64) or a
        /// matrix name (5.10, 6.1, 6.12), installed when missing.
        #[arg(long, value_name = "PATH")]
        kernel: Option<std::path::PathBuf>,
        /// Only the host; no guest kernel.
        #[arg(long, conflicts_with = "kernel")]
        no_guest: bool,
        /// Extra arguments for `cargo test` (after `--`: test filters).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build and run a crate outside the workspace on stable that uses the
    /// library without default features (`cargo xtask test` does it first).
    LibCheck,
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
        /// Run only these workloads (their numbers, e.g. `--only 4,10`).
        #[arg(long, value_delimiter = ',', value_name = "N")]
        only: Vec<u32>,
    },
    /// Build the release artifacts into target/dist/: the static musl
    /// binary's tarball (and unpacked), a .deb, and SHA256SUMS.
    Dist {
        /// Then test them as a user would (root): empty-root `check` and
        /// `demo`, the .deb in a scratch root, the tarball's --version.
        #[arg(long)]
        check: bool,
    },
    /// Check the book's links and build it (docs/, mdBook) into target/book/.
    Docs,
}

fn main() {
    let cli = Cli::parse();
    let result: Result<()> = match cli.task {
        Task::Setup => setup::run().map(|_| ()),
        Task::Test {
            kernel,
            no_guest,
            args,
        } => test(kernel, no_guest, &args),
        Task::LibCheck => stable_lib::check(),
        Task::Run { args } => run(&args),
        Task::Bench { quick, only } => bench::run(quick, &only),
        Task::Dist { check } => dist(check),
        Task::Docs => docs::run().map(|_| ()),
    };
    if let Err(e) = result {
        eprintln!("xtask: {e:#}");
        std::process::exit(1);
    }
}

/// Set by CI (`.ci/run`): on a machine that can trace, a host test that
/// says `skipped:`, or a guest that cannot be set up, fails the run.
/// `TRACER_REQUIRE_KERNEL=1` (issue 15's name for it) does the same.
const STRICT_ENV: &str = "TRACER_STRICT";
const STRICT_ENV_ALIAS: &str = "TRACER_REQUIRE_KERNEL";

fn strict() -> bool {
    [STRICT_ENV, STRICT_ENV_ALIAS]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|v| v == "1"))
}

/// Runs the tests; at the end, however it ends after they ran, says how
/// many were skipped and why.
fn test(kernel: Option<PathBuf>, no_guest: bool, args: &[String]) -> Result<()> {
    let mut skips = SkipLog::default();
    let result = run_tests(kernel, no_guest, args, &mut skips);
    if skips.tests_ran {
        println!("{}", skips.summary());
    }
    result
}

fn run_tests(
    kernel: Option<PathBuf>,
    no_guest: bool,
    args: &[String],
    skips: &mut SkipLog,
) -> Result<()> {
    setup::run()?;
    tools::ensure()?;
    otlp_receiver::ensure()?;
    // Before the workspace build: the library must not need the eBPF toolchain.
    stable_lib::check()?;
    let executables = build_tests()?;
    // knobs_ignored checks the binary users get, so it is built as they build it.
    build_release_tracer()?;
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
    // libtest hides a passing test's output: show it, to find the skips.
    cmd.arg("--show-output");
    shell::status_lines(&mut cmd, "the tests", |line| skips.observe(line))?;
    if strict() && !skips.skips.is_empty() && can_trace() {
        anyhow::bail!(
            "strict mode ({STRICT_ENV}=1 or {STRICT_ENV_ALIAS}=1) and `tracer check` says this \
             machine can trace, yet {} test(s) said skipped (listed above)",
            skips.skips.len(),
        );
    }
    // The release artifacts, when the whole suite runs: a test filter
    // means someone is iterating on one test.
    if selects_tests(args) {
        println!(
            "dist, docs: not built (tests selected; `cargo xtask dist --check` and \
             `cargo xtask docs` build them)"
        );
    } else if !shell::is_root() {
        // chroot, mounts and dpkg --root need it; the tests had sudo.
        skips.add(
            "dist --check".into(),
            "needs root: run `sudo cargo xtask dist --check`".into(),
        );
    } else {
        dist(true)?;
        docs::run()?;
    }
    if no_guest {
        println!("guest: not run (--no-guest)");
        return Ok(());
    }
    if selects_tests(args) && kernel.is_none() {
        println!("guest: not run (tests selected; `--kernel PATH` runs the guest too)");
        return Ok(());
    }
    let bins: Vec<(String, PathBuf)> = guest::GUEST_TESTS
        .iter()
        .map(|name| {
            executables
                .iter()
                .find(|(n, _)| n == name)
                .cloned()
                .with_context(|| format!("test target {name} was not built"))
        })
        .collect::<Result<_>>()?;
    // `--kernel PATH` or `--kernel NAME`: that kernel alone, and a missing
    // piece is an error.
    if let Some(image) = kernel {
        guest::prepare_tools().context("setting up the guest tools")?;
        if let Some(k) = image.to_str().and_then(guest::named) {
            let path = guest::prepare_image(k)?;
            return run_guest(&path, &bins, k.env);
        }
        if !image.is_file() {
            anyhow::bail!(
                "kernel image {} does not exist (names: 5.10, 6.1, 6.12)",
                image.display()
            );
        }
        return run_guest(&image, &bins, &[]);
    }
    // The default matrix: a kernel that cannot be set up is said plainly,
    // and fails the run in CI.
    let tools = guest::prepare_tools();
    for k in guest::DEFAULT_KERNELS {
        let image = tools
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e:#}"))
            .and_then(|()| guest::prepare_image(k));
        match image {
            Ok(image) => run_guest(&image, &bins, k.env)?,
            Err(e) if !strict() => {
                skips.add(
                    format!("guest {}", k.label),
                    format!("cannot be set up here: {e:#}"),
                );
            }
            Err(e) => return Err(e.context(format!("setting up guest {}", k.label))),
        }
    }
    Ok(())
}

fn run_guest(
    image: &std::path::Path,
    bins: &[(String, PathBuf)],
    env: &[(&str, &str)],
) -> Result<()> {
    let run = guest::run(image, bins, env)?;
    let env: Vec<String> = env.iter().map(|(k, v)| format!(" {k}={v}")).collect();
    println!(
        "guest: Linux {} ({}{}): {} tests passed in {:.0} s, boot included",
        run.release,
        image.display(),
        env.concat(),
        run.passed,
        run.seconds
    );
    Ok(())
}

/// Whether `tracer check` (the debug build the tests use) exits 0 here.
fn can_trace() -> bool {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| shell::workspace_root().ok().map(|r| r.join("target")));
    target.is_some_and(|t| {
        std::process::Command::new(t.join("debug/tracer"))
            .arg("check")
            .stdout(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Builds every test binary; returns (test target name, executable).
fn build_tests() -> Result<Vec<(String, PathBuf)>> {
    let mut build = shell::cargo();
    build.args([
        "test",
        "--workspace",
        "--no-run",
        "--message-format=json-render-diagnostics",
    ]);
    build.stdout(std::process::Stdio::piped());
    let out = build
        .spawn()
        .context("building the tests: could not start cargo")?
        .wait_with_output()?;
    if !out.status.success() {
        anyhow::bail!("building the tests failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["profile"]["test"] == true)
        .filter_map(|v| {
            let name = v["target"]["name"].as_str()?.to_string();
            let exe = v["executable"].as_str()?;
            Some((name, PathBuf::from(exe)))
        })
        .collect())
}

/// Builds `target/release/tracer` the one way users get it: no features
/// beyond the defaults, so no test or bench knobs.
fn build_release_tracer() -> Result<PathBuf> {
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
    Ok(shell::workspace_root()?.join("target/release/tracer"))
}

fn dist(check: bool) -> Result<()> {
    let started = std::time::Instant::now();
    let artifacts = dist::run()?;
    if check {
        dist_check::run(&artifacts)?;
        println!(
            "dist: built and checked in {:.0} s",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn run(args: &[String]) -> Result<()> {
    setup::run()?;
    let bin = build_release_tracer()?;
    let mut cmd = shell::as_root(&bin);
    cmd.args(args);
    let status = cmd.status()?;
    std::process::exit(status.code().unwrap_or(1));
}

/// Whether `args` pick some tests (a `--test` target, a name filter...):
/// the guests then do not run. Flags that only change how every test runs
/// (`--no-fail-fast`) keep the whole matrix.
fn selects_tests(args: &[String]) -> bool {
    args.iter().any(|a| a != "--no-fail-fast")
}

fn split_dashdash(args: &[String]) -> (&[String], &[String]) {
    match args.iter().position(|a| a == "--") {
        Some(i) => (&args[..i], &args[i + 1..]),
        None => (args, &[]),
    }
}

#[cfg(test)]
mod tests {
    use super::selects_tests;

    #[test]
    fn only_no_fail_fast_keeps_the_guests() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(!selects_tests(&args(&[])));
        assert!(!selects_tests(&args(&["--no-fail-fast"])));
        assert!(selects_tests(&args(&[
            "--no-fail-fast",
            "--test",
            "trace_e2e"
        ])));
        assert!(selects_tests(&args(&["--", "two_thousand"])));
    }
}
