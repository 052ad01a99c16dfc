//! Where hook events go: a [`ClientTrace`] the caller supplies, and the
//! per-request collection [`TracedClient`](super::TracedClient) keeps.

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use super::event::{ClientEvent, Hook};
use super::request_log::RequestLog;
use super::run::RequestOutcome;
use crate::clock::monotonic_ns;

/// Receives each hook event, like Go's `httptrace.ClientTrace` with one
/// callback per hook folded into one method over [`Hook`].
///
/// Called on whichever tokio worker runs the connection; keep it short.
/// Connection-level events (DNS, connect, TLS) are delivered when the
/// connector finishes, carrying the time each step happened.
pub trait ClientTrace: Send + Sync {
    fn on_event(&self, event: &ClientEvent);
}

impl<F> ClientTrace for F
where
    F: Fn(&ClientEvent) + Send + Sync,
{
    fn on_event(&self, event: &ClientEvent) {
        self(event)
    }
}

tokio::task_local! {
    /// The request whose future is being polled; read by the connector when
    /// hyper asks it for a connection.
    static REQUEST: u32;
}

/// Runs `fut` (typically `client.get(url).send()` plus reading the body)
/// so that connection-level hooks it triggers are attributed to `request`.
pub async fn with_request<F: Future>(request: u32, fut: F) -> F::Output {
    REQUEST.scope(request, fut).await
}

/// The request id of the current scope, 0 outside any.
pub(crate) fn current_request() -> u32 {
    REQUEST.try_with(|id| *id).unwrap_or(0)
}

/// Fans events out to the caller's trace, while a request of
/// `TracedClient::run` is open into that request's collection, and to a
/// kernel session's log when the client has one.
#[derive(Default)]
pub(crate) struct Recorder {
    trace: Option<Arc<dyn ClientTrace>>,
    log: Option<Arc<RequestLog>>,
    state: Mutex<Collected>,
}

#[derive(Default)]
struct Collected {
    open: HashSet<u32>,
    events: Vec<ClientEvent>,
}

impl Recorder {
    pub(crate) fn new(trace: Option<Arc<dyn ClientTrace>>, log: Option<Arc<RequestLog>>) -> Self {
        Recorder {
            trace,
            log,
            state: Mutex::default(),
        }
    }

    /// A request ended (its body read to the end, or a failure): a kernel
    /// session's log, if any, keeps it for the join with the kernel.
    pub(crate) fn finished(&self, outcome: impl FnOnce() -> RequestOutcome) {
        if let Some(log) = &self.log {
            log.finished(outcome());
        }
    }

    /// Records `hook` as happening now.
    pub(crate) fn now(&self, request: u32, hook: Hook) -> u64 {
        let ts_ns = monotonic_ns();
        self.at(request, ts_ns, hook);
        ts_ns
    }

    /// Records `hook` as having happened at `ts_ns`.
    pub(crate) fn at(&self, request: u32, ts_ns: u64, hook: Hook) {
        self.record(request, ts_ns, hook, false);
    }

    /// Records `hook` at `ts_ns`, a time decided after the fact.
    pub(crate) fn derived(&self, request: u32, ts_ns: u64, hook: Hook) {
        self.record(request, ts_ns, hook, true);
    }

    fn record(&self, request: u32, ts_ns: u64, hook: Hook, derived: bool) {
        let event = ClientEvent {
            request,
            ts_ns,
            hook,
            derived,
        };
        if let Some(trace) = &self.trace {
            trace.on_event(&event);
        }
        if let Some(log) = &self.log {
            log.event(&event);
        }
        let mut state = self.lock();
        if state.open.contains(&request) {
            state.events.push(event);
        }
    }

    /// Starts collecting events of `request`.
    pub(crate) fn open(&self, request: u32) {
        self.lock().open.insert(request);
    }

    /// Stops collecting `request` and hands back its events in time order.
    /// Events that arrive later (a background connect finishing) reach only
    /// the [`ClientTrace`].
    pub(crate) fn close(&self, request: u32) -> Vec<ClientEvent> {
        let mut state = self.lock();
        state.open.remove(&request);
        let (mut mine, rest) = std::mem::take(&mut state.events)
            .into_iter()
            .partition::<Vec<_>, _>(|ev| ev.request == request);
        state.events = rest;
        mine.sort_by_key(|ev| ev.ts_ns);
        mine
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Collected> {
        // A panicking trace callback must not silence every later request.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_request_keeps_only_its_events_in_time_order() {
        let recorder = Recorder::new(None, None);
        recorder.open(1);
        recorder.at(1, 20, Hook::BodyDone { bytes: 1 });
        recorder.at(2, 15, Hook::BodyDone { bytes: 2 });
        recorder.at(
            1,
            10,
            Hook::GetConn {
                host_port: "h:1".into(),
            },
        );
        let events = recorder.close(1);
        let stamps: Vec<u64> = events.iter().map(|e| e.ts_ns).collect();
        assert_eq!(stamps, [10, 20]);
        recorder.at(1, 30, Hook::BodyDone { bytes: 3 });
        assert!(
            recorder.close(1).is_empty(),
            "late events are not collected"
        );
    }
}
