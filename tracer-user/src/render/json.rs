//! JSON Lines, the contract in the book (docs/src/output.md): `event`, `request`, `finding`, `summary`.
use super::records::{
    ClientFields, Counts, EventFields, EventLine, EvidenceMap, FindingLine, Headers, KernelFields,
    LineType, PhasesUs, RequestLine, Shown, TraceOnly, TraceRequestLine, TraceSummary, Url,
    write_line,
};
use crate::timeline::{EventBody, Finding, RequestTimeline, TimelineEvent, Trace};

pub fn json_lines(trace: &Trace) -> String {
    let mut out = Vec::with_capacity(4096);
    let mut sockets = Vec::new();
    for t in &trace.requests {
        for e in &t.events {
            write_line(&mut out, &event(t, e));
        }
        write_line(&mut out, &request(t, trace.kernel, &mut sockets));
    }
    for f in &trace.findings {
        write_line(&mut out, &finding(f));
    }
    let s = &trace.summary;
    write_line(
        &mut out,
        &TraceSummary {
            connections: s.connections,
            connections_opened: s.connections_opened,
            connections_unused: s.connections_unused,
            failed: s.failed,
            findings: Counts(&s.findings),
            kernel: trace.kernel,
            lost_events: s.lost_events,
            requests: s.requests,
            reused: s.reused,
            line: LineType::Summary,
            verdict: s.verdict.as_str(),
        },
    );
    String::from_utf8(out).unwrap_or_default()
}

/// `{"type":"finding","kind":..,"request":..,"socket_cookie":..,"evidence":{..},"hint":..}`.
pub fn finding(f: &Finding) -> FindingLine<'_> {
    FindingLine {
        detail: &f.text,
        evidence: EvidenceMap(&f.evidence),
        hint: &f.hint,
        kind: f.kind.as_str(),
        request: f.request,
        socket_cookie: f.cookie,
        line: LineType::Finding,
    }
}

pub fn event<'a>(t: &RequestTimeline, e: &'a TimelineEvent) -> EventLine<'a> {
    EventLine {
        line: LineType::Event,
        source: e.source.as_str(),
        name: e.name(),
        ts_ns: e.ts_ns,
        offset_us: e.ts_ns.saturating_sub(t.info.start_ns) / 1000,
        socket_cookie: e.cookie,
        place: None,
        fields: match &e.body {
            EventBody::Client(h) => EventFields::Client(ClientFields::new(h)),
            EventBody::Kernel(k) => EventFields::Kernel(KernelFields::new(k, e.tid)),
            EventBody::Derived(_) => EventFields::None {},
        },
        derived: e.derived,
        request: Some(t.info.number.into()),
    }
}

/// The request line's core and the client's own fields. `sockets`: the
/// cookies met so far, in order, which number the connections from 1.
pub fn request<'a>(
    t: &'a RequestTimeline,
    kernel: bool,
    sockets: &mut Vec<u64>,
) -> TraceRequestLine<'a> {
    let (i, p) = (&t.info, &t.phases);
    let us = |d: Option<u64>| d.map(|d| d / 1000);
    let connection = t.cookie.map(|c| {
        let at = sockets.iter().position(|&s| s == c).unwrap_or_else(|| {
            sockets.push(c);
            sockets.len() - 1
        });
        at as u64 + 1
    });
    // Unknown, not 0: no kernel, no socket, or an answer with no byte seen
    // (the send/recv tracepoints are missing).
    let (sent, received) = t.kernel_bytes();
    let counted = kernel && t.cookie.is_some() && (i.status.is_none() || received > 0);
    RequestLine {
        bytes_received: counted.then_some(received),
        bytes_sent: counted.then_some(sent),
        connection,
        error: i.error.as_deref(),
        http_version: t.http_version(),
        kernel_confirmed: t.verdict.kernel_confirmed,
        local_addr: i.local_addr,
        method: &i.method,
        phases_us: PhasesUs {
            connect: us(p.connect),
            dns: us(p.dns),
            server: us(p.server),
            tls: us(p.tls),
            total: us(p.total),
            transfer: us(p.transfer),
        },
        remote_addr: i.remote_addr,
        request: i.number.into(),
        reused: t.verdict.reused,
        reused_from: t.verdict.reused_from.map(u64::from),
        socket_cookie: t.cookie,
        status: i.status,
        line: LineType::Request,
        url: Shown(Url {
            host: None,
            target: &i.url,
            https: false,
        }),
        only: TraceOnly {
            body_bytes: i.body_bytes,
            client_reused: i.client_reused,
            disagreement: t.verdict.disagreement.as_deref(),
            headers: Headers(&i.headers),
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::{
        probes::KernelDetail,
        render::records::to_line,
        timeline::{DerivedStep, Source},
    };

    /// The book's example finding line (docs/src/output.md), byte for byte.
    #[test]
    fn a_finding_line_is_the_readmes_example() {
        use crate::timeline::catalogue::{self, AfterClose, Subject};
        let at = Subject {
            request: Some(1),
            cookie: Some(1167),
        };
        let next = AfterClose::Next {
            request: 2,
            new_connection: true,
        };
        let f = catalogue::server_closed_idle(at, 150_308_000, false, next);
        let readme = include_str!("../../../docs/src/output.md");
        let line = to_line(&finding(&f));
        assert!(readme.contains(&format!("`{line}`")), "{line}");
    }

    fn timeline() -> RequestTimeline {
        RequestTimeline {
            info: crate::timeline::RequestInfo {
                number: 3,
                start_ns: 1_000_000,
                ..Default::default()
            },
            cookie: None,
            events: Vec::new(),
            verdict: Default::default(),
            phases: Default::default(),
        }
    }

    fn parsed(t: &RequestTimeline, e: &TimelineEvent) -> Value {
        serde_json::from_str(&to_line(&event(t, e))).unwrap_or_default()
    }

    #[test]
    fn event_lines_carry_their_source_fields() {
        let t = timeline();
        let derived = TimelineEvent {
            ts_ns: 3_500_000,
            source: Source::Kernel,
            cookie: Some(5),
            tid: 0,
            body: EventBody::Derived(DerivedStep::WroteRequest),
            derived: true,
        };
        assert_eq!(
            parsed(&t, &derived),
            json!({"type": "event", "request": 3, "source": "kernel", "name": "WroteRequest",
                "ts_ns": 3_500_000, "offset_us": 2500, "socket_cookie": 5, "derived": true})
        );
        let connect = TimelineEvent {
            body: EventBody::Kernel(KernelDetail::Connect {
                fd: -1,
                ret: -111,
                remote: "127.0.0.1:9".parse().unwrap_or_else(|_| unreachable!()),
                duration_ns: 40,
            }),
            derived: false,
            tid: 8,
            ..derived
        };
        let v = parsed(&t, &connect);
        assert_eq!(v["fd"], Value::Null, "an unknown fd is null");
        assert_eq!(v["ret"], -111);
        assert_eq!(v["remote_addr"], "127.0.0.1:9");
        assert_eq!(v["tid"], 8);
        assert_eq!(v.get("derived"), None, "only derived steps say so");
    }
}
