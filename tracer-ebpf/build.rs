// Relink the eBPF object when bpf-linker changes: it is part of the build.
fn main() {
    if let Ok(linker) = which::which("bpf-linker") {
        println!("cargo:rerun-if-changed={}", linker.display());
    }
}
