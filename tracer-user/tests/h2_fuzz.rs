//! Fuzzing the HTTP/2 parser from a corpus of real connections kept in
//! tests/corpus/h2 (written by `corpus_is_current` with
//! TRACER_WRITE_H2_CORPUS=1): mutated bytes never panic, and a capture
//! that only loses bytes never shows a value the full capture does not.
//! Each target runs a bounded number of cases (PROPTEST_CASES overrides).

mod h2_wire;

use h2_wire::capture::{
    CORPUS_DIR, Fed, Loss, corpus, feed, flip_dirs, frames_only, header_blocks, lose, whole,
};
use h2_wire::{record, summary, to_corpus};
use proptest::prelude::*;
use tracer_user::proto::http2::fields::FieldSink;
use tracer_user::proto::http2::hpack::BlockDecoder;
use tracer_user::proto::http2::reader::Extent;
use tracer_user::proto::http2::{Chunk, H2Request, Http2Connection, Role, Start};

/// Every value a lossy parse shows is the one the whole capture shows.
fn assert_true_or_null(lossy: &[H2Request], truth: &[H2Request]) -> Result<(), TestCaseError> {
    for r in lossy {
        let Some(t) = truth.iter().find(|t| t.stream_id == r.stream_id) else {
            continue;
        };
        for (got, want) in [
            (&r.method, &t.method),
            (&r.scheme, &t.scheme),
            (&r.authority, &t.authority),
            (&r.path, &t.path),
            (&r.grpc_message, &t.grpc_message),
        ] {
            prop_assert!(got.is_none() || got == want, "{got:?} vs {want:?}");
        }
        prop_assert!(r.status.is_none() || r.status == t.status);
        prop_assert!(r.grpc_status.is_none() || r.grpc_status == t.grpc_status);
    }
    Ok(())
}

fn config() -> ProptestConfig {
    // Bounded for `cargo xtask test`; PROPTEST_CASES raises it.
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_connections_never_panic(
        pick in 0usize..16,
        flips in prop::collection::vec((any::<usize>(), any::<usize>(), any::<u8>()), 0..8),
        cuts in prop::collection::vec((any::<usize>(), any::<usize>()), 0..4),
        mid in any::<bool>(),
        server in any::<bool>(),
    ) {
        let logs = corpus();
        let log = &logs[pick % logs.len()];
        let mut fed = whole(log);
        for (i, at, byte) in flips {
            let io = &mut fed[i % log.len()];
            if !io.bytes.is_empty() {
                let at = at % io.bytes.len();
                io.bytes[at] ^= byte;
            }
        }
        for (i, keep) in cuts {
            let io = &mut fed[i % log.len()];
            io.bytes.truncate(keep % (io.bytes.len() + 1));
        }
        let role = if server { Role::Server } else { Role::Client };
        let start = if mid { Start::MidStream } else { Start::Preface };
        let fed = if server { flip_dirs(fed) } else { fed };
        let _ = feed(&fed, role, start);
    }

    #[test]
    fn lossy_captures_show_only_true_values(
        pick in 0usize..16,
        losses in prop::collection::vec(
            prop_oneof![
                (any::<usize>(), 0usize..300).prop_map(|(i, k)| Loss::Cut(i, k)),
                any::<usize>().prop_map(Loss::Drop),
            ],
            1..6,
        ),
        late in 0usize..12,
    ) {
        let logs = corpus();
        let log = &logs[pick % logs.len()];
        let (truth, notes) = feed(&whole(log), Role::Client, Start::Preface);
        prop_assert!(notes.is_empty(), "{notes:?}");
        let (lossy, _) = feed(&lose(log, &losses), Role::Client, Start::Preface);
        assert_true_or_null(&lossy, &truth)?;
        let late = late.min(log.len());
        let (mid, _) = feed(&whole(&log[late..]), Role::Client, Start::MidStream);
        assert_true_or_null(&mid, &truth)?;
    }

    #[test]
    fn rechunked_reads_change_nothing(pick in 0usize..16, splits in prop::collection::vec(any::<usize>(), 1..20)) {
        let logs = corpus();
        let log = &logs[pick % logs.len()];
        let (truth, _) = feed(&whole(log), Role::Client, Start::Preface);
        let mut fed = whole(log);
        for s in splits {
            let i = s % fed.len();
            let io = &fed[i];
            if io.bytes.len() < 2 {
                continue;
            }
            let at = 1 + s % (io.bytes.len() - 1);
            let (a, b) = io.bytes.split_at(at);
            let (a, b) = (a.to_vec(), b.to_vec());
            let dir = io.dir;
            fed[i] = Fed { dir, total_len: a.len(), bytes: a, gap_before: false };
            fed.insert(i + 1, Fed { dir, total_len: b.len(), bytes: b, gap_before: false });
        }
        let (split, notes) = feed(&fed, Role::Client, Start::Preface);
        prop_assert!(notes.is_empty(), "{notes:?}");
        prop_assert_eq!(summary(&split), summary(&truth));
    }

    #[test]
    fn hpack_agrees_with_loona_hpack_on_mutated_blocks(
        pick in 0usize..16,
        ingress in any::<bool>(),
        flips in prop::collection::vec((any::<usize>(), any::<usize>(), any::<u8>()), 0..3),
    ) {
        let logs = corpus();
        let mut blocks = header_blocks(&logs[pick % logs.len()], ingress);
        for (i, at, byte) in flips {
            let n = blocks.len();
            let b = &mut blocks[i % n];
            if !b.is_empty() {
                let at = at % b.len();
                b[at] ^= byte;
            }
        }
        let mut ours = BlockDecoder::in_step();
        let mut theirs = loona_hpack::Decoder::new();
        for block in &blocks {
            let (got, note) = ours.decode(block, false);
            let mut sink = FieldSink::default();
            let want = theirs.decode_with_cb(block, |n, v| sink.field(&n, &v));
            match (note, want) {
                (None, Ok(())) => prop_assert_eq!(got.fields, sink.into_fields()),
                // Past a block one of them refused, their tables differ.
                _ => break,
            }
        }
    }

    #[test]
    fn arbitrary_extents_never_panic(
        pick in 0usize..16,
        cuts in prop::collection::vec((any::<usize>(), any::<usize>(), any::<usize>()), 1..40),
        mid in any::<bool>(),
    ) {
        let logs = corpus();
        let log = &logs[pick % logs.len()];
        let start = if mid { Start::MidStream } else { Start::Preface };
        let mut conn = Http2Connection::new(Role::Client, start);
        for (i, io) in log.iter().enumerate() {
            // Extents of this I/O at arbitrary, maybe overlapping offsets.
            let len = io.bytes.len().max(1);
            let later: Vec<Extent<'_>> = cuts
                .iter()
                .filter(|c| c.0 % log.len() == i)
                .map(|&(_, at, n)| {
                    let at = at % len;
                    let end = (at + n % 64).min(io.bytes.len());
                    Extent { offset: at, bytes: io.bytes.get(at..end).unwrap_or(&[]) }
                })
                .collect();
            let prefix = &io.bytes[..io.bytes.len().min(cuts[0].2 % 32)];
            conn.feed(io.dir, &Chunk {
                ts_ns: i as u64,
                bytes: prefix,
                total_len: io.bytes.len(),
                gap_before: false,
                later: &later,
            });
        }
        let _ = conn.finish();
    }

    #[test]
    fn hpack_blocks_never_panic(block in prop::collection::vec(any::<u8>(), 0..300), cut in any::<bool>()) {
        for mut d in [BlockDecoder::in_step(), BlockDecoder::unusable()] {
            let _ = d.decode(&block, cut);
            let _ = d.decode(&block, false);
        }
    }
}
#[test]
fn frame_headers_and_header_blocks_alone_give_the_same_requests() {
    for log in corpus() {
        let (truth, _) = feed(&whole(&log), Role::Client, Start::Preface);
        let kept = frames_only(&log);
        let mut conn = Http2Connection::new(Role::Client, Start::Preface);
        let mut skipped = 0;
        for (i, (io, kept)) in log.iter().zip(&kept).enumerate() {
            let prefix = kept
                .first()
                .filter(|(at, _)| *at == 0)
                .map_or(&[][..], |(_, b)| b);
            let later: Vec<Extent<'_>> = kept
                .iter()
                .filter(|(at, _)| *at > 0)
                .map(|(offset, bytes)| Extent {
                    offset: *offset,
                    bytes,
                })
                .collect();
            skipped += io.bytes.len() - kept.iter().map(|(_, b)| b.len()).sum::<usize>();
            let chunk = Chunk {
                ts_ns: i as u64,
                bytes: prefix,
                total_len: io.bytes.len(),
                gap_before: false,
                later: &later,
            };
            conn.feed(io.dir, &chunk);
        }
        let got = conn.finish();
        assert!(conn.notes().is_empty(), "{:?}", conn.notes());
        assert_eq!(got, truth);
        let data: u64 = truth
            .iter()
            .map(|r| r.request_data_bytes + r.response_data_bytes)
            .sum();
        assert!(skipped as u64 >= data, "DATA payloads were not captured");
    }
}
/// The corpus parses to what the server saw; with
/// TRACER_WRITE_H2_CORPUS=1 it is first written anew from real
/// connections.
#[tokio::test]
async fn corpus_is_current() {
    if std::env::var_os("TRACER_WRITE_H2_CORPUS").is_some() {
        write_corpus().await;
    }
    for log in corpus() {
        let (reqs, notes) = feed(&whole(&log), Role::Client, Start::Preface);
        assert!(notes.is_empty(), "{notes:?}");
        assert!(!reqs.is_empty());
        assert!(reqs.iter().all(|r| r.path.is_some()));
    }
}

async fn write_corpus() {
    use h2_wire::Answer;
    let answer = |path: &str| match path {
        "/big" => Answer::Body(200, 40_000),
        "/missing" => Answer::Body(404, 9),
        "/reset" => Answer::Reset,
        "/demo.Echo/Fail" => Answer::GrpcTrailersOnly(5, "not found"),
        p if p.starts_with("/demo.") => Answer::Grpc(0, ""),
        _ => Answer::Body(200, 2),
    };
    let concurrent: Vec<String> = (0..8).map(|i| format!("/c/{i}?page={i}")).collect();
    let concurrent: Vec<(&str, &str)> = concurrent.iter().map(|p| ("GET", p.as_str())).collect();
    let sets: [(&str, Vec<h2_wire::Batch<'_>>); 4] = [
        (
            "sequential",
            vec![&[("GET", "/a")], &[("GET", "/big")], &[("GET", "/missing")]],
        ),
        ("concurrent", vec![&concurrent]),
        (
            "grpc",
            vec![
                &[("POST", "/demo.Echo/Say")],
                &[("POST", "/demo.Echo/Say")],
                &[("POST", "/demo.Echo/Fail")],
            ],
        ),
        (
            "reset",
            vec![
                &[("GET", "/reset")],
                &[("GET", "/a")],
                &[("GET", "/a?token=t")],
            ],
        ),
    ];
    std::fs::create_dir_all(CORPUS_DIR).expect("corpus dir");
    for (name, batches) in sets {
        let rec = record(&batches, answer).await;
        let file = format!("{CORPUS_DIR}/{name}.bin");
        std::fs::write(&file, to_corpus(&rec.client)).expect("write corpus");
    }
}
