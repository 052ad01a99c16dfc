//! Which kernels the guest boots, and getting them and the tools onto a
//! fresh Debian 12 machine with nothing but its package registries.
//!
//! Every default checks the BPF stack of a program and its calls against one
//! shared 512 bytes, as every kernel before 6.13 does (the host's 6.18 gives
//! tracing programs a private stack and would not notice):
//! - Debian 11's 5.10: no socket cookie for tracing programs, no
//!   `bpf_task_pt_regs`, no byte tracepoints: sockets get the tracer's own
//!   ids, and send/recv come from fexit on the socket functions.
//! - Debian 12's 6.1: no send/recv byte tracepoints; its guest forces the
//!   kprobe fallback (`TRACER_TEST_FORCE_KPROBE`), so both stand-ins run.
//! - Debian 12 backports' 6.12: every tracepoint the tracer uses.
//!
//! The regular flavours: the cloud ones lack the 9p module that virtme-ng
//! mounts the root with.
use std::{fs, path::PathBuf, process::Command};

use anyhow::{Context as _, Result, bail};

use crate::shell;

/// A kernel `cargo xtask test` boots when no `--kernel` is given.
pub struct GuestKernel {
    /// Its short name for `cargo xtask test --kernel NAME` (e.g. `6.1`).
    pub name: &'static str,
    /// What it is and why it is in the matrix, for the output.
    pub label: &'static str,
    /// Its image in /boot, newest first: `vmlinuz-{prefix}N{suffix}`.
    image_prefix: &'static str,
    image_suffix: &'static str,
    install: fn() -> Result<()>,
    /// Environment for the tests in this guest (test knobs).
    pub env: &'static [(&'static str, &'static str)],
}

pub const DEFAULT_KERNELS: &[GuestKernel] = &[
    GuestKernel {
        name: "6.1",
        label: "Debian 12's Linux 6.1 (no send/recv tracepoints; kprobes forced)",
        image_prefix: "vmlinuz-6.1.0-",
        image_suffix: "-amd64",
        install: install_61,
        env: &[("TRACER_TEST_FORCE_KPROBE", "1")],
    },
    GuestKernel {
        name: "6.12",
        label: "Debian 12 backports' Linux 6.12 (every tracepoint, shared stack)",
        image_prefix: "vmlinuz-6.12.",
        image_suffix: "+deb12-amd64",
        install: install_612,
        env: &[],
    },
];

/// Kernels that boot and trace, but whose guest run still fails a known
/// test, so they are run only when named (`cargo xtask test --kernel 5.10`):
/// on 5.10, `run`'s default (segment) mode loses the bytes of a socket's
/// last segment, and `run` does not attribute children to their parent.
pub const PENDING_KERNELS: &[GuestKernel] = &[GuestKernel {
    name: "5.10",
    label: "Debian 11's Linux 5.10 (no cookie helper, fexit for send/recv)",
    image_prefix: "vmlinuz-5.10.0-",
    image_suffix: "-amd64",
    install: install_510,
    env: &[],
}];

/// The matrix kernel called `name` (`5.10`, `6.1`, `6.12`).
pub fn named(name: &str) -> Option<&'static GuestKernel> {
    DEFAULT_KERNELS
        .iter()
        .chain(PENDING_KERNELS)
        .find(|k| k.name == name)
}

/// Debian 12's 6.1 package; the newest `6.1.0-N` is taken when it is gone.
const PACKAGE_61: &str = "linux-image-6.1.0-57-amd64-unsigned";
const BACKPORTS: &str = "deb http://deb.debian.org/debian bookworm-backports main";
/// Debian 11, still served by Debian's archive.
const BULLSEYE: &str = "deb http://deb.debian.org/debian bullseye main";

/// The image of `kernel`, installed first when it is missing.
pub fn prepare_image(kernel: &GuestKernel) -> Result<PathBuf> {
    if let Some(image) = newest_image(kernel) {
        return Ok(image);
    }
    (kernel.install)()?;
    newest_image(kernel).with_context(|| {
        format!(
            "no /boot/{}*{} after installing",
            kernel.image_prefix, kernel.image_suffix
        )
    })
}

/// qemu, busybox and virtme-ng; installed when missing.
pub fn prepare_tools() -> Result<()> {
    if !(has("qemu-system-x86_64") && has("busybox")) {
        apt_install(&["qemu-system-x86", "busybox-static"])?;
    }
    if vng().is_none() {
        if !has("pip") {
            apt_install(&["python3-pip"])?;
        }
        eprintln!("guest: pip install virtme-ng");
        let plain = Command::new("pip")
            .args(["install", "-q", "virtme-ng"])
            .status();
        if !plain.is_ok_and(|s| s.success()) {
            // Debian's pip refuses system-wide installs unless told (PEP 668).
            shell::status(
                Command::new("pip").args(["install", "-q", "--break-system-packages", "virtme-ng"]),
                "pip install virtme-ng",
            )?;
        }
    }
    if vng().is_none() {
        bail!("virtme-ng's `vng` is not on PATH after `pip install virtme-ng`");
    }
    Ok(())
}

/// `vng`, on PATH or where `pip install` puts scripts for root.
pub fn vng() -> Option<PathBuf> {
    if let Some(p) = shell::output(Command::new("sh").args(["-c", "command -v vng"])) {
        return Some(PathBuf::from(p.trim()));
    }
    ["/usr/local/bin/vng", "/root/.local/bin/vng"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The newest `/boot/vmlinuz-{prefix}N{suffix}`, by N.
fn newest_image(kernel: &GuestKernel) -> Option<PathBuf> {
    fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = numbered(&name, kernel.image_prefix, kernel.image_suffix)?;
            Some((n, e.path()))
        })
        .max()
        .map(|(_, p)| p)
}

/// N of `{prefix}N{suffix}`, when `name` is exactly that.
fn numbered(name: &str, prefix: &str, suffix: &str) -> Option<u32> {
    name.strip_prefix(prefix)?
        .strip_suffix(suffix)?
        .parse()
        .ok()
}

fn has(program: &str) -> bool {
    shell::output(Command::new("sh").args(["-c", &format!("command -v {program}")])).is_some()
}

fn install_61() -> Result<()> {
    apt_update()?;
    let pinned = shell::output(Command::new("apt-cache").args(["show", PACKAGE_61]))
        .is_some_and(|s| !s.trim().is_empty());
    let package = if pinned {
        PACKAGE_61.to_string()
    } else {
        newest_package(&[], "linux-image-6.1.0-", "-amd64-unsigned")
            .context("apt offers no linux-image-6.1.0-*-amd64-unsigned")?
    };
    apt_install(&[&package])
}

fn install_612() -> Result<()> {
    install_foreign(
        BACKPORTS,
        "guest-apt",
        "linux-image-6.12.",
        "+deb12-amd64-unsigned",
    )
}

/// 5.10 comes from Debian 11 (bullseye); its package's dependencies
/// (kmod, linux-base, initramfs-tools) are met by Debian 12's, which the
/// 6.1 package installs first.
fn install_510() -> Result<()> {
    install_61()?;
    install_foreign(
        BULLSEYE,
        "guest-apt-bullseye",
        "linux-image-5.10.0-",
        "-amd64-unsigned",
    )
}

/// A kernel from a suite this machine's apt sources do not list: the
/// package is fetched with a sources list of its own (in target/`folder`,
/// so the machine's apt configuration stays as it was) and installed with
/// dpkg. Its dependencies (kmod, initramfs-tools) are those of the 6.1
/// package, installed before it.
fn install_foreign(source: &str, folder: &str, prefix: &str, suffix: &str) -> Result<()> {
    let codename = fs::read_to_string("/etc/os-release").unwrap_or_default();
    if !codename.lines().any(|l| l == "VERSION_CODENAME=bookworm") {
        bail!("the guest kernels are installed on Debian 12 (bookworm); this is not Debian 12");
    }
    let dir = shell::workspace_root()?.join("target").join(folder);
    fs::create_dir_all(dir.join("lists/partial"))?;
    let sources = dir.join("sources.list");
    fs::write(&sources, format!("{source}\n"))?;
    let opts = [
        format!("-oDir::Etc::sourcelist={}", sources.display()),
        "-oDir::Etc::sourceparts=-".to_string(),
        format!("-oDir::State::Lists={}", dir.join("lists").display()),
    ];
    root_only("apt-get")?;
    shell::status(
        Command::new("apt-get").args(&opts).args(["update", "-qq"]),
        &format!("apt-get update ({source})"),
    )?;
    let package = newest_package(&opts, prefix, suffix)
        .with_context(|| format!("{source} offers no {prefix}*{suffix}"))?;
    eprintln!("guest: installing {package} from {source}");
    for old in fs::read_dir(&dir)?.filter_map(|e| e.ok()) {
        if old.path().extension().is_some_and(|x| x == "deb") {
            let _ = fs::remove_file(old.path());
        }
    }
    shell::status(
        Command::new("apt-get")
            .args(&opts)
            .args(["download", "-qq", &package])
            .current_dir(&dir),
        &format!("apt-get download {package}"),
    )?;
    let deb = fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .context("apt-get download left no .deb")?;
    shell::status(
        Command::new("dpkg")
            .arg("-i")
            .arg(&deb)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        &format!("dpkg -i {}", deb.display()),
    )
}

/// The newest `{prefix}N{suffix}` package apt offers (with `opts`).
fn newest_package(opts: &[String], prefix: &str, suffix: &str) -> Option<String> {
    let pattern = format!(
        "^{}[0-9]+{}$",
        prefix.replace('.', "\\.").replace('+', "\\+"),
        suffix.replace('.', "\\.").replace('+', "\\+")
    );
    let out = shell::output(Command::new("apt-cache").args(opts).args([
        "search",
        "--names-only",
        &pattern,
    ]))?;
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|name| Some((numbered(name, prefix, suffix)?, name.to_string())))
        .max()
        .map(|(_, name)| name)
}

fn root_only(what: &str) -> Result<()> {
    if !shell::is_root() {
        bail!("{what} needs root");
    }
    if !has(what) {
        bail!("no {what} on this machine");
    }
    Ok(())
}

fn apt_update() -> Result<()> {
    root_only("apt-get")?;
    shell::status(
        Command::new("apt-get").args(["update", "-qq"]),
        "apt-get update",
    )
}

fn apt_install(packages: &[&str]) -> Result<()> {
    root_only("apt-get")?;
    eprintln!("guest: apt-get install {}", packages.join(" "));
    apt_update()?;
    shell::status(
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "--no-install-recommends"])
            .args(packages)
            .env("DEBIAN_FRONTEND", "noninteractive"),
        &format!("apt-get install {}", packages.join(" ")),
    )
}

#[cfg(test)]
mod tests {
    use super::numbered;

    #[test]
    fn kernel_names_are_matched_exactly() {
        assert_eq!(
            numbered("vmlinuz-6.1.0-57-amd64", "vmlinuz-6.1.0-", "-amd64"),
            Some(57)
        );
        assert_eq!(
            numbered("vmlinuz-6.1.0-57-cloud-amd64", "vmlinuz-6.1.0-", "-amd64"),
            None
        );
        assert_eq!(
            numbered(
                "vmlinuz-6.12.95+deb12-amd64",
                "vmlinuz-6.12.",
                "+deb12-amd64"
            ),
            Some(95)
        );
        assert_eq!(
            numbered(
                "vmlinuz-6.12.95+deb12-rt-amd64",
                "vmlinuz-6.12.",
                "+deb12-amd64"
            ),
            None
        );
    }
}
