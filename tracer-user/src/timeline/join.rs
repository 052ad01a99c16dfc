//! Which kernel events belong to which request.
//!
//! A request's socket is the cookie the client read with `SO_COOKIE` on the
//! connection that carried the response, when the kernel saw that socket;
//! failing that (a client that could not read it), the cookie whose 4-tuple
//! equals the local and remote address reqwest reports for the response.
//! A kernel event goes to the latest request that used
//! its socket; events of other sockets (DNS over UDP, failed or racing
//! connects) go to the request whose time window they fall in.
use std::{collections::HashMap, net::SocketAddr};

use tracer_ebpf::IPPROTO_TCP;

use super::{
    DerivedStep, EventBody, RequestInfo, RequestTimeline, Source, TimelineEvent, Trace, phases,
    verdict,
};
use crate::{
    client::{ClientEvent, Hook},
    probes::{KernelDetail, KernelEvent, SocketCookie},
};

/// Local and remote address of each socket the kernel reported.
fn socket_addrs(kernel: &[KernelEvent]) -> HashMap<SocketCookie, (SocketAddr, SocketAddr)> {
    let mut addrs = HashMap::new();
    for ev in kernel {
        match ev.what {
            KernelDetail::State { local, remote, .. }
            | KernelDetail::Socket { local, remote, .. }
                if local.port() != 0 =>
            {
                addrs.insert(ev.cookie, (local, remote));
            }
            _ => {}
        }
    }
    addrs
}

fn find_cookie(
    info: &RequestInfo,
    addrs: &HashMap<SocketCookie, (SocketAddr, SocketAddr)>,
    window: &[&KernelEvent],
) -> Option<SocketCookie> {
    if let Some(cookie) = info.socket_cookie.filter(|c| addrs.contains_key(c)) {
        return Some(cookie);
    }
    if let (Some(local), Some(remote)) = (info.local_addr, info.remote_addr) {
        return addrs
            .iter()
            .find(|(_, a)| **a == (local, remote))
            .map(|(c, _)| *c);
    }
    // No response: the socket of the request's last connect, if any; else
    // the TCP socket its bytes left on before it failed (a pooled
    // connection the server had just closed: hyper wrote the request, then
    // read EOF).
    let in_request = |e: &&&KernelEvent| e.cookie != 0 && e.ts_ns <= info.end_ns;
    let connected = window
        .iter()
        .filter(in_request)
        .rev()
        .find_map(|e| match e.what {
            KernelDetail::Connect { .. } => Some(e.cookie),
            _ => None,
        });
    connected.or_else(|| {
        window.iter().filter(in_request).find_map(|e| match e.what {
            KernelDetail::Send { bytes, protocol } if bytes > 0 && protocol == IPPROTO_TCP => {
                Some(e.cookie)
            }
            _ => None,
        })
    })
}

/// Builds the merged timelines. `requests` and `client` come from the
/// client, in request order; `kernel` is every kernel event of the run.
pub fn build(
    requests: Vec<RequestInfo>,
    client: Vec<ClientEvent>,
    kernel: Vec<KernelEvent>,
    kernel_on: bool,
    lost_events: u64,
) -> Trace {
    let addrs = socket_addrs(&kernel);
    let starts: Vec<u64> = requests.iter().map(|r| r.start_ns).collect();
    // Index of the request whose time window holds `ts`.
    let window_of = |ts: u64| starts.iter().rposition(|&s| s <= ts).unwrap_or(0);

    let mut in_window: Vec<Vec<&KernelEvent>> = vec![Vec::new(); requests.len()];
    for ev in &kernel {
        if !requests.is_empty() {
            in_window[window_of(ev.ts_ns)].push(ev);
        }
    }
    let cookies: Vec<Option<SocketCookie>> = requests
        .iter()
        .zip(&in_window)
        .map(|(r, w)| find_cookie(r, &addrs, w))
        .collect();

    let mut timelines: Vec<RequestTimeline> = requests
        .into_iter()
        .zip(&cookies)
        .map(|(info, cookie)| RequestTimeline {
            info,
            cookie: *cookie,
            events: Vec::new(),
            verdict: verdict::ReuseVerdict::default(),
            phases: phases::Phases::default(),
        })
        .collect();
    if timelines.is_empty() {
        return verdict::finish(timelines, kernel_on, lost_events);
    }

    for ev in &kernel {
        let by_socket = (ev.cookie != 0)
            .then(|| {
                (0..cookies.len())
                    .rev()
                    .find(|&i| cookies[i] == Some(ev.cookie) && starts[i] <= ev.ts_ns)
            })
            .flatten()
            .or_else(|| {
                (ev.cookie != 0)
                    .then(|| cookies.iter().position(|c| *c == Some(ev.cookie)))
                    .flatten()
            });
        let idx = by_socket.unwrap_or_else(|| window_of(ev.ts_ns));
        timelines[idx].events.push(TimelineEvent {
            ts_ns: ev.ts_ns,
            source: Source::Kernel,
            cookie: (ev.cookie != 0).then_some(ev.cookie),
            tid: ev.tid,
            body: EventBody::Kernel(ev.what.clone()),
            derived: false,
        });
    }
    for ev in client {
        let idx = match ev.request {
            0 => window_of(ev.ts_ns),
            n => timelines
                .iter()
                .position(|t| t.info.number == n)
                .unwrap_or_else(|| window_of(ev.ts_ns)),
        };
        timelines[idx].events.push(TimelineEvent {
            ts_ns: ev.ts_ns,
            source: Source::Client,
            cookie: None,
            tid: 0,
            body: EventBody::Client(ev.hook),
            derived: ev.derived,
        });
    }
    for t in &mut timelines {
        add_derived_steps(t);
        got_conn_before_first_send(t);
        t.events.sort_by_key(|e| e.ts_ns);
    }
    verdict::finish(timelines, kernel_on, lost_events)
}

/// Go's WroteRequest and GotFirstResponseByte, at socket level, where the
/// client did not stamp them on its plaintext: on plain HTTP/1.x the first
/// send and recv are the request and its answer. (On TLS they would be the
/// ClientHello and, on TLS 1.3, the session tickets.)
fn add_derived_steps(t: &mut RequestTimeline) {
    let Some(cookie) = t.cookie else { return };
    // h2 without TLS (prior knowledge): the first send is the preface and
    // SETTINGS, the first recv the server's SETTINGS; no guess beats none.
    let stamped_or_h2 = t.events.iter().any(|e| match &e.body {
        EventBody::Client(Hook::WroteRequest | Hook::GotFirstResponseByte) => true,
        EventBody::Client(Hook::GotResponseHeaders { version, .. }) => version == "HTTP/2.0",
        _ => false,
    });
    if stamped_or_h2 {
        return;
    }
    let start = t.info.start_ns;
    let on_socket = |e: &&TimelineEvent| e.cookie == Some(cookie) && e.ts_ns >= start;
    let wrote = t
        .events
        .iter()
        .filter(on_socket)
        .filter(
            |e| matches!(e.body, EventBody::Kernel(KernelDetail::Send { bytes, .. }) if bytes > 0),
        )
        .map(|e| e.ts_ns)
        .min();
    let Some(wrote) = wrote else { return };
    let first_byte = t
        .events
        .iter()
        .filter(on_socket)
        .filter(|e| e.ts_ns >= wrote)
        .filter(
            |e| matches!(e.body, EventBody::Kernel(KernelDetail::Recv { bytes, .. }) if bytes > 0),
        )
        .map(|e| e.ts_ns)
        .min();
    let derived = |ts_ns, step| TimelineEvent {
        ts_ns,
        source: Source::Kernel,
        cookie: Some(cookie),
        tid: 0,
        body: EventBody::Derived(step),
        derived: true,
    };
    t.events.push(derived(wrote, DerivedStep::WroteRequest));
    if let Some(fb) = first_byte {
        t.events
            .push(derived(fb, DerivedStep::GotFirstResponseByte));
    }
}

/// A `GotConn` decided after the fact (a pooled connection, taken unseen
/// inside hyper) is stamped when the request future's first poll ended; the
/// request can leave before that, so it moves to the first send on its
/// socket: the connection was had by then at the latest.
fn got_conn_before_first_send(t: &mut RequestTimeline) {
    let Some(cookie) = t.cookie else { return };
    let start = t.info.start_ns;
    let first_send = t
        .events
        .iter()
        .filter(|e| e.cookie == Some(cookie) && e.ts_ns >= start)
        .filter(
            |e| matches!(e.body, EventBody::Kernel(KernelDetail::Send { bytes, .. }) if bytes > 0),
        )
        .map(|e| e.ts_ns)
        .min();
    let Some(first_send) = first_send else { return };
    for e in &mut t.events {
        if e.derived && matches!(e.body, EventBody::Client(Hook::GotConn { .. })) {
            // 1 ns before: events of one instant keep their push order,
            // and the send was pushed first.
            e.ts_ns = e.ts_ns.min(first_send.saturating_sub(1));
        }
    }
}
