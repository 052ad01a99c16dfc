//! Workload 11: nginx over HTTPS (one worker, 1 KiB file, keep-alive,
//! `wrk -t1 -c32`, OpenSSL 3 through Debian's libssl) untraced and under
//! `tracer attach --pid <worker>`, whose uprobes on SSL_read/SSL_write read
//! each request's plaintext. Rounds alternate the two modes; a round's
//! ratio is its attach rate over its untraced rate, and the row is the
//! median. The uprobe programs' own time per hit comes from the kernel's
//! run statistics (`kernel.bpf_stats_enabled`, on for the whole workload;
//! it adds its own few ns to every program run). That figure leaves out
//! the uprobe's trap into the kernel, which the req/s ratio includes, and
//! so does the worker's own CPU time per request: the traps and programs
//! run in its context, so that figure moves less than req/s when other
//! work shares the machine.
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use super::{
    Plan,
    nginx::{self, Nginx},
    report::{Report, Verdict, median},
    tracer::{AttachHow, Bins, BpfStats, attach, cpu_s, prog_stats, read_summary},
};

struct Run {
    round: usize,
    traced: bool,
    load: nginx::Drive,
    /// Attach's summary: requests it reconstructed, events it lost.
    seen: Option<u64>,
    lost: Option<u64>,
    /// Hits and run time of the uprobe and uretprobe programs.
    uprobe_hits: u64,
    uprobe_ns: u64,
    /// The tracer's CPU over the load, in seconds (utime + stime).
    tracer_cpu_s: f64,
    /// The nginx worker's CPU over the load, in seconds: the uprobes' traps
    /// and programs run in its context, whatever else loads the machine.
    worker_cpu_s: f64,
}

pub fn run(plan: &Plan, bins: &Bins, report: &mut Report) -> Result<()> {
    if !nginx::install()? {
        bail!("needs wrk (apt-get install wrk): bench-load speaks no TLS");
    }
    let _stats = BpfStats::enable()?;
    let server = Nginx::start_https(bins)?;
    let url = format!("https://{}/", server.addr);
    let mut runs = Vec::new();
    for round in 0..plan.nginx_rounds {
        for i in 0..2 {
            let traced = (i + round) % 2 == 1;
            let r = one(plan, bins, &server, &url, traced)?;
            eprintln!(
                "bench: https round {} {}: {:.0} req/s, seen {:?}, uprobe hits {}",
                round + 1,
                if traced { "attach" } else { "untraced" },
                r.load.rps,
                r.seen,
                r.uprobe_hits
            );
            runs.push(Run { round, ..r });
        }
    }
    drop(server);
    rows(plan, &runs, report);
    Ok(())
}

fn one(plan: &Plan, bins: &Bins, server: &Nginx, url: &str, traced: bool) -> Result<Run> {
    let mut run = Run {
        round: 0,
        traced,
        load: nginx::Drive {
            requests: 0,
            rps: 0.0,
        },
        seen: None,
        lost: None,
        uprobe_hits: 0,
        uprobe_ns: 0,
        tracer_cpu_s: 0.0,
        worker_cpu_s: 0.0,
    };
    let worker_before = cpu_s(server.worker).unwrap_or(0.0);
    if !traced {
        run.load = nginx::drive_wrk(url, plan.nginx_secs)?;
        run.worker_cpu_s = cpu_s(server.worker).unwrap_or(0.0) - worker_before;
        return Ok(run);
    }
    let out = bins.scratch("nginx-https-attach.jsonl");
    let mut tracer = attach(bins, server.worker, &out, AttachHow::default())?;
    let cpu_before = cpu_s(tracer.pid()).unwrap_or(0.0);
    run.load = nginx::drive_wrk(url, plan.nginx_secs)?;
    run.tracer_cpu_s = cpu_s(tracer.pid()).unwrap_or(0.0) - cpu_before;
    run.worker_cpu_s = cpu_s(server.worker).unwrap_or(0.0) - worker_before;
    for p in prog_stats(tracer.pid())?
        .iter()
        .filter(|p| p.hook == "uprobe" || p.hook == "uretprobe")
    {
        run.uprobe_hits += p.run_cnt;
        run.uprobe_ns += p.run_time_ns;
    }
    tracer.interrupt(Duration::from_secs(60))?;
    let summary = read_summary(&out)?;
    run.seen = summary["requests"].as_u64();
    run.lost = summary["lost_events"].as_u64();
    let _ = std::fs::remove_file(&out);
    Ok(run)
}

fn rows(plan: &Plan, runs: &[Run], report: &mut Report) {
    let mut ratios: Vec<f64> = runs
        .iter()
        .filter(|r| r.traced)
        .filter_map(|r| {
            let base = runs.iter().find(|b| b.round == r.round && !b.traced)?;
            (base.load.rps > 0.0).then(|| r.load.rps / base.load.rps)
        })
        .collect();
    let ratio = median(&mut ratios);
    let mut base: Vec<f64> = runs
        .iter()
        .filter(|r| !r.traced)
        .map(|r| r.load.rps)
        .collect();
    let base = median(&mut base);
    let traced = || runs.iter().filter(|r| r.traced);
    let made: u64 = traced().map(|r| r.load.requests).sum();
    let seen: u64 = traced().filter_map(|r| r.seen).sum();
    let lost: u64 = traced().filter_map(|r| r.lost).sum();
    let hits: u64 = traced().map(|r| r.uprobe_hits).sum();
    let ns: u64 = traced().map(|r| r.uprobe_ns).sum();
    let per_hit = if hits > 0 {
        ns as f64 / hits as f64
    } else {
        0.0
    };
    let per_request = if made > 0 {
        hits as f64 / made as f64
    } else {
        0.0
    };
    let cpu: f64 = traced().map(|r| r.tracer_cpu_s).sum();
    let wall = traced().count() as f64 * plan.nginx_secs;
    let cpu_share = if wall > 0.0 { cpu / wall } else { 0.0 };
    report.row(
        "11",
        format!(
            "nginx HTTPS, 1 worker, 1 KiB file, keep-alive, wrk -t1 -c{}: untraced req/s ({} x {} s rounds, bpf_stats on)",
            nginx::CONNS,
            plan.nginx_rounds,
            plan.nginx_secs
        ),
        format!("{base:.0}/s"),
        "",
        Verdict::Info,
    );
    report.row(
        "11",
        "  attach --pid <worker>, SSL_read/SSL_write uprobes: req/s ratio; requests seen / completed, lost events",
        format!("{ratio:.3}; {seen} / {made}, {lost} lost"),
        "",
        Verdict::Info,
    );
    report.row(
        "11",
        "  uprobe + uretprobe programs: ns per hit (run_time_ns / run_cnt), hits per request",
        format!("{per_hit:.0} ns; {per_request:.2}"),
        "",
        Verdict::Info,
    );
    // CPU per request of the worker, each mode over all its rounds.
    let per_request_us = |traced: bool| {
        let (cpu, n) = runs
            .iter()
            .filter(|r| r.traced == traced)
            .fold((0.0, 0u64), |(c, n), r| {
                (c + r.worker_cpu_s, n + r.load.requests)
            });
        if n > 0 { cpu * 1e6 / n as f64 } else { 0.0 }
    };
    let (plain_us, traced_us) = (per_request_us(false), per_request_us(true));
    report.row(
        "11",
        "  nginx worker CPU per request, untraced / attach (the difference: uprobe traps, programs, send/recv hooks)",
        format!(
            "{plain_us:.1} / {traced_us:.1} us (+{:.1} us)",
            traced_us - plain_us
        ),
        "",
        Verdict::Info,
    );
    report.row(
        "11",
        "  why: tracer CPU during the traced load (share of one core; nginx and wrk share the same 2 CPUs)",
        format!("{:.0}%", cpu_share * 100.0),
        "",
        Verdict::Info,
    );
    let raw: Vec<Value> = runs
        .iter()
        .map(|r| {
            json!({"round": r.round, "traced": r.traced, "requests": r.load.requests,
                   "rps": r.load.rps, "requests_seen": r.seen, "lost_events": r.lost,
                   "uprobe_hits": r.uprobe_hits, "uprobe_run_time_ns": r.uprobe_ns,
                   "tracer_cpu_s": r.tracer_cpu_s, "worker_cpu_s": r.worker_cpu_s})
        })
        .collect();
    report.raw(
        "nginx_https",
        json!({"conns": nginx::CONNS, "secs": plan.nginx_secs, "runs": raw,
               "median_ratio": ratio, "uprobe_ns_per_hit": per_hit,
               "uprobe_hits_per_request": per_request,
               "worker_cpu_us_per_request": {"untraced": plain_us, "attach": traced_us}}),
    );
}
