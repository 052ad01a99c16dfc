//! The merged timeline for people, like the Go example's output.
use std::fmt::Write as _;
use std::net::SocketAddr;

use super::{kernel_detail, ms};
use crate::probes::KernelDetail;
use crate::timeline::{
    DerivedStep, EventBody, Finding, OpenedConnection, RequestTimeline, Source, TimelineEvent,
    Trace, Verdict, handshake_text,
};

#[derive(Clone, Copy, Debug, Default)]
pub struct TextStyle {
    /// ANSI colours: only on a terminal and never with NO_COLOR.
    pub color: bool,
}

impl TextStyle {
    pub fn detect() -> Self {
        use std::io::IsTerminal;
        Self {
            color: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
        }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
}

const BAR_WIDTH: usize = 48;

pub fn text(trace: &Trace, style: TextStyle) -> String {
    let mut out = String::new();
    for t in &trace.requests {
        request(&mut out, t, style);
    }
    verdict(&mut out, trace, style);
    out
}

fn event_line(e: &TimelineEvent, start: u64) -> (String, String) {
    let offset = ms(e.ts_ns.saturating_sub(start));
    let what = match &e.body {
        EventBody::Client(h) if e.derived => {
            let what = format!("{} {}", h.name(), h.detail());
            format!("{}  (time derived)", what.trim_end())
        }
        EventBody::Client(h) => format!("{} {}", h.name(), h.detail()),
        EventBody::Kernel(k) => format!("{} {}", e.name(), kernel_detail(k)),
        EventBody::Derived(DerivedStep::WroteRequest) => {
            "WroteRequest (first send on the socket)".into()
        }
        EventBody::Derived(DerivedStep::GotFirstResponseByte) => {
            "GotFirstResponseByte (first recv with data)".into()
        }
    };
    let cookie = match (&e.body, e.cookie) {
        (EventBody::Kernel(_), Some(c)) => format!("  cookie={c}"),
        _ => String::new(),
    };
    (
        format!("{offset:>9.3} ms"),
        format!("{}{cookie}", what.trim_end()),
    )
}

fn request(out: &mut String, t: &RequestTimeline, style: TextStyle) {
    let i = &t.info;
    let _ = writeln!(
        out,
        "{}",
        style.paint(
            "1",
            &format!("request {}  {} {}", i.number, i.method, i.url)
        )
    );
    for (name, value) in &i.headers {
        let _ = writeln!(out, "  header   {name}: {value}");
    }
    for e in &t.events {
        let (offset, what) = event_line(e, i.start_ns);
        let source = match e.source {
            Source::Client => style.paint("36", "client"),
            Source::Kernel => style.paint("35", "kernel"),
        };
        let _ = writeln!(out, "{offset}  {source}  {what}");
    }
    match (&i.error, i.status) {
        (Some(err), _) => {
            let _ = writeln!(out, "  {}", style.paint("31", &format!("failed: {err}")));
        }
        (None, Some(status)) => {
            let _ = writeln!(out, "  status {status}, {} B body", i.body_bytes);
        }
        _ => {}
    }
    phases(out, t);
}

fn phases(out: &mut String, t: &RequestTimeline) {
    let named = t.phases.named();
    let parts: Vec<String> = named
        .iter()
        .filter_map(|(name, d)| d.map(|d| format!("{name} {:.3} ms", ms(d))))
        .collect();
    if parts.is_empty() {
        return;
    }
    let _ = writeln!(out, "  phases   {}", parts.join(" | "));
    // Waterfall: the five phases laid end to end, scaled to the total.
    let total: u64 = named[..5].iter().filter_map(|(_, d)| *d).sum();
    if total == 0 {
        return;
    }
    let mut bar = String::new();
    for ((_, d), ch) in named[..5].iter().zip(['d', 'c', 't', 's', 'x']) {
        if let Some(d) = d {
            let cells = ((*d as f64 / total as f64) * BAR_WIDTH as f64).round() as usize;
            bar.extend(std::iter::repeat_n(ch, cells.max(usize::from(*d > 0))));
        }
    }
    let _ = writeln!(out, "  [{bar}]  d=dns c=connect t=tls s=server x=transfer");
}

fn verdict(out: &mut String, trace: &Trace, style: TextStyle) {
    if !trace.kernel {
        let _ = writeln!(
            out,
            "kernel: not observed (--no-ebpf): no connect, send, recv or close events, no \
             WroteRequest or GotFirstResponseByte; reuse is the client's word alone"
        );
    }
    for t in &trace.requests {
        let v = &t.verdict;
        let addrs = match socket_tuple(t) {
            Some((l, r)) => format!("{l} -> {r}"),
            None => "no connection".into(),
        };
        let cookie = t
            .cookie
            .map(|c| format!("cookie {c}, "))
            .unwrap_or_default();
        // Connects in this request's window that no request rode.
        let others: Vec<&OpenedConnection> = trace
            .connections
            .iter()
            .filter(|c| c.during == t.info.number && c.unused())
            .collect();
        let line = if let Some(from) = v.reused_from {
            // Any other connect since the socket's first request: then "no
            // connect" would be false, however unrelated that connect was.
            let since = trace
                .requests
                .iter()
                .find(|r| r.info.number == from)
                .map_or(0, |r| r.info.start_ns);
            let between: Vec<String> = trace
                .connections
                .iter()
                .filter(|c| {
                    Some(c.cookie) != t.cookie && c.ts_ns >= since && c.ts_ns <= t.info.end_ns
                })
                .map(|c| c.cookie.to_string())
                .collect();
            let proof = if between.is_empty() {
                "no connect, no SYN in between".to_string()
            } else {
                format!(
                    "its socket had no new handshake since, but another connect (cookie {}) \
                     happened in between",
                    between.join(", ")
                )
            };
            format!(
                "request {} reused the connection of request {from} ({cookie}{addrs}): {proof}",
                t.info.number
            )
        } else if v.reused {
            format!(
                "request {} reused a connection ({addrs}), by the client's word; the kernel did not confirm it",
                t.info.number
            )
        } else if t.info.local_addr.is_some() || t.cookie.is_some() {
            let proof = if v.kernel_confirmed {
                "kernel saw its connect"
            } else {
                "client's word"
            };
            format!(
                "request {} opened a new connection ({cookie}{addrs}; {proof})",
                t.info.number
            )
        } else {
            format!("request {} got no connection", t.info.number)
        };
        let also: String = others.iter().map(|c| unused_clause(c)).collect();
        let _ = writeln!(out, "verdict: {line}{also}");
    }
    for f in &trace.findings {
        let _ = writeln!(out, "{}", style.paint("33", &finding_line(f)));
    }
    let s = &trace.summary;
    let word = match s.verdict {
        Verdict::Reused => style.paint("32", "reused"),
        Verdict::New => "new".to_string(),
        Verdict::Mixed => style.paint("33", "mixed"),
    };
    let lost = if s.lost_events > 0 {
        style.paint(
            "31",
            &format!(
                "{} lost events (ring buffer full: the timeline is incomplete)",
                s.lost_events
            ),
        )
    } else {
        "0 lost events".to_string()
    };
    let opened = match (s.connections_opened, s.connections_unused) {
        (Some(opened), Some(unused)) => {
            format!(", {} opened ({unused} unused)", count(opened, "connection"))
        }
        _ => String::new(),
    };
    let found: usize = s.findings.iter().map(|(_, n)| n).sum();
    let findings = if found == 0 {
        String::new()
    } else {
        let kinds: Vec<String> = s.findings.iter().map(|(k, n)| format!("{k} {n}")).collect();
        format!(", {} ({})", count(found, "finding"), kinds.join(", "))
    };
    let _ = writeln!(
        out,
        "summary: {}, {}, {} reused, {} failed, {lost}{opened}{findings}: {word}",
        count(s.requests, "request"),
        count(s.connections, "connection"),
        s.reused,
        s.failed
    );
}

/// "; a new connection (cookie 62, ...) was also opened during its GetConn
/// and never used".
fn unused_clause(c: &OpenedConnection) -> String {
    let local = c.local.map(|l| format!("{l} -> ")).unwrap_or_default();
    let what = if c.ret == 0 {
        "a new connection"
    } else {
        "a connect"
    };
    let ended = if c.ret == 0 {
        "never used".to_string()
    } else {
        handshake_text(c.ret)
    };
    format!(
        "; {what} (cookie {}, {local}{}) was also opened {} and {ended}",
        c.cookie,
        c.remote,
        c.when.own()
    )
}

/// `finding: KIND: request N, cookie C: what the kernel saw; hint: ...`.
pub fn finding_line(f: &Finding) -> String {
    let mut at = Vec::new();
    if let Some(n) = f.request {
        at.push(format!("request {n}"));
    }
    if let Some(c) = f.cookie {
        at.push(format!("cookie {c}"));
    }
    format!(
        "finding: {}: {}: {}; hint: {}",
        f.kind.as_str(),
        at.join(", "),
        f.text,
        f.hint
    )
}

/// "1 request", "2 requests".
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The request's socket: as the client saw it, or as the kernel did for a
/// request that failed before the client learnt its addresses.
fn socket_tuple(t: &RequestTimeline) -> Option<(SocketAddr, SocketAddr)> {
    if let (Some(l), Some(r)) = (t.info.local_addr, t.info.remote_addr) {
        return Some((l, r));
    }
    t.events.iter().find_map(|e| match &e.body {
        EventBody::Kernel(KernelDetail::State { local, remote, .. }) if e.cookie == t.cookie => {
            Some((*local, *remote))
        }
        _ => None,
    })
}
