//! HTTP/2 (RFC 9113) and gRPC from the bytes of a connection the probes
//! captured, in stages: `reader` turns I/O chunks into frames, `hpack`
//! decodes header blocks per direction in wire order, `fields` keeps the
//! few values that may be shown.

pub mod fields;
pub mod frame;
pub mod hpack;
pub mod reader;

pub use reader::Chunk;
