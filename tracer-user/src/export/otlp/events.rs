//! Span events and statuses that `trace` and `attach` write alike.
use opentelemetry_proto::tonic::trace::v1::{Status, span::Event, status::StatusCode};

use super::attrs::{int, text};
use crate::{
    probes::KernelDetail,
    render::kernel_detail,
    timeline::{Evidence, Finding},
};

/// A finding as a span event named by its kind, at `time_unix_nano`, with
/// its text, hint and evidence as `tracer.finding.*`.
pub fn finding_event(f: &Finding, time_unix_nano: u64) -> Event {
    let mut attributes = vec![text("tracer.finding.text", f.text.clone())];
    if !f.hint.is_empty() {
        attributes.push(text("tracer.finding.hint", f.hint.clone()));
    }
    if let Some(cookie) = f.cookie {
        attributes.push(int("tracer.socket.cookie", cookie));
    }
    for (key, value) in &f.evidence {
        let key = format!("tracer.finding.{key}");
        // An unknown value has no attribute: OTLP has no null.
        match value {
            Evidence::Int(n) => attributes.push(int(&key, *n)),
            Evidence::Text(s) => attributes.push(text(&key, s.clone())),
            Evidence::Null => {}
        }
    }
    Event {
        time_unix_nano,
        name: f.kind.as_str().into(),
        attributes,
        ..Default::default()
    }
}

/// A kernel event as a span event: the name as in JSON Lines, the text
/// output's detail.
pub fn kernel_event(k: &KernelDetail, cookie: u64, time_unix_nano: u64) -> Event {
    let mut attributes = vec![text("tracer.source", "kernel")];
    if cookie != 0 {
        attributes.push(int("tracer.socket.cookie", cookie));
    }
    let detail = kernel_detail(k);
    if !detail.is_empty() {
        attributes.push(text("tracer.detail", detail));
    }
    Event {
        time_unix_nano,
        name: k.name().into(),
        attributes,
        ..Default::default()
    }
}

pub fn status_error(message: &str) -> Status {
    Status {
        message: message.to_string(),
        code: StatusCode::Error as i32,
    }
}
