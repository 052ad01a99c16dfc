//! Builds the eBPF object (tracer-ebpf, for bpfel) so that `tracer` embeds it.
use anyhow::{Context as _, anyhow};
use aya_build::{Package, Toolchain};

fn main() -> anyhow::Result<()> {
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
    )
}
