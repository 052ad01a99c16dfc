//! `tracer attach --pid PID`: trace a running process's connections and
//! reconstruct its plaintext HTTP/1.x requests from the kernel's view alone.
//!
//! Stages: validate the PID, load the probes with payload heads on for that
//! tgid only, seed the connections it already has from /proc, then stream
//! kernel events through [`conns::Tracker`] into [`output::Output`] until
//! the target exits, the duration ends, or SIGINT/SIGTERM.
mod conns;
mod fields;
mod findings;
mod http;
mod model;
mod output;
mod seed;
mod target;

use std::time::Duration;

use tokio::signal::unix::{SignalKind, signal};
use tracer_ebpf::{tcp_state, tgid_flags};

pub use crate::render::Format;
use crate::{
    clock::monotonic_ns,
    exit, preflight,
    probes::{EventStream, KernelEvent, ProbeOptions, Probes},
};
use conns::Tracker;
use output::Output;
use target::{Target, TargetError};

#[derive(clap::Args, Debug, Clone)]
pub struct AttachArgs {
    /// Process to trace (every thread of it).
    #[arg(long)]
    pub pid: i64,
    /// Stop after this many seconds (default: until the process exits or Ctrl-C).
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Bytes of all ring buffers together (testing the lost-event path).
    #[arg(long, hide = true)]
    pub ring_bytes: Option<u32>,
}

/// Why tracing stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    Exited,
    Duration,
    Interrupted,
    Terminated,
    RingFailed,
}

/// Runs `tracer attach`; returns the process exit code.
pub async fn run(args: &AttachArgs) -> i32 {
    let target = match Target::find(args.pid) {
        Ok(t) => t,
        Err(e @ TargetError::Itself(_)) => {
            eprintln!("tracer: {e}; give the pid of another process");
            return exit::USAGE;
        }
        Err(e) => {
            eprintln!("tracer: {e}");
            return exit::FAILED;
        }
    };
    if let Some(d) = args.duration
        && !(d.is_finite() && d > 0.0)
    {
        eprintln!("tracer: --duration must be a positive number of seconds");
        return exit::USAGE;
    }
    let report = preflight::run();
    if !report.can_trace() {
        eprintln!("tracer: cannot trace here: {}", report.missing());
        return exit::NO_SUPPORT;
    }
    if let Err(msg) = preflight::can_inspect(target.pid) {
        eprintln!("tracer: {msg}");
        return exit::NO_SUPPORT;
    }
    let opts = ProbeOptions {
        ring_bytes: args.ring_bytes,
        skip: report.skip_programs.clone(),
        sock_offsets: report.sock_offsets,
    };
    let mut probes = match Probes::load(&opts) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("tracer: {e}");
            return exit::NO_SUPPORT;
        }
    };
    let mut out = Output::new(args.format, target.pid, monotonic_ns());
    // Requests and bytes come from the send/recv hooks; without them (Linux
    // before 6.3) the summary says they are unknown instead of counting 0.
    out.io_unknown = probes
        .skipped
        .iter()
        .any(|(p, _)| *p == "tracer_send" || *p == "tracer_recv");
    trace(args, &target, &mut probes, out).await
}

async fn trace(args: &AttachArgs, target: &Target, probes: &mut Probes, mut out: Output) -> i32 {
    let mut stream = match probes.events() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tracer: {e}");
            return exit::NO_SUPPORT;
        }
    };
    let (Ok(mut sigint), Ok(mut sigterm)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        eprintln!("tracer: cannot install signal handlers");
        return exit::FAILED;
    };
    let dns = match target.libc() {
        Some(libc) => match probes.attach_getaddrinfo(&libc, target.pid) {
            Ok(()) => format!("dns: getaddrinfo probed in {}", libc.display()),
            Err(e) => format!("dns: no getaddrinfo probe ({e}); DNS shows as UDP port 53 traffic"),
        },
        // Loading takes seconds on a slow machine (5 s in a qemu guest): a
        // short-lived target may be gone by now, and a zombie maps nothing.
        None if target.gone() => format!(
            "note: process {} exited before the probes were attached: nothing of it was traced",
            target.pid
        ),
        None => "dns: the process maps no dynamic libc (static binary?): no getaddrinfo probe; DNS shows as UDP port 53 traffic".to_string(),
    };
    // Tracing on before seeding: a connection opened in between is seen
    // connecting, and one already open is matched when it first moves data.
    // Payload heads come from the syscall's saved registers, whose layout
    // the eBPF side knows for x86_64 only.
    let heads = if cfg!(target_arch = "x86_64") {
        tgid_flags::CAPTURE_HEADS
    } else {
        out.note("note: no HTTP request reconstruction on this architecture (x86_64 only): connections and bytes only");
        0
    };
    if let Err(e) = probes.trace_tgid_with(target.pid, tgid_flags::TRACED | heads) {
        eprintln!("tracer: {e}");
        return exit::NO_SUPPORT;
    }
    let seeded = seed::seed(target.pid);
    // Probes, uprobe and tgid are in place and /proc is read: no privilege
    // is needed from here on.
    if let Err(e) = crate::privilege::drop_all() {
        out.note(&format!("note: could not drop privileges: {e}"));
    }
    out.note(&format!(
        "attached to pid {} ({}); tracing until it exits{}",
        target.pid,
        target.name,
        args.duration.map_or(" or Ctrl-C".to_string(), |d| format!(
            ", {d} s pass, or Ctrl-C"
        ))
    ));
    for (what, detail) in &probes.skipped {
        out.note(&format!("note: {}", preflight::skipped_note(what, detail)));
    }
    out.note(&dns);
    for s in &seeded {
        let what = if s.is_listener() {
            "listening"
        } else {
            "existing connection"
        };
        out.note(&format!(
            "{what} fd={} {} -> {} {}",
            s.fd,
            s.local,
            s.remote,
            tcp_state::name(s.state)
        ));
    }
    let mut tracker = Tracker::new(seeded);
    let deadline = args.duration.map(Duration::from_secs_f64);
    let sleep = async {
        match deadline {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(sleep);
    let exited = target.exited();
    tokio::pin!(exited);
    let end = loop {
        let end = tokio::select! {
            r = stream.ready() => r.err().map(|_| End::RingFailed),
            () = &mut exited => Some(End::Exited),
            () = &mut sleep => Some(End::Duration),
            _ = sigint.recv() => Some(End::Interrupted),
            _ = sigterm.recv() => Some(End::Terminated),
        };
        feed(&mut stream, false, target.pid, &mut tracker, &mut out);
        if let Some(end) = end {
            break end;
        }
    };
    if end == End::Exited {
        // Sockets are freed while the process dies: collect those events too.
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            loop {
                let _ = stream.ready().await;
                feed(&mut stream, false, target.pid, &mut tracker, &mut out);
            }
        })
        .await;
    }
    feed(&mut stream, true, target.pid, &mut tracker, &mut out);
    for r in tracker.finish_all() {
        if let Some(req) = tracker.request(r) {
            out.request(req, &tracker);
        }
        tracker.forget(r);
    }
    tracker.findings.finish();
    for f in tracker.findings.take() {
        out.finding(&f);
    }
    let mut lost_by_kind = probes.lost_by_kind().unwrap_or_default();
    if stream.undecodable > 0 {
        lost_by_kind.push(("undecodable", stream.undecodable));
    }
    if let Ok(heads) = probes.lost_heads()
        && heads > 0
    {
        out.note(&format!(
            "note: {heads} payload heads lost (ring buffer full): some requests may be missing"
        ));
    }
    if stream.late() > 0 {
        out.note(&format!(
            "note: {} events reached the reader after newer ones and are printed out of time order",
            stream.late()
        ));
    }
    let (ended, code) = match end {
        End::Exited => (format!("process {} exited", target.pid), exit::SUCCESS),
        End::Duration => ("duration ended".to_string(), exit::SUCCESS),
        End::Interrupted => ("interrupted (SIGINT)".to_string(), exit::SIGINT),
        End::Terminated => ("terminated (SIGTERM)".to_string(), exit::SIGTERM),
        End::RingFailed => ("reading the ring buffer failed".to_string(), exit::FAILED),
    };
    out.summary(&tracker, &lost_by_kind, &ended);
    out.note(&ended);
    code
}

/// Runs the events read so far through the tracker and prints them; `all`
/// at the end of the run, else those the stream can order already.
fn feed(stream: &mut EventStream, all: bool, pid: u32, tracker: &mut Tracker, out: &mut Output) {
    let handle = |ev: &KernelEvent| {
        // The kernel filters by tgid already; this guards against a stale entry.
        if ev.tgid != pid {
            return;
        }
        let fx = tracker.handle(ev);
        out.event(ev, &fx, tracker);
        for &r in &fx.finished {
            if let Some(req) = tracker.request(r) {
                out.request(req, tracker);
            }
            tracker.forget(r);
        }
        for f in tracker.findings.take() {
            out.finding(&f);
        }
    };
    if all {
        stream.for_each_remaining(handle);
    } else {
        stream.for_each_ready(handle);
    }
    out.flush();
}
