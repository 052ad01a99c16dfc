//! `attach --stat`: the requests of a busy process counted per endpoint,
//! each second and over the whole run: count, rate, p50/p99 of the total
//! time, errors (status >= 500, or none seen), new and reused connections.
//! An endpoint is the method and the path's template: numeric, UUID and
//! long hex (>= 16 hex digits) segments become `{id}`, the query is
//! dropped. A process that puts ids elsewhere would make endpoints without
//! end, so after [`MAX_TEMPLATES`] the rest count as `other`.
use std::{collections::HashMap, time::Instant};

use super::conns::Request;

pub const MAX_TEMPLATES: usize = 1000;
pub const OTHER: &str = "other";

/// "GET /users/{id}" for `GET /users/42?page=2`.
pub fn endpoint(method: &str, target: &str) -> String {
    let mut path = target;
    // Absolute-form (a request to a proxy): the path only.
    if let Some(rest) = path
        .strip_prefix("http://")
        .or_else(|| path.strip_prefix("https://"))
    {
        path = rest.find('/').map_or("/", |i| &rest[i..]);
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut out = String::with_capacity(method.len() + 1 + path.len());
    out.push_str(method);
    out.push(' ');
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(if is_id(segment) { "{id}" } else { segment });
    }
    out
}

fn is_id(segment: &str) -> bool {
    let b = segment.as_bytes();
    let hex = |c: &u8| c.is_ascii_hexdigit();
    let uuid = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => hex(c),
        });
    (!b.is_empty() && b.iter().all(u8::is_ascii_digit))
        || uuid
        || (b.len() >= 16 && b.iter().all(hex))
}

/// Total times in ns, in buckets 1/16 of a power of two wide: p50 and p99
/// within about 3%, in a few hundred bytes however many requests.
#[derive(Clone, Debug, Default)]
struct Histogram {
    counts: Vec<u32>,
}

impl Histogram {
    fn index(v: u64) -> usize {
        if v < 16 {
            return v as usize;
        }
        let shift = 63 - v.leading_zeros() - 4;
        (shift * 16) as usize + (v >> shift) as usize
    }

    /// The middle of bucket `i`.
    fn value(i: usize) -> u64 {
        if i < 32 {
            return i as u64;
        }
        let (shift, mantissa) = (i / 16 - 1, (i % 16 + 16) as u64);
        (mantissa << shift) + (1 << shift) / 2
    }

    fn add(&mut self, v: u64) {
        let i = Self::index(v);
        if self.counts.len() <= i {
            self.counts.resize(i + 1, 0);
        }
        self.counts[i] += 1;
    }

    /// The `q` quantile (0 < q <= 1) of `n` values.
    fn quantile(&self, q: f64, n: u64) -> u64 {
        let rank = ((q * n as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Self::value(i);
            }
        }
        0
    }
}

#[derive(Clone, Debug, Default)]
struct Endpoint {
    count: u64,
    errors: u64,
    new: u64,
    reused: u64,
    total_ns: Histogram,
}

/// One endpoint's row of a table.
#[derive(Clone, Debug, PartialEq)]
pub struct Row<'a> {
    pub endpoint: &'a str,
    pub count: u64,
    /// Requests per second over the table's time.
    pub rate: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub errors: u64,
    pub new_connections: u64,
    pub reused_connections: u64,
}

#[derive(Debug)]
struct Window {
    by_endpoint: HashMap<String, Endpoint>,
    since: Instant,
}

impl Window {
    fn new(now: Instant) -> Self {
        Self {
            by_endpoint: HashMap::new(),
            since: now,
        }
    }

    fn rows(&self, now: Instant) -> Vec<Row<'_>> {
        // At least a millisecond: a rate over no time is not a number.
        let secs = now.duration_since(self.since).as_secs_f64().max(1e-3);
        let mut rows: Vec<Row> = self
            .by_endpoint
            .iter()
            .map(|(name, e)| Row {
                endpoint: name,
                count: e.count,
                rate: e.count as f64 / secs,
                p50_us: e.total_ns.quantile(0.5, e.count) / 1000,
                p99_us: e.total_ns.quantile(0.99, e.count) / 1000,
                errors: e.errors,
                new_connections: e.new,
                reused_connections: e.reused,
            })
            .collect();
        rows.sort_by(|a, b| b.count.cmp(&a.count).then(a.endpoint.cmp(b.endpoint)));
        rows
    }
}

/// The counts of the current second and of the whole run.
#[derive(Debug)]
pub struct Stats {
    interval: Window,
    run: Window,
    /// Templates seen, `other` not counted.
    templates: usize,
}

impl Stats {
    pub fn new(now: Instant) -> Self {
        Self {
            interval: Window::new(now),
            run: Window::new(now),
            templates: 0,
        }
    }

    pub fn add(&mut self, r: &Request) {
        let mut name = endpoint(r.method, &r.target);
        if !self.run.by_endpoint.contains_key(&name) {
            if self.templates >= MAX_TEMPLATES {
                name = OTHER.to_string();
            } else {
                self.templates += 1;
            }
        }
        let total = r.phases().total.unwrap_or(0);
        let error = r.status.is_none_or(|s| s >= 500);
        for window in [&mut self.interval, &mut self.run] {
            let e = window.by_endpoint.entry(name.clone()).or_default();
            e.count += 1;
            e.errors += u64::from(error);
            if r.reused {
                e.reused += 1;
            } else {
                e.new += 1;
            }
            e.total_ns.add(total);
        }
    }

    /// A second or more has passed since the interval began.
    pub fn due(&self, now: Instant) -> bool {
        now.duration_since(self.interval.since).as_secs() >= 1
    }

    /// The interval's requests, if any; `f` gets its rows and length in
    /// ms, and the next interval begins.
    pub fn take_interval<T>(
        &mut self,
        now: Instant,
        f: impl FnOnce(&[Row], u64) -> T,
    ) -> Option<T> {
        let window = std::mem::replace(&mut self.interval, Window::new(now));
        if window.by_endpoint.is_empty() {
            return None;
        }
        let ms = now.duration_since(window.since).as_millis() as u64;
        Some(f(&window.rows(now), ms))
    }

    /// The whole run's rows.
    pub fn run_rows(&self, now: Instant) -> Vec<Row<'_>> {
        self.run.rows(now)
    }
}

#[cfg(test)]
mod tests;
