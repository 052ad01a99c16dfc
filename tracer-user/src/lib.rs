//! tracer: Go-style httptrace hooks for reqwest, with the kernel's view of
//! the same sockets from eBPF tracepoints, merged on one clock.
//!
//! Data flows one way: probes -> events -> timeline -> render.

pub mod attach;
pub mod cli;
pub mod client;
pub mod clock;
pub mod demo;
pub mod exit;
pub mod expect;
/// Test and bench knobs: only the knob binaries turn them on.
#[doc(hidden)]
pub mod knobs;
pub mod preflight;
pub mod privilege;
pub mod probes;
pub mod render;
pub mod run;
pub mod secrets;
pub mod timeline;
pub mod trace;
