//! The kernel matrix: the probe and end-to-end tests run again inside
//! real guest kernels (by default Debian 12's Linux 6.1 and its backports'
//! 6.12, see `kernels`), booted with virtme-ng under qemu. virtme-ng shares the host's filesystem read-only,
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

mod kernels;

pub use kernels::{DEFAULT_KERNELS, named, prepare_image, prepare_tools};

/// The test targets run in the guest, whole. Focused on what differs
/// between kernels: loading, lifecycle events, reuse, attach, and the PID
/// namespace helper that a tracer in a container loads.
pub const GUEST_TESTS: &[&str] = &["kernel_matrix", "probes_loopback", "pid_namespace"];
/// The guest's whole run, boot included, is bounded by this.
const GUEST_LIMIT: Duration = Duration::from_secs(20 * 60);

/// What one guest run gave.
pub struct GuestRun {
    pub release: String,
    pub passed: usize,
    pub seconds: f64,
}

/// Boots `image` and runs each test binary of `bins` (test target name,
/// executable) inside it, as root, one test at a time, with `env` set. Fails when
/// the guest does not finish, a test fails, or a test says `skipped:`
/// (the guest was set up to trace, so nothing may be skipped there).
pub fn run(image: &Path, bins: &[(String, PathBuf)], env: &[(&str, &str)]) -> Result<GuestRun> {
    let root = shell::workspace_root()?;
    let share = root.join("target/guest").join(image_name(image));
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
    for (k, v) in env {
        script.push_str(&format!("export {k}='{v}'\n"));
    }
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
    let vng = kernels::vng().context("vng is not installed")?;
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

/// `vmlinuz-6.1.0-57-amd64` -> `6.1.0-57-amd64`: one results folder each.
fn image_name(image: &Path) -> String {
    let name = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "kernel".to_string());
    name.strip_prefix("vmlinuz-").unwrap_or(&name).to_string()
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
