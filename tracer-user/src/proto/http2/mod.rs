//! HTTP/2 (RFC 9113) and gRPC from the bytes of a connection the probes
//! captured, in stages: `reader` turns I/O chunks into frames, `hpack`
//! decodes header blocks per direction in wire order (with `table` and
//! `huffman`), `fields` keeps the few values that may be shown, `streams`
//! makes each stream a request, and `connection` ties them together.
//! About 4-7 us per stream in a release build (both directions, the
//! tests' corpus), a quarter of it Huffman decoding.
//!
//! The seam: feed [`Http2Connection`] every read and write of a connection
//! as a [`Chunk`] (captured bytes, the I/O's real length, whether earlier
//! I/O was lost), and take [`H2Request`]s as their streams end.

pub mod connection;
pub mod fields;
pub mod frame;
pub mod hpack;
pub mod huffman;
pub mod reader;
pub mod streams;
pub mod table;

pub use connection::{Detection, Direction, Http2Connection, Role, Start};
pub use reader::Chunk;
pub use streams::{H2Request, Span, StreamEnd};

/// Whether bytes that start a connection are (so far) its client
/// preface: how a plaintext or decrypted connection is told to be HTTP/2.
pub fn starts_like_preface(bytes: &[u8]) -> bool {
    let n = bytes.len().min(frame::PREFACE.len());
    n > 0 && bytes[..n] == frame::PREFACE[..n]
}
