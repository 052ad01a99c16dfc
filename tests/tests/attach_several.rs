//! attach on several processes: `--name nginx` and `--pid W1,W2` on an
//! nginx with 2 workers (its own config, a loopback port, `reuseport` so
//! that connections spread over both) under a bounded load. Every request
//! the client counted is reported, under the worker that served it.
use std::{
    collections::BTreeMap,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;
use tracer_tests::{
    process::{Proc, can_trace_or_skip, json_lines, of_type},
    tracer_bin::tracer_bin,
};

const CONNECTIONS: usize = 40;

struct Nginx {
    proc: Proc,
    port: u16,
    dir: PathBuf,
}

impl Nginx {
    fn start() -> Option<Self> {
        if Command::new("nginx").arg("-v").output().is_err() {
            println!("skipped: nginx not installed");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .ok()?;
        let dir = std::env::temp_dir().join(format!("tracer-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).ok()?;
        let d = dir.display();
        let conf = format!(
            "daemon off; master_process on; worker_processes 2; pid {d}/nginx.pid;\n\
             error_log {d}/error.log;\nevents {{ worker_connections 64; }}\n\
             http {{ access_log off; client_body_temp_path {d}; proxy_temp_path {d};\n\
             fastcgi_temp_path {d}; uwsgi_temp_path {d}; scgi_temp_path {d};\n\
             server {{ listen 127.0.0.1:{port} reuseport; location / {{ return 200 \"ok\"; }} }} }}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).ok()?;
        let conf = dir.join("nginx.conf");
        let proc = Proc::spawn(
            Command::new("nginx")
                .args(["-p", &d.to_string(), "-c"])
                .arg(&conf),
        )
        .ok()?;
        let nginx = Self { proc, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while nginx.workers().len() < 2 || TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nginx did not start: {}",
                nginx.proc.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(nginx)
    }

    /// The master's children, from /proc.
    fn workers(&self) -> Vec<u32> {
        let master = self.proc.pid().to_string();
        let mut found: Vec<u32> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|pid: &u32| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let rest = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
                rest.split_whitespace().nth(1) == Some(master.as_str())
            })
            .collect();
        found.sort_unstable();
        found
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SAFETY: signals our own child.
        unsafe { libc::kill(self.proc.pid() as i32, libc::SIGQUIT) };
        let _ = self.proc.wait_exit(Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One request per connection; returns how many were answered 200.
fn load(port: u16) -> usize {
    let threads: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
                s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
                s.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                    .ok()?;
                let mut answer = String::new();
                s.read_to_string(&mut answer).ok()?;
                answer.starts_with("HTTP/1.1 200").then_some(())
            })
        })
        .collect();
    threads
        .into_iter()
        .map(std::thread::JoinHandle::join)
        .filter(|t| matches!(t, Ok(Some(()))))
        .count()
}

/// Attaches with `args`, runs the load, stops the tracer with SIGINT, and
/// returns the JSON lines of requests to our port, by pid.
fn traced_requests(args: &[&str], port: u16) -> (usize, BTreeMap<u64, usize>, Value) {
    let tracer = Proc::spawn(
        Command::new(tracer_bin())
            .arg("attach")
            .args(args)
            .args(["--format", "json"]),
    )
    .unwrap();
    assert!(
        tracer.wait_for("attached to pid", true, Duration::from_secs(20)),
        "{}",
        tracer.stderr()
    );
    let answered = load(port);
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: signals our own child.
    unsafe { libc::kill(tracer.pid() as i32, libc::SIGINT) };
    let mut tracer = tracer;
    let status = tracer.wait_exit(Duration::from_secs(20));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(130),
        "{}",
        tracer.stderr()
    );
    let lines = json_lines(&tracer.stdout());
    let ours = format!(":{port}");
    let mut by_pid = BTreeMap::new();
    for r in of_type(&lines, "request") {
        if r["local_addr"].as_str().is_some_and(|a| a.ends_with(&ours)) {
            assert_eq!(
                (r["direction"].as_str(), r["status"].as_u64()),
                (Some("inbound"), Some(200)),
                "{r}"
            );
            *by_pid.entry(r["pid"].as_u64().unwrap_or(0)).or_insert(0) += 1;
        }
    }
    let summary = of_type(&lines, "summary")
        .first()
        .map(|s| (*s).clone())
        .unwrap_or_default();
    (answered, by_pid, summary)
}

fn check(how: &str, nginx: &Nginx, answered: usize, by_pid: &BTreeMap<u64, usize>) {
    let workers: Vec<u64> = nginx.workers().into_iter().map(u64::from).collect();
    assert_eq!(answered, CONNECTIONS, "{how}: the load itself failed");
    assert_eq!(
        by_pid.values().sum::<usize>(),
        answered,
        "{how}: {by_pid:?}"
    );
    assert_eq!(
        by_pid.keys().copied().collect::<Vec<_>>(),
        workers,
        "{how}: both workers"
    );
    println!("saw ({how}): {answered} requests answered, reported by worker pid: {by_pid:?}");
}

#[test]
fn attach_by_name_reports_both_workers() {
    if !can_trace_or_skip() {
        return;
    }
    let Some(nginx) = Nginx::start() else { return };
    let (answered, by_pid, summary) = traced_requests(&["--name", "nginx"], nginx.port);
    check("--name nginx", &nginx, answered, &by_pid);
    let pids = summary["pids"].as_array().map_or(0, Vec::len);
    assert!(pids >= 3, "master and two workers at least: {summary}");
    assert!(summary.get("pid").is_none(), "{summary}");
}

#[test]
fn attach_to_a_list_of_pids_reports_each() {
    if !can_trace_or_skip() {
        return;
    }
    let Some(nginx) = Nginx::start() else { return };
    let list = nginx
        .workers()
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let (answered, by_pid, summary) = traced_requests(&["--pid", &list], nginx.port);
    check("--pid W1,W2", &nginx, answered, &by_pid);
    assert_eq!(
        summary["pids"].as_array().map_or(0, Vec::len),
        2,
        "{summary}"
    );
}
