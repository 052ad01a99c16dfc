//! Command line: clap definitions and dispatch; nothing else.
mod trace_args;

use clap::{Args, Parser, Subcommand};
pub use trace_args::{Expect, TraceArgs};

use crate::{exit, preflight, render::Format};

#[derive(Parser, Debug)]
#[command(
    name = "tracer",
    version,
    about = "Trace HTTP requests like Go's httptrace, with the kernel's view of the same sockets",
    after_help = "Exit codes: 0 ok; 1 a request or the trace failed; 2 usage; 3 --expect did not hold; \
                  4 missing privilege or kernel support; 130/143 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Make requests to URL and show each one's client hooks and kernel
    /// events on one timeline, with a socket-level reuse verdict.
    Trace(TraceArgs),
    /// Trace a running process's connections and HTTP requests from the
    /// kernel side, until it exits, --duration ends, or Ctrl-C.
    Attach(crate::attach::AttachArgs),
    /// Run a command, traced from its first instruction with the processes
    /// it forks, until they exit: `tracer run [OPTIONS] -- CMD ARGS...`.
    Run(crate::run::RunArgs),
    /// Trace three requests against a loopback server started for the demo.
    Demo(DemoArgs),
    /// Say what this machine supports for tracing, and what is missing.
    Check {
        /// Also list the TLS libraries of process PID, and which of them
        /// attach can read the plaintext of.
        #[arg(long, value_name = "PID")]
        pid: Option<u32>,
        /// What attach and run would do with `--tls-plaintext` (with --pid).
        #[arg(
            long,
            value_enum,
            value_name = "on|off",
            default_value = "on",
            requires = "pid"
        )]
        tls_plaintext: crate::attach::TlsPlaintext,
    },
    /// The demo's server (runs in its own process, apart from the tracer).
    #[command(hide = true, name = "__demo-server")]
    DemoServer,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Client hooks only: no eBPF, no privilege needed.
    #[arg(long)]
    pub no_ebpf: bool,
}

/// Parses the command line and runs it; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            };
            let _ = e.print();
            return code;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tracer: cannot start the async runtime: {e}");
            return exit::FAILED;
        }
    };
    runtime.block_on(async {
        match cli.command {
            Command::Trace(args) => crate::trace::run(&args).await,
            Command::Attach(args) => crate::attach::run(&args).await,
            Command::Run(args) => crate::run::run(&args).await,
            Command::Demo(args) => crate::demo::run(args.format, args.no_ebpf).await,
            Command::Check { pid, tls_plaintext } => check(pid, tls_plaintext),
            Command::DemoServer => crate::demo::serve().await,
        }
    })
}

fn check(pid: Option<u32>, plaintext: crate::attach::TlsPlaintext) -> i32 {
    let report = preflight::run();
    let mut probe_result = report.can_trace().then(|| {
        crate::probes::Probes::load(&crate::probes::ProbeOptions {
            skip: report.skip_programs.clone(),
            sock_offsets: report.sock_offsets,
            ..Default::default()
        })
    });
    print!(
        "{}",
        crate::render::check_table(&report, probe_result.as_ref())
    );
    if let Some(pid) = pid {
        let probes = probe_result.as_mut().and_then(|r| r.as_mut().ok());
        print!("{}", crate::attach::tls_report(pid, probes, plaintext));
    }
    match probe_result {
        Some(Ok(_)) => exit::SUCCESS,
        _ => exit::NO_SUPPORT,
    }
}
