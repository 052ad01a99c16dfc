//! HTTP/1.x heads from the first (at most 128) bytes of a send or recv.
//! Total on arbitrary bytes: anything that is not a request or status line
//! is `None`, never a panic.
use std::borrow::Cow;

/// `METHOD SP target SP HTTP/1.x`, as seen at the start of a write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLine {
    /// One of [`METHODS`], so that no request needs a `String` for it.
    pub method: &'static str,
    /// The request target (usually a path); cut short if the head was.
    pub target: String,
    /// "HTTP/1.1", or empty when the head ended before the version. The
    /// usual two are not allocated: this is parsed for every request.
    pub version: Cow<'static, str>,
    /// The `Host` header, when it fits in the head.
    pub host: Option<String>,
}

/// `HTTP/1.x SP code`, as seen at the start of a read (the code is all
/// that attach uses: one comes with every response).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusLine {
    pub code: u16,
}

pub const METHODS: &[&str] = &[
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

fn token_char(b: u8) -> bool {
    b.is_ascii_graphic()
}

/// The first line of `head`, and whether it ended (CRLF or LF) inside it.
fn first_line(head: &[u8]) -> (&[u8], bool) {
    match head.iter().position(|&b| b == b'\n') {
        Some(i) => {
            let line = &head[..i];
            (line.strip_suffix(b"\r").unwrap_or(line), true)
        }
        None => (head, false),
    }
}

pub fn parse_request(head: &[u8]) -> Option<RequestLine> {
    let (line, complete) = first_line(head);
    let sp = line.iter().position(|&b| b == b' ')?;
    let method = *METHODS.iter().find(|m| m.as_bytes() == &line[..sp])?;
    let rest = &line[sp + 1..];
    let (target, version) = match rest.iter().position(|&b| b == b' ') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        // A head cut inside the target: keep what we have.
        None if !complete => (rest, &b""[..]),
        None => return None,
    };
    let starts_ok = matches!(target.first(), Some(b'/' | b'*'))
        || target.starts_with(b"http://")
        || target.starts_with(b"https://")
        || method == "CONNECT";
    if target.is_empty() || !starts_ok || !target.iter().all(|&b| token_char(b)) {
        return None;
    }
    let version_ok =
        version.starts_with(b"HTTP/1.") || (!complete && b"HTTP/1.".starts_with(version));
    if !version_ok || !version.iter().all(|&b| token_char(b)) {
        return None;
    }
    Some(RequestLine {
        method,
        target: String::from_utf8_lossy(target).into_owned(),
        version: match version {
            b"HTTP/1.1" => Cow::Borrowed("HTTP/1.1"),
            b"HTTP/1.0" => Cow::Borrowed("HTTP/1.0"),
            v if v.len() >= 8 => Cow::Owned(String::from_utf8_lossy(v).into_owned()),
            _ => Cow::Borrowed(""),
        },
        host: header_value(head, b"host"),
    })
}

/// Whether `head` is the start of a request line and no more: no line
/// end yet, and a method (or its start) first. A send seen whole that is
/// only this is half of a request head split across sends.
pub fn request_start(head: &[u8]) -> bool {
    if head.is_empty() || head.contains(&b'\n') {
        return false;
    }
    let sp = head.iter().position(|&b| b == b' ');
    let method = &head[..sp.unwrap_or(head.len())];
    let known = METHODS.iter().any(|m| match sp {
        Some(_) => m.as_bytes() == method,
        None => m.as_bytes().starts_with(method),
    });
    known && (sp.is_none() || head.len() == method.len() + 1 || parse_request(head).is_some())
}

pub fn parse_status(head: &[u8]) -> Option<StatusLine> {
    let (line, _) = first_line(head);
    if !line.starts_with(b"HTTP/1.") || line.len() < 12 || line[8] != b' ' {
        return None;
    }
    let digits = &line[9..12];
    if !digits.iter().all(u8::is_ascii_digit) || line.get(12).is_some_and(|&b| b != b' ') {
        return None;
    }
    let code = digits
        .iter()
        .fold(0u16, |acc, &d| acc * 10 + u16::from(d - b'0'));
    Some(StatusLine { code })
}

/// A TLS record header: handshake (22) or application data (23), version 3.x.
pub fn looks_like_tls(head: &[u8]) -> bool {
    matches!(head, [0x14..=0x17, 0x03, 0..=0x04, ..])
}

/// The value of header `name` (lower case) if a whole line of it is in `head`.
fn header_value(head: &[u8], name: &[u8]) -> Option<String> {
    head.split(|&b| b == b'\n').skip(1).find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        if !line[..colon].eq_ignore_ascii_case(name) {
            return None;
        }
        let value = line[colon + 1..].strip_suffix(b"\r")?;
        let value = String::from_utf8_lossy(value).trim().to_string();
        (!value.is_empty()).then_some(value)
    })
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    reason = "a failed parse should fail the test loudly"
)]
mod tests {
    use super::*;

    #[test]
    fn request_line_with_host() {
        let r = parse_request(b"GET /a/b?c=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAccept: */*\r\n")
            .unwrap();
        assert_eq!((r.method, r.target.as_str()), ("GET", "/a/b?c=1"));
        assert_eq!(r.version, "HTTP/1.1");
        assert_eq!(r.host.as_deref(), Some("127.0.0.1:8080"));
    }

    #[test]
    fn request_line_cut_by_the_head() {
        let mut head = b"POST /".to_vec();
        head.extend(std::iter::repeat_n(b'x', 122));
        let r = parse_request(&head).unwrap();
        assert_eq!(r.method, "POST");
        assert_eq!(r.target.len(), 123);
        assert_eq!(r.version, "");
    }

    #[test]
    fn not_requests() {
        for head in [
            &b"GETX / HTTP/1.1\r\n"[..],
            b"GET / HTTP/2\r\n",
            b"GET nopath HTTP/1.1\r\n",
            b"get / HTTP/1.1\r\n",
            b"",
            b" ",
            b"GET ",
            b"HTTP/1.1 200 OK\r\n",
        ] {
            assert_eq!(
                parse_request(head),
                None,
                "{:?}",
                String::from_utf8_lossy(head)
            );
        }
    }

    #[test]
    fn starts_of_request_lines() {
        for yes in [
            &b"G"[..],
            b"GE",
            b"GET",
            b"GET ",
            b"GET /pa",
            b"POST /a HTTP/1.",
        ] {
            assert!(request_start(yes), "{:?}", String::from_utf8_lossy(yes));
        }
        for no in [
            &b""[..],
            b"GET / HTTP/1.1\r\n",
            b"GETX",
            b"{\"a\":1}",
            b"get /",
            b"GET x",
        ] {
            assert!(!request_start(no), "{:?}", String::from_utf8_lossy(no));
        }
    }

    #[test]
    fn status_lines() {
        let s = parse_status(b"HTTP/1.1 404 Not Found\r\n").unwrap();
        assert_eq!(s.code, 404);
        assert_eq!(parse_status(b"HTTP/1.0 200\r\n").map(|s| s.code), Some(200));
        assert_eq!(parse_status(b"HTTP/1.1 20x OK"), None);
        assert_eq!(parse_status(b"HTTP/1.1 2000 OK"), None);
        assert_eq!(parse_status(b"HTTP/1.1"), None);
        assert_eq!(parse_status(b"GET / HTTP/1.1\r\n"), None);
    }

    #[test]
    fn tls_records() {
        assert!(looks_like_tls(&[0x16, 0x03, 0x01, 0x02, 0x00]));
        assert!(!looks_like_tls(b"GET / HTTP/1.1"));
        assert!(!looks_like_tls(&[0x16]));
    }

    mod properties {
        use proptest::prelude::*;

        use super::super::*;

        proptest! {
            /// Any head, of any length up to past the 128 the kernel copies.
            #[test]
            fn arbitrary_heads_never_panic(head in proptest::collection::vec(any::<u8>(), 0..200)) {
                let _ = parse_request(&head);
                let _ = parse_status(&head);
                let _ = looks_like_tls(&head);
            }

            /// Heads that look almost like HTTP reach the deeper branches.
            #[test]
            fn near_http_heads_never_panic(
                head in "(GET|POST|HEAD|CONNECT|HTTP/1\\.[01]|get)?[ /a-z*:0-9.\\r\\n\\x00-\\xff]{0,140}",
            ) {
                let _ = parse_request(head.as_bytes());
                let _ = parse_status(head.as_bytes());
            }

            /// A well-formed request line is read back as written.
            #[test]
            fn request_lines_parse_back(path in "/[a-zA-Z0-9/._~-]{0,60}", host in "[a-z0-9.]{1,30}") {
                let head = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
                let r = parse_request(head.as_bytes());
                prop_assert!(r.is_some());
                let r = r.unwrap();
                prop_assert_eq!(r.target, path);
                prop_assert_eq!(r.host, Some(host));
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // xorshift: deterministic noise, biased towards the bytes that matter.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let alphabet = b"GETPOSHTP/1. \r\n:0123456789\xff\x00\x16\x03";
        for round in 0..20_000 {
            let len = round % 130;
            let head: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if x.is_multiple_of(3) {
                        x as u8
                    } else {
                        alphabet[(x >> 8) as usize % alphabet.len()]
                    }
                })
                .collect();
            let _ = parse_request(&head);
            let _ = parse_status(&head);
            let _ = looks_like_tls(&head);
            for cut in 0..head.len().min(20) {
                let _ = parse_request(&head[cut..]);
                let _ = parse_status(&head[..cut]);
            }
        }
    }
}
