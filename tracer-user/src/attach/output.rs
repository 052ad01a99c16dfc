//! attach's output: text lines for people (live, flushed), JSON Lines per
//! the contract, or one Chrome trace-event document at the end. Notes for
//! people go to stdout in text mode and to stderr otherwise, so that
//! machine output stays parseable.
use std::net::SocketAddr;
use std::{fmt, io::Write};

use serde_json::{Value, json};

use super::{
    Format,
    conns::{Connection, Effect, Request, Tracker},
    fields::{event_fields, request_fields, us},
    procs::Processes,
};
use crate::{
    probes::{KernelDetail, KernelEvent},
    render::{self, FieldSink, JsonLine, KernelDetailText, count, finding_line},
    timeline::Finding,
};

/// The line buffer is written out when it grows past this, so that a long
/// batch does not hold everything in memory.
const WRITE_AT: usize = 64 << 10;

pub struct Output {
    format: Format,
    pid: u32,
    /// Timestamps are shown relative to this (CLOCK_MONOTONIC ns).
    start_ns: u64,
    chrome: Vec<Value>,
    /// Lines written since the last [`Output::flush`]: lines are formatted
    /// straight into it, and go out once per batch of events rather than
    /// one write(2) each (at high event rates the writes cost the most).
    buf: Vec<u8>,
    /// Where lines go: stdout, or run's stderr, or `-o FILE`.
    sink: Box<dyn Write + Send>,
    /// The traced processes, for the summary.
    pub procs: Processes,
    /// Name the process in text event and request lines (several traced).
    name_processes: bool,
    /// No send/recv events reach us (their tracepoints are missing): the
    /// summary's requests, reuse and bytes are unknown, not 0.
    pub io_unknown: bool,
    /// Print every kernel event (`--events`); else requests, connections
    /// opening and closing, findings and notes.
    events: bool,
}

impl Output {
    pub fn new(format: Format, pid: u32, start_ns: u64) -> Self {
        Self {
            format,
            pid,
            start_ns,
            chrome: Vec::new(),
            buf: Vec::with_capacity(2 * WRITE_AT),
            sink: Box::new(std::io::stdout()),
            procs: Processes::default(),
            name_processes: false,
            io_unknown: false,
            events: false,
        }
    }

    /// Prints every kernel event (`--events`).
    pub fn events(mut self, on: bool) -> Self {
        self.events = on;
        self
    }

    /// Writes the lines to `sink` instead of stdout.
    pub fn to(mut self, sink: Box<dyn Write + Send>) -> Self {
        self.sink = sink;
        self
    }

    /// Names each line's process: several processes are traced.
    pub fn name_processes(mut self) -> Self {
        self.name_processes = true;
        self
    }

    fn line(&mut self, to_stdout: bool, text: &str) {
        if to_stdout {
            self.buf.extend_from_slice(text.as_bytes());
            self.end_line();
        } else {
            // Lines already buffered go first: run's trace may share stderr.
            self.flush();
            eprintln!("{text}");
        }
    }

    /// Ends the line just written into the buffer.
    fn end_line(&mut self) {
        self.buf.push(b'\n');
        if self.buf.len() >= WRITE_AT {
            self.write_out();
        }
    }

    fn write_out(&mut self) {
        let _ = self.sink.write_all(&self.buf);
        self.buf.clear();
    }

    /// Sends what was written so far: after each batch, so text stays live.
    pub fn flush(&mut self) {
        if !self.buf.is_empty() {
            self.write_out();
        }
        let _ = self.sink.flush();
    }

    /// A message for people, shown at once.
    pub fn note(&mut self, text: &str) {
        self.line(self.format == Format::Text, text);
        self.flush();
    }

    fn offset_ms(&self, ts: u64) -> f64 {
        ts.saturating_sub(self.start_ns) as f64 / 1e6
    }

    pub fn event(&mut self, ev: &KernelEvent, fx: &Effect, t: &Tracker) {
        let conn = fx.connection.map(|c| &t.connections[c]);
        if !self.events {
            if let (Some(c), Some(opened)) = (conn, fx.opened)
                && !c.udp
            {
                self.connection(ev, c, opened);
            }
            return;
        }
        let req = fx.request.and_then(|r| t.request(r));
        if matches!(ev.what, KernelDetail::Payload { .. }) {
            if let (Some(r), Some(is_request)) = (req, fx.http_line)
                && self.format == Format::Text
            {
                match (is_request, r.status) {
                    (true, _) => self.text_line(
                        ev,
                        conn,
                        format_args!(
                            "request {} {} {} {}",
                            r.number, r.method, r.target, r.version
                        ),
                    ),
                    (false, Some(code)) => {
                        self.text_line(
                            ev,
                            conn,
                            format_args!("response {} status {code}", r.number),
                        );
                    }
                    (false, None) => {}
                }
            } else if let (Some(r), Some(code)) = (req, fx.interim)
                && self.format == Format::Text
            {
                let n = r.number;
                self.text_line(
                    ev,
                    conn,
                    format_args!("response {n} status {code} (interim)"),
                );
            }
            return;
        }
        match self.format {
            Format::Text => {
                let detail = KernelDetailText(&ev.what);
                self.text_line(ev, conn, format_args!("{} {detail}", ev.name()));
            }
            Format::Json => {
                let mut line = JsonLine::new(&mut self.buf);
                event_fields(&mut line, ev, conn, self.start_ns);
                line.opt_u64("request", req.map(|r| r.number as u64));
                line.end();
                self.end_line();
            }
            Format::Chrome => {
                let mut m = serde_json::Map::new();
                event_fields(&mut m, ev, conn, self.start_ns);
                self.chrome.push(json!({
                    "name": ev.name(), "ph": "i", "s": "t", "ts": us(ev.ts_ns),
                    "pid": ev.tgid, "tid": conn.map_or(0, |c| c.number), "args": m,
                }));
            }
        }
    }

    /// A connection opening or closing (the default, without `--events`).
    fn connection(&mut self, ev: &KernelEvent, c: &Connection, opened: bool) {
        match self.format {
            Format::Text if opened => {
                let detail = KernelDetailText(&ev.what);
                self.text_line(ev, Some(c), format_args!("{} {detail}", ev.name()));
            }
            Format::Text => self.text_line(
                ev,
                Some(c),
                format_args!(
                    "closed  {} requests, {} B out, {} B in",
                    c.requests, c.bytes_sent, c.bytes_received
                ),
            ),
            Format::Json => {
                let error = match ev.what {
                    KernelDetail::Connect { ret, .. } if ret != 0 => {
                        Some(KernelDetailText(&ev.what).to_string())
                    }
                    _ => None,
                };
                let mut line = json!({
                    "type": "connection", "event": if opened { "open" } else { "close" },
                    "ts_ns": ev.ts_ns, "offset_us": us(ev.ts_ns.saturating_sub(self.start_ns)),
                    "connection": c.number, "socket_cookie": c.cookie, "pid": ev.tgid,
                    "local_addr": c.local.map(|a| a.to_string()),
                    "remote_addr": c.remote.map(|a| a.to_string()),
                });
                if let Some(m) = line.as_object_mut() {
                    if opened {
                        let how = if matches!(ev.what, KernelDetail::Connect { .. }) {
                            "connect"
                        } else {
                            "seen"
                        };
                        m.insert("how".into(), json!(how));
                        if let KernelDetail::Connect { ret, .. } = ev.what {
                            m.insert("ret".into(), json!(ret));
                        }
                        m.insert("error".into(), json!(error));
                    } else {
                        m.insert("requests".into(), json!(c.requests));
                        m.insert("bytes_sent".into(), json!(c.bytes_sent));
                        m.insert("bytes_received".into(), json!(c.bytes_received));
                    }
                }
                self.line(true, &line.to_string());
            }
            Format::Chrome => {}
        }
    }

    fn text_line(&mut self, ev: &KernelEvent, conn: Option<&Connection>, what: fmt::Arguments) {
        let offset = self.offset_ms(ev.ts_ns);
        let b = &mut self.buf;
        let _ = write!(b, "{offset:>10.3} ms  ");
        let _ = match conn {
            Some(c) => write!(b, "conn {:<2}", c.number),
            None => b.write_all(b"      "),
        };
        let _ = write!(b, "  {what}");
        if ev.cookie != 0 {
            let _ = write!(b, "  cookie={}", ev.cookie);
        }
        if ev.tid != 0 {
            let _ = write!(b, "  tid={}", ev.tid);
        }
        if self.name_processes {
            let _ = write!(b, "  pid={}", ev.tgid);
        }
        self.end_line();
    }

    pub fn request(&mut self, r: &Request, t: &Tracker) {
        let c = &t.connections[r.connection];
        match self.format {
            Format::Text => {
                let fb = r.first_byte_ns.map(|f| f.saturating_sub(r.start_ns));
                let end = r.last_byte_ns.unwrap_or(r.start_ns).max(r.start_ns);
                let total = end - r.start_ns;
                let b = &mut self.buf;
                let _ = write!(b, "request {}  {} ", r.number, r.method);
                let _ = match &r.host {
                    Some(h) if r.target.starts_with('/') => write!(b, "http://{h}{}", r.target),
                    _ => b.write_all(r.target.as_bytes()),
                };
                let _ = match r.status {
                    Some(s) => write!(b, " -> {s}"),
                    None => b.write_all(b" -> no status seen"),
                };
                let how = if r.reused { "reused" } else { "new" };
                let _ = write!(b, "  conn {} ({how})  first byte ", c.number);
                let _ = match fb {
                    Some(f) => write!(b, "{:.3} ms", f as f64 / 1e6),
                    None => b.write_all(b"-"),
                };
                let _ = write!(
                    b,
                    "  total {:.3} ms  {} B out  {} B in",
                    total as f64 / 1e6,
                    r.bytes_sent,
                    r.bytes_received
                );
                if self.name_processes {
                    let _ = write!(b, "  pid {}", c.pid);
                }
                self.end_line();
            }
            Format::Json => {
                let mut line = JsonLine::new(&mut self.buf);
                request_fields(&mut line, r, c, if c.pid != 0 { c.pid } else { self.pid });
                line.end();
                self.end_line();
            }
            Format::Chrome => {
                let total = r.last_byte_ns.unwrap_or(r.start_ns).max(r.start_ns) - r.start_ns;
                self.chrome.push(json!({
                    "name": format!("{} {}", r.method, r.target), "ph": "X", "ts": us(r.start_ns),
                    "dur": us(total).max(1), "pid": c.pid, "tid": c.number,
                    "args": { "request": r.number, "status": r.status, "reused": r.reused },
                }));
            }
        }
    }

    pub fn finding(&mut self, f: &Finding) {
        match self.format {
            Format::Text => {
                let line = finding_line(f);
                self.line(true, &line);
            }
            Format::Json => self.line(true, &render::finding_json(f).to_string()),
            Format::Chrome => {}
        }
    }

    /// The end of the run; `lost` is what the kernel could not queue, by
    /// event name (only names that lost any).
    pub fn summary(&mut self, t: &Tracker, lost: &[(&str, u64)], ended: &str) {
        let lost_by_kind: serde_json::Map<String, Value> = lost
            .iter()
            .map(|(k, n)| (k.to_string(), json!(n)))
            .collect();
        let by_kind = lost
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let lost: u64 = lost.iter().map(|(_, n)| n).sum();
        let (findings, found_text) = (t.findings.counts_json(), t.findings.counts_text());
        let (requests, reused) = (t.request_count, t.reused_count);
        let connections = t.connections.tcp_count();
        // A long attach lists the busiest connections, and counts the rest.
        let (listed, unlisted) = t.connections.listed();
        // Messages seen to start where no head was captured: not requests.
        let unparsed = match t.unparsed {
            0 => String::new(),
            n => format!(", {n} unparsed"),
        };
        let verdict = match (reused, requests) {
            _ if self.io_unknown => "unknown",
            (0, _) => "new",
            (r, n) if r + 1 >= n && connections <= 1 => "reused",
            _ => "mixed",
        };
        // Without send/recv events these are unknown: null, never 0.
        let known = |v: Value| if self.io_unknown { Value::Null } else { v };
        let per_conn: Vec<Value> = listed.iter().map(|c| json!({
            "connection": c.number, "socket_cookie": c.cookie,
            "local_addr": c.local.map(|a| a.to_string()), "remote_addr": c.remote.map(|a| a.to_string()),
            "requests": known(json!(c.requests)), "reused": known(json!(c.requests > 1)),
            "preexisting": c.preexisting_fd.is_some(), "encrypted": c.encrypted,
            "bytes_sent": known(json!(c.bytes_sent)), "bytes_received": known(json!(c.bytes_received)),
            "closed": c.closed,
        })).collect();
        match self.format {
            Format::Text if self.io_unknown => {
                // The note at the start said why, once: no send/recv hooks.
                self.line(true, &format!(
                    "summary: {}, requests and bytes unknown (no send/recv events), {lost} lost events{}",
                    count(connections, "connection"),
                    if by_kind.is_empty() { String::new() } else { format!(" ({by_kind})") },
                ));
                for c in &listed {
                    let addrs = conn_addrs(c.local, c.remote);
                    let how = match (c.preexisting_fd, c.closed) {
                        (Some(fd), _) => format!("existed before attach (fd {fd})"),
                        (None, true) => "connected and closed".to_string(),
                        (None, false) => "connected, still open".to_string(),
                    };
                    self.line(
                        true,
                        &format!("  conn {}  cookie={}  {addrs}  {how}", c.number, c.cookie),
                    );
                }
            }
            Format::Text => {
                self.line(true, &format!(
                    "summary: {} on {}, {reused} reused{unparsed}, {lost} lost events{}{found_text}; verdict {verdict}",
                    count(requests, "request"),
                    count(connections, "connection"),
                    if by_kind.is_empty() { String::new() } else { format!(" ({by_kind})") },
                ));
                for c in &listed {
                    let addrs = conn_addrs(c.local, c.remote);
                    let mut notes = Vec::new();
                    if let Some(fd) = c.preexisting_fd {
                        notes.push(format!("existed before attach (fd {fd})"));
                    }
                    if c.requests > 1 {
                        notes.push("reused".to_string());
                    }
                    if c.encrypted {
                        notes.push("encrypted (TLS): timing and bytes only".to_string());
                    }
                    let pid = if self.name_processes {
                        format!("  pid {}", c.pid)
                    } else {
                        String::new()
                    };
                    self.line(true, &format!(
                        "  conn {}  cookie={}  {addrs}  {} requests, {} B out, {} B in{pid}{}{}",
                        c.number, c.cookie, c.requests, c.bytes_sent, c.bytes_received,
                        if notes.is_empty() { "" } else { "  " }, notes.join(", ")
                    ));
                }
                if unlisted > 0 {
                    self.line(
                        true,
                        &format!(
                            "  ... and {} not listed",
                            count(unlisted, "more connection")
                        ),
                    );
                }
                if self.name_processes {
                    for line in self.procs.text_lines(t) {
                        self.line(true, &line);
                    }
                }
            }
            Format::Json => {
                let mut summary = json!({
                    "type": "summary", "pid": self.pid, "requests": known(json!(requests)),
                    "connections": connections, "reused": known(json!(reused)), "lost_events": lost,
                    "unparsed": t.unparsed,
                    "lost_by_kind": lost_by_kind, "verdict": verdict, "ended": ended,
                    "per_connection": per_conn, "connections_unlisted": unlisted, "findings": findings,
                    "pids": self.procs.pids(), "per_process": self.procs.json(t),
                });
                // `pid` names the one traced process; with several, `pids` does.
                if self.procs.len() > 1
                    && let Some(m) = summary.as_object_mut()
                {
                    m.remove("pid");
                }
                self.line(true, &summary.to_string());
            }
            Format::Chrome => {
                let mut events = std::mem::take(&mut self.chrome);
                for c in &listed {
                    let name = format!("conn {} cookie {}", c.number, c.cookie);
                    events.push(json!({"name": "thread_name", "ph": "M", "pid": self.pid,
                        "tid": c.number, "args": {"name": name}}));
                }
                let doc = json!({"traceEvents": events, "otherData": {"summary": {
                    "requests": known(json!(requests)), "connections": connections,
                    "reused": known(json!(reused)), "lost_events": lost, "verdict": verdict, "ended": ended}}});
                self.line(true, &doc.to_string());
            }
        }
    }
}

/// A connection's addresses for the summary lines.
fn conn_addrs(local: Option<SocketAddr>, remote: Option<SocketAddr>) -> String {
    match (local, remote) {
        (Some(l), Some(r)) => format!("{l} -> {r}"),
        (_, Some(r)) => format!("-> {r}"),
        _ => "addresses unknown".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::KernelEvent;

    fn send(ts_ns: u64, tid: u32, cookie: u64) -> KernelEvent {
        KernelEvent {
            ts_ns,
            tgid: 1,
            tid,
            cookie,
            what: KernelDetail::Send {
                bytes: 78,
                protocol: 6,
            },
        }
    }

    /// Text lines, written piece by piece, read as the `format!`s made them.
    #[test]
    fn text_event_lines_keep_their_layout() {
        let mut out = Output::new(Format::Text, 1, 1_000_000).events(true);
        let mut t = Tracker::new(Vec::new());
        for ev in [send(2_234_567, 7, 9), send(3_000_000, 0, 0)] {
            let fx = t.handle(&ev);
            out.event(&ev, &fx, &t);
        }
        assert_eq!(
            String::from_utf8_lossy(&out.buf),
            "     1.235 ms  conn 1   send 78 B  cookie=9  tid=7\n     2.000 ms          send 78 B\n"
        );
    }

    #[test]
    fn json_event_lines_end_with_their_request() {
        let mut out = Output::new(Format::Json, 1, 0).events(true);
        let mut t = Tracker::new(Vec::new());
        let ev = send(5_000, 7, 9);
        let fx = t.handle(&ev);
        out.event(&ev, &fx, &t);
        assert_eq!(
            String::from_utf8_lossy(&out.buf),
            concat!(
                r#"{"type":"event","source":"kernel","name":"send","ts_ns":5000,"offset_us":5,"#,
                r#""socket_cookie":9,"pid":1,"connection":1,"detail":"78 B","tid":7,"bytes":78,"#,
                r#""protocol":"tcp","request":null}"#,
                "\n"
            )
        );
    }
}
