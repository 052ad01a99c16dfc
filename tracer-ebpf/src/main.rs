//! tracer's kernel side: which hook serves which need, and why.
//!
//! The kernel this runs on in CI has no kprobes and refuses fentry (see
//! ARCHITECTURE.md), so every hook it needs is a tracepoint: a stable ABI
//! that also exists on the usual runner kernels. Where a tracepoint is
//! missing (the byte tracepoints before Linux 6.3), hooks on kernel
//! functions stand in: fentry/fexit, else kprobes, chosen by userspace by
//! loading and attaching (`probes::msg_io`, `probes::sock_id`). None is a
//! syscall tracepoint: enabling any
//! one makes the kernel send every syscall of every process on the machine
//! down the slow entry/exit path (SYSCALL_WORK_SYSCALL_TRACEPOINT), however
//! early the program returns. What a syscall hook would give (fd, which
//! syscall, user buffers) is read from the task's saved user registers
//! instead (`probes::syscall`, x86_64).
//!
//! - TCP lifecycle: `sock:inet_sock_set_state` as tp_btf, for the typed
//!   `struct sock *` that `bpf_get_socket_cookie` needs.
//! - connect: the same hook. CLOSE -> SYN_SENT runs inside connect(2), in
//!   the caller's thread (cookie, thread, fd); the event is written when the
//!   handshake ends, with how it ended. TCP only.
//! - send / recv: `sock:sock_send_length` / `sock:sock_recv_length` as tp_btf
//!   (Linux 6.3+): one event per `sock_sendmsg` / `sock_recvmsg`, whatever
//!   the syscall (write, sendto, sendmsg, read, recvfrom...), TCP and UDP.
//!   Before 6.3, entry/exit pairs on `inet_sendmsg`/`inet6_sendmsg` and
//!   `inet_recvmsg`/`inet6_recvmsg` (`probes::msg_io`), into the same path.
//! - socket identity: the socket cookie (`bpf_get_socket_cookie`, from
//!   tracing programs since 5.12); before, an id of the tracer's own per
//!   socket, cleared when the kernel frees it (`probes::sock_id`).
//! - close: the state change that close(2) makes when it releases a TCP
//!   socket (same hook, fd from the registers), and `tcp:tcp_destroy_sock`
//!   (tp_btf) for the moment the kernel frees it.
//! - HTTPS plaintext (attach): uprobes on OpenSSL's `SSL_read`/`SSL_write`
//!   (and `_ex`), not hooks in the kernel: the plaintext exists only in the
//!   process. Joined to the socket by the send/recv inside the call.
//!
//! Filtering happens here, first thing: only processes in `TRACED_TGIDS`
//! produce events. Softirq-context hooks attribute by socket cookie instead,
//! through `COOKIE_OWNER`, filled when the socket is seen in process context.
//! Every tgid and tid is numbered in the tracer's own PID namespace
//! (`common::current`), so a tracer in a container filters and reports the
//! pids it knows.
//!
//! Events go to the ring buffer of the CPU the program runs on (`RINGS`, an
//! array of rings indexed by CPU id, filled by userspace), so CPUs never
//! contend for one ring's lock; userspace merges the rings by timestamp.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]

#[cfg(target_arch = "bpf")]
mod common;
#[cfg(target_arch = "bpf")]
mod probes;

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

/// On the host this binary is empty: the real one is built for bpfel by
/// tracer-user's build.rs.
#[cfg(not(target_arch = "bpf"))]
fn main() {}
