use super::*;

fn names(hooks: &[(u64, Hook)]) -> Vec<&'static str> {
    hooks.iter().map(|(_, h)| h.name()).collect()
}

fn frame(typ: u8, flags: u8, stream: u32, payload: usize) -> Vec<u8> {
    let len = (payload as u32).to_be_bytes();
    let mut f = vec![len[1], len[2], len[3], typ, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend(std::iter::repeat_n(0u8, payload));
    f
}

#[test]
fn http1_request_and_response_follow_the_direction_changes() {
    let io = PlainIo::default();
    let start = monotonic_ns();
    io.wrote(&[b"GET / HTTP/1.1\r\nhost: a\r\n\r\n"]);
    io.wrote(&[b"body"]);
    io.read(b"HTTP/1.1 200 OK\r\n");
    io.read(b"more");
    let hooks = io.take_request(start);
    assert_eq!(
        names(&hooks),
        ["WroteHeaders", "WroteRequest", "GotFirstResponseByte"]
    );
    assert!(hooks[0].0 <= hooks[1].0 && hooks[1].0 <= hooks[2].0);
    assert!(io.take_request(start).is_empty(), "taken once");

    let second = monotonic_ns();
    io.wrote(&[b"GET /2 HTTP/1.1\r\n\r\n"]);
    io.read(b"HTTP/1.1 200 OK\r\n");
    let hooks = io.take_request(second);
    assert_eq!(hooks.len(), 3);
    assert!(hooks[0].0 >= second);
}

#[test]
fn h2_marks_follow_the_frames_of_the_request_stream() {
    let io = PlainIo::default();
    let start = monotonic_ns();
    // The server's SETTINGS can arrive before the client has written.
    io.read(&frame(0x4, 0, 0, 6));
    let mut first = H2_PREFACE.to_vec();
    first.extend(frame(0x4, 0, 0, 12));
    io.wrote(&[&first]);
    io.read(&frame(0x4, 0x1, 0, 0)); // SETTINGS ack: not an answer
    // HEADERS of stream 1 split across two records, then END_STREAM on DATA.
    let headers = frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, 20);
    io.wrote(&[&headers[..4], &headers[4..]]);
    io.wrote(&[&frame(FRAME_DATA, FLAG_END_STREAM, 1, 5)]);
    let answer = [
        frame(FRAME_HEADERS, FLAG_END_HEADERS, 1, 30),
        frame(FRAME_DATA, 1, 1, 9),
    ]
    .concat();
    io.read(&answer[..5]);
    io.read(&answer[5..]);
    let hooks = io.take_request(start);
    assert_eq!(
        names(&hooks),
        ["WroteHeaders", "WroteRequest", "GotFirstResponseByte"]
    );
    assert!(hooks[1].0 <= hooks[2].0);
}

#[test]
fn frame_reader_skips_payloads_across_records() {
    let mut reader = FrameReader::default();
    let bytes = [frame(0x0, 0, 3, 40), frame(0x1, 0x5, 5, 2)].concat();
    let mut seen = Vec::new();
    for part in bytes.chunks(7) {
        reader.feed(part, |t, f, s| seen.push((t, f, s)));
    }
    assert_eq!(seen, [(0x0, 0, 3), (0x1, 0x5, 5)]);
}
