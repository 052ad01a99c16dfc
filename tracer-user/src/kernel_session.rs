//! Kernel confirmation for a library user's own requests: the probes that
//! `tracer trace` loads, on this process's tgid, and for each request a
//! [`TracedClient`](crate::TracedClient) finished, the kernel's verdict
//! from the same join (`timeline::build`) that `trace` prints.
//!
//! The session never touches the process's capabilities: dropping them
//! after the probes are attached is the `tracer` binary's choice, not a
//! library's to make for its host.
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};

use crate::{
    client::{TracedClientBuilder, request_log::RequestLog},
    preflight::{self, Status},
    probes::{EventStream, KernelEvent, ProbeError, ProbeOptions, Probes},
    timeline::{self, DerivedStep, EventBody, RequestInfo, RequestTimeline},
};

/// Why kernel confirmation cannot start, or a verdict cannot be given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// Loading eBPF programs takes CAP_BPF and CAP_PERFMON (or
    /// CAP_SYS_ADMIN) in the calling process's effective set.
    #[error("this process lacks CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)")]
    MissingCapabilities,
    /// The probes read `struct sock` offsets and their tracepoints from the
    /// kernel's BTF (`/sys/kernel/btf/vmlinux`).
    #[error("kernel BTF is not usable: {detail}")]
    NoBtf { detail: String },
    /// A tracepoint the probes cannot do without, e.g. `sock:inet_sock_set_state`.
    #[error("the kernel has no tracepoint {tracepoint}")]
    MissingTracepoint { tracepoint: String },
    /// The kernel refused to load or attach a program, or a map.
    #[error("the eBPF probes did not load: {0}")]
    Load(#[source] ProbeError),
    /// [`KernelSession::start`] reads the kernel's events on a tokio task.
    #[error("a KernelSession must be started inside a tokio runtime")]
    NoRuntime,
    /// No request of that number has finished: its body was not read to
    /// the end (or to an error) through its `TracedResponse`.
    #[error("request {0} has not finished in this session")]
    UnknownRequest(u32),
    /// The task reading the kernel's events has ended (its runtime shut down).
    #[error("the kernel event reader has stopped")]
    ReaderStopped,
}

/// What the kernel saw of one request, from its own events.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct KernelVerdict {
    pub request: u32,
    /// The cookie of the socket the kernel saw carry the request; None
    /// when it saw none, and then nothing below is confirmed.
    pub socket_cookie: Option<u64>,
    /// The kernel saw that socket connect (a SYN) for this request.
    pub connected: bool,
    /// Kernel-confirmed reuse: the socket of an earlier request of this
    /// session, with no connect since.
    pub reused: bool,
    /// The request whose socket this one reused.
    pub reused_from: Option<u32>,
    /// Bytes the kernel sent / received on the socket between `GetConn`
    /// and the end of the body; None before Linux 6.3 (no
    /// `sock_send_length` / `sock_recv_length` tracepoints).
    pub bytes_sent: Option<u64>,
    pub bytes_received: Option<u64>,
    /// Go's `WroteRequest` and `GotFirstResponseByte` read off the kernel's
    /// first send and recv (CLOCK_MONOTONIC ns): plain HTTP/1.x only, where
    /// those are exact; None where the client stamps them itself (TLS) or
    /// they cannot be told (h2).
    pub wrote_request_ns: Option<u64>,
    pub got_first_response_byte_ns: Option<u64>,
    /// Client and kernel disagree on reuse (the kernel's answer is `reused`).
    pub disagreement: Option<String>,
}

/// The kernel's view of this process's sockets, for the requests of the
/// [`TracedClient`](crate::TracedClient)s built with
/// [`TracedClientBuilder::kernel`]. Start it inside a tokio runtime; the
/// probes stay attached until it is dropped. Needs CAP_BPF and CAP_PERFMON
/// (or root); the capabilities are left as they are.
///
/// It keeps every finished request and every kernel event of the process
/// until it is dropped: a session is for a bounded run of requests, whose
/// numbers are unique within it.
///
/// ```no_run
/// use tracer_user::{ClientOptions, KernelSession, TracedClientBuilder};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let kernel = KernelSession::start()?; // KernelError::MissingCapabilities without CAP_BPF
/// let client = TracedClientBuilder::new(&ClientOptions::default())
///     .kernel(&kernel)
///     .build()?;
/// for n in 1..=2 {
///     let request = client.reqwest().get("http://127.0.0.1:8080/").build()?;
///     client.execute(n, request).await?.bytes().await?; // the body, to its end
///     let verdict = kernel.verdict(n).await?;
///     println!("{n}: cookie {:?} reused {}", verdict.socket_cookie, verdict.reused);
/// }
/// # Ok(()) }
/// ```
pub struct KernelSession {
    log: Arc<RequestLog>,
    events: Arc<Mutex<Vec<KernelEvent>>>,
    flush: mpsc::UnboundedSender<oneshot::Sender<()>>,
    reader: tokio::task::JoinHandle<()>,
    /// Send and recv tracepoints are attached (Linux 6.3+).
    io: bool,
    probes: Probes,
}

impl KernelSession {
    /// Loads and attaches the probes, traces this process, and starts
    /// reading the kernel's events on a task of the current tokio runtime.
    pub fn start() -> Result<Self, KernelError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| KernelError::NoRuntime)?;
        let report = preflight::run();
        if !preflight::has_bpf_privilege() {
            return Err(KernelError::MissingCapabilities);
        }
        if let Some(missing) = report.checks.iter().find(|c| c.status == Status::Missing) {
            return Err(match missing.what.strip_prefix("tracepoint ") {
                Some(tracepoint) => KernelError::MissingTracepoint {
                    tracepoint: tracepoint.to_string(),
                },
                None => KernelError::NoBtf {
                    detail: missing.detail.clone(),
                },
            });
        }
        let opts = ProbeOptions {
            ring_bytes: None,
            skip: report.skip_programs.clone(),
            sock_offsets: report.sock_offsets,
        };
        let mut probes = Probes::load(&opts).map_err(KernelError::Load)?;
        let io = !probes
            .skipped
            .iter()
            .any(|(p, _)| *p == "tracer_send" || *p == "tracer_recv");
        probes
            .trace_tgid(std::process::id())
            .map_err(KernelError::Load)?;
        let stream = probes.events().map_err(KernelError::Load)?;
        let events = Arc::new(Mutex::new(Vec::new()));
        let (flush, asked) = mpsc::unbounded_channel();
        let reader = runtime.spawn(read(stream, Arc::clone(&events), asked));
        Ok(KernelSession {
            log: Arc::default(),
            events,
            flush,
            reader,
            io,
            probes,
        })
    }

    /// The kernel's verdict on request `request`, once its body was read to
    /// the end (or failed) through its `TracedResponse`.
    pub async fn verdict(&self, request: u32) -> Result<KernelVerdict, KernelError> {
        self.verdicts()
            .await?
            .into_iter()
            .rev()
            .find(|v| v.request == request)
            .ok_or(KernelError::UnknownRequest(request))
    }

    /// The verdicts on every finished request, in the order they started.
    pub async fn verdicts(&self) -> Result<Vec<KernelVerdict>, KernelError> {
        // Everything a finished request did is in the rings by now: a
        // program commits its record before the syscall returns.
        let (done, flushed) = oneshot::channel();
        self.flush
            .send(done)
            .map_err(|_| KernelError::ReaderStopped)?;
        flushed.await.map_err(|_| KernelError::ReaderStopped)?;

        let mut outcomes = self.log.finished_requests();
        outcomes.sort_by_key(|o| o.start_ns);
        let mut kernel = self
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        // A flush hands out what it holds: a record committed late on
        // another CPU can follow a newer one.
        kernel.sort_by_key(|e| e.ts_ns);
        let mut client = Vec::new();
        let infos = outcomes
            .into_iter()
            .map(|o| {
                client.extend_from_slice(&o.events);
                RequestInfo::from_outcome(o)
            })
            .collect();
        let lost = self.probes.lost_events().unwrap_or(0);
        let trace = timeline::build(infos, client, kernel, true, lost);
        Ok(trace.requests.iter().map(|t| judge(t, self.io)).collect())
    }

    /// Kernel events the rings had no room for so far: a verdict may then
    /// lack evidence.
    pub fn lost_events(&self) -> u64 {
        self.probes.lost_events().unwrap_or(0)
    }
}

impl Drop for KernelSession {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl TracedClientBuilder {
    /// Reports every request the client finishes to `session`, for
    /// [`KernelSession::verdict`]. Several clients may share one session.
    pub fn kernel(mut self, session: &KernelSession) -> Self {
        self.log = Some(Arc::clone(&session.log));
        self
    }
}

/// The verdict on one joined request; `io`: send and recv are traced.
fn judge(t: &RequestTimeline, io: bool) -> KernelVerdict {
    let cookie = t.cookie;
    let mine = t
        .events
        .iter()
        .filter(|e| cookie.is_some() && e.cookie == cookie);
    let (sent, received) = t.kernel_bytes();
    let step = |step: DerivedStep| {
        mine.clone()
            .find(|e| e.body == EventBody::Derived(step))
            .map(|e| e.ts_ns)
    };
    let counted = |n| (io && cookie.is_some()).then_some(n);
    KernelVerdict {
        request: t.info.number,
        socket_cookie: cookie,
        connected: cookie.is_some_and(|c| timeline::opened_socket(t, c)),
        reused: t.verdict.kernel_confirmed && t.verdict.reused,
        reused_from: t.verdict.reused_from,
        bytes_sent: counted(sent),
        bytes_received: counted(received),
        wrote_request_ns: step(DerivedStep::WroteRequest),
        got_first_response_byte_ns: step(DerivedStep::GotFirstResponseByte),
        disagreement: t.verdict.disagreement.clone(),
    }
}

/// Empties the rings while the requests run, so they never fill up, and
/// everything at once when a verdict is asked for.
async fn read(
    mut stream: EventStream,
    events: Arc<Mutex<Vec<KernelEvent>>>,
    mut asked: mpsc::UnboundedReceiver<oneshot::Sender<()>>,
) {
    let mut batch = Vec::new();
    let keep = |batch: &mut Vec<KernelEvent>| {
        events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .append(batch)
    };
    loop {
        tokio::select! {
            flush = asked.recv() => {
                // None: the session is gone.
                let Some(done) = flush else { return };
                stream.drain(&mut batch);
                keep(&mut batch);
                let _ = done.send(());
            }
            read = stream.next_batch(&mut batch) => {
                if read.is_err() {
                    return;
                }
                keep(&mut batch);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::judge;
    use crate::probes::{KernelDetail, KernelEvent};
    use crate::timeline::{
        self,
        test_events::{SERVER, addr, kernel, request},
    };
    use tracer_ebpf::tcp_state::{CLOSE, ESTABLISHED, SYN_SENT};

    const LOCAL: &str = "127.0.0.1:40000";

    fn io(ts: u64, sent: i32, received: i32) -> [KernelEvent; 2] {
        let send = KernelDetail::Send {
            bytes: sent,
            protocol: 6,
        };
        let recv = KernelDetail::Recv {
            bytes: received,
            protocol: 6,
        };
        [kernel(ts, 7, send), kernel(ts + 200, 7, recv)]
    }

    /// Request 1 connects socket 7, request 2 rides it, request 3 is
    /// nowhere in the kernel's events.
    fn verdicts(io_traced: bool) -> Vec<super::KernelVerdict> {
        let remote = addr(SERVER);
        let state = |old, new, local| KernelDetail::State {
            old,
            new,
            local: addr(local),
            remote,
        };
        let connect = KernelDetail::Connect {
            fd: 9,
            ret: 0,
            remote,
            duration_ns: 50,
        };
        let mut events = vec![
            kernel(1100, 7, state(CLOSE, SYN_SENT, "0.0.0.0:0")),
            kernel(1100, 7, connect),
            kernel(1150, 7, state(SYN_SENT, ESTABLISHED, LOCAL)),
        ];
        events.extend(io(1200, 78, 100));
        // After request 1's body ended: not its bytes.
        events.push(kernel(
            3000,
            7,
            KernelDetail::Send {
                bytes: 5,
                protocol: 6,
            },
        ));
        events.extend(io(5100, 80, 90));
        let requests = vec![
            request(1, 1000, LOCAL, false),
            request(2, 5000, LOCAL, true),
            request(3, 8000, "127.0.0.1:40001", false),
        ];
        let trace = timeline::build(requests, Vec::new(), events, true, 0);
        trace.requests.iter().map(|t| judge(t, io_traced)).collect()
    }

    #[test]
    fn a_verdict_counts_its_own_socket_bytes_within_the_request() {
        let v = verdicts(true);
        assert_eq!(v[0].socket_cookie, Some(7));
        assert!(v[0].connected && !v[0].reused);
        assert_eq!(
            (v[0].bytes_sent, v[0].bytes_received),
            (Some(78), Some(100))
        );
        assert_eq!(v[0].wrote_request_ns, Some(1200));
        assert_eq!(v[0].got_first_response_byte_ns, Some(1400));

        assert_eq!(v[1].socket_cookie, Some(7));
        assert!(v[1].reused && !v[1].connected);
        assert_eq!(v[1].reused_from, Some(1));
        assert_eq!((v[1].bytes_sent, v[1].bytes_received), (Some(80), Some(90)));
        assert_eq!(v[1].wrote_request_ns, Some(5100));
    }

    #[test]
    fn what_the_kernel_did_not_see_is_none_not_zero() {
        let v = verdicts(true);
        assert_eq!(v[2].socket_cookie, None);
        assert!(!v[2].connected && !v[2].reused);
        assert_eq!((v[2].bytes_sent, v[2].bytes_received), (None, None));
        assert_eq!(v[2].wrote_request_ns, None);

        // Before Linux 6.3: no send/recv tracepoints, so no byte counts.
        let v = verdicts(false);
        assert!(v[1].reused);
        assert_eq!((v[1].bytes_sent, v[1].bytes_received), (None, None));
    }
}
