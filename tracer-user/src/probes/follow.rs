//! Following children: the fork and exit programs (`tracer_fork`,
//! `tracer_exit`) keep `TRACED_TGIDS` equal to the traced processes and
//! their descendants. They are attached only when following is asked for,
//! so `trace` and a plain `attach` leave every fork of the machine alone.
use aya::{
    maps::{Array, HashMap as BpfHashMap},
    programs::BtfTracePoint,
};
use tracer_ebpf::{lost_slot, names, task_offset};

use super::{ProbeError, Probes, btf};

const FOLLOW_PROGRAMS: [(&str, &str); 2] = [
    ("tracer_fork", "sched_process_fork"),
    ("tracer_exit", "sched_process_exit"),
];

/// The stride of `pid.numbers`; the programs read `upid.nr` at its start.
fn upid_size(btf: &btf::Btf) -> Result<u32, btf::BtfError> {
    match btf.member_offset("upid", "nr")? {
        0 => btf
            .struct_size("upid")
            .ok_or_else(|| btf::BtfError::NoStruct("upid".into())),
        _ => Err(btf::BtfError::NoMember(
            "upid".into(),
            "nr at offset 0".into(),
        )),
    }
}

impl Probes {
    /// Attaches the fork and exit programs, with the `task_struct` offsets
    /// they read from this kernel's BTF. Call it before tracing a process
    /// with `tgid_flags::FOLLOW`.
    pub fn follow_forks(&mut self) -> Result<(), ProbeError> {
        let ours = match btf::Btf::from_sys_fs() {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return Err(ProbeError::Btf(e.to_string())),
            Err(e) => return Err(ProbeError::Btf(e.to_string())),
        };
        let btf_err = |e: btf::BtfError| ProbeError::Btf(e.to_string());
        let offsets = [
            (task_offset::TGID, ours.member_offset("task_struct", "tgid")),
            (
                task_offset::SIGNAL,
                ours.member_offset("task_struct", "signal"),
            ),
            (
                task_offset::SIGNAL_LIVE,
                ours.member_offset("signal_struct", "live"),
            ),
            // A child's pid in the tracer's PID namespace (see `PidNs`).
            (
                task_offset::THREAD_PID,
                ours.member_offset("task_struct", "thread_pid"),
            ),
            (task_offset::PID_LEVEL, ours.member_offset("pid", "level")),
            (
                task_offset::PID_NUMBERS,
                ours.member_offset("pid", "numbers"),
            ),
            (task_offset::UPID_SIZE, upid_size(&ours)),
        ];
        let map = self
            .ebpf
            .map_mut(names::TASK_OFFSETS)
            .ok_or(ProbeError::MissingMap(names::TASK_OFFSETS))?;
        let mut slots: Array<_, u32> = Array::try_from(map).map_err(|source| ProbeError::Map {
            name: names::TASK_OFFSETS,
            source,
        })?;
        for (slot, offset) in offsets {
            slots
                .set(slot, offset.map_err(btf_err)?, 0)
                .map_err(|source| ProbeError::Map {
                    name: names::TASK_OFFSETS,
                    source,
                })?;
        }
        let kernel_btf = aya::Btf::from_sys_fs().map_err(|e| ProbeError::Btf(e.to_string()))?;
        for (program, tracepoint) in FOLLOW_PROGRAMS {
            let fail = |source| ProbeError::Program {
                program,
                hook: format!("sched:{tracepoint}"),
                source,
            };
            let prog = self
                .ebpf
                .program_mut(program)
                .ok_or(aya::programs::ProgramError::UnexpectedProgramType)
                .map_err(fail)?;
            let tp: &mut BtfTracePoint = prog.try_into().map_err(fail)?;
            tp.load(tracepoint, &kernel_btf).map_err(fail)?;
            tp.attach().map_err(fail)?;
        }
        Ok(())
    }

    /// The processes traced right now (the kernel's set, exits removed).
    pub fn traced_now(&self) -> Vec<u32> {
        self.tgids.keys().filter_map(Result::ok).collect()
    }

    /// Stops tracing `tgid` (a process that is gone).
    pub fn untrace(&mut self, tgid: u32) {
        let _ = self.tgids.remove(&tgid);
    }

    /// Processes the fork program took in since the last call, as
    /// (child, parent) pairs; they are removed from the kernel's table.
    pub fn take_followed(&mut self) -> Vec<(u32, u32)> {
        let Some(map) = self.ebpf.map_mut(names::FOLLOWED) else {
            return Vec::new();
        };
        let Ok(mut followed) = BpfHashMap::<_, u32, u32>::try_from(map) else {
            return Vec::new();
        };
        let pairs: Vec<(u32, u32)> = followed.iter().filter_map(Result::ok).collect();
        for (child, _) in &pairs {
            let _ = followed.remove(child);
        }
        pairs
    }

    /// Followed processes that exited since the last call, with their
    /// last `comm`; removed from the kernel's table.
    pub fn take_exited(&mut self) -> Vec<(u32, String)> {
        let Some(map) = self.ebpf.map_mut(names::EXIT_COMM) else {
            return Vec::new();
        };
        let Ok(mut exited) = BpfHashMap::<_, u32, [u8; 16]>::try_from(map) else {
            return Vec::new();
        };
        let all: Vec<(u32, [u8; 16])> = exited.iter().filter_map(Result::ok).collect();
        for (pid, _) in &all {
            let _ = exited.remove(pid);
        }
        all.into_iter()
            .map(|(pid, comm)| {
                let end = comm.iter().position(|&b| b == 0).unwrap_or(comm.len());
                (pid, String::from_utf8_lossy(&comm[..end]).into_owned())
            })
            .collect()
    }

    /// Children that could not be followed because the set was full.
    pub fn lost_follows(&self) -> u64 {
        self.lost_in(lost_slot::FOLLOW).unwrap_or(0)
    }

    /// Children not followed because they were born into a PID namespace
    /// below the tracer's own.
    pub fn nested_follows(&self) -> u64 {
        self.lost_in(lost_slot::FOLLOW_NESTED).unwrap_or(0)
    }
}
