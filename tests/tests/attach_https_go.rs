//! HTTPS of Go programs (crypto/tls compiled in): requests read from the
//! plaintext by uprobes on `(*Conn).Write`/`Read` and their RETs, for a Go
//! client under `tracer run` and `attach`, and for a Go server under
//! `attach`, against the server's own request log. The program is built
//! by the test with the machine's `go` (Debian's golang-go), offline.
use std::{path::PathBuf, process::Command, sync::OnceLock, time::Duration};

use tracer_tests::process::{Proc, attach, can_trace_or_skip, json_lines, of_type};

/// Both ends: `server` prints `PORT host:port` and `LOG <method> <path>`
/// per request (httptest's own certificate); `client URL...` fetches each
/// URL in turn on one keep-alive connection, after a line on stdin when
/// `WAIT` is set (it prints `ready` first).
const PROGRAM: &str = include_str!("../go-https/main.go");

/// The program built with `go build` (and `-ldflags=-s` when `stripped`),
/// once per test process; None (and why, printed) without a Go toolchain.
fn program(stripped: bool) -> Option<PathBuf> {
    static BUILT: OnceLock<Option<PathBuf>> = OnceLock::new();
    static STRIPPED: OnceLock<Option<PathBuf>> = OnceLock::new();
    let cell = if stripped { &STRIPPED } else { &BUILT };
    cell.get_or_init(|| {
        // Under target/: rebuilt each run, its Go cache kept, nothing left in /tmp.
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("go-https");
        let src = dir.join("src");
        std::fs::create_dir_all(&src).unwrap();
        std::fs::write(src.join("main.go"), PROGRAM).unwrap();
        std::fs::write(src.join("go.mod"), "module gotlstest\n\ngo 1.17\n").unwrap();
        let bin = dir.join(if stripped { "go-https-s" } else { "go-https" });
        let mut go = Command::new("go");
        go.arg("build").arg("-o").arg(&bin);
        if stripped {
            go.arg("-ldflags=-s");
        }
        // Offline and self-contained: the standard library only.
        let built = go
            .arg(".")
            .current_dir(&src)
            .env("HOME", &dir)
            .env("GOCACHE", dir.join("cache"))
            .env("GOPATH", dir.join("gopath"))
            .env("GOFLAGS", "-mod=mod")
            .env("GOTOOLCHAIN", "local")
            .env("GOPROXY", "off")
            .output();
        match built {
            Err(e) => {
                println!("skipped: go not installed ({e})");
                None
            }
            Ok(o) => {
                assert!(o.status.success(), "go build: {o:?}");
                Some(bin)
            }
        }
    })
    .clone()
}

/// A Go binary, the probes, and the send/recv join (Linux 6.3+, x86_64).
fn go_or_skip(stripped: bool) -> Option<PathBuf> {
    if !cfg!(target_arch = "x86_64") {
        println!("skipped: Go's crypto/tls is probed on x86_64 only");
        return None;
    }
    if !can_trace_or_skip() {
        return None;
    }
    if tracer_user::preflight::run()
        .skip_programs
        .contains(&"tracer_send")
    {
        println!("skipped: no sock_send_length tracepoint (Linux 6.3+): no plaintext join");
        return None;
    }
    program(stripped)
}

struct GoServer {
    proc: Proc,
    base: String,
}

impl GoServer {
    fn start(bin: &PathBuf) -> Self {
        let proc = Proc::spawn(Command::new(bin).arg("server")).unwrap();
        assert!(
            proc.wait_for("PORT ", false, Duration::from_secs(10)),
            "{}",
            proc.stderr()
        );
        let out = proc.stdout();
        let addr = out.lines().find_map(|l| l.strip_prefix("PORT ")).unwrap();
        let base = format!("https://{}", addr.trim());
        Self { proc, base }
    }

    /// The requests the server read, as `GET /a`, in order, once it has
    /// logged 3 (or after 5 s): its log is read by a thread of this test,
    /// which a loaded machine can leave behind the client's exit.
    fn log(&self) -> Vec<String> {
        let read = || -> Vec<String> {
            let out = self.proc.stdout();
            out.lines()
                .filter_map(|l| l.strip_prefix("LOG ").map(str::to_string))
                .collect()
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while read().len() < 3 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        read()
    }
}

/// (method, url, status, reused) of each request line.
fn requests(lines: &[serde_json::Value]) -> Vec<(String, String, Option<u64>, Option<bool>)> {
    of_type(lines, "request")
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
            (
                s("method"),
                s("url"),
                r["status"].as_u64(),
                r["reused"].as_bool(),
            )
        })
        .collect()
}

fn expected(base: &str) -> Vec<(String, String, Option<u64>, Option<bool>)> {
    [
        ("/a", 200, false),
        ("/missing", 404, true),
        ("/c", 200, true),
    ]
    .iter()
    .map(|(p, s, r)| ("GET".to_string(), format!("{base}{p}"), Some(*s), Some(*r)))
    .collect()
}

fn urls(base: &str) -> Vec<String> {
    ["/a", "/missing", "/c"]
        .iter()
        .map(|p| format!("{base}{p}"))
        .collect()
}

/// `tracer run -- go-client URL...`: three requests on one connection,
/// their methods, paths and statuses, and the 2nd and 3rd reused.
#[test]
fn go_client_under_run_three_requests_on_one_connection() {
    let Some(bin) = go_or_skip(false) else { return };
    let server = GoServer::start(&bin);
    let out = Command::new(tracer_tests::tracer_bin::tracer_bin())
        .args(["run", "--format", "json", "--"])
        .arg(&bin)
        .arg("client")
        .args(urls(&server.base))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stderr}");
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr.contains("https: Go crypto/tls (*Conn).Read/Write probed"),
        "{stderr}"
    );
    assert_eq!(server.log(), ["GET /a", "GET /missing", "GET /c"]);
    let lines = tracer_tests::process::json_lines_among(&stderr);
    assert_eq!(requests(&lines), expected(&server.base));
    let cookies: Vec<_> = of_type(&lines, "request")
        .iter()
        .map(|r| r["socket_cookie"].clone())
        .collect();
    assert!(cookies.iter().all(|c| *c == cookies[0]), "{cookies:?}");
}

/// `tracer attach` to a Go client waiting on stdin: the same requests.
#[test]
fn go_client_under_attach() {
    let Some(bin) = go_or_skip(false) else { return };
    let server = GoServer::start(&bin);
    let mut client = Proc::spawn_ready(
        Command::new(&bin)
            .arg("client")
            .args(urls(&server.base))
            .env("WAIT", "1"),
    );
    let mut tracer = attach(client.pid(), "json");
    assert!(
        tracer.stderr().contains("https: Go crypto/tls"),
        "{}",
        tracer.stderr()
    );
    client.go_and_succeed();
    let out = tracer.exit_0_stdout();
    println!("{out}\nclient: {}", client.stdout());
    assert_eq!(server.log(), ["GET /a", "GET /missing", "GET /c"]);
    assert_eq!(requests(&json_lines(&out)), expected(&server.base));
}

/// `tracer attach` to a Go server: curl's requests are inbound ones, with
/// the paths and statuses of the server's log, on one connection.
#[test]
fn go_server_shows_its_inbound_requests() {
    let Some(bin) = go_or_skip(false) else { return };
    let server = GoServer::start(&bin);
    let mut tracer = attach(server.proc.pid(), "json");
    let curl = Command::new("curl")
        .args([
            "-sSk",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
            "-o",
            "/dev/null",
        ])
        .args(urls(&server.base))
        .output()
        .expect("curl runs");
    assert!(curl.status.success(), "{curl:?}");
    let found = tracer.wait_for("/c\"", false, Duration::from_secs(5));
    let _ = tracer.child.kill();
    let lines = json_lines(&tracer.stdout());
    assert!(found, "{lines:?}");
    assert_eq!(server.log(), ["GET /a", "GET /missing", "GET /c"]);
    let got: Vec<_> = of_type(&lines, "request")
        .iter()
        .map(|r| {
            (
                r["direction"].as_str().unwrap_or("").to_string(),
                r["url"].as_str().unwrap_or("").to_string(),
                r["status"].as_u64(),
            )
        })
        .collect();
    let want: Vec<_> = urls(&server.base)
        .into_iter()
        .zip([200, 404, 200])
        .map(|(u, s)| ("inbound".to_string(), u, Some(s)))
        .collect();
    assert_eq!(got, want);
}

/// A Go binary built with `-ldflags=-s` has no symbols: run says there is
/// no probe, and its connection is `encrypted`, with no request.
#[test]
fn stripped_go_binary_says_no_probe() {
    let Some(bin) = go_or_skip(true) else { return };
    let Some(full) = program(false) else { return };
    let server = GoServer::start(&full);
    let out = Command::new(tracer_tests::tracer_bin::tracer_bin())
        .args(["run", "--"])
        .arg(&bin)
        .arg("client")
        .args(urls(&server.base))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stderr}");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(server.log().len(), 3);
    assert!(stderr.contains("no Go crypto/tls probe"), "{stderr}");
    assert!(stderr.contains("no crypto/tls symbols"), "{stderr}");
    assert!(
        stderr.contains("encrypted: no probe for this TLS library"),
        "{stderr}"
    );
    assert!(!stderr.contains("request 1"), "{stderr}");
}

/// `tracer check --pid` of a Go server names its crypto/tls, its Go
/// version, and the probes attached.
#[test]
fn check_pid_lists_go_crypto_tls() {
    let Some(bin) = go_or_skip(false) else { return };
    let server = GoServer::start(&bin);
    let out = Command::new(tracer_tests::tracer_bin::tracer_bin())
        .args(["check", "--pid", &server.proc.pid().to_string()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    println!("{text}");
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("Go "))
        .unwrap_or_else(|| panic!("no Go line: {text}"));
    assert!(line.contains("(go1."), "{line}");
    assert!(
        line.contains("readable: crypto/tls (*Conn).Read/Write probed"),
        "{line}"
    );
}
