//! The programs the end-to-end tests drive besides tracer (curl, nginx,
//! nftables, iproute2's ip and nstat, openssl, libssl-dev, go, wget), installed from Debian's packages when
//! missing: a test must never skip for want of a tool the setup can get.
use std::process::Command;

use anyhow::{Result, bail};

use crate::shell;

/// (command, Debian package that provides it)
const TOOLS: &[(&str, &str)] = &[
    ("curl", "curl"),
    ("nginx", "nginx-light"),
    ("nft", "nftables"),
    ("ip", "iproute2"),
    ("nstat", "iproute2"),
    ("unshare", "util-linux"),
    ("getent", "libc-bin"),
    // attach_https makes its test certificate with it.
    ("openssl", "openssl"),
    // attach_https_static links its client with libssl.a (a file, not a
    // command: see `has`).
    ("/usr/include/openssl/ssl.h", "libssl-dev"),
    // attach_https_go builds its Go client and server with it.
    ("go", "golang-go"),
    // run_https_gnutls: Debian's wget links libgnutls30.
    ("wget", "wget"),
];

/// Whether `command` is on PATH; a name that starts with `/` is a file
/// that a package installs (headers, static libraries).
fn has(command: &str) -> bool {
    if command.starts_with('/') {
        return std::path::Path::new(command).exists();
    }
    Command::new("sh")
        .args(["-c", &format!("command -v {command}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Installs the packages of the missing test tools; says what it did.
pub fn ensure() -> Result<()> {
    install_missing(TOOLS, "the tests")
}

/// Installs the packages of those `tools` that are missing; `who` names
/// what needs them, in the messages.
pub fn install_missing(tools: &[(&str, &str)], who: &str) -> Result<()> {
    let mut missing: Vec<&str> = tools
        .iter()
        .filter(|(command, _)| !has(command))
        .map(|(_, package)| *package)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        let names: Vec<&str> = tools.iter().map(|(c, _)| *c).collect();
        eprintln!("setup: ok       tools present ({})", names.join(", "));
        return Ok(());
    }
    if !shell::is_root() || !has("apt-get") {
        bail!(
            "{who} need {}: install them (apt-get install {})",
            missing.join(", "),
            missing.join(" ")
        );
    }
    install_packages(&missing, who)
}

/// Installs these Debian packages (root and apt-get needed).
pub fn install_packages(packages: &[&str], who: &str) -> Result<()> {
    if !shell::is_root() || !has("apt-get") {
        bail!("{who} need: apt-get install {}", packages.join(" "));
    }
    shell::status(
        Command::new("apt-get").args(["update", "-qq"]),
        "apt-get update",
    )?;
    shell::status(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        &format!("apt-get install {}", packages.join(" ")),
    )?;
    eprintln!("setup: DID      installed {}", packages.join(" "));
    Ok(())
}
