//! A loopback HTTPS server for attach's HTTPS tests: Python's `ssl` with a
//! certificate made for the test by `openssl req`.
use std::{path::PathBuf, process::Command, time::Duration};

use crate::process::{Proc, can_trace_or_skip};

/// A keep-alive HTTP/1.1 server in Python's `ssl`, with a certificate made
/// for the test; it prints its port, then `LOG <method> <path>` per request.
const SERVER: &str = r#"
import http.server, ssl, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_GET(self):
        big = self.path.startswith('/big')
        body = b'x' * 20000 if big else b'hello ' + self.path.encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, fmt, *args):
        print('LOG', self.command, self.path, flush=True)
d = sys.argv[1]
s = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(d + '/c.pem', d + '/k.pem')
s.socket = ctx.wrap_socket(s.socket, server_side=True)
print('PORT', s.server_address[1], flush=True)
s.serve_forever()
"#;

pub struct TlsServer {
    pub proc: Proc,
    pub port: u16,
    pub dir: PathBuf,
}

/// A new directory under the temp dir, named for the test (`name`) and this
/// process, holding a self-signed certificate for localhost: `c.pem`, and
/// its key `k.pem`.
pub fn self_signed_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tracer-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes"])
        .args(["-subj", "/CN=localhost", "-days", "1"])
        .args(["-keyout", "k.pem", "-out", "c.pem"])
        .current_dir(&dir)
        .output()
        .expect("openssl runs");
    assert!(made.status.success(), "{made:?}");
    dir
}

impl TlsServer {
    /// `name`: the test's, so tests run side by side keep their own files.
    pub fn start(name: &str) -> Self {
        let dir = self_signed_dir(&format!("https-{name}"));
        let proc = Proc::spawn(Command::new("python3").args(["-c", SERVER]).arg(&dir)).unwrap();
        assert!(
            // Python starts slowly under an emulated CPU (the guests).
            proc.wait_for("PORT ", false, Duration::from_secs(30)),
            "{}",
            proc.stderr()
        );
        let out = proc.stdout();
        let port = out
            .lines()
            .find_map(|l| l.strip_prefix("PORT ")?.trim().parse().ok())
            .unwrap();
        Self { proc, port, dir }
    }

    /// The requests the server read, as `GET /a`, in order.
    pub fn log(&self) -> Vec<String> {
        self.proc
            .stdout()
            .lines()
            .filter_map(|l| l.strip_prefix("LOG ").map(str::to_string))
            .collect()
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The tools, the probes and the send/recv tracepoints that join the
/// plaintext to its socket (Linux 6.3+); prints why not.
pub fn can_run_or_skip() -> bool {
    for (tool, arg) in [
        ("curl", "--version"),
        ("openssl", "version"),
        ("python3", "-V"),
    ] {
        if Command::new(tool).arg(arg).output().is_err() {
            println!("skipped: {tool} not installed");
            return false;
        }
    }
    if !can_trace_or_skip() {
        return false;
    }
    // The plaintext joins its socket through the send inside the call:
    // the byte tracepoint, or the hook that stands in for it (5.10-6.2).
    let report = tracer_user::preflight::run();
    let no_send = report.checks.iter().any(|c| {
        c.status == tracer_user::preflight::Status::Degraded && c.detail.contains("no send bytes")
    });
    if no_send {
        println!("skipped: no send hook (tracepoint or stand-in): no plaintext join");
        return false;
    }
    true
}
