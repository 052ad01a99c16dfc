//! The OTLP receiver that tests/tests/otlp_export.rs posts to: Python with
//! PyPI's opentelemetry-proto, in a venv at target/otlp-receiver (the path
//! tests/src/otlp_receiver.rs looks in, and fills itself if run alone).
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Result, bail};

use crate::{shell, tools};

const PACKAGES: &[&str] = &["opentelemetry-proto", "protobuf"];
const CHECK: &str = "import opentelemetry.proto.collector.trace.v1.trace_service_pb2";

fn venv_dir() -> Result<PathBuf> {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(t) => PathBuf::from(t),
        None => shell::workspace_root()?.join("target"),
    };
    Ok(target.join("otlp-receiver"))
}

fn runs(program: &Path, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Makes the venv and installs the receiver's packages when missing.
pub fn ensure() -> Result<()> {
    let venv = venv_dir()?;
    let python = venv.join("bin/python");
    if runs(&python, &["-c", CHECK]) {
        eprintln!("setup: ok       OTLP receiver ({})", venv.display());
        return Ok(());
    }
    // Debian's python3 has no venv or pip until these are installed.
    if !runs(Path::new("python3"), &["-c", "import venv, ensurepip"]) {
        tools::install_packages(&["python3-venv", "python3-pip"], "the OTLP receiver")?;
    }
    shell::status(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
        "python3 -m venv",
    )?;
    shell::status(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .args(PACKAGES),
        &format!("pip install {}", PACKAGES.join(" ")),
    )?;
    if !runs(&python, &["-c", CHECK]) {
        bail!("the OTLP receiver's packages do not import after pip install");
    }
    eprintln!(
        "setup: DID      OTLP receiver: {} in {}",
        PACKAGES.join(" "),
        venv.display()
    );
    Ok(())
}
