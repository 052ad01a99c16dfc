//! `--otlp ENDPOINT`: the trace as OpenTelemetry spans, posted as OTLP/HTTP
//! protobuf to a collector (Jaeger, Tempo, an OpenTelemetry Collector).
//! The messages are `opentelemetry-proto`'s prost types; the post is a
//! plain reqwest client, on the runtime the tool already has.
mod attrs;
mod config;
mod events;
mod ids;
mod post;
mod queue;
mod shared;
mod spans;

use std::time::Duration;

use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest,
    common::v1::InstrumentationScope,
    trace::v1::{ResourceSpans, ScopeSpans},
};
use prost::Message;

pub use attrs::{int, text};
pub use config::OtlpConfig;
pub use events::{finding_event, kernel_event, status_error};
pub use ids::{TraceIds, with_traceparent};
pub use queue::{SpanQueue, SpanSource};
pub use shared::{SAMPLED, peer, phase_span, response, reuse};
pub use spans::RunSpans;

use crate::{clock, timeline::Trace};

/// How long `trace` waits for the collector before it exits, Ctrl-C or not.
pub const DEADLINE: Duration = Duration::from_secs(2);

/// The export of one `trace` run: its ids and clocks are fixed at start.
pub struct TraceExport {
    config: OtlpConfig,
    ids: TraceIds,
    unix_offset_ns: u64,
    start_ns: u64,
}

impl TraceExport {
    /// From `--otlp`, `--propagate` and the environment: the export, if
    /// one was asked for, and the ids `--propagate` sends. Err is one line.
    pub fn from_args(
        otlp: Option<&str>,
        propagate: bool,
    ) -> Result<(Option<Self>, Option<TraceIds>), String> {
        let config = OtlpConfig::resolve(otlp, |k| std::env::var(k).ok())?;
        if config.is_none() && !propagate {
            // Neither asked for: nothing of the exporter runs.
            return Ok((None, None));
        }
        let ids = TraceIds::random();
        let export = config.map(|config| TraceExport {
            config,
            ids,
            unix_offset_ns: clock::unix_offset_ns(),
            start_ns: clock::monotonic_ns(),
        });
        Ok((export, propagate.then_some(ids)))
    }

    /// Posts the run's spans; a failure is one line on stderr, and only
    /// that: the trace was already printed and its exit code stands.
    pub async fn send(&self, trace: &Trace, url: &str) {
        let run = RunSpans {
            ids: self.ids,
            unix_offset_ns: self.unix_offset_ns,
            start_ns: self.start_ns,
            end_ns: clock::monotonic_ns(),
            url,
        };
        let spans = run.spans(trace);
        let count = spans.len();
        let resource = attrs::ProcessResource {
            service_name: self.config.service_name_or("tracer"),
            pid: std::process::id(),
            executable: attrs::own_executable(),
        };
        let body = request(resource.to_resource(), spans).encode_to_vec();
        if let Err(why) = post::post(&self.config, body, DEADLINE).await {
            eprintln!(
                "tracer: otlp: {count} spans not exported to {}: {why}",
                shown_endpoint(&self.config)
            );
        }
    }
}

fn request(
    resource: opentelemetry_proto::tonic::resource::v1::Resource,
    spans: Vec<opentelemetry_proto::tonic::trace::v1::Span>,
) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans {
                scope: Some(scope()),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "tracer".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

/// The endpoint as it may be printed: without a password.
fn shown_endpoint(config: &OtlpConfig) -> String {
    let mut url = config.endpoint.clone();
    if url.password().is_some() {
        let _ = url.set_password(Some("redacted"));
    }
    url.to_string()
}
