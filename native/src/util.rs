//! Small text helpers with Python's semantics on ASCII input (the only input the native
//! mapper accepts: anything else goes to the Python mapper).

/// Python's `str.isspace()` for an ASCII character.
#[inline]
pub fn py_space(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1c | 0x1d | 0x1e | 0x1f
    )
}

/// Python's `str.strip()` (no argument) on ASCII text.
pub fn py_strip(s: &str) -> &str {
    let b = s.as_bytes();
    let mut start = 0;
    let mut end = b.len();
    while start < end && py_space(b[start]) {
        start += 1;
    }
    while end > start && py_space(b[end - 1]) {
        end -= 1;
    }
    &s[start..end]
}

/// Python's `str.isdigit()` on ASCII text (False for the empty string).
#[inline]
pub fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

/// Python's `str.rpartition(sep)` for a one-byte separator.
pub fn rpartition(s: &str, sep: u8) -> (&str, bool, &str) {
    match s.bytes().rposition(|c| c == sep) {
        Some(i) => (&s[..i], true, &s[i + 1..]),
        None => ("", false, s),
    }
}

/// Python's `str.partition(sep)`.
pub fn partition<'a>(s: &'a str, sep: &str) -> (&'a str, bool, &'a str) {
    match s.find(sep) {
        Some(i) => (&s[..i], true, &s[i + sep.len()..]),
        None => (s, false, ""),
    }
}

/// `int(s)` for a string of ASCII digits, or None when it does not fit in a u64.
pub fn parse_u64(s: &str) -> Option<u64> {
    if !all_digits(s) {
        return None;
    }
    let digits = s.trim_start_matches('0');
    if digits.len() > 20 {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    digits.parse::<u64>().ok()
}

/// `shipper.sysmon.normalise.parse_int` on a string: a non-negative decimal integer.
/// `Err(())` when the text is not one; `Ok(None)` when it is one too large for a u64 (the
/// caller treats that as "above the maximum").
pub fn parse_int_str(text: &str) -> Result<Option<u64>, ()> {
    if all_digits(text) {
        return Ok(parse_u64(text));
    }
    let s = py_strip(text);
    let digits = s.strip_prefix('+').unwrap_or(s);
    if all_digits(digits) {
        Ok(parse_u64(digits))
    } else {
        Err(())
    }
}

pub fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

/// `path.rpartition("\\")[2] or path`.
pub fn basename(path: &str) -> &str {
    let (_, _, name) = rpartition(path, b'\\');
    if name.is_empty() {
        path
    } else {
        name
    }
}
