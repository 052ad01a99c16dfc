//! `cargo xtask bench [--quick]`: the tracer's cost, measured beside an
//! untraced baseline in the same run, on loopback only. Each workload is
//! bounded in time; a workload that fails is reported as such and the rest
//! still run. Timing is reported, never asserted.
mod bpftrace;
mod churn;
mod events;
mod https_load;
mod nginx;
mod nginx_load;
mod otlp;
mod paced;
mod peer;
mod procs;
mod report;
mod server_load;
mod server_report;
mod startup;
mod tracer;

use std::fs;

use anyhow::{Result, bail};
use serde_json::json;

use crate::{setup, shell};
use report::Report;
use tracer::Bins;

/// Durations and sizes of one bench run.
pub struct Plan {
    quick: bool,
    /// Rounds of each mode, interleaved (workloads 1, 2, 3 flat out, 7).
    rounds: usize,
    load_secs: f64,
    conns: u32,
    /// Ping-pong connection pairs: 2 keeps both cores busy.
    pairs: u32,
    /// Paced ping-pong rates (calls/s) before the sustained run.
    ladder: Vec<f64>,
    step_secs: f64,
    sustained_rate: f64,
    sustained_secs: f64,
    peer_secs: f64,
    startup_runs: usize,
    /// Workload 8 (nginx): rounds of every mode, and seconds of each run.
    nginx_rounds: usize,
    nginx_secs: f64,
    /// Workload 9: seconds at the paced 100k requests/s.
    paced_secs: f64,
    /// Workload 6's churn: connections, and the time it may take at most.
    churn_conns: u64,
    churn_secs: f64,
}

impl Plan {
    fn new(quick: bool) -> Self {
        if quick {
            Self {
                quick,
                rounds: 1,
                load_secs: 2.0,
                conns: 4,
                pairs: 2,
                ladder: vec![250_000.0],
                step_secs: 1.5,
                sustained_rate: 500_000.0,
                sustained_secs: 3.0,
                peer_secs: 2.0,
                startup_runs: 3,
                nginx_rounds: 2,
                nginx_secs: 2.0,
                paced_secs: 3.0,
                churn_conns: 1_000_000,
                churn_secs: 15.0,
            }
        } else {
            Self {
                quick,
                rounds: 3,
                load_secs: 5.0,
                conns: 4,
                pairs: 2,
                ladder: vec![100_000.0, 200_000.0, 300_000.0, 400_000.0],
                step_secs: 3.0,
                sustained_rate: 500_000.0,
                sustained_secs: 10.0,
                peer_secs: 4.0,
                startup_runs: 10,
                nginx_rounds: 7,
                nginx_secs: 4.0,
                paced_secs: 10.0,
                churn_conns: 1_000_000,
                churn_secs: 120.0,
            }
        }
    }
}

/// Every workload, or those in `only` (by number).
pub fn run(quick: bool, only: &[u32]) -> Result<()> {
    if !shell::is_root() {
        bail!("the bench loads eBPF programs and sets kernel.bpf_stats_enabled: run it as root");
    }
    setup::run()?;
    let mut build = shell::cargo();
    build.args([
        "build",
        "--release",
        "-p",
        "tracer-user",
        "-p",
        "tracer-tests",
        "--bins",
        // The floor round's tracer-bench-knobs; `tracer` ignores the knob.
        "--features",
        "tracer-user/bench-knobs",
    ]);
    shell::status(&mut build, "building tracer and the bench helpers")?;
    let bins = Bins::locate()?;
    let plan = Plan::new(quick);
    let loadavg = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let started = std::time::Instant::now();
    let mut report = Report::default();

    let wanted = |n: u32| only.is_empty() || only.contains(&n);
    type Workload = fn(&Plan, &Bins, &mut Report) -> Result<()>;
    // In this order; the first number is the one `--only` selects (1 runs
    // 1 and 2, 3 runs 3, 5 and 6's peak RSS, 6 the churn).
    let workloads: [(u32, &str, &str, Workload); 9] = [
        (4, "4", "4 start-up", startup::run),
        (1, "1", "1, 2 busy server", server_load::run),
        (
            3,
            "3",
            "3, 5, 6 event throughput, kernel cost, memory",
            events::run,
        ),
        (7, "7", "3 flat out, 7 bpftrace", peer::run),
        (8, "8", "8 nginx", nginx_load::run),
        (9, "9", "9 attach at a paced 100k requests/s", paced::run),
        (10, "10", "10 what --otlp costs", otlp::run),
        (11, "11", "11 nginx over HTTPS", https_load::run),
        (
            6,
            "6",
            "6 memory over a churn of short connections",
            churn::run,
        ),
    ];
    for (n, row, what, workload) in workloads {
        if !wanted(n) {
            continue;
        }
        eprintln!("bench: {what}");
        if let Err(e) = workload(&plan, &bins, &mut report) {
            report.failed(row, &e);
        }
    }
    let _ = fs::remove_dir_all(bins.out_dir.join("scratch"));
    // By number: "10" after "9"; a stable sort keeps each one's rows in order.
    report
        .rows
        .sort_by_key(|r| r.workload.parse::<u32>().unwrap_or(u32::MAX));

    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let commit = git_commit();
    let secs = started.elapsed().as_secs_f64();
    let header = format!(
        "tracer bench{}: Linux {}, {cpus} CPUs, load average at start {}, {secs:.0} s",
        if plan.quick { " (quick)" } else { "" },
        kernel.trim(),
        loadavg
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
    );
    println!("{header}\n\n{}", report.text());
    let raw_header = json!({
        "quick": plan.quick, "kernel": kernel.trim(), "cpus": cpus,
        "loadavg_at_start": loadavg.trim(), "seconds": secs, "commit": commit,
    });
    report.write(&bins.out_dir, &header, raw_header)?;
    eprintln!(
        "bench: wrote {} and bench.json",
        bins.out_dir.join("bench.md").display()
    );
    Ok(())
}

/// The commit measured, `+dirty` when the work tree has changes.
fn git_commit() -> String {
    let git = |args: &[&str]| {
        let mut cmd = std::process::Command::new("git");
        if let Ok(root) = shell::workspace_root() {
            cmd.current_dir(root);
        }
        shell::output(cmd.args(args)).unwrap_or_default()
    };
    let head = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"])
        .trim()
        .is_empty();
    format!("{}{}", head.trim(), if dirty { "+dirty" } else { "" })
}
