//! attach's JSON Lines: the contract's records, filled from the tracker.
use super::summary::Figures;
use crate::{
    attach::{
        conns::{Connection, Request, Tracker},
        procs::Processes,
    },
    probes::{KernelDetail, KernelEvent},
    render::{
        KernelDetailText,
        records::{
            AttachOnly, AttachRequestLine, AttachSummary, ConnectionLine, ConnectionRecord, Counts,
            EventFields, EventLine, KernelFields, LineType, PhasesUs, Place, RequestLine, Shown,
            TlsRecord, Url,
        },
    },
};

pub(super) fn us(ns: u64) -> u64 {
    ns / 1000
}

/// The contract's `event` line for a kernel event.
pub(super) fn event_line<'a>(
    ev: &'a KernelEvent,
    conn: Option<&Connection>,
    req: Option<&Request>,
    start_ns: u64,
) -> EventLine<'a> {
    EventLine {
        line: LineType::Event,
        source: "kernel",
        name: ev.name(),
        ts_ns: ev.ts_ns,
        offset_us: us(ev.ts_ns.saturating_sub(start_ns)),
        socket_cookie: (ev.cookie != 0).then_some(ev.cookie),
        place: Some(Place {
            pid: ev.tgid,
            connection: conn.map(|c| c.number as u64),
        }),
        fields: EventFields::Kernel(KernelFields::new(&ev.what, ev.tid)),
        derived: false,
        request: req.map(|r| r.number as u64),
    }
}

/// A connection seen to open or close (attach without `--events`).
pub(super) fn connection_line<'a>(
    ev: &KernelEvent,
    c: &Connection,
    opened: bool,
    start_ns: u64,
) -> ConnectionLine<'a> {
    let connect = match ev.what {
        KernelDetail::Connect { ret, .. } => Some(ret),
        _ => None,
    };
    ConnectionLine {
        line: LineType::Connection,
        event: if opened { "open" } else { "close" },
        ts_ns: ev.ts_ns,
        offset_us: us(ev.ts_ns.saturating_sub(start_ns)),
        connection: c.number as u64,
        socket_cookie: c.cookie,
        pid: ev.tgid,
        local_addr: c.local,
        remote_addr: c.remote,
        how: opened.then_some(if connect.is_some() { "connect" } else { "seen" }),
        ret: connect.filter(|_| opened),
        error: opened.then(|| {
            connect
                .filter(|&r| r != 0)
                .map(|_| KernelDetailText(&ev.what).to_string())
        }),
        requests: (!opened).then_some(c.requests),
        bytes_sent: (!opened).then_some(c.bytes_sent),
        bytes_received: (!opened).then_some(c.bytes_received),
        tls: (!opened).then(|| tls_record(c)),
    }
}

/// The TLS handshake of `c`, when it is a TLS connection.
pub(super) fn tls_record(c: &Connection) -> Option<TlsRecord> {
    let h = c.handshake.as_deref().filter(|h| h.is_tls())?;
    let ms = |ns: u64| (ns / 1000) as f64 / 1000.0;
    Some(TlsRecord {
        handshake_ms: h.handshake_ns().map(ms),
        resumed: h.resumed_word(),
        role: if h.client { "client" } else { "server" },
        server_flight_ms: h.server_flight_ns().map(ms),
        version: h.version_name(),
    })
}

/// A reconstructed request: the core every command writes, and its pid
/// and direction. attach has no DNS or TLS hooks, and no client to fail.
pub(super) fn request_line<'a>(r: &'a Request, c: &Connection, pid: u32) -> AttachRequestLine<'a> {
    let p = r.phases();
    RequestLine {
        bytes_received: Some(r.bytes_received),
        bytes_sent: Some(r.bytes_sent),
        connection: Some(c.number as u64),
        error: None,
        http_version: Some(&r.version),
        kernel_confirmed: true,
        local_addr: c.local,
        method: r.method,
        phases_us: PhasesUs {
            connect: p.connect.map(us),
            dns: None,
            server: p.server.map(us),
            tls: None,
            total: p.total.map(us),
            transfer: p.transfer.map(us),
        },
        remote_addr: c.remote,
        request: r.number as u64,
        reused: r.reused,
        reused_from: r.reused_from.map(|n| n as u64),
        socket_cookie: Some(r.cookie),
        status: r.status,
        line: LineType::Request,
        url: Shown(Url {
            host: r.host.as_deref(),
            target: &r.target,
            https: c.plaintext,
        }),
        only: AttachOnly {
            direction: if r.outbound { "outbound" } else { "inbound" },
            pid,
        },
    }
}

pub(super) fn summary_line<'a>(
    t: &'a Tracker,
    f: &'a Figures,
    procs: &'a Processes,
    pid: u32,
) -> AttachSummary<'a> {
    // Without send/recv events these are unknown: null, never 0.
    let known = f.requests.is_some();
    let per_connection = f
        .listed
        .iter()
        .map(|c| ConnectionRecord {
            bytes_received: known.then_some(c.bytes_received),
            bytes_sent: known.then_some(c.bytes_sent),
            closed: c.closed,
            connection: c.number,
            encrypted: c.encrypted,
            plaintext: c.plaintext,
            local_addr: c.local,
            preexisting: c.preexisting_fd.is_some(),
            remote_addr: c.remote,
            requests: known.then_some(c.requests),
            reused: known.then_some(c.requests > 1),
            socket_cookie: c.cookie,
            tls: tls_record(c),
        })
        .collect();
    AttachSummary {
        connections: f.connections,
        connections_unlisted: f.unlisted,
        ended: f.ended,
        findings: Counts(t.findings.counts()),
        lost_by_kind: Counts(f.lost),
        lost_events: f.lost_total,
        otlp_dropped: None,
        otlp_exported: None,
        per_connection,
        per_process: procs.records(t),
        // `pid` names the one traced process; with several, `pids` does.
        pid: (procs.len() <= 1).then_some(pid),
        pids: procs.pids(),
        requests: f.requests,
        reused: f.reused,
        stat: None,
        line: LineType::Summary,
        unparsed: t.unparsed,
        verdict: f.verdict,
    }
}
