//! The bpftrace peer: `sock:sock_send_length` + `sock:sock_recv_length`
//! counted for one PID, the cheapest tracepoint-based observer to compare
//! the tracer with. Installed with apt when missing; every step is bounded,
//! and a run that fails is an error for its row, never a hang.
use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

use super::procs::Proc;

/// A bpftrace counting one process's send and recv events.
pub struct Counter {
    bt: Proc,
}

impl Counter {
    /// Starts counting for `pid`; returns once the probes are live.
    /// `secs` is how long the caller means to run: bpftrace also ends by
    /// itself some time after it, should the interrupt go astray.
    pub fn start(pid: u32, secs: f64) -> Result<Self> {
        let give_up = secs.ceil() as u64 + 30;
        // BEGIN prints once the program is loaded and attaching is under way;
        // `interval` makes bpftrace end itself (maps printed) if no SIGINT
        // ever reaches it.
        let script = format!(
            "BEGIN {{ printf(\"counting\\n\"); }} \
             tracepoint:sock:sock_send_length /pid == {pid}/ {{ @send = count(); }} \
             tracepoint:sock:sock_recv_length /pid == {pid}/ {{ @recv = count(); }} \
             interval:s:{give_up} {{ exit(); }}"
        );
        let bt = Proc::spawn(
            "bpftrace",
            Command::new("bpftrace").args(["-e", &script]),
            None,
        )?;
        bt.wait_for("counting", false, Duration::from_secs(60))?;
        // Attaching goes on after BEGIN on some versions: give it time.
        std::thread::sleep(Duration::from_millis(500));
        Ok(Self { bt })
    }

    /// Stops bpftrace and returns the send and recv events it counted.
    ///
    /// bpftrace 0.17's event loop (`poll_perf_events`) leaves only when
    /// `epoll_wait` fails with EINTR or `exit()` has finalized. A SIGINT
    /// that lands while the loop is outside that call (it wakes every
    /// 100 ms, then waits for a CPU on a loaded machine) only sets a flag,
    /// which nothing reads until a printf event arrives, and a counting
    /// script sends none: it runs on. So SIGINT is sent again every 250 ms
    /// until it exits, for 15 s, then SIGKILL.
    pub fn finish(mut self) -> Result<u64> {
        let started = Instant::now();
        let mut ended = false;
        while started.elapsed() < Duration::from_secs(15) {
            self.bt.signal(libc::SIGINT);
            if self.bt.wait_up_to(Duration::from_millis(250))?.is_some() {
                ended = true;
                break;
            }
        }
        if !ended {
            // The last step: wait() kills it and reaps it.
            let _ = self.bt.wait(Duration::ZERO);
        }
        let out = self.bt.stdout();
        let count = |key: &str| -> Option<u64> {
            out.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().parse().ok())
        };
        match (count("@send:"), count("@recv:")) {
            (Some(s), r) if ended => Ok(s + r.unwrap_or(0)),
            (None, Some(r)) if ended => Ok(r),
            _ if ended => bail!(
                "bpftrace printed no counts; stderr: {}",
                self.bt.stderr().trim()
            ),
            _ => bail!(
                "bpftrace did not end within {:.0} s of repeated SIGINTs; killed. stderr: {}",
                started.elapsed().as_secs_f64(),
                self.bt.stderr().trim()
            ),
        }
    }
}

/// bpftrace on PATH, installed with apt-get when missing and possible,
/// with the tracefs it needs.
pub fn available() -> bool {
    let works = || {
        Command::new("bpftrace")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works() {
        return tracefs_for_bpftrace();
    }
    eprintln!("bench: bpftrace missing; trying `apt-get install -y bpftrace`");
    let installed = Command::new("apt-get")
        .args(["install", "-y", "-q", "bpftrace"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("running apt-get")
        .is_ok_and(|s| s.success());
    installed && works() && tracefs_for_bpftrace()
}

const TRACEFS: &str = "/sys/kernel/tracing";

/// bpftrace resolves `tracepoint:` probes through tracefs and does not mount
/// it (the tracer needs none): mount it for the peer when it is missing, and
/// say so.
fn tracefs_for_bpftrace() -> bool {
    if Path::new(TRACEFS).join("events").is_dir() {
        return true;
    }
    eprintln!("bench: bpftrace needs tracefs; mounting it at {TRACEFS} (left mounted)");
    let mounted = Command::new("mount")
        .args(["-t", "tracefs", "nodev", TRACEFS])
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        eprintln!("bench: could not mount tracefs; bpftrace is left out");
    }
    mounted
}
