//! Whether hyper keeps a connection for the next request once a response
//! body has been read: the rules of RFC 9112 section 9.3 that hyper follows.

use http::header::{CONNECTION, CONTENT_LENGTH, HeaderMap, HeaderName, TRANSFER_ENCODING};
use reqwest::{Method, StatusCode, Version};

/// HTTP/2 always; HTTP/1.x unless either side said `close`, or the body
/// ends only when the server closes (neither length nor chunked).
pub(crate) fn keeps_connection(
    method: &Method,
    request_headers: &[(String, String)],
    version: Version,
    status: StatusCode,
    headers: &HeaderMap,
) -> bool {
    if version == Version::HTTP_2 {
        return true;
    }
    let asked_close = request_headers
        .iter()
        .any(|(name, value)| name.eq_ignore_ascii_case("connection") && has_token(value, "close"));
    if asked_close || header_has(headers, CONNECTION, "close") {
        return false;
    }
    let bodiless = *method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let framed = bodiless
        || headers.contains_key(CONTENT_LENGTH)
        || header_has(headers, TRANSFER_ENCODING, "chunked");
    framed
        && match version {
            Version::HTTP_11 => true,
            Version::HTTP_10 => header_has(headers, CONNECTION, "keep-alive"),
            _ => false,
        }
}

fn header_has(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| has_token(v, token))
}

fn has_token(value: &str, token: &str) -> bool {
    value
        .split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keeps(version: Version, headers: &[(&str, &str)]) -> bool {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let name: HeaderName = name.parse().expect("header name");
            map.append(name, value.parse().expect("header value"));
        }
        keeps_connection(&Method::GET, &[], version, StatusCode::OK, &map)
    }

    #[test]
    fn http11_with_a_length_is_kept_unless_closed() {
        assert!(keeps(Version::HTTP_11, &[("content-length", "2")]));
        assert!(keeps(
            Version::HTTP_11,
            &[("transfer-encoding", "gzip, chunked")]
        ));
        assert!(!keeps(
            Version::HTTP_11,
            &[("content-length", "2"), ("connection", "Close")]
        ));
    }

    #[test]
    fn a_body_delimited_by_close_ends_the_connection() {
        assert!(!keeps(Version::HTTP_11, &[]));
    }

    #[test]
    fn http10_needs_keep_alive_and_http2_is_always_kept() {
        assert!(!keeps(Version::HTTP_10, &[("content-length", "2")]));
        let kept = [("content-length", "2"), ("connection", "keep-alive")];
        assert!(keeps(Version::HTTP_10, &kept));
        assert!(keeps(Version::HTTP_2, &[("connection", "close")]));
    }
}
