//! Running the `tracer` binary the way a user does.
use std::{path::PathBuf, process::Command};

/// `target/<profile>/tracer`, next to this test executable's `deps/`.
pub fn tracer_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target/<profile>");
    let bin = dir.join("tracer");
    assert!(
        bin.exists(),
        "{} is missing: build the workspace first",
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
    let out = Command::new(tracer_bin())
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
