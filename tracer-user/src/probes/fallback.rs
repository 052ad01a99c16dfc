//! Hooks on kernel functions that stand in where a tracepoint is missing,
//! and the mechanism each hook ended up with. Tried in order: BPF
//! trampolines (fentry/fexit: no trap, typed arguments), then kprobes
//! (kernels without `CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS`, arm64
//! before 6.0). Chosen by loading and attaching, never by version number.
//!
//! Which functions cover which path is in tracer-ebpf's `probes::msg_io`.
use aya::{
    Ebpf,
    programs::{FEntry, FExit, KProbe, ProgramError},
};

/// How a hook is attached, as `tracer check` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    Tracepoint,
    Fexit,
    Kprobe,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Tracepoint => "tracepoint",
            Mechanism::Fexit => "fexit",
            Mechanism::Kprobe => "kprobe",
        }
    }
}

#[derive(Clone, Copy)]
enum Role {
    Entry,
    Exit,
}

/// One hook's stand-in: the programs of each mechanism and where they go.
pub struct Fallback {
    /// The tracepoint program it replaces; None: needed on its own.
    pub replaces: Option<&'static str>,
    pub serves: &'static str,
    pub functions: &'static [&'static str],
    trampolines: &'static [(&'static str, &'static str, Role)],
    kprobes: &'static [(&'static str, &'static str, Role)],
}

pub const SEND: Fallback = Fallback {
    replaces: Some("tracer_send"),
    serves: "send bytes",
    functions: &["inet_sendmsg", "inet6_sendmsg"],
    trampolines: &[
        ("tracer_send_entry4", "inet_sendmsg", Role::Entry),
        ("tracer_send_entry6", "inet6_sendmsg", Role::Entry),
        ("tracer_send_exit4", "inet_sendmsg", Role::Exit),
        ("tracer_send_exit6", "inet6_sendmsg", Role::Exit),
    ],
    kprobes: &[
        ("tracer_send_kprobe", "inet_sendmsg", Role::Entry),
        ("tracer_send_kprobe", "inet6_sendmsg", Role::Entry),
        ("tracer_send_kretprobe", "inet_sendmsg", Role::Exit),
        ("tracer_send_kretprobe", "inet6_sendmsg", Role::Exit),
    ],
};

pub const RECV: Fallback = Fallback {
    replaces: Some("tracer_recv"),
    serves: "recv bytes",
    functions: &["inet_recvmsg", "inet6_recvmsg"],
    trampolines: &[
        ("tracer_recv_entry4", "inet_recvmsg", Role::Entry),
        ("tracer_recv_entry6", "inet6_recvmsg", Role::Entry),
        ("tracer_recv_exit4", "inet_recvmsg", Role::Exit),
        ("tracer_recv_exit6", "inet6_recvmsg", Role::Exit),
    ],
    kprobes: &[
        ("tracer_recv_kprobe", "inet_recvmsg", Role::Entry),
        ("tracer_recv_kprobe", "inet6_recvmsg", Role::Entry),
        ("tracer_recv_kretprobe", "inet_recvmsg", Role::Exit),
        ("tracer_recv_kretprobe", "inet6_recvmsg", Role::Exit),
    ],
};

/// Clears the tracer's own socket ids when the kernel frees a socket
/// (kernels without the cookie helper; see tracer-ebpf's `sock_id`).
pub const SOCK_FREE: Fallback = Fallback {
    replaces: None,
    serves: "socket ids (no socket cookie for tracing programs)",
    functions: &["security_sk_free"],
    trampolines: &[("tracer_sk_free", "security_sk_free", Role::Entry)],
    kprobes: &[("tracer_sk_free_kprobe", "security_sk_free", Role::Entry)],
};

/// Every fallback program, for the loader's bookkeeping.
pub fn programs() -> impl Iterator<Item = &'static str> {
    [&SEND, &RECV, &SOCK_FREE].into_iter().flat_map(|f| {
        f.trampolines
            .iter()
            .chain(f.kprobes)
            .map(|(program, _, _)| *program)
    })
}

/// Attaches each of `fbs` by the first mechanism that works (kprobes only,
/// when `force_kprobe`); Err says why each failed. Programs attach side by
/// side, one thread each: a trampoline's attach waits for an RCU tasks
/// grace period, which under an emulated CPU takes seconds.
pub fn attach(
    ebpf: &mut Ebpf,
    fbs: &[&Fallback],
    btf: &aya::Btf,
    force_kprobe: bool,
) -> Vec<Result<Mechanism, String>> {
    let mut why: Vec<Vec<String>> = vec![Vec::new(); fbs.len()];
    let mut done: Vec<Option<Mechanism>> = vec![None; fbs.len()];
    if force_kprobe {
        for w in &mut why {
            w.push("fexit: not tried (TRACER_TEST_FORCE_KPROBE)".to_string());
        }
    } else {
        let lists: Vec<_> = fbs.iter().map(|f| f.trampolines).collect();
        for (i, r) in attach_side_by_side(ebpf, &lists, Some(btf))
            .into_iter()
            .enumerate()
        {
            match r {
                Ok(()) => done[i] = Some(Mechanism::Fexit),
                Err(e) => {
                    unload(ebpf, fbs[i].trampolines);
                    why[i].push(format!("fexit: {e}"));
                }
            }
        }
    }
    let lists: Vec<_> = fbs
        .iter()
        .zip(&done)
        .map(|(f, d)| if d.is_some() { &[][..] } else { f.kprobes })
        .collect();
    let kprobes = attach_side_by_side(ebpf, &lists, None);
    let mut out = Vec::new();
    for (i, r) in kprobes.into_iter().enumerate() {
        out.push(match (done[i], r) {
            (Some(m), _) => Ok(m),
            (None, Ok(())) => Ok(Mechanism::Kprobe),
            (None, Err(e)) => {
                unload(ebpf, fbs[i].kprobes);
                why[i].push(format!("kprobe: {e}"));
                Err(why[i].join("; "))
            }
        });
    }
    out
}

/// Loads and attaches every (program, function) of each list, a thread per
/// program; one result per list. `btf` Some: trampolines; None: kprobes.
fn attach_side_by_side(
    ebpf: &mut Ebpf,
    lists: &[&'static [(&'static str, &'static str, Role)]],
    btf: Option<&aya::Btf>,
) -> Vec<Result<(), String>> {
    let owner = |name: &str| {
        lists
            .iter()
            .position(|l| l.iter().any(|(p, _, _)| *p == name))
    };
    let mut results: Vec<Result<(), String>> = vec![Ok(()); lists.len()];
    std::thread::scope(|s| {
        let running: Vec<_> = ebpf
            .programs_mut()
            .filter_map(|(name, prog)| {
                let at = owner(name)?;
                let targets: Vec<_> = lists[at]
                    .iter()
                    .filter(|(p, _, _)| *p == name)
                    .copied()
                    .collect();
                Some((at, s.spawn(move || attach_one(prog, &targets, btf))))
            })
            .collect();
        for (at, thread) in running {
            let r = thread
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            if let (Err(e), Ok(())) = (r, &results[at]) {
                results[at] = Err(e);
            }
        }
    });
    for (at, list) in lists.iter().enumerate() {
        if let Some((name, _, _)) = list
            .iter()
            .find(|(p, _, _)| !ebpf.programs().any(|(n, _)| n == *p))
        {
            results[at] = Err(format!("{name} is not in the eBPF object"));
        }
    }
    results
}

/// One program on each of its functions.
fn attach_one(
    prog: &mut aya::programs::Program,
    targets: &[(&'static str, &'static str, Role)],
    btf: Option<&aya::Btf>,
) -> Result<(), String> {
    for (i, &(name, function, role)) in targets.iter().enumerate() {
        let failed =
            |e: ProgramError| format!("{name} on {function}: {}", super::program_failure(&e));
        match (btf, role) {
            (Some(btf), Role::Entry) => {
                let p: &mut FEntry = prog.try_into().map_err(failed)?;
                p.load(function, btf).map_err(failed)?;
                p.attach().map_err(failed)?;
            }
            (Some(btf), Role::Exit) => {
                let p: &mut FExit = prog.try_into().map_err(failed)?;
                p.load(function, btf).map_err(failed)?;
                p.attach().map_err(failed)?;
            }
            (None, _) => {
                let p: &mut KProbe = prog.try_into().map_err(failed)?;
                // One kprobe program serves several functions: loaded once.
                if i == 0 {
                    p.load().map_err(failed)?;
                }
                p.attach(function, 0).map_err(failed)?;
            }
        }
    }
    Ok(())
}

/// Detaches and unloads what a failed mechanism left attached.
fn unload(ebpf: &mut Ebpf, list: &[(&'static str, &'static str, Role)]) {
    for &(name, _, _) in list {
        let _ = match ebpf.program_mut(name) {
            Some(aya::programs::Program::FEntry(p)) => p.unload(),
            Some(aya::programs::Program::FExit(p)) => p.unload(),
            Some(aya::programs::Program::KProbe(p)) => p.unload(),
            _ => Ok(()),
        };
    }
}
