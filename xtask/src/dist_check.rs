//! `cargo xtask dist --check`: the artifacts do what a user does with them.
//!
//! - SHA256SUMS verifies with `sha256sum -c` inside target/dist/.
//! - The tarball, unpacked afresh, says the version and the commit.
//! - The static binary runs `check` and `demo` in an empty root holding
//!   only itself, /proc and /sys: nothing of the host's libraries.
//! - The .deb installs into a scratch root (dpkg --root, never the host's
//!   database), holds its paths, runs `demo` there, and purges to nothing.
//!
//! Mounts happen in a private mount namespace (`unshare --mount`), so they
//! vanish with it whatever happens.
use std::{
    collections::BTreeSet,
    fs,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail, ensure};

use crate::{
    dist::{Artifacts, COMPLETIONS, VERSION},
    shell,
};

/// Subcommands that get a man page besides tracer.1.
const MAN_PAGES: &[&str] = &[
    "tracer",
    "tracer-trace",
    "tracer-attach",
    "tracer-run",
    "tracer-demo",
    "tracer-check",
    "tracer-completions",
];

pub fn run(a: &Artifacts) -> Result<()> {
    ensure!(
        shell::is_root(),
        "dist --check needs root (chroot, mounts, probes)"
    );
    let scratch = shell::workspace_root()?.join("target/dist-check");
    if scratch.exists() {
        fs::remove_dir_all(&scratch)?;
    }
    fs::create_dir_all(&scratch)?;
    checksums(&a.dir)?;
    tarball_version(a, &scratch.join("tarball"))?;
    empty_root(&a.unpacked.join("tracer"), &scratch.join("root"))?;
    deb(&a.deb, &scratch.join("deb"))?;
    fs::remove_dir_all(&scratch)?;
    println!("dist --check: all artifact checks passed");
    Ok(())
}

fn checksums(dir: &Path) -> Result<()> {
    let out = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(dir)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    ensure!(out.status.success(), "sha256sum -c SHA256SUMS:\n{text}");
    ensure!(text.lines().count() == 2, "SHA256SUMS lists {text}");
    println!(
        "dist --check: sha256sum -c SHA256SUMS: {}",
        text.trim().replace('\n', "; ")
    );
    Ok(())
}

fn tarball_version(a: &Artifacts, dir: &Path) -> Result<()> {
    fs::create_dir_all(dir)?;
    shell::status(
        Command::new("tar")
            .arg("-xzf")
            .arg(&a.tarball)
            .arg("-C")
            .arg(dir),
        "unpacking the tarball",
    )?;
    let top = dir.join(a.unpacked.file_name().context("unpacked name")?);
    let mut want: Vec<String> = vec!["tracer".into(), "README.md".into()];
    want.extend(MAN_PAGES.iter().map(|p| format!("man/{p}.1")));
    want.extend(
        COMPLETIONS
            .iter()
            .map(|(_, f, _)| format!("completions/{f}")),
    );
    for f in &want {
        ensure!(top.join(f).is_file(), "the tarball lacks {f}");
    }
    let out = Command::new(top.join("tracer")).arg("--version").output()?;
    let version = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let expected = format!("tracer {VERSION} (commit {})", a.commit);
    ensure!(
        out.status.success() && version == expected,
        "tarball's `tracer --version` printed {version:?}, expected {expected:?}"
    );
    println!(
        "dist --check: tarball holds {} files; --version: {version}",
        want.len()
    );
    Ok(())
}

/// Runs `script` in a private mount namespace, with `root`'s proc and sys
/// bound to the host's; returns (success, stdout+stderr).
fn in_root(root: &Path, script: &str) -> Result<(bool, String)> {
    for d in ["proc", "sys"] {
        fs::create_dir_all(root.join(d))?;
    }
    let r = root.to_str().context("non-UTF-8 path")?;
    let full =
        format!("set -e; mount --rbind /proc '{r}/proc'; mount --rbind /sys '{r}/sys'; {script}");
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &full])
        .output()
        .context("unshare (util-linux)")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok((out.status.success(), text))
}

/// `check` passes and `demo` traces its three requests in a root that
/// holds nothing but the binary, /proc and /sys.
fn empty_root(binary: &Path, root: &Path) -> Result<()> {
    fs::create_dir_all(root)?;
    // The control: a dynamically linked program (xtask itself) cannot start
    // there, so the root is as empty as this check needs it to be.
    let control = root.join("control");
    fs::copy(std::env::current_exe()?, &control)?;
    let (ok, out) = in_root(
        root,
        &format!("chroot '{}' /control --help", root.display()),
    )?;
    ensure!(
        !ok,
        "a dynamically linked program ran in the empty root:\n{out}"
    );
    fs::remove_file(&control)?;
    fs::copy(binary, root.join("tracer"))?;
    let entries: BTreeSet<String> = fs::read_dir(root)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()?;
    let want: BTreeSet<String> = ["proc", "sys", "tracer"].map(String::from).into();
    ensure!(entries == want, "the empty root holds {entries:?}");
    let (ok, check) = in_root(root, &format!("chroot '{}' /tracer check", root.display()))?;
    ensure!(ok, "`tracer check` in an empty root failed:\n{check}");
    let (ok, demo) = in_root(root, &format!("chroot '{}' /tracer demo", root.display()))?;
    ensure!(ok, "`tracer demo` in an empty root failed:\n{demo}");
    demo_traced(&demo).context("`tracer demo` in an empty root")?;
    println!("dist --check: static binary passed `check` and `demo` in an empty root");
    Ok(())
}

/// What a user looks for in the demo's output: the kernel's events, the
/// reuse verdicts, and a summary with nothing lost.
fn demo_traced(out: &str) -> Result<()> {
    for needed in [
        "kernel  connect fd=",
        "verdict: request 2 reused the connection of request 1",
        "summary: 3 requests, 1 connection, 2 reused, 0 failed, 0 lost events",
    ] {
        if !out.contains(needed) {
            bail!("its output lacks {needed:?}:\n{out}");
        }
    }
    Ok(())
}

fn files_under(root: &Path) -> Result<BTreeSet<PathBuf>> {
    let mut all = BTreeSet::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir)? {
            let path = e?.path();
            let rel = path.strip_prefix(root)?.to_path_buf();
            // dpkg's own database and log change by design.
            if rel.starts_with("var/lib/dpkg") || rel.starts_with("var/log") {
                continue;
            }
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
            all.insert(rel);
        }
    }
    Ok(all)
}

fn dpkg(root: &Path) -> Command {
    let mut cmd = Command::new("dpkg");
    cmd.arg(format!("--root={}", root.display()))
        .arg(format!("--log={}", root.join("var/log/dpkg.log").display()));
    cmd
}

fn deb(deb: &Path, root: &Path) -> Result<()> {
    for d in [
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
        "var/log",
        "proc",
        "sys",
    ] {
        fs::create_dir_all(root.join(d))?;
    }
    fs::write(root.join("var/lib/dpkg/status"), "")?;
    let before = files_under(root)?;
    shell::status(
        dpkg(root).arg("--install").arg(deb),
        "dpkg --root --install",
    )?;
    let mut want = vec!["usr/bin/tracer".to_string()];
    want.extend(
        MAN_PAGES
            .iter()
            .map(|p| format!("usr/share/man/man1/{p}.1.gz")),
    );
    want.extend(COMPLETIONS.iter().map(|(_, _, p)| p.to_string()));
    for f in &want {
        ensure!(root.join(f).is_file(), "the installed .deb lacks /{f}");
    }
    let (ok, demo) = in_root(
        root,
        &format!("chroot '{}' /usr/bin/tracer demo", root.display()),
    )?;
    ensure!(ok, "`tracer demo` from the .deb failed:\n{demo}");
    demo_traced(&demo).context("`tracer demo` from the .deb")?;
    shell::status(
        dpkg(root).args(["--purge", "tracer"]),
        "dpkg --root --purge",
    )?;
    let after = files_under(root)?;
    let left: Vec<_> = after.difference(&before).collect();
    ensure!(left.is_empty(), "purging the .deb left {left:?}");
    let status = fs::read_to_string(root.join("var/lib/dpkg/status"))?;
    ensure!(
        !status.contains("Package: tracer"),
        "dpkg still lists tracer after purge:\n{status}"
    );
    println!(
        "dist --check: .deb installed {} checked paths into a scratch root, ran `demo`, purged to nothing",
        want.len()
    );
    Ok(())
}
