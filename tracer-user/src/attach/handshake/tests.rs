//! The handshake read from real flights (see `captured`), cut into I/Os
//! as a client or a server would read them, with heads where the kernel
//! gives them: at each change of direction, and while a segment is
//! shorter than a head.
use super::{
    captured::{Flight, TLS12_NEW, TLS12_RESUMED, TLS13_NEW, TLS13_RESUMED},
    hello::{Parsed, server_hello},
    *,
};

const HEAD: usize = 128;
/// Time between two I/Os in these tests.
const STEP: u64 = 1000;

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// The I/O lengths of one flight: whole, or (`split`) as OpenSSL reads
/// without read-ahead: each record's header (5 bytes), then its body.
fn pieces(bytes: &[u8], total: u64, split: bool) -> Vec<u64> {
    if !split {
        return vec![total];
    }
    let (mut out, mut at) = (Vec::new(), 0u64);
    while at + 5 <= bytes.len() as u64 && at < total {
        let body = u64::from(u16::from_be_bytes([
            bytes[at as usize + 3],
            bytes[at as usize + 4],
        ]));
        out.extend([5, body.min(total - at - 5)]);
        at += 5 + body;
    }
    if at < total {
        out.push(total - at);
    }
    out
}

/// Feeds `flights` to a handshake seen from the client (`client`) or the
/// server, reads split or not, with the head of flight `drop_head` lost;
/// returns it and the time each flight began.
fn replay(
    flights: &[Flight],
    client: bool,
    split: bool,
    drop_head: Option<usize>,
) -> (Handshake, Vec<u64>) {
    let (mut h, mut starts, mut ts) = (None::<Handshake>, Vec::new(), 0);
    let mut offsets = [0u64; 2];
    for (i, &(client_sent, total, hex)) in flights.iter().enumerate() {
        let bytes = unhex(hex);
        let send = client_sent == client;
        starts.push(ts + STEP);
        // The kernel's segment: an I/O begins a new one, with a head, when
        // the direction changed or the current one is shorter than a head.
        let (mut pos, mut segment) = (0usize, 0u64);
        for (k, len) in pieces(&bytes, total, split && !send)
            .into_iter()
            .enumerate()
        {
            ts += STEP;
            let begins = k == 0 || segment < HEAD as u64;
            segment = if begins { len } else { segment + len };
            let head = begins.then(|| {
                let end = (pos + len as usize).min(pos + HEAD).min(bytes.len());
                bytes[pos.min(end)..end].to_vec()
            });
            let head = head.filter(|_| drop_head != Some(i));
            let off = &mut offsets[usize::from(send)];
            let h = h.get_or_insert_with(|| Handshake::new(send, ts));
            h.io(send, ts, *off, head.as_deref());
            *off += len;
            pos += len as usize;
        }
    }
    (h.unwrap(), starts)
}

/// Every way to see each handshake: from either side, reads whole or split.
fn each_view(flights: &[Flight], check: impl Fn(&Handshake, &[u64], &str)) {
    for client in [true, false] {
        for split in [false, true] {
            let (h, starts) = replay(flights, client, split, None);
            let how = format!("client {client}, split {split}");
            assert_eq!(h.client, client, "{how}");
            assert!(h.is_tls(), "{how}");
            check(&h, &starts, &how);
        }
    }
}

#[test]
fn tls13_new_session_is_not_resumed_and_ends_at_the_client_finished() {
    each_view(TLS13_NEW, |h, starts, how| {
        assert_eq!(h.version(), Some(0x0304), "{how}");
        assert_eq!(h.resumed(), Some(false), "{how}");
        assert_eq!(h.server_flight_ns(), Some(starts[1] - starts[0]), "{how}");
        assert_eq!(h.handshake_ns(), Some(starts[2] - starts[0]), "{how}");
    });
}

#[test]
fn tls13_resumption_is_the_pre_shared_key_past_the_head() {
    each_view(TLS13_RESUMED, |h, starts, how| {
        assert_eq!(h.version(), Some(0x0304), "{how}");
        assert_eq!(h.resumed(), Some(true), "{how}");
        assert_eq!(h.handshake_ns(), Some(starts[2] - starts[0]), "{how}");
    });
    // Whole, the hello's last extension header lies past the head: the
    // 6 bytes its length leaves are the pre_shared_key.
    let flight = unhex(TLS13_RESUMED[1].2);
    let Parsed::Is(sh) = server_hello(&flight[..HEAD]) else {
        panic!("no hello")
    };
    assert_eq!((sh.psk, sh.version), (Some(true), Some(0x0304)));
    // Cut before its key_share is read through, nothing is claimed.
    let Parsed::Is(sh) = server_hello(&flight[..90]) else {
        panic!("no hello")
    };
    assert_eq!((sh.psk, sh.version), (None, Some(0x0304)));
}

#[test]
fn tls12_new_session_ends_at_the_server_finished() {
    each_view(TLS12_NEW, |h, starts, how| {
        assert_eq!(h.version(), Some(0x0303), "{how}");
        assert_eq!(h.resumed(), Some(false), "{how}");
        assert_eq!(h.handshake_ns(), Some(starts[3] - starts[0]), "{how}");
    });
}

#[test]
fn tls12_resumed_session_ends_at_the_client_finished() {
    each_view(TLS12_RESUMED, |h, starts, how| {
        assert_eq!(h.version(), Some(0x0303), "{how}");
        assert_eq!(h.resumed(), Some(true), "{how}");
        assert_eq!(h.handshake_ns(), Some(starts[2] - starts[0]), "{how}");
    });
}

/// A lost head hides what its flight said; the time of its first I/O is
/// still seen, and TLS 1.2's other signs still decide.
#[test]
fn a_lost_head_is_unknown_not_guessed() {
    let (h, _) = replay(TLS13_RESUMED, true, false, Some(1));
    assert_eq!(
        (h.version(), h.resumed(), h.handshake_ns()),
        (None, None, None)
    );
    let (h, starts) = replay(TLS12_RESUMED, true, false, Some(2));
    assert_eq!(h.resumed(), Some(true));
    assert_eq!(h.handshake_ns(), Some(starts[2] - starts[0]));
    let (h, _) = replay(TLS12_NEW, true, false, Some(0));
    assert!(!h.is_tls());
}

/// A HelloRetryRequest is not the answer: the ServerHello after it is.
#[test]
fn hello_retry_request_waits_for_the_real_server_hello() {
    let mut retry = unhex(TLS13_NEW[1].2);
    retry[11..43].copy_from_slice(&[
        0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8,
        0x91, 0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8,
        0x33, 0x9c,
    ]);
    let ch = unhex(TLS13_NEW[0].2);
    let sh = unhex(TLS13_RESUMED[1].2);
    let mut h = Handshake::new(true, 0);
    h.io(true, 0, 0, Some(&ch[..HEAD]));
    h.io(false, 10, 0, Some(&retry[..HEAD]));
    assert_eq!((h.version(), h.resumed()), (None, None));
    h.io(true, 20, 225, Some(&[0x14, 3, 3, 0, 1, 1, 0x16, 3, 3]));
    h.io(false, 30, 1337, Some(&sh[..HEAD]));
    h.io(true, 40, 700, Some(&[0x14, 3, 3, 0, 1, 1, 0x17]));
    assert_eq!((h.version(), h.resumed()), (Some(0x0304), Some(true)));
    assert_eq!(h.handshake_ns(), Some(40));
}

#[test]
fn plaintext_is_not_a_handshake() {
    assert!(!starts_handshake(b"GET / HTTP/1.1\r\n"));
    let mut h = Handshake::new(true, 0);
    h.io(true, 0, 0, Some(&[0x16, 3, 1, 0, 5, 0x0b, 0, 0, 1]));
    assert!(!h.is_tls() && h.settled());
}
