//! The HTTP/2 parser on real h2 connections: each stream a request with
//! the right fields, from either end, and nothing guessed when the
//! capture is partial.

mod h2_wire;

use h2_wire::{Answer, SECRET, parse, record, summary};
use tracer_user::proto::http2::{Role, Start, StreamEnd};

fn answer(path: &str) -> Answer {
    match path {
        "/big" => Answer::Body(200, 100_000),
        "/missing" => Answer::Body(404, 9),
        "/reset" => Answer::Reset,
        "/demo.Echo/Fail" => Answer::GrpcTrailersOnly(5, "not found"),
        p if p.starts_with("/demo.") => Answer::Grpc(0, ""),
        _ => Answer::Body(200, 2),
    }
}

#[tokio::test]
async fn three_requests_from_either_end_with_the_table_reused() {
    let rec = record(
        &[&[("GET", "/a")], &[("GET", "/big")], &[("GET", "/missing")]],
        answer,
    )
    .await;
    assert_eq!(rec.server_paths, ["/a", "/big", "/missing"]);
    for (log, role) in [(&rec.client, Role::Client), (&rec.server, Role::Server)] {
        let (reqs, notes) = parse(log, role, Start::Preface, usize::MAX);
        assert!(notes.is_empty(), "{role:?}: {notes:?}");
        assert_eq!(
            summary(&reqs),
            [
                (1, Some("GET"), Some("/a"), Some(200)),
                (3, Some("GET"), Some("/big"), Some(200)),
                (5, Some("GET"), Some("/missing"), Some(404)),
            ],
            "{role:?}"
        );
        let bytes: Vec<u64> = reqs.iter().map(|r| r.response_data_bytes).collect();
        assert_eq!(bytes, [2, 100_000, 9]);
        let reused: Vec<_> = reqs.iter().map(|r| r.reused).collect();
        assert_eq!(reused, [Some(false), Some(true), Some(true)]);
        for r in &reqs {
            assert_eq!(r.end, StreamEnd::Complete);
            assert_eq!(r.scheme.as_deref(), Some("http"));
            assert!(
                r.authority
                    .as_deref()
                    .is_some_and(|a| a.starts_with("127.0.0.1:"))
            );
            assert!(!r.partial && r.error.is_none());
            let (req, resp) = (
                r.request.expect("request span"),
                r.response.expect("response span"),
            );
            assert!(req.first_ns <= req.last_ns && req.last_ns < resp.first_ns);
            assert!(resp.first_ns <= resp.last_ns);
        }
        let shown = format!("{reqs:?} {notes:?}");
        assert!(!shown.contains("s3cret"), "a credential leaked: {shown}");
        assert!(!shown.contains(SECRET));
    }
}

#[tokio::test]
async fn twenty_concurrent_streams_each_keep_their_path_and_bytes() {
    let paths: Vec<String> = (0..20).map(|i| format!("/c/{i}")).collect();
    let batch: Vec<(&str, &str)> = paths.iter().map(|p| ("GET", p.as_str())).collect();
    let rec = record(&[&batch], |path: &str| {
        let i: usize = path.trim_start_matches("/c/").parse().unwrap_or(0);
        Answer::Body(200, 1000 + i)
    })
    .await;
    for (log, role) in [(&rec.client, Role::Client), (&rec.server, Role::Server)] {
        let (reqs, notes) = parse(log, role, Start::Preface, usize::MAX);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(reqs.len(), 20);
        for r in &reqs {
            let path = r.path.as_deref().expect("path");
            let i: u64 = path.trim_start_matches("/c/").parse().expect("index");
            assert_eq!(r.response_data_bytes, 1000 + i, "stream {}", r.stream_id);
            assert_eq!(r.status, Some(200));
        }
    }
}

#[tokio::test]
async fn grpc_status_from_trailers_and_trailers_only() {
    let rec = record(
        &[
            &[("POST", "/demo.Echo/Say")],
            &[("POST", "/demo.Echo/Say")],
            &[("POST", "/demo.Echo/Fail")],
        ],
        answer,
    )
    .await;
    for (log, role) in [(&rec.client, Role::Client), (&rec.server, Role::Server)] {
        let (reqs, notes) = parse(log, role, Start::Preface, usize::MAX);
        assert!(notes.is_empty(), "{notes:?}");
        let grpc: Vec<_> = reqs
            .iter()
            .map(|r| {
                (
                    r.path.as_deref(),
                    r.is_grpc(),
                    r.grpc_status,
                    r.grpc_message.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            grpc,
            [
                (Some("/demo.Echo/Say"), true, Some(0), None),
                (Some("/demo.Echo/Say"), true, Some(0), None),
                (Some("/demo.Echo/Fail"), true, Some(5), Some("not found")),
            ]
        );
        assert!(reqs.iter().all(|r| r.request_data_bytes == 10));
        assert_eq!(reqs[0].response_data_bytes, 7);
        assert_eq!(reqs[2].response_data_bytes, 0);
    }
}

#[tokio::test]
async fn a_reset_stream_is_an_error_and_others_go_on() {
    let rec = record(&[&[("GET", "/reset")], &[("GET", "/a")]], answer).await;
    let (reqs, _) = parse(&rec.client, Role::Client, Start::Preface, usize::MAX);
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].path.as_deref(), Some("/reset"));
    assert_eq!(reqs[0].end, StreamEnd::Reset);
    assert_eq!(reqs[0].error.as_deref(), Some("RST_STREAM CANCEL"));
    assert_eq!(reqs[0].status, None);
    assert_eq!(reqs[1].path.as_deref(), Some("/a"));
    assert_eq!(reqs[1].error, None);
}

/// A capture begun after the first exchange: later streams are reported,
/// and what needed the dynamic table is null, not a guess.
#[tokio::test]
async fn mid_connection_start_reports_later_streams_without_guessing() {
    let batches: Vec<[(&str, &str); 1]> = ["/a", "/b", "/a", "/b", "/a"]
        .iter()
        .map(|p| [("GET", *p)])
        .collect();
    let batches: Vec<&[(&str, &str)]> = batches.iter().map(|b| b.as_slice()).collect();
    let rec = record(&batches, answer).await;
    let (truth, _) = parse(&rec.client, Role::Client, Start::Preface, usize::MAX);
    // Skip past the first stream's response.
    let first_response_end = rec
        .client
        .iter()
        .position(|io| io.ts_ns >= truth[0].response.expect("span").last_ns)
        .expect("first response");
    let late = &rec.client[first_response_end + 1..];
    let (reqs, notes) = parse(late, Role::Client, Start::MidStream, usize::MAX);
    assert!(
        notes.iter().any(|n| n.contains("mid-connection")),
        "{notes:?}"
    );
    assert!(reqs.len() >= 2, "later streams are reported: {reqs:?}");
    for (i, r) in reqs.iter().enumerate() {
        let t = truth
            .iter()
            .find(|t| t.stream_id == r.stream_id)
            .expect("same stream");
        assert!(r.partial);
        // Whether the first stream seen had one before it is not known.
        assert_eq!(r.reused, if i > 0 { Some(true) } else { None });
        // Each value shown is the true one; a repeated :authority comes
        // from the dynamic table, so it is unknown here.
        for (got, want) in [
            (&r.method, &t.method),
            (&r.path, &t.path),
            (&r.authority, &t.authority),
            (&r.scheme, &t.scheme),
        ] {
            assert!(got.is_none() || got == want, "{got:?} vs {want:?}");
        }
        assert_eq!(r.authority, None);
        assert!(r.status.is_none() || r.status == t.status);
    }
    assert!(reqs.iter().any(|r| r.method.as_deref() == Some("GET")));
}

/// Captures cut at 64 bytes per I/O: whatever is shown is true.
#[tokio::test]
async fn cut_captures_show_only_true_values() {
    let rec = record(
        &[&[("GET", "/a")], &[("GET", "/big")], &[("GET", "/missing")]],
        answer,
    )
    .await;
    let (truth, _) = parse(&rec.client, Role::Client, Start::Preface, usize::MAX);
    for cut in [16, 64, 100] {
        let (reqs, _) = parse(&rec.client, Role::Client, Start::Preface, cut);
        for r in &reqs {
            let t = truth
                .iter()
                .find(|t| t.stream_id == r.stream_id)
                .expect("stream");
            assert!(r.path.is_none() || r.path == t.path, "cut {cut}");
            assert!(r.status.is_none() || r.status == t.status, "cut {cut}");
            assert!(
                r.authority.is_none() || r.authority == t.authority,
                "cut {cut}"
            );
        }
    }
}

/// A response body made of HTTP/2 frames, and a capture that begins at
/// them: what parses as frames inside a DATA payload is never taken for
/// the connection's own.
#[tokio::test]
async fn frames_inside_a_data_payload_are_not_taken_for_the_connections() {
    // A response HEADERS for stream 1: status 418, ending the stream.
    let mut block = vec![0x48, 3];
    block.extend(b"418");
    let mut fake = vec![0, 0, block.len() as u8, 1, 0x5, 0, 0, 0, 1];
    fake.extend(&block);
    let body = fake.repeat(4);
    let len = body.len();
    let rec = record(
        &[&[("GET", "/a")], &[("GET", "/frames")], &[("GET", "/a")]],
        {
            move |path: &str| match path {
                "/frames" => Answer::Fixed(body.clone()),
                _ => Answer::Body(200, 2),
            }
        },
    )
    .await;
    // The server's write that ends with the fake frames.
    let at = rec
        .server
        .iter()
        .position(|io| io.bytes.ends_with(&fake) && io.bytes.len() >= len + 9)
        .expect("the body's write");
    let write = &rec.server[at];
    let mut late = vec![h2_wire::Io {
        bytes: write.bytes[write.bytes.len() - len..].to_vec(),
        ..write.clone()
    }];
    late.extend(rec.server[at + 1..].iter().cloned());
    let (reqs, _) = parse(&late, Role::Server, Start::MidStream, usize::MAX);
    assert!(!reqs.is_empty());
    assert!(reqs.iter().all(|r| r.status != Some(418)), "{reqs:?}");
    // The same bytes twice in a row do sync: the check is not vacuous.
    let twice = [late[0].clone(), late[0].clone()];
    let (fooled, _) = parse(&twice, Role::Server, Start::MidStream, usize::MAX);
    assert!(fooled.iter().any(|r| r.status == Some(418)), "{fooled:?}");
}
