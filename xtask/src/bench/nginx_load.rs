//! Workload 8: nginx (one worker, 1 KiB file, keep-alive, 32 connections)
//! untraced, under `tracer attach --pid <worker>` writing every request to
//! a file, under the floor (the same hooks, send/recv programs that return
//! at once) and under the bpftrace counting peer. Every round runs each
//! mode, in an order that rotates; a mode's ratio is its rate over the
//! untraced rate of the same round, and the row is the median of those.
use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use super::{
    Plan, bpftrace,
    nginx::{self, Nginx},
    report::{Report, Verdict, median},
    tracer::{AttachHow, Bins, attach, read_summary},
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Untraced,
    Attach,
    Floor,
    Bpftrace,
}

struct Run {
    round: usize,
    mode: Mode,
    load: nginx::Drive,
    /// Attach's summary: requests it reconstructed, events it lost.
    seen: Option<u64>,
    lost: Option<u64>,
}

pub fn run(plan: &Plan, bins: &Bins, report: &mut Report) -> Result<()> {
    let wrk = nginx::install()?;
    let server = Nginx::start(bins)?;
    let mut modes = vec![Mode::Untraced, Mode::Attach, Mode::Floor];
    let peer = bpftrace::available();
    if peer {
        modes.push(Mode::Bpftrace);
    }
    let mut runs = Vec::new();
    let mut peer_failed = None;
    for round in 0..plan.nginx_rounds {
        for i in 0..modes.len() {
            let mode = modes[(i + round) % modes.len()];
            let r = match one(plan, bins, &server, wrk, mode) {
                Err(e) if mode == Mode::Bpftrace => {
                    eprintln!("bench: nginx under bpftrace failed: {e:#}");
                    peer_failed.get_or_insert(e);
                    continue;
                }
                r => r?,
            };
            eprintln!(
                "bench: nginx round {} {mode:?}: {:.0} req/s, seen {:?}, lost {:?}",
                round + 1,
                r.load.rps,
                r.seen,
                r.lost
            );
            runs.push(Run { round, ..r });
        }
    }
    drop(server);
    rows(plan, wrk, &runs, peer, peer_failed, report);
    Ok(())
}

fn one(plan: &Plan, bins: &Bins, server: &Nginx, wrk: bool, mode: Mode) -> Result<Run> {
    let secs = plan.nginx_secs;
    let out = bins.scratch("nginx-attach.jsonl");
    let mut run = Run {
        round: 0,
        mode,
        load: nginx::Drive {
            requests: 0,
            rps: 0.0,
        },
        seen: None,
        lost: None,
    };
    match mode {
        Mode::Untraced => run.load = nginx::drive(bins, wrk, &server.addr, secs)?,
        Mode::Attach | Mode::Floor => {
            let how = AttachHow {
                floor: mode == Mode::Floor,
                ..AttachHow::default()
            };
            let mut tracer = attach(bins, server.worker, &out, how)?;
            run.load = nginx::drive(bins, wrk, &server.addr, secs)?;
            tracer.interrupt(Duration::from_secs(60))?;
            if mode == Mode::Attach {
                let summary = read_summary(&out)?;
                run.seen = summary["requests"].as_u64();
                run.lost = summary["lost_events"].as_u64();
            }
            let _ = std::fs::remove_file(&out);
        }
        Mode::Bpftrace => {
            let counter = bpftrace::Counter::start(server.worker, secs)?;
            run.load = nginx::drive(bins, wrk, &server.addr, secs)?;
            run.seen = Some(counter.finish()?);
        }
    }
    Ok(run)
}

fn rows(
    plan: &Plan,
    wrk: bool,
    runs: &[Run],
    peer: bool,
    peer_failed: Option<anyhow::Error>,
    report: &mut Report,
) {
    // Each run's rate over the untraced rate of its own round.
    let ratio = |m: Mode| {
        let mut v: Vec<f64> = runs
            .iter()
            .filter(|r| r.mode == m)
            .filter_map(|r| {
                let base = runs
                    .iter()
                    .find(|b| b.round == r.round && b.mode == Mode::Untraced)?;
                (base.load.rps > 0.0).then(|| r.load.rps / base.load.rps)
            })
            .collect();
        median(&mut v)
    };
    let mut base: Vec<f64> = runs
        .iter()
        .filter(|r| r.mode == Mode::Untraced)
        .map(|r| r.load.rps)
        .collect();
    let base = median(&mut base);
    let driver = if wrk { "wrk -t1" } else { "bench-load" };
    report.row(
        "8",
        format!(
            "nginx, 1 worker, 1 KiB file, keep-alive, {driver} -c{}: untraced req/s ({} x {} s rounds)",
            nginx::CONNS,
            plan.nginx_rounds,
            plan.nginx_secs
        ),
        format!("{base:.0}/s"),
        "",
        Verdict::Info,
    );
    let (attach, floor) = (ratio(Mode::Attach), ratio(Mode::Floor));
    let sum = |f: fn(&Run) -> Option<u64>| -> u64 {
        runs.iter()
            .filter(|r| r.mode == Mode::Attach)
            .filter_map(f)
            .sum()
    };
    let made: u64 = runs
        .iter()
        .filter(|r| r.mode == Mode::Attach)
        .map(|r| r.load.requests)
        .sum();
    report.row(
        "8",
        "  attach --pid <worker>, every request to a file: req/s ratio; requests seen / completed by the load, lost events",
        format!(
            "{attach:.3}; {} / {made}, {} lost",
            sum(|r| r.seen),
            sum(|r| r.lost)
        ),
        format!("within 0.03 of the floor (>= {:.3})", floor - 0.03),
        Verdict::of(attach > 0.0 && attach >= floor - 0.03),
    );
    report.row(
        "8",
        "  floor: the same hooks, send/recv programs that return at once: req/s ratio",
        format!("{floor:.3}"),
        "",
        Verdict::Info,
    );
    if let Some(e) = peer_failed {
        report.row(
            "8",
            "  bpftrace counting send/recv for the worker",
            format!("failed: {e:#}"),
            "finishes",
            Verdict::Misses,
        );
    } else if peer {
        let counted: u64 = runs
            .iter()
            .filter(|r| r.mode == Mode::Bpftrace)
            .filter_map(|r| r.seen)
            .sum();
        report.row(
            "8",
            "  bpftrace counting send/recv for the worker: req/s ratio, events counted",
            format!("{:.3}, {counted}", ratio(Mode::Bpftrace)),
            "side by side",
            Verdict::Info,
        );
    }
    let raw: Vec<Value> = runs
        .iter()
        .map(|r| {
            json!({"round": r.round, "mode": format!("{:?}", r.mode), "requests": r.load.requests,
                   "rps": r.load.rps, "requests_seen": r.seen, "lost_events": r.lost})
        })
        .collect();
    report.raw(
        "nginx",
        json!({"driver": driver, "conns": nginx::CONNS, "secs": plan.nginx_secs, "runs": raw,
               "median_ratio": {"attach": attach, "floor": floor}}),
    );
}
