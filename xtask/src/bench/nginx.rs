//! nginx for workload 8: one worker, keep-alive, a 1 KiB static file, its
//! own prefix and config under the bench's scratch folder, on 127.0.0.1.
//! Driven by `wrk -t1 -c32` (installed with apt when missing), else by
//! bench-load with 32 connections.
use std::{
    fs,
    net::{TcpListener, TcpStream},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use super::{procs::Proc, tracer::Bins};
use crate::tools;

/// Connections of the load generator: many more than the worker's one
/// event loop can serve at once, as behind a proxy.
pub const CONNS: u32 = 32;

pub struct Nginx {
    master: Proc,
    /// The one worker: the process the tracer attaches to.
    pub worker: u32,
    pub addr: String,
}

/// nginx-light, and wrk if apt has it; wrk's absence is not an error.
pub fn install() -> Result<bool> {
    tools::install_missing(&[("nginx", "nginx-light")], "workload 8")?;
    let wrk = tools::install_missing(&[("wrk", "wrk")], "workload 8");
    if let Err(e) = &wrk {
        eprintln!("bench: no wrk ({e:#}); bench-load drives nginx instead");
    }
    Ok(wrk.is_ok())
}

impl Nginx {
    pub fn start(bins: &Bins) -> Result<Self> {
        Self::start_with(bins, "nginx", false)
    }

    /// The same server over HTTPS (workload 10), with a self-signed
    /// certificate made by `openssl req`: OpenSSL 3 through its libssl.
    pub fn start_https(bins: &Bins) -> Result<Self> {
        Self::start_with(bins, "nginx-https", true)
    }

    fn start_with(bins: &Bins, name: &str, tls: bool) -> Result<Self> {
        let prefix = bins.scratch(name);
        let _ = fs::remove_dir_all(&prefix);
        fs::create_dir_all(prefix.join("html"))?;
        fs::create_dir_all(prefix.join("logs"))?;
        fs::write(prefix.join("html/index.html"), [b'x'; 1024])?;
        if tls {
            let made = Command::new("openssl")
                .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes"])
                .args(["-subj", "/CN=localhost", "-days", "1"])
                .args(["-keyout", "k.pem", "-out", "c.pem"])
                .current_dir(&prefix)
                .output()
                .context("running openssl req")?;
            if !made.status.success() {
                bail!(
                    "openssl req failed: {}",
                    String::from_utf8_lossy(&made.stderr)
                );
            }
        }
        // A free port now; nginx binds it a moment later.
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let conf = config(&prefix, port, tls);
        fs::write(prefix.join("nginx.conf"), conf)?;
        let master = Proc::spawn(
            "nginx",
            Command::new("nginx")
                .arg("-p")
                .arg(&prefix)
                .arg("-c")
                .arg(prefix.join("nginx.conf"))
                .args(["-e", "stderr"]),
            None,
        )?;
        let addr = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let worker = children(master.pid()).into_iter().next();
            if let (Some(worker), Ok(_)) = (worker, TcpStream::connect(&addr)) {
                return Ok(Self {
                    master,
                    worker,
                    addr,
                });
            }
            if Instant::now() >= deadline {
                bail!(
                    "nginx did not serve {addr} with a worker within 10 s: {}",
                    master.stderr().trim()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its worker, then itself. Killing the
        // master alone would leave the worker running.
        self.master.signal(libc::SIGTERM);
        if self.master.wait(Duration::from_secs(10)).is_err() {
            // SAFETY: kill on a pid we found as our nginx's worker.
            unsafe { libc::kill(self.worker as i32, libc::SIGKILL) };
        }
    }
}

fn config(prefix: &std::path::Path, port: u16, tls: bool) -> String {
    let p = prefix.display();
    let ssl = if tls {
        format!(" ssl;\n    ssl_certificate {p}/c.pem;\n    ssl_certificate_key {p}/k.pem")
    } else {
        String::new()
    };
    format!(
        "daemon off;\nmaster_process on;\nworker_processes 1;\nuser root;\n\
         pid {p}/nginx.pid;\nerror_log stderr;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n  access_log off;\n  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n\
         \x20 server {{\n    listen 127.0.0.1:{port}{ssl};\n    root {p}/html;\n  }}\n}}\n"
    )
}

/// Processes whose parent is `pid`, from /proc.
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                // After "(comm)": state, then the parent's pid.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// What one load run did.
#[derive(Clone, Copy, Debug)]
pub struct Drive {
    pub requests: u64,
    pub rps: f64,
}

/// Loads nginx for `secs` with [`CONNS`] keep-alive connections.
pub fn drive(bins: &Bins, wrk: bool, addr: &str, secs: f64) -> Result<Drive> {
    let limit = Duration::from_secs_f64(secs + 30.0);
    if !wrk {
        let mut load = Proc::spawn(
            "bench-load",
            Command::new(&bins.load).args([
                addr,
                "--conns",
                &CONNS.to_string(),
                "--secs",
                &secs.to_string(),
            ]),
            None,
        )?;
        if load.wait(limit)?.code != Some(0) {
            bail!("bench-load failed: {}", load.stderr().trim());
        }
        let v: Value = serde_json::from_str(load.stdout().trim()).context("bench-load output")?;
        return Ok(Drive {
            requests: v["requests"].as_u64().unwrap_or(0),
            rps: v["rps"].as_f64().unwrap_or(0.0),
        });
    }
    drive_wrk(&format!("http://{addr}/"), secs)
}

/// `wrk -t1 -c32` on `url` (http or https) for `secs`.
pub fn drive_wrk(url: &str, secs: f64) -> Result<Drive> {
    let limit = Duration::from_secs_f64(secs + 30.0);
    let mut w = Proc::spawn(
        "wrk",
        Command::new("wrk")
            .args(["-t1", "-c", &CONNS.to_string(), "-d"])
            // wrk takes whole seconds (or m, h) only.
            .arg(format!("{}s", secs.ceil().max(1.0) as u64))
            .arg(url),
        None,
    )?;
    if w.wait(limit)?.code != Some(0) {
        bail!("wrk failed: {} {}", w.stdout().trim(), w.stderr().trim());
    }
    parse_wrk(&w.stdout())
}

/// `  290000 requests in 2.00s, ...` and `Requests/sec: 145000.00`.
fn parse_wrk(out: &str) -> Result<Drive> {
    let requests = out
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok());
    let rps = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok());
    match (requests, rps) {
        (Some(requests), Some(rps)) => Ok(Drive { requests, rps }),
        _ => bail!("could not read wrk's output: {out}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_wrk_output() {
        let out = "Running 2s test @ http://127.0.0.1:1/\n  1 threads and 32 connections\n\
                   \x20 290000 requests in 2.00s, 300.00MB read\nRequests/sec: 145000.50\n\
                   Transfer/sec:    150.00MB\n";
        let d = super::parse_wrk(out).unwrap();
        assert_eq!(d.requests, 290000);
        assert_eq!(d.rps, 145000.5);
    }
}
