//! `--stat`: requests go to the per-endpoint counts instead of one line
//! each, and a table (text) or a `stat` line (JSON) is written per second,
//! when the output is flushed a second or more after the last one.
use std::{io::Write, time::Instant};

use super::Output;
use crate::{
    attach::{
        Format,
        stat::{Row, Stats},
    },
    clock::monotonic_ns,
    render::records::{EndpointRecord, LineType, StatLine, write_line},
};

impl Output {
    /// Counts requests per endpoint and writes the counts each second.
    pub fn stat(mut self) -> Self {
        self.stat = Some(Stats::new(Instant::now()));
        self
    }

    /// Writes the interval's counts when a second has passed, or at the end.
    pub(super) fn stat_tick(&mut self, at_end: bool) {
        let now = Instant::now();
        let (Some(stat), buf) = (&mut self.stat, &mut self.buf) else {
            return;
        };
        if !at_end && !stat.due(now) {
            return;
        }
        let format = self.format;
        let _ = stat.take_interval(now, |rows, ms| match format {
            Format::Json => write_line(
                buf,
                &StatLine {
                    endpoints: records(rows),
                    interval_ms: ms,
                    ts_ns: monotonic_ns(),
                    line: LineType::Stat,
                },
            ),
            _ => {
                let n: u64 = rows.iter().map(|r| r.count).sum();
                let _ = writeln!(
                    buf,
                    "stat {:.3} s: {}",
                    ms as f64 / 1e3,
                    crate::render::count(n as usize, "request")
                );
                write_table(buf, rows);
            }
        });
    }

    /// The whole run's rows, for the summary.
    pub(super) fn stat_run(&self) -> Option<Vec<Row<'_>>> {
        self.stat.as_ref().map(|s| s.run_rows(Instant::now()))
    }
}

pub(super) fn records<'a>(rows: &[Row<'a>]) -> Vec<EndpointRecord<'a>> {
    rows.iter()
        .map(|r| EndpointRecord {
            count: r.count,
            endpoint: r.endpoint,
            errors: r.errors,
            new_connections: r.new_connections,
            p50_us: r.p50_us,
            p99_us: r.p99_us,
            rate: r.rate,
            reused_connections: r.reused_connections,
        })
        .collect()
}

/// One row per endpoint under a header, the endpoint column as wide as
/// its longest name.
pub(super) fn write_table(buf: &mut Vec<u8>, rows: &[Row]) {
    let w = rows
        .iter()
        .map(|r| r.endpoint.len())
        .max()
        .unwrap_or(0)
        .max(8);
    let _ = writeln!(
        buf,
        "  {:<w$}  {:>8}  {:>9}  {:>9}  {:>9}  {:>6}  {:>6}  {:>6}",
        "endpoint", "count", "rate/s", "p50 ms", "p99 ms", "errors", "new", "reused"
    );
    for r in rows {
        let _ = writeln!(
            buf,
            "  {:<w$}  {:>8}  {:>9.1}  {:>9.3}  {:>9.3}  {:>6}  {:>6}  {:>6}",
            r.endpoint,
            r.count,
            r.rate,
            r.p50_us as f64 / 1e3,
            r.p99_us as f64 / 1e3,
            r.errors,
            r.new_connections,
            r.reused_connections
        );
    }
}
