//! Workloads 3 (flat out) and 7: the ping-pong at full speed, untraced, under
//! `tracer attach`, and under `bpftrace` counting the same two tracepoints
//! (`sock:sock_send_length`, `sock:sock_recv_length`) for the same PID.
//! Rounds rotate the order so drift cancels; the overhead of each is the
//! ping-pong's own call rate against the untraced one.
use std::{process::Command, time::Duration};

use anyhow::{Context as _, Result};
use serde_json::json;

use super::{
    Plan,
    events::{go_pingpong, start_pingpong, traced_run},
    procs::Proc,
    report::{Report, Verdict, median},
    tracer::Bins,
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Untraced,
    Tracer,
    Bpftrace,
}

/// One run: calls made, their rate, events the tracing tool counted, lost.
#[derive(Debug, Clone, Copy)]
struct Run {
    mode: Mode,
    calls: u64,
    rate: f64,
    seen: Option<u64>,
    lost: Option<u64>,
}

pub fn run(plan: &Plan, bins: &Bins, report: &mut Report) -> Result<()> {
    let bpftrace = bpftrace_available();
    let mut modes = vec![Mode::Untraced, Mode::Tracer];
    if bpftrace {
        modes.push(Mode::Bpftrace);
    }
    let mut runs = Vec::new();
    for round in 0..plan.rounds {
        for i in 0..modes.len() {
            let mode = modes[(i + round) % modes.len()];
            let r = one(plan, bins, mode)?;
            eprintln!(
                "bench: ping-pong flat out, {mode:?}: {} calls ({:.0}/s), seen {:?}, lost {:?}",
                r.calls, r.rate, r.seen, r.lost
            );
            runs.push(r);
        }
    }
    let rate = |m: Mode| {
        let mut v: Vec<f64> = runs
            .iter()
            .filter(|r| r.mode == m)
            .map(|r| r.rate)
            .collect();
        median(&mut v)
    };
    let base = rate(Mode::Untraced);
    let seen = |m: Mode| {
        let of: Vec<&Run> = runs.iter().filter(|r| r.mode == m).collect();
        let calls: u64 = of.iter().map(|r| r.calls).sum();
        let seen: u64 = of.iter().filter_map(|r| r.seen).sum();
        let lost: u64 = of.iter().filter_map(|r| r.lost).sum();
        (calls, seen, lost)
    };
    let (tc, ts, tl) = seen(Mode::Tracer);
    report.row(
        "3",
        "ping-pong flat out: untraced calls/s; attach: rate ratio, events seen / calls, lost",
        format!(
            "{base:.0}/s; {:.3}, {ts} / {tc}, {tl} lost",
            rate(Mode::Tracer) / base.max(1.0)
        ),
        "",
        Verdict::Info,
    );
    if bpftrace {
        let (bc, bs, _) = seen(Mode::Bpftrace);
        report.row(
            "7",
            "bpftrace counting send/recv for the PID: rate ratio, events counted / calls",
            format!("{:.3}, {bs} / {bc}", rate(Mode::Bpftrace) / base.max(1.0)),
            "side by side with 3",
            Verdict::Info,
        );
    } else {
        report.row(
            "7",
            "bpftrace",
            "bpftrace not installed, or no tracefs for it: skipped",
            "",
            Verdict::Info,
        );
    }
    let raw: Vec<_> = runs
        .iter()
        .map(|r| {
            json!({"mode": format!("{:?}", r.mode), "calls": r.calls,
            "calls_per_s": r.rate, "events_seen": r.seen, "lost": r.lost})
        })
        .collect();
    report.raw(
        "flat_out_and_peer",
        json!({"pairs": plan.pairs, "runs": raw}),
    );
    Ok(())
}

fn one(plan: &Plan, bins: &Bins, mode: Mode) -> Result<Run> {
    let secs = plan.peer_secs;
    match mode {
        Mode::Untraced => {
            let mut pp = start_pingpong(bins, plan.pairs, secs, None)?;
            let load = go_pingpong(&mut pp, secs)?;
            Ok(run_of(mode, load.calls, load.calls_per_s, None, None))
        }
        Mode::Tracer => {
            let t = traced_run(bins, plan.pairs, secs, None, None)?;
            let (calls, rate) = (t.load.calls, t.load.calls_per_s);
            Ok(run_of(
                mode,
                calls,
                rate,
                Some(t.seen()),
                Some(t.counts.lost),
            ))
        }
        Mode::Bpftrace => {
            let mut pp = start_pingpong(bins, plan.pairs, secs, None)?;
            let pid = pp.pid();
            let script = format!(
                "tracepoint:sock:sock_send_length /pid == {pid}/ {{ @send = count(); }} \
                 tracepoint:sock:sock_recv_length /pid == {pid}/ {{ @recv = count(); }}"
            );
            let mut bt = Proc::spawn(
                "bpftrace",
                Command::new("bpftrace").args(["-e", &script]),
                None,
            )?;
            bt.wait_for("Attaching", false, Duration::from_secs(60))?;
            // bpftrace says "Attaching" before its probes are live.
            std::thread::sleep(Duration::from_millis(500));
            let load = go_pingpong(&mut pp, secs)?;
            bt.interrupt(Duration::from_secs(30))?;
            let out = bt.stdout();
            let count = |key: &str| -> u64 {
                out.lines()
                    .find_map(|l| l.strip_prefix(key))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0)
            };
            let seen = count("@send:") + count("@recv:");
            Ok(run_of(mode, load.calls, load.calls_per_s, Some(seen), None))
        }
    }
}

fn run_of(mode: Mode, calls: u64, rate: f64, seen: Option<u64>, lost: Option<u64>) -> Run {
    Run {
        mode,
        calls,
        rate,
        seen,
        lost,
    }
}

/// bpftrace on PATH, installed with apt-get when missing and possible,
/// with the tracefs it needs.
fn bpftrace_available() -> bool {
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
/// it (the tracer needs none, so it no longer mounts it either): mount it
/// for the peer when it is missing, and say so.
fn tracefs_for_bpftrace() -> bool {
    if std::path::Path::new(TRACEFS).join("events").is_dir() {
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
