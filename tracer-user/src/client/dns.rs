//! `DNSStart` / `DNSDone`: a reqwest resolver that asks the system
//! (getaddrinfo, like reqwest's default) and reports both ends.
//!
//! reqwest calls it only for names; an IP literal in the URL goes straight
//! to the connect, so no DNS hooks fire for it (as in Go).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use super::attempt::ConnectAttempt;
use super::event::Hook;
use super::trace::{Recorder, current_request};
use crate::clock::monotonic_ns;

pub(crate) struct TracedResolver {
    pub(crate) recorder: Arc<Recorder>,
}

impl Resolve for TracedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let recorder = Arc::clone(&self.recorder);
        let attempt = ConnectAttempt::current();
        let request = attempt.as_ref().map_or_else(current_request, |a| a.request);
        let host = name.as_str().to_string();
        recorder.now(request, Hook::DNSStart { host: host.clone() });
        Box::pin(async move {
            // Port 0: the connector puts the URL's port on each address.
            let result = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map(Iterator::collect::<Vec<SocketAddr>>)
                .and_then(|addrs| match addrs.is_empty() {
                    true => Err(std::io::Error::other("no addresses found")),
                    false => Ok(addrs),
                });
            let ts_ns = monotonic_ns();
            match result {
                Ok(addrs) => {
                    let ips: Vec<IpAddr> = addrs.iter().map(SocketAddr::ip).collect();
                    if let Some(attempt) = &attempt {
                        attempt.note_dns_done(ts_ns, Ok(&ips));
                    }
                    let hook = Hook::DNSDone {
                        addrs: ips,
                        error: None,
                    };
                    recorder.at(request, ts_ns, hook);
                    Ok(Box::new(addrs.into_iter()) as Addrs)
                }
                Err(err) => {
                    if let Some(attempt) = &attempt {
                        attempt.note_dns_done(ts_ns, Err(()));
                    }
                    let hook = Hook::DNSDone {
                        addrs: Vec::new(),
                        error: Some(format!("{host}: {err}")),
                    };
                    recorder.at(request, ts_ns, hook);
                    Err(err.into())
                }
            }
        })
    }
}
