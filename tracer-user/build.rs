//! Builds the eBPF object (tracer-ebpf, for bpfel) so that `tracer` embeds it,
//! and refuses an object whose programs need too much BPF stack for the
//! verifiers of Linux before 6.13 (see `src/probes/stack_depth.rs`).
use anyhow::{Context as _, anyhow, bail};
use aya_build::{Package, Toolchain};

#[path = "src/probes/stack_depth.rs"]
mod stack_depth;

fn main() -> anyhow::Result<()> {
    version();
    // Without the `ebpf` feature there is nothing to build: the library's
    // client hooks need neither nightly nor bpf-linker.
    if std::env::var_os("CARGO_FEATURE_EBPF").is_none() {
        return Ok(());
    }
    let here = std::env::var("CARGO_MANIFEST_DIR").context("CARGO_MANIFEST_DIR")?;
    // tracer-ebpf is this crate's sibling in the workspace.
    let ebpf = std::path::Path::new(&here)
        .parent()
        .ok_or_else(|| anyhow!("tracer-user has no parent directory"))?
        .join("tracer-ebpf");
    let root = ebpf
        .to_str()
        .ok_or_else(|| anyhow!("non-UTF-8 path {}", ebpf.display()))?;
    aya_build::build_ebpf(
        [Package {
            name: "tracer-ebpf",
            root_dir: root,
            ..Default::default()
        }],
        Toolchain::default(),
    )
    .context(
        "building the eBPF object failed; run `cargo xtask setup` (nightly rust-src, bpf-linker)",
    )?;
    check_stack()
}

/// `tracer --version`: the commit comes from TRACER_GIT_COMMIT, which
/// `cargo xtask dist` sets; reading git here would rebuild the crate on
/// every commit, so other builds say the commit is not recorded.
fn version() {
    println!("cargo:rerun-if-env-changed=TRACER_GIT_COMMIT");
    let package = env!("CARGO_PKG_VERSION");
    let version = match std::env::var("TRACER_GIT_COMMIT") {
        Ok(commit) if !commit.trim().is_empty() => format!("{package} (commit {})", commit.trim()),
        _ => format!("{package} (commit not recorded)"),
    };
    println!("cargo:rustc-env=TRACER_VERSION={version}");
}

/// Every program's stack, with its calls, at most `stack_depth::LIMIT`.
fn check_stack() -> anyhow::Result<()> {
    let out = std::env::var("OUT_DIR").context("OUT_DIR")?;
    let path = std::path::Path::new(&out).join("tracer-ebpf");
    let elf = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let stacks = stack_depth::program_stacks(&elf).map_err(|e| anyhow!(e))?;
    let over: Vec<String> = stacks
        .iter()
        .filter(|(_, bytes)| *bytes > stack_depth::LIMIT)
        .map(|(name, bytes)| format!("{name} needs {bytes} bytes"))
        .collect();
    if !over.is_empty() {
        bail!(
            "eBPF stack too large: {} (limit {} of the verifier's {}; Linux before 6.13 \
             rejects a program over 512): build large records in place in the ring",
            over.join(", "),
            stack_depth::LIMIT,
            stack_depth::MAX_BPF_STACK
        );
    }
    Ok(())
}
