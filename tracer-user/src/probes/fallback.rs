//! Hooks on kernel functions that stand in where a tracepoint is missing,
//! and the mechanism each hook ended up with. Tried in order: BPF
//! trampolines (fentry/fexit: no trap, typed arguments), then kprobes
//! (kernels without `CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS`, arm64
//! before 6.0). Chosen by loading and attaching, never by version number.
//!
//! Which functions cover which path is in tracer-ebpf's `probes::msg_io`.
use std::collections::HashSet;

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

/// Attaches `fb` by the first mechanism that works (kprobes only, when
/// `force_kprobe`); Err says why each failed.
pub fn attach(
    ebpf: &mut Ebpf,
    fb: &Fallback,
    btf: &aya::Btf,
    force_kprobe: bool,
) -> Result<Mechanism, String> {
    let mut why = Vec::new();
    if force_kprobe {
        why.push("fexit: not tried (TRACER_TEST_FORCE_KPROBE)".to_string());
    } else {
        match trampolines(ebpf, fb, btf) {
            Ok(()) => return Ok(Mechanism::Fexit),
            Err(e) => {
                unload(ebpf, fb.trampolines);
                why.push(format!("fexit: {e}"));
            }
        }
    }
    match kprobes(ebpf, fb) {
        Ok(()) => Ok(Mechanism::Kprobe),
        Err(e) => {
            unload(ebpf, fb.kprobes);
            why.push(format!("kprobe: {e}"));
            Err(why.join("; "))
        }
    }
}

fn program<'a>(
    ebpf: &'a mut Ebpf,
    name: &str,
) -> Result<&'a mut aya::programs::Program, ProgramError> {
    ebpf.program_mut(name)
        .ok_or(ProgramError::UnexpectedProgramType)
}

fn trampolines(ebpf: &mut Ebpf, fb: &Fallback, btf: &aya::Btf) -> Result<(), String> {
    for &(name, function, role) in fb.trampolines {
        let failed =
            |e: ProgramError| format!("{name} on {function}: {}", super::program_failure(&e));
        let prog = program(ebpf, name).map_err(failed)?;
        match role {
            Role::Entry => {
                let p: &mut FEntry = prog.try_into().map_err(failed)?;
                p.load(function, btf).map_err(failed)?;
                p.attach().map_err(failed)?;
            }
            Role::Exit => {
                let p: &mut FExit = prog.try_into().map_err(failed)?;
                p.load(function, btf).map_err(failed)?;
                p.attach().map_err(failed)?;
            }
        }
    }
    Ok(())
}

/// One kprobe program may serve several functions: loaded once.
fn kprobes(ebpf: &mut Ebpf, fb: &Fallback) -> Result<(), String> {
    let mut loaded = HashSet::new();
    for &(name, function, _) in fb.kprobes {
        let failed =
            |e: ProgramError| format!("{name} on {function}: {}", super::program_failure(&e));
        let prog = program(ebpf, name).map_err(failed)?;
        let p: &mut KProbe = prog.try_into().map_err(failed)?;
        if loaded.insert(name) {
            p.load().map_err(failed)?;
        }
        p.attach(function, 0).map_err(failed)?;
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
