//! attach's export: spans go through a bounded queue to a task that posts
//! them in batches. A full queue or a failed post drops spans and counts
//! them: the tracer never waits on the collector and never grows.
use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use tokio::{
    sync::mpsc::{self, Receiver, Sender},
    task::JoinHandle,
};

use super::{DEADLINE, OtlpConfig, attrs, post, scope, shown_endpoint};

/// Requests (each its span and its children) waiting for the exporter
/// task, at most: with their events, a few MB.
const CAPACITY: usize = 1024;
/// Spans per POST, at most.
const BATCH: usize = 512;
/// A partial batch waits this long at most.
const EVERY: Duration = Duration::from_secs(1);

/// Spans that the exporter task builds (off the caller's thread); it must
/// build as many as the count pushed with it.
pub type SpanBuild = Box<dyn FnOnce() -> Vec<Span> + Send>;

/// Who a span's process is: its resource.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SpanSource {
    pub pid: u32,
    pub executable: String,
}

#[derive(Default)]
struct Counts {
    pushed: AtomicU64,
    exported: AtomicU64,
}

pub struct SpanQueue {
    tx: Option<Sender<(SpanSource, SpanBuild)>>,
    counts: Arc<Counts>,
    task: Option<JoinHandle<()>>,
}

impl SpanQueue {
    /// Starts the exporter task on the current tokio runtime.
    pub fn start(config: OtlpConfig) -> Self {
        let (tx, rx) = mpsc::channel(CAPACITY);
        let counts = Arc::new(Counts::default());
        let task = tokio::spawn(export(config, rx, Arc::clone(&counts)));
        SpanQueue {
            tx: Some(tx),
            counts,
            task: Some(task),
        }
    }

    /// Queues the spans of one trace together, or drops them all when the
    /// queue is full (a child never goes without its parent); never waits.
    pub fn push(&self, source: SpanSource, spans: Vec<Span>) {
        self.push_later(source, spans.len(), Box::new(move || spans));
    }

    /// As [`Self::push`], for `count` spans that `build` makes when the
    /// exporter task takes them.
    pub fn push_later(&self, source: SpanSource, count: usize, build: SpanBuild) {
        self.counts
            .pushed
            .fetch_add(count as u64, Ordering::Relaxed);
        if let Some(tx) = &self.tx {
            let _ = tx.try_send((source, build));
        }
    }

    /// Sends what is queued, within [`DEADLINE`]; returns (exported,
    /// dropped): every span not exported by then was dropped.
    pub async fn finish(&mut self) -> (u64, u64) {
        self.tx = None;
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(DEADLINE, &mut task).await.is_err()
        {
            task.abort();
        }
        let exported = self.counts.exported.load(Ordering::Relaxed);
        let pushed = self.counts.pushed.load(Ordering::Relaxed);
        (exported, pushed.saturating_sub(exported))
    }
}

async fn export(
    config: OtlpConfig,
    mut rx: Receiver<(SpanSource, SpanBuild)>,
    counts: Arc<Counts>,
) {
    let mut batch: Vec<(SpanSource, Vec<Span>)> = Vec::new();
    let mut spans = 0;
    let mut said = false;
    let mut tick = tokio::time::interval(EVERY);
    loop {
        let open = tokio::select! {
            next = rx.recv() => match next {
                Some((source, build)) => {
                    let built = build();
                    spans += built.len();
                    batch.push((source, built));
                    spans < BATCH
                }
                None => false,
            },
            _ = tick.tick() => false,
        };
        if !open && !batch.is_empty() {
            let n = std::mem::take(&mut spans) as u64;
            match post::post(
                &config,
                encode(&config, std::mem::take(&mut batch)),
                DEADLINE,
            )
            .await
            {
                Ok(()) => {
                    counts.exported.fetch_add(n, Ordering::Relaxed);
                }
                Err(why) if !said => {
                    // Once: later failures are counted in the summary.
                    said = true;
                    eprintln!(
                        "tracer: otlp: {n} spans not exported to {}: {why}; spans dropped from now on are counted in the summary",
                        shown_endpoint(&config)
                    );
                }
                Err(_) => {}
            }
        }
        if rx.is_closed() && rx.is_empty() && batch.is_empty() {
            return;
        }
    }
}

/// One resource per traced process.
fn encode(config: &OtlpConfig, batch: Vec<(SpanSource, Vec<Span>)>) -> Vec<u8> {
    let mut by_source: BTreeMap<SpanSource, Vec<Span>> = BTreeMap::new();
    for (source, spans) in batch {
        by_source.entry(source).or_default().extend(spans);
    }
    let resource_spans = by_source
        .into_iter()
        .map(|(source, spans)| {
            let resource = attrs::ProcessResource {
                service_name: config.service_name_or(&source.executable),
                pid: source.pid,
                executable: source.executable.clone(),
            };
            ResourceSpans {
                resource: Some(resource.to_resource()),
                scope_spans: vec![ScopeSpans {
                    scope: Some(scope()),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }
        })
        .collect();
    opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest { resource_spans }
        .encode_to_vec()
}
