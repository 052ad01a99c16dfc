//! Workloads 1 and 2 as table rows: ratios of medians over the rounds, and
//! the evidence for them (tracer CPU, eBPF time per request).
use serde_json::{Value, json};

use super::{
    Plan,
    report::{Report, Verdict, median},
    server_load::{Load, Mode, Round},
};

pub fn summarise(plan: &Plan, results: &[Round], report: &mut Report) {
    let pick = |m: Mode, f: fn(&Load) -> f64| -> f64 {
        let mut v: Vec<f64> = results
            .iter()
            .filter(|r| r.mode == m)
            .map(|r| f(&r.load))
            .collect();
        median(&mut v)
    };
    let rps = |m| pick(m, |l| l.rps);
    let (base, server, idle) = (rps(Mode::Untraced), rps(Mode::Server), rps(Mode::Idle));
    let ratio = |x: f64, y: f64| if y > 0.0 { x / y } else { 0.0 };
    let p50 = |m| pick(m, |l| l.p50_us);
    let p99 = |m| pick(m, |l| l.p99_us);
    let cpu = |m: Mode| {
        let mut v: Vec<f64> = results
            .iter()
            .filter(|r| r.mode == m)
            .filter_map(|r| r.tracer_cpu_s)
            .collect();
        median(&mut v) / plan.load_secs
    };

    let r1 = ratio(server, base);
    report.row(
        "1",
        format!(
            "busy server, attach on it: req/s traced / untraced ({} conns, {} x {} s rounds)",
            plan.conns, plan.rounds, plan.load_secs
        ),
        format!("{r1:.3} ({server:.0} / {base:.0})"),
        ">= 0.97",
        Verdict::of(r1 >= 0.97),
    );
    report.row(
        "1",
        "  latency p50 / p99 traced / untraced",
        format!(
            "{:.2} / {:.2} ({:.1} / {:.1} us traced)",
            ratio(p50(Mode::Server), p50(Mode::Untraced)),
            ratio(p99(Mode::Server), p99(Mode::Untraced)),
            p50(Mode::Server),
            p99(Mode::Server)
        ),
        "",
        Verdict::Info,
    );
    report.row(
        "1",
        "  why: tracer CPU (share of one core) / requests reported per s",
        format!(
            "{:.0}% / {:.0}",
            cpu(Mode::Server) * 100.0,
            events_per_s(results, Mode::Server, plan.load_secs)
        ),
        "",
        Verdict::Info,
    );
    let r2 = ratio(idle, base);
    report.row(
        "2",
        "busy server, attach on an idle process: req/s ratio",
        format!("{r2:.3} ({idle:.0} / {base:.0})"),
        ">= 0.99",
        Verdict::of(r2 >= 0.99),
    );
    let floor = rps(Mode::Floor);
    let r_floor = ratio(floor, base);
    report.row(
        "2",
        "  why: floor, the same hooks with send/recv programs that return at once",
        format!("{r_floor:.3} ({floor:.0} / {base:.0}): the kernel's tracepoint dispatch alone"),
        "",
        Verdict::Info,
    );
    let set = rps(Mode::IdleSet);
    let r_set = ratio(set, base);
    report.row(
        "2",
        "  attach on two idle processes: req/s ratio (set lookup, not the one-slot path)",
        format!("{r_set:.3} ({set:.0} / {base:.0}); one process: {r2:.3}"),
        "",
        Verdict::Info,
    );
    let rounds: Vec<Value> = results
        .iter()
        .map(|r| {
            let l = &r.load;
            json!({"mode": format!("{:?}", r.mode), "requests": l.requests, "rps": l.rps,
                   "p50_us": l.p50_us, "p99_us": l.p99_us, "tracer_requests": r.events,
                   "tracer_cpu_s": r.tracer_cpu_s})
        })
        .collect();
    report.raw(
        "server_overhead",
        json!({
            "conns": plan.conns, "load_secs": plan.load_secs, "rounds": rounds,
            "median_rps": {"untraced": base, "attach_server": server, "attach_idle": idle,
                           "floor": floor, "attach_idle_set": set},
            "ratio_attach_server": r1, "ratio_attach_idle": r2, "ratio_floor": r_floor,
            "ratio_attach_idle_set": r_set,
        }),
    );
}

fn events_per_s(results: &[Round], m: Mode, secs: f64) -> f64 {
    let mut v: Vec<f64> = results
        .iter()
        .filter(|r| r.mode == m)
        .filter_map(|r| r.events)
        .map(|e| e as f64 / secs)
        .collect();
    median(&mut v)
}

/// Workload 2's why: eBPF runs and time per request of untraced processes.
pub fn untraced_cost(r: &Round, report: &mut Report) {
    let requests = r.load.requests.max(1) as f64;
    let runs: u64 = r.stats.iter().map(|p| p.run_cnt).sum();
    let ns: u64 = r.stats.iter().map(|p| p.run_time_ns).sum();
    let top: Vec<String> = r
        .stats
        .iter()
        .take(4)
        .map(|p| {
            let per = p.run_time_ns as f64 / p.run_cnt.max(1) as f64;
            format!("{} {per:.0} ns", p.hook)
        })
        .collect();
    report.row(
        "2",
        "  why: eBPF runs / ns per request, untraced (extra round, bpf_stats on)",
        format!(
            "{:.1} runs, {:.0} ns ({})",
            runs as f64 / requests,
            ns as f64 / requests,
            top.join(", ")
        ),
        "",
        Verdict::Info,
    );
}
