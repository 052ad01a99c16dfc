//! The tracer's PID namespace, for the programs' view of pids (`PidNs`).
//!
//! `bpf_get_current_pid_tgid()` gives the initial namespace's numbers; a
//! tracer in a container knows its own (getpid, /proc, `--pid`). In a
//! namespace of its own the programs ask for that namespace's numbers
//! instead, so every pid in the kernel's filter and in the events is one
//! this process can look up. In the initial namespace nothing changes.
use std::{fs, io, os::unix::fs::MetadataExt};

use tracer_ebpf::PidNs;

/// `PROC_PID_INIT_INO`: the inode number the kernel gives the initial PID
/// namespace (fixed since Linux 3.8).
const INITIAL_PID_NS_INO: u64 = 0xEFFF_FFFC;

/// Why the tracer cannot number processes as the kernel filter would.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PidNsError {
    #[error("cannot read {path} ({error}): mount a procfs at /proc")]
    Unreadable { path: &'static str, error: String },
    #[error(
        "/proc belongs to another PID namespace than tracer (/proc/self is {proc_self}, getpid() is {getpid}): \
         mount this namespace's own /proc (unshare --pid --fork --mount-proc, or a container's default /proc)"
    )]
    ForeignProc { proc_self: String, getpid: u32 },
    #[error(
        "pid {pid} is in a PID namespace nested inside tracer's: the kernel filter sees only processes of tracer's own \
         namespace; run tracer in that namespace, or in the host's"
    )]
    Nested { pid: u32 },
}

/// The namespace the programs number pids in: [`PidNs::INITIAL`] when the
/// tracer runs in the initial one (or the kernel has no PID namespaces).
/// /proc/self is this process whichever namespace /proc belongs to, so
/// `trace`, which looks up no other pid, needs nothing more.
pub fn tracer_pid_ns() -> Result<PidNs, PidNsError> {
    match fs::metadata("/proc/self/ns/pid") {
        Ok(m) => Ok(from_stat(m.dev(), m.ino())),
        // No CONFIG_PID_NS: every process is in the initial namespace.
        Err(e) if e.kind() == io::ErrorKind::NotFound && fs::metadata("/proc/self").is_ok() => {
            Ok(PidNs::INITIAL)
        }
        Err(e) => Err(PidNsError::Unreadable {
            path: "/proc/self/ns/pid",
            error: e.to_string(),
        }),
    }
}

/// Refuses a /proc of an outer namespace (`unshare --pid --fork` without
/// `--mount-proc`): its pids are not the ones the kernel filter and the
/// events use, so `attach` and `run` would look up the wrong processes.
pub fn check_own_proc() -> Result<(), PidNsError> {
    let proc_self = fs::read_link("/proc/self")
        .map_err(|e| PidNsError::Unreadable {
            path: "/proc/self",
            error: e.to_string(),
        })?
        .to_string_lossy()
        .into_owned();
    let getpid = std::process::id();
    if proc_self == getpid.to_string() {
        Ok(())
    } else {
        Err(PidNsError::ForeignProc { proc_self, getpid })
    }
}

/// Refuses a process that /proc shows but the programs would never see: one
/// in a namespace below the tracer's (the helper matches the task's own
/// namespace only). In the initial namespace every process is seen.
pub fn check_visible(pid: u32) -> Result<(), PidNsError> {
    let ours = tracer_pid_ns()?;
    if ours == PidNs::INITIAL {
        return Ok(());
    }
    match fs::metadata(format!("/proc/{pid}/ns/pid")) {
        Ok(m) if from_stat(m.dev(), m.ino()) != ours => Err(PidNsError::Nested { pid }),
        // Gone, or not ours to read: the caller's other checks say so.
        _ => Ok(()),
    }
}

/// `st_dev` (userspace's encoding of a dev_t) and `st_ino` of an nsfs inode
/// as the helper compares them: the kernel's dev_t is `major << 20 | minor`.
fn from_stat(dev: u64, ino: u64) -> PidNs {
    if ino == INITIAL_PID_NS_INO {
        return PidNs::INITIAL;
    }
    let (major, minor) = (u64::from(libc::major(dev)), u64::from(libc::minor(dev)));
    PidNs {
        dev: major << 20 | minor,
        ino,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_namespace_is_zero_and_others_use_the_kernels_dev_t() {
        assert_eq!(from_stat(4, INITIAL_PID_NS_INO), PidNs::INITIAL);
        // nsfs is an anonymous device, 0:4 here; a minor above 255 is where
        // the two encodings part.
        assert_eq!(from_stat(libc::makedev(0, 4), 7), PidNs { dev: 4, ino: 7 });
        assert_eq!(
            from_stat(libc::makedev(0, 300), 7),
            PidNs { dev: 300, ino: 7 }
        );
        assert_eq!(
            from_stat(libc::makedev(8, 1), 7),
            PidNs {
                dev: 8 << 20 | 1,
                ino: 7
            }
        );
    }

    #[test]
    fn this_process_is_visible_to_itself() {
        assert_eq!(check_own_proc(), Ok(()));
        assert_eq!(check_visible(std::process::id()), Ok(()));
    }
}
