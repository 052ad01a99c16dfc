//! trace's kernel half: the probes on our own tgid, and the reader that
//! empties their rings while the requests run, then drains the events that
//! trail the last request (FIN, close, destroy).
use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio::{sync::oneshot, task::JoinHandle};

use crate::{
    clock::monotonic_ns,
    knobs, preflight,
    probes::{EventStream, KernelEvent, ProbeOptions, Probes},
};

/// How long trailing kernel events (FIN, close, destroy) may take to arrive
/// after the client is dropped, at most.
const DRAIN: Duration = Duration::from_millis(50);
/// The drain ends early once the ring buffer has been quiet this long.
const QUIET: Duration = Duration::from_millis(5);

pub(super) struct Kernel {
    pub(super) probes: Probes,
    pub(super) stream: Option<EventStream>,
}

pub(super) fn start_probes(ring_bytes: Option<u32>) -> Result<Kernel, String> {
    let report = preflight::run();
    if !report.can_trace() {
        return Err(format!(
            "cannot trace the kernel side: {}; `--no-ebpf` shows the client hooks alone, without privilege",
            report.missing()
        ));
    }
    let opts = ProbeOptions {
        ring_bytes,
        skip: report.skip_programs.clone(),
        sock_offsets: report.sock_offsets,
    };
    let mut probes =
        Probes::load(&opts).map_err(|e| format!("cannot load the eBPF probes: {e}"))?;
    for (program, why) in &probes.skipped {
        eprintln!("tracer: note: {}", preflight::skipped_note(program, why));
    }
    probes
        .trace_tgid(std::process::id())
        .map_err(|e| format!("cannot select this process for tracing: {e}"))?;
    let stream = probes
        .events()
        .map_err(|e| format!("cannot open the ring buffer: {e}"))?;
    Ok(Kernel {
        probes,
        stream: Some(stream),
    })
}

pub(super) struct Reader {
    stop: oneshot::Sender<()>,
    handle: JoinHandle<(Option<EventStream>, Vec<KernelEvent>)>,
    /// CLOCK_MONOTONIC ns of the last batch read, for the drain.
    last_batch_ns: Arc<AtomicU64>,
}

/// Reads the ring buffer while the requests run, so it never fills up.
pub(super) fn spawn_reader(stream: Option<EventStream>) -> Reader {
    let (stop, mut stop_rx) = oneshot::channel::<()>();
    let last_batch_ns = Arc::new(AtomicU64::new(0));
    let last = last_batch_ns.clone();
    let handle = tokio::spawn(async move {
        let Some(mut stream) = stream else {
            return (None, Vec::new());
        };
        let mut events = Vec::new();
        if let Some(ms) = knobs::reader_delay_ms() {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        loop {
            let before = events.len();
            tokio::select! {
                _ = &mut stop_rx => break,
                r = stream.next_batch(&mut events) => {
                    if r.is_err() { break }
                    if events.len() > before {
                        last.store(monotonic_ns(), Ordering::Relaxed);
                    }
                }
            }
        }
        stream.drain(&mut events);
        stream.apply_aliases(&mut events);
        (Some(stream), events)
    });
    Reader {
        stop,
        handle,
        last_batch_ns,
    }
}

/// Waits for trailing events: until the ring buffer has been quiet for
/// [`QUIET`], or [`DRAIN`] at most; then stops the reader.
pub(super) async fn finish_reader(k: &Kernel, reader: Reader) -> (Vec<KernelEvent>, u64) {
    let start = monotonic_ns();
    let quiet = QUIET.as_nanos() as u64;
    loop {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let now = monotonic_ns();
        let last = reader.last_batch_ns.load(Ordering::Relaxed).max(start);
        if now - last >= quiet || now - start >= DRAIN.as_nanos() as u64 {
            break;
        }
    }
    let _ = reader.stop.send(());
    let events = reader.handle.await.map(|(_, e)| e).unwrap_or_default();
    let lost = k.probes.lost_events().unwrap_or(0);
    (events, lost)
}
