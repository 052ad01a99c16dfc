//! Merging the per-CPU rings into one stream in timestamp order.
//!
//! Each tick the reader empties every ring, one after the other. A record
//! can be committed to ring A just after the reader passed A while a later
//! record of the same socket, on another CPU, is read from ring B. So a tick
//! releases only what is older than a watermark (when the tick started,
//! minus [`MARGIN_NS`] for the time between a program's timestamp and its
//! commit) and holds the rest back for the next tick: what a tick releases
//! is sorted, and never older than what an earlier tick released.

/// How long a record may take from its timestamp to its commit and still
/// come out in order. Programs run without preemption, so that is the time
/// of an interrupt or two (microseconds); a vCPU descheduled in between can
/// exceed it, and its record is then handed out late (counted, see
/// [`Reorder::late`]).
pub const MARGIN_NS: u64 = 2_000_000;

/// Something with a CLOCK_MONOTONIC timestamp.
pub trait Timestamped {
    fn ts_ns(&self) -> u64;
}

impl Timestamped for super::KernelEvent {
    fn ts_ns(&self) -> u64 {
        self.ts_ns
    }
}

/// Items read from the rings but not handed out yet.
///
/// Items stay where they were pushed until they are handed out: a tick
/// sorts 16-byte keys, not the items (a kernel event with its payload head
/// is about 170 bytes, and sorting and draining them moved each three or
/// four times: about 12% of attach's CPU on bench-server, by perf).
#[derive(Debug)]
pub struct Reorder<T> {
    /// In arrival order; None once handed out (until the tick compacts).
    held: Vec<Option<T>>,
    /// Scratch: (timestamp, index in `held`) of the items a tick releases.
    order: Vec<(u64, u32)>,
    /// Timestamp of the newest item handed out.
    released_ns: u64,
    /// Items that arrived older than one already handed out: they took
    /// longer than [`MARGIN_NS`] from timestamp to commit.
    pub late: u64,
}

impl<T> Default for Reorder<T> {
    fn default() -> Self {
        Self {
            held: Vec::new(),
            order: Vec::new(),
            released_ns: 0,
            late: 0,
        }
    }
}

impl<T: Timestamped> Reorder<T> {
    /// Takes one item read from a ring.
    pub fn push(&mut self, item: T) {
        if item.ts_ns() < self.released_ns {
            self.late += 1;
        }
        self.held.push(Some(item));
    }

    /// Appends to `out`, in timestamp order (equal timestamps in arrival
    /// order), every held item not newer than `watermark_ns`.
    pub fn release(&mut self, watermark_ns: u64, out: &mut Vec<T>) {
        self.release_with(watermark_ns, |item| out.push(item));
    }

    /// As [`Reorder::release`], handing each item to `f` instead.
    pub fn release_with(&mut self, watermark_ns: u64, mut f: impl FnMut(T)) {
        self.order.clear();
        let ready = self.held.iter().enumerate().filter_map(|(i, item)| {
            let ts = item.as_ref()?.ts_ns();
            (ts <= watermark_ns).then_some((ts, i as u32))
        });
        self.order.extend(ready);
        // The keys are a run per ring, each already (nearly) in order: the
        // stable sort merges runs in linear time, where the unstable one
        // took 5% of attach's CPU.
        self.order.sort();
        let Some(&(last, _)) = self.order.last() else {
            return;
        };
        self.released_ns = self.released_ns.max(last);
        for &(_, i) in &self.order {
            if let Some(item) = self.held[i as usize].take() {
                f(item);
            }
        }
        self.held.retain(Option::is_some);
    }

    pub fn release_all(&mut self, out: &mut Vec<T>) {
        self.release(u64::MAX, out);
    }
}

/// The watermark of a tick that started reading the rings at `now_ns`.
pub fn watermark(now_ns: u64) -> u64 {
    now_ns.saturating_sub(MARGIN_NS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (timestamp, ring, index in the ring): enough to see every reordering.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    struct Item(u64, u8, u32);

    impl Timestamped for Item {
        fn ts_ns(&self) -> u64 {
            self.0
        }
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn a_tick_hands_out_the_rings_merged_in_timestamp_order() {
        let mut r = Reorder::default();
        for item in [
            Item(10, 0, 0),
            Item(30, 0, 1),
            Item(20, 1, 0),
            Item(40, 1, 1),
        ] {
            r.push(item);
        }
        let mut out = Vec::new();
        r.release(100, &mut out);
        let ts: Vec<u64> = out.iter().map(|i| i.0).collect();
        assert_eq!(ts, [10, 20, 30, 40]);
    }

    #[test]
    fn items_newer_than_the_watermark_wait_for_the_next_tick() {
        let mut r = Reorder::default();
        let mut out = Vec::new();
        // Tick 1 starts at 20 ms: ring B already has an item at 19.5 ms,
        // ring A's item at 19 ms is committed only after A was read.
        r.push(Item(10 * MS, 0, 0));
        r.push(Item(19 * MS + MS / 2, 1, 0));
        r.release(watermark(20 * MS), &mut out);
        assert_eq!(out, [Item(10 * MS, 0, 0)]);
        // Tick 2 reads it; both come out in order, the late commit first.
        r.push(Item(19 * MS, 0, 1));
        r.release(watermark(30 * MS), &mut out);
        assert_eq!(
            out,
            [
                Item(10 * MS, 0, 0),
                Item(19 * MS, 0, 1),
                Item(19 * MS + MS / 2, 1, 0)
            ]
        );
        assert_eq!(r.late, 0);
    }

    #[test]
    fn equal_timestamps_keep_their_read_order() {
        let mut r = Reorder::default();
        for item in [Item(5, 1, 0), Item(5, 0, 0), Item(5, 0, 1), Item(3, 1, 1)] {
            r.push(item);
        }
        let mut out = Vec::new();
        r.release_all(&mut out);
        assert_eq!(
            out,
            [Item(3, 1, 1), Item(5, 1, 0), Item(5, 0, 0), Item(5, 0, 1)]
        );
    }

    #[test]
    fn release_all_hands_out_what_was_held() {
        let mut r = Reorder::default();
        let mut out = Vec::new();
        r.push(Item(50 * MS, 0, 0));
        r.push(Item(49 * MS, 1, 0));
        r.release(watermark(50 * MS), &mut out);
        assert!(out.is_empty());
        r.release_all(&mut out);
        assert_eq!(out, [Item(49 * MS, 1, 0), Item(50 * MS, 0, 0)]);
        r.release_all(&mut out);
        assert_eq!(out.len(), 2, "nothing is handed out twice");
    }

    #[test]
    fn a_commit_later_than_the_margin_is_counted_as_late() {
        let mut r = Reorder::default();
        let mut out = Vec::new();
        r.push(Item(10 * MS, 1, 0));
        r.release(watermark(20 * MS), &mut out);
        r.push(Item(9 * MS, 0, 0));
        r.release(watermark(30 * MS), &mut out);
        assert_eq!(out, [Item(10 * MS, 1, 0), Item(9 * MS, 0, 0)]);
        assert_eq!(r.late, 1);
    }

    /// Random commit lags up to the margin, ticks at random times: whatever
    /// the interleaving, the concatenated output is sorted and complete.
    #[test]
    fn output_across_ticks_is_sorted_when_commits_lag_at_most_the_margin() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut rand = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        // 4 rings, each in commit order; commit = ts + lag, lag <= margin.
        let mut rings: Vec<std::collections::VecDeque<(u64, Item)>> = vec![Default::default(); 4];
        let mut end = 0;
        let mut items: Vec<(u64, Item)> = (0..2000u32)
            .map(|i| {
                let ts = u64::from(i) * 37_000 + rand(30_000);
                let commit = ts + rand(MARGIN_NS + 1);
                end = end.max(commit);
                (commit, Item(ts, rand(4) as u8, i))
            })
            .collect();
        items.sort_by_key(|&(commit, _)| commit);
        for (commit, item) in items {
            rings[usize::from(item.1)].push_back((commit, item));
        }
        let mut r = Reorder::default();
        let mut out = Vec::new();
        let mut now = 0;
        while now <= end {
            now += 1_000_000 + rand(19_000_000);
            // The reader reaches ring k 0.3 ms after the tick started and
            // sees what was committed by then.
            for (k, ring) in rings.iter_mut().enumerate() {
                let reach = now + k as u64 * 300_000;
                while let Some(&(commit, item)) = ring.front()
                    && commit <= reach
                {
                    r.push(item);
                    ring.pop_front();
                }
            }
            r.release(watermark(now), &mut out);
        }
        r.release_all(&mut out);
        assert_eq!(out.len(), 2000);
        assert!(out.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(r.late, 0);
    }
}
