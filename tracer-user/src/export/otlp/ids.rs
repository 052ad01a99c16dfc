//! Trace and span ids of one run. They are known before the first request
//! so that `--propagate` can name each request's span in its `traceparent`.

/// The run's trace id and the base its span ids are counted from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TraceIds {
    pub trace_id: [u8; 16],
    /// The root span's id; below 2^63, so that adding to it never wraps.
    root: u64,
}

/// Room for a request's span and its phase children between requests.
const PER_REQUEST: u64 = 8;

impl TraceIds {
    /// Fresh random ids (W3C: 16 and 8 random bytes, never all zero).
    pub fn random() -> Self {
        let mut bytes = [0u8; 24];
        fill_random(&mut bytes);
        let mut trace_id = [0u8; 16];
        trace_id.copy_from_slice(&bytes[..16]);
        trace_id[0] |= 1;
        let mut root = [0u8; 8];
        root.copy_from_slice(&bytes[16..]);
        Self::from_parts(trace_id, u64::from_be_bytes(root))
    }

    pub fn from_parts(trace_id: [u8; 16], root: u64) -> Self {
        TraceIds {
            trace_id,
            root: (root >> 2) | (1 << 61),
        }
    }

    pub fn root(&self) -> [u8; 8] {
        self.root.to_be_bytes()
    }

    /// The span of request `n` (1-based).
    pub fn request(&self, n: u32) -> [u8; 8] {
        (self.root + u64::from(n) * PER_REQUEST).to_be_bytes()
    }

    /// The `k`th phase child (0-based, fewer than [`PER_REQUEST`]) of request `n`.
    pub fn phase(&self, n: u32, k: usize) -> [u8; 8] {
        (self.root + u64::from(n) * PER_REQUEST + 1 + (k as u64 % (PER_REQUEST - 1))).to_be_bytes()
    }

    /// W3C `traceparent` naming request `n`'s span as the parent, sampled.
    pub fn traceparent(&self, n: u32) -> String {
        format!("00-{}-{}-01", hex(&self.trace_id), hex(&self.request(n)))
    }
}

/// `spec` with request `n`'s `traceparent` added (`--propagate`).
pub fn with_traceparent(
    spec: &crate::client::RequestSpec,
    ids: &TraceIds,
    n: u32,
) -> crate::client::RequestSpec {
    let mut spec = spec.clone();
    spec.headers
        .push(("traceparent".to_string(), ids.traceparent(n)));
    spec
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn fill_random(buf: &mut [u8]) {
    // SAFETY: `buf` is valid for writes of its length.
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if usize::try_from(n).ok() != Some(buf.len()) {
        // Only uniqueness matters here: fall back on the clock and pid.
        let seed = crate::clock::monotonic_ns() ^ u64::from(std::process::id()) << 32;
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed.rotate_left(i as u32 * 7) ^ i as u64) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_ids_are_distinct_and_never_zero() {
        let ids = TraceIds::from_parts([1; 16], u64::MAX);
        let mut all = vec![ids.root()];
        for n in 1..=100 {
            all.push(ids.request(n));
            all.extend((0..5).map(|k| ids.phase(n, k)));
        }
        let count = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), count);
        assert!(all.iter().all(|id| *id != [0; 8]));
    }

    #[test]
    fn traceparent_is_w3c_and_names_the_request_span() {
        let ids = TraceIds::from_parts([0xab; 16], 0);
        let tp = ids.traceparent(2);
        assert_eq!(tp.len(), 55);
        assert!(tp.starts_with(&format!("00-{}-", "ab".repeat(16))), "{tp}");
        assert!(
            tp.ends_with(&format!("{}-01", hex(&ids.request(2)))),
            "{tp}"
        );
        assert_ne!(TraceIds::random(), TraceIds::random());
    }
}
