//! attach's output: text lines for people (live, flushed), JSON Lines per
//! the contract, or one Chrome trace-event document at the end. Notes for
//! people go to stdout in text mode and to stderr otherwise, so that
//! machine output stays parseable.
use std::{io::Write, time::Instant};

use super::{
    Format,
    conns::{Connection, Effect, Request, Tracker},
    procs::Processes,
    stat::Stats,
};
use crate::{
    probes::{KernelDetail, KernelEvent},
    render::{ChromeTrace, finding_line, records::write_line},
    timeline::Finding,
};

mod chrome;
mod json;
mod otlp;
mod stat;
mod summary;
mod text;

/// The line buffer is written out when it grows past this, so that a long
/// batch does not hold everything in memory.
const WRITE_AT: usize = 64 << 10;

pub struct Output {
    format: Format,
    pid: u32,
    /// Timestamps are shown relative to this (CLOCK_MONOTONIC ns).
    start_ns: u64,
    /// `--format chrome`: the document, written out at the end.
    chrome: ChromeTrace,
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
    /// `--tls-plaintext off`: an encrypted connection says the probes are
    /// off, not that its TLS library has none.
    pub plaintext_off: bool,
    /// `--stat`: requests are counted per endpoint, not written one by one.
    stat: Option<Stats>,
    /// `--events`: every kernel event is written; else only connections
    /// opening and closing (with requests, findings and notes).
    events: bool,
    /// `--otlp`: each request also goes out as a span.
    otlp: Option<otlp::AttachOtlp>,
}

impl Output {
    pub fn new(format: Format, pid: u32, start_ns: u64) -> Self {
        Self {
            format,
            pid,
            start_ns,
            chrome: ChromeTrace::default(),
            buf: Vec::with_capacity(2 * WRITE_AT),
            sink: Box::new(std::io::stdout()),
            procs: Processes::default(),
            name_processes: false,
            io_unknown: false,
            plaintext_off: false,
            stat: None,
            events: false,
            otlp: None,
        }
    }

    /// Sends each request as a span through `queue` (`--otlp`).
    pub fn otlp(mut self, queue: Option<crate::export::otlp::SpanQueue>) -> Self {
        self.otlp = queue.map(otlp::AttachOtlp::new);
        self
    }

    /// Gives the span exporter its last chance (2 s at most), so that the
    /// summary can say how many spans were dropped.
    pub async fn finish_export(&mut self) {
        if let Some(o) = &mut self.otlp {
            o.finish().await;
        }
    }

    /// Writes every kernel event (`--events`).
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
        self.line_written();
    }

    /// A whole line, newline included, is in the buffer.
    fn line_written(&mut self) {
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
        self.stat_tick(false);
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

    /// Gives the event to the span exporter (`--otlp`), before the requests
    /// it ended are written.
    pub fn export(&mut self, ev: &KernelEvent, fx: &Effect, t: &Tracker) {
        if let Some(o) = &mut self.otlp {
            o.event(ev, fx, t);
        }
    }

    /// The event's line, if any: every event with `--events`, else a
    /// connection opening or closing.
    pub fn event(&mut self, ev: &KernelEvent, fx: &Effect, t: &Tracker) {
        if self.stat.is_some() {
            return;
        }
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
        if matches!(
            ev.what,
            KernelDetail::Payload { .. } | KernelDetail::Plaintext { .. }
        ) {
            // A payload head is shown only as what it was parsed into.
            if self.format == Format::Text {
                self.text_payload(ev, fx, conn, req);
            }
            return;
        }
        match self.format {
            Format::Text => self.text_event(ev, conn),
            Format::Json => {
                // The one line per kernel event: written by hand (see write_fast).
                json::event_line(ev, conn, req, self.start_ns).write_fast(&mut self.buf);
                self.line_written();
            }
            Format::Chrome => {
                let line = json::event_line(ev, conn, req, self.start_ns);
                self.chrome.push(&chrome::instant(ev, conn, line));
            }
        }
    }

    /// A connection seen to open or close (without `--events`).
    fn connection(&mut self, ev: &KernelEvent, c: &Connection, opened: bool) {
        match self.format {
            Format::Text => self.text_connection(ev, c, opened),
            Format::Json => {
                write_line(
                    &mut self.buf,
                    &json::connection_line(ev, c, opened, self.start_ns),
                );
                self.line_written();
            }
            Format::Chrome => {}
        }
    }

    pub fn request(&mut self, r: &Request, t: &Tracker) {
        let pid_of = |c: &Connection| if c.pid != 0 { c.pid } else { self.pid };
        if let Some(o) = &mut self.otlp {
            o.request(r, t, pid_of(&t.connections[r.connection]));
        }
        if let Some(stat) = &mut self.stat {
            stat.add(r);
            return;
        }
        let c = &t.connections[r.connection];
        let pid = pid_of(c);
        match self.format {
            Format::Text => self.text_request(r, c),
            Format::Json => {
                // The one line per request: written by hand (see write_fast).
                json::request_line(r, c, pid).write_fast(&mut self.buf);
                self.line_written();
            }
            Format::Chrome => self.chrome.push(&chrome::span(r, c)),
        }
    }

    /// Findings just made (at `ts_ns`), before the requests that `finished`
    /// are written: the spans carry them (`--otlp`).
    pub fn place_findings(
        &mut self,
        found: &[Finding],
        ts_ns: u64,
        finished: &[usize],
        t: &Tracker,
    ) {
        if let Some(o) = &mut self.otlp {
            o.findings(found, ts_ns, finished, t);
        }
    }

    pub fn finding(&mut self, f: &Finding) {
        match self.format {
            Format::Text => {
                let line = finding_line(f);
                self.line(true, &line);
            }
            Format::Json => {
                write_line(&mut self.buf, &crate::render::finding_json(f));
                self.line_written();
            }
            Format::Chrome => {}
        }
    }

    /// The end of the run; `lost` is what the kernel could not queue, by
    /// event name (only names that lost any).
    pub fn summary(&mut self, t: &Tracker, lost: &[(&str, u64)], ended: &str) {
        let figures = summary::Figures::new(t, lost, ended, self.io_unknown);
        // The last interval, however short, so that the lines add up.
        self.stat_tick(true);
        match self.format {
            Format::Text => {
                self.text_summary(t, &figures);
                if let Some((exported, dropped)) = self.otlp.as_ref().and_then(|o| o.counts) {
                    self.line(
                        true,
                        &format!("otlp: {exported} spans exported, {dropped} dropped"),
                    );
                }
                if let Some(rows) = self.stat_run() {
                    let mut table = b"endpoints over the whole run:\n".to_vec();
                    stat::write_table(&mut table, &rows);
                    self.buf.extend_from_slice(&table);
                    self.line_written();
                }
            }
            Format::Json => {
                let rows = self.stat.as_ref().map(|s| s.run_rows(Instant::now()));
                let mut line = json::summary_line(t, &figures, &self.procs, self.pid);
                line.stat = rows.as_deref().map(stat::records);
                let counts = self.otlp.as_ref().and_then(|o| o.counts);
                line.otlp_exported = counts.map(|c| c.0);
                line.otlp_dropped = counts.map(|c| c.1);
                write_line(&mut self.buf, &line);
                self.line_written();
            }
            Format::Chrome => {
                let doc = std::mem::take(&mut self.chrome);
                let doc = chrome::finish(doc, &figures, self.pid);
                self.buf.extend_from_slice(&doc);
                self.line_written();
            }
        }
    }
}

#[cfg(test)]
mod tests;
