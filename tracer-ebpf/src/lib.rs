//! The event ABI shared by the eBPF programs and userspace.
//!
//! Every record in the ring buffers starts with [`EventHeader`]; its `kind`
//! says which payload follows. All fields are fixed-width, every struct is
//! `#[repr(C)]` with explicit padding, so both sides agree byte for byte.
#![no_std]

/// Kinds of kernel events. Discriminants are part of the ABI.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A TCP connect's handshake ended (established or failed):
    /// [`ConnectEvent`], stamped at its SYN_SENT.
    Connect = 1,
    /// A TCP state change: [`StateEvent`].
    State = 2,
    /// `sock_sendmsg` sent bytes (or failed): [`IoEvent`].
    Send = 3,
    /// `sock_recvmsg` received bytes (or failed): [`IoEvent`].
    Recv = 4,
    /// `close(2)` released a TCP socket (its last fd): [`CloseEvent`],
    /// stamped at the state change that close made.
    Close = 5,
    /// The kernel destroyed a TCP socket: [`CloseEvent`] with `fd` -1.
    Destroy = 6,
    /// First sight of a socket that was not connected under our eyes (it
    /// existed before tracing started, or is UDP): [`SocketEvent`].
    Socket = 7,
    /// A send or recv with the first bytes it moved (attach mode only),
    /// in place of its `Send`/`Recv` record: [`PayloadEvent`].
    Payload = 8,
    /// libc `getaddrinfo` was called: [`DnsEvent`] with the host.
    DnsStart = 9,
    /// libc `getaddrinfo` returned: [`DnsEvent`] with result and duration.
    DnsDone = 10,
    /// TCP retransmitted a segment of the socket: [`TcpSignalEvent`].
    Retransmit = 11,
    /// The socket sent a reset: [`TcpSignalEvent`].
    ResetSent = 12,
    /// The socket received a reset: [`TcpSignalEvent`].
    ResetReceived = 13,
    /// The first I/O of a segment (attach without `--events`): its head, and
    /// the summary of the socket's segment it ends: [`SegmentEvent`].
    Segment = 14,
    /// Plaintext that the application handed to, or got from, its TLS
    /// library (OpenSSL uprobes, attach): [`PayloadEvent`], stamped when
    /// the call returned, joined to its socket by the send/recv that the
    /// same thread made inside the call. Stands for no kernel I/O.
    /// (Not 15: `lost_slot::FOLLOW` has that slot.)
    Plaintext = 16,
    /// A socket known by a tracer-made id (kernels without the cookie
    /// helper) has a cookie now: [`CookieAliasEvent`]. Written once per
    /// socket, when a hook first finds `skc_cookie` set (trace's client
    /// asks for `SO_COOKIE` after its connect). (Not 17: a lost slot.)
    CookieAlias = 18,
}

impl EventKind {
    pub fn from_u32(v: u32) -> Option<Self> {
        Some(match v {
            1 => Self::Connect,
            2 => Self::State,
            3 => Self::Send,
            4 => Self::Recv,
            5 => Self::Close,
            6 => Self::Destroy,
            7 => Self::Socket,
            8 => Self::Payload,
            9 => Self::DnsStart,
            10 => Self::DnsDone,
            11 => Self::Retransmit,
            12 => Self::ResetSent,
            13 => Self::ResetReceived,
            14 => Self::Segment,
            16 => Self::Plaintext,
            18 => Self::CookieAlias,
            _ => return None,
        })
    }
}

/// Common start of every event.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EventHeader {
    /// An [`EventKind`] discriminant.
    pub kind: u32,
    /// CPU the program ran on (diagnostics only).
    pub cpu: u32,
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC in ns.
    pub ts_ns: u64,
    /// Process that owns the socket (not always `current`: see ARCHITECTURE.md).
    pub tgid: u32,
    /// Thread that ran the syscall, or 0 in softirq context.
    pub tid: u32,
    /// `bpf_get_socket_cookie`; 0 when the socket is not known.
    pub cookie: u64,
}

/// Address and ports of a socket. IPv4 addresses use the first 4 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FourTuple {
    /// `AF_INET` (2) or `AF_INET6` (10).
    pub family: u16,
    /// Local port, host byte order.
    pub sport: u16,
    /// Remote port, host byte order.
    pub dport: u16,
    /// `IPPROTO_TCP` (6) or `IPPROTO_UDP` (17); 0 when unknown.
    pub protocol: u16,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
}

/// A TCP connect, seen from the socket's states alone: `header.ts_ns` and
/// `header.tid` are those of CLOSE -> SYN_SENT (inside connect(2), in the
/// caller's thread); the event is written when the handshake ends.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConnectEvent {
    pub header: EventHeader,
    /// The fd passed to connect(2) (or to a TCP Fast Open sendto/sendmsg),
    /// from the syscall's saved registers; -1 when unknown (not x86_64).
    pub fd: i32,
    /// How the handshake ended: 0 established; `-errno` of the socket's
    /// error when it failed (-111 refused, -110 timed out...);
    /// [`CONNECT_ABANDONED`] when the socket was closed while the handshake
    /// was still in progress, without an error.
    pub ret: i32,
    /// SYN_SENT to ESTABLISHED (or to CLOSE).
    pub duration_ns: u64,
    /// The socket's addresses when the handshake ended.
    pub tuple: FourTuple,
}

/// [`ConnectEvent::ret`] of a handshake that the process gave up on:
/// -EINPROGRESS, as connect(2) itself says of a handshake not yet done.
pub const CONNECT_ABANDONED: i32 = -115;

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StateEvent {
    pub header: EventHeader,
    /// `TCP_*` states as in `include/net/tcp_states.h`.
    pub old_state: u32,
    pub new_state: u32,
    pub tuple: FourTuple,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoEvent {
    pub header: EventHeader,
    /// Bytes moved, or `-errno`.
    pub bytes: i32,
    /// `IPPROTO_TCP` or `IPPROTO_UDP`.
    pub protocol: u16,
    pub family: u16,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CloseEvent {
    pub header: EventHeader,
    /// The fd passed to close(2); -1 for [`EventKind::Destroy`].
    pub fd: i32,
    pub _pad: u32,
}

/// `header.cookie` (a tracer-made id) is the socket with cookie `skc_cookie`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CookieAliasEvent {
    pub header: EventHeader,
    pub skc_cookie: u64,
}

/// A retransmit or a reset on a traced socket.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TcpSignalEvent {
    pub header: EventHeader,
    /// The socket's `TCP_*` state when it happened.
    pub state: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketEvent {
    pub header: EventHeader,
    pub tuple: FourTuple,
}

/// Most bytes of a payload head ever copied out of the kernel.
pub const PAYLOAD_HEAD: usize = 128;
/// Most bytes of a host name read at `getaddrinfo`.
pub const DNS_HOST: usize = 64;

/// `PayloadEvent::direction`.
pub const DIRECTION_SEND: u32 = 0;
pub const DIRECTION_RECV: u32 = 1;

/// One send or recv together with the head of its user buffer, read in the
/// same syscall right after the socket layer moved the bytes (attach mode).
/// It stands for the [`IoEvent`] of that I/O too: one ring record per I/O,
/// not two, halves the ring-buffer work on the hottest path.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadEvent {
    pub header: EventHeader,
    /// Bytes the send or recv moved (the whole I/O, not just the head).
    pub len: u32,
    /// [`DIRECTION_SEND`] or [`DIRECTION_RECV`].
    pub direction: u32,
    /// Valid bytes in `data`: at most [`PAYLOAD_HEAD`].
    pub captured: u32,
    /// As in [`IoEvent`].
    pub protocol: u16,
    pub family: u16,
    pub data: [u8; PAYLOAD_HEAD],
}

/// One libc `getaddrinfo` call of a traced process.
/// A socket's I/O in one direction since its segment began, as kept in the
/// `SEGMENTS` map (by socket cookie) and copied into the next
/// [`SegmentEvent`] of the socket. A segment begins where a message can
/// begin: at a change of direction, or while the segment has moved fewer
/// than [`PAYLOAD_HEAD`] bytes (a head written in pieces). `ios == 0`: none.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SegmentSummary {
    /// Its first I/O (the `ts_ns` of the record that began it).
    pub start_ns: u64,
    /// Its last I/O.
    pub end_ns: u64,
    /// Its second I/O (0 with one): a response head read alone, then its
    /// body a delayed ACK later, shows here.
    pub second_ns: u64,
    /// The longest time between two of its I/Os, and how many bytes had
    /// moved before it.
    pub max_gap_ns: u64,
    pub gap_at: u64,
    pub bytes: u64,
    pub ios: u32,
    pub direction: u32,
    pub first_len: u32,
    pub second_len: u32,
}

/// The I/O that begins a segment, with its head (as [`PayloadEvent`]), and
/// the summary of the segment of the same socket that it ends.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentEvent {
    pub header: EventHeader,
    pub len: u32,
    pub direction: u32,
    pub captured: u32,
    pub protocol: u16,
    pub family: u16,
    pub prev: SegmentSummary,
    pub data: [u8; PAYLOAD_HEAD],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsEvent {
    pub header: EventHeader,
    /// `getaddrinfo`'s return value (0 or an `EAI_*` code); 0 at start.
    pub ret: i32,
    pub _pad: u32,
    /// Time inside `getaddrinfo`; 0 at start.
    pub duration_ns: u64,
    /// The node argument, NUL-terminated unless 64 bytes long.
    pub host: [u8; DNS_HOST],
}

/// Slots of the `LOST` per-CPU array: records that found the ring buffer
/// full. An event of kind `k` is counted in slot `k` (an [`EventKind`]
/// discriminant), so that a lost send or recv can be told from a lost state
/// change, and the shortfall of one kind checked against its counter.
pub mod lost_slot {
    /// Payload heads (attach) that did not fit; the plain I/O event was then
    /// tried, and counted under its own kind if it did not fit either.
    pub const HEADS: u32 = 0;
    /// Children of a followed process that the full `TRACED_TGIDS` could
    /// not take (they run untraced).
    pub const FOLLOW: u32 = 15;
    /// Children of a followed process born into a PID namespace below the
    /// tracer's (`unshare --pid --fork`, a container runtime): when the
    /// tracer runs in a namespace of its own, they are out of its sight.
    pub const FOLLOW_NESTED: u32 = 17;
    /// Size of the array: every kind fits below it.
    pub const SLOTS: u32 = 19;
}

/// Bits of the `TRACED_TGIDS` value.
pub mod tgid_flags {
    /// Trace this process's sockets.
    pub const TRACED: u8 = 1;
    /// Also copy payload heads out (attach mode: request reconstruction).
    pub const CAPTURE_HEADS: u8 = 2;
    /// Take in the processes it forks (with the same flags), from their
    /// first instruction, and drop them from the set when they exit.
    pub const FOLLOW: u8 = 4;
    /// With `CAPTURE_HEADS`: one record per segment instead of one per I/O
    /// (see [`SegmentEvent`]); the I/Os inside a segment only update the
    /// socket's `SEGMENTS` entry.
    pub const SEGMENTS: u8 = 8;
    /// With `CAPTURE_HEADS`: the process's TLS library is probed, so its
    /// send/recv hooks note the socket of an SSL call in progress on the
    /// thread. Processes without it pay nothing for the lookup.
    pub const TLS_PLAINTEXT: u8 = 16;
}

/// Slots of the `TASK_OFFSETS` array (byte offsets from the kernel's BTF)
/// that the fork and exit programs read; 0 = unknown.
pub mod task_offset {
    /// `task_struct.tgid`.
    pub const TGID: u32 = 0;
    /// `task_struct.signal` (a pointer).
    pub const SIGNAL: u32 = 1;
    /// `signal_struct.live` (an atomic int: threads not yet exited).
    pub const SIGNAL_LIVE: u32 = 2;
    /// `task_struct.thread_pid` (a `struct pid *`): a forked child's pid
    /// as the tracer's own PID namespace numbers it.
    pub const THREAD_PID: u32 = 3;
    /// `pid.level`: how deep the pid's namespace is (0 = initial).
    pub const PID_LEVEL: u32 = 4;
    /// `pid.numbers`: one `struct upid` (its `nr` first) per level.
    pub const PID_NUMBERS: u32 = 5;
    /// The size of `struct upid`, the stride of `pid.numbers`.
    pub const UPID_SIZE: u32 = 6;
    pub const SLOTS: u32 = 7;
}

/// The PID namespace whose numbers the programs use for every tgid and tid
/// (the tracer's own, from a stat of `/proc/self/ns/pid`), set by userspace
/// before load. `ino == 0`: the initial namespace, where the programs take
/// `bpf_get_current_pid_tgid()` as ever; otherwise they ask
/// `bpf_get_ns_current_pid_tgid(dev, ino)`, and a task of another namespace
/// has no pid there and is never traced.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PidNs {
    /// The nsfs device as the kernel encodes a `dev_t` (major << 20 | minor).
    pub dev: u64,
    pub ino: u64,
}

impl PidNs {
    pub const INITIAL: Self = Self { dev: 0, ino: 0 };
}

/// Offsets into `struct sock` that differ between kernels. Userspace reads
/// them from the kernel's BTF and writes them into the program's globals.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockOffsets {
    pub skc_v6_daddr: u32,
    pub skc_v6_rcv_saddr: u32,
    pub sk_protocol: u32,
    /// Size of `sk_protocol` in bytes (1 before Linux 5.6, then 2).
    pub sk_protocol_size: u32,
    /// `sock.sk_err` (int): why a failed handshake failed.
    pub sk_err: u32,
    /// `sock.sk_lock.owned` (int): set while a task holds the socket in
    /// process context, as close(2) does; 0 in softirq processing.
    pub sk_lock_owned: u32,
    /// `sock_common.skc_cookie` (atomic64): the socket cookie once one was
    /// made, read with a plain load on the per-I/O path; 0: unknown, use
    /// the helper.
    pub skc_cookie: u32,
}

impl SockOffsets {
    /// Linux 6.x on x86_64; used only when BTF cannot be read.
    pub const DEFAULT: Self = Self {
        skc_v6_daddr: 56,
        skc_v6_rcv_saddr: 72,
        sk_protocol: 514,
        sk_protocol_size: 2,
        sk_err: 284,
        sk_lock_owned: 324,
        skc_cookie: 0,
    };
}

/// What this kernel's BPF offers beyond the tracepoints, and the layouts
/// the send/recv functions' arguments have here: userspace fills it before
/// load, from kernel BTF and from loading tiny probe programs (never from
/// the version number). Every field is a load-time constant, so the
/// verifier drops the branches (and helper calls) a kernel cannot take.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KernelAbi {
    /// 1: tracing programs may call `bpf_get_socket_cookie` (Linux 5.12+);
    /// 0: sockets get tracer-made ids instead (see [`OWN_SOCKET_ID`]).
    pub cookie_helper: u32,
    /// 1: `bpf_task_pt_regs` and `bpf_get_current_task_btf` exist (5.15+);
    /// 0: the saved registers are read at the top of `task->stack`.
    pub task_pt_regs_helper: u32,
    /// `task_struct.stack`.
    pub task_stack: u32,
    /// `socket.sk`.
    pub socket_sk: u32,
    /// `msghdr.msg_iter`.
    pub msg_iter: u32,
    /// `iov_iter.type` (a bitmask before 5.14) or `iov_iter.iter_type`
    /// (an enum); its low byte holds the kind either way.
    pub iter_type: u32,
    /// 1: `iter_type` is a bitmask to test with [`Self::iter_iovec`].
    pub iter_type_mask: u32,
    /// `ITER_IOVEC`'s value in this kernel.
    pub iter_iovec: u32,
    /// `ITER_UBUF`'s value (Linux 6.0+); `u32::MAX` where there is none.
    pub iter_ubuf: u32,
    /// `iov_iter.count`.
    pub iter_count: u32,
    /// `iov_iter.iov` / `__iov` / `ubuf`: one union, one offset.
    pub iter_iov: u32,
}

impl KernelAbi {
    /// A kernel with both helpers, and no iterator layouts (no heads from
    /// the send/recv functions).
    pub const DEFAULT: Self = Self {
        cookie_helper: 1,
        task_pt_regs_helper: 1,
        task_stack: 0,
        socket_sk: 0,
        msg_iter: 0,
        iter_type: 0,
        iter_type_mask: 0,
        iter_iovec: u32::MAX,
        iter_ubuf: u32::MAX,
        iter_count: 0,
        iter_iov: 0,
    };
}

/// Set in every socket id that the tracer made itself, on kernels whose
/// tracing programs cannot ask for the socket cookie (before Linux 5.12):
/// kernel cookies count up from 1 and never reach it. Such an id is unique
/// per socket during the tracer's run, not the `SO_COOKIE` value.
pub const OWN_SOCKET_ID: u64 = 1 << 62;

/// Names shared by both sides.
pub mod names {
    /// Array of ring buffers, indexed by CPU id: each program writes its
    /// events to the ring of the CPU it runs on. Userspace creates the rings
    /// and fills every slot before attaching.
    pub const RINGS: &str = "RINGS";
    /// Per-CPU counts of records that found their ring buffer full, by
    /// [`super::lost_slot`].
    pub const LOST: &str = "LOST";
    /// Set of traced process ids (tgid -> [`super::tgid_flags`] bits).
    pub const TRACED_TGIDS: &str = "TRACED_TGIDS";
    /// One slot, `flags << 32 | tgid`, when exactly one process is traced
    /// (every command today): an array load instead of a hash lookup on the
    /// path that every process of the machine takes. 0 = use the set.
    pub const TRACED_ONE: &str = "TRACED_ONE";
    /// Socket cookie -> its current [`super::SegmentSummary`] (attach).
    pub const SEGMENTS: &str = "SEGMENTS";
    /// Array of `task_struct` offsets by [`super::task_offset`] slot.
    pub const TASK_OFFSETS: &str = "TASK_OFFSETS";
    /// Hash of processes taken in by a fork: child tgid -> parent tgid.
    pub const FOLLOWED: &str = "FOLLOWED";
    /// Hash of followed processes that exited: tgid -> `comm` (16 bytes).
    pub const EXIT_COMM: &str = "EXIT_COMM";
    /// The global holding [`super::PidNs`].
    pub const PID_NS: &str = "PID_NS";
    /// The global holding [`super::SockOffsets`].
    pub const SOCK_OFFSETS: &str = "SOCK_OFFSETS";
    /// The global that makes the send/recv programs return at once (the
    /// bench's floor: what the tracepoints cost without the programs).
    pub const BENCH_FLOOR: &str = "BENCH_FLOOR";
    /// A u32 global: 1 when the programs may read the syscall number and
    /// arguments from the saved user registers as x86_64 lays them out.
    /// Userspace sets it on x86_64 only; elsewhere fds stay unknown.
    pub const SYSCALL_REGS_X86_64: &str = "SYSCALL_REGS_X86_64";
    /// The global holding [`super::KernelAbi`].
    pub const KERNEL_ABI: &str = "KERNEL_ABI";
}

pub const AF_INET: u16 = 2;
pub const AF_INET6: u16 = 10;
pub const IPPROTO_TCP: u16 = 6;
pub const IPPROTO_UDP: u16 = 17;

/// `TCP_*` states (include/net/tcp_states.h).
pub mod tcp_state {
    pub const ESTABLISHED: u32 = 1;
    pub const SYN_SENT: u32 = 2;
    pub const SYN_RECV: u32 = 3;
    pub const FIN_WAIT1: u32 = 4;
    pub const FIN_WAIT2: u32 = 5;
    pub const TIME_WAIT: u32 = 6;
    pub const CLOSE: u32 = 7;
    pub const CLOSE_WAIT: u32 = 8;
    pub const LAST_ACK: u32 = 9;
    pub const LISTEN: u32 = 10;
    pub const CLOSING: u32 = 11;
    pub const NEW_SYN_RECV: u32 = 12;

    pub fn name(state: u32) -> &'static str {
        match state {
            ESTABLISHED => "ESTABLISHED",
            SYN_SENT => "SYN_SENT",
            SYN_RECV => "SYN_RECV",
            FIN_WAIT1 => "FIN_WAIT1",
            FIN_WAIT2 => "FIN_WAIT2",
            TIME_WAIT => "TIME_WAIT",
            CLOSE => "CLOSE",
            CLOSE_WAIT => "CLOSE_WAIT",
            LAST_ACK => "LAST_ACK",
            LISTEN => "LISTEN",
            CLOSING => "CLOSING",
            NEW_SYN_RECV => "NEW_SYN_RECV",
            _ => "UNKNOWN",
        }
    }
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all are repr(C), made of integers, with no implicit padding.
    unsafe impl aya::Pod for EventHeader {}
    unsafe impl aya::Pod for ConnectEvent {}
    unsafe impl aya::Pod for StateEvent {}
    unsafe impl aya::Pod for IoEvent {}
    unsafe impl aya::Pod for CloseEvent {}
    unsafe impl aya::Pod for CookieAliasEvent {}
    unsafe impl aya::Pod for SocketEvent {}
    unsafe impl aya::Pod for TcpSignalEvent {}
    unsafe impl aya::Pod for SockOffsets {}
    unsafe impl aya::Pod for PidNs {}
    unsafe impl aya::Pod for KernelAbi {}
    unsafe impl aya::Pod for PayloadEvent {}
    unsafe impl aya::Pod for DnsEvent {}
    unsafe impl aya::Pod for SegmentSummary {}
    unsafe impl aya::Pod for SegmentEvent {}
}

// The ABI has no implicit padding: sizes are sums of fields.
const _: () = assert!(core::mem::size_of::<EventHeader>() == 32);
const _: () = assert!(core::mem::size_of::<FourTuple>() == 40);
const _: () = assert!(core::mem::size_of::<ConnectEvent>() == 32 + 16 + 40);
const _: () = assert!(core::mem::size_of::<StateEvent>() == 32 + 8 + 40);
const _: () = assert!(core::mem::size_of::<IoEvent>() == 40);
const _: () = assert!(core::mem::size_of::<CloseEvent>() == 40);
const _: () = assert!(core::mem::size_of::<CookieAliasEvent>() == 40);
const _: () = assert!(core::mem::size_of::<SocketEvent>() == 72);
const _: () = assert!(core::mem::size_of::<PayloadEvent>() == 32 + 16 + PAYLOAD_HEAD);
const _: () = assert!(core::mem::size_of::<SegmentSummary>() == 64);
const _: () = assert!(core::mem::size_of::<SegmentEvent>() == 32 + 16 + 64 + PAYLOAD_HEAD);
const _: () = assert!(core::mem::size_of::<KernelAbi>() == 44);
const _: () = assert!(core::mem::size_of::<DnsEvent>() == 32 + 16 + DNS_HOST);
