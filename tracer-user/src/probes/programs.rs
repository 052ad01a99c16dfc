//! Every program of the eBPF object: where it attaches, what it serves,
//! and whether tracing is worth anything without it.
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
];

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
