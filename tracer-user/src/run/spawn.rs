//! Starting the command stopped: fork, and let the child wait on a pipe
//! until its pid is in the kernel's filter; only then does it exec. Between
//! fork and exec the child is a copy of a multi-threaded process, so it
//! calls only async-signal-safe functions, on data prepared before the fork.
use std::{
    ffi::{CString, OsStr, OsString},
    io,
    os::{
        fd::{AsRawFd, FromRawFd, OwnedFd},
        unix::ffi::{OsStrExt, OsStringExt},
    },
    path::{Path, PathBuf},
};

/// Who the command runs as, when not as the tracer's own user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups.
    pub groups: Vec<u32>,
}

/// A forked child that waits for [`Stopped::release`] before it execs.
/// Dropped unreleased, it is killed and reaped.
pub struct Stopped {
    pub pid: u32,
    go: Option<OwnedFd>,
}

impl Stopped {
    /// Lets the child exec its command.
    pub fn release(mut self) -> io::Result<()> {
        let go = self
            .go
            .take()
            .ok_or_else(|| io::Error::other("released twice"))?;
        // SAFETY: writes one byte from a live buffer to an fd we own.
        let n = unsafe { libc::write(go.as_raw_fd(), [1u8].as_ptr().cast(), 1) };
        if n == 1 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
}

impl Drop for Stopped {
    fn drop(&mut self) {
        if self.go.take().is_some() {
            // Closing the pipe alone would make it exit too; do not wait on that.
            // SAFETY: our own child, not yet reaped.
            unsafe {
                libc::kill(self.pid as i32, libc::SIGKILL);
                libc::waitpid(self.pid as i32, std::ptr::null_mut(), 0);
            }
        }
    }
}

/// `program` as execv wants it: a path, searched in `PATH` when it has no `/`.
pub fn resolve(program: &OsStr) -> Option<PathBuf> {
    let as_path = Path::new(program);
    if program.as_bytes().contains(&b'/') {
        return as_path.is_file().then(|| as_path.to_path_buf());
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    p.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Forks a child that execs `path` with `argv` once released, as `creds`
/// when given, with the tracer's environment, stdin, stdout and stderr.
pub fn spawn_stopped(
    path: &Path,
    argv: &[OsString],
    creds: Option<&Credentials>,
) -> io::Result<Stopped> {
    let c = |s: Vec<u8>| CString::new(s).map_err(|_| io::Error::other("a NUL byte in the command"));
    let path = c(path.as_os_str().as_bytes().to_vec())?;
    let args = argv
        .iter()
        .map(|a| c(a.clone().into_vec()))
        .collect::<io::Result<Vec<_>>>()?;
    let mut arg_ptrs: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    arg_ptrs.push(std::ptr::null());
    let groups: Vec<libc::gid_t> = creds.map(|c| c.groups.clone()).unwrap_or_default();
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds; O_CLOEXEC keeps them out of the command.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh fds that nothing else owns.
    let (wait, go) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the child runs only async-signal-safe calls, then execs or exits.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(go);
            child(wait.as_raw_fd(), &path, &arg_ptrs, creds, &groups)
        }
        pid => Ok(Stopped {
            pid: pid as u32,
            go: Some(go),
        }),
    }
}

/// The child: wait for the go byte, shed the tracer's privileges, exec.
fn child(
    wait: i32,
    path: &CString,
    argv: &[*const libc::c_char],
    creds: Option<&Credentials>,
    groups: &[libc::gid_t],
) -> ! {
    let fail = |what: &[u8]| -> ! {
        // SAFETY: write and _exit are async-signal-safe.
        unsafe {
            libc::write(2, what.as_ptr().cast(), what.len());
            libc::_exit(127)
        }
    };
    let mut byte = 0u8;
    loop {
        // SAFETY: reads one byte into a live local.
        match unsafe { libc::read(wait, (&raw mut byte).cast(), 1) } {
            1 => break,
            // SAFETY: reads errno of this thread.
            -1 if unsafe { *libc::__errno_location() } == libc::EINTR => {}
            // The tracer gave up before tracing was in place.
            _ => unsafe { libc::_exit(127) },
        }
    }
    // SAFETY: plain syscalls on values prepared before the fork.
    unsafe {
        libc::close(wait);
        // Capabilities in the ambient set would survive exec: clear them.
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        );
        if let Some(c) = creds
            && (libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setgid(c.gid) != 0
                || libc::setuid(c.uid) != 0)
        {
            fail(b"tracer: cannot switch the command to the invoking user\n");
        }
        // As std's Command does: the tracer ignores SIGPIPE, the command must not.
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut all);
        libc::sigprocmask(libc::SIG_SETMASK, &all, std::ptr::null_mut());
        libc::execv(path.as_ptr(), argv.as_ptr());
    }
    fail(b"tracer: exec of the command failed\n")
}
