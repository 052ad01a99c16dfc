//! attach --follow-forks on a pre-fork server: the worker it forked before
//! the attach (found in /proc) and the one a worker forks after it (taken
//! in by the kernel at fork) both have their requests reported, each under
//! its own pid; the attach ends when the last of them exits.
use std::{
    process::Command,
    time::{Duration, Instant},
};

use tracer_tests::process::{Proc, attach_with, can_trace_or_skip, json_lines, of_type};

/// Listens, forks worker 1 at once (before any attach), and waits for a
/// line on stdin before it exits. Worker 1 answers one connection, then
/// forks worker 2, which answers the next. Each prints its pid, in one
/// write(2) each: the processes share the pipe.
const PREFORK: &str = r#"
import os, socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 0))
s.listen(8)
def say(*words):
    os.write(1, (" ".join(map(str, words)) + "\n").encode())
def serve_one():
    c, _ = s.accept()
    c.recv(4096)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
    c.close()
w1 = os.fork()
if w1 == 0:
    say("worker1", os.getpid())
    serve_one()
    w2 = os.fork()
    if w2 == 0:
        say("worker2", os.getpid())
        serve_one()
        os._exit(0)
    os.waitpid(w2, 0)
    os._exit(0)
say("port", s.getsockname()[1])
sys.stdin.readline()
os.waitpid(w1, 0)
"#;

fn field(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
}

fn wait_field(p: &Proc, key: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = field(&p.stdout(), key) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no {key}: stdout {:?} stderr {:?}",
            p.stdout(),
            p.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn curl(port: u64) {
    let url = format!("http://127.0.0.1:{port}/");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "10", &url])
        .output()
        .expect("curl runs");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "ok", "{out:?}");
}

#[test]
fn prefork_workers_before_and_after_the_attach_are_reported() {
    if !can_trace_or_skip() {
        return;
    }
    for tool in ["python3", "curl"] {
        if Command::new(tool).arg("--version").output().is_err() {
            println!("skipped: {tool} not installed");
            return;
        }
    }
    for round in 0..10 {
        let mut server = Proc::spawn(Command::new("python3").args(["-c", PREFORK])).unwrap();
        let port = wait_field(&server, "port ");
        let w1 = wait_field(&server, "worker1 ");
        let mut tracer = attach_with(server.pid(), "json", &["--follow-forks"]);
        curl(port);
        let w2 = wait_field(&server, "worker2 ");
        curl(port);
        server.send_line("done").unwrap();
        let lines = json_lines(&tracer.exit_0_stdout());
        let requests = of_type(&lines, "request");
        let by: Vec<(u64, &str)> = requests
            .iter()
            .map(|r| {
                (
                    r["pid"].as_u64().unwrap_or(0),
                    r["direction"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            by,
            [(w1, "inbound"), (w2, "inbound")],
            "round {round}: {}",
            tracer.stderr()
        );
        assert!(requests.iter().all(|r| r["status"] == 200));
        let summary = of_type(&lines, "summary")[0];
        let pids: Vec<u64> = summary["pids"]
            .as_array()
            .map(|a| a.iter().filter_map(|p| p.as_u64()).collect())
            .unwrap_or_default();
        assert_eq!(pids.len(), 3, "round {round}: {summary}");
        assert!(
            [u64::from(server.pid()), w1, w2]
                .iter()
                .all(|p| pids.contains(p)),
            "round {round}: {pids:?}"
        );
        if round == 0 {
            println!("saw: {} {}\n{}", requests[0], requests[1], tracer.stderr());
        }
        let _ = server.wait_exit(Duration::from_secs(5));
    }
}

/// A child that has exited but was not reaped (a zombie) is in /proc, so
/// --follow-forks takes it in, yet its exit is over: the kernel will never
/// drop it. The attach must still end when the parent exits.
#[test]
fn a_zombie_child_does_not_keep_the_attach_alive() {
    if !can_trace_or_skip() {
        return;
    }
    if Command::new("python3").arg("--version").output().is_err() {
        println!("skipped: python3 not installed");
        return;
    }
    let script = "import os, sys, time\n\
                  pid = os.fork()\n\
                  if pid == 0:\n    os._exit(0)\n\
                  time.sleep(0.3)\n\
                  os.write(1, b'zombie %d\\n' % pid)\n\
                  sys.stdin.readline()\n";
    let mut parent = Proc::spawn(Command::new("python3").args(["-c", script])).unwrap();
    let zombie = wait_field(&parent, "zombie ");
    let mut tracer = attach_with(parent.pid(), "json", &["--follow-forks"]);
    assert!(
        tracer
            .stderr()
            .contains(&format!("process {zombie} (child of")),
        "the zombie was taken in: {}",
        tracer.stderr()
    );
    parent.send_line("exit").unwrap();
    let started = Instant::now();
    let lines = json_lines(&tracer.exit_0_stdout());
    assert_eq!(of_type(&lines, "summary").len(), 1);
    println!(
        "saw: the attach ended {:?} after the parent was told to exit",
        started.elapsed()
    );
}
