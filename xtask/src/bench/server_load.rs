//! Workloads 1 and 2: a keep-alive HTTP/1.1 server under a load loop, run
//! untraced, with `tracer attach` on the server, with `tracer attach` on an
//! idle `sleep`, and on two of them. Rounds rotate the order so drift cancels.
use std::{process::Command, time::Duration};

use anyhow::{Context as _, Result};
use serde_json::Value;

use super::{
    Plan,
    procs::Proc,
    report::Report,
    server_report,
    tracer::{AttachHow, Bins, BpfStats, ProgStats, attach, prog_stats, read_summary},
};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    Untraced,
    /// The tracer attached to the server itself.
    Server,
    /// The tracer attached to another, idle process.
    Idle,
    /// As `Idle`, with send/recv programs that return at once: what the
    /// kernel's dispatch of those tracepoints costs, the floor of `Idle`.
    Floor,
    /// The tracer attached to two idle processes: every other process's
    /// hooks look the set of traced tgids up (as with `run` once its
    /// command forks, or `attach --pid A,B`) instead of one array slot.
    IdleSet,
}

/// Each round runs every mode; rounds rotate the order so drift cancels.
const ORDERS: [[Mode; 5]; 5] = [
    [
        Mode::Untraced,
        Mode::Server,
        Mode::Idle,
        Mode::Floor,
        Mode::IdleSet,
    ],
    [
        Mode::Server,
        Mode::Idle,
        Mode::Floor,
        Mode::IdleSet,
        Mode::Untraced,
    ],
    [
        Mode::Idle,
        Mode::Floor,
        Mode::IdleSet,
        Mode::Untraced,
        Mode::Server,
    ],
    [
        Mode::Floor,
        Mode::IdleSet,
        Mode::Untraced,
        Mode::Server,
        Mode::Idle,
    ],
    [
        Mode::IdleSet,
        Mode::Untraced,
        Mode::Server,
        Mode::Idle,
        Mode::Floor,
    ],
];

/// One round of load: what bench-load printed.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub requests: u64,
    pub rps: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// One round: the load, and what the tracer (if any) printed and used.
pub struct Round {
    pub mode: Mode,
    pub load: Load,
    pub events: Option<u64>,
    pub tracer_cpu_s: Option<f64>,
    pub stats: Vec<ProgStats>,
}

pub fn run(plan: &Plan, bins: &Bins, report: &mut Report) -> Result<()> {
    let (server, addr) = bins.start_server(300.0)?;
    let idle = Proc::spawn("sleep", Command::new("sleep").arg("300"), None)?;
    let idle2 = Proc::spawn("sleep", Command::new("sleep").arg("300"), None)?;
    let mut results: Vec<Round> = Vec::new();
    for round in 0..plan.rounds {
        for mode in ORDERS[round % ORDERS.len()] {
            let target = match mode {
                Mode::Untraced => None,
                Mode::Server => Some(server.pid()),
                Mode::Idle | Mode::Floor | Mode::IdleSet => Some(idle.pid()),
            };
            let also = (mode == Mode::IdleSet).then(|| idle2.pid());
            let r = one_round(plan, bins, &addr, mode, target, also, false)?;
            eprintln!(
                "bench: server round {} {mode:?}: {:.0} req/s p50 {:.1} us p99 {:.1} us, tracer CPU {:?} s",
                round + 1,
                r.load.rps,
                r.load.p50_us,
                r.load.p99_us,
                r.tracer_cpu_s
            );
            results.push(r);
        }
    }
    // Not counted in the ratios (bpf_stats costs time itself): where the
    // kernel time goes for processes the tracer does not trace.
    let stats = BpfStats::enable().ok().map(|guard| {
        let r = one_round(plan, bins, &addr, Mode::Idle, Some(idle.pid()), None, true);
        drop(guard);
        r
    });
    drop(idle);
    drop(idle2);
    drop(server);
    server_report::summarise(plan, &results, report);
    match stats {
        Some(Ok(r)) => server_report::untraced_cost(&r, report),
        Some(Err(e)) => report.failed("2", &e),
        None => {}
    }
    Ok(())
}

/// Runs the load once, with `tracer attach --pid target` when given.
/// Returns the load and, when traced, the events the tracer printed.
fn one_round(
    plan: &Plan,
    bins: &Bins,
    addr: &str,
    mode: Mode,
    target: Option<u32>,
    also: Option<u32>,
    with_stats: bool,
) -> Result<Round> {
    let out = bins.scratch("server-attach.jsonl");
    let how = AttachHow {
        ring_bytes: None,
        floor: mode == Mode::Floor,
        also,
        events: false,
        otlp: None,
    };
    let mut tracer = target.map(|pid| attach(bins, pid, &out, how)).transpose()?;
    let secs = plan.load_secs.to_string();
    let conns = plan.conns.to_string();
    let mut load = Proc::spawn(
        "bench-load",
        Command::new(&bins.load).args([addr, "--conns", &conns, "--secs", &secs]),
        None,
    )?;
    let exit = load.wait(Duration::from_secs_f64(plan.load_secs + 30.0))?;
    let line = load.stdout();
    if exit.code != Some(0) {
        anyhow::bail!("bench-load failed: {}", load.stderr().trim());
    }
    let v: Value = serde_json::from_str(line.trim()).context("bench-load output")?;
    let got = Load {
        requests: v["requests"].as_u64().unwrap_or(0),
        rps: v["rps"].as_f64().unwrap_or(0.0),
        p50_us: v["p50_us"].as_f64().unwrap_or(0.0),
        p99_us: v["p99_us"].as_f64().unwrap_or(0.0),
    };
    let mut r = Round {
        mode,
        load: got,
        events: None,
        tracer_cpu_s: None,
        stats: Vec::new(),
    };
    if let Some(t) = tracer.as_mut() {
        if with_stats {
            r.stats = prog_stats(t.pid())?;
        }
        let exit = t.interrupt(Duration::from_secs(60))?;
        // attach's default: requests, not every I/O (that is --events).
        r.events = read_summary(&out)?["requests"].as_u64();
        r.tracer_cpu_s = Some(exit.cpu_s);
        let _ = std::fs::remove_file(&out);
    }
    Ok(r)
}
