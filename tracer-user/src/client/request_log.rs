//! Every request a [`TracedClient`](super::TracedClient) finished, with all
//! of its hook events, for a `KernelSession` to join with the kernel's
//! events. The client only writes here; the session reads.

use std::sync::{Mutex, MutexGuard, PoisonError};

use super::event::ClientEvent;
use super::run::RequestOutcome;

#[derive(Default)]
pub(crate) struct RequestLog {
    state: Mutex<Logged>,
}

#[derive(Default)]
struct Logged {
    /// Events of requests that have not finished yet.
    pending: Vec<ClientEvent>,
    finished: Vec<RequestOutcome>,
}

impl RequestLog {
    pub(crate) fn event(&self, event: &ClientEvent) {
        self.lock().pending.push(event.clone());
    }

    /// `outcome` ended (body read, or failed): it takes its pending events.
    pub(crate) fn finished(&self, mut outcome: RequestOutcome) {
        let mut state = self.lock();
        let (mut mine, rest) = std::mem::take(&mut state.pending)
            .into_iter()
            .partition::<Vec<_>, _>(|ev| ev.request == outcome.request);
        state.pending = rest;
        mine.sort_by_key(|ev| ev.ts_ns);
        outcome.events = mine;
        state.finished.push(outcome);
    }

    /// A copy of every finished request, in the order they finished.
    #[cfg_attr(
        not(feature = "ebpf"),
        expect(
            dead_code,
            reason = "only a KernelSession (the ebpf feature) reads the log"
        )
    )]
    pub(crate) fn finished_requests(&self) -> Vec<RequestOutcome> {
        self.lock().finished.clone()
    }

    fn lock(&self) -> MutexGuard<'_, Logged> {
        // A panicking trace callback must not silence every later request.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
