//! Interrupted or not, the tracer prints what it recorded and leaves no
//! eBPF program of its own loaded in the kernel.
use std::{
    collections::BTreeSet,
    process::{Command, Stdio},
    time::Duration,
};

use tracer_tests::{
    http_server::{Behaviour, TestServer},
    tracer_bin::tracer_bin,
};

/// Ids of loaded programs named like ours. By id, not name, so a tracer
/// that another process runs at the same time is told apart.
fn our_programs() -> BTreeSet<u32> {
    aya::programs::loaded_programs()
        .filter_map(Result::ok)
        .filter(|p| p.name_as_str().is_some_and(|n| n.starts_with("tracer_")))
        .map(|p| p.id())
        .collect()
}

/// Ids of the programs that process `pid` holds (the `prog_id:` of its
/// program and link fds): another tracer running on the machine at the
/// same time (a bench, another checkout's tests) loads programs of the
/// same names, which are not this one's to account for.
fn programs_of(pid: u32) -> BTreeSet<u32> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else {
        return BTreeSet::new();
    };
    fds.flatten()
        .filter_map(|fd| std::fs::read_to_string(fd.path()).ok())
        .flat_map(|info| {
            info.lines()
                .filter_map(|l| l.strip_prefix("prog_id:")?.trim().parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

/// Which of `ours` are still loaded after up to 2 s. Closing a tp_btf link
/// frees its program only after an RCU grace period, so they may outlive
/// the tracer's exit by a few ms; a program that leaked stays.
fn still_loaded(ours: &BTreeSet<u32>) -> Vec<u32> {
    let mut left = Vec::new();
    for _ in 0..40 {
        left = our_programs().intersection(ours).copied().collect();
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    left
}

fn interrupted_run(signal: i32, expected: i32) {
    let report = tracer_user::preflight::run();
    if !report.can_trace() {
        println!("skipped: {}", report.missing());
        return;
    }
    let before = our_programs();
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let child = Command::new(tracer_bin())
        .args(["trace", &server.url(), "-n", "3", "--interval", "10000"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded wait for the first request, then the signal.
    for _ in 0..100 {
        if server.accepted() > 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let held = programs_of(child.id());
    let during: BTreeSet<u32> = our_programs()
        .difference(&before)
        .copied()
        .filter(|id| held.contains(id))
        .collect();
    assert!(!during.is_empty(), "probes are loaded while tracing");
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(child.id() as i32, signal) };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(expected), "{stdout}");
    assert!(
        stdout.contains("request 1"),
        "what was recorded is printed: {stdout}"
    );
    assert!(stdout.contains("summary: 1 request,"), "{stdout}");
    let left = still_loaded(&during);
    assert!(left.is_empty(), "programs left loaded after exit: {left:?}");
}

#[test]
fn sigint_prints_the_summary_exits_130_and_detaches() {
    interrupted_run(libc::SIGINT, 130);
}

#[test]
fn sigterm_prints_the_summary_exits_143_and_detaches() {
    interrupted_run(libc::SIGTERM, 143);
}

/// The tracepoint programs and the two getaddrinfo uprobes.
const ATTACH_PROGRAMS: usize = tracer_user::probes::PROGRAMS.len() + 2;

/// attach loads the getaddrinfo uprobes too: they must go as well, and a
/// SIGINT that lands while it still sets up is no different.
#[test]
fn attach_interrupted_exits_130_and_detaches_everything() {
    let report = tracer_user::preflight::run();
    if !report.can_trace() {
        println!("skipped: {}", report.missing());
        return;
    }
    let mut target = Command::new("sleep").arg("30").spawn().unwrap();
    let before = our_programs();
    let tracer = Command::new(tracer_bin())
        .args(["attach", "--pid", &target.id().to_string()])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded wait until its programs are in.
    let mut during = BTreeSet::new();
    for _ in 0..100 {
        let held = programs_of(tracer.id());
        during = our_programs()
            .difference(&before)
            .copied()
            .filter(|id| held.contains(id))
            .collect();
        if during.len() >= ATTACH_PROGRAMS {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        during.len() >= ATTACH_PROGRAMS,
        "attach loaded its programs: {during:?}"
    );
    // At once: attach may still be setting up (symbol scans, uprobes), and
    // a Ctrl-C then must end it as one during the recording does.
    // SAFETY: plain kill(2) of our own child.
    unsafe { libc::kill(tracer.id() as i32, libc::SIGINT) };
    let out = tracer.wait_with_output().unwrap();
    let _ = target.kill();
    let _ = target.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(130), "{stdout}");
    assert!(stdout.contains("summary"), "{stdout}");
    let left = still_loaded(&during);
    assert!(left.is_empty(), "programs left loaded after exit: {left:?}");
}
