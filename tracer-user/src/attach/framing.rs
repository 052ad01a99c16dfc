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
}

/// The framing of a response whose status line starts `head` (the first
/// captured bytes of an I/O of `len` bytes), answering `method`. The body
/// bytes of this same I/O are already taken into account.
pub fn response_body(head: &[u8], len: u64, method: &str, status: u16) -> Body {
    let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Body::Unknown;
    };
    let (fields, end) = (&head[..end], end as u64 + 4);
    // RFC 9112 6.3: these never have a body, whatever the headers say.
    if method == "HEAD" || status < 200 || status == 204 || status == 304 {
        return Body::Length(0);
    }
    let rest = len.saturating_sub(end);
    let body_head = head.get(end as usize..).unwrap_or_default();
    if header(fields, b"transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case(b"chunked")) {
        let mut chunks = Body::Chunked(Chunks {
            seen: 0,
            next: 0,
            last: false,
            done: false,
        });
        chunks.advance(body_head, rest);
        return chunks;
    }
    match header(fields, b"content-length").and_then(parse_u64) {
        Some(n) => Body::Length(n.saturating_sub(rest)),
        None => Body::Unknown,
    }
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
    /// (empty when no head came with the I/O).
    pub fn advance(&mut self, head: &[u8], len: u64) {
        match self {
            Body::Length(n) => *n = n.saturating_sub(len),
            Body::Chunked(c) => {
                if !c.advance(head, len) {
                    *self = Body::Unknown;
                }
            }
            Body::Unknown => {}
        }
    }
}

impl Chunks {
    /// False when a chunk-size line fell outside what was captured.
    fn advance(&mut self, head: &[u8], len: u64) -> bool {
        let end = self.seen + len;
        while self.next < end && !self.done {
            let Some(line) = head.get((self.next - self.seen) as usize..) else {
                return false;
            };
            if self.last {
                // No trailer fields: the body ends with this CRLF.
                if !line.starts_with(b"\r\n") {
                    return false;
                }
                self.next += 2;
                self.done = true;
                break;
            }
            let Some(eol) = line.windows(2).position(|w| w == b"\r\n") else {
                return false;
            };
            let digits = line[..eol].split(|&b| b == b';').next().unwrap_or_default();
            let Some(size) = parse_hex(digits) else {
                return false;
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
        true
    }
}

fn header<'a>(fields: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    fields.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        line[..colon]
            .eq_ignore_ascii_case(name)
            .then(|| line[colon + 1..].trim_ascii())
    })
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

    #[test]
    fn content_length_counts_down_across_ios() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";
        let mut b = response_body(head, head.len() as u64, "GET", 200);
        assert_eq!(b, Body::Length(90));
        b.advance(b"", 89);
        assert!(!b.complete());
        b.advance(b"", 1);
        assert!(b.complete());
    }

    #[test]
    fn no_body_for_head_1xx_204_304() {
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
        assert!(response_body(head, 39, "HEAD", 200).complete());
        assert!(response_body(b"HTTP/1.1 100 Continue\r\n\r\n", 25, "POST", 100).complete());
        assert!(response_body(b"HTTP/1.1 304 NM\r\n\r\n", 19, "GET", 304).complete());
    }

    #[test]
    fn a_head_longer_than_the_capture_is_unknown() {
        let head = b"HTTP/1.1 200 OK\r\nServer: x\r\n";
        assert_eq!(response_body(head, 300, "GET", 200), Body::Unknown);
        let no_length = b"HTTP/1.0 200 OK\r\n\r\nabc";
        assert_eq!(response_body(no_length, 22, "GET", 200), Body::Unknown);
    }

    #[test]
    fn chunked_in_one_io() {
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert!(response_body(head, head.len() as u64, "GET", 200).complete());
        // The same without its final CRLF is not complete yet.
        let cut = &head[..head.len() - 2];
        let mut b = response_body(cut, cut.len() as u64, "GET", 200);
        assert!(!b.complete());
        b.advance(b"\r\n", 2);
        assert!(b.complete());
    }

    #[test]
    fn chunked_across_ios_and_out_of_sight() {
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut b = response_body(head, head.len() as u64, "GET", 200);
        b.advance(b"3\r\nabc\r\n", 8);
        assert!(matches!(b, Body::Chunked(_)) && !b.complete());
        b.advance(b"a; ext=1\r\n0123456789\r\n0\r\n\r\n", 29);
        assert!(b.complete(), "{b:?}");
        // A 200-byte chunk: the next size line lies past a 128-byte head.
        let mut b = response_body(head, head.len() as u64, "GET", 200);
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
            let mut b = response_body(&bytes, x % 300, "GET", 200);
            b.advance(&bytes, x % 500);
            let _ = b.complete();
        }
    }
}
