//! attach's connections, live and closed, in memory that stays bounded
//! over a long attach to a busy server: a connection is forgotten once its
//! socket is freed and its close printed; what the end summary needs of it
//! is folded into [`Closed`]: totals, per process, and the [`KEEP`] with
//! the most requests and bytes for the per-connection list.
use std::{
    collections::HashMap,
    ops::{Index, IndexMut},
};

use super::{model::Connection, procs::ProcessTotals};

/// Closed connections listed by name in the summary at most.
pub const KEEP: usize = 100;

/// Live connections by index; a forgotten one's slot is used again (no
/// [`super::model::Effect`] or request outlives its connection's index:
/// requests end, and are printed, at the close).
#[derive(Default)]
pub struct ConnTable {
    slots: Vec<Option<Connection>>,
    free: Vec<usize>,
    /// The TCP connections forgotten so far.
    pub closed: Closed,
}

#[derive(Default)]
pub struct Closed {
    pub count: usize,
    pub by_pid: HashMap<u32, ProcessTotals>,
    /// Among them, those with the most requests and bytes (at most
    /// `2 * KEEP`, cut to `KEEP` whenever it gets there).
    kept: Vec<Connection>,
}

fn weight(c: &Connection) -> (usize, u64) {
    (c.requests, c.bytes_sent + c.bytes_received)
}

/// The requests on `c` that reused a connection, as the tracker counts
/// them: all on one that existed before the attach, else all but the first.
pub fn reused_on(c: &Connection) -> usize {
    if c.preexisting_fd.is_some() {
        c.requests
    } else {
        c.requests.saturating_sub(1)
    }
}

impl Closed {
    fn add(&mut self, c: Connection) {
        self.count += 1;
        let p = self.by_pid.entry(c.pid).or_default();
        p.add(&c);
        self.kept.push(c);
        if self.kept.len() >= 2 * KEEP {
            self.cut();
        }
    }

    fn cut(&mut self) {
        self.kept
            .sort_unstable_by_key(|c| std::cmp::Reverse(weight(c)));
        self.kept.truncate(KEEP);
    }
}

impl ProcessTotals {
    pub fn add(&mut self, c: &Connection) {
        self.connections += 1;
        self.requests += c.requests;
        self.reused += reused_on(c);
        self.bytes_sent += c.bytes_sent;
        self.bytes_received += c.bytes_received;
    }
}

impl ConnTable {
    pub fn insert(&mut self, c: Connection) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.slots[i] = Some(c);
                i
            }
            None => {
                self.slots.push(Some(c));
                self.slots.len() - 1
            }
        }
    }

    /// Forgets connection `i`; a TCP one is folded into [`Closed`].
    pub fn forget(&mut self, i: usize) {
        if let Some(c) = self.slots.get_mut(i).and_then(Option::take) {
            self.free.push(i);
            if !c.udp {
                self.closed.add(c);
            }
        }
    }

    /// Live connections, to change.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut Connection> {
        self.slots.iter_mut().flatten()
    }

    /// Live connections.
    pub fn iter(&self) -> impl Iterator<Item = &Connection> {
        self.slots.iter().flatten()
    }

    /// TCP connections seen, live and closed.
    pub fn tcp_count(&self) -> usize {
        self.iter().filter(|c| !c.udp).count() + self.closed.count
    }

    /// The TCP connections for the summary's list, in order of first sight:
    /// all while there are at most [`KEEP`], else the [`KEEP`] with the most
    /// requests and bytes; and how many are left out.
    pub fn listed(&self) -> (Vec<&Connection>, usize) {
        let mut all: Vec<&Connection> = self
            .iter()
            .filter(|c| !c.udp)
            .chain(self.closed.kept.iter())
            .collect();
        all.sort_unstable_by_key(|c| std::cmp::Reverse(weight(c)));
        all.truncate(KEEP);
        all.sort_unstable_by_key(|c| c.number);
        let left = self.tcp_count() - all.len();
        (all, left)
    }
}

impl From<Vec<Connection>> for ConnTable {
    fn from(v: Vec<Connection>) -> Self {
        Self {
            slots: v.into_iter().map(Some).collect(),
            ..Self::default()
        }
    }
}

impl Index<usize> for ConnTable {
    type Output = Connection;
    fn index(&self, i: usize) -> &Connection {
        self.slots[i].as_ref().expect("a live connection")
    }
}

impl IndexMut<usize> for ConnTable {
    fn index_mut(&mut self, i: usize) -> &mut Connection {
        self.slots[i].as_mut().expect("a live connection")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(number: usize, requests: usize, bytes: u64) -> Connection {
        Connection {
            number,
            pid: 7,
            requests,
            bytes_sent: bytes,
            ..Connection::default()
        }
    }

    /// A million connections through the table: it holds the live ones and
    /// the kept ones, never all; totals and the list stay right.
    #[test]
    fn closed_connections_are_folded_and_the_busiest_listed() {
        let mut t = ConnTable::default();
        for n in 1..=1_000_000 {
            let i = t.insert(conn(n, n % 7, 100));
            t.forget(i);
        }
        let live = t.insert(conn(1_000_001, 1, 1));
        assert_eq!(t.slots.len(), 1, "slots are used again");
        assert!(t.closed.kept.len() < 2 * KEEP);
        assert_eq!(t.tcp_count(), 1_000_001);
        let p = &t.closed.by_pid[&7];
        assert_eq!(p.connections, 1_000_000);
        let (listed, left) = t.listed();
        assert_eq!((listed.len(), left), (KEEP, 1_000_001 - KEEP));
        assert!(listed.iter().all(|c| c.requests == 6), "the busiest");
        assert!(listed.windows(2).all(|w| w[0].number < w[1].number));
        assert_eq!(t[live].number, 1_000_001);
    }
}
