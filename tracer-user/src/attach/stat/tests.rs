use std::time::{Duration, Instant};

use super::*;

#[test]
fn ids_become_templates_and_the_query_goes() {
    let cases = [
        ("/users/42?page=2", "GET /users/{id}"),
        ("/users/42/orders/7#x", "GET /users/{id}/orders/{id}"),
        (
            "/items/123e4567-e89b-12d3-a456-426614174000",
            "GET /items/{id}",
        ),
        ("/blob/0123456789abcdefABCD", "GET /blob/{id}"),
        // Short hex is a word (`cafe`), not an id; so is a version.
        ("/blob/cafe/v2", "GET /blob/cafe/v2"),
        ("/", "GET /"),
        ("http://example.com/a/9?b", "GET /a/{id}"),
        ("http://example.com", "GET /"),
    ];
    for (target, want) in cases {
        assert_eq!(endpoint("GET", target), want, "{target}");
    }
}

fn request(target: &str, status: Option<u16>, reused: bool, total_us: u64) -> Request {
    Request {
        number: 1,
        connection: 0,
        cookie: 1,
        method: "GET",
        target: target.to_string(),
        host: None,
        version: "HTTP/1.1".into(),
        outbound: true,
        status,
        interim: None,
        start_ns: 1_000,
        request_end_ns: None,
        first_byte_ns: None,
        last_byte_ns: Some(1_000 + total_us * 1000),
        bytes_sent: 0,
        bytes_received: 0,
        reused,
        reused_from: None,
        connect_ns: None,
    }
}

#[test]
fn rows_count_errors_connections_and_percentiles() {
    let t0 = Instant::now();
    let mut s = Stats::new(t0);
    for i in 1..=100 {
        let status = match i {
            1 => None,
            2 => Some(503),
            _ => Some(200),
        };
        s.add(&request(&format!("/u/{i}"), status, i > 1, i * 10));
    }
    s.add(&request("/health", Some(404), false, 5));
    let later = t0 + Duration::from_secs(2);
    let rows = s
        .take_interval(later, |rows, ms| {
            assert_eq!(ms, 2000);
            rows.iter()
                .map(|r| {
                    (
                        r.endpoint.to_string(),
                        r.count,
                        r.errors,
                        r.new_connections,
                        r.reused_connections,
                        r.p50_us,
                        r.p99_us,
                        r.rate,
                    )
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    assert_eq!(rows.len(), 2);
    let (name, count, errors, new, reused, p50, p99, rate) = rows[0].clone();
    assert_eq!(
        (name.as_str(), count, errors, new, reused),
        ("GET /u/{id}", 100, 2, 1, 99)
    );
    // 10 us .. 1000 us: the 50th is 500 us, the 99th 990 us, within 3%.
    assert!((485..=515).contains(&p50), "p50 {p50}");
    assert!((960..=1020).contains(&p99), "p99 {p99}");
    assert!((rate - 50.0).abs() < 1e-9, "{rate}");
    assert_eq!(rows[1].0, "GET /health");
    assert_eq!(rows[1].2, 0, "a 404 is not an error");
    assert!(
        s.take_interval(later, |_, _| ()).is_none(),
        "the interval began again"
    );
    assert_eq!(s.run_rows(later).len(), 2, "the run keeps them");
}

#[test]
fn past_the_limit_new_templates_count_as_other() {
    let mut s = Stats::new(Instant::now());
    for i in 0..MAX_TEMPLATES + 5 {
        s.add(&request(&format!("/name-{i}"), Some(200), false, 1));
    }
    s.add(&request("/name-3", Some(200), false, 1));
    let rows = s.run_rows(Instant::now());
    assert_eq!(rows.len(), MAX_TEMPLATES + 1);
    let other = rows.iter().find(|r| r.endpoint == OTHER).map(|r| r.count);
    assert_eq!(other, Some(5));
    let known = rows
        .iter()
        .find(|r| r.endpoint == "GET /name-3")
        .map(|r| r.count);
    assert_eq!(
        known,
        Some(2),
        "a template seen before still counts as itself"
    );
}

#[test]
fn histogram_buckets_are_ordered_and_close() {
    let mut last = 0;
    for v in (0..200_000u64).step_by(7).chain([1 << 40, u64::MAX]) {
        let i = Histogram::index(v);
        assert!(i >= last, "{v}");
        last = i;
        let mid = Histogram::value(i);
        assert!(mid.abs_diff(v) <= v / 16 + 1, "{v} -> {mid}");
    }
}
