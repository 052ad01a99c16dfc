//! Where an HTTP/1.x response ends, from its head and the sizes of the
//! I/Os that carry it: Content-Length counts bytes down; chunked encoding is
//! followed chunk by chunk as long as each chunk-size line falls inside a
//! captured head (the kernel copies at most 128 bytes of each I/O).
//! Anything else (no length, a head longer than what was captured, a chunk
//! line out of sight) is `Unknown`: the request then ends at the next
//! request or at close, as before.

/// What is left of a message body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Body {
    /// This many bytes still to come.
    Length(u64),
    Chunked(Chunks),
    #[default]
    Unknown,
}

/// Progress through a chunked body, in offsets from the body's first byte.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunks {
    /// Body bytes seen so far.
    seen: u64,
    /// Where the next chunk-size line (or, after the last chunk, the final
    /// CRLF) starts.
    next: u64,
    /// The zero-size chunk was seen.
    last: bool,
    /// ... and the CRLF that ends the body.
    done: bool,
    /// A chunk-size line fell outside what was captured.
    lost: bool,
}

/// The framing of a response whose status line starts `head` (the first
/// captured bytes of an I/O of `len` bytes), answering `method`, and the
/// bytes of this I/O that the response takes when it ends inside it (a
/// next message may follow). The body bytes of this I/O are taken into
/// account.
pub fn response_body(head: &[u8], len: u64, method: &str, status: u16) -> (Body, Option<u64>) {
    let Some(end) = head_end(head) else {
        return (Body::Unknown, None);
    };
    // RFC 9112 6.3: these never have a body, whatever the headers say.
    if method == "HEAD" || status < 200 || status == 204 || status == 304 {
        return (Body::Length(0), Some(end));
    }
    let fields = &head[..end as usize];
    let rest = len.saturating_sub(end);
    let body_head = head.get(end as usize..).unwrap_or_default();
    let (te, cl) = framing_headers(fields);
    if te.is_some_and(|v| v.eq_ignore_ascii_case(b"chunked")) {
        let mut chunks = Body::Chunked(Chunks {
            seen: 0,
            next: 0,
            last: false,
            done: false,
            lost: false,
        });
        let used = chunks.advance(body_head, rest).map(|u| end + u);
        return (chunks, used);
    }
    match cl.and_then(parse_u64) {
        Some(n) if n <= rest => (Body::Length(0), Some(end + n)),
        Some(n) => (Body::Length(n - rest), None),
        None => (Body::Unknown, None),
    }
}

/// Bytes of an I/O of `len` bytes that the request whose head starts
/// `head` takes, when it ends inside it: its head, and a Content-Length
/// body. None when that is not known (a head or a body past the I/O or
/// the capture, a chunked body).
pub fn request_used(head: &[u8], len: u64) -> Option<u64> {
    let end = head_end(head)?;
    let (te, cl) = framing_headers(&head[..end as usize]);
    if te.is_some() {
        return None;
    }
    let body = cl.map_or(Some(0), parse_u64)?;
    (end + body <= len).then_some(end + body)
}

/// Where the head ends (after its empty line), if inside `head`.
fn head_end(head: &[u8]) -> Option<u64> {
    // From each '\n', look back for the CRLF CRLF that ends the head.
    head.iter()
        .enumerate()
        .skip(3)
        .find(|&(i, &b)| b == b'\n' && &head[i - 3..i] == b"\r\n\r")
        .map(|(i, _)| i as u64 + 1)
}

impl Body {
    pub fn complete(&self) -> bool {
        match self {
            Body::Length(n) => *n == 0,
            Body::Chunked(c) => c.done,
            Body::Unknown => false,
        }
    }

    /// `len` more body bytes arrived; `head` is what was captured of them
    /// (empty when no head came with the I/O). Some(bytes of them the body
    /// took) when it ended among them.
    pub fn advance(&mut self, head: &[u8], len: u64) -> Option<u64> {
        match self {
            Body::Length(n) => {
                let took = (*n).min(len);
                *n -= took;
                (*n == 0).then_some(took)
            }
            Body::Chunked(c) => {
                let before = c.seen;
                let ended = c.advance(head, len).map(|at| at - before);
                if c.lost {
                    *self = Body::Unknown;
                }
                ended
            }
            Body::Unknown => None,
        }
    }
}

impl Chunks {
    /// Some(offset from the body's start where it ended) when it ended in
    /// these bytes; None when it goes on, or when a chunk-size line fell
    /// outside what was captured (then `done` stays false and the caller
    /// gives up on the framing).
    fn advance(&mut self, head: &[u8], len: u64) -> Option<u64> {
        let end = self.seen + len;
        while self.next < end && !self.done {
            let Some(line) = head.get((self.next - self.seen) as usize..) else {
                return self.lost();
            };
            if self.last {
                // No trailer fields: the body ends with this CRLF.
                if !line.starts_with(b"\r\n") {
                    return self.lost();
                }
                self.next += 2;
                self.done = true;
                self.seen = end;
                return Some(self.next);
            }
            let Some(eol) = line.windows(2).position(|w| w == b"\r\n") else {
                return self.lost();
            };
            let digits = line[..eol].split(|&b| b == b';').next().unwrap_or_default();
            let Some(size) = parse_hex(digits) else {
                return self.lost();
            };
            let after_line = self.next + eol as u64 + 2;
            if size == 0 {
                self.last = true;
                self.next = after_line;
            } else {
                self.next = after_line + size + 2;
            }
        }
        self.seen = end;
        None
    }

    /// A line out of sight: the framing is lost.
    fn lost(&mut self) -> Option<u64> {
        self.lost = true;
        None
    }
}

/// The Transfer-Encoding and Content-Length values of a head, in one pass
/// over its lines (every message on a busy connection gets here); a line
/// is compared only when its first letter can match.
fn framing_headers(fields: &[u8]) -> (Option<&[u8]>, Option<&[u8]>) {
    let (mut te, mut cl) = (None, None);
    let mut lines = fields.split(|&b| b == b'\n');
    lines.next(); // the request or status line
    for line in lines {
        let name: &[u8] = match line.first().map(u8::to_ascii_lowercase) {
            Some(b't') => b"transfer-encoding",
            Some(b'c') => b"content-length",
            _ => continue,
        };
        if line.len() <= name.len()
            || line[name.len()] != b':'
            || !line[..name.len()].eq_ignore_ascii_case(name)
        {
            continue;
        }
        let value = Some(line[name.len() + 1..].trim_ascii());
        match name[0] {
            b't' => te = te.or(value),
            _ => cl = cl.or(value),
        }
    }
    (te, cl)
}

fn parse_u64(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v).ok()?.parse().ok()
}

fn parse_hex(v: &[u8]) -> Option<u64> {
    u64::from_str_radix(std::str::from_utf8(v.trim_ascii()).ok()?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(head: &[u8], method: &str, status: u16) -> (Body, Option<u64>) {
        response_body(head, head.len() as u64, method, status)
    }

    #[test]
    fn framing_headers_are_found_in_any_case_and_order() {
        let h = b"HTTP/1.1 200 OK\r\nconnection: x\r\nCONTENT-LENGTH:  12 \r\nTransfer-Encoding: chunked\r\nContent-Type: a\r\n";
        assert_eq!(
            framing_headers(h),
            (Some(&b"chunked"[..]), Some(&b"12"[..]))
        );
        let none = b"GET /content-length: 3 HTTP/1.1\r\ncontent-lengthy: 4\r\nt: 1\r\n";
        assert_eq!(framing_headers(none), (None, None));
    }

    #[test]
    fn content_length_counts_down_across_ios() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
        let (mut b, used) = body(head, "GET", 200);
        assert_eq!((&b, used), (&Body::Length(90), None));
        assert_eq!(b.advance(b"", 89), None);
        assert_eq!(b.advance(b"", 5), Some(1), "the rest is the next message's");
        assert!(b.complete());
    }

    #[test]
    fn a_response_that_ends_inside_the_io_says_where() {
        let two = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 204 No\r\n\r\n";
        assert_eq!(body(two, "GET", 200), (Body::Length(0), Some(40)));
        assert_eq!(body(&two[40..], "GET", 204), (Body::Length(0), Some(19)));
        assert_eq!(request_used(b"GET / HTTP/1.1\r\n\r\nGET /2", 26), Some(18));
        assert_eq!(
            request_used(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET", 44),
            Some(41)
        );
        assert_eq!(
            request_used(b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc", 42),
            None
        );
        assert_eq!(request_used(b"GET / HTTP/1.1\r\nHost: a", 300), None);
    }

    #[test]
    fn no_body_for_head_1xx_204_304() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
        assert!(body(head, "HEAD", 200).0.complete());
        assert_eq!(
            body(b"HTTP/1.1 100 Continue\r\n\r\n", "POST", 100).1,
            Some(25)
        );
        assert!(body(b"HTTP/1.1 304 NM\r\n\r\n", "GET", 304).0.complete());
    }

    #[test]
    fn a_head_longer_than_the_capture_is_unknown() {
        let head = b"HTTP/1.1 200 OK\r\nServer: x\r\n";
        assert_eq!(response_body(head, 300, "GET", 200).0, Body::Unknown);
        assert_eq!(
            body(b"HTTP/1.0 200 OK\r\n\r\nabc", "GET", 200).0,
            Body::Unknown
        );
    }

    #[test]
    fn chunked_in_one_io() {
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let (b, used) = body(head, "GET", 200);
        assert!(b.complete());
        assert_eq!(used, Some(head.len() as u64));
        // The same without its final CRLF is not complete yet.
        let cut = &head[..head.len() - 2];
        let (mut b, used) = body(cut, "GET", 200);
        assert!(!b.complete() && used.is_none());
        assert_eq!(b.advance(b"\r\nHTTP", 6), Some(2));
        assert!(b.complete());
    }

    #[test]
    fn chunked_across_ios_and_out_of_sight() {
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let (mut b, _) = body(head, "GET", 200);
        assert_eq!(b.advance(b"3\r\nabc\r\n", 8), None);
        assert!(matches!(b, Body::Chunked(_)) && !b.complete());
        assert_eq!(
            b.advance(b"a; ext=1\r\n0123456789\r\n0\r\n\r\n", 27),
            Some(27)
        );
        assert!(b.complete(), "{b:?}");
        // A 200-byte chunk: the next size line lies past a 128-byte head.
        let (mut b, _) = body(head, "GET", 200);
        let big = [b"c8\r\n".as_slice(), &[b'x'; 124]].concat();
        b.advance(&big, 4 + 200 + 2 + 5);
        assert_eq!(b, Body::Unknown);
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for round in 0..5_000 {
            let bytes: Vec<u8> = (0..round % 140)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b"0123456789abcdefHTTP/1.1 \r\n:;chunked"[(x % 36) as usize]
                })
                .collect();
            let (mut b, _) = response_body(&bytes, x % 300, "GET", 200);
            let _ = b.advance(&bytes, x % 500);
            let _ = b.complete();
            let _ = request_used(&bytes, x % 300);
        }
    }
}
