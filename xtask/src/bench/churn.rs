//! Workload 6, churn: peak RSS of `tracer attach` on bench-server over up to
//! 1,000,000 short connections (each connect, one request, close by the
//! client), bounded in time; it says how many were made. VmHWM is sampled
//! while the run lasts; wait4's peak adds the end summary.
use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use super::{
    Plan,
    procs::Proc,
    report::{Report, Verdict},
    tracer::{AttachHow, Bins, attach, vm_hwm_kib},
};

/// Where the churn stops if the tracer's memory keeps growing.
const RSS_CAP_KIB: u64 = 1 << 20;

pub fn run(plan: &Plan, bins: &Bins, report: &mut Report) -> Result<()> {
    let (max, secs) = (plan.churn_conns, plan.churn_secs);
    let (server, addr) = bins.start_server(secs + 120.0)?;
    // 1M connections of events would be gigabytes of JSON: memory is the
    // measure here, so the output goes nowhere.
    let mut tracer = attach(
        bins,
        server.pid(),
        Path::new("/dev/null"),
        AttachHow::default(),
    )?;
    let mut load = Proc::spawn(
        "bench-load",
        Command::new(&bins.load).args([
            &addr,
            "--conns",
            &plan.conns.to_string(),
            "--secs",
            &secs.to_string(),
            "--churn",
            "--max",
            &max.to_string(),
        ]),
        None,
    )?;
    let started = Instant::now();
    let mut hwm = 0;
    let exit = loop {
        hwm = hwm.max(vm_hwm_kib(tracer.pid()).unwrap_or(0));
        if let Some(exit) = load.wait_up_to(Duration::from_millis(500))? {
            break exit;
        }
        if started.elapsed().as_secs_f64() > secs + 30.0 {
            bail!("bench-load did not end within {secs} + 30 s");
        }
        if hwm > RSS_CAP_KIB {
            // A tracer that keeps every connection would take gigabytes on a
            // shared machine (its end summary some times more): stop here.
            load.signal(libc::SIGKILL);
            tracer.signal(libc::SIGKILL);
            report.row(
                "6",
                format!("tracer peak RSS over a churn of {max} short connections"),
                format!(
                    "over {} MB after {:.0} s: stopped there, tracer killed",
                    RSS_CAP_KIB >> 10,
                    started.elapsed().as_secs_f64()
                ),
                "< 50 MB",
                Verdict::Misses,
            );
            return Ok(());
        }
    };
    hwm = hwm.max(vm_hwm_kib(tracer.pid()).unwrap_or(0));
    if exit.code != Some(0) {
        bail!("bench-load failed: {}", load.stderr().trim());
    }
    let v: Value = serde_json::from_str(load.stdout().trim()).context("bench-load output")?;
    let made = v["connections"].as_u64().unwrap_or(0);
    let took = v["secs"].as_f64().unwrap_or(0.0);
    let end = tracer.interrupt(Duration::from_secs(120))?;
    drop(server);
    let during = hwm as f64 / 1024.0;
    let with_summary = end.max_rss_kib.max(hwm) as f64 / 1024.0;
    eprintln!(
        "bench: churn: {made} connections in {took:.0} s, tracer VmHWM {during:.1} MB, {with_summary:.1} MB with the summary"
    );
    let all = if made >= max {
        String::new()
    } else {
        format!(", stopped at {secs} s")
    };
    report.row(
        "6",
        format!("tracer peak RSS over a churn of {max} short connections (connect, 1 request, close)"),
        format!(
            "{during:.1} MB during, {with_summary:.1} MB with the end summary; {made} connections in {took:.0} s{all}"
        ),
        "< 50 MB",
        Verdict::of(made > 0 && with_summary < 50.0),
    );
    report.raw(
        "churn",
        json!({"asked_connections": max, "connections": made, "secs": took,
               "tracer_vm_hwm_kib": hwm, "tracer_max_rss_kib": end.max_rss_kib}),
    );
    Ok(())
}
