//! Captures of the corpus as a probe could deliver them: whole, with
//! losses, as the kernel record's extents, or as header blocks alone.

use tracer_user::proto::http2::frame::{FrameHeader, FrameKind, PREFACE};
use tracer_user::proto::http2::{Chunk, Direction, H2Request, Http2Connection, Role, Start};

use super::{Io, from_corpus};

pub const CORPUS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/h2");

pub fn corpus() -> Vec<Vec<Io>> {
    let mut files: Vec<_> = std::fs::read_dir(CORPUS_DIR)
        .expect("the h2 corpus is in the repository")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let logs: Vec<Vec<Io>> = files
        .iter()
        .map(|f| from_corpus(&std::fs::read(f).expect("corpus file")))
        .collect();
    assert!(logs.len() >= 3, "corpus files in {CORPUS_DIR}");
    logs
}

/// One I/O as the fuzzer changes it.
#[derive(Clone, Debug)]
pub struct Fed {
    pub dir: Direction,
    pub bytes: Vec<u8>,
    pub total_len: usize,
    pub gap_before: bool,
}

pub fn feed(log: &[Fed], role: Role, start: Start) -> (Vec<H2Request>, Vec<String>) {
    let mut conn = Http2Connection::new(role, start);
    for (i, io) in log.iter().enumerate() {
        conn.feed(
            io.dir,
            &Chunk {
                ts_ns: i as u64,
                bytes: &io.bytes,
                total_len: io.total_len,
                gap_before: io.gap_before,
                later: &[],
            },
        );
    }
    (conn.finish(), conn.notes().to_vec())
}

pub fn whole(log: &[Io]) -> Vec<Fed> {
    log.iter()
        .map(|io| Fed {
            dir: io.dir,
            bytes: io.bytes.clone(),
            total_len: io.bytes.len(),
            gap_before: false,
        })
        .collect()
}

/// Losses a probe can cause: a cut capture, a lost I/O (then the next
/// one of that direction says so), a capture begun late.
#[derive(Clone, Debug)]
pub enum Loss {
    Cut(usize, usize),
    Drop(usize),
}

pub fn lose(log: &[Io], losses: &[Loss]) -> Vec<Fed> {
    let mut fed = whole(log);
    let mut dropped = vec![false; fed.len()];
    for loss in losses {
        match *loss {
            Loss::Cut(i, keep) => {
                let io = &mut fed[i % log.len()];
                io.bytes.truncate(keep);
            }
            Loss::Drop(i) => dropped[i % log.len()] = true,
        }
    }
    let mut out: Vec<Fed> = Vec::new();
    let mut pending_gap = [false; 2];
    for (io, dropped) in fed.into_iter().zip(dropped) {
        let d = usize::from(io.dir == Direction::Ingress);
        if dropped {
            pending_gap[d] = true;
            continue;
        }
        out.push(Fed {
            gap_before: std::mem::take(&mut pending_gap[d]),
            ..io
        });
    }
    out
}

/// A capture as the kernel record of ARCHITECTURE.md would give it:
/// per I/O, only the preface, frame headers and the payloads of header
/// and control frames, at their offsets; DATA payloads are not captured.
pub fn frames_only(log: &[Io]) -> Vec<Vec<(usize, Vec<u8>)>> {
    let mut kept = vec![Vec::new(); log.len()];
    for dir in [Direction::Egress, Direction::Ingress] {
        let ios: Vec<usize> = (0..log.len()).filter(|&i| log[i].dir == dir).collect();
        let all: Vec<u8> = ios.iter().flat_map(|&i| log[i].bytes.clone()).collect();
        let mut wanted = Vec::new();
        let mut pos = 0;
        if dir == Direction::Egress {
            wanted.push((0, PREFACE.len()));
            pos = PREFACE.len();
        }
        while let Some(h) = all.get(pos..).and_then(FrameHeader::parse) {
            let end = pos + 9 + h.len as usize;
            let payload_end = if h.kind.wants_payload() { end } else { pos + 9 };
            wanted.push((pos, payload_end));
            pos = end;
        }
        let mut start = 0;
        for &i in &ios {
            let end = start + log[i].bytes.len();
            for &(a, b) in &wanted {
                let (a, b) = (a.max(start), b.min(end));
                if a < b {
                    kept[i].push((a - start, log[i].bytes[a - start..b - start].to_vec()));
                }
            }
            start = end;
        }
    }
    kept
}

/// The header blocks of one direction of a corpus connection, in order
/// (the h2 crate sends each in one unpadded HEADERS frame).
pub fn header_blocks(log: &[Io], ingress: bool) -> Vec<Vec<u8>> {
    let dir = if ingress {
        Direction::Ingress
    } else {
        Direction::Egress
    };
    let mut bytes: Vec<u8> = log
        .iter()
        .filter(|io| io.dir == dir)
        .flat_map(|io| io.bytes.clone())
        .collect();
    if !ingress {
        bytes.drain(..PREFACE.len().min(bytes.len()));
    }
    let mut blocks = Vec::new();
    let mut at = 0;
    while let Some(h) = bytes.get(at..).and_then(FrameHeader::parse) {
        let end = (at + 9 + h.len as usize).min(bytes.len());
        if h.kind == FrameKind::Headers {
            blocks.push(bytes[at + 9..end].to_vec());
        }
        at = end;
    }
    blocks
}

/// The same connection seen from the server: its writes are the
/// client's reads.
pub fn flip_dirs(fed: Vec<Fed>) -> Vec<Fed> {
    fed.into_iter()
        .map(|f| Fed {
            dir: match f.dir {
                Direction::Egress => Direction::Ingress,
                Direction::Ingress => Direction::Egress,
            },
            ..f
        })
        .collect()
}
