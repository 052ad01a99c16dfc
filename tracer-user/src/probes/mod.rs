//! Load and attach the eBPF object, choose the traced processes, and hand
//! out the stream of decoded kernel events and the lost-event count.
pub mod btf;
pub mod decode;
pub mod fallback;
pub mod features;
mod follow;
pub mod gotls;
mod head;
mod lost;
mod merge;
pub mod pidns;
mod programs;
pub mod rings;
#[cfg(all(test, feature = "ebpf"))]
mod stack_depth;
mod stream;
mod uprobes;

use aya::{
    Ebpf, EbpfLoader,
    maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, RingBuf},
    programs::Program,
};
pub use decode::{KernelDetail, KernelEvent, SocketCookie};
pub use head::PayloadHead;
use programs::attach_all;
pub use programs::{PROGRAMS, ProgramSpec};
pub use stream::EventStream;
use thiserror::Error;
use tracer_ebpf::names;

/// The compiled programs, built by build.rs for bpfel.
#[cfg(feature = "ebpf")]
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracer-ebpf"));
/// Built without the `ebpf` feature: no programs to load.
#[cfg(not(feature = "ebpf"))]
static OBJECT: &[u8] = &[];

#[derive(Debug, Error)]
pub enum ProbeError {
    #[error("loading the eBPF object failed: {0}")]
    Load(#[from] aya::EbpfError),
    #[error("eBPF program {program} ({hook}) failed: {}", program_failure(source))]
    Program {
        program: &'static str,
        hook: String,
        source: aya::programs::ProgramError,
    },
    #[error("eBPF map {0} is missing from the object")]
    MissingMap(&'static str),
    #[error("eBPF map {name}: {source}")]
    Map {
        name: &'static str,
        source: aya::maps::MapError,
    },
    #[error("ring buffer: {0}")]
    Ring(std::io::Error),
    #[error("reading kernel BTF failed: {0}")]
    Btf(String),
    #[error("this build has no eBPF object (built without the `ebpf` feature)")]
    NoObject,
    #[error("{0}")]
    PidNs(#[from] pidns::PidNsError),
    #[error("no hook for {serves} could be attached: {why}")]
    Fallback { serves: &'static str, why: String },
}

impl ProbeError {
    /// The kernel's refusal of a uprobe for want of privilege, if this is
    /// one: `perf_event_open` of the uprobe PMU answers EACCES without
    /// CAP_SYS_ADMIN, even with CAP_BPF and CAP_PERFMON (measured on 6.18).
    pub fn uprobe_refused(&self) -> Option<&std::io::Error> {
        match self {
            ProbeError::Program {
                source: aya::programs::ProgramError::SyscallError(e),
                ..
            } if e.call == "perf_event_open"
                && matches!(e.io_error.raw_os_error(), Some(libc::EACCES | libc::EPERM)) =>
            {
                Some(&e.io_error)
            }
            _ => None,
        }
    }
}

/// Why a program failed, in one line: for a load the verifier refused, its
/// verdict (the last line of its log that is not a statistic) and the
/// errno, not the whole log.
fn program_failure(e: &aya::programs::ProgramError) -> String {
    match e {
        aya::programs::ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let log = verifier_log.to_string();
            match verifier_verdict(&log) {
                Some(line) => format!("this kernel's verifier rejected it: {line} ({io_error})"),
                None => format!("loading it failed: {io_error}, with no verifier output"),
            }
        }
        other => other.to_string(),
    }
}

/// The verifier's last line of substance: what it refused. The statistics
/// it prints after that ("processed N insns", "stack depth A+B",
/// "verification time") say nothing of why.
pub fn verifier_verdict(log: &str) -> Option<&str> {
    const STATS: &[&str] = &[
        "processed ",
        "stack depth ",
        "verification time ",
        "max_states_per_insn ",
    ];
    log.lines()
        .map(str::trim)
        .rev()
        .find(|l| !l.is_empty() && !STATS.iter().any(|s| l.starts_with(s)))
}

/// Where a program attaches.
#[derive(Clone, Copy, Debug)]
pub enum Hook {
    /// A BTF tracepoint with typed arguments (the `sock:`/`tcp:` event name).
    BtfTracePoint(&'static str, &'static str),
}

impl Hook {
    pub fn group_and_name(&self) -> (&'static str, &'static str) {
        match *self {
            Hook::BtfTracePoint(g, n) => (g, n),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct ProbeOptions {
    /// Bytes of all ring buffers together (see [`rings::RingLayout`]);
    /// [`rings::DEFAULT_TOTAL_BYTES`] when None.
    pub ring_bytes: Option<u32>,
    /// Programs to leave out, e.g. because their tracepoint is missing.
    pub skip: Vec<&'static str>,
    /// Offsets already read from BTF (by preflight); read here when None.
    pub sock_offsets: Option<tracer_ebpf::SockOffsets>,
}

/// The loaded and attached programs. Dropping it detaches everything.
pub struct Probes {
    ebpf: Ebpf,
    lost: PerCpuArray<MapData, u64>,
    tgids: BpfHashMap<MapData, u32, u8>,
    /// The fast single-process slot (see `names::TRACED_ONE`).
    traced_one: Array<MapData, u64>,
    /// Socket cookie -> its current segment (attach without `--events`).
    segments: BpfHashMap<MapData, u64, tracer_ebpf::SegmentSummary>,
    traced: usize,
    /// The per-CPU rings, until [`Self::events`] takes them.
    rings: Vec<RingBuf<MapData>>,
    /// Programs that were left out, with why.
    pub skipped: Vec<(&'static str, String)>,
    /// What each hook that has a stand-in ended up with: what it serves,
    /// how, and where (`tracer check` prints it).
    pub mechanisms: Vec<(&'static str, fallback::Mechanism, String)>,
    /// Every uprobe attachment, owned here so that they detach side by
    /// side (see `Drop`): Go's probes are 35 of them.
    uprobe_links: Vec<aya::programs::uprobe::UProbeLink>,
}

impl Probes {
    pub fn load(opts: &ProbeOptions) -> Result<Self, ProbeError> {
        if OBJECT.is_empty() {
            return Err(ProbeError::NoObject);
        }
        let btf = aya::Btf::from_sys_fs().map_err(|e| ProbeError::Btf(e.to_string()))?;
        let own_btf = match btf::Btf::from_sys_fs() {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return Err(ProbeError::Btf(e.to_string())),
            Err(e) => return Err(ProbeError::Btf(e.to_string())),
        };
        let offsets = match opts.sock_offsets {
            Some(o) => o,
            None => btf::sock_offsets(&own_btf).map_err(|e| ProbeError::Btf(e.to_string()))?,
        };
        let mut abi = btf::kernel_abi(&own_btf);
        let helpers = features::probe(&own_btf);
        drop(own_btf);
        abi.cookie_helper = u32::from(helpers.socket_cookie);
        abi.task_pt_regs_helper = u32::from(helpers.task_pt_regs);

        let possible = aya::util::nr_cpus().map_err(|(_, e)| ProbeError::Ring(e))? as u32;
        let online = aya::util::online_cpus().map_err(|(_, e)| ProbeError::Ring(e))?;
        let ring_layout = rings::RingLayout::plan(
            opts.ring_bytes.unwrap_or(rings::DEFAULT_TOTAL_BYTES),
            online.len() as u32,
            page_size(),
        );
        // The programs read syscall arguments from saved registers laid out
        // as x86_64's; elsewhere they leave fds unknown.
        let syscall_regs = u32::from(cfg!(target_arch = "x86_64"));
        // Bench only: send/recv programs that do nothing (see `names`).
        let floor = u32::from(crate::knobs::bench_floor());
        // Pids as this process numbers them, in a container too.
        let pid_ns = pidns::tracer_pid_ns()?;
        // `new` parses the kernel's BTF too, a copy that `btf` replaces at
        // once (ours outlives the loader: programs are loaded with it).
        let mut loader = EbpfLoader::new();
        loader
            .btf(Some(&btf))
            .override_global(names::SOCK_OFFSETS, &offsets, true)
            .override_global(names::PID_NS, &pid_ns, true)
            .override_global(names::SYSCALL_REGS_X86_64, &syscall_regs, true)
            .override_global(names::BENCH_FLOOR, &floor, true)
            .override_global(names::KERNEL_ABI, &abi, true)
            .map_max_entries(names::RINGS, possible);
        // Preallocated, and used only where the kernel has no cookie helper.
        if helpers.socket_cookie {
            loader.map_max_entries("SOCK_IDS", 1);
        }
        let mut ebpf = loader.load(OBJECT)?;
        // Before any program is attached: an empty slot would lose events.
        let outer = ebpf
            .map_mut(names::RINGS)
            .ok_or(ProbeError::MissingMap(names::RINGS))?;
        let rings = rings::create(ring_layout, outer, &online)?;
        let mut skipped = Vec::new();
        for (spec, result) in attach_all(&mut ebpf, &opts.skip, &btf) {
            match result {
                None => skipped.push((spec.program, "its tracepoint is not available".to_string())),
                Some(Ok(())) => {}
                Some(Err(source)) if spec.required => {
                    let (g, n) = spec.hook.group_and_name();
                    return Err(ProbeError::Program {
                        program: spec.program,
                        hook: format!("{g}:{n}"),
                        source,
                    });
                }
                Some(Err(source)) => skipped.push((spec.program, program_failure(&source))),
            }
        }
        let mechanisms = attach_fallbacks(&mut ebpf, &btf, &mut skipped, helpers.socket_cookie)?;
        let lost = take_map(&mut ebpf, names::LOST)?;
        let lost = PerCpuArray::try_from(lost).map_err(|source| ProbeError::Map {
            name: names::LOST,
            source,
        })?;
        let tgids = take_map(&mut ebpf, names::TRACED_TGIDS)?;
        let tgids = BpfHashMap::try_from(tgids).map_err(|source| ProbeError::Map {
            name: names::TRACED_TGIDS,
            source,
        })?;
        let traced_one = take_map(&mut ebpf, names::TRACED_ONE)?;
        let traced_one = Array::try_from(traced_one).map_err(|source| ProbeError::Map {
            name: names::TRACED_ONE,
            source,
        })?;
        let segments = take_map(&mut ebpf, names::SEGMENTS)?;
        let segments = BpfHashMap::try_from(segments).map_err(|source| ProbeError::Map {
            name: names::SEGMENTS,
            source,
        })?;
        Ok(Self {
            ebpf,
            lost,
            tgids,
            traced_one,
            segments,
            traced: 0,
            rings,
            skipped,
            mechanisms,
            uprobe_links: Vec::new(),
        })
    }

    /// Starts recording events of every thread of process `tgid`.
    pub fn trace_tgid(&mut self, tgid: u32) -> Result<(), ProbeError> {
        self.trace_tgid_with(tgid, tracer_ebpf::tgid_flags::TRACED)
    }

    /// Like [`Self::trace_tgid`], with [`tracer_ebpf::tgid_flags`] bits:
    /// `TRACED | CAPTURE_HEADS` also copies payload heads (attach mode).
    pub fn trace_tgid_with(&mut self, tgid: u32, flags: u8) -> Result<(), ProbeError> {
        let map_err = |name| move |source| ProbeError::Map { name, source };
        self.tgids
            .insert(tgid, flags, 0)
            .map_err(map_err(names::TRACED_TGIDS))?;
        self.traced += 1;
        // One process: the programs check one array slot. More: the set.
        let one = if self.traced == 1 {
            (u64::from(flags) << 32) | u64::from(tgid)
        } else {
            0
        };
        self.traced_one
            .set(0, one, 0)
            .map_err(map_err(names::TRACED_ONE))
    }

    /// The segment socket `cookie` is in (see tracer-ebpf's `segment`), as
    /// far as it has come; None when it has none (or the lookup failed).
    pub fn segment(&self, cookie: SocketCookie) -> Option<tracer_ebpf::SegmentSummary> {
        self.segments.get(&cookie, 0).ok()
    }

    /// Drops the segment of a socket that is gone.
    pub fn forget_segment(&mut self, cookie: SocketCookie) {
        let _ = self.segments.remove(&cookie);
    }

    /// The ring buffers as one async stream of events; callable once.
    pub fn events(&mut self) -> Result<EventStream, ProbeError> {
        if self.rings.is_empty() {
            return Err(ProbeError::MissingMap(names::RINGS));
        }
        Ok(EventStream::new(std::mem::take(&mut self.rings)))
    }
}

impl Drop for Probes {
    /// Detaching the getaddrinfo uprobe (attach) waits for an RCU grace
    /// period in the kernel, as classic tracepoints did; side by side, the
    /// waits of several programs overlap. So do the waits of each uprobe
    /// attachment: one by one, the 35 of Go's probes kept `tracer run`
    /// from exiting for 3.6 s after its last line.
    fn drop(&mut self) {
        std::thread::scope(|scope| {
            for link in self.uprobe_links.drain(..) {
                scope.spawn(move || drop(link));
            }
        });
        std::thread::scope(|scope| {
            for (_, program) in self.ebpf.programs_mut() {
                scope.spawn(move || {
                    let _ = match program {
                        Program::BtfTracePoint(p) => p.unload(),
                        Program::UProbe(p) => p.unload(),
                        Program::FEntry(p) => p.unload(),
                        Program::FExit(p) => p.unload(),
                        Program::KProbe(p) => p.unload(),
                        _ => Ok(()),
                    };
                });
            }
        });
    }
}

/// Stands in for the byte tracepoints that were left out (each replaces
/// its `skipped` entry when it attaches), and attaches the socket-id
/// cleanup where the kernel has no cookie helper (without it ids could be
/// confused: an error). Returns the mechanism of every such hook.
fn attach_fallbacks(
    ebpf: &mut Ebpf,
    btf: &aya::Btf,
    skipped: &mut Vec<(&'static str, String)>,
    cookie_helper: bool,
) -> Result<Vec<(&'static str, fallback::Mechanism, String)>, ProbeError> {
    let force_kprobe = crate::knobs::force_kprobe();
    let mut mechanisms = Vec::new();
    // Stand-ins for byte tracepoints that were left out; the others keep
    // their tracepoint.
    let mut wanted: Vec<&fallback::Fallback> = Vec::new();
    if !cookie_helper {
        wanted.push(&fallback::SOCK_FREE);
    }
    for fb in [&fallback::SEND, &fallback::RECV] {
        let replaced = fb.replaces.filter(|r| skipped.iter().any(|(p, _)| p == r));
        match (replaced, fb.replaces) {
            (Some(_), _) => wanted.push(fb),
            (None, Some(program)) => {
                if let Some((g, n)) = PROGRAMS
                    .iter()
                    .find(|s| s.program == program)
                    .map(|s| s.hook.group_and_name())
                {
                    mechanisms.push((
                        fb.serves,
                        fallback::Mechanism::Tracepoint,
                        format!("{g}:{n}"),
                    ));
                }
            }
            (None, None) => {}
        }
    }
    let results = fallback::attach(ebpf, &wanted, btf, force_kprobe);
    for (fb, result) in wanted.into_iter().zip(results) {
        match (result, fb.replaces) {
            (Ok(m), replaces) => {
                skipped.retain(|(p, _)| Some(*p) != replaces);
                mechanisms.push((fb.serves, m, fb.functions.join(", ")));
            }
            // Without it ids could be confused: no tracing at all.
            (Err(why), None) => {
                return Err(ProbeError::Fallback {
                    serves: fb.serves,
                    why,
                });
            }
            (Err(why), Some(program)) => {
                if let Some(entry) = skipped.iter_mut().find(|(p, _)| *p == program) {
                    entry.1 = format!("{}; {why}", entry.1);
                }
            }
        }
    }
    Ok(mechanisms)
}

fn page_size() -> u32 {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as u32,
        _ => 4096,
    }
}

fn take_map(ebpf: &mut Ebpf, name: &'static str) -> Result<aya::maps::Map, ProbeError> {
    ebpf.take_map(name).ok_or(ProbeError::MissingMap(name))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_verifier_verdict_is_its_last_line_of_substance() {
        // Linux 6.1 refusing tracer_state before its records left the stack.
        let log = "func#0 @0\nfunc#1 @562\ncombined stack size of 2 calls is 576. Too large\n\
                   verification time 1234 usec\nstack depth 464+72+136\n\
                   processed 97 insns (limit 1000000) max_states_per_insn 0\n";
        assert_eq!(
            super::verifier_verdict(log),
            Some("combined stack size of 2 calls is 576. Too large")
        );
        assert_eq!(super::verifier_verdict("\n  \n"), None);
    }
}
