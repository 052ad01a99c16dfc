//! `tracer trace URL`: preflight -> probes on our own tgid -> requests, one
//! after another -> a bounded drain of trailing kernel events -> timeline ->
//! render. Nothing downstream calls back upstream.
use std::time::Duration;

use tokio::signal::unix::SignalKind;

use crate::{
    cli::TraceArgs,
    client::{ClientEvent, RequestOutcome, RequestSpec, TracedClient},
    exit,
    export::otlp::{TraceExport, TraceIds, with_traceparent},
    knobs,
    probes::KernelEvent,
    render::{self, Format},
    timeline::{self, Trace},
};

mod kernel;

use kernel::{finish_reader, spawn_reader, start_probes};

/// Appended to a certificate failure: how to get past it here.
const CERT_HINT: &str = " (trust its CA with --cacert FILE, or skip the check with --insecure)";

pub async fn run(args: &TraceArgs) -> i32 {
    let (spec, opts) = match args.to_request() {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("tracer: {msg}");
            return exit::USAGE;
        }
    };
    let (export, propagate) = match TraceExport::from_args(args.otlp.as_deref(), args.propagate) {
        Ok(v) => v,
        Err(msg) => {
            eprintln!("tracer: {msg}");
            return exit::USAGE;
        }
    };
    // Before any probe: a path that cannot be written is a usage error.
    let mut sink = match &args.output {
        Some(path) => match render::open_output(path) {
            Ok(f) => Some(f),
            Err(msg) => {
                eprintln!("tracer: {msg}");
                return exit::USAGE;
            }
        },
        None => None,
    };
    let mut kernel = if args.no_ebpf {
        None
    } else {
        match start_probes(args.ring_bytes) {
            Ok(k) => Some(k),
            Err(msg) => {
                eprintln!("tracer: {msg}");
                return exit::NO_SUPPORT;
            }
        }
    };
    let client = match TracedClient::new(&opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tracer: {e}");
            return exit::USAGE;
        }
    };
    // Probes attached, tgid set, ring buffer open: no privilege is needed now.
    if let Err(e) = crate::privilege::drop_all() {
        eprintln!("tracer: note: could not drop privileges: {e}");
    }
    let reader = kernel.as_mut().map(|k| spawn_reader(k.stream.take()));

    let (outcomes, interrupted) =
        run_requests(&client, &spec, args.count, args.interval(), propagate).await;
    // Dropping the client closes its pooled connections: their FIN and close
    // belong in the timeline too.
    drop(client);
    let (kernel_events, lost) = match (&kernel, reader) {
        (Some(k), Some(r)) => finish_reader(k, r).await,
        _ => (Vec::new(), 0),
    };

    let shown = crate::secrets::shown(&spec, args.show_secrets);
    let trace = build(&shown, outcomes, kernel_events, !args.no_ebpf, lost);
    print(&trace, args.format, sink.as_mut());
    // Detaching waits on the kernel (tens of ms per tp_btf link): print first.
    drop(kernel);
    // After the detach: the exporter's own connections are not traced.
    if let Some(export) = export {
        export.send(&trace, shown.url.as_str()).await;
    }
    crate::expect::exit_code(&trace, args.expect, interrupted)
}

/// The test knob [`knobs::spare_connect_before`]: a real connect that no
/// request rides, so that the accounting of unused connections is tested.
async fn spare_connect(spec: &RequestSpec, n: u32) -> Option<tokio::net::TcpStream> {
    let at = knobs::spare_connect_before()?;
    let host = spec.url.host_str()?.trim_matches(['[', ']']).to_string();
    let port = spec.url.port_or_known_default()?;
    if at != n {
        return None;
    }
    tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .ok()
}

/// Runs the requests in order; stops at the first failure or a signal.
async fn run_requests(
    client: &TracedClient,
    spec: &RequestSpec,
    count: u32,
    interval: Duration,
    propagate: Option<TraceIds>,
) -> (Vec<RequestOutcome>, Option<i32>) {
    let mut outcomes = Vec::new();
    let (Ok(mut int), Ok(mut term)) = (
        tokio::signal::unix::signal(SignalKind::interrupt()),
        tokio::signal::unix::signal(SignalKind::terminate()),
    ) else {
        return (outcomes, Some(exit::FAILED));
    };
    let mut spare = Vec::new();
    for n in 1..=count {
        if n > 1 && !interval.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = int.recv() => return (outcomes, Some(exit::SIGINT)),
                _ = term.recv() => return (outcomes, Some(exit::SIGTERM)),
            }
        }
        spare.extend(spare_connect(spec, n).await);
        let spec = match &propagate {
            Some(ids) => &with_traceparent(spec, ids, n),
            None => spec,
        };
        let outcome = tokio::select! {
            o = client.run(n, spec) => o,
            _ = int.recv() => return (outcomes, Some(exit::SIGINT)),
            _ = term.recv() => return (outcomes, Some(exit::SIGTERM)),
        };
        let failed = outcome.error.is_some();
        outcomes.push(outcome);
        if failed {
            break;
        }
    }
    (outcomes, None)
}

fn build(
    spec: &RequestSpec,
    outcomes: Vec<RequestOutcome>,
    kernel: Vec<KernelEvent>,
    kernel_on: bool,
    lost: u64,
) -> Trace {
    let mut infos = Vec::with_capacity(outcomes.len());
    let mut client: Vec<ClientEvent> = Vec::new();
    for mut o in outcomes {
        client.append(&mut o.events);
        let certificate_error = o.certificate_error;
        // The join's fields as the library's session has them, and what
        // only a CLI trace knows: its spec, and the certificate hint.
        let mut info = timeline::RequestInfo::from_outcome(o);
        info.method = spec.method.to_string();
        info.url = spec.url.to_string();
        info.headers = spec.headers.clone();
        if certificate_error {
            info.error = info.error.map(|e| format!("{e}{CERT_HINT}"));
        }
        infos.push(info);
    }
    timeline::build(infos, client, kernel, kernel_on, lost)
}

/// To stdout, or to `-o FILE` (without colours).
fn print(trace: &Trace, format: Format, file: Option<&mut Box<dyn std::io::Write + Send>>) {
    use std::io::Write as _;
    let style = match file {
        Some(_) => render::TextStyle { color: false },
        None => render::TextStyle::detect(),
    };
    let text = match format {
        Format::Text => render::text(trace, style),
        Format::Json => render::json_lines(trace),
        Format::Chrome => render::chrome(trace),
    };
    match file {
        Some(f) => {
            let _ = f.write_all(text.as_bytes());
            let _ = f.flush();
        }
        None => {
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(text.as_bytes());
            let _ = stdout.flush();
        }
    }
}
