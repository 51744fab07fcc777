//! A small ordered JSON tree for the documents the mapper builds: objects are short vectors
//! searched linearly (a document's objects hold a handful of keys), keys are mostly static.

use std::borrow::Cow;

pub enum J {
    S(String),
    U(u64),
    I(i64),
    B(bool),
    A(Vec<J>),
    O(Obj),
}

impl J {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            J::S(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            J::U(n) => Some(*n),
            J::I(n) if *n >= 0 => Some(*n as u64),
            _ => None,
        }
    }
}

#[derive(Default)]
pub struct Obj(Vec<(Cow<'static, str>, J)>);

impl Obj {
    pub fn new() -> Self {
        Obj(Vec::new())
    }
    pub fn get(&self, key: &str) -> Option<&J> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn get_mut(&mut self, key: &str) -> Option<&mut J> {
        self.0.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// A Python dict's `d[key] = value`: replaces in place, else appends.
    pub fn insert(&mut self, key: impl Into<Cow<'static, str>>, value: J) {
        let key = key.into();
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| *k == key) {
            slot.1 = value;
        } else {
            self.0.push((key, value));
        }
    }
}

/// Which bytes a JSON string must escape (control characters, `"` and `\\`).
const NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = true;
        i += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// The index of the first byte at or after `from` that a JSON string must escape: eight bytes
/// at a time (a word with none of them is skipped whole; the lowest flagged byte of a word is
/// always a true one, as borrows only run upwards), the tail one by one.
#[inline]
fn next_escape(b: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::MAX / 255;
    let mut i = from;
    while i + 8 <= b.len() {
        let w = u64::from_le_bytes(b[i..i + 8].try_into().expect("eight bytes"));
        let ctrl = w.wrapping_sub(ONES * 0x20) & !w;
        let q = w ^ (ONES * u64::from(b'"'));
        let quote = q.wrapping_sub(ONES) & !q;
        let bs = w ^ (ONES * u64::from(b'\\'));
        let back = bs.wrapping_sub(ONES) & !bs;
        let flagged = (ctrl | quote | back) & (ONES << 7);
        if flagged != 0 {
            return Some(i + flagged.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    (i..b.len()).find(|&k| NEEDS_ESCAPE[b[k] as usize])
}

pub fn write_str(s: &str, out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    while let Some(i) = next_escape(b, start) {
        out.extend_from_slice(&b[start..i]);
        let c = b[i];
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(c >> 4) as usize]);
                out.push(HEX[(c & 15) as usize]);
            }
        }
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

pub fn write(j: &J, out: &mut Vec<u8>) {
    match j {
        J::S(s) => write_str(s, out),
        J::U(n) => out.extend_from_slice(n.to_string().as_bytes()),
        J::I(n) => out.extend_from_slice(n.to_string().as_bytes()),
        J::B(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        J::A(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        J::O(obj) => write_obj(obj, out),
    }
}

pub fn write_obj(obj: &Obj, out: &mut Vec<u8>) {
    out.push(b'{');
    for (i, (k, v)) in obj.0.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match k {
            // the mapper's own field names (literals): nothing to escape
            Cow::Borrowed(name) => {
                debug_assert!(next_escape(name.as_bytes(), 0).is_none());
                out.push(b'"');
                out.extend_from_slice(name.as_bytes());
                out.extend_from_slice(b"\":");
            }
            Cow::Owned(name) => {
                write_str(name, out);
                out.push(b':');
            }
        }
        write(v, out);
    }
    out.push(b'}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_matches_serde_json() {
        // the bytes that need escaping beside some that do not (ASCII, 2 to 4 byte characters),
        // falling at every offset within a word
        let alphabet: Vec<char> = "abc\"\\\n\r\t\u{8}\u{c}\u{0}\u{1f} ~\u{7f}é®😀"
            .chars()
            .collect();
        let mut seed = 0x9e3779b97f4a7c15u64;
        for len in 0..80 {
            for _ in 0..60 {
                let s: String = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        alphabet[(seed % alphabet.len() as u64) as usize]
                    })
                    .collect();
                let mut out = Vec::new();
                write_str(&s, &mut out);
                assert_eq!(out, serde_json::to_vec(&s).expect("a string"), "{s:?}");
                let parsed: String = serde_json::from_slice(&out).expect("valid JSON");
                assert_eq!(parsed, s);
            }
        }
    }
}
