//! Just enough of a BTF reader to find member offsets of kernel structs.
//!
//! Rust eBPF has no CO-RE relocations, so the offsets that move between
//! kernels (`sock_common.skc_v6_daddr`, `sock.sk_protocol`) are looked up
//! here in `/sys/kernel/btf/vmlinux` and handed to the programs as globals.
use std::collections::HashMap;

use thiserror::Error;
use tracer_ebpf::SockOffsets;

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
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;

struct Member {
    name: String,
    type_id: u32,
    bit_offset: u32,
}

struct Composite {
    size: u32,
    members: Vec<Member>,
}

/// Structs and unions of a BTF blob, by type id; plus struct ids by name.
pub struct Btf {
    composites: HashMap<u32, Composite>,
    structs_by_name: HashMap<String, u32>,
    /// Typedef, const and volatile ids -> the type they name, so that a
    /// member typed `socket_lock_t` leads to its anonymous struct.
    aliases: HashMap<u32, u32>,
}

fn u32_at(data: &[u8], at: usize) -> Result<u32, BtfError> {
    let b = data.get(at..at + 4).ok_or(BtfError::Truncated)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn str_at(strings: &[u8], off: u32) -> String {
    let tail = strings.get(off as usize..).unwrap_or_default();
    let end = tail.iter().position(|&b| b == 0).unwrap_or(tail.len());
    String::from_utf8_lossy(&tail[..end]).into_owned()
}

impl Btf {
    pub fn from_sys_fs() -> std::io::Result<Result<Self, BtfError>> {
        std::fs::read("/sys/kernel/btf/vmlinux").map(|d| Self::parse(&d))
    }

    /// Parses a little-endian BTF blob (the host's endianness on x86/arm).
    pub fn parse(data: &[u8]) -> Result<Self, BtfError> {
        if data.get(0..2) != Some(&[0x9f, 0xeb]) {
            return Err(BtfError::BadHeader);
        }
        let hdr_len = u32_at(data, 4)? as usize;
        let (type_off, type_len) = (u32_at(data, 8)? as usize, u32_at(data, 12)? as usize);
        let (str_off, str_len) = (u32_at(data, 16)? as usize, u32_at(data, 20)? as usize);
        let types = data
            .get(hdr_len + type_off..hdr_len + type_off + type_len)
            .ok_or(BtfError::Truncated)?;
        let strings = data
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or(BtfError::Truncated)?;
        let mut btf = Btf {
            composites: HashMap::new(),
            structs_by_name: HashMap::new(),
            aliases: HashMap::new(),
        };
        let (mut at, mut id) = (0usize, 1u32);
        while at < types.len() {
            let name_off = u32_at(types, at)?;
            let info = u32_at(types, at + 4)?;
            let size = u32_at(types, at + 8)?;
            let (kind, vlen, kflag) = ((info >> 24) & 0x1f, info & 0xffff, info >> 31);
            at += 12;
            let extra = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen as usize,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen as usize,
                2 | 7..=12 | 16 | 18 => 0,
                other => return Err(BtfError::UnknownKind(other)),
            };
            if matches!(kind, KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST) {
                // For these kinds the `size` word is the id of the type named.
                btf.aliases.insert(id, size);
            }
            if kind == KIND_STRUCT || kind == KIND_UNION {
                let mut members = Vec::with_capacity(vlen as usize);
                for i in 0..vlen as usize {
                    let m = at + 12 * i;
                    let raw = u32_at(types, m + 8)?;
                    members.push(Member {
                        name: str_at(strings, u32_at(types, m)?),
                        type_id: u32_at(types, m + 4)?,
                        // With kind_flag, the top 8 bits hold a bitfield size.
                        bit_offset: if kflag == 1 { raw & 0x00ff_ffff } else { raw },
                    });
                }
                let name = str_at(strings, name_off);
                if kind == KIND_STRUCT && !name.is_empty() {
                    btf.structs_by_name.entry(name).or_insert(id);
                }
                btf.composites.insert(id, Composite { size, members });
            }
            at += extra;
            id += 1;
        }
        Ok(btf)
    }

    /// Byte offset of `member` in struct `name`, looking through anonymous
    /// struct and union members.
    pub fn member_offset(&self, name: &str, member: &str) -> Result<u32, BtfError> {
        self.member_path_offset(name, &[member])
    }

    /// Byte offset of a nested member, e.g. `sock` `["sk_lock", "owned"]`,
    /// following typedefs between the steps.
    pub fn member_path_offset(&self, name: &str, path: &[&str]) -> Result<u32, BtfError> {
        let mut id = *self
            .structs_by_name
            .get(name)
            .ok_or_else(|| BtfError::NoStruct(name.into()))?;
        let mut bits = 0;
        for member in path {
            let (offset, type_id) = self
                .find(self.resolve(id), member)
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
            match self.aliases.get(&id) {
                Some(&next) => id = next,
                None => break,
            }
        }
        id
    }

    /// (bit offset, type id) of `member` in composite `id`.
    fn find(&self, id: u32, member: &str) -> Option<(u32, u32)> {
        let c = self.composites.get(&id)?;
        for m in &c.members {
            if m.name == member {
                return Some((m.bit_offset, m.type_id));
            }
            if m.name.is_empty()
                && let Some((inner, type_id)) = self.find(self.resolve(m.type_id), member)
            {
                return Some((m.bit_offset + inner, type_id));
            }
        }
        None
    }

    /// Size in bytes of struct `name`.
    pub fn struct_size(&self, name: &str) -> Option<u32> {
        let id = self.structs_by_name.get(name)?;
        self.composites.get(id).map(|c| c.size)
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
    })
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
            assert!(Btf::parse(blob).is_err());
        }
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
        println!(
            "sk_err {} sk_lock.owned {}",
            offs.sk_err, offs.sk_lock_owned
        );
    }
}
