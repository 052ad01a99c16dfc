//! The header fields kept from a decoded block. HPACK makes every value
//! pass through userspace, credentials included: only the pseudo-headers,
//! content-type, grpc-status and grpc-message are ever stored, and the
//! path's credential-like query values are redacted as for HTTP/1.

use crate::secrets::shown_target;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeptFields {
    pub method: Option<String>,
    pub scheme: Option<String>,
    pub authority: Option<String>,
    /// Query values that look like credentials are redacted.
    pub path: Option<String>,
    pub status: Option<u16>,
    pub content_type: Option<String>,
    pub grpc_status: Option<u32>,
    /// Percent-decoded (gRPC encodes it for transport).
    pub grpc_message: Option<String>,
}

/// Receives every decoded field and keeps the few allowed; every other
/// value is dropped as it arrives.
#[derive(Default)]
pub struct FieldSink {
    fields: KeptFields,
}

impl FieldSink {
    pub fn field(&mut self, name: &[u8], value: &[u8]) {
        let text = || String::from_utf8_lossy(value).into_owned();
        let f = &mut self.fields;
        match name {
            b":method" => f.method = Some(text()),
            b":scheme" => f.scheme = Some(text()),
            // A userinfo part (deprecated in h2) would carry a password.
            b":authority" => {
                let v = text();
                let host = v.rsplit_once('@').map_or(v.as_str(), |(_, h)| h);
                f.authority = Some(host.to_string());
            }
            b":path" => f.path = Some(shown_target(&text()).into_owned()),
            // A status that is not 3 digits is not shown as one.
            b":status" => {
                f.status = std::str::from_utf8(value)
                    .ok()
                    .filter(|s| s.len() == 3)
                    .and_then(|s| s.parse().ok());
            }
            b"content-type" => f.content_type = Some(text()),
            b"grpc-status" => {
                f.grpc_status = std::str::from_utf8(value).ok().and_then(|s| s.parse().ok());
            }
            b"grpc-message" => {
                let decoded = percent_encoding::percent_decode(value).decode_utf8_lossy();
                f.grpc_message = Some(decoded.into_owned());
            }
            _ => {}
        }
    }

    pub fn into_fields(self) -> KeptFields {
        self.fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_fields_are_kept_and_paths_are_redacted() {
        let mut sink = FieldSink::default();
        sink.field(b":path", b"/p?token=abc&page=2");
        sink.field(b"authorization", b"Bearer s3cret");
        sink.field(b":authority", b"user:pw@example.com");
        sink.field(b"grpc-message", b"not%20found");
        sink.field(b":status", b"2000");
        let f = sink.into_fields();
        assert_eq!(f.path.as_deref(), Some("/p?token=redacted&page=2"));
        assert_eq!(f.authority.as_deref(), Some("example.com"));
        assert_eq!(f.grpc_message.as_deref(), Some("not found"));
        assert_eq!(f.status, None);
        assert!(!format!("{f:?}").contains("s3cret"));
    }
}
