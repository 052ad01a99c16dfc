//! HPACK (RFC 7541) for one direction of a connection, in wire order.
//!
//! `loona-hpack` decodes while the table is in step: it is the maintained
//! fork of `hpack` (the original has had no release since 2016), builds on
//! stable with two small dependencies, and returns an error on bad input
//! rather than panicking. h2's own HPACK is private to h2, and
//! `httlib-hpack` has had no release in years.
//!
//! Once a block is lost, cut or seen mid-connection, the dynamic table is
//! unknown: later blocks are walked with the static table alone, and a
//! field that needs the dynamic table is unknown, never guessed.

use loona_hpack::Decoder;
use loona_hpack::huffman::HuffmanDecoder;

use super::fields::{FieldSink, KeptFields};

/// SETTINGS_HEADER_TABLE_SIZE's initial value (RFC 7541 §4.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;
/// A table larger than this is not kept: its size update marks the table
/// unusable instead (bounds memory per connection).
pub const MAX_TABLE_SIZE: usize = 1 << 20;

/// What one header block gave.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodedBlock {
    pub fields: KeptFields,
    /// Some field could not be decoded: it needed the dynamic table, or
    /// the block was cut. Fields absent from `fields` may have been sent.
    pub incomplete: bool,
}

enum Table {
    InStep(Box<Decoder<'static>>),
    Unusable,
}

pub struct BlockDecoder {
    table: Table,
    max_allowed: usize,
    huffman: Option<HuffmanDecoder>,
}

impl BlockDecoder {
    /// A direction seen from the connection's first header block.
    pub fn in_step() -> Self {
        Self::with(Table::InStep(Box::default()))
    }

    /// A direction seen mid-connection: its table is unknown.
    pub fn unusable() -> Self {
        Self::with(Table::Unusable)
    }

    fn with(table: Table) -> Self {
        let mut d = Self {
            table,
            max_allowed: DEFAULT_TABLE_SIZE,
            huffman: None,
        };
        d.set_allowed();
        d
    }

    pub fn is_in_step(&self) -> bool {
        matches!(self.table, Table::InStep(_))
    }

    /// The receiving peer advertised SETTINGS_HEADER_TABLE_SIZE: size
    /// updates up to the largest value it ever allowed are accepted.
    pub fn peer_allows(&mut self, size: usize) {
        self.max_allowed = self.max_allowed.max(size.min(MAX_TABLE_SIZE));
        self.set_allowed();
    }

    fn set_allowed(&mut self) {
        if let Table::InStep(d) = &mut self.table {
            d.set_max_allowed_table_size(self.max_allowed);
        }
    }

    /// A block whose bytes were lost: later blocks may refer to entries
    /// it added.
    pub fn lose_table(&mut self) {
        self.table = Table::Unusable;
    }

    /// Decodes a whole block (`cut`: its end was not captured). Returns
    /// the kept fields and, on a decoding error, why the table was given up.
    pub fn decode(&mut self, block: &[u8], cut: bool) -> (DecodedBlock, Option<&'static str>) {
        let mut sink = FieldSink::default();
        let mut note = None;
        // A block that starts by emptying the table puts it back in step.
        if !self.is_in_step() && starts_with_size_update_to_zero(block) {
            self.table = Table::InStep(Box::default());
            self.set_allowed();
        }
        let incomplete = match &mut self.table {
            Table::InStep(d) => {
                let result = d.decode_with_cb(block, |name, value| sink.field(&name, &value));
                if result.is_err() || cut {
                    note = Some(if cut {
                        "a header block was cut: its table changes are unknown"
                    } else {
                        "HPACK decoding failed: the table is given up"
                    });
                    self.table = Table::Unusable;
                    true
                } else {
                    false
                }
            }
            Table::Unusable => {
                let huffman = self.huffman.get_or_insert_with(HuffmanDecoder::new);
                !static_only(block, huffman, &mut sink) || cut
            }
        };
        let decoded = DecodedBlock {
            fields: sink.into_fields(),
            incomplete,
        };
        (decoded, note)
    }
}

fn starts_with_size_update_to_zero(block: &[u8]) -> bool {
    block.first().is_some_and(|&b| b == 0x20)
}

/// Walks a block without the dynamic table: static-table names and
/// literal values still decode. Returns whether every field did.
fn static_only(block: &[u8], huffman: &mut HuffmanDecoder, sink: &mut FieldSink) -> bool {
    let mut rest = block;
    let mut all = true;
    while let Some(&first) = rest.first() {
        let step = if first & 0x80 != 0 {
            integer(rest, 7).map(|(index, n)| {
                match static_entry(index) {
                    Some(Entry::Kept(name, value)) => sink.field(name.as_bytes(), value.as_bytes()),
                    Some(Entry::Other) => {}
                    None => all = false,
                }
                n
            })
        } else if first & 0xe0 == 0x20 {
            integer(rest, 5).map(|(_, n)| n)
        } else {
            let prefix = if first & 0x40 != 0 { 6 } else { 4 };
            literal(rest, prefix, huffman).map(|(name, value, n)| {
                match (name, value) {
                    (Name::Known(name), Some(value)) => sink.field(name.as_bytes(), &value),
                    (Name::Literal(name), Some(value)) => sink.field(&name, &value),
                    (Name::Unknown, _) | (_, None) => all = false,
                }
                n
            })
        };
        match step {
            Some(n) if n > 0 && n <= rest.len() => rest = &rest[n..],
            _ => return false,
        }
    }
    all
}

enum Name {
    Known(&'static str),
    Literal(Vec<u8>),
    Unknown,
}

/// A literal field: its name, its value (`None` when its Huffman code is
/// bad) and the bytes it took.
fn literal(
    buf: &[u8],
    prefix: u8,
    huffman: &mut HuffmanDecoder,
) -> Option<(Name, Option<Vec<u8>>, usize)> {
    let (index, mut n) = integer(buf, prefix)?;
    let name = if index == 0 {
        let (raw, used) = string(buf.get(n..)?, huffman)?;
        n += used;
        raw.map_or(Name::Unknown, Name::Literal)
    } else {
        match static_entry(index) {
            Some(Entry::Kept(name, _)) => Name::Known(name),
            // A name outside the kept set: the value is read and dropped.
            Some(Entry::Other) => Name::Known(""),
            None => Name::Unknown,
        }
    };
    let (value, used) = string(buf.get(n..)?, huffman)?;
    Some((name, value, n + used))
}

/// A string literal (§5.2): its octets (`None` if the Huffman code is bad)
/// and the bytes it took; `None` when the buffer ends inside it.
fn string(buf: &[u8], huffman: &mut HuffmanDecoder) -> Option<(Option<Vec<u8>>, usize)> {
    let (len, n) = integer(buf, 7)?;
    let raw = buf.get(n..n.checked_add(len)?)?;
    let value = if buf[0] & 0x80 != 0 {
        huffman.decode(raw).ok()
    } else {
        Some(raw.to_vec())
    };
    Some((value, n + len))
}

/// An integer with an N-bit prefix (§5.1), and the bytes it took.
fn integer(buf: &[u8], prefix: u8) -> Option<(usize, usize)> {
    let mask = (1u16 << prefix) as usize - 1;
    let mut value = (*buf.first()? as usize) & mask;
    if value < mask {
        return Some((value, 1));
    }
    // Five continuation bytes hold any length a frame can carry.
    for (i, &b) in buf.iter().enumerate().skip(1).take(5) {
        value += ((b & 0x7f) as usize) << (7 * (i - 1));
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

enum Entry {
    Kept(&'static str, &'static str),
    Other,
}

/// The static table (RFC 7541 Appendix A) as far as the kept fields go:
/// loona-hpack keeps its copy private, and every other entry's name is
/// one no kept field has.
fn static_entry(index: usize) -> Option<Entry> {
    Some(match index {
        1 => Entry::Kept(":authority", ""),
        2 => Entry::Kept(":method", "GET"),
        3 => Entry::Kept(":method", "POST"),
        4 => Entry::Kept(":path", "/"),
        5 => Entry::Kept(":path", "/index.html"),
        6 => Entry::Kept(":scheme", "http"),
        7 => Entry::Kept(":scheme", "https"),
        8 => Entry::Kept(":status", "200"),
        9 => Entry::Kept(":status", "204"),
        10 => Entry::Kept(":status", "206"),
        11 => Entry::Kept(":status", "304"),
        12 => Entry::Kept(":status", "400"),
        13 => Entry::Kept(":status", "404"),
        14 => Entry::Kept(":status", "500"),
        31 => Entry::Kept("content-type", ""),
        15..=61 => Entry::Other,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_lost_gives_unknown_not_wrong_fields() {
        // GET, then :path indexed into the dynamic table (§6.2.1).
        let mut first = vec![0x82, 0x44, 12];
        first.extend(b"/secret-path");
        // GET, then the dynamic table's first entry (index 62).
        let second = [0x82, 0xbe];
        let mut d = BlockDecoder::in_step();
        let (b, note) = d.decode(&first, false);
        assert_eq!(b.fields.path.as_deref(), Some("/secret-path"));
        assert!(note.is_none() && !b.incomplete);
        let (b, _) = d.decode(&second, false);
        assert_eq!(b.fields.path.as_deref(), Some("/secret-path"));
        // Mid-connection: the path came from the dynamic table.
        let mut late = BlockDecoder::unusable();
        let (b, _) = late.decode(&second, false);
        assert_eq!(b.fields.method.as_deref(), Some("GET"));
        assert_eq!(b.fields.path, None);
        assert!(b.incomplete);
        // A lost block: the table is given up, not used out of step.
        d.lose_table();
        let (b, _) = d.decode(&second, false);
        assert_eq!((b.fields.path, b.incomplete), (None, true));
        // Until a block empties it: then it is in step again.
        // (Emptied, then back to 4096 bytes.)
        let mut reset = vec![0x20, 0x3f, 0xe1, 0x1f, 0x82];
        reset.extend(&first[1..]);
        let (b, _) = d.decode(&reset, false);
        assert!(d.is_in_step() && !b.incomplete);
        let (b, _) = d.decode(&second, false);
        assert_eq!(b.fields.path.as_deref(), Some("/secret-path"));
    }

    #[test]
    fn integers_decode_and_overlong_ones_do_not() {
        assert_eq!(integer(&[31, 154, 10], 5), Some((1337, 3)));
        assert_eq!(integer(&[10], 5), Some((10, 1)));
        assert_eq!(integer(&[31, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], 5), None);
        assert_eq!(integer(&[], 5), None);
    }
}
