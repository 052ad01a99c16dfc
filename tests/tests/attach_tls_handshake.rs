//! Each TLS connection's handshake read from the kernel's own bytes:
//! version, time and resumption, against `openssl s_server` on loopback.
//! From the client (`tracer run -- openssl s_client`), from the server
//! (`tracer attach --pid` on s_server), and for a client whose TLS library
//! has no probe (rustls, in `tracer trace --no-ebpf`). The ground truth is
//! s_client's own `New, TLSv1.x` / `Reused, TLSv1.x`.
use std::{path::PathBuf, process::Command, time::Duration};

use serde_json::Value;
use tracer_tests::{
    process::{Proc, attach, can_trace_or_skip, json_lines, of_type},
    run_cmd::{have, run_json},
    tls_server::self_signed_dir,
    tracer_bin::tracer_bin,
};

/// `openssl s_server -www` on 127.0.0.1 with a certificate made here. It
/// answers `GET /` and closes; it handles one connection at a time.
struct Server {
    proc: Proc,
    port: u16,
    dir: PathBuf,
}

impl Server {
    fn start(name: &str) -> Self {
        let dir = self_signed_dir(&format!("tlshs-{name}"));
        let proc = Proc::spawn(
            Command::new("openssl")
                .args(["s_server", "-accept", "127.0.0.1:0", "-www"])
                .args(["-cert", "c.pem", "-key", "k.pem"])
                .current_dir(&dir),
        )
        .unwrap();
        assert!(proc.wait_for("ACCEPT ", false, Duration::from_secs(10)));
        let port = proc
            .stdout()
            .lines()
            .find_map(|l| l.strip_prefix("ACCEPT 127.0.0.1:")?.trim().parse().ok())
            .expect("s_server's port");
        Self { proc, port, dir }
    }

    /// `openssl s_client` args for a connection that saves its session
    /// (`resume` false) or offers it again.
    fn client_args(&self, version: &str, resume: bool) -> Vec<String> {
        let session = self.dir.join("session").display().to_string();
        let flag = if resume { "-sess_in" } else { "-sess_out" };
        let connect = format!("127.0.0.1:{}", self.port);
        [
            "openssl", "s_client", "-connect", &connect, version, flag, &session,
        ]
        .map(String::from)
        .into_iter()
        .chain(["-quiet".to_string()])
        .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `cmd` (an s_client) with a request on its stdin; its stdout.
fn client(cmd: &mut Command) -> String {
    let mut p = Proc::spawn(cmd.env("NO_COLOR", "1")).expect("the client starts");
    p.send_line("GET / HTTP/1.0\r").unwrap();
    p.send_line("\r").unwrap();
    let status = p.wait_exit(Duration::from_secs(20));
    assert!(status.is_some(), "{}\n{}", p.stdout(), p.stderr());
    p.stdout() + &p.stderr()
}

/// s_client's own verdict: ("New" | "Reused", "TLSv1.3").
fn truth(out: &str) -> (String, String) {
    let line = out
        .lines()
        .find(|l| l.starts_with("New, TLSv") || l.starts_with("Reused, TLSv"))
        .unwrap_or_else(|| panic!("no New/Reused line: {out}"));
    let mut words = line.split(", ");
    let how = words.next().unwrap_or("").to_string();
    (
        how,
        words
            .next()
            .unwrap_or("")
            .trim_start_matches("TLSv")
            .to_string(),
    )
}

/// The close line's `tls`, checked against the connection's lifetime.
fn tls_of_close(lines: &[Value], connection: u64) -> Value {
    let of = |event: &str| {
        of_type(lines, "connection")
            .into_iter()
            .find(|l| l["event"] == event && l["connection"] == connection)
            .unwrap_or_else(|| panic!("no {event} line: {lines:?}"))
    };
    let (open, close) = (of("open"), of("close"));
    let tls = close["tls"].clone();
    let ms = tls["handshake_ms"]
        .as_f64()
        .unwrap_or_else(|| panic!("{close}"));
    let life_ms = (close["ts_ns"].as_u64().unwrap() - open["ts_ns"].as_u64().unwrap()) as f64 / 1e6;
    assert!(
        ms > 0.0 && ms < life_ms,
        "handshake {ms} ms, lifetime {life_ms} ms"
    );
    let flight = tls["server_flight_ms"].as_f64().unwrap();
    assert!(flight > 0.0 && flight < ms, "{tls}");
    tls
}

fn can_run_or_skip() -> bool {
    have("openssl") && can_trace_or_skip()
}

#[test]
fn openssl_client_new_then_resumed_tls13_and_tls12() {
    if !can_run_or_skip() {
        return;
    }
    for version in ["-tls1_3", "-tls1_2"] {
        let server = Server::start(&format!("client{version}"));
        for resume in [false, true] {
            let file = server.dir.join(format!("run{resume}.jsonl"));
            let said = client(
                Command::new(tracer_bin())
                    .args(["run", "--format", "json", "-o"])
                    .arg(&file)
                    .arg("--")
                    .args(server.client_args(version, resume)),
            );
            let lines = json_lines(&std::fs::read_to_string(&file).unwrap_or_default());
            println!("{said}\n{lines:?}");
            let (how, v) = truth(&said);
            assert_eq!(how, if resume { "Reused" } else { "New" });
            let tls = tls_of_close(&lines, 1);
            assert_eq!(tls["version"], v.as_str(), "{tls}");
            assert_eq!(tls["resumed"], if resume { "yes" } else { "no" }, "{tls}");
            assert_eq!(tls["role"], "client");
            let summary = of_type(&lines, "summary")[0];
            assert_eq!(summary["per_connection"][0]["tls"], tls, "{summary}");
        }
    }
}

#[test]
fn server_side_attach_sees_resumption_too() {
    if !can_run_or_skip() {
        return;
    }
    for version in ["-tls1_3", "-tls1_2"] {
        let mut server = Server::start(&format!("server{version}"));
        let mut tracer = attach(server.proc.pid(), "json");
        let mut said = Vec::new();
        for resume in [false, true] {
            let args = server.client_args(version, resume);
            said.push(truth(&client(Command::new(&args[0]).args(&args[1..]))));
        }
        // The server exits; attach ends with it.
        let _ = server.proc.child.kill();
        let out = tracer.exit_0_stdout();
        let lines = json_lines(&out);
        for (i, (how, v)) in said.iter().enumerate() {
            let tls = tls_of_close(&lines, i as u64 + 1);
            assert_eq!(tls["role"], "server", "{tls}");
            assert_eq!(tls["version"], v.as_str(), "{tls}");
            let resumed = if how == "Reused" { "yes" } else { "no" };
            assert_eq!((i, &tls["resumed"]), (i, &Value::from(resumed)), "{tls}");
        }
        assert_eq!(
            said.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(),
            ["New", "Reused"]
        );
    }
}

/// A Python `ssl` client that times its own `do_handshake` (in ns) and
/// says whether it resumed, two connections, the second with the first's
/// session: `HANDSHAKE <n> <version> <reused> <ns>`.
const TIMED_CLIENT: &str = r#"
import socket, ssl, sys, time
port, version = int(sys.argv[1]), sys.argv[2]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
v = ssl.TLSVersion.TLSv1_3 if version == '1.3' else ssl.TLSVersion.TLSv1_2
ctx.minimum_version = ctx.maximum_version = v
session = None
for i in range(2):
    raw = socket.create_connection(('127.0.0.1', port))
    s = ctx.wrap_socket(raw, do_handshake_on_connect=False, session=session)
    t0 = time.monotonic_ns()
    s.do_handshake()
    t1 = time.monotonic_ns()
    s.sendall(b'GET / HTTP/1.0\r\n\r\n')
    while s.recv(65536):
        pass
    session = s.session
    print('HANDSHAKE', i + 1, s.version(), s.session_reused, t1 - t0, flush=True)
    s.close()
"#;

/// The ClientHello's send comes after `do_handshake` began and the last
/// Finished's I/O before it returned: the kernel's time is inside the
/// client's own, whatever the load, and the resumption is the client's.
#[test]
fn handshake_time_lies_inside_the_clients_own_do_handshake() {
    if !can_run_or_skip() || !have("python3") {
        return;
    }
    for version in ["1.3", "1.2"] {
        let server = Server::start(&format!("python{version}"));
        let port = server.port.to_string();
        let args = ["--", "python3", "-c", TIMED_CLIENT, &port, version];
        let (run, lines) = run_json(&format!("hs-python{version}"), &args);
        println!("{}\n{}\n{lines:?}", run.stdout, run.stderr);
        let said: Vec<Vec<&str>> = run
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("HANDSHAKE "))
            .map(|l| l.split(' ').collect())
            .collect();
        assert_eq!(said.len(), 2, "{}", run.stderr);
        for (i, words) in said.iter().enumerate() {
            let [_, v, reused, ns] = words[..] else {
                panic!("{words:?}")
            };
            let tls = tls_of_close(&lines, i as u64 + 1);
            assert_eq!(format!("TLSv{}", tls["version"].as_str().unwrap()), v);
            let resumed = if reused == "True" { "yes" } else { "no" };
            assert_eq!(tls["resumed"], resumed, "{tls}");
            assert_eq!(reused, if i == 0 { "False" } else { "True" });
            let own_ms = ns.parse::<f64>().unwrap() / 1e6;
            let ms = tls["handshake_ms"].as_f64().unwrap();
            assert!(ms <= own_ms, "kernel {ms} ms, do_handshake {own_ms} ms");
        }
    }
}

/// rustls (in `tracer trace --no-ebpf`) has no plaintext probe: the
/// connections say "encrypted", and still their handshake.
#[test]
fn a_client_without_a_probe_still_shows_its_handshake() {
    if !can_run_or_skip() {
        return;
    }
    let server = Server::start("rustls");
    let url = format!("https://127.0.0.1:{}/", server.port);
    let inner = tracer_bin().display().to_string();
    let args = [
        "--",
        &inner,
        "trace",
        "--no-ebpf",
        "--insecure",
        "-n",
        "2",
        &url,
    ];
    let (run, lines) = run_json("hs-rustls", &args);
    println!("{}\n{lines:?}", run.stderr);
    let summary = of_type(&lines, "summary")[0];
    let conns = summary["per_connection"].as_array().unwrap();
    // s_server -www closes after each answer: two connections, the second
    // resumes the first's session (rustls keeps TLS 1.3 tickets).
    assert_eq!(conns.len(), 2, "{summary}");
    for (i, c) in conns.iter().enumerate() {
        assert_eq!(
            (c["encrypted"].as_bool(), c["plaintext"].as_bool()),
            (Some(true), Some(false)),
            "{c}"
        );
        let tls = tls_of_close(&lines, i as u64 + 1);
        assert_eq!(c["tls"], tls);
        assert_eq!(tls["version"], "1.3", "{tls}");
        assert_eq!(tls["resumed"], if i == 0 { "no" } else { "yes" }, "{tls}");
    }
}
