//! Workload 4: start-up. Wall time of `tracer trace URL -n 1` against a
//! loopback server (warm: one run first that is not counted), and the time
//! from just before the spawn to the request's `GetConn`, whose `ts_ns` is
//! CLOCK_MONOTONIC like the bench's own clock.
use std::process::Command;

use anyhow::{Context as _, Result, bail};
use serde_json::{Value, json};

use super::{
    Plan,
    procs::monotonic_ns,
    report::{Report, Verdict, median},
    tracer::Bins,
};

pub fn run(plan: &Plan, bins: &Bins, report: &mut Report) -> Result<()> {
    let (_server, addr) = bins.start_server(120.0)?;
    let url = format!("http://{addr}/");
    once(bins, &url, &[])?; // warm the page cache and BTF
    let (mut wall, mut to_getconn) = (Vec::new(), Vec::new());
    for _ in 0..plan.startup_runs {
        let (w, g) = once(bins, &url, &[])?;
        wall.push(w);
        to_getconn.push(g);
    }
    let raw_wall = wall.clone();
    let raw_getconn = to_getconn.clone();
    let (w, g) = (median(&mut wall), median(&mut to_getconn));
    let max = raw_wall.iter().copied().fold(0.0, f64::max);
    report.row(
        "4",
        format!(
            "tracer trace URL -n 1, wall time (median of {}, warm)",
            plan.startup_runs
        ),
        format!("{w:.1} ms (max {max:.1})"),
        "< 150 ms",
        Verdict::of(w < 150.0),
    );
    report.row(
        "4",
        "  process start to GetConn (median)",
        format!("{g:.1} ms"),
        "",
        Verdict::Info,
    );
    report.raw(
        "startup",
        json!({"url": url, "wall_ms": raw_wall, "to_getconn_ms": raw_getconn}),
    );
    Ok(())
}

/// One `tracer trace URL -n 1 --format json` with `extra` arguments:
/// (wall ms, ms to GetConn).
pub fn once(bins: &Bins, url: &str, extra: &[&str]) -> Result<(f64, f64)> {
    let mut cmd = Command::new(&bins.tracer);
    cmd.args(["trace", url, "-n", "1", "--format", "json"])
        .args(extra)
        .env("NO_COLOR", "1");
    let start = monotonic_ns();
    let out = cmd.output().context("running tracer trace")?;
    let end = monotonic_ns();
    if !out.status.success() {
        bail!(
            "tracer trace failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let getconn = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["name"] == "GetConn")
        .and_then(|v| v["ts_ns"].as_u64())
        .context("no GetConn event in tracer trace's JSON")?;
    let ms = |ns: u64| ns as f64 / 1e6;
    Ok((ms(end - start), ms(getconn.saturating_sub(start))))
}
