//! The ring buffers: one per CPU (up to a floor on their size), created
//! here and put in the `RINGS` array that the programs index by CPU id.
//!
//! One ring shared by every CPU made its reservation spinlock the largest
//! cost of the send/recv hooks as soon as two CPUs emitted at once. Rings
//! are created by userspace rather than declared in the object so that
//! their number follows the machine and their total stays `--ring-bytes`.
use aya::maps::{ArrayOfMaps, Map, MapData, RingBuf};

use super::ProbeError;
use tracer_ebpf::names;

/// The total when `--ring-bytes` is not given.
pub const DEFAULT_TOTAL_BYTES: u32 = 4 << 20;

/// The smallest ring worth its own CPU: the 10 ms poll of a single busy
/// CPU must fit in it (256 KiB holds 10 ms of ~400k events/s of 64 B).
/// Below this, CPUs share rings; a total below it is one shared ring.
pub const MIN_RING_BYTES: u32 = 256 << 10;

const BPF_MAP_TYPE_RINGBUF: u32 = 27;

/// How the total is split.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingLayout {
    /// A power of two, at most the number of online CPUs.
    pub rings: u32,
    /// Bytes of each ring: a power-of-two multiple of the page size.
    pub ring_bytes: u32,
}

impl RingLayout {
    /// `total` bytes (rounded up to a power-of-two number of pages, as the
    /// kernel requires of a ring) in as many rings as there are online CPUs
    /// (rounded down to a power of two), halved while a ring would be
    /// smaller than [`MIN_RING_BYTES`]. The rings together take `total`.
    pub fn plan(total: u32, online_cpus: u32, page: u32) -> Self {
        let pages = total.div_ceil(page).max(1).next_power_of_two();
        let total = u64::from(pages) * u64::from(page);
        let mut rings = 1u32 << online_cpus.max(1).ilog2();
        while rings > 1 && total / u64::from(rings) < u64::from(MIN_RING_BYTES.max(page)) {
            rings /= 2;
        }
        Self {
            rings,
            ring_bytes: (total / u64::from(rings)) as u32,
        }
    }

    /// The ring of each possible CPU: online CPUs take the rings in turn
    /// (their ids may have holes), the others by id.
    pub fn ring_of_cpus(&self, possible: u32, online: &[u32]) -> Vec<u32> {
        let mut ring: Vec<u32> = (0..possible).map(|cpu| cpu % self.rings).collect();
        for (k, &cpu) in online.iter().enumerate() {
            if let Some(slot) = ring.get_mut(cpu as usize) {
                *slot = k as u32 % self.rings;
            }
        }
        ring
    }
}

/// Creates the rings of `layout` and points every slot of the `RINGS` map
/// (`outer`, one slot per possible CPU) at its CPU's ring. `outer` stays in
/// the `Ebpf`: the programs, loaded later, refer to its fd.
pub fn create(
    layout: RingLayout,
    outer: &mut Map,
    online: &[u32],
) -> Result<Vec<RingBuf<MapData>>, ProbeError> {
    let map_err = |source| ProbeError::Map {
        name: names::RINGS,
        source,
    };
    let mut outer: ArrayOfMaps<&mut MapData, RingBuf<MapData>> =
        outer.try_into().map_err(map_err)?;
    let rings = (0..layout.rings)
        .map(|i| {
            let def =
                aya_obj::Map::new_from_params(BPF_MAP_TYPE_RINGBUF, 0, 0, layout.ring_bytes, 0);
            let data = MapData::create(def, &format!("EVENTS_{i}"), None)?;
            RingBuf::try_from(Map::RingBuf(data))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(map_err)?;
    for (cpu, ring) in layout
        .ring_of_cpus(outer.len(), online)
        .into_iter()
        .enumerate()
    {
        outer
            .set(cpu as u32, &rings[ring as usize], 0)
            .map_err(map_err)?;
    }
    Ok(rings)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u32 = 4096;

    #[test]
    fn the_default_total_gives_each_cpu_its_own_ring() {
        let l = RingLayout::plan(DEFAULT_TOTAL_BYTES, 2, PAGE);
        assert_eq!((l.rings, l.ring_bytes), (2, 2 << 20));
        let l = RingLayout::plan(DEFAULT_TOTAL_BYTES, 12, PAGE);
        assert_eq!((l.rings, l.ring_bytes), (8, 512 << 10));
    }

    #[test]
    fn many_cpus_share_rings_rather_than_shrink_them_below_the_floor() {
        let l = RingLayout::plan(DEFAULT_TOTAL_BYTES, 96, PAGE);
        assert_eq!((l.rings, l.ring_bytes), (16, MIN_RING_BYTES));
    }

    #[test]
    fn a_total_below_the_floor_is_one_ring_of_that_total() {
        let l = RingLayout::plan(4096, 64, PAGE);
        assert_eq!((l.rings, l.ring_bytes), (1, 4096));
        let l = RingLayout::plan(MIN_RING_BYTES, 8, PAGE);
        assert_eq!((l.rings, l.ring_bytes), (1, MIN_RING_BYTES));
    }

    #[test]
    fn a_total_that_is_not_a_power_of_two_pages_is_rounded_up() {
        let l = RingLayout::plan(5000, 1, PAGE);
        assert_eq!((l.rings, l.ring_bytes), (1, 8192));
        let l = RingLayout::plan(3 << 20, 4, PAGE);
        assert_eq!((l.rings, l.ring_bytes), (4, 1 << 20));
    }

    #[test]
    fn online_cpus_with_holes_still_use_every_ring() {
        let l = RingLayout {
            rings: 4,
            ring_bytes: 1 << 20,
        };
        assert_eq!(l.ring_of_cpus(8, &[0, 2, 4, 6]), [0, 1, 1, 3, 2, 1, 3, 3],);
        assert_eq!(l.ring_of_cpus(4, &[0, 1, 2, 3]), [0, 1, 2, 3]);
    }
}
