//! `attach --stat`: a `stat` line per interval, and the summary's table.
use serde::Serialize;

use super::LineType;

/// `{"endpoints":[..],"interval_ms":1000,"ts_ns":..,"type":"stat"}`: the
/// requests that ended in the interval, by endpoint.
#[derive(Serialize)]
pub struct StatLine<'a> {
    pub endpoints: Vec<EndpointRecord<'a>>,
    pub interval_ms: u64,
    /// CLOCK_MONOTONIC at the interval's end.
    pub ts_ns: u64,
    #[serde(rename = "type")]
    pub line: LineType,
}

#[derive(Serialize)]
pub struct EndpointRecord<'a> {
    pub count: u64,
    /// Method and path template, e.g. `GET /users/{id}`, or `other`.
    pub endpoint: &'a str,
    /// Status >= 500, or no status seen.
    pub errors: u64,
    pub new_connections: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    /// Requests per second.
    pub rate: f64,
    pub reused_connections: u64,
}
