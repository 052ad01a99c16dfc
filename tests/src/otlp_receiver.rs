//! A real OTLP/HTTP receiver (tests/otlp_receiver.py on PyPI's
//! opentelemetry-proto), in a venv under target/ that is made on first use.
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use serde_json::Value;

use crate::process::Proc;

/// PyPI packages the receiver imports.
const PACKAGES: &[&str] = &["opentelemetry-proto", "protobuf"];

pub struct OtlpReceiver {
    _proc: Proc,
    port: u16,
    out: PathBuf,
}

/// `target/otlp-receiver`: beside the profile directories, not copied.
pub fn venv_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let target = exe.ancestors().nth(3).expect("target/<profile>/deps/EXE");
    target.join("otlp-receiver")
}

fn python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

fn ready(venv: &Path) -> bool {
    Command::new(python(venv))
        .args([
            "-c",
            "import opentelemetry.proto.collector.trace.v1.trace_service_pb2",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Makes the venv and installs the receiver's packages unless they are there.
pub fn ensure_venv() -> PathBuf {
    let venv = venv_dir();
    if ready(&venv) {
        return venv;
    }
    let made = Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        made,
        "python3 -m venv {} failed: install python3-venv",
        venv.display()
    );
    let installed = Command::new(python(&venv))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(PACKAGES)
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        installed && ready(&venv),
        "pip install {} failed",
        PACKAGES.join(" ")
    );
    venv
}

impl OtlpReceiver {
    /// Starts the receiver on a free loopback port; its spans go to a file.
    pub fn start(name: &str) -> Self {
        let venv = ensure_venv();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("otlp_receiver.py");
        let out = venv.join(format!("{name}-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&out);
        let proc = Proc::spawn(Command::new(python(&venv)).arg(script).arg(&out))
            .expect("the receiver starts");
        assert!(
            proc.wait_for("listening", false, Duration::from_secs(10)),
            "receiver not listening: {}",
            proc.stderr()
        );
        let port = proc
            .stdout()
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse().ok())
            .expect("listening PORT");
        OtlpReceiver {
            _proc: proc,
            port,
            out,
        }
    }

    /// The base URL for `--otlp` (the exporter appends /v1/traces).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every line written so far: `{"post":N,..}` then the spans of it,
    /// `{"get":PATH,"headers":{..}}` for each GET it answered.
    fn lines(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }

    pub fn posts(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|v| v.get("post").is_some())
            .collect()
    }

    pub fn spans(&self) -> Vec<Value> {
        let lines = self.lines().into_iter();
        lines.filter(|v| v.get("span_id").is_some()).collect()
    }

    pub fn gets(&self) -> Vec<Value> {
        self.lines()
            .into_iter()
            .filter(|v| v.get("get").is_some())
            .collect()
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.out);
    }
}
