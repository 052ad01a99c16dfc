//! `tracer attach --pid PID`: trace a running process's connections and
//! reconstruct its plaintext HTTP/1.x requests from the kernel's view alone.
//!
//! Stages: validate the PID, load the probes with payload heads on for that
//! tgid only, seed the connections it already has from /proc, then stream
//! kernel events through [`conns::Tracker`] into [`output::Output`] until
//! the target exits, the duration ends, or SIGINT/SIGTERM.
mod conns;
mod fields;
mod http;
mod model;
mod output;
mod procs;
mod record;
mod seed;
mod target;

use std::{path::PathBuf, time::Duration};

use tracer_ebpf::{tcp_state, tgid_flags};

pub use crate::render::Format;
use crate::{
    clock::monotonic_ns,
    exit, preflight,
    probes::{ProbeOptions, Probes},
};
pub(crate) use conns::Tracker;
pub(crate) use output::Output;
pub(crate) use record::{Recording, Totals, record};
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
    /// Write the trace to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Also trace the processes it forks from now on, from their first
    /// instruction, and the descendants it already has.
    #[arg(long)]
    pub follow_forks: bool,
    /// Bytes of all ring buffers together (testing the lost-event path).
    #[arg(long, hide = true)]
    pub ring_bytes: Option<u32>,
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
    if let Some(path) = &args.output {
        match open_output(path) {
            Ok(sink) => out = out.to(sink),
            Err(msg) => {
                eprintln!("tracer: {msg}");
                return exit::USAGE;
            }
        }
    }
    trace(args, &target, &mut probes, out).await
}

/// The libc that process `pid` maps, for the getaddrinfo uprobe.
pub(crate) fn libc_of(pid: u32) -> Option<PathBuf> {
    Target {
        pid,
        name: String::new(),
    }
    .libc()
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

/// `-o FILE`: created or truncated, as a shell's `>` would.
pub(crate) fn open_output(
    path: &std::path::Path,
) -> Result<Box<dyn std::io::Write + Send>, String> {
    std::fs::File::create(path)
        .map(|f| Box::new(std::io::BufWriter::new(f)) as Box<dyn std::io::Write + Send>)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

async fn trace(args: &AttachArgs, target: &Target, probes: &mut Probes, mut out: Output) -> i32 {
    let dns = match target.libc() {
        Some(libc) => match probes.attach_getaddrinfo(&libc, target.pid) {
            Ok(()) => format!("dns: getaddrinfo probed in {}", libc.display()),
            Err(e) => format!("dns: no getaddrinfo probe ({e}); DNS shows as UDP port 53 traffic"),
        },
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
        out = out.name_processes();
        tgid_flags::FOLLOW
    } else {
        0
    };
    if let Err(e) = probes.trace_tgid_with(target.pid, tgid_flags::TRACED | heads | follow) {
        eprintln!("tracer: {e}");
        return exit::NO_SUPPORT;
    }
    out.procs.root(target.pid);
    if args.follow_forks {
        for (child, parent) in target::descendants(target.pid) {
            if let Err(e) = probes.trace_tgid_with(child, tgid_flags::TRACED | heads | follow) {
                out.note(&format!("note: child {child} not followed: {e}"));
            } else if out.procs.forked(child, parent) {
                out.note(&format!(
                    "process {child} (child of {parent}) existed at start: traced"
                ));
            }
        }
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
    let recording = Recording {
        probes,
        out,
        tracker: Tracker::new(seeded),
        follow: args.follow_forks,
        duration: args.duration.map(Duration::from_secs_f64),
    };
    let pid = target.pid;
    let exited = async move {
        target.exited().await;
        format!("process {pid} exited")
    };
    record(recording, exited).await.0.code()
}
