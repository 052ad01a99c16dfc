//! Which helpers this kernel lets tracing programs call, found by loading
//! a four-instruction program per helper, never from the version number (a
//! distribution kernel may carry backports). The answers become load-time
//! constants of the real programs (`KernelAbi`), so the verifier drops the
//! calls a kernel does not have, instead of refusing the whole program.
//!
//! aya has no API to load a hand-made program, hence the `bpf(2)` call here.
use super::btf::Btf;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_TYPE_TRACING: u32 = 26;
const BPF_TRACE_RAW_TP: u32 = 23;

const FUNC_GET_SOCKET_COOKIE: i32 = 46;
const FUNC_GET_CURRENT_TASK_BTF: i32 = 158;
const FUNC_TASK_PT_REGS: i32 = 175;

/// What the probes found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Helpers {
    /// `bpf_get_socket_cookie` from a tp_btf program (Linux 5.12+).
    pub socket_cookie: bool,
    /// `bpf_get_current_task_btf` then `bpf_task_pt_regs` (Linux 5.15+).
    pub task_pt_regs: bool,
}

/// One BPF instruction: opcode, registers (src << 4 | dst), offset, imm.
fn insn(code: u8, regs: u8, off: i16, imm: i32) -> u64 {
    u64::from(code)
        | u64::from(regs) << 8
        | u64::from(off as u16) << 16
        | u64::from(imm as u32) << 32
}

fn call(helper: i32) -> u64 {
    insn(0x85, 0, 0, helper)
}

/// `r0 = 0; exit`.
const RETURN_0: [u64; 2] = [0xb7, 0x95];

/// Asks each helper of [`Helpers`] with a tp_btf program on
/// `inet_sock_set_state` (which every tracer run loads anyway). When even
/// a program without helpers does not load (no privilege, no BTF id), the
/// probe can tell nothing: all helpers are assumed, and the real load
/// reports the real reason.
pub fn probe(btf: &Btf) -> Helpers {
    let all = Helpers {
        socket_cookie: true,
        task_pt_regs: true,
    };
    let Some(target) = btf.typedef_id("btf_trace_inet_sock_set_state") else {
        return all;
    };
    if !loads(target, &RETURN_0) {
        return all;
    }
    // r1 = ctx[0] (the typed `struct sock *`); call.
    let cookie = [insn(0x79, 0x11, 0, 0), call(FUNC_GET_SOCKET_COOKIE)];
    // call; r1 = r0; call.
    let regs = [
        call(FUNC_GET_CURRENT_TASK_BTF),
        insn(0xbf, 0x01, 0, 0),
        call(FUNC_TASK_PT_REGS),
    ];
    Helpers {
        socket_cookie: loads(target, &[&cookie[..], &RETURN_0].concat()),
        task_pt_regs: loads(target, &[&regs[..], &RETURN_0].concat()),
    }
}

/// `union bpf_attr` for BPF_PROG_LOAD, up to `attach_btf_id`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
}

fn loads(attach_btf_id: u32, insns: &[u64]) -> bool {
    let license = c"GPL";
    let attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_TRACING,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: license.as_ptr() as u64,
        expected_attach_type: BPF_TRACE_RAW_TP,
        attach_btf_id,
        ..Default::default()
    };
    // SAFETY: `attr` is a valid BPF_PROG_LOAD attribute of the size
    // passed, and the pointers in it outlive the call.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_LOAD,
            &attr as *const ProgLoadAttr,
            std::mem::size_of::<ProgLoadAttr>(),
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: a file descriptor this call owns.
    unsafe { libc::close(fd as libc::c_int) };
    true
}

#[cfg(test)]
mod tests {
    #[test]
    fn instructions_are_encoded_as_the_kernel_reads_them() {
        // r1 = *(u64 *)(r1 + 0)
        assert_eq!(super::insn(0x79, 0x11, 0, 0), 0x1179);
        assert_eq!(super::call(46), 0x2e_0000_0085);
        assert_eq!(super::insn(0x61, 0x21, -8, 0) >> 16 & 0xffff, 0xfff8);
    }

    /// This kernel (6.18) has both helpers; the probe must say so, or every
    /// run here would take the pre-5.12 paths.
    #[test]
    fn this_kernel_has_both_helpers() {
        if !crate::preflight::has_bpf_privilege() {
            println!("skipped: no CAP_BPF");
            return;
        }
        let Ok(Ok(btf)) = super::Btf::from_sys_fs() else {
            println!("skipped: /sys/kernel/btf/vmlinux not readable");
            return;
        };
        let target = btf.typedef_id("btf_trace_inet_sock_set_state").unwrap();
        assert!(super::loads(target, &super::RETURN_0));
        let h = super::probe(&btf);
        assert!(h.socket_cookie && h.task_pt_regs, "{h:?}");
        // A helper that exists nowhere must not load.
        let bogus = [&[super::call(100_000)][..], &super::RETURN_0].concat();
        assert!(!super::loads(target, &bogus));
    }
}
