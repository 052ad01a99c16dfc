//! HTTP/2 (RFC 9113) and gRPC from the bytes of a connection the probes
//! captured, in stages: `reader` turns I/O chunks into frames.

pub mod frame;
pub mod reader;

pub use reader::Chunk;
