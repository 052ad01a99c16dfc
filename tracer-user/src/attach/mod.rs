//! `tracer attach --pid PID[,PID...] | --name NAME`: trace running
//! processes' connections and reconstruct their plaintext HTTP/1.x requests
//! from the kernel's view alone.
//!
//! Stages: find the processes, load the probes with payload heads on for
//! those tgids only (and, with `--follow-forks`, their descendants and every
//! process they fork), seed the connections they already have from /proc,
//! then stream kernel events through [`conns::Tracker`] into
//! [`output::Output`] until they exit, the duration ends, or SIGINT/SIGTERM.
mod conn_table;
mod conns;
mod findings;
mod framing;
mod gnutls;
mod handshake;
mod http;
mod model;
mod output;
mod procs;
mod record;
mod seed;
mod segments;
mod stat;
mod target;
mod tls;
mod tls_probes;
mod tls_symbols;

use std::{path::PathBuf, time::Duration};

use tracer_ebpf::{tcp_state, tgid_flags};

pub use crate::render::Format;
use crate::{
    clock::monotonic_ns,
    exit,
    export::otlp::{OtlpConfig, SpanQueue},
    preflight,
    probes::{ProbeOptions, Probes},
};
pub(crate) use conns::Tracker;
pub(crate) use output::Output;
pub(crate) use record::{Interrupts, Recording, Totals, record};
pub(crate) use segments::Segments;
use target::{Target, TargetError};
pub use tls_probes::TlsPlaintext;
pub(crate) use tls_probes::probe_tls;

#[derive(clap::Args, Debug, Clone)]
pub struct AttachArgs {
    /// Processes to trace (every thread of each), comma-separated.
    #[arg(long, value_delimiter = ',', required_unless_present = "name")]
    pub pid: Vec<i64>,
    /// Trace every process whose comm (first 15 bytes) or executable's
    /// basename is NAME, found at start (never the tracer itself).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Stop after this many seconds (default: until the processes exit or Ctrl-C).
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Write the trace to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also trace the processes they fork from now on, from their first
    /// instruction, and the descendants they already have.
    #[arg(long)]
    pub follow_forks: bool,
    /// Print every kernel event (each send and recv), not only requests
    /// and connections. Costs the traced process more: the kernel then
    /// sends a record per I/O instead of one per message.
    #[arg(long, conflicts_with = "stat")]
    pub events: bool,
    /// A live view for busy processes: each second, a table per endpoint
    /// (method and path template) with count, rate, p50/p99 of the total
    /// time, errors and new vs reused connections, instead of a line per
    /// event and request (text or json).
    #[arg(long)]
    pub stat: bool,
    /// Export each request as an OpenTelemetry span: POST OTLP/HTTP
    /// protobuf to ENDPOINT/v1/traces (else OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT).
    #[arg(long, value_name = "ENDPOINT")]
    pub otlp: Option<String>,
    /// Read HTTP requests from the TLS library's plaintext (on), or leave
    /// those uprobes out (off): each of their hits costs the traced process
    /// a trap on every TLS read and write; bytes, timing and handshakes stay.
    #[arg(long, value_enum, value_name = "on|off", default_value = "on")]
    pub tls_plaintext: TlsPlaintext,
    /// Bytes of all ring buffers together (testing the lost-event path).
    #[arg(long, hide = true)]
    pub ring_bytes: Option<u32>,
}

/// Runs `tracer attach`; returns the process exit code.
pub async fn run(args: &AttachArgs) -> i32 {
    let Some(interrupts) = Interrupts::listen() else {
        eprintln!("tracer: cannot install signal handlers");
        return exit::FAILED;
    };
    let mut targets = Vec::new();
    for &pid in &args.pid {
        match Target::find(pid) {
            Ok(t) if targets.iter().any(|o: &Target| o.pid == t.pid) => {}
            Ok(t) => targets.push(t),
            Err(e @ TargetError::Itself(_)) => {
                eprintln!("tracer: {e}; give the pid of another process");
                return exit::USAGE;
            }
            Err(e) => {
                eprintln!("tracer: {e}");
                return exit::FAILED;
            }
        }
    }
    if let Some(name) = &args.name {
        let found = Target::by_name(name);
        if found.is_empty() {
            eprintln!("tracer: no process named {name}");
            return exit::FAILED;
        }
        for t in found {
            if !targets.iter().any(|o| o.pid == t.pid) {
                targets.push(t);
            }
        }
    }
    if let Some(d) = args.duration
        && !(d.is_finite() && d > 0.0)
    {
        eprintln!("tracer: --duration must be a positive number of seconds");
        return exit::USAGE;
    }
    if args.stat && args.format == Format::Chrome {
        eprintln!("tracer: --stat writes text or json, not chrome");
        return exit::USAGE;
    }
    let sink = match args.output.as_deref().map(crate::render::open_output) {
        Some(Ok(sink)) => Some(sink),
        Some(Err(msg)) => {
            eprintln!("tracer: {msg}");
            return exit::USAGE;
        }
        None => None,
    };
    let otlp = match OtlpConfig::resolve(args.otlp.as_deref(), |k| std::env::var(k).ok()) {
        Ok(config) => config,
        Err(msg) => {
            eprintln!("tracer: {msg}");
            return exit::USAGE;
        }
    };
    let pids: Vec<u32> = targets.iter().map(|t| t.pid).collect();
    let mut probes = match load_probes(args.ring_bytes, &pids) {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("tracer: {msg}");
            return exit::NO_SUPPORT;
        }
    };
    let first = targets.first().map_or(0, |t| t.pid);
    let mut out = Output::new(args.format, first, monotonic_ns())
        .events(args.events)
        .otlp(otlp.map(SpanQueue::start));
    if let Some(sink) = sink {
        out = out.to(sink);
    }
    if targets.len() > 1 || args.follow_forks {
        out = out.name_processes();
    }
    if args.stat {
        out = out.stat();
    }
    // Requests and bytes come from the send/recv hooks; without them (Linux
    // before 6.3) the summary says they are unknown instead of counting 0.
    out.io_unknown = io_unknown(&probes);
    trace(args, &targets, &mut probes, out, interrupts).await
}

/// Preflight, a look into each of `pids`, then the probes loaded; the
/// error says what is missing (exit 4).
pub(crate) fn load_probes(ring_bytes: Option<u32>, pids: &[u32]) -> Result<Probes, String> {
    let report = preflight::run();
    if !report.can_trace() {
        return Err(format!("cannot trace here: {}", report.missing()));
    }
    crate::probes::pidns::check_own_proc().map_err(|e| e.to_string())?;
    for &pid in pids {
        preflight::can_inspect(pid)?;
        crate::probes::pidns::check_visible(pid).map_err(|e| e.to_string())?;
    }
    let opts = ProbeOptions {
        ring_bytes,
        skip: report.skip_programs.clone(),
        sock_offsets: report.sock_offsets,
    };
    Probes::load(&opts).map_err(|e| e.to_string())
}

/// Whether the send/recv programs were left out (their tracepoints are
/// missing before Linux 6.3).
pub(crate) fn io_unknown(probes: &Probes) -> bool {
    probes
        .skipped
        .iter()
        .any(|(p, _)| *p == "tracer_send" || *p == "tracer_recv")
}

/// The libc that process `pid` maps, for the getaddrinfo uprobe.
pub(crate) fn libc_of(pid: u32) -> Option<PathBuf> {
    Target {
        pid,
        name: String::new(),
    }
    .libc()
}

/// `tracer check --pid PID`: the TLS libraries of the process, and
/// whether attach would read their plaintext under `plaintext`.
pub fn tls_report(pid: u32, probes: Option<&mut Probes>, plaintext: TlsPlaintext) -> String {
    tls::report(pid, probes, plaintext)
}

/// Resolves once process `pid` has exited.
pub(crate) async fn wait_exited(pid: u32) {
    Target {
        pid,
        name: String::new(),
    }
    .exited()
    .await;
}

async fn trace(
    args: &AttachArgs,
    targets: &[Target],
    probes: &mut Probes,
    mut out: Output,
    interrupts: Interrupts,
) -> i32 {
    // One process alone: the uprobe fires for it only. Several, or their
    // children: for every process, and the kernel's filter picks them out.
    let scope = match targets {
        [one] if !args.follow_forks => one.pid,
        _ => 0,
    };
    let dns = match targets.iter().find_map(Target::libc) {
        Some(libc) => match probes.attach_getaddrinfo(&libc, scope) {
            Ok(()) => format!("dns: getaddrinfo probed in {}", libc.display()),
            Err(e) => format!("dns: no getaddrinfo probe ({e}); DNS shows as UDP port 53 traffic"),
        },
        // Loading takes seconds on a slow machine (5 s in a qemu guest): a
        // short-lived target may be gone by now, and a zombie maps nothing.
        None if targets.iter().all(Target::gone) => format!(
            "note: {} exited before the probes were attached: nothing of it was traced",
            targets.iter().map(|t| format!("process {}", t.pid)).collect::<Vec<_>>().join(", ")
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
    let follow = if args.follow_forks {
        if let Err(e) = probes.follow_forks() {
            eprintln!("tracer: cannot follow forks: {e}");
            return exit::NO_SUPPORT;
        }
        tgid_flags::FOLLOW
    } else {
        0
    };
    // Without --events the kernel sends a record per message, not per I/O.
    let segments = heads != 0 && !args.events;
    let seg_flag = if segments { tgid_flags::SEGMENTS } else { 0 };
    let (tls, https) = if heads != 0 {
        let pids: Vec<u32> = targets.iter().map(|t| t.pid).collect();
        let exes: Vec<PathBuf> = pids
            .iter()
            .map(|p| PathBuf::from(format!("/proc/{p}/exe")))
            .collect();
        probe_tls(probes, &pids, None, &exes, scope, args.tls_plaintext)
    } else {
        (0, Vec::new())
    };
    let flags = tgid_flags::TRACED | heads | follow | seg_flag | tls;
    let mut seeded = Vec::new();
    for target in targets {
        if let Err(e) = probes.trace_tgid_with(target.pid, flags) {
            eprintln!("tracer: {e}");
            return exit::NO_SUPPORT;
        }
        out.procs.root(target.pid);
        seeded.extend(seed::seed(target.pid));
    }
    if args.follow_forks {
        for target in targets {
            for (child, parent) in target::descendants(target.pid) {
                if let Err(e) = probes.trace_tgid_with(child, flags) {
                    out.note(&format!("note: child {child} not followed: {e}"));
                } else if out.procs.forked(child, parent) {
                    out.note(&format!(
                        "process {child} (child of {parent}) existed at start: traced"
                    ));
                }
            }
        }
    }
    // Probes, uprobe and tgids are in place and /proc is read: no privilege
    // is needed from here on.
    if let Err(e) = crate::privilege::drop_all() {
        out.note(&format!("note: could not drop privileges: {e}"));
    }
    let names: Vec<String> = targets
        .iter()
        .map(|t| format!("pid {} ({})", t.pid, t.name))
        .collect();
    let (which, last) = match (targets.len(), args.follow_forks) {
        (1, false) => ("", "it exits"),
        (1, true) => (" and its children", "the last of them exits"),
        (_, false) => ("", "they exit"),
        (_, true) => (" and their children", "the last of them exits"),
    };
    out.note(&format!(
        "attached to {}{which}; tracing until {last}{}",
        names.join(", "),
        args.duration.map_or(" or Ctrl-C".to_string(), |d| format!(
            ", {d} s pass, or Ctrl-C"
        ))
    ));
    for (what, detail) in &probes.skipped {
        out.note(&format!("note: {}", preflight::skipped_note(what, detail)));
    }
    out.note(&dns);
    for note in &https {
        out.note(note);
    }
    if tls != 0 {
        out.note(tls_probes::PLAINTEXT_COST_NOTE);
    }
    out.plaintext_off = args.tls_plaintext == TlsPlaintext::Off;
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
    let recording = Recording {
        probes,
        out,
        tracker: Tracker::new(seeded),
        follow: args.follow_forks,
        segments: segments.then(Segments::default),
        duration: args.duration.map(Duration::from_secs_f64),
    };
    let exited = async move {
        for target in targets {
            target.exited().await;
        }
        match targets {
            [one] => format!("process {} exited", one.pid),
            _ => "every process exited".to_string(),
        }
    };
    record(recording, interrupts, exited).await.0.code()
}
