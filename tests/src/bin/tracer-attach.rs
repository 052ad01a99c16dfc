//! `tracer attach` as the tests run it: the same `attach::run` behind the
//! same clap arguments, built by cargo for the tests (a test cannot depend
//! on another package's binary).
use clap::Parser;
use tracer_user::attach::{AttachArgs, run};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: AttachArgs,
}

fn main() {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    std::process::exit(rt.block_on(run(&cli.args)));
}
