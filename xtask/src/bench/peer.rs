//! Workloads 3 (flat out) and 7: the ping-pong at full speed, untraced, under
//! `tracer attach`, and under `bpftrace` counting the same two tracepoints
//! (`sock:sock_send_length`, `sock:sock_recv_length`) for the same PID.
//! Rounds rotate the order so drift cancels; the overhead of each is the
//! ping-pong's own call rate against the untraced one.
use anyhow::Result;
use serde_json::json;

use super::{
    Plan, bpftrace,
    events::{go_pingpong, start_pingpong, traced_run},
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
    let bpftrace = bpftrace::available();
    let mut modes = vec![Mode::Untraced, Mode::Tracer];
    if bpftrace {
        modes.push(Mode::Bpftrace);
    }
    let mut runs = Vec::new();
    // A failed bpftrace run is the peer's row, not the end of workload 3.
    let mut peer_failed = None;
    for round in 0..plan.rounds {
        for i in 0..modes.len() {
            let mode = modes[(i + round) % modes.len()];
            let r = match one(plan, bins, mode) {
                Err(e) if mode == Mode::Bpftrace => {
                    eprintln!("bench: bpftrace run failed: {e:#}");
                    peer_failed.get_or_insert(e);
                    continue;
                }
                r => r?,
            };
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
    if let Some(e) = &peer_failed {
        report.row(
            "7",
            "bpftrace counting send/recv for the PID",
            format!("failed: {e:#}"),
            "finishes",
            Verdict::Misses,
        );
    } else if bpftrace {
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
            let counter = bpftrace::Counter::start(pp.pid(), secs)?;
            let load = go_pingpong(&mut pp, secs)?;
            let seen = counter.finish()?;
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
