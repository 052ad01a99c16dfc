//! Workload 10: what `--otlp` costs. Start-up of `tracer trace URL -n 1`
//! with and without `--otlp` to a local sink (runs alternate), and
//! attach's CPU per request at workload 9's paced rate with and without
//! it (rounds alternate). The sink is a loopback HTTP server that reads
//! each POST whole and answers 200 with an empty ExportTraceServiceResponse:
//! what a collector that keeps up costs the tracer, not the collector's
//! own work.
use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use anyhow::{Context as _, Result};
use serde_json::json;

use super::{
    Plan,
    paced::{self, RATE},
    report::{Report, Verdict, median},
    startup,
    tracer::{AttachHow, Bins},
};

/// POSTs and bytes the sink took.
#[derive(Default)]
struct Took {
    posts: AtomicU64,
    bytes: AtomicU64,
}

/// Starts the sink on a free loopback port; it lives as long as the bench.
fn sink() -> Result<(u16, Arc<Took>)> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding the OTLP sink")?;
    let port = listener.local_addr()?.port();
    let took = Arc::new(Took::default());
    let counts = Arc::clone(&took);
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let counts = Arc::clone(&counts);
            std::thread::spawn(move || serve(conn, &counts));
        }
    });
    Ok((port, took))
}

/// HTTP/1.1 keep-alive: each request's body read whole, then a 200.
fn serve(conn: TcpStream, took: &Took) {
    let Ok(mut write) = conn.try_clone() else {
        return;
    };
    let mut read = BufReader::with_capacity(1 << 16, conn);
    let mut line = String::new();
    let mut body = vec![0u8; 1 << 16];
    loop {
        let mut length = 0usize;
        loop {
            line.clear();
            match read.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut left = length;
        while left > 0 {
            let n = left.min(body.len());
            if read.read_exact(&mut body[..n]).is_err() {
                return;
            }
            left -= n;
        }
        took.posts.fetch_add(1, Ordering::Relaxed);
        took.bytes.fetch_add(length as u64, Ordering::Relaxed);
        let reply =
            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if write.write_all(reply).is_err() {
            return;
        }
    }
}

pub fn run(plan: &Plan, bins: &Bins, report: &mut Report) -> Result<()> {
    let (port, took) = sink()?;
    let endpoint = format!("http://127.0.0.1:{port}");
    startup_cost(plan, bins, &endpoint, report)?;
    let posts_before = took.posts.load(Ordering::Relaxed);
    attach_cost(plan, bins, port, report)?;
    let posts = took.posts.load(Ordering::Relaxed) - posts_before;
    let mb = took.bytes.load(Ordering::Relaxed) as f64 / 1e6;
    report.raw("otlp_sink", json!({"posts_attach": posts, "mb_total": mb}));
    Ok(())
}

fn startup_cost(plan: &Plan, bins: &Bins, endpoint: &str, report: &mut Report) -> Result<()> {
    let (_server, addr) = bins.start_server(120.0)?;
    let url = format!("http://{addr}/");
    let with = ["--otlp", endpoint];
    startup::once(bins, &url, &with)?; // warm both paths
    startup::once(bins, &url, &[])?;
    let (mut plain, mut otlp) = (Vec::new(), Vec::new());
    for i in 0..plan.startup_runs {
        // Alternate, and swap which goes first each time: drift cancels.
        let order: [&[&str]; 2] = if i % 2 == 0 {
            [&[], &with]
        } else {
            [&with, &[]]
        };
        for extra in order {
            let (wall, _) = startup::once(bins, &url, extra)?;
            if extra.is_empty() {
                &mut plain
            } else {
                &mut otlp
            }
            .push(wall);
        }
    }
    let (raw_plain, raw_otlp) = (plain.clone(), otlp.clone());
    let (p, o) = (median(&mut plain), median(&mut otlp));
    report.row(
        "10",
        format!(
            "tracer trace URL -n 1 wall time, without / with --otlp to a loopback sink (median of {} each, alternating)",
            plan.startup_runs
        ),
        format!("{p:.1} / {o:.1} ms ({:+.1} ms)", o - p),
        "",
        Verdict::Info,
    );
    report.raw(
        "otlp_startup",
        json!({"wall_ms_without": raw_plain, "wall_ms_with": raw_otlp}),
    );
    Ok(())
}

fn attach_cost(plan: &Plan, bins: &Bins, port: u16, report: &mut Report) -> Result<()> {
    let secs = plan.paced_secs;
    let rounds = if plan.quick { 1 } else { 2 };
    let (mut plain, mut otlp) = (Vec::new(), Vec::new());
    let mut raw = Vec::new();
    let mut dropped = 0;
    let mut exported = 0;
    // Kernel events lost (ring full), without and with --otlp.
    let mut lost = [0u64; 2];
    for i in 0..rounds {
        let order = if i % 2 == 0 {
            [None, Some(port)]
        } else {
            [Some(port), None]
        };
        for otlp_port in order {
            let how = AttachHow {
                otlp: otlp_port,
                ..AttachHow::default()
            };
            let p = paced::measure(bins, plan.conns, secs, how)?;
            let seen = p.summary["requests"].as_u64().unwrap_or(0).max(1);
            // CPU microseconds per request the tracer reported.
            let us = p.cpu_s * 1e6 / seen as f64;
            eprintln!(
                "bench: paced, otlp {}: {:.0} req/s, tracer CPU {:.1}%, {us:.2} us/request",
                otlp_port.is_some(),
                p.rps,
                p.cpu()
            );
            raw.push(
                json!({"otlp": otlp_port.is_some(), "rps": p.rps, "cpu_s": p.cpu_s,
                            "requests_seen": seen, "summary": p.summary}),
            );
            lost[usize::from(otlp_port.is_some())] +=
                p.summary["lost_events"].as_u64().unwrap_or(0);
            if otlp_port.is_some() {
                exported += p.summary["otlp_exported"].as_u64().unwrap_or(0);
                dropped += p.summary["otlp_dropped"].as_u64().unwrap_or(0);
                otlp.push((us, p.cpu(), p.rps));
            } else {
                plain.push((us, p.cpu(), p.rps));
            }
        }
    }
    let med = |v: &[(f64, f64, f64)], k: usize| {
        let mut x: Vec<f64> = v.iter().map(|t| [t.0, t.1, t.2][k]).collect();
        median(&mut x)
    };
    report.row(
        "10",
        format!(
            "attach at {RATE:.0} req/s asked ({secs} s, {rounds} round(s) each): tracer CPU per request, without / with --otlp"
        ),
        format!(
            "{:.2} / {:.2} us ({:.1}% / {:.1}% of a core at {:.0} / {:.0} req/s)",
            med(&plain, 0),
            med(&otlp, 0),
            med(&plain, 1),
            med(&otlp, 1),
            med(&plain, 2),
            med(&otlp, 2)
        ),
        "",
        Verdict::Info,
    );
    report.row(
        "10",
        "  spans exported / dropped with --otlp; kernel events lost without / with (all rounds)",
        format!("{exported} / {dropped}; {} / {}", lost[0], lost[1]),
        "",
        Verdict::Info,
    );
    report.raw("otlp_attach", json!(raw));
    Ok(())
}
