//! HPACK's tables (RFC 7541 §2.3): the static one, and a dynamic one that
//! keeps a value only for the names userspace may store. Every other
//! entry is its size alone, so an Authorization value never stays in
//! memory past the field that carried it.

use std::collections::VecDeque;

/// The names whose values are kept (see `fields`).
pub const KEPT: [&str; 8] = [
    ":method",
    ":scheme",
    ":authority",
    ":path",
    ":status",
    "content-type",
    "grpc-status",
    "grpc-message",
];

/// The kept name `name` is, if any.
pub fn kept_name(name: &[u8]) -> Option<&'static str> {
    KEPT.iter().copied().find(|k| k.as_bytes() == name)
}

/// The static table (Appendix A): every name, and the values of entries
/// whose name is kept (others' values are never needed).
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", ""),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];
pub const STATIC_LEN: usize = STATIC.len();

/// A field's name as the tables know it: a kept name, or only its length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Name {
    Kept(&'static str),
    Other(usize),
}

impl Name {
    pub fn octets(self) -> usize {
        match self {
            Self::Kept(n) => n.len(),
            Self::Other(len) => len,
        }
    }
}

/// An entry: its name, its value if the name is kept, its size (§4.1).
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: Name,
    pub value: Option<Vec<u8>>,
    size: usize,
}

/// Static entry `index` (1-61): its name, and its value when kept.
pub fn static_entry(index: usize) -> Option<(Name, &'static str)> {
    let (name, value) = STATIC.get(index.checked_sub(1)?)?;
    Some(match kept_name(name.as_bytes()) {
        Some(kept) => (Name::Kept(kept), *value),
        None => (Name::Other(name.len()), ""),
    })
}

pub struct DynamicTable {
    entries: VecDeque<Entry>,
    size: usize,
    max_size: usize,
}

impl DynamicTable {
    pub fn new(max_size: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            size: 0,
            max_size,
        }
    }

    /// Entry `index` of the whole index space (static first, §2.3.3).
    pub fn get(&self, index: usize) -> Option<&Entry> {
        self.entries.get(index.checked_sub(STATIC_LEN + 1)?)
    }

    /// Adds an entry of `value_len` octets (`value` kept only for a kept
    /// name), evicting the oldest as the size requires (§4.4).
    pub fn insert(&mut self, name: Name, value_len: usize, value: Option<Vec<u8>>) {
        let size = name.octets() + value_len + 32;
        if size > self.max_size {
            self.entries.clear();
            self.size = 0;
            return;
        }
        self.shrink_to(self.max_size - size);
        self.size += size;
        self.entries.push_front(Entry { name, value, size });
    }

    /// A dynamic table size update (§6.3).
    pub fn resize(&mut self, max_size: usize) {
        self.max_size = max_size;
        self.shrink_to(max_size);
    }

    fn shrink_to(&mut self, limit: usize) {
        while self.size > limit {
            match self.entries.pop_back() {
                Some(e) => self.size -= e.size,
                None => self.size = 0,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_evicted_oldest_first_and_only_kept_values_stored() {
        let mut t = DynamicTable::new(100);
        t.insert(Name::Kept(":path"), 10, Some(b"/0123456789".to_vec()));
        t.insert(Name::Other(13), 20, None);
        // 47 + 65 > 100: the path is evicted.
        assert!(matches!(
            t.get(62),
            Some(Entry {
                name: Name::Other(13),
                value: None,
                ..
            })
        ));
        assert!(t.get(63).is_none());
        t.resize(0);
        assert!(t.get(62).is_none());
        assert_eq!(static_entry(23).map(|e| e.0), Some(Name::Other(13)));
        assert_eq!(static_entry(4), Some((Name::Kept(":path"), "/")));
        assert_eq!(static_entry(62), None);
        assert_eq!(static_entry(0), None);
    }
}
