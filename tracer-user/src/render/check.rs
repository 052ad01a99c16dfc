//! The `tracer check` table.
use std::fmt::Write as _;

use crate::{
    preflight::{Report, Status},
    probes::{ProbeError, Probes},
};

pub fn check_table(report: &Report, probes: Option<&Result<Probes, ProbeError>>) -> String {
    let mut out = String::new();
    let width = report
        .checks
        .iter()
        .map(|c| c.what.len())
        .max()
        .unwrap_or(0)
        .max(20);
    for c in &report.checks {
        let mark = match c.status {
            Status::Ok => "ok",
            Status::Degraded => "degraded",
            Status::Missing => "MISSING",
        };
        let _ = writeln!(out, "{:<width$}  {mark:<8}  {}", c.what, c.detail);
    }
    let verdict = match probes {
        Some(Ok(p)) if p.skipped.is_empty() => {
            "verdict: tracing works here (all probes loaded and attached)".to_string()
        }
        Some(Ok(p)) => {
            let left: Vec<String> = p
                .skipped
                .iter()
                .map(|(name, why)| format!("{name} ({why})"))
                .collect();
            format!(
                "verdict: tracing works here, degraded: left out {}",
                left.join(", ")
            )
        }
        Some(Err(e)) => format!("verdict: tracing cannot work here: {e}"),
        None => format!("verdict: tracing cannot work here: {}", report.missing()),
    };
    let _ = writeln!(
        out,
        "{:<width$}  {:<8}  {}",
        "probes load+attach",
        match probes {
            Some(Ok(_)) => "ok",
            Some(Err(_)) => "MISSING",
            None => "not tried",
        },
        match probes {
            Some(Ok(p)) => format!(
                "{} of {} programs attached",
                crate::probes::PROGRAMS.len() - p.skipped.len(),
                crate::probes::PROGRAMS.len()
            ),
            Some(Err(e)) => e.to_string(),
            None => "skipped: see the missing items above".into(),
        }
    );
    if let Some(Ok(p)) = probes {
        for (serves, mechanism, at) in &p.mechanisms {
            let _ = writeln!(
                out,
                "{:<width$}  {:<8}  {} on {at}",
                format!("hook {serves}"),
                "ok",
                mechanism.name()
            );
        }
    }
    out.push_str(&verdict);
    out.push('\n');
    out
}
