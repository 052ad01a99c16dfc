//! The library as its users build it: a crate outside the workspace, on
//! stable, depending on `tracer-user` with `default-features = false`, whose
//! example is built and run. A `bpf-linker` first on PATH that fails makes
//! any path to the eBPF toolchain fail the check.
use std::path::Path;

use anyhow::{Context as _, Result};

use crate::shell;

const MANIFEST: &str = include_str!("../stable-lib/Cargo.toml.in");
const EXAMPLE: &str = include_str!("../stable-lib/src/two_requests.rs");
const TRAP: &str =
    "#!/bin/sh\necho 'stable-lib: the eBPF toolchain was reached (bpf-linker)' >&2\nexit 1\n";

pub fn check() -> Result<()> {
    let root = shell::workspace_root()?;
    let dir = root.join("target/stable-lib");
    let user = root.join("tracer-user");
    let user = user.to_str().context("tracer-user's path is not UTF-8")?;
    write(
        &dir.join("Cargo.toml"),
        &MANIFEST.replace("@TRACER_USER@", user),
    )?;
    write(&dir.join("src/two_requests.rs"), EXAMPLE)?;
    // The workspace's lock file: the versions the workspace is tested with.
    std::fs::copy(root.join("Cargo.lock"), dir.join("Cargo.lock")).context("copying Cargo.lock")?;
    let trap = dir.join("trap/bpf-linker");
    write(&trap, TRAP)?;
    set_executable(&trap)?;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut paths = vec![dir.join("trap")];
    paths.extend(std::env::split_paths(&path));
    let mut cmd = std::process::Command::new("cargo");
    cmd.current_dir(&dir)
        .env("PATH", std::env::join_paths(paths)?)
        // Stable, whatever the caller's toolchain; a nightly is not needed.
        .env("RUSTUP_TOOLCHAIN", "stable")
        .env_remove("CARGO")
        .env_remove("RUSTC")
        // Its own target: a build script output cached by a workspace build
        // with the `ebpf` feature cannot hide a reach for the toolchain.
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .args(["run", "--example", "two_requests"]);
    shell::status(&mut cmd, "the stable library check (target/stable-lib)")
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

fn set_executable(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .with_context(|| format!("chmod {}", path.display()))
}
