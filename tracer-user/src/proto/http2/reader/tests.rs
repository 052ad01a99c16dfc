//! The reader on hand-built frames: splits, cuts, preface, sync.

use super::*;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut v = len.to_be_bytes()[1..].to_vec();
    v.extend([kind, flags]);
    v.extend(stream.to_be_bytes());
    v.extend(payload);
    v
}

fn chunk(bytes: &[u8]) -> Chunk<'_> {
    Chunk {
        ts_ns: 1,
        bytes,
        total_len: bytes.len(),
        gap_before: false,
        later: &[],
    }
}

fn frames(events: &[ReaderEvent]) -> Vec<(FrameKind, u32, usize, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            ReaderEvent::Frame(f) => Some((
                f.header.kind,
                f.header.stream_id,
                f.payload.len(),
                f.truncated,
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn preface_then_frames_split_anywhere() {
    let mut wire = PREFACE.to_vec();
    wire.extend(frame(4, 0, 0, &[0, 1, 0, 0, 0x10, 0]));
    wire.extend(frame(1, 5, 1, b"\x82\x84"));
    wire.extend(frame(0, 1, 1, &[7; 100]));
    for split in 1..wire.len() {
        let mut r = FrameReader::at_preface();
        let mut out = Vec::new();
        r.feed(&chunk(&wire[..split]), &mut out);
        r.feed(&chunk(&wire[split..]), &mut out);
        assert_eq!(
            frames(&out),
            [
                (FrameKind::Settings, 0, 6, false),
                (FrameKind::Headers, 1, 2, false),
                (FrameKind::Data, 1, 0, false)
            ],
            "split at {split}"
        );
    }
}

#[test]
fn http1_is_not_taken_for_a_preface() {
    let mut r = FrameReader::at_preface();
    let mut out = Vec::new();
    r.feed(&chunk(b"GET / HTTP/1.1\r\n\r\n"), &mut out);
    assert!(matches!(out.as_slice(), [ReaderEvent::Failed(_)]));
}

#[test]
fn an_uncaptured_data_tail_is_skipped_but_an_uncaptured_header_loses_sync() {
    let mut wire = frame(0, 0, 1, &[1; 1000]);
    wire.extend(frame(1, 4, 3, b"\x82"));
    let mut r = FrameReader::at_frame();
    let mut out = Vec::new();
    // Captured: the DATA header and 100 bytes; its tail is counted.
    r.feed(
        &Chunk {
            total_len: 1009,
            ..chunk(&wire[..109])
        },
        &mut out,
    );
    r.feed(&chunk(&wire[1009..]), &mut out);
    assert_eq!(frames(&out).len(), 2);
    let mut r = FrameReader::at_frame();
    let mut out = Vec::new();
    r.feed(
        &Chunk {
            total_len: wire.len(),
            ..chunk(&wire[..1009])
        },
        &mut out,
    );
    assert!(matches!(out.last(), Some(ReaderEvent::Lost(_))));
}

#[test]
fn mid_stream_sync_needs_two_ios_of_whole_frames() {
    let a = frame(1, 4, 5, b"\x82\x84");
    let b = frame(0, 1, 5, b"hello");
    // The tail of a DATA payload that parses as a frame is not used.
    let mut r = FrameReader::mid_stream();
    let mut out = Vec::new();
    r.feed(&chunk(&[0xde, 0xad]), &mut out);
    r.feed(&chunk(&a), &mut out);
    assert!(frames(&out).is_empty());
    r.feed(&chunk(&b), &mut out);
    assert!(matches!(out[0], ReaderEvent::Synced { by_preface: false }));
    assert_eq!(frames(&out), [(FrameKind::Data, 5, 0, false)]);
}
