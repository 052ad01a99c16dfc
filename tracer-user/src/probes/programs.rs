//! Every program of the eBPF object: where it attaches, what it serves,
//! and whether tracing is worth anything without it.
use super::Hook;

pub struct ProgramSpec {
    pub program: &'static str,
    pub hook: Hook,
    pub serves: &'static str,
    /// Tracing stops without it; the others degrade with a note.
    pub required: bool,
    /// Payload-head capture, attached for `attach` only.
    pub payload_head: bool,
}

const fn tp(
    program: &'static str,
    name: &'static str,
    serves: &'static str,
    required: bool,
) -> ProgramSpec {
    ProgramSpec {
        program,
        hook: Hook::TracePoint("syscalls", name),
        serves,
        required,
        payload_head: false,
    }
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
        payload_head: false,
    }
}

/// A payload-head program on `syscalls:<name>`.
const fn head(program: &'static str, name: &'static str) -> ProgramSpec {
    ProgramSpec {
        program,
        hook: Hook::TracePoint("syscalls", name),
        serves: "payload heads (attach)",
        required: false,
        payload_head: true,
    }
}

pub const PROGRAMS: &[ProgramSpec] = &[
    tp("tracer_connect_enter", "sys_enter_connect", "connect", true),
    tp("tracer_connect_exit", "sys_exit_connect", "connect", true),
    btf(
        "tracer_state",
        "sock",
        "inet_sock_set_state",
        "TCP states",
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
    tp("tracer_close", "sys_enter_close", "close(fd)", false),
    btf(
        "tracer_destroy",
        "tcp",
        "tcp_destroy_sock",
        "socket freed",
        false,
    ),
    head("tracer_head_write", "sys_enter_write"),
    head("tracer_head_sendto", "sys_enter_sendto"),
    head("tracer_head_sendmsg", "sys_enter_sendmsg"),
    head("tracer_head_writev", "sys_enter_writev"),
    head("tracer_head_read", "sys_enter_read"),
    head("tracer_head_recvfrom", "sys_enter_recvfrom"),
    head("tracer_head_recvmsg", "sys_enter_recvmsg"),
    head("tracer_head_readv", "sys_enter_readv"),
    head("tracer_head_write_exit", "sys_exit_write"),
    head("tracer_head_sendto_exit", "sys_exit_sendto"),
    head("tracer_head_sendmsg_exit", "sys_exit_sendmsg"),
    head("tracer_head_writev_exit", "sys_exit_writev"),
    head("tracer_head_read_exit", "sys_exit_read"),
    head("tracer_head_recvfrom_exit", "sys_exit_recvfrom"),
    head("tracer_head_recvmsg_exit", "sys_exit_recvmsg"),
    head("tracer_head_readv_exit", "sys_exit_readv"),
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
}
