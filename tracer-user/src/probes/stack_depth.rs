//! The BPF stack each program of the eBPF object needs, read from its
//! instructions the way the verifier counts it: per function, the deepest
//! slot below the frame pointer (r10), rounded up to 32 bytes; per program,
//! the sum along its deepest chain of BPF-to-BPF calls. Linux before 6.13
//! rejects a program whose chain passes 512 bytes ("combined stack size of
//! 2 calls is 576. Too large" on 6.1), while 6.13+ gives tracing programs a
//! private stack and loads it: so the host's verifier cannot be the check.
//!
//! build.rs runs this on the object it built and fails the build above
//! [`LIMIT`]; the unit tests run it on the embedded object too.
use object::{Object as _, ObjectSection as _, ObjectSymbol as _, RelocationTarget, SymbolKind};

/// The most a program may need: well under the verifier's 512, so that a
/// compiler that lays out the stack a little worse still loads.
pub const LIMIT: u32 = 320;
/// The verifier's limit for a program and its calls together.
pub const MAX_BPF_STACK: u32 = 512;

const INSN: usize = 8;
const FP: u8 = 10;

/// Deepest stack slot (bytes below r10) that these instructions touch:
/// loads and stores through r10, and pointers made as `rX = r10; rX += -N`
/// (passed to helpers). 0 when none.
pub fn frame_depth(insns: &[u8]) -> u32 {
    let mut deepest: i64 = 0;
    // Registers that hold a copy of r10, until they are written otherwise.
    let mut fp_copy = [false; 11];
    for insn in insns.chunks_exact(INSN) {
        let (code, dst, src) = (insn[0], insn[1] & 0x0f, insn[1] >> 4);
        let off = i64::from(i16::from_le_bytes([insn[2], insn[3]]));
        let imm = i64::from(i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]));
        let class = code & 0x07;
        match class {
            // LDX: dst = *(src + off)
            0x01 if src == FP => deepest = deepest.max(-off),
            // ST / STX: *(dst + off) = ...
            0x02 | 0x03 if dst == FP => deepest = deepest.max(-off),
            _ => {}
        }
        match code {
            // ALU64 MOV X: rX = r10 makes a frame pointer copy.
            0xbf => fp_copy[usize::from(dst.min(10))] = src == FP,
            // ALU64 ADD K on a copy: a pointer into the frame.
            0x07 if fp_copy[usize::from(dst.min(10))] => deepest = deepest.max(-imm),
            // Any other write to dst (ALU, LDX, LD) ends the copy; calls
            // clobber r0-r5.
            0x85 => fp_copy[..6].fill(false),
            _ if matches!(class, 0x00 | 0x01 | 0x04 | 0x07) => {
                fp_copy[usize::from(dst.min(10))] = false
            }
            _ => {}
        }
    }
    u32::try_from(deepest.max(0)).unwrap_or(u32::MAX)
}

/// A frame as the verifier counts it: at least 1 byte, rounded up to 32.
pub fn rounded(depth: u32) -> u32 {
    depth.max(1).div_ceil(32) * 32
}

/// One function of the object: where its instructions are, its frame, and
/// the functions it calls (by index).
struct Function {
    section: object::SectionIndex,
    start: u64,
    end: u64,
    frame: u32,
    calls: Vec<usize>,
}

/// Each program (a global function outside `.text`) and the stack its
/// deepest call chain needs, in bytes, as the verifier sums it.
pub fn program_stacks(elf: &[u8]) -> Result<Vec<(String, u32)>, String> {
    let file = object::File::parse(elf).map_err(|e| format!("parsing the eBPF object: {e}"))?;
    let mut functions = Vec::new();
    for sym in file.symbols() {
        if sym.kind() != SymbolKind::Text || sym.size() == 0 {
            continue;
        }
        let Some(section) = sym.section_index() else {
            continue;
        };
        let data = file
            .section_by_index(section)
            .and_then(|s| s.data())
            .map_err(|e| format!("section of {}: {e}", sym.name().unwrap_or("?")))?;
        let (start, end) = (
            sym.address() as usize,
            (sym.address() + sym.size()) as usize,
        );
        let insns = data
            .get(start..end)
            .ok_or_else(|| format!("{} lies outside its section", sym.name().unwrap_or("?")))?;
        functions.push(Function {
            section,
            start: sym.address(),
            end: sym.address() + sym.size(),
            frame: frame_depth(insns),
            calls: Vec::new(),
        });
    }
    // BPF-to-BPF calls: `call` with src_reg 1. Across sections (into .text)
    // a relocation names the callee; within one, imm is the distance.
    let find = |section: object::SectionIndex, at: u64, functions: &[Function]| {
        functions
            .iter()
            .position(|f| f.section == section && f.start == at)
    };
    let mut edges = Vec::new();
    for section in file.sections() {
        let Ok(data) = section.data() else { continue };
        let relocs: Vec<_> = section.relocations().collect();
        for (i, insn) in data.chunks_exact(INSN).enumerate() {
            if insn[0] != 0x85 || insn[1] >> 4 != 1 {
                continue;
            }
            let pc = (i * INSN) as u64;
            let imm = i64::from(i32::from_le_bytes([insn[4], insn[5], insn[6], insn[7]]));
            let target = match relocs.iter().find(|(off, _)| *off == pc) {
                Some((_, r)) => {
                    let RelocationTarget::Symbol(s) = r.target() else {
                        continue;
                    };
                    let sym = file.symbol_by_index(s).map_err(|e| e.to_string())?;
                    let Some(sec) = sym.section_index() else {
                        continue;
                    };
                    let at = sym.address() as i64 + (imm + 1) * INSN as i64;
                    find(sec, at as u64, &functions)
                }
                None => find(
                    section.index(),
                    (pc as i64 + (imm + 1) * INSN as i64) as u64,
                    &functions,
                ),
            };
            let caller = functions
                .iter()
                .position(|f| f.section == section.index() && f.start <= pc && pc < f.end);
            if let (Some(caller), Some(callee)) = (caller, target) {
                edges.push((caller, callee));
            }
        }
    }
    for (caller, callee) in edges {
        functions[caller].calls.push(callee);
    }
    let programs = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.is_global() && s.size() > 0)
        .filter(|s| {
            s.section_index()
                .and_then(|i| file.section_by_index(i).ok())
                .and_then(|sec| sec.name().ok().map(|n| n != ".text"))
                .unwrap_or(false)
        })
        .filter_map(|s| {
            let at = functions
                .iter()
                .position(|f| Some(f.section) == s.section_index() && f.start == s.address())?;
            Some((
                s.name().unwrap_or("?").to_string(),
                chain(&functions, at, 0),
            ))
        })
        .collect();
    Ok(programs)
}

/// Stack of `at`'s frame plus its deepest callee chain (the verifier allows
/// 8 frames; deeper or recursive chains stop counting there).
fn chain(functions: &[Function], at: usize, depth: u32) -> u32 {
    let f = &functions[at];
    let deepest_call = if depth >= 8 {
        0
    } else {
        f.calls
            .iter()
            .map(|&c| chain(functions, c, depth + 1))
            .max()
            .unwrap_or(0)
    };
    rounded(f.frame) + deepest_call
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One instruction: opcode, dst, src, off, imm.
    fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Vec<u8> {
        let mut v = vec![code, (src << 4) | dst];
        v.extend(off.to_le_bytes());
        v.extend(imm.to_le_bytes());
        v
    }

    #[test]
    fn frame_depth_counts_stores_loads_and_frame_pointers() {
        // *(u64 *)(r10 - 64) = r1; r2 = *(u32 *)(r10 - 96); r3 = r10; r3 += -200
        let code = [
            insn(0x7b, 10, 1, -64, 0),
            insn(0x61, 2, 10, -96, 0),
            insn(0xbf, 3, 10, 0, 0),
            insn(0x07, 3, 0, 0, -200),
        ]
        .concat();
        assert_eq!(frame_depth(&code), 200);
        // r3 = r10; r3 = 5; r3 += -300: r3 no longer points into the frame.
        let code = [
            insn(0xbf, 3, 10, 0, 0),
            insn(0xb7, 3, 0, 0, 5),
            insn(0x07, 3, 0, 0, -300),
        ]
        .concat();
        assert_eq!(frame_depth(&code), 0);
    }

    #[test]
    fn frames_round_up_as_the_verifier_does() {
        // 6.1's "stack depth 464+72": 480 + 96 = 576, "Too large".
        assert_eq!(rounded(464) + rounded(72), 576);
        assert!(rounded(464) + rounded(72) > MAX_BPF_STACK);
        assert_eq!(rounded(0), 32);
    }

    #[test]
    fn every_program_of_the_object_fits_well_under_512_bytes() {
        let stacks = program_stacks(super::super::OBJECT).expect("object parses");
        let names: Vec<_> = stacks.iter().map(|(n, _)| n.as_str()).collect();
        for p in super::super::PROGRAMS {
            assert!(
                names.contains(&p.program),
                "{} not found in {names:?}",
                p.program
            );
        }
        for (name, bytes) in &stacks {
            assert!(*bytes <= LIMIT, "{name} needs {bytes} bytes of stack");
        }
    }
}
