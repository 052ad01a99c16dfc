//! The kernel matrix: the probe and end-to-end tests run again inside a
//! real guest kernel (Debian 12's Linux 6.1 by default), booted with
//! virtme-ng under qemu. virtme-ng shares the host's filesystem read-only,
//! so the test binaries and `tracer` run in the guest unchanged; results
//! come back through a writable shared folder.
//!
//! TCG only (`--disable-kvm`): under nested KVM the guest hangs at boot on
//! this machine kind. A boot takes about 30 s.
use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use crate::shell;

/// Debian 12's kernel package; the regular flavour, since the cloud one
/// lacks the 9p module that virtme-ng mounts the root with.
const KERNEL_PACKAGE: &str = "linux-image-6.1.0-57-amd64-unsigned";
/// Kernels that `cargo xtask test` boots when none is given.
const KERNEL_GLOB_PREFIX: &str = "vmlinuz-6.1.0-";
const KERNEL_GLOB_SUFFIX: &str = "-amd64";
/// The test targets run in the guest, whole. Focused on what differs
/// between kernels: loading, lifecycle events, reuse, attach.
pub const GUEST_TESTS: &[&str] = &["kernel_matrix", "probes_loopback"];
/// The guest's whole run, boot included, is bounded by this.
const GUEST_LIMIT: Duration = Duration::from_secs(20 * 60);

/// Where the guest kernel comes from.
pub enum KernelChoice {
    /// `--kernel PATH`: this image; a missing tool is an error.
    Given(PathBuf),
    /// The default: Debian 12's 6.1, installed when missing.
    Default,
}

/// Finds or installs what a guest needs; Err says plainly what is missing.
pub fn prepare(choice: &KernelChoice) -> Result<PathBuf> {
    let image = match choice {
        KernelChoice::Given(p) => {
            if !p.is_file() {
                bail!("kernel image {} does not exist", p.display());
            }
            p.clone()
        }
        KernelChoice::Default => match installed_61() {
            Some(p) => p,
            None => {
                install_packages(true)?;
                installed_61().context("no /boot/vmlinuz-6.1.0-*-amd64 after installing")?
            }
        },
    };
    if !(has("qemu-system-x86_64") && has("busybox")) {
        install_packages(false)?;
    }
    if vng().is_none() {
        if !has("pip") {
            install(&["python3-pip"])?;
        }
        install_virtme_ng()?;
    }
    if vng().is_none() {
        bail!("virtme-ng's `vng` is not on PATH after `pip install virtme-ng`");
    }
    Ok(image)
}

/// The newest installed Debian 6.1 kernel of the regular flavour.
fn installed_61() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = fs::read_dir("/boot")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let abi = name
                .strip_prefix(KERNEL_GLOB_PREFIX)?
                .strip_suffix(KERNEL_GLOB_SUFFIX)?
                .parse::<u32>()
                .ok()?;
            Some((abi, e.path()))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, p)| p)
}

fn has(program: &str) -> bool {
    shell::output(Command::new("sh").args(["-c", &format!("command -v {program}")])).is_some()
}

/// `vng`, on PATH or where `pip install` puts scripts for root.
fn vng() -> Option<PathBuf> {
    if let Some(p) = shell::output(Command::new("sh").args(["-c", "command -v vng"])) {
        return Some(PathBuf::from(p.trim()));
    }
    ["/usr/local/bin/vng", "/root/.local/bin/vng"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// The newest `linux-image-6.1.0-N-amd64-unsigned` that apt offers, when
/// the pinned one is gone from the archive.
fn newest_61_package() -> Option<String> {
    let out = shell::output(Command::new("apt-cache").args([
        "search",
        "--names-only",
        "^linux-image-6\\.1\\.0-[0-9]+-amd64-unsigned$",
    ]))?;
    out.lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|name| {
            let abi = name
                .strip_prefix("linux-image-6.1.0-")?
                .strip_suffix("-amd64-unsigned")?
                .parse::<u32>()
                .ok()?;
            Some((abi, name.to_string()))
        })
        .max()
        .map(|(_, name)| name)
}

fn install_packages(kernel: bool) -> Result<()> {
    let mut packages = vec!["qemu-system-x86".to_string(), "busybox-static".to_string()];
    if kernel {
        if !has("apt-cache") {
            bail!("no apt: install qemu-system-x86, busybox-static and {KERNEL_PACKAGE} by hand");
        }
        // The index may be empty on a fresh machine: update before asking.
        apt_update()?;
        let available = shell::output(Command::new("apt-cache").args(["show", KERNEL_PACKAGE]))
            .is_some_and(|s| !s.trim().is_empty());
        let package = if available {
            KERNEL_PACKAGE.to_string()
        } else {
            newest_61_package().context("apt offers no linux-image-6.1.0-*-amd64-unsigned")?
        };
        packages.push(package);
    }
    let names: Vec<&str> = packages.iter().map(String::as_str).collect();
    install(&names)
}

fn apt_update() -> Result<()> {
    if !shell::is_root() {
        bail!("apt-get needs root");
    }
    shell::status(
        Command::new("apt-get").args(["update", "-qq"]),
        "apt-get update",
    )
}

/// `apt-get install` of `packages`, as root.
fn install(packages: &[&str]) -> Result<()> {
    if !shell::is_root() {
        bail!("installing {} needs root (apt-get)", packages.join(" "));
    }
    if !has("apt-get") {
        bail!("no apt-get: install {} by hand", packages.join(" "));
    }
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

fn install_virtme_ng() -> Result<()> {
    eprintln!("guest: installing virtme-ng with pip");
    let plain = Command::new("pip")
        .args(["install", "-q", "virtme-ng"])
        .status();
    if plain.is_ok_and(|s| s.success()) {
        return Ok(());
    }
    // Debian's pip refuses system-wide installs unless told (PEP 668).
    shell::status(
        Command::new("pip").args(["install", "-q", "--break-system-packages", "virtme-ng"]),
        "pip install virtme-ng",
    )
}

/// What one guest run gave.
pub struct GuestRun {
    pub release: String,
    pub passed: usize,
    pub seconds: f64,
}

/// Boots `image` and runs each test binary of `bins` (test target name,
/// executable) inside it, as root, one test at a time. Fails when
/// the guest does not finish, a test fails, or a test says `skipped:`
/// (the guest was set up to trace, so nothing may be skipped there).
pub fn run(image: &Path, bins: &[(String, PathBuf)]) -> Result<GuestRun> {
    let root = shell::workspace_root()?;
    let share = root.join("target/guest");
    let _ = fs::remove_dir_all(&share);
    fs::create_dir_all(&share).with_context(|| format!("creating {}", share.display()))?;
    let mut script =
        String::from("#!/bin/sh\n# Written by `cargo xtask test`: runs inside the guest.\n");
    script.push_str("ip link set lo up\n");
    script.push_str(&format!("cd '{}'\n", root.display()));
    script.push_str(&format!(
        "uname -r > '{0}/release'\nexport NO_COLOR=1\n",
        share.display()
    ));
    for (name, exe) in bins {
        script.push_str(&format!(
            "'{exe}' --test-threads=1 --nocapture > '{share}/{name}.log' 2>&1\necho $? > '{share}/{name}.rc'\n",
            exe = exe.display(),
            share = share.display(),
        ));
    }
    let script_path = share.join("run.sh");
    fs::write(&script_path, script)?;
    shell::status(
        Command::new("chmod").arg("+x").arg(&script_path),
        "chmod the guest script",
    )?;
    let vng = vng().context("vng is not installed")?;
    eprintln!(
        "guest: booting {} under qemu (TCG, 2 CPUs, 2 GiB)",
        image.display()
    );
    let started = Instant::now();
    let mut child = Command::new(&vng)
        .arg("-r")
        .arg(image)
        .args(["--disable-kvm", "--cpus", "2", "--memory", "2G", "--rwdir"])
        .arg(&share)
        .arg("--exec")
        .arg(&script_path)
        .stdin(std::process::Stdio::null())
        .stdout(fs::File::create(share.join("vng.log"))?)
        .stderr(fs::File::create(share.join("vng.err"))?)
        .spawn()
        .context("starting vng")?;
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break s;
        }
        if started.elapsed() > GUEST_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the guest did not finish in {} s (logs in {})",
                GUEST_LIMIT.as_secs(),
                share.display()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let seconds = started.elapsed().as_secs_f64();
    let release = fs::read_to_string(share.join("release"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    if release.is_empty() {
        bail!(
            "the guest did not run the tests (vng {status}); see {}/vng.err",
            share.display()
        );
    }
    let mut passed = 0;
    let mut failures = Vec::new();
    for (name, _) in bins {
        let log = fs::read_to_string(share.join(format!("{name}.log"))).unwrap_or_default();
        let rc = fs::read_to_string(share.join(format!("{name}.rc"))).unwrap_or_default();
        println!("---- guest {release}: {name}\n{log}");
        passed += count_passed(&log);
        if rc.trim() != "0" {
            failures.push(format!("{name} exited {}", rc.trim()));
        }
        if log.lines().any(|l| l.contains("skipped:")) {
            failures.push(format!("{name} skipped a test in a guest that can trace"));
        }
        if count_passed(&log) == 0 {
            failures.push(format!("{name} ran no test"));
        }
    }
    if !failures.is_empty() {
        bail!(
            "guest Linux {release}: {} (logs in {})",
            failures.join("; "),
            share.display()
        );
    }
    Ok(GuestRun {
        release,
        passed,
        seconds,
    })
}

/// Tests passed, from libtest's `test result: ok. N passed; ...` line.
fn count_passed(log: &str) -> usize {
    log.lines()
        .filter_map(|l| l.strip_prefix("test result: "))
        .filter_map(|l| l.split(". ").nth(1))
        .filter_map(|l| l.split_whitespace().next())
        .filter_map(|n| n.parse::<usize>().ok())
        .sum()
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_passed_tests_from_libtest_output() {
        let log = "running 3 tests\ntest a ... ok\n\ntest result: ok. 3 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 20.14s\n";
        assert_eq!(super::count_passed(log), 3);
        assert_eq!(
            super::count_passed("test result: FAILED. 1 passed; 2 failed;"),
            1
        );
        assert_eq!(super::count_passed("no tests here"), 0);
    }
}
