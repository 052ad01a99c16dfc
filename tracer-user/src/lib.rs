//! tracer: Go's `net/http/httptrace` hooks for reqwest, with the kernel's
//! view of the same sockets from eBPF tracepoints, merged on one clock.
//!
//! The library's API is the client: a reqwest client that reports every
//! hook (`GetConn`, DNS, connect, TLS, `GotConn` with reuse and idle time,
//! the request's writes and the response's first byte where they can be
//! seen, `PutIdleConn`) to a [`ClientTrace`], for requests it sends and
//! whose [`TracedResponse`] it hands back.
//!
//! ```no_run
//! use std::sync::Arc;
//! use tracer_user::{ClientEvent, ClientOptions, TracedClientBuilder};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = TracedClientBuilder::new(&ClientOptions::default())
//!     .trace(Arc::new(|e: &ClientEvent| println!("{} {}", e.hook.name(), e.hook.detail())))
//!     .build()?;
//! let request = client.reqwest().get("http://127.0.0.1:8080/").build()?;
//! let response = client.execute(1, request).await?;
//! println!("{} reused: {:?}", response.status(), response.reused());
//! let body = response.text().await?; // BodyDone, PutIdleConn
//! # Ok(()) }
//! ```
//!
//! With the default `ebpf` feature, a `KernelSession` confirms each
//! request at socket level for a process with CAP_BPF and CAP_PERFMON: the
//! socket cookie the kernel saw, whether it connected or was reused, its
//! bytes, and the kernel's `WroteRequest` / `GotFirstResponseByte`.
//!
//! Everything else (the probes, the timeline, the `tracer` command) is the
//! binary's; the modules below marked hidden are not a stable API.
//!
//! Data flows one way: probes -> events -> timeline -> render.

pub mod client;

pub use client::{
    ClientError, ClientEvent, ClientOptions, ClientTrace, Hook, HttpVersionPref, RequestOutcome,
    RequestSpec, TracedClient, TracedClientBuilder, TracedResponse, instrumented_client,
    with_request,
};

#[cfg(feature = "ebpf")]
mod kernel_session;
#[cfg(feature = "ebpf")]
pub use kernel_session::{KernelError, KernelSession, KernelVerdict};

mod attach;
#[doc(hidden)]
pub mod cli;
mod clock;
mod demo;
mod exit;
mod expect;
mod export;
/// Test and bench knobs: only the knob binaries turn them on.
#[doc(hidden)]
pub mod knobs;
#[doc(hidden)]
pub mod preflight;
mod privilege;
#[doc(hidden)]
pub mod probes;
#[doc(hidden)]
pub mod proto;
mod render;
mod run;
mod secrets;
mod timeline;
mod trace;
