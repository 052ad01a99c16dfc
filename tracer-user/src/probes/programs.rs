//! Every program of the eBPF object: where it attaches, what it serves,
//! and whether tracing is worth anything without it; and loading them all.
use aya::{
    Ebpf,
    programs::{BtfTracePoint, Program, ProgramError},
};

use super::Hook;

pub struct ProgramSpec {
    pub program: &'static str,
    pub hook: Hook,
    pub serves: &'static str,
    /// Tracing stops without it; the others degrade with a note.
    pub required: bool,
}

const fn btf(
    program: &'static str,
    group: &'static str,
    name: &'static str,
    serves: &'static str,
    required: bool,
) -> ProgramSpec {
    ProgramSpec {
        program,
        hook: Hook::BtfTracePoint(group, name),
        serves,
        required,
    }
}

/// No syscall tracepoint: enabling one slows every syscall of every
/// process on the machine (see the eBPF crate's comment).
pub const PROGRAMS: &[ProgramSpec] = &[
    btf(
        "tracer_state",
        "sock",
        "inet_sock_set_state",
        "connect, TCP states, close(fd)",
        true,
    ),
    btf(
        "tracer_send",
        "sock",
        "sock_send_length",
        "send bytes (Linux 6.3+)",
        false,
    ),
    btf(
        "tracer_recv",
        "sock",
        "sock_recv_length",
        "recv bytes (Linux 6.3+)",
        false,
    ),
    btf(
        "tracer_destroy",
        "tcp",
        "tcp_destroy_sock",
        "socket freed",
        false,
    ),
    btf(
        "tracer_retransmit",
        "tcp",
        "tcp_retransmit_skb",
        "retransmits (finding)",
        false,
    ),
    btf(
        "tracer_reset_sent",
        "tcp",
        "tcp_send_reset",
        "resets sent (finding)",
        false,
    ),
    btf(
        "tracer_reset_received",
        "tcp",
        "tcp_receive_reset",
        "resets received (finding)",
        false,
    ),
];

/// Loads and attaches every program of [`PROGRAMS`] but those in `skip`
/// (None), each on a thread of its own: the kernel verifies programs side
/// by side, and the largest alone takes about 40 ms here. Results come in
/// the order of [`PROGRAMS`].
pub(super) fn attach_all(
    ebpf: &mut Ebpf,
    skip: &[&str],
    btf: &aya::Btf,
) -> Vec<(&'static ProgramSpec, Option<Result<(), ProgramError>>)> {
    let mut results: Vec<_> = PROGRAMS.iter().map(|spec| (spec, None)).collect();
    std::thread::scope(|s| {
        let running: Vec<_> = ebpf
            .programs_mut()
            .filter_map(|(name, prog)| {
                let at = PROGRAMS.iter().position(|p| p.program == name)?;
                (!skip.contains(&name))
                    .then(|| (at, s.spawn(move || attach(prog, &PROGRAMS[at], btf))))
            })
            .collect();
        for (at, thread) in running {
            let result = thread
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p));
            results[at].1 = Some(result);
        }
    });
    for (spec, result) in &mut results {
        if result.is_none() && !skip.contains(&spec.program) {
            // In the table but not in the object: a build mismatch.
            *result = Some(Err(ProgramError::UnexpectedProgramType));
        }
    }
    results
}

fn attach(prog: &mut Program, spec: &ProgramSpec, btf: &aya::Btf) -> Result<(), ProgramError> {
    match spec.hook {
        Hook::BtfTracePoint(_, name) => {
            let tp: &mut BtfTracePoint = prog.try_into()?;
            tp.load(name, btf)?;
            tp.attach()?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn program_names_are_unique() {
        let mut names: Vec<_> = super::PROGRAMS.iter().map(|p| p.program).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), super::PROGRAMS.len());
    }

    #[test]
    fn no_syscall_tracepoint_is_attached() {
        for p in super::PROGRAMS {
            let (group, name) = p.hook.group_and_name();
            assert_ne!(
                group, "syscalls",
                "{} attaches to {group}:{name}",
                p.program
            );
        }
    }
}
