//! Command line: clap definitions and dispatch; nothing else.
use clap::{Parser, Subcommand};

use crate::{exit, preflight};

#[derive(Parser, Debug)]
#[command(
    name = "tracer",
    version,
    about = "Trace HTTP requests like Go's httptrace, with the kernel's view of the same sockets",
    long_about = None,
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Say what this machine supports for tracing, and what is missing.
    Check,
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
    match cli.command {
        Command::Check => check(),
    }
}

fn check() -> i32 {
    let report = preflight::run();
    let probe_result = report.can_trace().then(|| {
        crate::probes::Probes::load(&crate::probes::ProbeOptions {
            skip: report.skip_programs.clone(),
            ..Default::default()
        })
    });
    print!(
        "{}",
        crate::render::check_table(&report, probe_result.as_ref())
    );
    match probe_result {
        Some(Ok(_)) => exit::SUCCESS,
        _ => exit::NO_SUPPORT,
    }
}
