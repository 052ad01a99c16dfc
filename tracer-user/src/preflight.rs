//! What this machine allows: privileges, kernel, BTF, tracepoints; never
//! judged by the kernel's version number.
//! `tracer check` prints this; `trace` and `attach` stop on what is missing.
//!
//! Tracefs plays no part: the programs are BTF tracepoints, attached by
//! BTF id (BPF_RAW_TRACEPOINT_OPEN), and the getaddrinfo uprobe goes
//! through the uprobe PMU (perf_event_open). So a tracepoint's presence is
//! read from kernel BTF, and neither a mount nor CAP_DAC_READ_SEARCH for
//! the root-only `/sys/kernel/tracing` is needed.
use std::fs;

use crate::{
    knobs,
    probes::{PROGRAMS, btf, fallback},
};

const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// What the kernel side needs and how to get it: the one message of exit 4
/// for a missing privilege.
pub const PRIVILEGE_HELP: &str = "needs CAP_BPF and CAP_PERFMON (load and attach the probes), \
plus CAP_SYS_PTRACE to attach to another user's process; run as root (`sudo tracer ...`), or \
give the binary these capabilities with `sudo setcap cap_bpf,cap_perfmon+ep tracer` (risk: \
then everyone who may run that file can load eBPF programs and read kernel memory and other \
processes' traffic: keep it mode 0750 in an admin group)";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Tracing works, with less detail.
    Degraded,
    /// Tracing cannot work.
    Missing,
}

#[derive(Clone, Debug)]
pub struct Check {
    pub what: String,
    pub status: Status,
    pub detail: String,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub checks: Vec<Check>,
    /// Programs to leave out because their tracepoint is missing.
    pub skip_programs: Vec<&'static str>,
    /// The `struct sock` offsets read from BTF, so the loader need not
    /// parse it again.
    pub sock_offsets: Option<tracer_ebpf::SockOffsets>,
}

impl Report {
    pub fn can_trace(&self) -> bool {
        self.checks.iter().all(|c| c.status != Status::Missing)
    }

    /// One line naming everything missing, with the fix for each. Items
    /// that are only unknown because of another missing one ("unknown: ...")
    /// are left out: they would bury the cause.
    pub fn missing(&self) -> String {
        let parts: Vec<String> = self
            .checks
            .iter()
            .filter(|c| c.status == Status::Missing && !c.detail.starts_with(UNKNOWN))
            .map(|c| format!("{}: {}", c.what, c.detail))
            .collect();
        parts.join("; ")
    }

    fn push(&mut self, what: impl Into<String>, status: Status, detail: impl Into<String>) {
        self.checks.push(Check {
            what: what.into(),
            status,
            detail: detail.into(),
        });
    }
}

/// Runs every check. Reads kernel BTF once, for the offsets and the
/// tracepoints alike; changes nothing on the machine.
pub fn run() -> Report {
    let mut report = Report::default();
    privileges(&mut report);
    kernel(&mut report);
    let btf = btf_check(&mut report);
    tracepoints(&mut report, btf.as_ref());
    report
}

/// Effective capability bits of this process.
fn effective_caps() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0)
}

pub fn has_bpf_privilege() -> bool {
    let caps = effective_caps();
    let has = |c: u32| caps & (1 << c) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

fn has_cap(c: u32) -> bool {
    effective_caps() & (1 << c) != 0
}

fn privileges(r: &mut Report) {
    if has_bpf_privilege() {
        r.push(
            "privileges",
            Status::Ok,
            "CAP_BPF and CAP_PERFMON (or root)",
        );
    } else {
        r.push("privileges", Status::Missing, PRIVILEGE_HELP);
    }
}

/// attach follows the links in /proc/PID/fd and /proc/PID/root (sockets that
/// already exist, libc for the DNS probe): the kernel's ptrace access check,
/// which for another user's process takes CAP_SYS_PTRACE. /proc/PID/exe is
/// a link under the same check. Err is the one-line message for exit 4.
pub fn can_inspect(pid: u32) -> Result<(), String> {
    match fs::read_link(format!("/proc/{pid}/exe")) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(format!(
            "cannot follow /proc/{pid}/exe ({e}): pid {pid} belongs to another user{}; {PRIVILEGE_HELP}",
            if has_cap(CAP_SYS_PTRACE) {
                ""
            } else {
                " and this process lacks CAP_SYS_PTRACE"
            }
        )),
        _ => Ok(()),
    }
}

/// The release, for the reader. What the programs need (program types,
/// helpers, the ring buffer, the verifier's limits) is not guessed from it:
/// the tracepoints are looked up in BTF below, and loading the programs
/// (`tracer check`'s last line, and every `trace` and `attach`) is the test.
/// A backported or patched kernel may have more or less than its number says.
fn kernel(r: &mut Report) {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    r.push(
        "kernel",
        Status::Ok,
        format!(
            "Linux {}: what it supports is checked below, by BTF and by loading",
            release.trim()
        ),
    );
}

/// The BTF check; returns the parsed BTF, whatever the offsets gave, for
/// the tracepoint check.
fn btf_check(r: &mut Report) -> Option<btf::Btf> {
    let path = knobs::btf_path().unwrap_or_else(|| "/sys/kernel/btf/vmlinux".to_string());
    let parsed = match fs::read(&path).map(btf::Btf::parse) {
        Err(e) => {
            r.push(
                "BTF",
                Status::Missing,
                format!(
                    "kernel BTF {path}: {e}: the probes need the kernel's type information; \
                     use a kernel built with CONFIG_DEBUG_INFO_BTF=y"
                ),
            );
            return None;
        }
        Ok(Err(e)) => {
            r.push("BTF", Status::Missing, format!("kernel BTF {path}: {e}"));
            return None;
        }
        Ok(Ok(b)) => b,
    };
    match btf::sock_offsets(&parsed) {
        Ok(o) => {
            r.sock_offsets = Some(o);
            r.push(
                "BTF",
                Status::Ok,
                format!(
                    "struct sock offsets: v6 daddr {}, protocol {}",
                    o.skc_v6_daddr, o.sk_protocol
                ),
            )
        }
        Err(e) => r.push("BTF", Status::Missing, e.to_string()),
    }
    Some(parsed)
}

/// Detail of a check that cannot be known because another one is missing.
const UNKNOWN: &str = "unknown: ";

/// A plain note for a program that was left out: what the trace lacks, and
/// which tracepoint is why.
pub fn skipped_note(program: &str, why: &str) -> String {
    match PROGRAMS.iter().find(|s| s.program == program) {
        Some(spec) => {
            let (group, name) = spec.hook.group_and_name();
            format!(
                "no {} in this trace: tracepoint {group}:{name} could not be attached ({why})",
                spec.serves
            )
        }
        None => format!("{program} not attached ({why}); its events are missing"),
    }
}

/// The hook that stands in for `program` when its tracepoint is missing,
/// if this kernel has the functions it attaches to. Whether it attaches is
/// known only by trying: the probes' line says.
fn stand_in(program: &str, btf: &btf::Btf) -> Option<&'static fallback::Fallback> {
    [&fallback::SEND, &fallback::RECV]
        .into_iter()
        .find(|f| f.replaces == Some(program))
        .filter(|f| f.functions.iter().all(|name| btf.has_func(name)))
}

/// Each program's tracepoint, looked up in kernel BTF: the `btf_trace_*`
/// typedef that its `tp_btf` load resolves (see [`btf::Btf::has_raw_tracepoint`]).
fn tracepoints(r: &mut Report, btf: Option<&btf::Btf>) {
    let hidden = knobs::hidden_tracepoints();
    for spec in PROGRAMS {
        let (group, name) = spec.hook.group_and_name();
        let label = format!("tracepoint {group}:{name}");
        let Some(btf) = btf else {
            r.push(
                label,
                Status::Missing,
                format!("{UNKNOWN}kernel BTF is not readable"),
            );
            continue;
        };
        let present = !hidden.iter().any(|h| h == name) && btf.has_raw_tracepoint(name);
        if present {
            r.push(label, Status::Ok, spec.serves);
        } else if spec.required {
            r.push(
                label,
                Status::Missing,
                format!("not in this kernel; needed for {}", spec.serves),
            );
        } else if let Some(fb) = stand_in(spec.program, btf) {
            r.skip_programs.push(spec.program);
            r.push(
                label,
                Status::Ok,
                format!(
                    "not in this kernel: {} from {} instead (mechanism below)",
                    fb.serves,
                    fb.functions.join(", ")
                ),
            );
        } else {
            r.skip_programs.push(spec.program);
            r.push(
                label,
                Status::Degraded,
                format!("not in this kernel: no {}", spec.serves),
            );
        }
    }
}
