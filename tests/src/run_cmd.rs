//! `tracer run` as a test drives it: JSON lines from `-o FILE`, a run
//! bounded in time, and tools the scenarios need.
use std::{path::PathBuf, process::Command};

use serde_json::Value;

use crate::{
    process::json_lines,
    tracer_bin::{Run, tracer, tracer_bin},
};

/// Whether `tool --version` runs; prints the skip reason if not.
pub fn have(tool: &str) -> bool {
    let ok = Command::new(tool).arg("--version").output().is_ok();
    if !ok {
        println!("skipped: {tool} not installed");
    }
    ok
}

fn out_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("tracer-run-{}-{name}.jsonl", std::process::id()))
}

/// `tracer run --format json -o FILE ARGS`: the run and the JSON lines.
pub fn run_json(name: &str, args: &[&str]) -> (Run, Vec<Value>) {
    let file = out_file(name);
    let file_arg = file.to_string_lossy().into_owned();
    let mut all = vec!["run", "--format", "json", "-o", &file_arg];
    all.extend_from_slice(args);
    let run = tracer(&all);
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let _ = std::fs::remove_file(&file);
    (run, json_lines(&text))
}

/// `tracer ARGS` bounded by `timeout`, so that a tracer that never sees its
/// processes leave fails the test instead of hanging it.
pub fn run_bounded(seconds: u32, args: &[&str]) -> Run {
    let out = Command::new("timeout")
        .arg(seconds.to_string())
        .arg(tracer_bin())
        .args(args)
        .output()
        .expect("timeout runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
