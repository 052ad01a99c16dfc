//! The traced processes: the ones asked for, and those a fork took in when
//! children are followed. Each is named by its pid in event and request
//! lines and gets its own line in the summary.
use std::collections::BTreeMap;

use super::conns::Tracker;
use crate::render::records::ProcessRecord;

#[derive(Clone, Debug, Default)]
pub struct Process {
    /// The traced process that forked it; None for one asked for.
    pub parent: Option<u32>,
    /// `comm`: its last, when it exited while followed; else as first seen
    /// (a forked child may not have exec'd yet).
    pub comm: Option<String>,
}

#[derive(Debug, Default)]
pub struct Processes {
    by_pid: BTreeMap<u32, Process>,
}

/// What one process did, as the summary counts it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ProcessTotals {
    pub connections: usize,
    pub requests: usize,
    pub reused: usize,
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl Processes {
    /// A process asked for (`--pid`, `--name`, run's command).
    pub fn root(&mut self, pid: u32) {
        let comm = comm(pid);
        self.by_pid.entry(pid).or_default().comm = comm;
    }

    /// A process asked for, named by the caller (it has not exec'd yet).
    pub fn root_named(&mut self, pid: u32, comm: &str) {
        self.by_pid.entry(pid).or_default().comm = Some(comm.to_string());
    }

    /// A process a traced parent forked; true when it is new here.
    pub fn forked(&mut self, pid: u32, parent: u32) -> bool {
        let new = !self.by_pid.contains_key(&pid);
        let p = self.by_pid.entry(pid).or_default();
        p.parent.get_or_insert(parent);
        if p.comm.is_none() {
            p.comm = comm(pid);
        }
        new
    }

    /// A followed process exited with this `comm` (its last, after exec).
    pub fn exited(&mut self, pid: u32, comm: String) {
        if let Some(p) = self.by_pid.get_mut(&pid) {
            p.comm = Some(comm);
        }
    }

    /// A pid seen in an event: its name is read while it still runs.
    pub fn saw(&mut self, pid: u32) {
        if pid != 0 && !self.by_pid.contains_key(&pid) {
            self.by_pid.insert(
                pid,
                Process {
                    parent: None,
                    comm: comm(pid),
                },
            );
        }
    }

    pub fn pids(&self) -> Vec<u32> {
        self.by_pid.keys().copied().collect()
    }

    pub fn len(&self) -> usize {
        self.by_pid.len()
    }

    pub fn totals(&self, t: &Tracker, pid: u32) -> ProcessTotals {
        let mut sum = t
            .connections
            .closed
            .by_pid
            .get(&pid)
            .copied()
            .unwrap_or_default();
        for c in t.tcp_connections().filter(|c| c.pid == pid) {
            sum.add(c);
        }
        sum
    }

    /// The summary's `per_process` list.
    pub fn records(&self, t: &Tracker) -> Vec<ProcessRecord<'_>> {
        self.by_pid
            .iter()
            .map(|(&pid, p)| {
                let s = self.totals(t, pid);
                ProcessRecord {
                    bytes_received: s.bytes_received,
                    bytes_sent: s.bytes_sent,
                    comm: p.comm.as_deref(),
                    connections: s.connections,
                    parent: p.parent,
                    pid,
                    requests: s.requests,
                    reused: s.reused,
                }
            })
            .collect()
    }

    /// The summary's text line per process.
    pub fn text_lines(&self, t: &Tracker) -> Vec<String> {
        self.by_pid
            .iter()
            .map(|(&pid, p)| {
                let s = self.totals(t, pid);
                let parent = p
                    .parent
                    .map_or(String::new(), |pp| format!(" (child of {pp})"));
                format!(
                    "  pid {pid} {}{parent}: {} on {}, {} reused, {} B out, {} B in",
                    p.comm.as_deref().unwrap_or("?"),
                    crate::render::count(s.requests, "request"),
                    crate::render::count(s.connections, "connection"),
                    s.reused,
                    s.bytes_sent,
                    s.bytes_received
                )
            })
            .collect()
    }
}

fn comm(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim_end().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attach::model::Connection;

    fn conn(pid: u32, requests: usize, preexisting: bool, udp: bool) -> Connection {
        Connection {
            pid,
            requests,
            preexisting_fd: preexisting.then_some(3),
            udp,
            bytes_sent: 10,
            ..Connection::default()
        }
    }

    /// Reuse per process is counted as the tracker counts it overall: every
    /// request after a connection's first, and every request on one that
    /// existed before the attach. UDP sockets are not connections.
    #[test]
    fn totals_are_per_process_and_agree_with_the_tracker() {
        let mut t = Tracker::new(Vec::new());
        t.connections = crate::attach::conn_table::ConnTable::from(vec![
            conn(1, 2, false, false),
            conn(1, 1, true, false),
            conn(2, 1, false, false),
            conn(2, 0, false, true),
        ]);
        let mut procs = Processes::default();
        procs.root_named(1, "sh");
        procs.forked(2, 1);
        let one = procs.totals(&t, 1);
        assert_eq!(
            (one.connections, one.requests, one.reused, one.bytes_sent),
            (2, 3, 2, 20)
        );
        let two = procs.totals(&t, 2);
        assert_eq!((two.connections, two.requests, two.reused), (1, 1, 0));
        assert_eq!(procs.pids(), [1, 2]);
        let lines = procs.text_lines(&t);
        assert!(
            lines[0].starts_with("  pid 1 sh: 3 requests on 2 connections, 2 reused"),
            "{lines:?}"
        );
        assert!(
            lines[1].contains("(child of 1): 1 request on 1 connection"),
            "{lines:?}"
        );
    }
}
