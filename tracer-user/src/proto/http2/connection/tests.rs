//! Frame sequences the h2 crate's tests do not produce: h2c upgrade,
//! GOAWAY, server push, CONTINUATION, padding, an interrupted block.

use super::*;
use crate::proto::http2::StreamEnd;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut v = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    v.extend([kind, flags]);
    v.extend(stream.to_be_bytes());
    v.extend(payload);
    v
}

/// `:method GET`, `:scheme http`, `:path` literal (not indexed).
fn request_block(path: &str) -> Vec<u8> {
    let mut b = vec![0x82, 0x86, 0x04, path.len() as u8];
    b.extend(path.as_bytes());
    b
}

const STATUS_200: u8 = 0x88;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

fn feed(conn: &mut Http2Connection, dir: Direction, bytes: &[u8]) {
    conn.feed(
        dir,
        &Chunk {
            ts_ns: 1,
            bytes,
            total_len: bytes.len(),
            gap_before: false,
            later: &[],
        },
    );
}

fn client() -> (Http2Connection, Vec<u8>) {
    let mut preface = crate::proto::http2::frame::PREFACE.to_vec();
    preface.extend(frame(4, 0, 0, &[]));
    (Http2Connection::new(Role::Client, Start::Preface), preface)
}

#[test]
fn an_upgraded_stream_one_ends_with_its_h2_response() {
    let mut conn = Http2Connection::new(Role::Server, Start::Upgrade);
    let mut first = crate::proto::http2::frame::PREFACE.to_vec();
    first.extend(frame(4, 0, 0, &[]));
    feed(&mut conn, Direction::Ingress, &first);
    let mut response = frame(4, 0, 0, &[]);
    response.extend(frame(1, END_HEADERS | END_STREAM, 1, &[STATUS_200]));
    feed(&mut conn, Direction::Egress, &response);
    let done = conn.take_requests();
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].stream_id, done[0].status), (1, Some(200)));
    assert_eq!(
        (done[0].end, done[0].path.as_deref()),
        (StreamEnd::Complete, None)
    );
    assert_eq!(conn.detection(), Detection::Http2);
}

#[test]
fn goaway_ends_the_streams_it_did_not_process() {
    let (mut conn, mut out) = client();
    out.extend(frame(
        1,
        END_HEADERS | END_STREAM,
        1,
        &request_block("/one"),
    ));
    out.extend(frame(
        1,
        END_HEADERS | END_STREAM,
        3,
        &request_block("/two"),
    ));
    feed(&mut conn, Direction::Egress, &out);
    // Last processed: stream 1; code NO_ERROR.
    let mut goaway = frame(7, 0, 0, &[0, 0, 0, 1, 0, 0, 0, 0]);
    goaway.extend(frame(1, END_HEADERS | END_STREAM, 1, &[STATUS_200]));
    feed(&mut conn, Direction::Ingress, &goaway);
    let done = conn.finish();
    let two = done.iter().find(|r| r.stream_id == 3).expect("stream 3");
    assert_eq!(two.path.as_deref(), Some("/two"));
    assert_eq!(
        (two.end, two.error.as_deref()),
        (StreamEnd::GoAway, Some("GOAWAY NO_ERROR"))
    );
    let one = done.iter().find(|r| r.stream_id == 1).expect("stream 1");
    assert_eq!(
        (one.end, one.status, one.error.as_deref()),
        (StreamEnd::Complete, Some(200), None)
    );
}

#[test]
fn a_pushed_stream_has_the_promised_request() {
    let (mut conn, mut out) = client();
    out.extend(frame(
        1,
        END_HEADERS | END_STREAM,
        1,
        &request_block("/page"),
    ));
    feed(&mut conn, Direction::Egress, &out);
    let mut promise = vec![0, 0, 0, 2];
    promise.extend(request_block("/style.css"));
    let mut back = frame(5, END_HEADERS, 1, &promise);
    back.extend(frame(1, END_HEADERS | END_STREAM, 1, &[STATUS_200]));
    back.extend(frame(1, END_HEADERS, 2, &[STATUS_200]));
    // Padded: pad length 3, 6 bytes of body, 3 of padding.
    back.extend(frame(0, END_STREAM | 0x8, 2, b"\x03body{}\0\0\0"));
    feed(&mut conn, Direction::Ingress, &back);
    let done = conn.take_requests();
    let pushed = done
        .iter()
        .find(|r| r.stream_id == 2)
        .expect("pushed stream");
    assert!(pushed.pushed);
    assert_eq!(pushed.path.as_deref(), Some("/style.css"));
    assert_eq!((pushed.status, pushed.response_data_bytes), (Some(200), 6));
}

#[test]
fn continuation_and_padding_give_the_whole_block() {
    let (mut conn, mut out) = client();
    let block = request_block("/split/across/frames");
    // HEADERS padded (pad length 3) with the block's first 5 bytes.
    let mut first = vec![3];
    first.extend(&block[..5]);
    first.extend([0; 3]);
    out.extend(frame(1, 0x8 | END_STREAM, 1, &first));
    out.extend(frame(9, 0, 1, &block[5..10]));
    out.extend(frame(9, END_HEADERS, 1, &block[10..]));
    feed(&mut conn, Direction::Egress, &out);
    let done = conn.finish();
    assert_eq!(done[0].path.as_deref(), Some("/split/across/frames"));
    assert!(conn.notes().is_empty(), "{:?}", conn.notes());
}

#[test]
fn an_interrupted_block_gives_the_table_up_with_a_note() {
    let (mut conn, mut out) = client();
    let block = request_block("/x");
    out.extend(frame(1, END_STREAM, 1, &block[..2]));
    out.extend(frame(0, END_STREAM, 3, b"oops"));
    // Indexed from the dynamic table: unknown now, not guessed.
    out.extend(frame(1, END_HEADERS | END_STREAM, 5, &[0x82, 0xbe]));
    feed(&mut conn, Direction::Egress, &out);
    let done = conn.finish();
    let five = done.iter().find(|r| r.stream_id == 5).expect("stream 5");
    assert_eq!(
        (five.method.as_deref(), five.path.as_deref()),
        (Some("GET"), None)
    );
    assert!(five.partial);
    assert!(
        conn.notes().iter().any(|n| n.contains("interrupted")),
        "{:?}",
        conn.notes()
    );
}

#[test]
fn grpc_service_and_method_come_from_the_path() {
    let (mut conn, mut out) = client();
    let mut block = request_block("/demo.Echo/Say");
    block.extend([0x0f, 0x10, 16]);
    block.extend(b"application/grpc");
    out.extend(frame(1, END_HEADERS | END_STREAM, 1, &block));
    feed(&mut conn, Direction::Egress, &out);
    let done = conn.finish();
    assert_eq!(done[0].grpc_method(), Some(("demo.Echo", "Say")));
    assert_eq!(done[0].grpc_status, None);
}
