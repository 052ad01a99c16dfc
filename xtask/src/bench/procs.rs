//! Child processes of the bench: output collected by threads, lines waited
//! for with a deadline, signals by pid, and `wait4` so the tracer's peak RSS
//! comes from the kernel's own accounting.
use std::{
    fs::File,
    io::{BufRead, BufReader, Read, Write},
    path::Path,
    process::{ChildStdin, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};

/// CLOCK_MONOTONIC in ns: the clock of the tracer's `ts_ns`.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub struct Proc {
    name: String,
    pid: i32,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
    reaped: bool,
}

/// How a child ended.
pub struct Exit {
    pub code: Option<i32>,
    /// `ru_maxrss` from wait4: the child's peak resident set, in KiB.
    pub max_rss_kib: u64,
    /// User plus system CPU time the child used, in seconds.
    pub cpu_s: f64,
}

fn collect(from: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let text = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&text);
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            let mut t = sink.lock().unwrap_or_else(|e| e.into_inner());
            t.push_str(&line);
            t.push('\n');
        }
    });
    text
}

impl Proc {
    /// Starts `cmd`; its stdout goes to `stdout_file` when given (large
    /// tracer output), else it is collected in memory.
    pub fn spawn(name: &str, cmd: &mut Command, stdout_file: Option<&Path>) -> Result<Self> {
        let stdout = match stdout_file {
            Some(p) => Stdio::from(File::create(p).with_context(|| format!("{}", p.display()))?),
            None => Stdio::piped(),
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .env("NO_COLOR", "1")
            .spawn()
            .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
        let out = child.stdout.take().map(collect).unwrap_or_default();
        let err = child.stderr.take().map(collect).unwrap_or_default();
        Ok(Self {
            name: name.to_string(),
            pid: child.id() as i32,
            stdin: child.stdin.take(),
            out,
            err,
            reaped: false,
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    pub fn stdout(&self) -> String {
        self.out.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn stderr(&self) -> String {
        self.err.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits for a line containing `needle` and returns it.
    pub fn wait_for(&self, needle: &str, on_stderr: bool, limit: Duration) -> Result<String> {
        let deadline = Instant::now() + limit;
        loop {
            let text = if on_stderr {
                self.stderr()
            } else {
                self.stdout()
            };
            if let Some(line) = text.lines().find(|l| l.contains(needle)) {
                return Ok(line.to_string());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not print {needle:?} within {limit:?}; stderr: {}",
                    self.name,
                    self.stderr().trim()
                );
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    pub fn send_line(&mut self, line: &str) -> Result<()> {
        let stdin = self.stdin.as_mut().context("stdin already closed")?;
        writeln!(stdin, "{line}")?;
        stdin.flush()?;
        Ok(())
    }

    pub fn signal(&self, sig: i32) {
        if !self.reaped {
            // SAFETY: plain syscall on our own child, not yet reaped.
            unsafe { libc::kill(self.pid, sig) };
        }
    }

    /// Waits up to `limit` for the exit; kills the child and fails after it.
    pub fn wait(&mut self, limit: Duration) -> Result<Exit> {
        if let Some(exit) = self.wait_up_to(limit)? {
            return Ok(exit);
        }
        self.signal(libc::SIGKILL);
        let _ = self.reap(0);
        bail!("{} did not exit within {limit:?}; killed", self.name);
    }

    /// Waits up to `limit` for the exit; `None` if the child still runs.
    pub fn wait_up_to(&mut self, limit: Duration) -> Result<Option<Exit>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(exit) = self.reap(libc::WNOHANG)? {
                return Ok(Some(exit));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// SIGINT, then [`Self::wait`].
    pub fn interrupt(&mut self, limit: Duration) -> Result<Exit> {
        self.signal(libc::SIGINT);
        self.wait(limit)
    }

    fn reap(&mut self, flags: i32) -> Result<Option<Exit>> {
        if self.reaped {
            bail!("{} was already reaped", self.name);
        }
        let mut status = 0;
        // SAFETY: zeroed rusage is a valid out-value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid out-pointers; the pid is our own child.
        let rc = unsafe { libc::wait4(self.pid, &mut status, flags, &mut usage) };
        if rc == 0 {
            return Ok(None);
        }
        if rc < 0 {
            bail!("wait4 {}: {}", self.name, std::io::Error::last_os_error());
        }
        self.reaped = true;
        // Let the reader threads take the last lines.
        std::thread::sleep(Duration::from_millis(20));
        let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Ok(Some(Exit {
            code,
            max_rss_kib: usage.ru_maxrss as u64,
            cpu_s: secs(usage.ru_utime) + secs(usage.ru_stime),
        }))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // The bench's helpers exit when their stdin closes; others are killed.
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_millis(500);
        while !self.reaped && Instant::now() < deadline {
            if !matches!(self.reap(libc::WNOHANG), Ok(None)) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if !self.reaped {
            self.signal(libc::SIGKILL);
            let _ = self.reap(0);
        }
    }
}
