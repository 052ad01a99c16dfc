//! Where tracer-ebpf's `gotls` uprobes go in a Go executable. crypto/tls is compiled into the binary, so the
//! probes sit on the executable's own `crypto/tls.(*Conn).Write` and
//! `(*Conn).Read`, found by name in `.symtab` (which `go build` keeps unless
//! `-ldflags=-s`), and on each of their RET instructions, found by decoding
//! the functions with a real x86 decoder: a 0xC3 byte may sit inside
//! another instruction.
use std::path::Path;

use iced_x86::{Decoder, DecoderOptions, Mnemonic};
use object::{Object, ObjectSection, ObjectSymbol};

const WRITE: &str = "crypto/tls.(*Conn).Write";
const READ: &str = "crypto/tls.(*Conn).Read";
/// The handshakes themselves, run once per connection (`handshakeContext`
/// is entered by every Read and Write: two more uprobe hits per call).
const HANDSHAKES: [&str; 2] = [
    "crypto/tls.(*Conn).clientHandshake",
    "crypto/tls.(*Conn).serverHandshake",
];
/// The raw syscalls under `internal/poll`: where a goroutine that resumed
/// on another thread marks it (see tracer-ebpf's `gotls`).
const SYSCALLS: [&str; 2] = ["syscall.read", "syscall.write"];

/// Where the probes of one Go executable go.
#[derive(Debug, PartialEq)]
pub struct GoTls {
    /// `runtime.buildVersion`, from the build info: `go1.19.8`.
    pub version: String,
    /// (program, file offset) of every probe.
    pub points: Vec<(&'static str, u64)>,
}

impl GoTls {
    /// How many RET instructions are probed.
    pub fn returns(&self) -> usize {
        self.points
            .iter()
            .filter(|(p, _)| p.ends_with("_return"))
            .count()
    }
}

/// Why a Go executable gets no probe.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NoProbe {
    #[error("{0}: no crypto/tls symbols (stripped with -ldflags=-s, or no TLS in it)")]
    NoSymbols(String),
    #[error("{0}: before Go 1.17's register ABI")]
    OldAbi(String),
    #[error("{0}: only x86_64 Go binaries are probed")]
    Arch(String),
    #[error("{0}: cannot decode {1}")]
    Decode(String, &'static str),
}

/// `Ok(None)`: not a Go executable (or unreadable); `Err`: a Go executable
/// that cannot be probed, and why.
pub fn inspect(path: &Path) -> Result<Option<GoTls>, NoProbe> {
    let Ok(data) = std::fs::read(path) else {
        return Ok(None);
    };
    let Ok(obj) = object::File::parse(&*data) else {
        return Ok(None);
    };
    let Some(version) = build_version(&obj) else {
        return Ok(None);
    };
    if obj.architecture() != object::Architecture::X86_64 {
        return Err(NoProbe::Arch(version));
    }
    if !register_abi(&version) {
        return Err(NoProbe::OldAbi(version));
    }
    let (Some(write), Some(read)) = (function(&obj, WRITE), function(&obj, READ)) else {
        return Err(NoProbe::NoSymbols(version));
    };
    let mut points = vec![
        ("tracer_go_tls_write", write.offset),
        ("tracer_go_tls_read", read.offset),
    ];
    for (f, name) in [(&write, WRITE), (&read, READ)] {
        let rets = f.rets();
        if rets.is_empty() {
            return Err(NoProbe::Decode(version, name));
        }
        points.extend(rets.into_iter().map(|r| ("tracer_go_tls_return", r)));
    }
    // Without these a Read that resumed on another thread, or the first
    // Write, may find no socket: the calls above still work.
    for h in HANDSHAKES.iter().filter_map(|name| function(&obj, name)) {
        points.push(("tracer_go_tls_handshake", h.offset));
        points.extend(
            h.rets()
                .into_iter()
                .map(|r| ("tracer_go_tls_handshake_return", r)),
        );
    }
    for name in SYSCALLS {
        if let Some(f) = function(&obj, name) {
            points.push(("tracer_go_syscall", f.offset));
        }
    }
    Ok(Some(GoTls { version, points }))
}

/// A function's code: its address, file offset and bytes.
struct Function<'a> {
    address: u64,
    offset: u64,
    bytes: &'a [u8],
}

impl Function<'_> {
    /// File offsets of its RET instructions.
    fn rets(&self) -> Vec<u64> {
        rets(self.bytes, self.address)
            .into_iter()
            .map(|a| a - self.address + self.offset)
            .collect()
    }
}

fn function<'a>(obj: &object::File<'a>, name: &str) -> Option<Function<'a>> {
    let sym = obj.symbols().find(|s| s.name() == Ok(name))?;
    let section = obj.section_by_index(sym.section_index()?).ok()?;
    let (file_start, _) = section.file_range()?;
    let start = sym.address().checked_sub(section.address())?;
    let data = section.data().ok()?;
    let bytes = data.get(start as usize..(start + sym.size()) as usize)?;
    (sym.size() > 0).then_some(Function {
        address: sym.address(),
        offset: file_start + start,
        bytes,
    })
}

/// The addresses of the RET instructions in `code` (loaded at `address`).
pub fn rets(code: &[u8], address: u64) -> Vec<u64> {
    let mut decoder = Decoder::with_ip(64, code, address, DecoderOptions::NONE);
    let mut found = Vec::new();
    for ins in &mut decoder {
        if ins.mnemonic() == Mnemonic::Ret {
            found.push(ins.ip());
        }
    }
    found
}

/// Go 1.17 and later pass arguments in registers (on amd64).
fn register_abi(version: &str) -> bool {
    let mut parts = version
        .trim_start_matches("go")
        .split(['.', 'r', 'b', ' ', '-']);
    let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    // A development build ("devel go1.x-...") is recent.
    version.starts_with("devel") || (major, minor) >= (1, 17)
}

/// `runtime.buildVersion` from the `.go.buildinfo` section, the mark of a
/// Go executable: inline since Go 1.18 (flag bit 2), through two pointers
/// before.
fn build_version(obj: &object::File<'_>) -> Option<String> {
    let info = obj.section_by_name(".go.buildinfo")?.data().ok()?;
    if info.get(..14)? != b"\xff Go buildinf:" {
        return None;
    }
    let flags = *info.get(15)?;
    if flags & 2 != 0 {
        let (len, used) = uvarint(info.get(32..)?)?;
        let text = info.get(32 + used..32 + used + len as usize)?;
        return String::from_utf8(text.to_vec()).ok();
    }
    if *info.get(14)? != 8 || flags & 1 != 0 {
        return None;
    }
    let word = |b: &[u8]| Some(u64::from_le_bytes(b.get(..8)?.try_into().ok()?));
    let header = read_at(obj, word(info.get(16..)?)?, 16)?;
    let text = read_at(obj, word(&header)?, word(header.get(8..)?)? as usize)?;
    String::from_utf8(text).ok()
}

fn read_at(obj: &object::File<'_>, address: u64, len: usize) -> Option<Vec<u8>> {
    obj.sections().find_map(|s| {
        let start = address.checked_sub(s.address())?;
        s.data()
            .ok()?
            .get(start as usize..start as usize + len)
            .map(<[u8]>::to_vec)
    })
}

fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, byte) in b.iter().take(10).enumerate() {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_c3_byte_inside_an_instruction_is_no_ret() {
        // mov eax, 0xc3; ret; add rsp, 8; ret 8
        let code = [
            0xb8, 0xc3, 0, 0, 0, 0xc3, 0x48, 0x83, 0xc4, 0x08, 0xc2, 8, 0,
        ];
        assert_eq!(rets(&code, 0x1000), [0x1005, 0x100a]);
    }

    #[test]
    fn register_abi_from_go_1_17() {
        assert!(register_abi("go1.19.8"));
        assert!(register_abi("go1.17"));
        assert!(register_abi("go1.22rc1"));
        assert!(!register_abi("go1.16.15"));
        assert!(register_abi("devel go1.23-abc"));
    }

    #[test]
    fn this_rust_binary_is_not_go() {
        let me = std::env::current_exe().unwrap();
        assert_eq!(inspect(&me), Ok(None));
    }
}
