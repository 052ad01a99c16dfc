//! The bench's one table: printed, and written as Markdown and JSON.
use std::{fmt::Write as _, fs, path::Path};

use anyhow::Result;
use serde_json::{Value, json};

/// Whether a measured value meets the target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Holds,
    Misses,
    /// No target, or the workload could not run.
    Info,
}

impl Verdict {
    pub fn of(ok: bool) -> Self {
        if ok { Self::Holds } else { Self::Misses }
    }

    fn word(self) -> &'static str {
        match self {
            Self::Holds => "holds",
            Self::Misses => "MISSES",
            Self::Info => "",
        }
    }
}

pub struct Row {
    pub workload: &'static str,
    pub measure: String,
    pub result: String,
    pub target: String,
    pub verdict: Verdict,
}

#[derive(Default)]
pub struct Report {
    pub rows: Vec<Row>,
    /// Raw numbers per workload, for bench.json.
    pub raw: serde_json::Map<String, Value>,
}

impl Report {
    pub fn row(
        &mut self,
        workload: &'static str,
        measure: impl Into<String>,
        result: impl Into<String>,
        target: impl Into<String>,
        verdict: Verdict,
    ) {
        self.rows.push(Row {
            workload,
            measure: measure.into(),
            result: result.into(),
            target: target.into(),
            verdict,
        });
    }

    /// A workload that could not run: one row saying why, and on we go.
    pub fn failed(&mut self, workload: &'static str, err: &anyhow::Error) {
        eprintln!("bench: workload {workload} failed: {err:#}");
        self.row(workload, "failed", format!("{err:#}"), "", Verdict::Info);
    }

    pub fn raw(&mut self, key: &str, value: Value) {
        self.raw.insert(key.to_string(), value);
    }

    fn cells(&self) -> Vec<[String; 5]> {
        let mut cells = vec![[
            "#".to_string(),
            "measure".into(),
            "result".into(),
            "target".into(),
            "".into(),
        ]];
        for r in &self.rows {
            cells.push([
                r.workload.to_string(),
                r.measure.clone(),
                r.result.clone(),
                r.target.clone(),
                r.verdict.word().to_string(),
            ]);
        }
        cells
    }

    pub fn text(&self) -> String {
        let cells = self.cells();
        let mut widths = [0usize; 5];
        for row in &cells {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        let mut out = String::new();
        for (i, row) in cells.iter().enumerate() {
            let line: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            let _ = writeln!(out, "{}", line.join("  ").trim_end());
            if i == 0 {
                let _ = writeln!(out, "{}", "-".repeat(widths.iter().sum::<usize>() + 8));
            }
        }
        out
    }

    pub fn markdown(&self, header: &str) -> String {
        let mut out = format!("{header}\n\n");
        for (i, row) in self.cells().iter().enumerate() {
            let cells: Vec<String> = row.iter().map(|c| c.replace('|', "\\|")).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
            if i == 0 {
                let _ = writeln!(out, "|---|---|---|---|---|");
            }
        }
        out
    }

    pub fn json(&self, header: Value) -> Value {
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|r| {
                json!({
                    "workload": r.workload, "measure": r.measure, "result": r.result,
                    "target": r.target,
                    "holds": match r.verdict {
                        Verdict::Holds => Some(true),
                        Verdict::Misses => Some(false),
                        Verdict::Info => None,
                    },
                })
            })
            .collect();
        json!({ "run": header, "rows": rows, "raw": self.raw })
    }

    pub fn write(&self, dir: &Path, header_md: &str, header: Value) -> Result<()> {
        fs::write(dir.join("bench.md"), self.markdown(header_md))?;
        let json = serde_json::to_string_pretty(&self.json(header))?;
        fs::write(dir.join("bench.json"), json + "\n")?;
        Ok(())
    }
}

/// Median of `v` (sorted in place); 0 for an empty slice.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}
