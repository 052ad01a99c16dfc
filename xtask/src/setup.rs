//! `cargo xtask setup`: nightly rust-src, a bpf-linker whose LLVM major
//! matches the nightly rustc's, and the musl target and C compiler that
//! `cargo xtask dist` builds the static binary with. Each step says whether
//! it had work to do.
use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{Context as _, Result, bail};

use crate::shell;

const NIGHTLY: &str = "nightly";
const BPF_LINKER_VERSION: &str = "0.13.0";

/// What one step did.
pub enum Step {
    AlreadyDone(String),
    Did(String),
}

pub fn run() -> Result<Vec<Step>> {
    let steps = vec![
        nightly_rust_src()?,
        bpf_linker()?,
        musl_target()?,
        musl_gcc()?,
    ];
    for step in &steps {
        match step {
            Step::AlreadyDone(s) => eprintln!("setup: ok       {s}"),
            Step::Did(s) => eprintln!("setup: DID      {s}"),
        }
    }
    Ok(steps)
}

fn rustup() -> Command {
    Command::new("rustup")
}

fn nightly_sysroot() -> Result<PathBuf> {
    let out = shell::output(rustup().args(["run", NIGHTLY, "rustc", "--print", "sysroot"]))
        .context("no nightly toolchain: run `rustup toolchain install nightly`")?;
    Ok(PathBuf::from(out.trim()))
}

fn nightly_rust_src() -> Result<Step> {
    let sysroot = nightly_sysroot()?;
    let src = sysroot.join("lib/rustlib/src/rust/library/core");
    if src.is_dir() {
        return Ok(Step::AlreadyDone("nightly rust-src present".into()));
    }
    shell::status(
        rustup().args(["component", "add", "rust-src", "--toolchain", NIGHTLY]),
        "installing nightly rust-src (`rustup component add rust-src --toolchain nightly`)",
    )?;
    Ok(Step::Did("installed nightly rust-src".into()))
}

/// The target of the static binary `cargo xtask dist` ships.
pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

/// The musl standard library for the toolchain that builds tracer (the one
/// cargo runs here, stable by default).
fn musl_target() -> Result<Step> {
    let sysroot = shell::output(Command::new("rustc").args(["--print", "sysroot"]))
        .context("rustc --print sysroot failed")?;
    let lib = PathBuf::from(sysroot.trim())
        .join("lib/rustlib")
        .join(MUSL_TARGET);
    if lib.is_dir() {
        return Ok(Step::AlreadyDone(format!("rust target {MUSL_TARGET}")));
    }
    shell::status(
        rustup().args(["target", "add", MUSL_TARGET]),
        &format!("adding the {MUSL_TARGET} target (`rustup target add {MUSL_TARGET}`)"),
    )?;
    Ok(Step::Did(format!("added rust target {MUSL_TARGET}")))
}

/// ring's C and assembly are compiled for musl with musl-gcc (cc-rs's
/// fallback compiler for the musl targets).
fn musl_gcc() -> Result<Step> {
    if shell::output(Command::new("sh").args(["-c", "command -v musl-gcc"])).is_some() {
        return Ok(Step::AlreadyDone("musl-gcc (musl-tools)".into()));
    }
    crate::tools::install_packages(&["musl-tools"], "the static build (cargo xtask dist)")
        .context("the musl build needs musl-gcc: apt-get install musl-tools")?;
    Ok(Step::Did("installed musl-tools (musl-gcc)".into()))
}

/// The nightly's own libLLVM, e.g. `libLLVM.so.22.1-rust-1.97.0-nightly`.
fn nightly_libllvm(sysroot: &Path) -> Result<(PathBuf, String)> {
    let lib = sysroot.join("lib");
    for entry in fs::read_dir(&lib).with_context(|| format!("reading {}", lib.display()))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.starts_with("libLLVM.so.") {
            return Ok((lib.join(&name), name));
        }
    }
    bail!(
        "the nightly toolchain has no libLLVM.so.* in {}",
        lib.display()
    )
}

/// LLVM major of a soname such as `libLLVM.so.22.1-rust-...`.
fn llvm_major(soname: &str) -> Option<&str> {
    soname.strip_prefix("libLLVM.so.")?.split(['.', '-']).next()
}

/// The libLLVM soname an installed bpf-linker links against, if it resolves.
fn installed_linker_llvm() -> Option<String> {
    let path = shell::output(Command::new("sh").args(["-c", "command -v bpf-linker"]))?;
    let ldd = shell::output(Command::new("ldd").arg(path.trim()))?;
    ldd.lines()
        .map(str::trim)
        .find(|l| l.starts_with("libLLVM") && !l.contains("not found"))
        .and_then(|l| l.split_whitespace().next())
        .map(str::to_owned)
}

/// A folder that outlives the build: its path is in bpf-linker's RUNPATH.
fn llvm_prefix(major: &str) -> Result<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .context("neither XDG_DATA_HOME nor HOME is set")?;
    Ok(base.join("tracer-toolchain").join(format!("llvm-{major}")))
}

fn bpf_linker() -> Result<Step> {
    let sysroot = nightly_sysroot()?;
    let (libllvm, soname) = nightly_libllvm(&sysroot)?;
    let major =
        llvm_major(&soname).context("cannot read LLVM version from the nightly's libLLVM")?;
    let installed = installed_linker_llvm();
    if let Some(have) = &installed
        && llvm_major(have) == Some(major)
    {
        return Ok(Step::AlreadyDone(format!(
            "bpf-linker on LLVM {major} ({have})"
        )));
    }
    // bpf-linker 0.13 defaults to another LLVM; point it at the nightly's.
    let prefix = llvm_prefix(major)?;
    let lib = prefix.join("lib");
    fs::create_dir_all(&lib).with_context(|| format!("creating {}", lib.display()))?;
    for name in ["libLLVM.so", soname.as_str()] {
        let link = lib.join(name);
        let _ = fs::remove_file(&link);
        symlink(&libllvm, &link).with_context(|| format!("linking {}", link.display()))?;
    }
    eprintln!(
        "setup: building bpf-linker {BPF_LINKER_VERSION} on LLVM {major} (about 75 s; found: {})",
        installed.as_deref().unwrap_or("none")
    );
    shell::status(
        shell::cargo()
            .env("LLVM_PREFIX", &prefix)
            .args([
                "install",
                "bpf-linker",
                "--version",
                BPF_LINKER_VERSION,
                "--force",
            ])
            .args([
                "--no-default-features",
                "--features",
                &format!("llvm-{major}"),
            ]),
        "building bpf-linker (needs crates.io and a C toolchain)",
    )?;
    Ok(Step::Did(format!("built bpf-linker on LLVM {major}")))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_llvm_major_from_soname() {
        assert_eq!(
            super::llvm_major("libLLVM.so.22.1-rust-1.97.0-nightly"),
            Some("22")
        );
        assert_eq!(super::llvm_major("libLLVM.so.21"), Some("21"));
        assert_eq!(super::llvm_major("libfoo.so"), None);
    }
}

#[cfg(test)]
mod idempotence {
    use super::{Step, run};

    #[test]
    fn second_setup_does_no_work() {
        if let Err(e) = run() {
            println!("skipped: setup cannot run here: {e:#}");
            return;
        }
        let again = run().expect("setup succeeded a moment ago");
        let did: Vec<&str> = again
            .iter()
            .filter_map(|s| match s {
                Step::Did(what) => Some(what.as_str()),
                Step::AlreadyDone(_) => None,
            })
            .collect();
        assert!(did.is_empty(), "second setup still did: {did:?}");
        assert_eq!(again.len(), 4, "every step reports");
    }
}
