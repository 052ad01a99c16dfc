//! `tracer trace` options, and their checks: a bad value is one line naming
//! what is wrong and what to do, exit 2.
use std::{path::PathBuf, time::Duration};

use clap::{Args, ValueEnum};

use crate::{
    client::{ClientOptions, HttpVersionPref, RequestSpec},
    render::Format,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Expect {
    /// Every request after the first rode an earlier request's connection.
    Reuse,
    /// Every request opened its own connection.
    New,
}

impl Expect {
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Reuse => "reuse",
            Expect::New => "new",
        }
    }
}

const MAX_COUNT: u32 = 100_000;
const MAX_INTERVAL_MS: u64 = 3_600_000;
const MAX_TIMEOUT_S: f64 = 3600.0;

#[derive(Args, Debug, Clone)]
pub struct TraceArgs {
    /// The URL to request (http:// or https://).
    pub url: String,
    /// How many requests to make, one after another.
    #[arg(short = 'n', long = "count", default_value_t = 1)]
    pub count: u32,
    /// Pause between requests, in milliseconds.
    #[arg(long, value_name = "MS", default_value_t = 0)]
    pub interval: u64,
    /// HTTP method.
    #[arg(
        short = 'X',
        long = "request",
        value_name = "METHOD",
        default_value = "GET"
    )]
    pub method: String,
    /// Extra request header, 'Name: value'; repeatable.
    #[arg(short = 'H', long = "header", value_name = "K: V")]
    pub headers: Vec<String>,
    /// Request body.
    #[arg(short = 'd', long = "data", value_name = "DATA")]
    pub data: Option<String>,
    /// Speak HTTP/1.1 only.
    #[arg(long = "http1.1", conflicts_with = "http2")]
    pub http1: bool,
    /// Speak HTTP/2 (prior knowledge for http://).
    #[arg(long = "http2")]
    pub http2: bool,
    /// Accept any server certificate.
    #[arg(long)]
    pub insecure: bool,
    /// Trust the CA certificates in this PEM file.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Give up on a request after this many seconds.
    #[arg(
        long,
        value_name = "S",
        default_value_t = 30.0,
        allow_negative_numbers = true
    )]
    pub timeout: f64,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Write the trace to FILE instead of stdout.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Exit 3 unless connections were reused (or new) as expected.
    #[arg(long, value_enum)]
    pub expect: Option<Expect>,
    /// Client hooks only: no eBPF, no privilege needed.
    #[arg(long)]
    pub no_ebpf: bool,
    /// Print the values of Authorization, Proxy-Authorization, Cookie and
    /// Set-Cookie headers and a URL's password (redacted by default).
    #[arg(long)]
    pub show_secrets: bool,
    /// Export the run as OpenTelemetry spans: POST OTLP/HTTP protobuf to
    /// ENDPOINT/v1/traces (else OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT).
    #[arg(long, value_name = "ENDPOINT")]
    pub otlp: Option<String>,
    /// Send a W3C traceparent header naming each request's span, so the
    /// server's spans join the exported trace.
    #[arg(long)]
    pub propagate: bool,
    /// Bytes of all ring buffers together (testing the lost-event path).
    #[arg(long, hide = true)]
    pub ring_bytes: Option<u32>,
}

impl TraceArgs {
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval)
    }

    /// Checks every option and builds the request; Err is a one-line message.
    pub fn to_request(&self) -> Result<(RequestSpec, ClientOptions), String> {
        let url = reqwest::Url::parse(&self.url).map_err(|e| {
            format!(
                "invalid URL '{}': {e}; give a full URL such as http://127.0.0.1:8080/",
                self.url
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "unsupported scheme '{}' in '{}': use http:// or https://",
                url.scheme(),
                self.url
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("URL '{}' has no host", self.url));
        }
        if self.count == 0 || self.count > MAX_COUNT {
            return Err(format!(
                "-n {} is out of range: give 1 to {MAX_COUNT} requests",
                self.count
            ));
        }
        if self.interval > MAX_INTERVAL_MS {
            return Err(format!(
                "--interval {} ms is more than an hour: give 0 to {MAX_INTERVAL_MS}",
                self.interval
            ));
        }
        if !(self.timeout.is_finite() && self.timeout > 0.0 && self.timeout <= MAX_TIMEOUT_S) {
            return Err(format!(
                "--timeout {} is out of range: give seconds above 0, at most {MAX_TIMEOUT_S}",
                self.timeout
            ));
        }
        if self.expect == Some(Expect::Reuse) && self.count < 2 {
            return Err("--expect reuse needs at least two requests: add -n 2 or more".into());
        }
        let method = reqwest::Method::from_bytes(self.method.as_bytes()).map_err(|_| {
            format!(
                "invalid method '{}': give a token such as GET or POST",
                self.method
            )
        })?;
        let headers = self
            .headers
            .iter()
            .map(|h| parse_header(h))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(path) = &self.cacert {
            std::fs::metadata(path)
                .map_err(|e| format!("cannot read --cacert {}: {e}", path.display()))?;
        }
        let https = url.scheme() == "https";
        let spec = RequestSpec {
            method,
            url,
            headers,
            body: self.data.as_ref().map(|d| d.clone().into_bytes()),
        };
        let http = match (self.http1, self.http2) {
            (true, _) => HttpVersionPref::Http1Only,
            (_, true) => HttpVersionPref::Http2PriorKnowledge,
            _ => HttpVersionPref::Auto,
        };
        let opts = ClientOptions {
            http,
            insecure: self.insecure,
            cacert: self.cacert.clone(),
            timeout: Duration::from_secs_f64(self.timeout),
            preload_roots: https,
        };
        Ok((spec, opts))
    }
}

fn parse_header(h: &str) -> Result<(String, String), String> {
    let (name, value) = h
        .split_once(':')
        .ok_or_else(|| format!("header '{h}' has no colon: write it as -H 'Name: value'"))?;
    let name = name.trim();
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "header '{h}' has an invalid name: write it as -H 'Name: value'"
        ));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::cli::{Cli, Command};

    fn check(args: &[&str]) -> Result<(), String> {
        let mut full = vec!["tracer", "trace"];
        full.extend_from_slice(args);
        let Command::Trace(t) = Cli::try_parse_from(full)
            .map_err(|e| e.to_string())?
            .command
        else {
            unreachable!("parsed as trace")
        };
        t.to_request().map(|_| ())
    }

    #[test]
    fn bad_input_gets_one_line_naming_it() {
        for (args, needle) in [
            (&["not a url"][..], "invalid URL"),
            (&["ftp://127.0.0.1/"], "unsupported scheme 'ftp'"),
            (&["http://127.0.0.1/", "-H", "NoColon"], "has no colon"),
            (&["http://127.0.0.1/", "-n", "0"], "-n 0 is out of range"),
            (
                &["http://127.0.0.1/", "--interval", "99999999999"],
                "--interval",
            ),
            (&["http://127.0.0.1/", "--timeout", "-1"], "--timeout"),
            (&["http://127.0.0.1/", "--timeout", "NaN"], "--timeout"),
            (
                &["http://127.0.0.1/", "--cacert", "/nonexistent/ca.pem"],
                "cannot read --cacert",
            ),
            (
                &["http://127.0.0.1/", "--expect", "reuse"],
                "at least two requests",
            ),
        ] {
            let err = check(args).expect_err(needle);
            assert!(err.contains(needle), "{args:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err}");
        }
        assert!(check(&["http://127.0.0.1:8080/", "-n", "3", "-H", "X-A: b"]).is_ok());
    }
}
