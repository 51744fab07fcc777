//! A field's values as Elasticsearch indexes them, as `detectors/stream/values.py` reads them:
//! arrays flattened at any depth, dotted keys also stored flat, `null` skipped, keyword text as
//! Python writes a scalar, `ignore_above` in UTF-16 units, Lucene's per-character lower case.

use std::borrow::Cow;

use super::doc::J;
use crate::ip::{pton4, pton6};

/// A document path split into parts, with the joined keys `a.b` a flat document may use.
pub struct Path {
    parts: Vec<String>,
    /// `joined[k][i]`: parts `k..k+i+1` joined with dots
    joined: Vec<Vec<String>>,
}

impl Path {
    pub fn new(path: &str) -> Self {
        let parts: Vec<String> = path.split('.').map(str::to_string).collect();
        let joined = (0..parts.len())
            .map(|k| (k + 1..=parts.len()).map(|end| parts[k..end].join(".")).collect())
            .collect();
        Path { parts, joined }
    }

    pub fn raw<'a, 'd>(&self, doc: &'a J<'d>, out: &mut Vec<&'a J<'d>>) {
        self.walk(doc, 0, out);
    }

    fn walk<'a, 'd>(&self, v: &'a J<'d>, depth: usize, out: &mut Vec<&'a J<'d>>) {
        match v {
            J::Arr(items) => items.iter().for_each(|x| self.walk(x, depth, out)),
            _ if depth == self.parts.len() => {
                if !matches!(v, J::Null | J::Obj(_)) {
                    out.push(v);
                }
            }
            J::Obj(_) => {
                for (i, key) in self.joined[depth].iter().enumerate() {
                    if let Some(x) = v.get(key) {
                        self.walk(x, depth + i + 1, out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Python's `repr` of a float (shortest round-trip digits; exponent form below 1e-4 and
/// from 1e16).
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    let sci = format!("{:e}", f); // e.g. "-1.5e-7", "1e16"
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let (sign, mant) = mant.strip_prefix('-').map_or(("", mant), |m| ("-", m));
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    if (-4..16).contains(&exp) {
        let point = exp + 1; // digits before the decimal point
        let s = if point <= 0 {
            format!("0.{}{}", "0".repeat((-point) as usize), digits)
        } else if point as usize >= digits.len() {
            format!("{}{}.0", digits, "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        return format!("{sign}{s}");
    }
    let rest = if digits.len() > 1 { format!(".{}", &digits[1..]) } else { String::new() };
    let esign = if exp < 0 { '-' } else { '+' };
    format!("{sign}{}{rest}e{esign}{:02}", &digits[..1], exp.abs())
}

/// The term a keyword field indexes for a JSON scalar (`keyword_text`).
pub fn keyword_text<'a>(v: &'a J) -> Option<Cow<'a, str>> {
    Some(match v {
        J::Str(s) => Cow::Borrowed(s.as_ref()),
        J::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        J::Int(n) => Cow::Owned(n.to_string()),
        J::UInt(n) => Cow::Owned(n.to_string()),
        J::Float(f) => Cow::Owned(py_float(*f)),
        _ => return None,
    })
}

pub fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.chars().map(char::len_utf16).sum()
    }
}

/// Lucene's LowerCaseFilter as `java_lower`: one code point to one (İ to i).
pub fn java_lower(s: &str) -> String {
    if s.is_ascii() {
        return s.to_ascii_lowercase();
    }
    java_lower_chars(s)
}

fn java_lower_chars(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut low = c.to_lowercase();
            match (low.next(), low.next()) {
                (Some(l), None) => l,
                _ if c == '\u{130}' => 'i',
                _ => c,
            }
        })
        .collect()
}

/// Python's `int(Decimal(text))`: surrounding whitespace, underscores between digits, a sign,
/// a fraction and an exponent; truncated toward zero. None where Python raises.
pub fn decimal_int(text: &str) -> Option<i128> {
    let t = text.trim();
    let t: String = if t.contains('_') {
        let b = t.as_bytes();
        for (i, c) in b.iter().enumerate() {
            if *c == b'_'
                && !(i > 0 && i + 1 < b.len() && b[i - 1].is_ascii_digit() && b[i + 1].is_ascii_digit())
            {
                return None;
            }
        }
        t.replace('_', "")
    } else {
        t.to_string()
    };
    let (neg, body) = match t.as_bytes().first()? {
        b'-' => (true, &t[1..]),
        b'+' => (false, &t[1..]),
        _ => (false, &t[..]),
    };
    let (num, exp) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], body[i + 1..].parse::<i64>().ok()?),
        None => (body, 0),
    };
    let (int_part, frac) = num.split_once('.').unwrap_or((num, ""));
    if int_part.is_empty() && frac.is_empty() {
        return None;
    }
    if !int_part.bytes().all(|c| c.is_ascii_digit()) || !frac.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // the digits, with the decimal point moved by the exponent, truncated
    let digits = format!("{int_part}{frac}");
    let point = int_part.len() as i64 + exp;
    let whole = if point <= 0 {
        "0".to_string()
    } else if point as usize >= digits.len() {
        if point > 60 {
            return Some(if neg { i128::MIN } else { i128::MAX }); // beyond any bound we compare
        }
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        digits[..point as usize].to_string()
    };
    let whole = whole.trim_start_matches('0');
    if whole.len() > 38 {
        return Some(if neg { i128::MIN } else { i128::MAX });
    }
    let n: i128 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    Some(if neg { -n } else { n })
}

/// A long field's value (`to_long`).
pub fn to_long(v: &J) -> Option<i128> {
    match v {
        J::Int(n) => Some(i128::from(*n)),
        J::UInt(n) => Some(i128::from(*n)),
        J::Float(f) => decimal_int(&py_float(*f)),
        J::Str(s) => decimal_int(s),
        _ => None,
    }
}

/// An address as the 128-bit number Elasticsearch stores (`ip_key`: Python's `ip_address`).
pub fn ip_key(v: &J) -> Option<u128> {
    let J::Str(s) = v else { return None };
    if s.contains(':') {
        let addr = match s.split_once('%') {
            Some((a, scope)) if !scope.is_empty() && !scope.contains('/') => a,
            Some(_) => return None,
            None => s,
        };
        pton6(addr.as_bytes()).map(u128::from_be_bytes)
    } else {
        pton4(s.as_bytes()).map(|b| u128::from(u32::from_be_bytes(b)) | 0xFFFF_0000_0000)
    }
}

pub fn to_bool(v: &J) -> Option<bool> {
    match v {
        J::Bool(b) => Some(*b),
        J::Str(s) => match s.as_ref() {
            "true" => Some(true),
            "false" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_python_does() {
        for (f, want) in [
            (1.5, "1.5"),
            (100.0, "100.0"),
            (1e16, "1e+16"),
            (1.25e-5, "1.25e-05"),
            (0.0001, "0.0001"),
            (-2.0, "-2.0"),
            (123456789012345.6, "123456789012345.6"),
        ] {
            assert_eq!(py_float(f), want);
        }
    }

    #[test]
    fn decimal_text_truncates_as_python() {
        for (t, want) in [
            (" 12 ", Some(12)),
            ("-3.9", Some(-3)),
            ("1e3", Some(1000)),
            ("1_000", Some(1000)),
            ("_1", None),
            (".5", Some(0)),
            ("abc", None),
            ("", None),
            ("1.5E1", Some(15)),
        ] {
            assert_eq!(decimal_int(t), want, "{t}");
        }
    }

    #[test]
    fn flat_and_nested_keys_both_read() {
        let doc = super::super::doc::parse(br#"{"a":{"b":[1,{"c":2}]},"a.b":{"c":[3,null]},"a.b.c":4}"#).unwrap();
        let mut out = Vec::new();
        Path::new("a.b.c").raw(&doc, &mut out);
        let got: Vec<String> = out.iter().map(|v| keyword_text(v).unwrap().into_owned()).collect();
        assert_eq!(got, ["2", "3", "4"]);
    }

    #[test]
    fn lower_case_is_per_code_point() {
        assert_eq!(java_lower("İSTANBUL Σ"), "istanbul σ");
    }
}
