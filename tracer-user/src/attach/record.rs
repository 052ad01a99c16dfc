//! The recording loop that `attach` and `run` share: stream kernel events
//! through the [`Tracker`] into the [`Output`] until the traced processes
//! are gone, the duration ends, or SIGINT/SIGTERM; then the summary.
use std::{future::Future, time::Duration};

use tokio::signal::unix::{Signal, SignalKind, signal};

use super::{
    conns::Tracker,
    output::Output,
    segments::{SegmentMap, Segments},
};
use crate::{
    exit,
    probes::{EventStream, KernelDetail, KernelEvent, Probes},
};

/// Why tracing stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    Exited,
    Duration,
    Interrupted,
    Terminated,
    RingFailed,
    /// The rings or the signal handlers could not be set up.
    Setup,
}

impl End {
    /// The tracer's own exit code for this end (run adds its command's).
    pub fn code(self) -> i32 {
        match self {
            End::Exited | End::Duration => exit::SUCCESS,
            End::Interrupted => exit::SIGINT,
            End::Terminated => exit::SIGTERM,
            End::RingFailed => exit::FAILED,
            End::Setup => exit::NO_SUPPORT,
        }
    }
}

/// What was recorded, for `--expect`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Totals {
    pub requests: usize,
    pub reused: usize,
}

/// SIGINT and SIGTERM, listened to from the first thing attach and run do:
/// a Ctrl-C while the probes load (symbol scans, uprobes) then ends the
/// run as one during the recording does (exit 130, programs detached,
/// summary printed), instead of killing the tracer half set up.
pub struct Interrupts {
    sigint: Signal,
    sigterm: Signal,
}

impl Interrupts {
    /// None when tokio cannot install the handlers (said by the caller).
    pub fn listen() -> Option<Self> {
        Some(Self {
            sigint: signal(SignalKind::interrupt()).ok()?,
            sigterm: signal(SignalKind::terminate()).ok()?,
        })
    }
}

pub struct Recording<'a> {
    pub probes: &'a mut Probes,
    pub out: Output,
    pub tracker: Tracker,
    /// Children are followed: the end waits for them too, and the
    /// processes a fork took in are named as they come.
    pub follow: bool,
    pub duration: Option<Duration>,
    /// The kernel sends segments, not every I/O (no `--events`).
    pub segments: Option<Segments>,
}

/// Records until `exited` resolves (with the words that say who exited)
/// and, when following, every process it started has exited too.
/// Signals in `interrupts` that came before the recording began are seen
/// at once.
pub async fn record(
    mut r: Recording<'_>,
    interrupts: Interrupts,
    exited: impl Future<Output = String>,
) -> (End, Totals) {
    let mut stream = match r.probes.events() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tracer: {e}");
            return (End::Setup, Totals::default());
        }
    };
    let Interrupts {
        mut sigint,
        mut sigterm,
    } = interrupts;
    let duration = r.duration;
    let sleep = async move {
        match duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep);
    tokio::pin!(exited);
    let mut who_exited: Option<String> = None;
    let mut waiting_noted = false;
    let (end, ended) = loop {
        let end = tokio::select! {
            res = stream.ready() => res.err().map(|_| End::RingFailed),
            who = &mut exited, if who_exited.is_none() => {
                who_exited = Some(who);
                None
            }
            () = &mut sleep => Some(End::Duration),
            _ = sigint.recv() => Some(End::Interrupted),
            _ = sigterm.recv() => Some(End::Terminated),
        };
        feed(&mut stream, false, &mut r);
        if r.follow {
            adopt(r.probes, &mut r.out);
        }
        if let Some(end) = end {
            break (end, ended_words(end, who_exited.as_deref()));
        }
        if let Some(who) = &who_exited {
            let left = if r.follow { still_traced(r.probes) } else { 0 };
            if left == 0 {
                break (End::Exited, who.clone());
            }
            if !waiting_noted {
                waiting_noted = true;
                r.out.note(&format!(
                    "{who}; still tracing {left} {} it started (Ctrl-C to stop)",
                    if left == 1 { "process" } else { "processes" }
                ));
            }
        }
    };
    if end == End::Exited {
        // Sockets are freed while the process dies: collect those events too.
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            loop {
                let _ = stream.ready().await;
                feed(&mut stream, false, &mut r);
            }
        })
        .await;
    }
    feed(&mut stream, true, &mut r);
    if r.follow {
        adopt(r.probes, &mut r.out);
    }
    finish(&mut r, &stream, &ended).await;
    let totals = Totals {
        requests: r.tracker.request_count,
        reused: r.tracker.reused_count,
    };
    (end, totals)
}

fn ended_words(end: End, who: Option<&str>) -> String {
    match end {
        End::Exited => who.unwrap_or("exited").to_string(),
        End::Duration => "duration ended".to_string(),
        End::Interrupted => "interrupted (SIGINT)".to_string(),
        End::Terminated => "terminated (SIGTERM)".to_string(),
        End::RingFailed => "reading the ring buffer failed".to_string(),
        End::Setup => "setting up failed".to_string(),
    }
}

/// How many traced processes still run. A process that exited before
/// userspace put it in the set (found in /proc a moment too late) left no
/// exit for the kernel to see: it is taken out here, or the end would wait
/// for it forever.
fn still_traced(probes: &mut Probes) -> usize {
    let mut left = 0;
    for pid in probes.traced_now() {
        if super::target::alive(pid) {
            left += 1;
        } else {
            probes.untrace(pid);
        }
    }
    left
}

/// Names the processes the fork program took in since the last look.
fn adopt(probes: &mut Probes, out: &mut Output) {
    for (child, parent) in probes.take_followed() {
        if out.procs.forked(child, parent) {
            out.note(&format!("process {child} started by {parent}: traced"));
        }
    }
    for (pid, comm) in probes.take_exited() {
        out.procs.exited(pid, comm);
    }
}

/// Prints what is still open, the notes about losses, and the summary.
async fn finish(r: &mut Recording<'_>, stream: &EventStream, ended: &str) {
    let (tracker, out) = (&mut r.tracker, &mut r.out);
    let open = tracker.finish_all();
    tracker.findings.finish();
    let found = tracker.findings.take();
    out.place_findings(&found, crate::clock::monotonic_ns(), &open, tracker);
    for req in open {
        if let Some(q) = tracker.request(req) {
            out.request(q, tracker);
        }
        tracker.forget(req);
    }
    for f in found {
        out.finding(&f);
    }
    let mut lost_by_kind = r.probes.lost_by_kind().unwrap_or_default();
    if stream.undecodable > 0 {
        lost_by_kind.push(("undecodable", stream.undecodable));
    }
    if let Ok(heads) = r.probes.lost_heads()
        && heads > 0
    {
        out.note(&format!(
            "note: {heads} payload heads lost (ring buffer full): some requests may be missing"
        ));
    }
    if r.follow {
        let unfollowed = r.probes.lost_follows();
        if unfollowed > 0 {
            out.note(&format!(
                "note: {unfollowed} child processes not followed: the kernel's set of traced processes was full"
            ));
        }
        let nested = r.probes.nested_follows();
        if nested > 0 {
            out.note(&format!(
                "note: {nested} child processes not followed: they started in a PID namespace nested inside tracer's, which it cannot see from its own; run tracer in the host's PID namespace (a container with --pid=host) to follow them"
            ));
        }
    }
    if stream.late() > 0 {
        out.note(&format!(
            "note: {} events reached the reader after newer ones and are printed out of time order",
            stream.late()
        ));
    }
    out.finish_export().await;
    out.summary(tracker, &lost_by_kind, ended);
    out.note(ended);
}

/// Runs the events read so far through the tracker and prints them; `all`
/// at the end of the run, else those the stream can order already. With
/// segments, a request that waits for the rest of its answer has it read
/// from the kernel's map (every one at the end).
fn feed(stream: &mut EventStream, all: bool, r: &mut Recording<'_>) {
    let (tracker, out, probes) = (&mut r.tracker, &mut r.out, &mut *r.probes);
    let mut handle = |ev: &KernelEvent| handle(ev, tracker, out);
    match &mut r.segments {
        Some(seg) => {
            let mut each = |ev: &KernelEvent| seg.feed(ev, probes, &mut handle);
            if all {
                stream.for_each_remaining(&mut each);
            } else {
                stream.for_each_ready(&mut each);
            }
            poll(seg, probes, all, &mut r.tracker, &mut r.out);
        }
        None if all => stream.for_each_remaining(handle),
        None => stream.for_each_ready(handle),
    }
    r.out.flush();
}

/// Reads from the kernel the segments that requests wait on (all of them
/// at the end), through the tracker.
fn poll(
    seg: &mut Segments,
    probes: &impl SegmentMap,
    all: bool,
    t: &mut Tracker,
    out: &mut Output,
) {
    let now = crate::clock::monotonic_ns();
    if !all && !seg.due(now) {
        return;
    }
    // A lookup per stale segment, not a scan of every connection.
    let due = seg.stale(now, all, |cookie| t.waits(cookie));
    seg.look_at(&due, probes, now, |ev| handle(ev, t, out));
}

/// One event through the tracker into the output, with the requests it
/// ended and the findings it made. The kernel's filter decides what is
/// traced: every event here is ours.
fn handle(ev: &KernelEvent, tracker: &mut Tracker, out: &mut Output) {
    out.procs.saw(ev.tgid);
    let fx = tracker.handle(ev);
    out.export(ev, &fx, tracker);
    // A connection's close line comes after every request line of it.
    let closing = fx.opened == Some(false);
    if !closing {
        out.event(ev, &fx, tracker);
    }
    // Findings are taken before the requests are written, so that a span
    // carries those of its request; they are printed after, as always.
    let found = tracker.findings.take();
    if !found.is_empty() {
        out.place_findings(&found, ev.ts_ns, &fx.finished, tracker);
    }
    for &r in &fx.finished {
        if let Some(req) = tracker.request(r) {
            out.request(req, tracker);
        }
        tracker.forget(r);
    }
    if closing {
        out.event(ev, &fx, tracker);
    }
    for f in found {
        out.finding(&f);
    }
    // A freed socket's last event: its connection is printed and done.
    if matches!(ev.what, KernelDetail::Destroy) {
        tracker.forget_connection(ev.cookie);
    }
}
