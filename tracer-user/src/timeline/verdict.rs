//! Was the connection reused? Decided from the kernel's evidence: the same
//! socket cookie as an earlier request, and no connect or SYN for it since.
use std::collections::HashSet;

use super::{
    EventBody, Finding, OpenedConnection, RequestTimeline, Trace, connections, findings, phases,
};
use crate::probes::KernelDetail;
use tracer_ebpf::tcp_state;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReuseVerdict {
    /// The final answer: the kernel's when it confirmed, else the client's.
    pub reused: bool,
    /// The kernel saw the socket this request rode (by cookie).
    pub kernel_confirmed: bool,
    /// Which earlier request opened the socket this one reused.
    pub reused_from: Option<u32>,
    /// Set when client and kernel disagree: that is a finding.
    pub disagreement: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Reused,
    New,
    Mixed,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Reused => "reused",
            Verdict::New => "new",
            Verdict::Mixed => "mixed",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Summary {
    pub requests: usize,
    /// Connections that requests rode.
    pub connections: usize,
    /// Every TCP connect the kernel saw from the process; None without it.
    pub connections_opened: Option<usize>,
    /// Those that no request rode.
    pub connections_unused: Option<usize>,
    /// Findings by kind, in the kinds' order.
    pub findings: Vec<(&'static str, usize)>,
    pub reused: usize,
    pub failed: usize,
    pub lost_events: u64,
    pub verdict: Verdict,
}

/// The kernel saw socket `cookie` connect (or send its SYN) in `t`.
pub(crate) fn opened_socket(t: &RequestTimeline, cookie: u64) -> bool {
    t.events.iter().any(|e| {
        e.cookie == Some(cookie)
            && match &e.body {
                EventBody::Kernel(KernelDetail::Connect { .. }) => true,
                EventBody::Kernel(KernelDetail::State { old, new, .. }) => {
                    *old == tcp_state::CLOSE && *new == tcp_state::SYN_SENT
                }
                _ => false,
            }
    })
}

pub(super) fn finish(
    mut timelines: Vec<RequestTimeline>,
    kernel_on: bool,
    lost_events: u64,
) -> Trace {
    let mut seen: Vec<(u64, u32)> = Vec::new();
    for t in &mut timelines {
        let client = t.info.client_reused;
        let mut v = ReuseVerdict::default();
        if let Some(cookie) = t.cookie.filter(|_| kernel_on) {
            // DESIGN: confirmed when the kernel saw the socket. Its states
            // and connect are enough: before Linux 6.3 there are no send/recv
            // events, and the reuse proof (no connect, no SYN) still holds.
            v.kernel_confirmed = true;
            let earlier = seen.iter().find(|(c, _)| *c == cookie).map(|(_, n)| *n);
            let kernel_reused = earlier.is_some() && !opened_socket(t, cookie);
            v.reused = kernel_reused;
            v.reused_from = earlier.filter(|_| kernel_reused);
            if let Some(c) = client
                && c != kernel_reused
            {
                v.disagreement = Some(format!(
                    "client says {}, kernel says {} (cookie {cookie})",
                    if c { "reused" } else { "new" },
                    if kernel_reused { "reused" } else { "new" },
                ));
            }
            seen.push((cookie, t.info.number));
        } else {
            v.reused = client.unwrap_or(false);
        }
        t.verdict = v;
        t.phases = phases::measure(t);
    }
    let opened = if kernel_on {
        connections::opened(&timelines)
    } else {
        Vec::new()
    };
    let found = if kernel_on {
        findings::find(&timelines, &opened)
    } else {
        Vec::new()
    };
    let summary = summarize(&timelines, kernel_on, lost_events, &opened, &found);
    Trace {
        requests: timelines,
        summary,
        connections: opened,
        findings: found,
        kernel: kernel_on,
    }
}

fn summarize(
    timelines: &[RequestTimeline],
    kernel_on: bool,
    lost_events: u64,
    opened: &[OpenedConnection],
    found: &[Finding],
) -> Summary {
    let connections: HashSet<String> = timelines
        .iter()
        .filter_map(|t| match (kernel_on, t.cookie, t.info.local_addr) {
            (true, Some(c), _) => Some(format!("cookie {c}")),
            (_, _, Some(local)) => Some(local.to_string()),
            _ => None,
        })
        .collect();
    let reused = timelines.iter().filter(|t| t.verdict.reused).count();
    let failed = timelines.iter().filter(|t| t.info.error.is_some()).count();
    let later = timelines.len().saturating_sub(1);
    let verdict = if reused == 0 {
        Verdict::New
    } else if reused == later && !timelines.first().is_some_and(|t| t.verdict.reused) {
        Verdict::Reused
    } else {
        Verdict::Mixed
    };
    let mut kinds: Vec<_> = found.iter().map(|f| f.kind).collect();
    kinds.sort();
    let mut by_kind: Vec<(&'static str, usize)> = Vec::new();
    for k in kinds {
        match by_kind.last_mut() {
            Some((name, n)) if *name == k.as_str() => *n += 1,
            _ => by_kind.push((k.as_str(), 1)),
        }
    }
    Summary {
        requests: timelines.len(),
        connections: connections.len(),
        connections_opened: kernel_on.then_some(opened.len()),
        connections_unused: kernel_on.then(|| opened.iter().filter(|c| c.unused()).count()),
        findings: by_kind,
        reused,
        failed,
        lost_events,
        verdict,
    }
}
