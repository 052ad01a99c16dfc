//! attach's text lines for people: live events and requests, the summary.
use std::{fmt, io::Write};

use super::{
    Output,
    summary::{Figures, conn_addrs},
};
use crate::{
    attach::conns::{Connection, Effect, Request, Tracker},
    probes::KernelEvent,
    render::{KernelDetailText, count},
};

/// `tls 1.3, handshake 2.104 ms, resumed: no` for a TLS connection.
fn tls_text(c: &Connection) -> Option<String> {
    let h = c.handshake.as_deref().filter(|h| h.is_tls())?;
    Some(h.to_string())
}

impl Output {
    fn offset_ms(&self, ts: u64) -> f64 {
        ts.saturating_sub(self.start_ns) as f64 / 1e6
    }

    /// A payload head, shown as the request or response line parsed from it.
    pub(super) fn text_payload(
        &mut self,
        ev: &KernelEvent,
        fx: &Effect,
        conn: Option<&Connection>,
        req: Option<&Request>,
    ) {
        let Some(r) = req else { return };
        if let Some(is_request) = fx.http_line {
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
        } else if let Some(code) = fx.interim {
            let n = r.number;
            self.text_line(
                ev,
                conn,
                format_args!("response {n} status {code} (interim)"),
            );
        }
    }

    /// A connection opening (its connect, or first sight) or closing, with
    /// what it carried.
    pub(super) fn text_connection(&mut self, ev: &KernelEvent, c: &Connection, opened: bool) {
        if opened {
            self.text_event(ev, Some(c));
        } else {
            let (n, out, inn) = (c.requests, c.bytes_sent, c.bytes_received);
            let tls = tls_text(c).map(|t| format!("  {t}")).unwrap_or_default();
            self.text_line(
                ev,
                Some(c),
                format_args!("closed  {n} requests, {out} B out, {inn} B in{tls}"),
            );
        }
    }

    pub(super) fn text_event(&mut self, ev: &KernelEvent, conn: Option<&Connection>) {
        let detail = KernelDetailText(&ev.what);
        self.text_line(ev, conn, format_args!("{} {detail}", ev.name()));
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

    pub(super) fn text_request(&mut self, r: &Request, c: &Connection) {
        let phases = r.phases();
        let (fb, total) = (phases.server, phases.total.unwrap_or(0));
        let b = &mut self.buf;
        let _ = write!(b, "request {}  {} ", r.number, r.method);
        let _ = match &r.host {
            Some(h) if r.target.starts_with('/') => {
                let scheme = if c.plaintext { "https" } else { "http" };
                write!(b, "{scheme}://{h}{}", r.target)
            }
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

    pub(super) fn text_summary(&mut self, t: &Tracker, f: &Figures) {
        let by_kind = match f.lost_by_kind_text() {
            k if k.is_empty() => k,
            k => format!(" ({k})"),
        };
        let (lost, connections) = (f.lost_total, f.connections);
        let (Some(requests), Some(reused)) = (f.requests, f.reused) else {
            // The note at the start said why, once: no send/recv hooks.
            self.line(true, &format!(
                "summary: {}, requests and bytes unknown (no send/recv events), {lost} lost events{by_kind}",
                count(connections, "connection"),
            ));
            for c in &f.listed {
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
            return;
        };
        // Messages seen to start where no head was captured: not requests.
        let unparsed = match t.unparsed {
            0 => String::new(),
            n => format!(", {n} unparsed"),
        };
        let found_text = t.findings.counts_text();
        self.line(true, &format!(
            "summary: {} on {}, {reused} reused{unparsed}, {lost} lost events{by_kind}{found_text}; verdict {}",
            count(requests, "request"),
            count(connections, "connection"),
            f.verdict,
        ));
        // With --stat the endpoint table follows: a busy process's
        // connections, a line each, would bury it.
        let per_connection = if self.stat.is_some() { 0 } else { usize::MAX };
        for c in f.listed.iter().take(per_connection) {
            let addrs = conn_addrs(c.local, c.remote);
            let mut notes = Vec::new();
            if let Some(fd) = c.preexisting_fd {
                notes.push(format!("existed before attach (fd {fd})"));
            }
            if c.requests > 1 {
                notes.push("reused".to_string());
            }
            if c.plaintext {
                notes.push("TLS: requests from the TLS library's plaintext".to_string());
            } else if c.encrypted && self.plaintext_off {
                notes.push("encrypted: TLS plaintext probes off".to_string());
            } else if c.encrypted {
                notes.push("encrypted: no probe for this TLS library".to_string());
            }
            notes.extend(tls_text(c));
            let pid = if self.name_processes {
                format!("  pid {}", c.pid)
            } else {
                String::new()
            };
            self.line(
                true,
                &format!(
                    "  conn {}  cookie={}  {addrs}  {} requests, {} B out, {} B in{pid}{}{}",
                    c.number,
                    c.cookie,
                    c.requests,
                    c.bytes_sent,
                    c.bytes_received,
                    if notes.is_empty() { "" } else { "  " },
                    notes.join(", ")
                ),
            );
        }
        if f.unlisted > 0 && self.stat.is_none() {
            let more = count(f.unlisted, "more connection");
            self.line(true, &format!("  ... and {more} not listed"));
        }
        if self.name_processes {
            for line in self.procs.text_lines(t) {
                self.line(true, &line);
            }
        }
    }
}
