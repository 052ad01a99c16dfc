//! attach's output: text lines for people (live, flushed), JSON Lines per
//! the contract, or one Chrome trace-event document at the end. Notes for
//! people go to stdout in text mode and to stderr otherwise, so that
//! machine output stays parseable.
use std::{
    cell::RefCell,
    io::{BufWriter, Stdout, Write},
};

use serde_json::{Value, json};

use super::{
    Format,
    conns::{Connection, Effect, Request, Tracker},
    fields::{event_fields, us},
};
use crate::{
    probes::{KernelDetail, KernelEvent},
    render::{FieldSink, JsonLine, count},
};

pub struct Output {
    format: Format,
    pid: u32,
    /// Timestamps are shown relative to this (CLOCK_MONOTONIC ns).
    start_ns: u64,
    chrome: Vec<Value>,
    /// Lines go out once per batch of events ([`Output::flush`]), not one
    /// write(2) each: at high event rates the writes cost more than the rest.
    stdout: RefCell<BufWriter<Stdout>>,
}

impl Output {
    pub fn new(format: Format, pid: u32, start_ns: u64) -> Self {
        Self {
            format,
            pid,
            start_ns,
            chrome: Vec::new(),
            stdout: RefCell::new(BufWriter::with_capacity(64 << 10, std::io::stdout())),
        }
    }

    fn line(&self, to_stdout: bool, text: &str) {
        if to_stdout {
            let _ = writeln!(self.stdout.borrow_mut(), "{text}");
        } else {
            eprintln!("{text}");
        }
    }

    /// Sends what was written so far: after each batch, so text stays live.
    pub fn flush(&self) {
        let _ = self.stdout.borrow_mut().flush();
    }

    /// A message for people, shown at once.
    pub fn note(&self, text: &str) {
        self.line(self.format == Format::Text, text);
        self.flush();
    }

    fn offset_ms(&self, ts: u64) -> f64 {
        ts.saturating_sub(self.start_ns) as f64 / 1e6
    }

    pub fn event(&mut self, ev: &KernelEvent, fx: &Effect, t: &Tracker) {
        let conn = fx.connection.map(|c| &t.connections[c]);
        let req = fx.request.map(|r| &t.requests[r]);
        if matches!(ev.what, KernelDetail::Payload { .. }) {
            if let (Some(r), Some(is_request)) = (req, fx.http_line)
                && self.format == Format::Text
            {
                let what = match (is_request, r.status) {
                    (true, _) => format!(
                        "request {} {} {} {}",
                        r.number, r.method, r.target, r.version
                    ),
                    (false, Some(code)) => format!("response {} status {code}", r.number),
                    (false, None) => return,
                };
                self.text_line(ev, conn, &what);
            }
            return;
        }
        match self.format {
            Format::Text => {
                let detail = crate::render::kernel_detail(&ev.what);
                self.text_line(ev, conn, &format!("{} {detail}", ev.name()));
            }
            Format::Json => {
                let mut line = JsonLine::default();
                event_fields(&mut line, ev, conn, self.start_ns);
                line.put("request", json!(req.map(|r| r.number)));
                self.line(true, &line.finish());
            }
            Format::Chrome => {
                let mut m = serde_json::Map::new();
                event_fields(&mut m, ev, conn, self.start_ns);
                self.chrome.push(json!({
                    "name": ev.name(), "ph": "i", "s": "t", "ts": us(ev.ts_ns),
                    "pid": self.pid, "tid": conn.map_or(0, |c| c.number), "args": m,
                }));
            }
        }
    }

    fn text_line(&self, ev: &KernelEvent, conn: Option<&Connection>, what: &str) {
        let conn = conn.map_or("      ".to_string(), |c| format!("conn {:<2}", c.number));
        let tid = if ev.tid != 0 {
            format!("  tid={}", ev.tid)
        } else {
            String::new()
        };
        let cookie = if ev.cookie != 0 {
            format!("  cookie={}", ev.cookie)
        } else {
            String::new()
        };
        let offset = self.offset_ms(ev.ts_ns);
        self.line(
            true,
            &format!("{offset:>10.3} ms  {conn}  {what}{cookie}{tid}"),
        );
    }

    pub fn request(&mut self, r: &Request, t: &Tracker) {
        let c = &t.connections[r.connection];
        let fb = r.first_byte_ns.map(|f| f.saturating_sub(r.start_ns));
        let end = r.last_byte_ns.unwrap_or(r.start_ns).max(r.start_ns);
        let total = end - r.start_ns;
        let url = match &r.host {
            Some(h) if r.target.starts_with('/') => format!("http://{h}{}", r.target),
            _ => r.target.clone(),
        };
        match self.format {
            Format::Text => {
                let status = r
                    .status
                    .map_or("no status seen".to_string(), |s| s.to_string());
                let how = if r.reused { "reused" } else { "new" };
                let server = fb.map_or("-".to_string(), |f| format!("{:.3} ms", f as f64 / 1e6));
                self.line(true, &format!(
                    "request {}  {} {} -> {status}  conn {} ({how})  first byte {server}  total {:.3} ms  {} B out  {} B in",
                    r.number, r.method, url, c.number, total as f64 / 1e6, r.bytes_sent, r.bytes_received
                ));
            }
            Format::Json => {
                let v = json!({
                    "type": "request", "request": r.number, "method": r.method, "url": url,
                    "status": r.status, "http_version": r.version,
                    "local_addr": c.local.map(|a| a.to_string()),
                    "remote_addr": c.remote.map(|a| a.to_string()),
                    "socket_cookie": r.cookie, "connection": c.number, "pid": self.pid,
                    "reused": r.reused, "kernel_confirmed": true,
                    "direction": if r.outbound { "outbound" } else { "inbound" },
                    "bytes_sent": r.bytes_sent, "bytes_received": r.bytes_received,
                    "phases_us": {
                        "server": fb.map(us),
                        "transfer": fb.map(|f| us(total.saturating_sub(f))),
                        "total": us(total),
                    },
                });
                self.line(true, &v.to_string());
            }
            Format::Chrome => self.chrome.push(json!({
                "name": format!("{} {}", r.method, r.target), "ph": "X", "ts": us(r.start_ns),
                "dur": us(total).max(1), "pid": self.pid, "tid": c.number,
                "args": { "request": r.number, "status": r.status, "reused": r.reused },
            })),
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
        let requests = t.requests.len();
        let reused = t.requests.iter().filter(|r| r.reused).count();
        let connections = t.tcp_connections().count();
        let verdict = match (reused, requests) {
            (0, _) => "new",
            (r, n) if r + 1 >= n && connections <= 1 => "reused",
            _ => "mixed",
        };
        let per_conn: Vec<Value> = t.tcp_connections().map(|c| json!({
            "connection": c.number, "socket_cookie": c.cookie,
            "local_addr": c.local.map(|a| a.to_string()), "remote_addr": c.remote.map(|a| a.to_string()),
            "requests": c.requests, "reused": c.requests > 1, "preexisting": c.preexisting_fd.is_some(),
            "encrypted": c.encrypted, "bytes_sent": c.bytes_sent, "bytes_received": c.bytes_received,
            "closed": c.closed,
        })).collect();
        match self.format {
            Format::Text => {
                self.line(true, &format!(
                    "summary: {} on {}, {reused} reused, {lost} lost events{}; verdict {verdict}",
                    count(requests, "request"),
                    count(connections, "connection"),
                    if by_kind.is_empty() { String::new() } else { format!(" ({by_kind})") },
                ));
                for c in t.tcp_connections() {
                    let addrs = match (c.local, c.remote) {
                        (Some(l), Some(r)) => format!("{l} -> {r}"),
                        (_, Some(r)) => format!("-> {r}"),
                        _ => "addresses unknown".to_string(),
                    };
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
                    self.line(true, &format!(
                        "  conn {}  cookie={}  {addrs}  {} requests, {} B out, {} B in{}{}",
                        c.number, c.cookie, c.requests, c.bytes_sent, c.bytes_received,
                        if notes.is_empty() { "" } else { "  " }, notes.join(", ")
                    ));
                }
            }
            Format::Json => self.line(true, &json!({
                "type": "summary", "pid": self.pid, "requests": requests, "connections": connections,
                "reused": reused, "lost_events": lost, "lost_by_kind": lost_by_kind,
                "verdict": verdict, "ended": ended, "per_connection": per_conn,
            }).to_string()),
            Format::Chrome => {
                let mut events = std::mem::take(&mut self.chrome);
                for c in t.tcp_connections() {
                    let name = format!("conn {} cookie {}", c.number, c.cookie);
                    events.push(json!({"name": "thread_name", "ph": "M", "pid": self.pid,
                        "tid": c.number, "args": {"name": name}}));
                }
                let doc = json!({"traceEvents": events, "otherData": {"summary": {
                    "requests": requests, "connections": connections, "reused": reused,
                    "lost_events": lost, "verdict": verdict, "ended": ended}}});
                self.line(true, &doc.to_string());
            }
        }
    }
}
