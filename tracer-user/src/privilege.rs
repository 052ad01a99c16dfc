//! Giving up privilege once the probes are attached. The open program, link
//! and map file descriptors (the ring buffers among them) keep working with
//! no capability at all, so every capability goes: effective, permitted,
//! inheritable, ambient and (while CAP_SETPCAP lasts) the bounding set; and
//! no_new_privs is set, so no later execve can gain any back. The user id is
//! kept (root stays uid 0, without capabilities).
//!
//! Capabilities and no_new_privs belong to each thread, not the process, and
//! the async runtime has several. So every thread is signalled to drop its
//! own, as glibc does for setuid(); threads made later inherit the empty set.
use std::{
    fs,
    time::{Duration, Instant},
};

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
/// Highest capability number a kernel could have; PR_CAPBSET_DROP of one
/// past the kernel's last fails with EINVAL, which is ignored.
const CAP_MAX: libc::c_ulong = 63;
/// How long all threads get to drop theirs.
const LIMIT: Duration = Duration::from_secs(2);

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops the calling thread's privilege. Async-signal-safe: system calls only.
fn drop_this_thread() {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: prctl/capset with plain integer arguments and pointers to live
    // values of the kernel's layout; failures only leave privilege in place,
    // which the caller sees in /proc.
    unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        for cap in 0..=CAP_MAX {
            libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
        }
        libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr());
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    // SAFETY: errno is thread-local; restored so the interrupted code sees
    // its own.
    unsafe {
        let errno = *libc::__errno_location();
        drop_this_thread();
        *libc::__errno_location() = errno;
    }
}

fn signal() -> libc::c_int {
    libc::SIGRTMIN() + 3
}

/// Whether thread `tid` of this process still holds any privilege: a
/// capability in its effective, permitted or ambient set, or no
/// no_new_privs. None when the thread is gone.
fn still_privileged(tid: &str) -> Option<bool> {
    let status = fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
            .unwrap_or("")
            .to_string()
    };
    let zero = |name: &str| u64::from_str_radix(&field(name), 16) == Ok(0);
    Some(!(zero("CapEff:") && zero("CapPrm:") && zero("CapAmb:") && field("NoNewPrivs:") == "1"))
}

/// Drops every capability of every thread and sets no_new_privs. Err names
/// the threads that still hold some after a bounded wait.
pub fn drop_all() -> Result<(), String> {
    // SAFETY: installs a handler that only makes system calls.
    let installed = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as usize;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&raw mut action.sa_mask);
        libc::sigaction(signal(), &raw const action, std::ptr::null_mut())
    };
    if installed != 0 {
        return Err(format!(
            "cannot install a signal handler: {}",
            std::io::Error::last_os_error()
        ));
    }
    drop_this_thread();
    // SAFETY: plain system calls without pointers.
    let (pid, me) = unsafe { (libc::getpid(), libc::gettid()) };
    let deadline = Instant::now() + LIMIT;
    loop {
        let tasks = fs::read_dir("/proc/self/task").map_err(|e| e.to_string())?;
        let left: Vec<String> = tasks
            .filter_map(Result::ok)
            .filter_map(|t| t.file_name().into_string().ok())
            .filter(|tid| still_privileged(tid) == Some(true))
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("threads {} kept privileges", left.join(", ")));
        }
        for tid in &left {
            match tid.parse::<libc::pid_t>() {
                Ok(t) if t == me => drop_this_thread(),
                // SAFETY: signals a thread of this process; the handler is set.
                Ok(t) => unsafe {
                    libc::syscall(libc::SYS_tgkill, pid, t, signal());
                },
                Err(_) => {}
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
