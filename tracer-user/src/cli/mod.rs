//! Command line: clap definitions and dispatch; nothing else.
mod examples;
mod manuals;
mod trace_args;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
pub use trace_args::{Expect, TraceArgs};

use crate::{exit, preflight, render::Format};

#[derive(Parser, Debug)]
#[command(
    name = "tracer",
    version = VERSION,
    about = "Trace HTTP requests like Go's httptrace, with the kernel's view of the same sockets",
    after_help = examples::TRACER
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Make requests to URL and show each one's client hooks and kernel
    /// events on one timeline, with a socket-level reuse verdict.
    #[command(after_help = examples::TRACE)]
    Trace(TraceArgs),
    /// Trace a running process's connections and HTTP requests from the
    /// kernel side, until it exits, --duration ends, or Ctrl-C.
    #[command(after_help = examples::ATTACH)]
    Attach(crate::attach::AttachArgs),
    /// Run a command, traced from its first instruction with the processes
    /// it forks, until they exit: `tracer run [OPTIONS] -- CMD ARGS...`.
    #[command(after_help = examples::RUN)]
    Run(crate::run::RunArgs),
    /// Trace three requests against a loopback server started for the demo.
    #[command(after_help = examples::DEMO)]
    Demo(DemoArgs),
    /// Say what this machine supports for tracing, and what is missing.
    #[command(after_help = examples::CHECK)]
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
    /// Print the completion script for SHELL on stdout.
    #[command(after_help = examples::COMPLETIONS)]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages into DIR (`cargo xtask dist` packs them).
    #[command(hide = true, name = "__man")]
    Man { dir: PathBuf },
    /// The demo's server (runs in its own process, apart from the tracer).
    #[command(hide = true, name = "__demo-server")]
    DemoServer,
}

/// The version and the commit it was built from (build.rs).
pub const VERSION: &str = env!("TRACER_VERSION");

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
            Command::Completions { shell } => manuals::completions(shell),
            Command::Man { dir } => manuals::man_pages(&dir),
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
