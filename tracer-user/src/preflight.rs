//! What this machine allows: privileges, kernel, tracefs, BTF, tracepoints.
//! `tracer check` prints this; `trace` and `attach` stop on what is missing.
use std::{fs, path::Path};

use crate::probes::{PROGRAMS, btf};

pub const TRACEFS: &str = "/sys/kernel/tracing";
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// What the kernel side needs and how to get it: the one message of exit 4
/// for a missing privilege.
pub const PRIVILEGE_HELP: &str = "needs CAP_BPF and CAP_PERFMON (load and attach the probes) and \
CAP_DAC_READ_SEARCH (read tracefs, which is root-only), plus CAP_SYS_PTRACE to attach to another \
user's process; run as root (`sudo tracer ...`), or give the binary these capabilities with \
`sudo setcap cap_bpf,cap_perfmon,cap_dac_read_search+ep tracer` (risk: then everyone who may \
run that file can load eBPF programs and read kernel memory and other processes' traffic: \
keep it mode 0750 in an admin group)";

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

/// Runs every check. Mounts tracefs when it is missing and we may.
pub fn run() -> Report {
    let mut report = Report::default();
    let privileged = privileges(&mut report);
    kernel(&mut report);
    btf_check(&mut report);
    let tracefs_ok = tracefs(&mut report, privileged);
    tracepoints(&mut report, tracefs_ok);
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

fn privileges(r: &mut Report) -> bool {
    let ok = has_bpf_privilege();
    if ok {
        r.push(
            "privileges",
            Status::Ok,
            "CAP_BPF and CAP_PERFMON (or root)",
        );
    } else {
        r.push("privileges", Status::Missing, PRIVILEGE_HELP);
    }
    ok
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

fn kernel(r: &mut Report) {
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let release = release.trim();
    let mut nums = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse::<u32>().ok());
    let (major, minor) = (nums.next().unwrap_or(0), nums.next().unwrap_or(0));
    if (major, minor) >= (6, 3) {
        r.push("kernel", Status::Ok, format!("Linux {release}"));
    } else if (major, minor) >= (5, 8) {
        r.push(
            "kernel",
            Status::Degraded,
            format!("Linux {release}: no send/recv byte tracepoints before 6.3"),
        );
    } else {
        r.push(
            "kernel",
            Status::Missing,
            format!("Linux {release}: needs 5.8+ (BPF ring buffer)"),
        );
    }
}

/// Test-only: read kernel BTF from this path instead (e.g. a missing one).
const BTF_PATH_ENV: &str = "TRACER_TEST_BTF_PATH";

fn btf_check(r: &mut Report) {
    let path =
        std::env::var(BTF_PATH_ENV).unwrap_or_else(|_| "/sys/kernel/btf/vmlinux".to_string());
    match fs::read(&path).map(btf::Btf::parse) {
        Err(e) => r.push(
            "BTF",
            Status::Missing,
            format!(
                "kernel BTF {path}: {e}: the probes need the kernel's type information; \
                 use a kernel built with CONFIG_DEBUG_INFO_BTF=y"
            ),
        ),
        Ok(Err(e)) => r.push("BTF", Status::Missing, format!("kernel BTF {path}: {e}")),
        Ok(Ok(b)) => match btf::sock_offsets(&b) {
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
        },
    }
}

fn tracefs_mounted() -> bool {
    Path::new(TRACEFS).join("events").is_dir()
}

/// Detail of a check that cannot be known because another one is missing.
const UNKNOWN: &str = "unknown: ";

/// aya resolves classic tracepoint ids through tracefs; mount it as bpftrace
/// does when it is missing.
fn tracefs(r: &mut Report, privileged: bool) -> bool {
    if tracefs_mounted() {
        r.push("tracefs", Status::Ok, format!("mounted at {TRACEFS}"));
        return true;
    }
    // Mounted, but mode 0700 root: reading it takes CAP_DAC_READ_SEARCH.
    let denied = fs::metadata(Path::new(TRACEFS).join("events"))
        .is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied);
    if denied || !privileged {
        let why = if !privileged {
            format!("{UNKNOWN}not readable or mountable without privilege")
        } else if !has_cap(CAP_DAC_READ_SEARCH) {
            format!(
                "{TRACEFS} is readable by root only: needs CAP_DAC_READ_SEARCH too; run as root, \
                 or `sudo setcap cap_bpf,cap_perfmon,cap_dac_read_search+ep tracer`"
            )
        } else {
            format!("{TRACEFS} is not readable")
        };
        r.push("tracefs", Status::Missing, why);
        return false;
    }
    match mount_tracefs() {
        Ok(()) if tracefs_mounted() => {
            r.push(
                "tracefs",
                Status::Ok,
                format!("was not mounted; mounted it at {TRACEFS}"),
            );
            true
        }
        Ok(()) => {
            r.push(
                "tracefs",
                Status::Missing,
                format!("mounted {TRACEFS} but it has no events/"),
            );
            false
        }
        Err(e) => {
            r.push("tracefs", Status::Missing, format!("not mounted and mounting failed ({e}): run `mount -t tracefs nodev {TRACEFS}` as root"));
            false
        }
    }
}

fn mount_tracefs() -> std::io::Result<()> {
    let target = c"/sys/kernel/tracing";
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

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

/// Test-only: pretend these tracepoints do not exist (comma-separated names).
const HIDE_ENV: &str = "TRACER_TEST_HIDE_TRACEPOINTS";

fn tracepoints(r: &mut Report, tracefs_ok: bool) {
    let hidden = std::env::var(HIDE_ENV).unwrap_or_default();
    for spec in PROGRAMS {
        let (group, name) = spec.hook.group_and_name();
        let label = format!("tracepoint {group}:{name}");
        let present = tracefs_ok
            && !hidden.split(',').any(|h| h == name)
            && Path::new(TRACEFS)
                .join("events")
                .join(group)
                .join(name)
                .is_dir();
        if present {
            r.push(label, Status::Ok, spec.serves);
        } else if !tracefs_ok {
            r.push(
                label,
                Status::Missing,
                format!("{UNKNOWN}tracefs is not readable"),
            );
        } else if spec.required {
            r.push(
                label,
                Status::Missing,
                format!("not in this kernel; needed for {}", spec.serves),
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
