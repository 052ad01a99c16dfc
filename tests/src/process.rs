//! Child processes for end-to-end tests: output collected by threads, lines
//! waited for with a deadline, exit awaited without hanging the test.
use std::{
    io::{BufRead, BufReader, Read, Write},
    process::{Child, ChildStdin, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

pub struct Proc {
    pub child: Child,
    stdin: Option<ChildStdin>,
    out: Arc<Mutex<String>>,
    err: Arc<Mutex<String>>,
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
    pub fn spawn(cmd: &mut Command) -> std::io::Result<Self> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdin = child.stdin.take();
        let out = child.stdout.take().map(collect).unwrap_or_default();
        let err = child.stderr.take().map(collect).unwrap_or_default();
        Ok(Self {
            child,
            stdin,
            out,
            err,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout(&self) -> String {
        self.out.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn stderr(&self) -> String {
        self.err.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Waits until stdout (or stderr) contains `needle`; false on timeout.
    pub fn wait_for(&self, needle: &str, on_stderr: bool, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            let text = if on_stderr {
                self.stderr()
            } else {
                self.stdout()
            };
            if text.contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn send_line(&mut self, line: &str) -> std::io::Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| std::io::Error::other("stdin already closed"))?;
        writeln!(stdin, "{line}")?;
        stdin.flush()
    }

    /// Closes the child's stdin (the bench helpers exit on that).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Spawns a helper that prints `ready` and then waits for a line (the
    /// tests' http-target, bench-pingpong --wait), and waits for `ready`.
    pub fn spawn_ready(cmd: &mut Command) -> Self {
        let p = Self::spawn(cmd).expect("the helper starts");
        assert!(
            p.wait_for("ready", false, Duration::from_secs(10)),
            "not ready: {}",
            p.stderr()
        );
        p
    }

    /// Says go to a [`Proc::spawn_ready`] helper and waits until it has
    /// exited successfully.
    pub fn go_and_succeed(&mut self) {
        self.send_line("go").expect("the helper reads stdin");
        let status = self.wait_exit(Duration::from_secs(20));
        assert!(
            status.is_some_and(|s| s.success()),
            "helper failed: {}",
            self.stderr()
        );
    }

    /// Waits for a tracer to end on its own, asserts it exited 0, and
    /// returns its stdout.
    pub fn exit_0_stdout(&mut self) -> String {
        let status = self.wait_exit(Duration::from_secs(20));
        let out = self.stdout();
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "stdout: {out}\nstderr: {}",
            self.stderr()
        );
        out
    }

    /// Waits for the exit; kills the process and returns None on timeout.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader threads take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Whether this machine can load the probes; prints the skip reason if not.
pub fn can_trace_or_skip() -> bool {
    let report = tracer_user::preflight::run();
    if !report.can_trace() {
        println!("skipped: {}", report.missing());
    }
    report.can_trace()
}

/// Starts `tracer attach` on `pid` and waits until it says it is attached.
/// JSON and Chrome formats say so on stderr.
pub fn attach(pid: u32, format: &str) -> Proc {
    attach_with(pid, format, &[])
}

/// [`attach`] with more arguments (e.g. the hidden `--ring-bytes`).
pub fn attach_with(pid: u32, format: &str, extra: &[&str]) -> Proc {
    let bin = crate::tracer_bin::tracer_bin();
    let pid = pid.to_string();
    let proc = Proc::spawn(
        Command::new(bin)
            .args(["attach", "--pid", &pid, "--format", format])
            .args(extra),
    )
    .expect("tracer attach starts");
    // Under an emulated CPU (the guests) loading and attaching every
    // program takes tens of seconds; trampolines wait for RCU grace periods.
    let attached = proc.wait_for("attached to pid", format != "text", Duration::from_secs(90));
    assert!(
        attached,
        "tracer attach did not attach: stdout {:?} stderr {:?}",
        proc.stdout(),
        proc.stderr()
    );
    proc
}

pub fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The JSON lines of `text` that has other lines too (run's stderr holds
/// the traced command's own output and the tracer's notes).
pub fn json_lines_among(text: &str) -> Vec<serde_json::Value> {
    let json: Vec<&str> = text.lines().filter(|l| l.starts_with('{')).collect();
    json_lines(&json.join("\n"))
}

/// The line of connection 1 in attach's text summary.
pub fn first_conn_line(out: &str) -> &str {
    out.lines()
        .find(|l| l.starts_with("  conn 1 "))
        .unwrap_or_else(|| panic!("no connection line: {out}"))
}

/// The lines of one `"type"`.
pub fn of_type<'a>(lines: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

/// Each request line's url, status and reused flag, as a user reads them.
pub fn url_status_reused<'a>(
    requests: &[&'a serde_json::Value],
) -> Vec<(&'a str, Option<u64>, Option<bool>)> {
    requests
        .iter()
        .map(|r| {
            (
                r["url"].as_str().unwrap_or(""),
                r["status"].as_u64(),
                r["reused"].as_bool(),
            )
        })
        .collect()
}

/// A bench-pingpong run (`bin`, with `args`) under `tracer attach --format
/// json` plus `tracer_args`: the ping-pong's own JSON line (its call counts)
/// and the tracer's output lines.
pub fn pingpong_under_attach(
    bin: &str,
    args: &[&str],
    tracer_args: &[&str],
) -> (serde_json::Value, Vec<serde_json::Value>) {
    let mut pp = Proc::spawn_ready(Command::new(bin).arg("--wait").args(args));
    let mut tracer = attach_with(pp.pid(), "json", tracer_args);
    pp.send_line("go").expect("the ping-pong reads stdin");
    assert!(pp.wait_for("\"calls\"", false, Duration::from_secs(30)));
    let line = pp.stdout().lines().last().unwrap_or_default().to_string();
    let made = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    pp.close_stdin(); // it exits; attach ends with it
    let out = tracer.exit_0_stdout();
    (made, json_lines(&out))
}

/// A Python client `code` run under `tracer attach --format FORMAT`. The
/// script reads a line before it starts and prints `done ...` when it is
/// through, then reads another line before it exits (`close_stdin`).
/// Returns the client, done and still alive, and the attached tracer.
pub fn python_under_attach(code: &str, format: &str) -> (Proc, Proc) {
    python_under_attach_with(code, format, &[])
}

/// [`python_under_attach`] with more tracer arguments (e.g. `--events`).
pub fn python_under_attach_with(code: &str, format: &str, extra: &[&str]) -> (Proc, Proc) {
    let mut client = Proc::spawn_ready(
        Command::new("sh").args(["-c", &format!("echo ready; exec python3 -c \"{code}\"")]),
    );
    let tracer = attach_with(client.pid(), format, extra);
    client.send_line("go").expect("the client reads its go");
    assert!(
        client.wait_for("done", false, Duration::from_secs(10)),
        "{}",
        client.stderr()
    );
    (client, tracer)
}
