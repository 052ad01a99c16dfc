//! HPACK's Huffman code (RFC 7541 Appendix B), decoded from its code
//! lengths: the code is canonical (codes of one length are consecutive, in
//! symbol order), so the lengths alone define it. A test checks every
//! symbol against loona-hpack's decoder.

/// Code length of each symbol, 0-255 and EOS (256).
const LENGTHS: [u8; 257] = [
    13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 30, 28,
    28, 28, 28, 28, 28, 28, 28, 28, 6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6, 5, 5,
    5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10, 13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
    7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6, 15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6,
    6, 5, 6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28, 20, 22, 20, 20, 22, 22, 22, 23, 22,
    23, 23, 23, 23, 23, 24, 23, 24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24, 22,
    21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23, 21, 21, 22, 21, 23, 22, 23, 23, 20,
    22, 22, 22, 23, 22, 22, 23, 26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25, 19,
    21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27, 20, 24, 20, 21, 22, 21, 21, 23, 22,
    22, 25, 25, 24, 24, 26, 23, 26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26, 30,
];
const EOS: u16 = 256;
const MAX_LEN: usize = 30;

/// Per code length: its first code, how many codes, and where its symbols
/// start in `SYMBOLS`.
struct Canonical {
    first: [u32; MAX_LEN + 1],
    count: [u16; MAX_LEN + 1],
    start: [u16; MAX_LEN + 1],
    symbols: [u16; 257],
}

// A static, not a const: a const would be copied at each use.
static CODE: Canonical = canonical();

const fn canonical() -> Canonical {
    let mut c = Canonical {
        first: [0; MAX_LEN + 1],
        count: [0; MAX_LEN + 1],
        start: [0; MAX_LEN + 1],
        symbols: [0; 257],
    };
    let mut s = 0;
    while s < 257 {
        c.count[LENGTHS[s] as usize] += 1;
        s += 1;
    }
    let (mut code, mut at, mut len) = (0u32, 0u16, 1);
    while len <= MAX_LEN {
        c.first[len] = code;
        c.start[len] = at;
        let mut s = 0;
        while s < 257 {
            if LENGTHS[s] as usize == len {
                c.symbols[at as usize] = s as u16;
                at += 1;
            }
            s += 1;
        }
        code = (code + c.count[len] as u32) << 1;
        len += 1;
    }
    c
}

/// Decodes `raw`, appending the octets to `out` when given; returns how
/// many octets it decodes to, or `None` for a code HPACK forbids (EOS
/// inside, or padding that is not the EOS prefix or is 8 bits or more).
pub fn decode(raw: &[u8], mut out: Option<&mut Vec<u8>>) -> Option<usize> {
    let (mut code, mut len, mut n) = (0u32, 0usize, 0usize);
    for byte in raw {
        for shift in (0..8).rev() {
            code = (code << 1) | u32::from((byte >> shift) & 1);
            len += 1;
            let offset = code.wrapping_sub(CODE.first[len]);
            if offset < u32::from(CODE.count[len]) {
                let symbol = CODE.symbols[(CODE.start[len] as u32 + offset) as usize];
                if symbol == EOS {
                    return None;
                }
                if let Some(out) = out.as_deref_mut() {
                    out.push(symbol as u8);
                }
                n += 1;
                (code, len) = (0, 0);
            } else if len == MAX_LEN {
                return None;
            }
        }
    }
    // Padding: fewer than 8 bits, all ones (§5.2).
    (len < 8 && code == (1 << len) - 1).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The canonical code of every symbol, as (code, length).
    fn codes() -> Vec<(u32, u8)> {
        let mut codes = vec![(0, 0); 257];
        for len in 1..=MAX_LEN {
            for i in 0..CODE.count[len] {
                let s = CODE.symbols[(CODE.start[len] + i) as usize];
                codes[s as usize] = (CODE.first[len] + u32::from(i), len as u8);
            }
        }
        codes
    }

    fn encode(input: &[u8]) -> Vec<u8> {
        let codes = codes();
        let (mut acc, mut bits, mut out) = (0u64, 0u32, Vec::new());
        for &b in input {
            let (code, len) = codes[b as usize];
            acc = (acc << len) | u64::from(code);
            bits += u32::from(len);
            while bits >= 8 {
                out.push((acc >> (bits - 8)) as u8);
                bits -= 8;
            }
        }
        if bits > 0 {
            out.push(((acc << (8 - bits)) as u8) | ((1u8 << (8 - bits)) - 1));
        }
        out
    }

    #[test]
    fn rfc_example_decodes() {
        // RFC 7541 C.4.1: "www.example.com".
        let raw = [
            0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90, 0xf4, 0xff,
        ];
        let mut out = Vec::new();
        assert_eq!(decode(&raw, Some(&mut out)), Some(15));
        assert_eq!(out, b"www.example.com");
    }

    #[test]
    fn every_symbol_matches_loona_hpack() {
        let all: Vec<u8> = (0..=255).collect();
        let raw = encode(&all);
        let theirs = loona_hpack::huffman::HuffmanDecoder::new().decode(&raw);
        assert_eq!(theirs.as_deref().ok(), Some(all.as_slice()));
        let mut ours = Vec::new();
        assert_eq!(decode(&raw, Some(&mut ours)), Some(256));
        assert_eq!(ours, all);
    }

    #[test]
    fn bad_padding_and_eos_are_refused() {
        assert_eq!(decode(&[0xff, 0xff, 0xff, 0xff], None), None);
        // '0' (00000) padded with zeros, not ones.
        assert_eq!(decode(&[0b0000_0000], None), None);
        assert_eq!(decode(&[0b0000_0111], None), Some(1));
    }
}
