//! Just enough of a BTF reader to find member offsets of kernel structs
//! and which raw tracepoints the kernel has.
//!
//! Rust eBPF has no CO-RE relocations, so the offsets that move between
//! kernels (`sock_common.skc_v6_daddr`, `sock.sk_protocol`) are looked up
//! here in `/sys/kernel/btf/vmlinux` and handed to the programs as globals.
use thiserror::Error;
use tracer_ebpf::{KernelAbi, SockOffsets};

#[derive(Debug, Error)]
pub enum BtfError {
    #[error("not a BTF blob (bad magic or header)")]
    BadHeader,
    #[error("BTF is truncated")]
    Truncated,
    #[error("BTF type kind {0} is unknown to this reader")]
    UnknownKind(u32),
    #[error("BTF has no struct {0}")]
    NoStruct(String),
    #[error("BTF struct {0} has no member {1}")]
    NoMember(String, String),
}

const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;

/// One type of the blob: where its record is, and the words we read.
#[derive(Clone, Copy)]
struct TypeRec {
    kind: u8,
    /// With kind_flag, a member's offset word holds a bitfield size on top.
    kflag: bool,
    vlen: u16,
    name_off: u32,
    /// A composite's size, or the id a typedef or qualifier names.
    size_or_type: u32,
    /// Offset of the record's first member (after its 12-byte head) in the
    /// type section.
    at: u32,
}

/// A BTF blob with an index of its types by id. Nothing is copied out per
/// type or member: names are compared in place when asked for. A kernel's
/// BTF has ~100k types; building maps of owned names for all of them took
/// 20 ms of every start-up, for the 6 offsets the programs need.
pub struct Btf {
    data: Vec<u8>,
    types: std::ops::Range<usize>,
    strings: std::ops::Range<usize>,
    /// Index by type id (id 0, void, has no record).
    recs: Vec<TypeRec>,
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, BtfError> {
    let b = data.get(at..at + 4).ok_or(BtfError::Truncated)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

impl Btf {
    pub fn from_sys_fs() -> std::io::Result<Result<Self, BtfError>> {
        std::fs::read("/sys/kernel/btf/vmlinux").map(Self::parse)
    }

    /// Indexes a little-endian BTF blob (the host's endianness on x86/arm).
    pub fn parse(data: Vec<u8>) -> Result<Self, BtfError> {
        if data.get(0..2) != Some(&[0x9f, 0xeb]) {
            return Err(BtfError::BadHeader);
        }
        let hdr_len = u32_at(&data, 4)? as usize;
        let (type_off, type_len) = (u32_at(&data, 8)? as usize, u32_at(&data, 12)? as usize);
        let (str_off, str_len) = (u32_at(&data, 16)? as usize, u32_at(&data, 20)? as usize);
        let types = hdr_len + type_off..hdr_len + type_off + type_len;
        let strings = hdr_len + str_off..hdr_len + str_off + str_len;
        if data.get(types.clone()).is_none() || data.get(strings.clone()).is_none() {
            return Err(BtfError::Truncated);
        }
        let t = &data[types.clone()];
        let mut recs = vec![TypeRec {
            kind: 0,
            kflag: false,
            vlen: 0,
            name_off: 0,
            size_or_type: 0,
            at: 0,
        }];
        let mut at = 0usize;
        while at < t.len() {
            let name_off = u32_at(t, at)?;
            let info = u32_at(t, at + 4)?;
            let size_or_type = u32_at(t, at + 8)?;
            let (kind, vlen) = ((info >> 24) & 0x1f, info & 0xffff);
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen as usize,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen as usize,
                2 | 7..=12 | 16 | 18 => 0,
                other => return Err(BtfError::UnknownKind(other)),
            };
            recs.push(TypeRec {
                kind: kind as u8,
                kflag: info >> 31 == 1,
                vlen: vlen as u16,
                name_off,
                size_or_type,
                at: (at + 12) as u32,
            });
            at += 12 + extra;
        }
        if at != t.len() {
            return Err(BtfError::Truncated);
        }
        Ok(Btf {
            data,
            types,
            strings,
            recs,
        })
    }

    /// The NUL-terminated name at `off` of the string section.
    fn name(&self, off: u32) -> &[u8] {
        let strings = &self.data[self.strings.clone()];
        let tail = strings.get(off as usize..).unwrap_or_default();
        let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
        &tail[..end]
    }

    /// The first struct called `name`.
    fn struct_id(&self, name: &str) -> Option<u32> {
        let id = self.recs.iter().position(|r| {
            u32::from(r.kind) == KIND_STRUCT && self.name(r.name_off) == name.as_bytes()
        })?;
        Some(id as u32)
    }

    /// Whether the blob has a typedef called `name`.
    pub fn has_typedef(&self, name: &str) -> bool {
        self.recs
            .iter()
            .any(|r| u32::from(r.kind) == KIND_TYPEDEF && self.name(r.name_off) == name.as_bytes())
    }

    /// Whether the kernel has raw tracepoint `name` (e.g. `sock_send_length`):
    /// every tracepoint declares a typedef `btf_trace_<name>`, the very type
    /// a `tp_btf` program is loaded against, so its presence is exactly
    /// whether the program can attach.
    pub fn has_raw_tracepoint(&self, name: &str) -> bool {
        self.has_typedef(&format!("btf_trace_{name}"))
    }

    /// (name offset, type id, bit offset) of every member of composite `id`.
    fn members(&self, id: u32) -> impl Iterator<Item = (u32, u32, u32)> + '_ {
        let rec = self
            .recs
            .get(id as usize)
            .copied()
            .filter(|r| matches!(u32::from(r.kind), KIND_STRUCT | KIND_UNION));
        let t = &self.data[self.types.clone()];
        let (at, n) = rec.map_or((0, 0), |r| (r.at as usize, r.vlen as usize));
        (0..n).filter_map(move |i| {
            let m = at + 12 * i;
            let raw = u32_at(t, m + 8).ok()?;
            let bits = if rec.is_some_and(|r| r.kflag) {
                raw & 0x00ff_ffff
            } else {
                raw
            };
            Some((u32_at(t, m).ok()?, u32_at(t, m + 4).ok()?, bits))
        })
    }

    /// Byte offset of `member` in struct `name`, looking through anonymous
    /// struct and union members.
    pub fn member_offset(&self, name: &str, member: &str) -> Result<u32, BtfError> {
        self.member_path_offset(name, &[member])
    }

    /// Byte offset of a nested member, e.g. `sock` `["sk_lock", "owned"]`,
    /// following typedefs between the steps.
    pub fn member_path_offset(&self, name: &str, path: &[&str]) -> Result<u32, BtfError> {
        let mut id = self
            .struct_id(name)
            .ok_or_else(|| BtfError::NoStruct(name.into()))?;
        let mut bits = 0;
        for member in path {
            let (offset, type_id) = self
                .find(self.resolve(id), member, 0)
                .ok_or_else(|| BtfError::NoMember(name.into(), path.join(".")))?;
            bits += offset;
            id = type_id;
        }
        Ok(bits / 8)
    }

    /// The type behind a chain of typedefs and qualifiers.
    fn resolve(&self, mut id: u32) -> u32 {
        // Bounded: a malformed blob could hold a cycle.
        for _ in 0..16 {
            match self.recs.get(id as usize) {
                Some(r)
                    if matches!(u32::from(r.kind), KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST) =>
                {
                    id = r.size_or_type;
                }
                _ => break,
            }
        }
        id
    }

    /// (bit offset, type id) of `member` in composite `id`; `depth` bounds
    /// the descent into anonymous members (a malformed blob could loop).
    fn find(&self, id: u32, member: &str, depth: u32) -> Option<(u32, u32)> {
        if depth > 16 {
            return None;
        }
        for (name_off, type_id, bits) in self.members(id) {
            let name = self.name(name_off);
            if name == member.as_bytes() {
                return Some((bits, type_id));
            }
            if name.is_empty()
                && let Some((inner, type_id)) = self.find(self.resolve(type_id), member, depth + 1)
            {
                return Some((bits + inner, type_id));
            }
        }
        None
    }

    /// Whether the kernel has function `name` in its BTF: what a trampoline
    /// is loaded against (a function the compiler inlined everywhere has
    /// none).
    pub fn has_func(&self, name: &str) -> bool {
        self.recs
            .iter()
            .any(|r| u32::from(r.kind) == KIND_FUNC && self.name(r.name_off) == name.as_bytes())
    }

    /// The id of typedef `name` (e.g. `btf_trace_inet_sock_set_state`, the
    /// type a tp_btf program is loaded against).
    pub fn typedef_id(&self, name: &str) -> Option<u32> {
        let id = self.recs.iter().position(|r| {
            u32::from(r.kind) == KIND_TYPEDEF && self.name(r.name_off) == name.as_bytes()
        })?;
        Some(id as u32)
    }

    /// The value of enum constant `name` (C's enum constants share one
    /// namespace, so the enum's own name is not needed).
    pub fn enum_value(&self, name: &str) -> Option<i64> {
        let t = &self.data[self.types.clone()];
        self.recs
            .iter()
            .filter(|r| u32::from(r.kind) == KIND_ENUM)
            .find_map(|r| {
                (0..r.vlen as usize).find_map(|i| {
                    let m = r.at as usize + 8 * i;
                    let value = i64::from(u32_at(t, m + 4).ok()? as i32);
                    (self.name(u32_at(t, m).ok()?) == name.as_bytes()).then_some(value)
                })
            })
    }

    /// Size in bytes of struct `name`.
    pub fn struct_size(&self, name: &str) -> Option<u32> {
        let id = self.struct_id(name)?;
        Some(self.recs[id as usize].size_or_type)
    }
}

/// The offsets the programs need, from this kernel's BTF.
pub fn sock_offsets(btf: &Btf) -> Result<SockOffsets, BtfError> {
    Ok(SockOffsets {
        skc_v6_daddr: btf.member_offset("sock_common", "skc_v6_daddr")?,
        skc_v6_rcv_saddr: btf.member_offset("sock_common", "skc_v6_rcv_saddr")?,
        sk_protocol: btf.member_offset("sock", "sk_protocol")?,
        // u16 since Linux 5.6; a byte-aligned 8-bit bitfield before.
        sk_protocol_size: 2,
        sk_err: btf.member_offset("sock", "sk_err")?,
        sk_lock_owned: btf.member_path_offset("sock", &["sk_lock", "owned"])?,
        // Optional: without it the programs ask the helper for the cookie.
        skc_cookie: btf.member_offset("sock_common", "skc_cookie").unwrap_or(0),
    })
}

/// The layouts the send/recv functions' programs read (see `KernelAbi`);
/// the helper fields are left as they are, for the loader's probe to set.
/// A field missing from this kernel's BTF leaves what needs it unknown:
/// payload heads (iterator), fds (task stack), never a wrong read.
pub fn kernel_abi(btf: &Btf) -> KernelAbi {
    let mut abi = KernelAbi::DEFAULT;
    let off = |s: &str, m: &str| btf.member_offset(s, m).ok();
    abi.task_stack = off("task_struct", "stack").unwrap_or(0);
    abi.socket_sk = off("socket", "sk").unwrap_or(0);
    // `iter_type`, an enum, from 5.14; before, `type`, a bitmask that also
    // holds the direction.
    let (ty, mask) = match off("iov_iter", "iter_type") {
        Some(o) => (Some(o), 0),
        None => (off("iov_iter", "type"), 1),
    };
    // `__iov` from 6.4; `iov` before; one union with `ubuf` either way.
    let iov = off("iov_iter", "__iov")
        .or_else(|| off("iov_iter", "iov"))
        .or_else(|| off("iov_iter", "ubuf"));
    let value = |n: &str| btf.enum_value(n).and_then(|v| u32::try_from(v).ok());
    if let (Some(msg_iter), Some(ty), Some(count), Some(iov), Some(iovec)) = (
        off("msghdr", "msg_iter"),
        ty,
        off("iov_iter", "count"),
        iov,
        value("ITER_IOVEC"),
    ) {
        abi.msg_iter = msg_iter;
        abi.iter_type = ty;
        abi.iter_type_mask = mask;
        abi.iter_iovec = iovec;
        abi.iter_ubuf = value("ITER_UBUF").unwrap_or(u32::MAX);
        abi.iter_count = count;
        abi.iter_iov = iov;
    }
    abi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for blob in [
            &[][..],
            &[0x9f, 0xeb, 1, 0],
            &[0u8; 64],
            &[0x9f, 0xeb, 1, 0, 24, 0, 0, 0],
        ] {
            assert!(Btf::parse(blob.to_vec()).is_err());
        }
    }

    /// A hand-made blob: an int, a struct `sock` and a typedef of the int
    /// called `btf_trace_sock_send_length`.
    fn tiny_blob() -> Vec<u8> {
        let strings = b"\0int\0sock\0btf_trace_sock_send_length\0".to_vec();
        let word = |v: u32| v.to_le_bytes();
        let mut types = Vec::new();
        // [1] int "int", 4 bytes, 32 bits.
        for w in [1, KIND_INT << 24, 4, 32] {
            types.extend(word(w));
        }
        // [2] struct "sock", 8 bytes, no members.
        for w in [5, KIND_STRUCT << 24, 8] {
            types.extend(word(w));
        }
        // [3] typedef "btf_trace_sock_send_length" -> [1].
        for w in [10, KIND_TYPEDEF << 24, 1] {
            types.extend(word(w));
        }
        let mut blob = vec![0x9f, 0xeb, 1, 0];
        for w in [
            24,
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            blob.extend(word(w));
        }
        blob.extend(types);
        blob.extend(strings);
        blob
    }

    #[test]
    fn a_raw_tracepoint_is_its_btf_trace_typedef() {
        let btf = Btf::parse(tiny_blob()).expect("tiny blob parses");
        assert!(btf.has_raw_tracepoint("sock_send_length"));
        assert!(btf.has_typedef("btf_trace_sock_send_length"));
        // A struct of that name is not a typedef; a prefix is not a name.
        assert!(!btf.has_typedef("sock"));
        assert!(!btf.has_raw_tracepoint("sock_send"));
        assert!(!btf.has_raw_tracepoint("sock_recv_length"));
        assert_eq!(btf.struct_size("sock"), Some(8));
    }

    #[test]
    fn this_kernel_has_the_tracepoints_the_programs_attach_to() {
        let Ok(Ok(btf)) = Btf::from_sys_fs() else {
            println!("skipped: /sys/kernel/btf/vmlinux not readable");
            return;
        };
        assert!(btf.has_raw_tracepoint("inet_sock_set_state"));
        assert!(btf.has_raw_tracepoint("tcp_destroy_sock"));
        assert!(!btf.has_raw_tracepoint("no_such_tracepoint_here"));
    }

    #[test]
    fn finds_the_iterator_layout_of_this_kernel() {
        let Ok(Ok(btf)) = Btf::from_sys_fs() else {
            println!("skipped: /sys/kernel/btf/vmlinux not readable");
            return;
        };
        let abi = kernel_abi(&btf);
        // This kernel (6.18): `iter_type` is an enum with ITER_UBUF (whose
        // values moved between releases: here ITER_UBUF is 0, ITER_IOVEC 1),
        // and `ubuf` shares its offset with `__iov`.
        assert_eq!(abi.iter_type_mask, 0);
        assert_eq!(
            i64::from(abi.iter_iovec),
            btf.enum_value("ITER_IOVEC").unwrap()
        );
        assert_ne!(abi.iter_iovec, abi.iter_ubuf);
        assert_eq!(
            i64::from(abi.iter_ubuf),
            btf.enum_value("ITER_UBUF").unwrap()
        );
        assert_eq!(abi.iter_iov, btf.member_offset("iov_iter", "ubuf").unwrap());
        assert!(abi.msg_iter >= 16 && abi.socket_sk > 0 && abi.task_stack > 0);
        assert!(btf.typedef_id("btf_trace_inet_sock_set_state").is_some());
    }

    #[test]
    fn finds_sock_offsets_in_this_kernel() {
        let Ok(Ok(btf)) = Btf::from_sys_fs() else {
            println!("skipped: /sys/kernel/btf/vmlinux not readable");
            return;
        };
        let offs = sock_offsets(&btf).expect("sock offsets");
        // The head of sock_common never moved: skc_family sits at 16.
        assert_eq!(btf.member_offset("sock_common", "skc_family").unwrap(), 16);
        assert_eq!(btf.member_offset("sock_common", "skc_dport").unwrap(), 12);
        assert!(offs.skc_v6_rcv_saddr == offs.skc_v6_daddr + 16);
        assert!(offs.sk_protocol > offs.skc_v6_rcv_saddr);
        assert!(btf.struct_size("sock").unwrap() > offs.sk_protocol);
        // socket_lock_t is a typedef of an anonymous struct: slock, owned.
        let lock = btf.member_offset("sock", "sk_lock").unwrap();
        assert!(offs.sk_lock_owned > lock && offs.sk_lock_owned < lock + 64);
        assert!(offs.sk_err > offs.skc_v6_rcv_saddr);
        assert!(offs.skc_cookie > 16 && offs.skc_cookie.is_multiple_of(8));
        println!(
            "sk_err {} sk_lock.owned {}",
            offs.sk_err, offs.sk_lock_owned
        );
    }
}
