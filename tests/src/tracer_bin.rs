//! Running the `tracer` binary the way a user does.
use std::{path::PathBuf, process::Command};

/// `target/<profile>/tracer`, next to this test executable's `deps/`. In
/// a guest where `cargo xtask test` forces the kprobe fallback
/// (`TRACER_TEST_FORCE_KPROBE=1`), `tracer-test-knobs` instead, the same
/// program that honours the knob, so every test runs on that mechanism.
pub fn tracer_bin() -> PathBuf {
    if std::env::var_os("TRACER_TEST_FORCE_KPROBE").is_some_and(|v| v == "1") {
        return tracer_test_knobs_bin();
    }
    profile_bin("tracer")
}

/// `target/<profile>/tracer-test-knobs`: `tracer` that honours the
/// `TRACER_TEST_*` variables. This crate's dev-dependency turns on the
/// feature that builds it, so it exists after `cargo test --workspace`.
pub fn tracer_test_knobs_bin() -> PathBuf {
    profile_bin("tracer-test-knobs")
}

/// `target/<profile>/tracer-bench-knobs`: `tracer` that honours
/// `TRACER_BENCH_FLOOR`, as `cargo xtask bench`'s floor round runs it.
pub fn tracer_bench_knobs_bin() -> PathBuf {
    profile_bin("tracer-bench-knobs")
}

/// `target/<profile>/NAME`, the directory above this test executable's `deps/`.
pub fn profile_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is missing: build the workspace's tests first (`cargo xtask test`)",
        bin.display()
    );
    bin
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tracer ARGS` to completion (every test server is bounded).
pub fn tracer(args: &[&str]) -> Run {
    tracer_env(args, &[])
}

/// [`tracer`] with extra environment variables.
pub fn tracer_env(args: &[&str], env: &[(&str, &str)]) -> Run {
    run_bin(&tracer_bin(), args, env)
}

/// `tracer-test-knobs ARGS` with these `TRACER_TEST_*` variables.
pub fn tracer_with_test_knobs(args: &[&str], env: &[(&str, &str)]) -> Run {
    run_bin(&tracer_test_knobs_bin(), args, env)
}

/// Runs `bin ARGS` to completion with extra environment variables.
pub fn run_bin(bin: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let out = Command::new(bin)
        .args(args)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .output()
        .expect("tracer runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

impl Run {
    /// Its stdout as JSON Lines (`--format json`).
    pub fn json(&self) -> Vec<serde_json::Value> {
        crate::process::json_lines(&self.stdout)
    }
}
