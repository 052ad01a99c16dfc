//! `cargo xtask dist`: the release artifacts in target/dist/.
//!
//! - `tracer-VERSION-x86_64-unknown-linux-musl.tar.gz`: the static binary
//!   (eBPF object embedded), man pages and completions; also kept unpacked
//!   beside it.
//! - `tracer_VERSION_amd64.deb`: the same files at Debian's paths.
//! - `SHA256SUMS`, with bare names: `sha256sum -c SHA256SUMS` there.
//!
//! The .deb is made with dpkg-deb, Debian's own packer, from a staged tree:
//! cargo-deb would add a multi-minute `cargo install` to every setup for
//! what is a control file and seven paths.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{Context as _, Result, bail};

use crate::{setup::MUSL_TARGET, shell};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What `dist` made, for `dist --check`.
pub struct Artifacts {
    pub dir: PathBuf,
    pub unpacked: PathBuf,
    pub tarball: PathBuf,
    pub deb: PathBuf,
    pub commit: String,
}

/// Completions: (clap_complete shell, name in the tarball, path in the .deb).
pub const COMPLETIONS: &[(&str, &str, &str)] = &[
    (
        "bash",
        "tracer.bash",
        "usr/share/bash-completion/completions/tracer",
    ),
    ("zsh", "_tracer", "usr/share/zsh/vendor-completions/_tracer"),
    (
        "fish",
        "tracer.fish",
        "usr/share/fish/vendor_completions.d/tracer.fish",
    ),
];

pub fn run() -> Result<Artifacts> {
    crate::setup::run()?;
    let started = Instant::now();
    let commit = git_commit()?;
    let binary = build_static(&commit)?;
    let built = started.elapsed().as_secs_f64();
    let dir = shell::workspace_root()?.join("target/dist");
    if dir.exists() {
        fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let name = format!("tracer-{VERSION}-{MUSL_TARGET}");
    let unpacked = dir.join(&name);
    stage_tarball_tree(&binary, &unpacked)?;
    let tarball = dir.join(format!("{name}.tar.gz"));
    pack_tarball(&dir, &name, &tarball, &commit)?;
    let deb = dir.join(format!("tracer_{VERSION}_amd64.deb"));
    pack_deb(&unpacked, &deb, &dir.join("deb-root"))?;
    let sums = shell::output(
        Command::new("sha256sum")
            .arg(file_name(&tarball))
            .arg(file_name(&deb))
            .current_dir(&dir),
    )
    .context("sha256sum failed")?;
    fs::write(dir.join("SHA256SUMS"), sums)?;
    println!(
        "dist: {} (commit {commit}): static build {built:.0} s, all {:.0} s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    for f in [&tarball, &deb] {
        println!(
            "dist:   {} ({} bytes)",
            file_name(f).to_string_lossy(),
            fs::metadata(f)?.len()
        );
    }
    Ok(Artifacts {
        dir,
        unpacked,
        tarball,
        deb,
        commit,
    })
}

fn file_name(path: &Path) -> &std::ffi::OsStr {
    path.file_name().unwrap_or(path.as_os_str())
}

/// HEAD's short hash, `-dirty` when tracked files differ from it: a
/// binary must not claim a commit it was not built from.
fn git_commit() -> Result<String> {
    let root = shell::workspace_root()?;
    let hash = shell::output(
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(&root),
    )
    .context("`git rev-parse HEAD` failed: dist names the commit it was built from")?;
    let clean = Command::new("git")
        .args(["diff", "--quiet", "HEAD", "--"])
        .current_dir(&root)
        .status()
        .context("git diff")?
        .success();
    Ok(format!(
        "{}{}",
        hash.trim(),
        if clean { "" } else { "-dirty" }
    ))
}

/// `tracer` for x86_64 musl, statically linked, release profile.
fn build_static(commit: &str) -> Result<PathBuf> {
    let mut build = shell::cargo();
    build
        .args(["build", "--release", "--package", "tracer-user", "--bin"])
        .args(["tracer", "--target", MUSL_TARGET])
        .env("TRACER_GIT_COMMIT", commit);
    shell::status(&mut build, "building the static tracer")?;
    let bin = shell::workspace_root()?.join(format!("target/{MUSL_TARGET}/release/tracer"));
    let file = shell::output(Command::new("file").arg(&bin)).unwrap_or_default();
    // `file` says "static-pie linked" or "statically linked"; absent, trust
    // the check's empty root to catch a dynamic binary.
    if file.contains("dynamically linked") {
        bail!("{} is dynamically linked: {file}", bin.display());
    }
    Ok(bin)
}

/// tracer at the top; man/ and completions/ beside it.
fn stage_tarball_tree(binary: &Path, out: &Path) -> Result<()> {
    fs::create_dir_all(out.join("completions"))?;
    let tracer = out.join("tracer");
    fs::copy(binary, &tracer).with_context(|| format!("copying {}", binary.display()))?;
    // musl's std brings its debug info (6 MB); the symbols stay, for
    // backtraces and profilers.
    shell::status(
        Command::new("strip").arg("--strip-debug").arg(&tracer),
        "strip --strip-debug",
    )?;
    shell::status(
        Command::new(&tracer).arg("__man").arg(out.join("man")),
        "generating the man pages",
    )?;
    for (shell_name, file, _) in COMPLETIONS {
        let script = Command::new(&tracer)
            .args(["completions", shell_name])
            .output()
            .context("tracer completions")?;
        if !script.status.success() || script.stdout.is_empty() {
            bail!(
                "`tracer completions {shell_name}` failed ({})",
                script.status
            );
        }
        fs::write(out.join("completions").join(file), script.stdout)?;
    }
    let readme = shell::workspace_root()?.join("README.md");
    fs::copy(&readme, out.join("README.md"))?;
    Ok(())
}

/// Reproducible: sorted names, owner root, mtime the commit's time.
fn pack_tarball(dir: &Path, name: &str, tarball: &Path, commit: &str) -> Result<()> {
    let hash = commit.trim_end_matches("-dirty");
    let time = shell::output(Command::new("git").args(["show", "-s", "--format=%ct", hash]))
        .unwrap_or_else(|| "0".into());
    shell::status(
        Command::new("tar")
            .args(["--sort=name", "--owner=0", "--group=0", "--numeric-owner"])
            .arg(format!("--mtime=@{}", time.trim()))
            .args(["-I", "gzip -9n", "-cf"])
            .arg(tarball)
            .arg(name)
            .current_dir(dir),
        "packing the tarball",
    )
}

/// The .deb's tree: binary, gzipped man pages, completions, copyright.
fn pack_deb(unpacked: &Path, deb: &Path, root: &Path) -> Result<()> {
    let bin = root.join("usr/bin");
    let man = root.join("usr/share/man/man1");
    let doc = root.join("usr/share/doc/tracer");
    for d in [&bin, &man, &doc] {
        fs::create_dir_all(d)?;
    }
    fs::copy(unpacked.join("tracer"), bin.join("tracer"))?;
    for page in fs::read_dir(unpacked.join("man"))? {
        let page = page?.path();
        let target = man.join(file_name(&page));
        fs::copy(&page, &target)?;
        shell::status(Command::new("gzip").arg("-9n").arg(&target), "gzip")?;
    }
    for (_, file, path) in COMPLETIONS {
        let target = root.join(path);
        fs::create_dir_all(target.parent().context("completion path")?)?;
        fs::copy(unpacked.join("completions").join(file), &target)?;
    }
    fs::write(
        doc.join("copyright"),
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\
         Upstream-Name: tracer\n\nFiles: *\nCopyright: the tracer authors\nLicense: MIT or Apache-2.0\n",
    )?;
    let installed_kib = du_kib(root)?;
    fs::create_dir_all(root.join("DEBIAN"))?;
    fs::write(
        root.join("DEBIAN/control"),
        format!(
            "Package: tracer\nVersion: {VERSION}\nArchitecture: amd64\n\
             Maintainer: tracer authors <tracer@localhost>\nSection: devel\nPriority: optional\n\
             Installed-Size: {installed_kib}\n\
             Description: HTTP request tracing with a kernel-confirmed timeline\n \
             tracer traces HTTP requests like Go's httptrace, with the kernel's view of the\n \
             same sockets (eBPF): a URL, a running process, or a command it starts.\n \
             Statically linked; the eBPF programs are inside the binary.\n"
        ),
    )?;
    shell::status(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(root)
            .arg(deb),
        "dpkg-deb --build",
    )?;
    fs::remove_dir_all(root)?;
    Ok(())
}

fn du_kib(root: &Path) -> Result<u64> {
    let out = shell::output(Command::new("du").args(["-sk"]).arg(root)).context("du -sk")?;
    out.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .context("du's output")
}
