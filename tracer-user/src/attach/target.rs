//! The process to attach to: is it one we can trace, where is its libc, and
//! when does it exit.
use std::{
    fs,
    os::fd::{FromRawFd, OwnedFd},
    path::PathBuf,
    time::Duration,
};

use tokio::io::unix::AsyncFd;

/// Why a PID cannot be attached to; the message is the one-line error.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("no process with pid {0}")]
    NoSuchProcess(i64),
    #[error("pid {0} is a kernel thread: it has no sockets of its own to trace")]
    KernelThread(i64),
    #[error("pid {0} is tracer itself")]
    Itself(i64),
}

/// `PF_KTHREAD` in the flags field of /proc/PID/stat.
const PF_KTHREAD: u64 = 0x0020_0000;

pub struct Target {
    pub pid: u32,
    /// `comm`: the short process name.
    pub name: String,
}

impl Target {
    pub fn find(pid: i64) -> Result<Self, TargetError> {
        if pid == i64::from(std::process::id()) {
            return Err(TargetError::Itself(pid));
        }
        let pid32 = u32::try_from(pid)
            .ok()
            .filter(|&p| p > 0 && p <= i32::MAX as u32)
            .ok_or(TargetError::NoSuchProcess(pid))?;
        let stat = fs::read_to_string(format!("/proc/{pid32}/stat"))
            .map_err(|_| TargetError::NoSuchProcess(pid))?;
        // "pid (comm) state ppid ..." where comm may hold spaces and parens.
        let open = stat.find('(').unwrap_or(0);
        let close = stat.rfind(')').unwrap_or(stat.len());
        let name = stat.get(open + 1..close).unwrap_or("?").to_string();
        let fields: Vec<&str> = stat
            .get(close + 1..)
            .unwrap_or("")
            .split_whitespace()
            .collect();
        // After the comm: state(3) ppid(4) ... flags is field 9, index 6 here.
        let flags: u64 = fields.get(6).and_then(|f| f.parse().ok()).unwrap_or(0);
        if fields.first() == Some(&"Z") {
            return Err(TargetError::NoSuchProcess(pid));
        }
        if flags & PF_KTHREAD != 0 {
            return Err(TargetError::KernelThread(pid));
        }
        Ok(Self { pid: pid32, name })
    }

    /// Every process whose comm (the kernel keeps 15 bytes) or
    /// executable's basename is `name`, but the tracer and kernel threads.
    pub fn by_name(name: &str) -> Vec<Self> {
        let short: String = name.chars().take(15).collect();
        let me = std::process::id();
        let Ok(dir) = fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut pids: Vec<u32> = dir
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| pid != me)
            .collect();
        pids.sort_unstable();
        pids.into_iter()
            .filter(|&pid| {
                let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
                let exe = fs::read_link(format!("/proc/{pid}/exe")).ok();
                comm.trim_end_matches('\n') == short
                    || exe.is_some_and(|e| e.file_name().is_some_and(|f| f == name))
            })
            .filter_map(|pid| Self::find(i64::from(pid)).ok())
            .collect()
    }

    /// The target's libc as a path we can open (through /proc/PID/root, so
    /// a process in a container resolves its own file), if it maps one.
    pub fn libc(&self) -> Option<PathBuf> {
        let maps = fs::read_to_string(format!("/proc/{}/maps", self.pid)).ok()?;
        let path = maps.lines().find_map(|l| {
            let path = l.split_whitespace().nth(5)?;
            let file = path.rsplit('/').next()?;
            let is_libc = file.starts_with("libc.so")
                || (file.starts_with("libc-") && file.contains(".so"))
                || file.starts_with("ld-musl");
            is_libc.then(|| path.to_string())
        })?;
        let rooted = PathBuf::from(format!("/proc/{}/root{path}", self.pid));
        Some(if rooted.exists() { rooted } else { path.into() })
    }

    /// Whether the process has exited already (a zombie, or reaped).
    pub fn gone(&self) -> bool {
        match fs::read_to_string(format!("/proc/{}/stat", self.pid)) {
            // The state follows the command name's closing parenthesis.
            Ok(stat) => stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state == "Z" || state == "X"),
            Err(_) => true,
        }
    }

    /// Resolves once the process has exited (zombie or gone).
    pub async fn exited(&self) {
        match pidfd(self.pid) {
            Some(fd) => {
                // SAFETY: the AsyncFd owns the pidfd and closes it on drop.
                let fd = unsafe { AsyncFd::register(fd) };
                // A pidfd polls readable once the process has exited.
                if let Ok(fd) = fd
                    && fd.readable().await.is_ok()
                {
                    return;
                }
                self.poll_exit().await;
            }
            None => self.poll_exit().await,
        }
    }

    async fn poll_exit(&self) {
        while alive(self.pid) {
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }
}

/// The processes below `root` now, as (pid, parent) pairs, parents first.
pub fn descendants(root: u32) -> Vec<(u32, u32)> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(u32, u32)> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect();
    let mut found: Vec<(u32, u32)> = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for &(pid, _) in parents.iter().filter(|&&(_, pp)| pp == parent) {
            if pid != root && !found.iter().any(|&(p, _)| p == pid) {
                found.push((pid, parent));
                frontier.push(pid);
            }
        }
    }
    found
}

/// The ppid field of /proc/PID/stat (the 4th, after the comm).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// Whether `pid` runs (a zombie has exited).
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rfind(')')
            .and_then(|i| stat.get(i + 1..))
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn pidfd(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    // SAFETY: a fresh fd that nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_process_is_not_gone_and_a_zombie_is() {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("true runs");
        let t = Target {
            pid: child.id(),
            name: "true".into(),
        };
        // Unreaped after it exits: a zombie, until wait() below.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !t.gone() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(t.gone(), "exited child still looks alive");
        let _ = child.wait();
        assert!(t.gone(), "reaped child");
        let me = Target {
            pid: std::process::id(),
            name: "me".into(),
        };
        assert!(!me.gone());
    }

    #[test]
    fn refuses_itself_and_missing_pids() {
        let me = i64::from(std::process::id());
        assert_eq!(Target::find(me).err(), Some(TargetError::Itself(me)));
        assert_eq!(Target::find(-3).err(), Some(TargetError::NoSuchProcess(-3)));
        let huge = i64::from(i32::MAX) + 5;
        assert_eq!(
            Target::find(huge).err(),
            Some(TargetError::NoSuchProcess(huge))
        );
    }

    #[test]
    fn by_name_finds_others_never_itself() {
        let me = std::process::id();
        let comm = fs::read_to_string("/proc/self/comm").unwrap_or_default();
        let mut twin = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn sleep");
        let mine = Target::by_name(comm.trim_end());
        let sleeps = Target::by_name("sleep");
        let _ = twin.kill();
        let _ = twin.wait();
        assert!(mine.iter().all(|t| t.pid != me), "matched itself");
        assert!(sleeps.iter().any(|t| t.pid == twin.id()), "sleep not found");
    }

    #[test]
    fn a_child_is_a_descendant() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn sleep");
        let me = std::process::id();
        let found = descendants(me);
        let _ = child.kill();
        let _ = child.wait();
        assert!(found.contains(&(child.id(), me)), "{found:?}");
    }

    #[test]
    fn kthreadd_is_a_kernel_thread() {
        if !fs::read_to_string("/proc/2/comm").is_ok_and(|c| c.trim() == "kthreadd") {
            println!("skipped: pid 2 is not kthreadd here (own pid namespace?)");
            return;
        }
        assert_eq!(Target::find(2).err(), Some(TargetError::KernelThread(2)));
    }
}
