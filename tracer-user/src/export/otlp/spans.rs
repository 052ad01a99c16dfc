//! A `trace` run as spans: a root span for the run, a CLIENT span per
//! request with a child per phase that happened, hooks, kernel events and
//! findings as span events.
use opentelemetry_proto::tonic::{
    common::v1::KeyValue,
    trace::v1::{
        Span,
        span::{Event, SpanKind},
    },
};
use reqwest::Url;

use super::{
    attrs::{flag, int, text},
    events::{finding_event, status_error},
    ids::TraceIds,
    shared::{SAMPLED, peer, phase_span, response, reuse},
};
use crate::{
    render::kernel_detail,
    timeline::{EventBody, Finding, RequestTimeline, Trace, phase_windows},
};

/// What the spans need besides the trace itself.
pub struct RunSpans<'a> {
    pub ids: TraceIds,
    /// CLOCK_REALTIME - CLOCK_MONOTONIC, taken once at start.
    pub unix_offset_ns: u64,
    /// The run's own start and end (CLOCK_MONOTONIC ns).
    pub start_ns: u64,
    pub end_ns: u64,
    /// The URL asked for, secrets redacted.
    pub url: &'a str,
}

impl RunSpans<'_> {
    fn unix(&self, ts_ns: u64) -> u64 {
        ts_ns.saturating_add(self.unix_offset_ns)
    }

    /// The root span first, then each request's span and its phases.
    pub fn spans(&self, trace: &Trace) -> Vec<Span> {
        let first = trace.requests.iter().map(|r| r.info.start_ns).min();
        let last = trace.requests.iter().map(|r| r.info.end_ns).max();
        let start = first.map_or(self.start_ns, |f| f.min(self.start_ns));
        let end = last.map_or(self.end_ns, |l| l.max(self.end_ns));
        let s = &trace.summary;
        let mut attributes = vec![
            text("url.full", self.url),
            int("tracer.requests", s.requests),
            int("tracer.requests.reused", s.reused),
            int("tracer.requests.failed", s.failed),
            text("tracer.verdict", s.verdict.as_str()),
            int("tracer.lost_events", s.lost_events),
        ];
        if let Some(opened) = s.connections_opened {
            attributes.push(int("tracer.connections.opened", opened));
        }
        let unplaced = trace.findings.iter().filter(|f| f.request.is_none());
        let mut root = Span {
            trace_id: self.ids.trace_id.to_vec(),
            span_id: self.ids.root().to_vec(),
            name: "tracer trace".into(),
            kind: SpanKind::Internal as i32,
            start_time_unix_nano: self.unix(start),
            end_time_unix_nano: self.unix(end),
            attributes,
            events: unplaced.map(|f| self.finding(f, end)).collect(),
            status: (s.failed > 0).then(|| status_error("a request failed")),
            ..Default::default()
        };
        root.flags = SAMPLED;
        let mut spans = vec![root];
        for t in &trace.requests {
            spans.push(self.request(t, &trace.findings));
            spans.extend(self.phases(t));
        }
        spans
    }

    fn request(&self, t: &RequestTimeline, findings: &[Finding]) -> Span {
        let info = &t.info;
        let mut events: Vec<Event> = t.events.iter().map(|e| self.event(e)).collect();
        let own = findings.iter().filter(|f| f.request == Some(info.number));
        events.extend(own.map(|f| self.finding(f, info.end_ns)));
        let failure = info
            .error
            .as_deref()
            .map(|e| ("_OTHER".to_string(), e.to_string()))
            .or_else(|| {
                // Client spans: 4xx and 5xx are errors (HTTP conventions).
                let code = info.status.filter(|&c| c >= 400)?;
                Some((code.to_string(), format!("status {code}")))
            });
        Span {
            trace_id: self.ids.trace_id.to_vec(),
            span_id: self.ids.request(info.number).to_vec(),
            parent_span_id: self.ids.root().to_vec(),
            flags: SAMPLED,
            name: info.method.clone(),
            kind: SpanKind::Client as i32,
            start_time_unix_nano: self.unix(info.start_ns),
            end_time_unix_nano: self.unix(info.end_ns.max(info.start_ns)),
            attributes: request_attributes(t, failure.as_ref().map(|f| f.0.as_str())),
            events,
            status: failure.map(|(_, message)| status_error(&message)),
            ..Default::default()
        }
    }

    /// A child per phase that happened, inside its parent's window.
    fn phases(&self, t: &RequestTimeline) -> Vec<Span> {
        let (lo, hi) = (t.info.start_ns, t.info.end_ns.max(t.info.start_ns));
        let n = t.info.number;
        phase_windows(t)
            .named()
            .into_iter()
            .enumerate()
            .filter_map(|(k, (name, window))| {
                let (a, b) = window?;
                Some(phase_span(
                    &self.ids.trace_id,
                    &self.ids.phase(n, k),
                    &self.ids.request(n),
                    name,
                    self.unix(a.clamp(lo, hi)),
                    self.unix(b.clamp(lo, hi)),
                ))
            })
            .collect()
    }

    fn event(&self, e: &crate::timeline::TimelineEvent) -> Event {
        let mut attributes = vec![text("tracer.source", e.source.as_str())];
        if let Some(cookie) = e.cookie {
            attributes.push(int("tracer.socket.cookie", cookie));
        }
        let detail = match &e.body {
            EventBody::Client(h) => h.detail(),
            EventBody::Kernel(k) => kernel_detail(k),
            EventBody::Derived(_) => String::new(),
        };
        if !detail.is_empty() {
            attributes.push(text("tracer.detail", detail));
        }
        if e.derived {
            attributes.push(flag("tracer.derived", true));
        }
        Event {
            time_unix_nano: self.unix(e.ts_ns),
            name: e.name().into(),
            attributes,
            ..Default::default()
        }
    }

    /// A finding has no instant of its own: it is stamped at `at`.
    fn finding(&self, f: &Finding, at: u64) -> Event {
        finding_event(f, self.unix(at))
    }
}

fn request_attributes(t: &RequestTimeline, error_type: Option<&str>) -> Vec<KeyValue> {
    let info = &t.info;
    let mut a = vec![
        text("http.request.method", info.method.clone()),
        text("url.full", info.url.clone()),
        int("tracer.request", info.number),
    ];
    if let Ok(url) = Url::parse(&info.url) {
        if let Some(host) = url.host_str() {
            a.push(text("server.address", host.trim_matches(['[', ']'])));
        }
        if let Some(port) = url.port_or_known_default() {
            a.push(int("server.port", port));
        }
    }
    peer(&mut a, info.remote_addr);
    response(&mut a, t.http_version(), info.status, error_type);
    if let Some(cookie) = t.cookie.or(info.socket_cookie) {
        a.push(int("tracer.socket.cookie", cookie));
    }
    let v = &t.verdict;
    reuse(
        &mut a,
        v.reused,
        v.reused_from.map(u64::from),
        v.kernel_confirmed,
    );
    a
}

#[cfg(test)]
#[path = "spans_tests.rs"]
mod tests;
