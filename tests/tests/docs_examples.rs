//! The README's and the book's examples cannot drift from the binary.
//!
//! A ```console block is run: each `$ ` line as a shell command (`sudo `
//! dropped: the tests run as root), with `tracer` on PATH being the binary
//! under test, and its stdout and stderr compared with the lines below it.
//! `127.0.0.1:8080` in a command is a keep-alive server the test starts,
//! `127.0.0.1:4318` an OTLP receiver. Times, ports, pids, fds and cookies
//! are normalised on both sides, so the docs keep real output.
//!
//! Any other block that shows a `$ tracer` command must say, in a line just
//! above it, `*Not run by the tests: REASON*`; the test lists those.
//!
//! `TRACER_DOCS_BLESS=1` writes each example's actual output into its file
//! instead of comparing (then read the diff before committing it).
//!
//! Why not trycmd: it wants placeholders (`[..]`) written into the docs in
//! place of the numbers a reader should see; snapbox shows the diff.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use regex::Regex;
use tracer_tests::{
    http_server::{Behaviour, TestServer},
    otlp_receiver::OtlpReceiver,
    tracer_bin::tracer_bin,
};

const MARKER: &str = "*Not run by the tests:";
/// Runs of an example before its output is called different (see below).
const ATTEMPTS: usize = 5;

struct Example {
    file: String,
    line: usize,
    command: String,
    expected: Vec<String>,
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn doc_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(workspace().join("docs/src"))
        .expect("docs/src")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    files.sort();
    files.insert(0, workspace().join("README.md"));
    files
}

fn shows_tracer_command(line: &str) -> bool {
    let l = line.trim_start();
    l.starts_with("$ tracer ") || l.starts_with("$ sudo tracer ")
}

/// (examples to run, skipped blocks as "file:line: reason"); a block that
/// shows a tracer command with neither is an error.
fn collect(file: &Path) -> (Vec<Example>, Vec<String>, Vec<String>) {
    let text = std::fs::read_to_string(file).expect("doc file");
    let name = file
        .strip_prefix(workspace())
        .unwrap_or(file)
        .display()
        .to_string();
    let lines: Vec<&str> = text.lines().collect();
    let (mut run, mut skipped, mut unmarked) = (Vec::new(), Vec::new(), Vec::new());
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].trim_start().strip_prefix("```") else {
            i += 1;
            continue;
        };
        let start = i;
        let end = (i + 1..lines.len())
            .find(|&j| lines[j].trim_start().starts_with("```"))
            .unwrap_or(lines.len());
        let body = &lines[start + 1..end];
        i = end + 1;
        if info.trim() == "console" {
            for (k, l) in body.iter().enumerate() {
                if let Some(cmd) = l.strip_prefix("$ ") {
                    let expected = body[k + 1..]
                        .iter()
                        .take_while(|l| !l.starts_with("$ "))
                        .map(|l| l.to_string())
                        .collect();
                    run.push(Example {
                        file: name.clone(),
                        line: start + 2 + k,
                        command: cmd.to_string(),
                        expected,
                    });
                }
            }
            continue;
        }
        if !body.iter().any(|l| shows_tracer_command(l)) {
            continue;
        }
        let marker = lines[..start]
            .iter()
            .rev()
            .filter(|l| !l.trim().is_empty())
            .take(2)
            .find_map(|l| l.trim().strip_prefix(MARKER));
        match marker {
            Some(reason) => skipped.push(format!(
                "{name}:{}: {}",
                start + 1,
                reason.trim().trim_end_matches('*')
            )),
            None => unmarked.push(format!("{name}:{}", start + 1)),
        }
    }
    (run, skipped, unmarked)
}

/// Both sides go through this: what varies from run to run becomes a name.
fn normalise(text: &str) -> Vec<String> {
    let rules: &[(&str, &str)] = &[
        (r"\d+\.\d+ ?(ms|s)\b", "T $1"),
        (r"idle \d+\.\d+ms", "idle Tms"),
        (r"(127\.0\.0\.1|\[::1\]):\d+", "$1:PORT"),
        (r"\b(cookie|fd|tid|pid)([= ])\d+", "$1${2}N"),
        (r"\[[dctsx]+\]", "[BAR]"),
        (r"\bpid \d+", "pid N"),
        (r"/proc/\d+/", "/proc/N/"),
        // Where the distribution keeps libc and libssl (/lib or /usr/lib).
        (r"(/usr)?/lib/x86_64-linux-gnu/", "/LIB/"),
        (r"commit [0-9a-f]{12}(-dirty)?", "commit C"),
        (r"[ \t]+", " "),
    ];
    let rules: Vec<(Regex, &str)> = rules
        .iter()
        .map(|(re, to)| (Regex::new(re).expect("regex"), *to))
        .collect();
    text.lines()
        .map(|l| {
            rules
                .iter()
                .fold(l.to_string(), |l, (re, to)| {
                    re.replace_all(&l, *to).into_owned()
                })
                .trim()
                .to_string()
        })
        .filter(|l| !l.is_empty() && !timing_dependent(l))
        .collect()
}

/// Kernel lines whose presence depends on timing, not on the binary: how
/// the server's writes coalesce into recvs (the body lines still say the
/// bytes), and whether the close reaches the timeline before it is printed.
fn timing_dependent(line: &str) -> bool {
    [
        "kernel recv ",
        "kernel close fd=",
        "kernel state FIN_WAIT1 -> FIN_WAIT1",
    ]
    .iter()
    .any(|k| line.starts_with(&format!("T ms {k}")))
}

fn run_example(ex: &Example, server: &str, otlp: &str, dir: &Path) -> String {
    let cmd = ex
        .command
        .replace("sudo ", "")
        .replace("127.0.0.1:8080", server)
        .replace("http://127.0.0.1:4318", otlp);
    let bin_dir = tracer_bin().parent().expect("bin dir").to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("sh")
        .args(["-c", &format!("exec 2>&1; {cmd}")])
        .current_dir(dir)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .output()
        .expect("sh runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn every_output_example_runs_or_says_why_not() {
    let server = TestServer::start("127.0.0.1:0", Behaviour::KeepAlive).expect("server");
    let addr = server.addr.to_string();
    let otlp = OtlpReceiver::start("docs_examples");
    let dir = workspace().join("target/docs-examples");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let (mut examples, mut skipped, mut unmarked) = (Vec::new(), Vec::new(), Vec::new());
    for f in doc_files() {
        let (r, s, u) = collect(&f);
        examples.extend(r);
        skipped.extend(s);
        unmarked.extend(u);
    }
    assert!(
        unmarked.is_empty(),
        "blocks that show `$ tracer` but are neither ```console nor marked `{MARKER} REASON*`:\n{}",
        unmarked.join("\n")
    );
    assert!(examples.len() >= 5, "only {} examples run", examples.len());
    let bless = std::env::var_os("TRACER_DOCS_BLESS").is_some_and(|v| v == "1");
    let mut failures = Vec::new();
    let mut blessed = Vec::new();
    for ex in &examples {
        // The documented output must be one the binary gives in up to
        // ATTEMPTS runs: whether the kernel delays an ACK (the demo's
        // finding) is its heuristic's choice, not the binary's.
        let mut actual = run_example(ex, &addr, &otlp.endpoint(), &dir);
        for _ in 1..ATTEMPTS {
            if bless || normalise(&ex.expected.join("\n")) == normalise(&actual) {
                break;
            }
            actual = run_example(ex, &addr, &otlp.endpoint(), &dir);
        }
        if bless {
            // The docs say the addresses the commands name.
            let shown = actual
                .replace(&addr, "127.0.0.1:8080")
                .replace(&otlp.endpoint(), "http://127.0.0.1:4318");
            blessed.push((ex, shown));
            continue;
        }
        let (want, got) = (normalise(&ex.expected.join("\n")), normalise(&actual));
        if want != got {
            failures.push(format!(
                "{}:{}: $ {}\n--- documented (normalised)\n{}\n--- actual (normalised)\n{}\n--- actual\n{actual}",
                ex.file,
                ex.line,
                ex.command,
                want.join("\n"),
                got.join("\n")
            ));
        } else {
            println!("ran {}:{}: $ {}", ex.file, ex.line, ex.command);
        }
    }
    // Bottom up, so that the line numbers of the examples above still hold.
    for (ex, actual) in blessed.iter().rev() {
        let path = workspace().join(&ex.file);
        let text = std::fs::read_to_string(&path).expect("doc file");
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let first = ex.line; // the line after the command (1-based command line)
        lines.splice(
            first..first + ex.expected.len(),
            actual.lines().map(str::to_string),
        );
        std::fs::write(&path, lines.join("\n") + "\n").expect("write doc file");
        println!("blessed {}:{}: $ {}", ex.file, ex.line, ex.command);
    }
    println!("not run ({}), as their markers say:", skipped.len());
    for s in &skipped {
        println!("  {s}");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // The OTLP example's counts are the tracer's word; the receiver's too.
    if examples.iter().any(|e| e.command.contains("--otlp")) {
        assert!(!otlp.spans().is_empty(), "the OTLP example sent no span");
    }
}

/// The control: a changed number of bytes, or a changed word, is caught;
/// a changed time or cookie is not.
#[test]
fn normalising_keeps_what_a_reader_checks() {
    let a = "    0.626 ms  kernel  send 64 B  cookie=17611";
    let b = "   41.615 ms  kernel  send 64 B  cookie=9";
    assert_eq!(normalise(a), normalise(b));
    assert_ne!(normalise(a), normalise(&a.replace("64 B", "65 B")));
    assert_ne!(normalise(a), normalise(&a.replace("send", "connect")));
    assert_ne!(
        normalise("  status 200, 34 B body"),
        normalise("  status 200, 35 B body")
    );
}
