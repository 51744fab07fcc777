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

pub fn write_str(s: &str, out: &mut Vec<u8>) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let b = s.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        if !NEEDS_ESCAPE[c as usize] {
            continue;
        }
        out.extend_from_slice(&b[start..i]);
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
        write_str(k, out);
        out.push(b':');
        write(v, out);
    }
    out.push(b'}');
}
