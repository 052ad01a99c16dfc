//! The one clock both worlds share: CLOCK_MONOTONIC, as `bpf_ktime_get_ns`.

/// Nanoseconds on CLOCK_MONOTONIC, comparable with kernel event timestamps.
pub fn monotonic_ns() -> u64 {
    read(libc::CLOCK_MONOTONIC)
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns: added to a timestamp of the
/// tool it gives Unix time. Taken once per run, so that a step of the wall
/// clock during the run cannot reorder its events.
pub fn unix_offset_ns() -> u64 {
    let mono = monotonic_ns();
    read(libc::CLOCK_REALTIME).saturating_sub(mono)
}

fn read(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer; both clocks always exist.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn monotonic_never_goes_back() {
        let a = super::monotonic_ns();
        let b = super::monotonic_ns();
        assert!(a > 0 && b >= a);
    }

    #[test]
    fn unix_offset_turns_now_into_unix_time() {
        let unix = super::monotonic_ns() + super::unix_offset_ns();
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        assert!(wall.abs_diff(unix) < 1_000_000_000, "{wall} vs {unix}");
    }
}
