//! One JSON object written straight into a byte buffer, fields in the order
//! they are put. attach writes one per kernel event (about 300 k/s on a busy
//! server), where a `serde_json::Value` per field, and the `String`s behind
//! it, cost more than everything else. The bytes are those serde_json
//! writes for the same fields (the tests below hold it to that).
use std::fmt::{self, Display, Write as _};

use serde_json::{Map, Value};

/// Where the fields of an object go: a `serde_json` map (trace mode, Chrome
/// args), or a [`JsonLine`] written straight out.
pub trait FieldSink {
    fn str(&mut self, key: &'static str, v: &str);
    /// A string of `v`'s `Display` text, without a `String` in between.
    fn display(&mut self, key: &'static str, v: &dyn Display);
    fn u64(&mut self, key: &'static str, v: u64);
    fn i64(&mut self, key: &'static str, v: i64);
    fn bool(&mut self, key: &'static str, v: bool);
    fn null(&mut self, key: &'static str);

    #[inline]
    fn opt_u64(&mut self, key: &'static str, v: Option<u64>) {
        match v {
            Some(v) => self.u64(key, v),
            None => self.null(key),
        }
    }

    fn opt_display(&mut self, key: &'static str, v: Option<&dyn Display>) {
        match v {
            Some(v) => self.display(key, v),
            None => self.null(key),
        }
    }
}

impl FieldSink for Map<String, Value> {
    fn str(&mut self, key: &'static str, v: &str) {
        self.insert(key.into(), Value::from(v));
    }
    fn display(&mut self, key: &'static str, v: &dyn Display) {
        self.insert(key.into(), Value::from(v.to_string()));
    }
    fn u64(&mut self, key: &'static str, v: u64) {
        self.insert(key.into(), Value::from(v));
    }
    fn i64(&mut self, key: &'static str, v: i64) {
        self.insert(key.into(), Value::from(v));
    }
    fn bool(&mut self, key: &'static str, v: bool) {
        self.insert(key.into(), Value::from(v));
    }
    fn null(&mut self, key: &'static str) {
        self.insert(key.into(), Value::Null);
    }
}

/// One JSON object being written at the end of a caller's buffer; the
/// buffer is reused from line to line, so a line allocates nothing.
pub struct JsonLine<'a> {
    buf: &'a mut Vec<u8>,
    empty: bool,
}

impl<'a> JsonLine<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        // An event line is about 300 bytes: one capacity check for most.
        buf.reserve(512);
        buf.push(b'{');
        Self { buf, empty: true }
    }

    /// Closes the object (no newline).
    pub fn end(self) {
        self.buf.push(b'}');
    }

    /// A nested object under `key`, its fields put by `fields`.
    pub fn object(&mut self, key: &'static str, fields: impl FnOnce(&mut JsonLine<'_>)) {
        self.key(key);
        let mut inner = JsonLine::new(self.buf);
        fields(&mut inner);
        inner.end();
    }

    /// Inlined, so that each key, a literal, is copied with a known length.
    #[inline]
    fn key(&mut self, key: &'static str) {
        if !self.empty {
            self.buf.push(b',');
        }
        self.empty = false;
        // Keys are our own names, none of which needs escaping.
        debug_assert!(!key.bytes().any(needs_escape), "key {key:?}");
        self.buf.push(b'"');
        self.buf.extend_from_slice(key.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }
}

impl FieldSink for JsonLine<'_> {
    #[inline]
    fn str(&mut self, key: &'static str, v: &str) {
        self.key(key);
        self.buf.push(b'"');
        escape_into(self.buf, v);
        self.buf.push(b'"');
    }
    #[inline]
    fn display(&mut self, key: &'static str, v: &dyn Display) {
        self.key(key);
        self.buf.push(b'"');
        // Escaping goes piece by piece; JSON escapes each char on its own.
        let _ = write!(Escaper(self.buf), "{v}");
        self.buf.push(b'"');
    }
    #[inline]
    fn u64(&mut self, key: &'static str, v: u64) {
        self.key(key);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }
    #[inline]
    fn i64(&mut self, key: &'static str, v: i64) {
        self.key(key);
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }
    #[inline]
    fn bool(&mut self, key: &'static str, v: bool) {
        self.key(key);
        self.buf
            .extend_from_slice(if v { b"true" } else { b"false" });
    }
    #[inline]
    fn null(&mut self, key: &'static str) {
        self.key(key);
        self.buf.extend_from_slice(b"null");
    }
}

/// `fmt::Write` that appends JSON-escaped text.
struct Escaper<'a>(&'a mut Vec<u8>);

impl fmt::Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        escape_into(self.0, s);
        Ok(())
    }
}

fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// Appends the contents of a JSON string for `s`, escaped as serde_json
/// does: `"`, `\` and the C0 controls, short forms where JSON has them.
pub fn escape_into(buf: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    // Nearly every value (names, numbers-as-text, addresses) is plain.
    let Some(first) = bytes.iter().position(|&b| needs_escape(b)) else {
        buf.extend_from_slice(bytes);
        return;
    };
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate().skip(first) {
        let short: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => b"",
            _ => continue,
        };
        buf.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        if short.is_empty() {
            buf.extend_from_slice(b"\\u00");
            buf.push(HEX[usize::from(b >> 4)]);
            buf.push(HEX[usize::from(b & 0xf)]);
        } else {
            buf.extend_from_slice(short);
        }
    }
    buf.extend_from_slice(&bytes[start..]);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Puts the same fields into a line and into a map.
    fn both(put: impl Fn(&mut dyn FieldSink)) -> (String, Map<String, Value>) {
        let mut buf = Vec::new();
        let mut line = JsonLine::new(&mut buf);
        put(&mut line);
        line.end();
        let mut map = Map::new();
        put(&mut map);
        (String::from_utf8(buf).unwrap_or_default(), map)
    }

    #[test]
    fn nested_objects_and_nulls() {
        let mut buf = b"x".to_vec();
        let mut line = JsonLine::new(&mut buf);
        line.u64("a", 1);
        line.object("p", |p| {
            p.opt_u64("s", None);
            p.i64("t", -3);
        });
        line.object("e", |_| {});
        line.bool("b", false);
        line.end();
        assert_eq!(buf, br#"x{"a":1,"p":{"s":null,"t":-3},"e":{},"b":false}"#);
    }

    proptest! {
        /// Any text, escaped, is what serde_json writes for it.
        #[test]
        fn strings_escape_as_serde_json_does(s in any::<String>(), ctl in "[\\x00-\\x1f\"\\\\\\x7f a]{0,40}") {
            for s in [&s, &ctl] {
                let mut buf = vec![b'"'];
                escape_into(&mut buf, s);
                buf.push(b'"');
                prop_assert_eq!(String::from_utf8(buf).unwrap_or_default(), serde_json::to_string(s).unwrap_or_default());
            }
        }

        /// Every kind of field, written, parses back to the map's value, in
        /// the order put (serde_json's map would sort, so compare the text).
        #[test]
        fn a_line_is_the_map_written_out(s in any::<String>(), u in any::<u64>(), i in any::<i64>(), b in any::<bool>(), o in any::<Option<u64>>()) {
            let (line, map) = both(|m| {
                m.str("s", &s);
                m.display("d", &format_args!("{s}-{u}"));
                m.u64("u", u);
                m.i64("i", i);
                m.bool("b", b);
                m.null("n");
                m.opt_u64("o", o);
                m.opt_display("od", o.as_ref().map(|v| v as &dyn Display));
            });
            let parsed: Value = serde_json::from_str(&line).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&parsed, &Value::Object(map.clone()));
            // Same bytes as serde_json's, field by field, in put order.
            let expected: Vec<String> = ["s", "d", "u", "i", "b", "n", "o", "od"]
                .iter()
                .map(|k| format!("{}:{}", serde_json::to_string(k).unwrap_or_default(), map[*k]))
                .collect();
            prop_assert_eq!(line, format!("{{{}}}", expected.join(",")));
        }
    }
}
