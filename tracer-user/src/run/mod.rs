//! `tracer run -- CMD ARGS...`: start a command under the tracer, traced
//! from its first instruction, with the children it forks followed, until
//! it and they exit. The kernel side and the request reconstruction are
//! attach's; what is new here is how the command is started: forked, held
//! on a pipe until its pid is in the kernel's filter, then let go to exec as
//! the invoking user.
mod creds;
mod spawn;

use std::{cell::Cell, ffi::OsString, path::PathBuf};

use tracer_ebpf::tgid_flags;

use crate::{
    attach::{self, Format, Output, Recording, Totals, Tracker},
    cli::Expect,
    clock::monotonic_ns,
    exit,
    export::otlp::{OtlpConfig, SpanQueue},
    preflight,
};

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Exit 3 unless every request after the first reused a connection
    /// (reuse), or none did (new); over all processes traced.
    #[arg(long, value_enum)]
    pub expect: Option<Expect>,
    /// Write the trace to FILE instead of stderr.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Run the command as USER (name or uid); default: the sudo caller
    /// (SUDO_UID/SUDO_GID), else the tracer's own user.
    #[arg(long, value_name = "USER")]
    pub user: Option<String>,
    /// Trace the command alone, not the processes it forks.
    #[arg(long)]
    pub no_follow: bool,
    /// Print every kernel event (each send and recv), not only requests
    /// and connections. Costs the traced process more: the kernel then
    /// sends a record per I/O instead of one per message.
    #[arg(long)]
    pub events: bool,
    /// Export each request as an OpenTelemetry span, as attach does: POST
    /// OTLP/HTTP protobuf to ENDPOINT/v1/traces (else
    /// OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT).
    #[arg(long, value_name = "ENDPOINT")]
    pub otlp: Option<String>,
    /// Read HTTP requests from the TLS library's plaintext (on), or leave
    /// those uprobes out (off), as attach does.
    #[arg(long, value_enum, value_name = "on|off", default_value = "on")]
    pub tls_plaintext: attach::TlsPlaintext,
    /// Bytes of all ring buffers together (testing the lost-event path).
    #[arg(long, hide = true)]
    pub ring_bytes: Option<u32>,
    /// The command and its arguments (after `--`).
    #[arg(required = true, trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<OsString>,
}

/// Runs `tracer run`; returns the exit code (see [`exit_code`]).
pub async fn run(args: &RunArgs) -> i32 {
    let Some(program) = args.command.first() else {
        return exit::USAGE;
    };
    // Before anything slow: a Ctrl-C while the probes load ends the run
    // cleanly (see `attach::Interrupts`).
    let Some(interrupts) = attach::Interrupts::listen() else {
        eprintln!("tracer: cannot install signal handlers");
        return exit::FAILED;
    };
    let Some(path) = spawn::resolve(program) else {
        eprintln!("tracer: {}: command not found", program.to_string_lossy());
        return exit::USAGE;
    };
    let creds = match creds::for_command(args.user.as_deref()) {
        Ok(c) => c,
        Err(msg) => {
            eprintln!("tracer: {msg}");
            return exit::USAGE;
        }
    };
    let sink: Box<dyn std::io::Write + Send> = match &args.output {
        Some(p) => match crate::render::open_output(p) {
            Ok(s) => s,
            Err(msg) => {
                eprintln!("tracer: {msg}");
                return exit::USAGE;
            }
        },
        None => Box::new(std::io::stderr()),
    };
    // The command's own OTEL_* are its business: read before it starts,
    // and the exporter's connections are the tracer's, never traced.
    let otlp = match OtlpConfig::resolve(args.otlp.as_deref(), |k| std::env::var(k).ok()) {
        Ok(config) => config,
        Err(msg) => {
            eprintln!("tracer: {msg}");
            return exit::USAGE;
        }
    };
    let mut probes = match attach::load_probes(args.ring_bytes, &[]) {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("tracer: {msg}");
            return exit::NO_SUPPORT;
        }
    };
    let follow = !args.no_follow;
    if follow && let Err(e) = probes.follow_forks() {
        eprintln!("tracer: cannot follow forks: {e}; --no-follow traces the command alone");
        return exit::NO_SUPPORT;
    }
    let child = match spawn::spawn_stopped(&path, &args.command, creds.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tracer: cannot start {}: {e}", path.display());
            return exit::FAILED;
        }
    };
    let pid = child.pid;
    let mut out = Output::new(args.format, pid, monotonic_ns())
        .to(sink)
        .name_processes()
        .events(args.events)
        .otlp(otlp.map(SpanQueue::start));
    out.io_unknown = crate::attach::io_unknown(&probes);
    out.plaintext_off = args.tls_plaintext == attach::TlsPlaintext::Off;
    // Heads for request reconstruction come from x86_64's saved registers.
    let heads = if cfg!(target_arch = "x86_64") {
        tgid_flags::CAPTURE_HEADS
    } else {
        0
    };
    // Without --events the kernel sends a record per message, not per I/O.
    let segments = heads != 0 && !args.events;
    // HTTPS through OpenSSL and Go: the held child has not exec'd yet, so
    // its libssl is found under its root, and probed for any traced
    // process; the command itself is looked in for OpenSSL linked in and
    // for Go's crypto/tls.
    let (tls, https) = if heads != 0 {
        attach::probe_tls(
            &mut probes,
            &[pid],
            Some(&path),
            std::slice::from_ref(&path),
            0,
            args.tls_plaintext,
        )
    } else {
        (0, Vec::new())
    };
    let flags = tgid_flags::TRACED
        | tls
        | heads
        | if follow { tgid_flags::FOLLOW } else { 0 }
        | if segments { tgid_flags::SEGMENTS } else { 0 };
    if let Err(e) = probes.trace_tgid_with(pid, flags) {
        eprintln!("tracer: {e}");
        return exit::NO_SUPPORT;
    }
    // getaddrinfo of any process the filter lets through: the command may
    // exec something else, and its children too. The tracer's own libc is
    // the likeliest; a command with another libc shows DNS as UDP only.
    let dns = attach::libc_of(std::process::id())
        .map(|libc| probes.attach_getaddrinfo(&libc, 0).map(|()| libc));
    let name = std::path::Path::new(program)
        .file_name()
        .map_or_else(|| program.to_string_lossy(), |n| n.to_string_lossy())
        .into_owned();
    out.procs.root_named(pid, &name);
    out.note(&format!(
        "started pid {pid} ({name}); tracing it{} until {} exit, or Ctrl-C",
        if follow { " and its children" } else { "" },
        if follow { "they" } else { "it" },
    ));
    for (what, detail) in &probes.skipped {
        out.note(&format!("note: {}", preflight::skipped_note(what, detail)));
    }
    match dns {
        Some(Ok(libc)) => out.note(&format!("dns: getaddrinfo probed in {}", libc.display())),
        Some(Err(e)) => out.note(&format!(
            "dns: no getaddrinfo probe ({e}); DNS shows as UDP port 53 traffic"
        )),
        None => {
            out.note("dns: no libc found: no getaddrinfo probe; DNS shows as UDP port 53 traffic")
        }
    }
    for note in &https {
        out.note(note);
    }
    // The notes go first: the command's own output follows its start.
    if let Err(e) = child.release() {
        eprintln!("tracer: cannot start {}: {e}", path.display());
        return exit::FAILED;
    }
    if let Err(e) = crate::privilege::drop_all() {
        out.note(&format!("note: could not drop privileges: {e}"));
    }
    let status = Cell::new(None);
    let exited = async {
        let code = wait_exit(pid).await;
        status.set(Some(code));
        match code {
            ExitStatus::Code(c) => format!("command {name} (pid {pid}) exited with {c}"),
            ExitStatus::Signal(s) => format!("command {name} (pid {pid}) killed by signal {s}"),
        }
    };
    let recording = Recording {
        probes: &mut probes,
        out,
        tracker: Tracker::new(Vec::new()),
        follow,
        duration: None,
        segments: segments.then(attach::Segments::default),
    };
    let (end, totals) = attach::record(recording, interrupts, exited).await;
    exit_code(end.code(), args.expect, totals, status.get())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ExitStatus {
    Code(i32),
    Signal(i32),
}

/// Waits for our child `pid` to exit, and reaps it.
async fn wait_exit(pid: u32) -> ExitStatus {
    attach::wait_exited(pid).await;
    let mut status = 0;
    // SAFETY: our own child; it has exited, so this does not block long.
    let got = unsafe { libc::waitpid(pid as i32, &mut status, 0) };
    if got != pid as i32 {
        return ExitStatus::Code(exit::FAILED);
    }
    if libc::WIFSIGNALED(status) {
        ExitStatus::Signal(libc::WTERMSIG(status))
    } else {
        ExitStatus::Code(libc::WEXITSTATUS(status))
    }
}

/// The tracer's own failure first (4, 130, 143, 1), then a failed
/// `--expect` (3), then the command's own code (128 + signal if killed).
fn exit_code(
    tracer: i32,
    expect: Option<Expect>,
    totals: Totals,
    status: Option<ExitStatus>,
) -> i32 {
    if tracer != exit::SUCCESS {
        return tracer;
    }
    if let Some(expect) = expect {
        let holds = match expect {
            Expect::Reuse => totals.requests >= 2 && totals.reused + 1 == totals.requests,
            Expect::New => totals.requests >= 1 && totals.reused == 0,
        };
        if !holds {
            eprintln!(
                "tracer: --expect {} did not hold: {} of {} requests reused a connection",
                expect.as_str(),
                totals.reused,
                totals.requests
            );
            return exit::EXPECT_FAILED;
        }
    }
    match status {
        Some(ExitStatus::Code(c)) => c,
        Some(ExitStatus::Signal(s)) => 128 + s,
        None => exit::FAILED,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn totals(requests: usize, reused: usize) -> Totals {
        Totals { requests, reused }
    }

    #[test]
    fn exit_codes_in_order_of_precedence() {
        let ok = Some(ExitStatus::Code(0));
        let seven = Some(ExitStatus::Code(7));
        assert_eq!(
            exit_code(exit::SIGINT, Some(Expect::Reuse), totals(0, 0), seven),
            130
        );
        assert_eq!(exit_code(0, Some(Expect::Reuse), totals(2, 0), seven), 3);
        assert_eq!(exit_code(0, Some(Expect::Reuse), totals(2, 1), seven), 7);
        assert_eq!(exit_code(0, Some(Expect::New), totals(2, 1), ok), 3);
        assert_eq!(exit_code(0, Some(Expect::New), totals(0, 0), ok), 3);
        assert_eq!(
            exit_code(0, None, totals(0, 0), Some(ExitStatus::Signal(9))),
            137
        );
        assert_eq!(exit_code(0, None, totals(0, 0), ok), 0);
    }
}
