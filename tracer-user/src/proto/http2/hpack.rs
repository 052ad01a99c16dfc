//! HPACK (RFC 7541) for one direction of a connection, in wire order.
//!
//! Written here rather than taken from a crate, for two measured reasons:
//! loona-hpack (the maintained fork of `hpack`) rebuilds its Huffman
//! table for every string, 48 µs per string in a release build against
//! under 1 µs here, and a traced server's every header passes through;
//! httlib-hpack indexes past the end of a block cut inside an integer
//! (a panic on captured bytes). h2's own is private. Writing it also lets
//! the dynamic table keep only sizes for names that are not kept, so a
//! credential is never stored. loona-hpack stays as the tests' oracle.
//!
//! Once a block is lost, cut or seen mid-connection, the dynamic table is
//! unknown: later blocks are walked with the static table alone, and a
//! field that needs the dynamic table is unknown, never guessed.

use super::fields::{FieldSink, KeptFields};
use super::huffman;
use super::table::{DynamicTable, Name, kept_name, static_entry};

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

pub struct BlockDecoder {
    /// `None`: unusable, its content unknown.
    table: Option<DynamicTable>,
    max_allowed: usize,
}

impl BlockDecoder {
    /// A direction seen from the connection's first header block.
    pub fn in_step() -> Self {
        Self {
            table: Some(DynamicTable::new(DEFAULT_TABLE_SIZE)),
            max_allowed: DEFAULT_TABLE_SIZE,
        }
    }

    /// A direction seen mid-connection: its table is unknown.
    pub fn unusable() -> Self {
        Self {
            table: None,
            max_allowed: DEFAULT_TABLE_SIZE,
        }
    }

    pub fn is_in_step(&self) -> bool {
        self.table.is_some()
    }

    /// The receiving peer advertised SETTINGS_HEADER_TABLE_SIZE: size
    /// updates up to the largest value it ever allowed are accepted.
    pub fn peer_allows(&mut self, size: usize) {
        self.max_allowed = self.max_allowed.max(size.min(MAX_TABLE_SIZE));
    }

    /// A block whose bytes were lost: later blocks may refer to entries
    /// it added.
    pub fn lose_table(&mut self) {
        self.table = None;
    }

    /// Decodes a whole block (`cut`: its end was not captured). Returns
    /// the kept fields and, when the table was given up, why.
    pub fn decode(&mut self, block: &[u8], cut: bool) -> (DecodedBlock, Option<&'static str>) {
        // A block that starts by emptying the table puts it back in step.
        if self.table.is_none() && block.first() == Some(&0x20) {
            self.table = Some(DynamicTable::new(0));
        }
        let mut walk = Walk {
            sink: FieldSink::default(),
            table: self.table.as_mut(),
            max_allowed: self.max_allowed,
            all: true,
        };
        let result = walk.block(block);
        let all = walk.all;
        let fields = walk.sink.into_fields();
        let mut note = None;
        if self.table.is_some() && (result.is_err() || cut) {
            self.table = None;
            note = Some(match result {
                Err(why) if !cut => why,
                _ => "a header block was cut: its table changes are unknown",
            });
        }
        let incomplete = result.is_err() || cut || !all;
        (DecodedBlock { fields, incomplete }, note)
    }
}

struct Walk<'a> {
    sink: FieldSink,
    /// `None`: static table only; what needs the dynamic one is unknown.
    table: Option<&'a mut DynamicTable>,
    max_allowed: usize,
    all: bool,
}

impl Walk<'_> {
    fn block(&mut self, mut rest: &[u8]) -> Result<(), &'static str> {
        while let Some(&first) = rest.first() {
            let used = if first & 0x80 != 0 {
                self.indexed(rest)?
            } else if first & 0xe0 == 0x20 {
                let (size, n) = integer(rest, 5).ok_or("HPACK: a size update was cut")?;
                if let Some(table) = self.table.as_deref_mut() {
                    if size > self.max_allowed {
                        return Err("HPACK: a table size update above the peer's limit");
                    }
                    table.resize(size);
                }
                n
            } else {
                let indexing = first & 0x40 != 0;
                self.literal(rest, if indexing { 6 } else { 4 }, indexing)?
            };
            rest = rest.get(used..).ok_or("HPACK: a field overran its block")?;
        }
        Ok(())
    }

    /// An indexed field (§6.1).
    fn indexed(&mut self, buf: &[u8]) -> Result<usize, &'static str> {
        let (index, n) = integer(buf, 7).ok_or("HPACK: an index was cut")?;
        if let Some((name, value)) = static_entry(index) {
            if let Name::Kept(name) = name {
                self.sink.field(name.as_bytes(), value.as_bytes());
            }
        } else if index == 0 {
            return Err("HPACK: index 0");
        } else if let Some(table) = self.table.as_deref() {
            let entry = table.get(index).ok_or("HPACK: an index past the table")?;
            if let (Name::Kept(name), Some(value)) = (entry.name, &entry.value) {
                self.sink.field(name.as_bytes(), value);
            }
        } else {
            self.all = false;
        }
        Ok(n)
    }

    /// A literal field (§6.2), added to the table when `indexing`.
    fn literal(&mut self, buf: &[u8], prefix: u8, indexing: bool) -> Result<usize, &'static str> {
        let (index, mut n) = integer(buf, prefix).ok_or("HPACK: a name index was cut")?;
        let name = if index == 0 {
            let raw = string_at(buf, n)?;
            n = raw.end;
            let mut octets = Vec::new();
            let len = raw.decode(Some(&mut octets))?;
            Some(kept_name(&octets).map_or(Name::Other(len), Name::Kept))
        } else if let Some((name, _)) = static_entry(index) {
            Some(name)
        } else if let Some(table) = self.table.as_deref() {
            Some(
                table
                    .get(index)
                    .ok_or("HPACK: a name index past the table")?
                    .name,
            )
        } else {
            None
        };
        let raw = string_at(buf, n)?;
        let kept = matches!(name, Some(Name::Kept(_)));
        let mut value = Vec::new();
        let value_len = raw.decode(kept.then_some(&mut value))?;
        match name {
            Some(Name::Kept(k)) => self.sink.field(k.as_bytes(), &value),
            Some(Name::Other(_)) => {}
            None => self.all = false,
        }
        if indexing && let (Some(table), Some(name)) = (self.table.as_deref_mut(), name) {
            table.insert(name, value_len, kept.then_some(value));
        }
        Ok(raw.end)
    }
}

/// A string literal's octets in a block, still encoded.
struct RawString<'a> {
    huffman: bool,
    octets: &'a [u8],
    /// Offset just past it in the block.
    end: usize,
}

impl RawString<'_> {
    /// Its decoded length, the octets appended to `out` when given.
    fn decode(&self, out: Option<&mut Vec<u8>>) -> Result<usize, &'static str> {
        if !self.huffman {
            if let Some(out) = out {
                out.extend_from_slice(self.octets);
            }
            return Ok(self.octets.len());
        }
        huffman::decode(self.octets, out).ok_or("HPACK: a bad Huffman string")
    }
}

fn string_at(buf: &[u8], at: usize) -> Result<RawString<'_>, &'static str> {
    let rest = buf
        .get(at..)
        .filter(|r| !r.is_empty())
        .ok_or("HPACK: a string was cut")?;
    let (len, n) = integer(rest, 7).ok_or("HPACK: a string length was cut")?;
    let start = at + n;
    let end = start
        .checked_add(len)
        .ok_or("HPACK: a string length overflows")?;
    let octets = buf.get(start..end).ok_or("HPACK: a string was cut")?;
    Ok(RawString {
        huffman: rest[0] & 0x80 != 0,
        octets,
        end,
    })
}

/// An integer with an N-bit prefix (§5.1), and the bytes it took.
fn integer(buf: &[u8], prefix: u8) -> Option<(usize, usize)> {
    let mask = (1usize << prefix) - 1;
    let mut value = usize::from(*buf.first()?) & mask;
    if value < mask {
        return Some((value, 1));
    }
    // Four continuation bytes hold any length a block can have (2^28).
    for (i, &b) in buf.iter().enumerate().skip(1).take(4) {
        value += usize::from(b & 0x7f) << (7 * (i - 1));
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
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
        assert_eq!(integer(&[31, 0xff, 0xff, 0xff, 0xff, 0x7f], 5), None);
        assert_eq!(integer(&[31, 0xff, 0xff, 0xff], 5), None);
        assert_eq!(integer(&[], 5), None);
    }
}
