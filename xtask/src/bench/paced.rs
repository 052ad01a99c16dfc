//! Workload 9: bench-server under `tracer attach` at a paced 100,000
//! requests/s (bench-load --rate): the tracer's CPU over the run, as a share
//! of one core (/proc/PID/stat utime + stime, read after attach and before
//! the end, so start-up and the summary are left out), and the requests it
//! lost: attach's `lost_events` / `lost_by_kind`, and requests seen against
//! requests made.
use std::{process::Command, time::Duration};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use super::{
    Plan,
    procs::Proc,
    report::{Report, Verdict},
    tracer::{AttachHow, Bins, attach, cpu_s, read_summary},
};

pub const RATE: f64 = 100_000.0;

/// One paced run under attach.
pub struct Paced {
    pub made: u64,
    pub rps: f64,
    pub run_secs: f64,
    /// The tracer's CPU seconds over the run.
    pub cpu_s: f64,
    /// attach's JSON summary.
    pub summary: Value,
}

impl Paced {
    /// The tracer's CPU as a share of one core, in %.
    pub fn cpu(&self) -> f64 {
        self.cpu_s / self.run_secs * 100.0
    }
}

/// bench-server paced at [`RATE`] for `secs` under `tracer attach` (`how`).
pub fn measure(bins: &Bins, conns: u32, secs: f64, how: AttachHow) -> Result<Paced> {
    let (server, addr) = bins.start_server(300.0)?;
    let out = bins.scratch("paced-attach.jsonl");
    let mut tracer = attach(bins, server.pid(), &out, how)?;
    let cpu_before = cpu_s(tracer.pid()).context("tracer's /proc/PID/stat")?;
    let mut load = Proc::spawn(
        "bench-load",
        Command::new(&bins.load).args([
            &addr,
            "--conns",
            &conns.to_string(),
            "--secs",
            &secs.to_string(),
            "--rate",
            &RATE.to_string(),
        ]),
        None,
    )?;
    let exit = load.wait(Duration::from_secs_f64(secs + 30.0))?;
    let cpu_after = cpu_s(tracer.pid()).context("tracer's /proc/PID/stat")?;
    if exit.code != Some(0) {
        bail!("bench-load failed: {}", load.stderr().trim());
    }
    let v: Value = serde_json::from_str(load.stdout().trim()).context("bench-load output")?;
    tracer.interrupt(Duration::from_secs(60))?;
    drop(server);
    let summary = read_summary(&out)?;
    let _ = std::fs::remove_file(&out);
    Ok(Paced {
        made: v["requests"].as_u64().unwrap_or(0),
        rps: v["rps"].as_f64().unwrap_or(0.0),
        run_secs: v["secs"].as_f64().unwrap_or(secs),
        cpu_s: cpu_after - cpu_before,
        summary,
    })
}

pub fn run(plan: &Plan, bins: &Bins, report: &mut Report) -> Result<()> {
    let secs = plan.paced_secs;
    let p = measure(bins, plan.conns, secs, AttachHow::default())?;
    let (made, rps, run_secs, summary) = (p.made, p.rps, p.run_secs, &p.summary);
    let cpu = p.cpu();
    let seen = summary["requests"].as_u64().unwrap_or(0);
    let lost = summary["lost_events"].as_u64().unwrap_or(0);
    let by_kind: Vec<String> = summary["lost_by_kind"]
        .as_object()
        .map(|m| m.iter().map(|(k, n)| format!("{k} {n}")).collect())
        .unwrap_or_default();
    let by_kind = match by_kind.is_empty() {
        true => String::new(),
        false => format!(" ({})", by_kind.join(", ")),
    };
    eprintln!(
        "bench: paced {RATE:.0}/s: {made} requests ({rps:.0}/s), tracer CPU {cpu:.1}%, seen {seen}, lost {lost}{by_kind}"
    );
    // A rate well short of the target measures less than it says.
    let at_rate = rps >= 0.95 * RATE;
    let reached = if at_rate {
        String::new()
    } else {
        format!(" (only {rps:.0}/s reached)")
    };
    report.row(
        "9",
        format!(
            "bench-server at {RATE:.0} req/s asked, {secs} s, attach on it: tracer CPU (share of one core)"
        ),
        format!("{cpu:.1}% at {rps:.0} req/s"),
        "<= 10% at 100000/s",
        Verdict::of(at_rate && cpu <= 10.0),
    );
    report.row(
        "9",
        "  requests lost: made - seen; lost events (by kind)",
        format!(
            "{} ({made} made, {seen} seen); {lost} events lost{by_kind}{reached}",
            made.saturating_sub(seen)
        ),
        "0 at 100000/s",
        Verdict::of(at_rate && seen >= made && lost == 0),
    );
    report.raw(
        "paced",
        json!({"asked_rps": RATE, "conns": plan.conns, "secs": run_secs, "requests": made,
               "rps": rps, "tracer_cpu_s": p.cpu_s, "requests_seen": seen,
               "lost_events": lost, "lost_by_kind": summary["lost_by_kind"]}),
    );
    Ok(())
}
