//! The binaries under test and what the bench reads back from the tracer:
//! attach's JSON output (event counts, lost events) and the kernel's run
//! statistics of its eBPF programs.
use std::{
    collections::BTreeMap,
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use anyhow::{Context as _, Result, bail};

use super::procs::Proc;
use crate::shell;

pub struct Bins {
    pub tracer: PathBuf,
    /// `tracer` that honours `TRACER_BENCH_FLOOR` (feature `bench-knobs`),
    /// for the floor round only: the `tracer` measured everywhere else
    /// ignores it.
    pub tracer_floor: PathBuf,
    pub server: PathBuf,
    pub load: PathBuf,
    pub pingpong: PathBuf,
    /// Where bench.md / bench.json and the scratch output go.
    pub out_dir: PathBuf,
}

/// `$CARGO_TARGET_DIR` when set (relative to the workspace), else `target`.
fn target_dir() -> Result<PathBuf> {
    let root = shell::workspace_root()?;
    Ok(match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => root.join(d),
        None => root.join("target"),
    })
}

impl Bins {
    pub fn locate() -> Result<Self> {
        let target = target_dir()?;
        let release = target.join("release");
        let bin = |name: &str| -> Result<PathBuf> {
            let p = release.join(name);
            if !p.exists() {
                bail!("{} is missing after the build", p.display());
            }
            Ok(p)
        };
        let out_dir = target.join("bench");
        fs::create_dir_all(out_dir.join("scratch"))?;
        Ok(Self {
            tracer: bin("tracer")?,
            tracer_floor: bin("tracer-bench-knobs")?,
            server: bin("bench-server")?,
            load: bin("bench-load")?,
            pingpong: bin("bench-pingpong")?,
            out_dir,
        })
    }

    pub fn scratch(&self, name: &str) -> PathBuf {
        self.out_dir.join("scratch").join(name)
    }

    /// `bench-server`, ended after `secs` at most, once it serves: the
    /// process and the address it listens on.
    pub fn start_server(&self, secs: f64) -> Result<(Proc, String)> {
        let server = Proc::spawn(
            "bench-server",
            Command::new(&self.server).args(["--secs", &secs.to_string()]),
            None,
        )?;
        let ready = server.wait_for("ready", false, Duration::from_secs(10))?;
        let addr = ready
            .split_whitespace()
            .nth(1)
            .context("bench-server: no address")?
            .to_string();
        Ok((server, addr))
    }
}

/// How the bench starts `tracer attach`, besides the target.
#[derive(Clone, Copy, Debug, Default)]
pub struct AttachHow {
    /// Shrinks its ring buffer (hidden option) to force loss.
    pub ring_bytes: Option<u32>,
    /// `tracer-bench-knobs` with `TRACER_BENCH_FLOOR=1`: the send/recv
    /// programs return at once.
    pub floor: bool,
    /// A second process to trace: two tgids make the programs look the set
    /// up instead of the one-slot fast path.
    pub also: Option<u32>,
    /// `--events`: a record and a line per I/O instead of attach's default
    /// (a record per message, a line per request).
    pub events: bool,
    /// `--otlp http://127.0.0.1:PORT`: spans to a local sink.
    pub otlp: Option<u16>,
}

/// `tracer attach --pid PID --format json > out`, running once it says so.
pub fn attach(bins: &Bins, pid: u32, out: &Path, how: AttachHow) -> Result<Proc> {
    let mut cmd = Command::new(if how.floor {
        &bins.tracer_floor
    } else {
        &bins.tracer
    });
    let pids = match how.also {
        Some(also) => format!("{pid},{also}"),
        None => pid.to_string(),
    };
    cmd.args(["attach", "--pid", &pids, "--format", "json"]);
    if how.events {
        cmd.arg("--events");
    }
    if how.floor {
        cmd.env("TRACER_BENCH_FLOOR", "1");
    }
    if let Some(port) = how.otlp {
        cmd.args(["--otlp", &format!("http://127.0.0.1:{port}")]);
    }
    let ring_bytes = how.ring_bytes;
    if let Some(n) = ring_bytes {
        cmd.args(["--ring-bytes", &n.to_string()]);
    }
    let p = Proc::spawn("tracer attach", &mut cmd, Some(out))?;
    p.wait_for("attached to pid", true, Duration::from_secs(30))?;
    Ok(p)
}

/// What attach's JSON output says about one run.
#[derive(Debug, Default, Clone, Copy)]
pub struct AttachCounts {
    pub sends: u64,
    pub recvs: u64,
    /// Lost send and recv events (`lost_by_kind`): what the shortfall of
    /// send/recv lines is checked against.
    pub lost: u64,
    /// Every lost event (`lost_events`), state changes and closes too.
    pub lost_all: u64,
}

/// Counts the `send`/`recv` event lines and reads the lost counters from the
/// summary. The file can be a gigabyte: GNU grep counts it far faster than
/// an unoptimised xtask could.
pub fn read_attach_output(path: &Path) -> Result<AttachCounts> {
    let count = |name: &str| -> Result<u64> {
        let out = Command::new("grep")
            .args(["-c", "-F", &format!("\"name\":\"{name}\""), "--"])
            .arg(path)
            .output()
            .context("running grep")?;
        // grep -c exits 1 when it counted 0.
        let n = String::from_utf8_lossy(&out.stdout).trim().parse::<u64>();
        n.with_context(|| format!("grep -c in {}", path.display()))
    };
    let summary = read_summary(path)?;
    Ok(AttachCounts {
        sends: count("send")?,
        recvs: count("recv")?,
        lost: ["send", "recv"]
            .iter()
            .map(|k| summary["lost_by_kind"][k].as_u64().unwrap_or(0))
            .sum(),
        lost_all: summary["lost_events"].as_u64().unwrap_or(0),
    })
}

/// The summary line at the end of attach's JSON output.
pub fn read_summary(path: &Path) -> Result<serde_json::Value> {
    let tail = Command::new("tail")
        .args(["-n", "5", "--"])
        .arg(path)
        .output()?;
    let tail = String::from_utf8_lossy(&tail.stdout);
    tail.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["type"] == "summary")
        .with_context(|| format!("no summary line at the end of {}", path.display()))
}

/// User plus system CPU time of a live process so far, in seconds
/// (/proc/PID/stat utime + stime).
pub fn cpu_s(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After "(comm)": state is field 3, utime 14 and stime 15.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = rest.get(11)?.parse::<u64>().ok()? + rest.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no memory effects.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

/// Run statistics of one eBPF program (needs `kernel.bpf_stats_enabled`).
#[derive(Debug, Clone)]
pub struct ProgStats {
    /// What it is attached to: the tracepoint name from its link, else the
    /// link's kind (a program name would be cut at 15 bytes by the kernel).
    pub hook: String,
    pub run_cnt: u64,
    pub run_time_ns: u64,
}

/// Statistics of the programs whose fds process `pid` holds, read from its
/// fdinfo, so other tracers running on the machine do not mix in.
pub fn prog_stats(pid: u32) -> Result<Vec<ProgStats>> {
    let (mut progs, mut hooks) = (BTreeMap::new(), BTreeMap::new());
    for entry in fs::read_dir(format!("/proc/{pid}/fdinfo"))? {
        let Ok(info) = fs::read_to_string(entry?.path()) else {
            continue;
        };
        let field = |key: &str| info.lines().find_map(|l| Some(l.strip_prefix(key)?.trim()));
        let number = |key: &str| field(key).and_then(|v| v.parse::<u64>().ok());
        let Some(id) = number("prog_id:") else {
            continue;
        };
        if let (Some(run_cnt), Some(run_time_ns)) = (number("run_cnt:"), number("run_time_ns:")) {
            progs.insert(id, (run_cnt, run_time_ns));
        } else if let Some(hook) = field("tp_name:")
            .or_else(|| field("event_type:"))
            .or_else(|| field("link_type:"))
        {
            hooks.insert(id, hook.to_string());
        }
    }
    let mut stats: Vec<ProgStats> = progs
        .into_iter()
        .map(|(id, (run_cnt, run_time_ns))| ProgStats {
            hook: hooks.remove(&id).unwrap_or_else(|| format!("prog {id}")),
            run_cnt,
            run_time_ns,
        })
        .collect();
    stats.sort_by_key(|p| std::cmp::Reverse(p.run_cnt));
    Ok(stats)
}

/// Turns `kernel.bpf_stats_enabled` on and puts the old value back on drop.
pub struct BpfStats {
    old: String,
}

const BPF_STATS: &str = "/proc/sys/kernel/bpf_stats_enabled";

impl BpfStats {
    pub fn enable() -> Result<Self> {
        let old = fs::read_to_string(BPF_STATS).context(BPF_STATS)?;
        fs::write(BPF_STATS, "1").context("enabling kernel.bpf_stats_enabled")?;
        Ok(Self {
            old: old.trim().to_string(),
        })
    }
}

impl Drop for BpfStats {
    fn drop(&mut self) {
        if let Err(e) = fs::write(BPF_STATS, &self.old) {
            eprintln!("bench: could not restore kernel.bpf_stats_enabled: {e}");
        }
    }
}

/// Peak resident set from /proc (VmHWM), in KiB, while the process lives.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
