//! Least privilege: the real binary run as `nobody` through util-linux
//! `setpriv`, with no capability, or with exactly the ones the README names.
use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use tracer_tests::{
    http,
    http_server::{Behaviour, TestServer},
    process::{Proc, can_trace_or_skip, json_lines, of_type},
    tracer_bin::tracer_bin,
};

const TARGET: &str = env!("CARGO_BIN_EXE_http-target");
/// The capabilities `trace` needs: load and attach the programs. Nothing
/// reads tracefs (mode 0700 root), so no CAP_DAC_READ_SEARCH.
const TRACE_CAPS: &str = "+bpf,+perfmon";

/// Copies of the binaries that `nobody` may execute: a 0755 directory in
/// /tmp, since the build directory's parents need not be searchable.
struct NobodyBins {
    dir: PathBuf,
}

impl NobodyBins {
    /// None (and a printed reason) where the test cannot run.
    fn new() -> Option<Self> {
        // SAFETY: plain getter.
        if unsafe { libc::geteuid() } != 0 {
            println!("skipped: needs root to switch to nobody");
            return None;
        }
        if Command::new("setpriv").arg("--version").output().is_err() {
            println!("skipped: util-linux setpriv is not installed");
            return None;
        }
        let dir = std::env::temp_dir().join(format!("tracer-nobody-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for src in [tracer_bin(), PathBuf::from(TARGET)] {
            let dst = dir.join(src.file_name().unwrap());
            std::fs::copy(&src, &dst).unwrap();
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        Some(Self { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for NobodyBins {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `setpriv` as nobody holding exactly `caps` (e.g. "+bpf,+perfmon"), or
/// none: effective, permitted, inheritable, ambient and bounding set alike.
fn as_nobody(caps: &str, bin: &Path) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
    if caps.is_empty() {
        cmd.args(["--inh-caps=-all", "--bounding-set=-all"]);
    } else {
        cmd.arg(format!("--inh-caps=-all,{caps}"))
            .arg(format!("--ambient-caps={caps}"))
            .arg(format!("--bounding-set=-all,{caps}"));
    }
    cmd.arg(bin).env("NO_COLOR", "1");
    cmd
}

fn text(out: &Output) -> (Option<i32>, String, String) {
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn without_capabilities_trace_and_attach_exit_4_saying_how_to_get_them() {
    let Some(bins) = NobodyBins::new() else {
        return;
    };
    let tracer = bins.path("tracer");
    let trace = as_nobody("", &tracer)
        .args(["trace", "http://127.0.0.1:9/"])
        .output()
        .unwrap();
    let attach = as_nobody("", &tracer)
        .args(["attach", "--pid", "1"])
        .output()
        .unwrap();
    for (what, out) in [("trace", trace), ("attach", attach)] {
        let (code, _, err) = text(&out);
        assert_eq!(code, Some(4), "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: one message: {err}");
        for needle in [
            "CAP_BPF",
            "CAP_PERFMON",
            "CAP_SYS_PTRACE",
            "sudo",
            "setcap cap_bpf,cap_perfmon+ep tracer",
            "risk",
        ] {
            assert!(err.contains(needle), "{what}: no {needle:?} in {err}");
        }
        for needless in ["DAC_READ_SEARCH", "tracefs", "SYS_ADMIN"] {
            assert!(
                !err.contains(needless),
                "{what}: asks for {needless}: {err}"
            );
        }
        assert!(!err.contains("unknown:"), "{what}: only the cause: {err}");
        if what == "trace" {
            assert!(err.contains("--no-ebpf"), "{err}");
        }
    }
}

#[test]
fn no_ebpf_works_as_nobody() {
    let Some(bins) = NobodyBins::new() else {
        return;
    };
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let out = as_nobody("", &bins.path("tracer"))
        .args(["trace", &server.url(), "-n", "2", "--no-ebpf"])
        .output()
        .unwrap();
    let (code, stdout, err) = text(&out);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        stdout.contains("kernel: not observed (--no-ebpf)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("summary: 2 requests, 1 connection, 1 reused"),
        "{stdout}"
    );
}

/// CAP_BPF + CAP_PERFMON and nothing else: `check` says tracing works and
/// `trace` proves reuse in the kernel, with tracefs (mode 0700 root, or
/// not mounted) out of nobody's reach.
#[test]
fn exactly_bpf_and_perfmon_trace_with_kernel_confirmation_as_nobody() {
    let Some(bins) = NobodyBins::new() else {
        return;
    };
    if !can_trace_or_skip() {
        return;
    }
    let check = as_nobody(TRACE_CAPS, &bins.path("tracer"))
        .arg("check")
        .output()
        .unwrap();
    let (code, stdout, err) = text(&check);
    assert_eq!(code, Some(0), "{stdout}{err}");
    assert!(
        stdout.contains("verdict: tracing works here (all probes loaded and attached)"),
        "{stdout}"
    );
    assert!(!stdout.contains("MISSING"), "{stdout}");
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).unwrap();
    let out = as_nobody(TRACE_CAPS, &bins.path("tracer"))
        .args(["trace", &server.url(), "-n", "2", "--format", "json"])
        .output()
        .unwrap();
    let (code, stdout, err) = text(&out);
    assert_eq!(code, Some(0), "{err}");
    let lines = json_lines(&stdout);
    let requests = of_type(&lines, "request");
    assert_eq!(requests.len(), 2, "{stdout}");
    for r in &requests {
        assert_eq!(r["kernel_confirmed"], true, "{r}");
    }
    assert_eq!(requests[1]["reused_from"], 1);
    assert_eq!(of_type(&lines, "summary")[0]["lost_events"], 0);
}

/// attach of nobody's own process with the same two capabilities: the
/// connections and requests are all there. The getaddrinfo uprobe is not:
/// `perf_event_open` of the uprobe PMU answers EACCES here without
/// CAP_SYS_ADMIN, and attach says so instead of failing.
#[test]
fn the_same_capabilities_attach_to_nobodys_own_process() {
    let Some(bins) = NobodyBins::new() else {
        return;
    };
    if !can_trace_or_skip() {
        return;
    }
    let addr = http::serve("127.0.0.1:0").unwrap().to_string();
    let mut target = Proc::spawn_ready(as_nobody("", &bins.path("http-target")).args([
        "keepalive",
        &addr,
        "/n",
    ]));
    let pid = target.pid().to_string();
    // setpriv execs the target: the pid is the target's own.
    let mut tracer =
        Proc::spawn(as_nobody(TRACE_CAPS, &bins.path("tracer")).args(["attach", "--pid", &pid]))
            .unwrap();
    assert!(
        tracer.wait_for("attached to pid", false, Duration::from_secs(20)),
        "{}{}",
        tracer.stdout(),
        tracer.stderr()
    );
    target.go_and_succeed();
    let out = tracer.exit_0_stdout();
    assert!(
        out.contains("summary: 5 requests on 3 connections, 2 reused"),
        "{out}"
    );
    assert!(
        out.contains("dns: getaddrinfo probed") || out.contains("dns: no getaddrinfo probe"),
        "the DNS probe's fate is said: {out}"
    );
    // The same for the OpenSSL uprobes, once, and attach goes on.
    let https: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("https: ") && l.contains("OpenSSL"))
        .collect();
    assert_eq!(https.len(), 1, "{out}");
    assert!(
        https[0].starts_with("https: OpenSSL SSL_read/SSL_write probed")
            || https[0].starts_with("https: no OpenSSL probe"),
        "{out}"
    );
}

/// HTTPS with the same two capabilities: the uprobe PMU is refused
/// without CAP_SYS_ADMIN (EACCES on 6.18). attach says so in one line and
/// still shows the TLS connection with its bytes; where a kernel lets the
/// uprobes in, the requests are read instead.
#[test]
fn without_sys_admin_https_says_so_once_and_keeps_bytes_and_timing() {
    let Some(bins) = NobodyBins::new() else {
        return;
    };
    if !tracer_tests::tls_server::can_run_or_skip() {
        return;
    }
    let server = tracer_tests::tls_server::TlsServer::start("nobody");
    let url = format!("https://127.0.0.1:{}/nb", server.port);
    let script = format!("read go && exec curl -sSk -o /dev/null {url} {url}");
    let mut sh = as_nobody("", Path::new("/bin/sh"));
    let mut curl = Proc::spawn(sh.args(["-c", &script])).unwrap();
    let pid = curl.pid().to_string();
    let mut tracer =
        Proc::spawn(as_nobody(TRACE_CAPS, &bins.path("tracer")).args(["attach", "--pid", &pid]))
            .unwrap();
    assert!(
        tracer.wait_for("attached to pid", false, Duration::from_secs(20)),
        "{}{}",
        tracer.stdout(),
        tracer.stderr()
    );
    curl.go_and_succeed();
    let out = tracer.exit_0_stdout();
    println!("{out}");
    assert_eq!(server.log(), ["GET /nb", "GET /nb"]);
    // Refused: one line for every library. Let in: a line per library
    // probed (OpenSSL first, then GnuTLS if its library is under the root).
    let https: Vec<&str> = out.lines().filter(|l| l.starts_with("https: ")).collect();
    if https[0].starts_with("https: no OpenSSL probe") {
        assert_eq!(https.len(), 1, "{out}");
    } else {
        assert!(
            https
                .iter()
                .all(|l| l.starts_with("https: OpenSSL ") || l.starts_with("https: GnuTLS ")),
            "{out}"
        );
    }
    let conn = tracer_tests::process::first_conn_line(&out);
    if https[0].starts_with("https: no OpenSSL probe") {
        assert!(
            https[0].contains("without CAP_SYS_ADMIN")
                && https[0].contains("timing and bytes only"),
            "{out}"
        );
        // The wire's bytes, handshake included, with no request made up.
        assert!(conn.contains("0 requests"), "{conn}");
        let out_bytes: u64 = conn
            .split(" B out")
            .next()
            .and_then(|s| s.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(out_bytes > 200, "{conn}");
        assert!(
            conn.contains("encrypted: no probe for this TLS library, tls 1.3, handshake "),
            "{conn}"
        );
    } else {
        assert!(out.contains("summary: 2 requests on 1 connection"), "{out}");
    }
}

#[test]
fn attach_to_another_users_process_without_sys_ptrace_exits_4() {
    let Some(bins) = NobodyBins::new() else {
        return;
    };
    if !can_trace_or_skip() {
        return;
    }
    // A root-owned process that waits on stdin.
    let root_target = Proc::spawn(&mut Command::new("cat")).unwrap();
    let mut tracer = Proc::spawn(as_nobody(TRACE_CAPS, &bins.path("tracer")).args([
        "attach",
        "--pid",
        &root_target.pid().to_string(),
    ]))
    .unwrap();
    let code = tracer
        .wait_exit(Duration::from_secs(20))
        .and_then(|s| s.code());
    let err = tracer.stderr();
    assert_eq!(code, Some(4), "{err}{}", tracer.stdout());
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("another user") && err.contains("lacks CAP_SYS_PTRACE"),
        "{err}"
    );
}
