//! Compiled predicates and their evaluation on one document, each field's values read once.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::collections::HashMap;

use regex::{Regex, RegexBuilder};

use super::doc::J;
use super::spec::{FieldSpec, NodeSpec};
use super::values::{ip_key, java_lower, keyword_text, to_bool, to_long, utf16_len, Path};

/// The values of one field in one document, converted as its kind indexes them.
pub enum Values<'a> {
    Keyword(Vec<Cow<'a, str>>),
    Ip(Vec<u128>),
    Long(Vec<i128>),
    Bool(Vec<bool>),
    None,
}

impl Values<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Values::Keyword(v) => v.is_empty(),
            Values::Ip(v) => v.is_empty(),
            Values::Long(v) => v.is_empty(),
            Values::Bool(v) => v.is_empty(),
            Values::None => true,
        }
    }
}

/// A field known to the matcher: where its values are and how they convert.
pub struct Field {
    path: Path,
    spec: FieldSpec,
}

impl Field {
    fn read<'a>(&self, doc: &'a J) -> Values<'a> {
        let mut raw = Vec::new();
        self.path.raw(doc, &mut raw);
        let s = &self.spec;
        match s.kind.as_str() {
            "keyword" => Values::Keyword(
                raw.into_iter()
                    .filter_map(keyword_text)
                    .filter(|t| s.ia.is_none_or(|limit| utf16_len(t) <= limit))
                    .map(|t| if s.lower { Cow::Owned(java_lower(&t)) } else { t })
                    .collect(),
            ),
            "ip" => Values::Ip(raw.into_iter().filter_map(ip_key).collect()),
            "long" => Values::Long(raw.into_iter().filter_map(to_long).collect()),
            "boolean" => Values::Bool(raw.into_iter().filter_map(to_bool).collect()),
            _ => Values::None,
        }
    }
}

/// The fields of all rules, each once; a document's values are read lazily into `Doc`.
#[derive(Default)]
pub struct Fields {
    fields: Vec<Field>,
    index: HashMap<FieldSpec, usize>,
}

impl Fields {
    pub fn slot(&mut self, spec: &FieldSpec) -> usize {
        if let Some(&i) = self.index.get(spec) {
            return i;
        }
        let i = self.fields.len();
        self.fields.push(Field { path: Path::new(&spec.path), spec: spec.clone() });
        self.index.insert(spec.clone(), i);
        i
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }
}

/// One document under evaluation.
pub struct Doc<'a, 'd> {
    pub root: &'a J<'d>,
    fields: &'a Fields,
    cache: Vec<OnceCell<Values<'a>>>,
}

impl<'a, 'd> Doc<'a, 'd> {
    pub fn new(root: &'a J<'d>, fields: &'a Fields) -> Self {
        Doc { root, fields, cache: (0..fields.len()).map(|_| OnceCell::new()).collect() }
    }

    pub fn values(&self, slot: usize) -> &Values<'a> {
        self.cache[slot].get_or_init(|| self.fields.fields[slot].read(self.root))
    }
}

pub enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    AtLeast(usize, Vec<Node>),
    Const(bool),
    Re(usize, Regex),
    Ip(usize, u128, u128),
    Long(usize, i128, i128),
    Bool(usize, bool),
    KRange(usize, Option<String>, Option<String>, bool, bool),
    Exists(usize),
    Present(Path),
}

/// A Python `re` pattern (as `detectors/stream/patterns.py` writes them) in the `regex`
/// crate's syntax: escaped punctuation as code points (the two read some escapes differently).
pub fn rust_pattern(p: &str) -> Result<String, String> {
    let mut out = String::with_capacity(p.len() + 16);
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(e @ ('t' | 'n' | 'r')) => {
                out.push('\\');
                out.push(e);
            }
            Some(e) if e.is_ascii_alphanumeric() => return Err(format!("escape \\{e}")),
            Some(e) => out.push_str(&format!("\\x{{{:X}}}", e as u32)),
            None => return Err("trailing backslash".into()),
        }
    }
    Ok(out)
}

fn regex(p: &str) -> Result<Regex, String> {
    let body = rust_pattern(p)?;
    RegexBuilder::new(&format!("(?s)\\A(?:{body})\\z"))
        .size_limit(32 << 20)
        .dfa_size_limit(8 << 20)
        .build()
        .map_err(|e| e.to_string())
}

fn bound<T: std::str::FromStr>(b: &Option<String>, open: T) -> Result<T, String> {
    match b {
        None => Ok(open),
        Some(t) => t.parse().map_err(|_| format!("bound {t:?}")),
    }
}

pub fn compile(spec: &NodeSpec, fields: &mut Fields) -> Result<Node, String> {
    let all = |c: &Vec<NodeSpec>, f: &mut Fields| c.iter().map(|x| compile(x, f)).collect::<Result<Vec<_>, _>>();
    Ok(match spec {
        NodeSpec::All { c } => Node::All(all(c, fields)?),
        NodeSpec::Any { c } => Node::Any(all(c, fields)?),
        NodeSpec::Not { c } => Node::Not(Box::new(compile(c, fields)?)),
        NodeSpec::AtLeast { n, c } => Node::AtLeast(*n, all(c, fields)?),
        NodeSpec::True => Node::Const(true),
        NodeSpec::False => Node::Const(false),
        NodeSpec::Re { f, p } => Node::Re(fields.slot(f), regex(p)?),
        NodeSpec::Ip { f, lo, hi } => Node::Ip(fields.slot(f), bound(lo, 0)?, bound(hi, u128::MAX)?),
        NodeSpec::Long { f, lo, hi } => {
            Node::Long(fields.slot(f), bound(lo, i128::MIN)?, bound(hi, i128::MAX)?)
        }
        NodeSpec::Bool { f, v } => Node::Bool(fields.slot(f), *v),
        NodeSpec::KRange { f, lo, hi, il, ih } => {
            Node::KRange(fields.slot(f), lo.clone(), hi.clone(), *il, *ih)
        }
        NodeSpec::Exists { f } => Node::Exists(fields.slot(f)),
        NodeSpec::Present { path } => Node::Present(Path::new(path)),
    })
}

fn in_krange(v: &str, lo: &Option<String>, hi: &Option<String>, il: bool, ih: bool) -> bool {
    if let Some(lo) = lo {
        if v < lo.as_str() || (v == lo && !il) {
            return false;
        }
    }
    !matches!(hi, Some(hi) if v > hi.as_str() || (v == hi && !ih))
}

pub fn eval(node: &Node, doc: &Doc) -> bool {
    match node {
        Node::All(c) => c.iter().all(|n| eval(n, doc)),
        Node::Any(c) => c.iter().any(|n| eval(n, doc)),
        Node::Not(c) => !eval(c, doc),
        Node::AtLeast(n, c) => c.iter().filter(|x| eval(x, doc)).take(*n).count() >= *n,
        Node::Const(b) => *b,
        Node::Re(slot, rx) => match doc.values(*slot) {
            Values::Keyword(vs) => vs.iter().any(|v| rx.is_match(v)),
            _ => false,
        },
        Node::Ip(slot, lo, hi) => match doc.values(*slot) {
            Values::Ip(vs) => vs.iter().any(|v| lo <= v && v <= hi),
            _ => false,
        },
        Node::Long(slot, lo, hi) => match doc.values(*slot) {
            Values::Long(vs) => vs.iter().any(|v| lo <= v && v <= hi),
            _ => false,
        },
        Node::Bool(slot, b) => match doc.values(*slot) {
            Values::Bool(vs) => vs.contains(b),
            _ => false,
        },
        Node::KRange(slot, lo, hi, il, ih) => match doc.values(*slot) {
            Values::Keyword(vs) => vs.iter().any(|v| in_krange(v, lo, hi, *il, *ih)),
            _ => false,
        },
        Node::Exists(slot) => !doc.values(*slot).is_empty(),
        Node::Present(path) => {
            let mut raw = Vec::new();
            path.raw(doc.root, &mut raw);
            !raw.is_empty()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_escapes_become_code_points() {
        assert_eq!(rust_pattern(r"a\ b\.c\t.*").unwrap(), r"a\x{20}b\x{2E}c\t.*");
        assert!(rust_pattern(r"\d").is_err());
        let rx = regex(r"C:\\Windows\\.*\.exe").unwrap();
        assert!(rx.is_match(r"C:\Windows\System32\cmd.exe"));
        assert!(!rx.is_match(r"D:\Windows\x.exe"));
        assert!(regex("a.b").unwrap().is_match("a\nb")); // DOTALL
        assert!(!regex("ab").unwrap().is_match("abc")); // whole value
    }
}
