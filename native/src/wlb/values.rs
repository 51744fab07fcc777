//! The value rules of `shipper.readers._common` (`to_int`, `text_value`, `utc_iso`,
//! `guid_braced`) and the winlogbeat level and opcode names, or why Python must apply them.

use std::borrow::Cow;

use super::R;
use crate::fallback::Fallback;
use crate::jv::{Top, M, V};
use crate::record::DataValue;
use crate::util::py_strip;

/// `shipper.readers._common.to_int`, or Fallback where Python's `int()` would accept more
/// than the plain forms (underscores, Unicode digits) or give a number beyond 64 bits.
pub(super) fn to_int(v: Option<&V<'_>>) -> R<Option<i64>> {
    match v {
        Some(V::I(i)) => Ok(Some(*i)),
        Some(V::U(_)) => Err(Fallback::UnusualValue), // a Python int beyond i64
        Some(V::S(s)) => str_to_int(s),
        // null, a bool, a float (or an integer beyond u64: orjson makes it a float), a structure
        _ => Ok(None),
    }
}

pub(super) fn str_to_int(s: &str) -> R<Option<i64>> {
    if !s.is_ascii() {
        return Err(Fallback::NonAscii);
    }
    if s.contains('_') {
        return Err(Fallback::UnusualValue);
    }
    let t = py_strip(s);
    let (digits, radix, negative) = if t.len() >= 2 && (&t[..2] == "0x" || &t[..2] == "0X") {
        (&t[2..], 16, false)
    } else if let Some(rest) = t.strip_prefix('-') {
        (rest, 10, true)
    } else if let Some(rest) = t.strip_prefix('+') {
        (rest, 10, false)
    } else {
        (t, 10, false)
    };
    if digits.is_empty() || !digits.bytes().all(|c| (c as char).is_digit(radix)) {
        return Ok(None); // int() raises ValueError
    }
    let magnitude = u64::from_str_radix(digits, radix).map_err(|_| Fallback::UnusualValue)?;
    if negative {
        if magnitude > (i64::MAX as u64) + 1 {
            return Err(Fallback::UnusualValue);
        }
        Ok(Some((magnitude as i128).wrapping_neg() as i64))
    } else {
        i64::try_from(magnitude)
            .map(Some)
            .map_err(|_| Fallback::UnusualValue)
    }
}

/// `text_value`: the string a JSON value stands for (None for null); Fallback where Python
/// would render a float or dump a structure.
pub(super) fn text_value<'b>(v: &'b V<'_>) -> R<Option<Cow<'b, str>>> {
    match v {
        V::S(s) => Ok(Some(Cow::Borrowed(s.as_ref()))),
        V::Null => Ok(None),
        V::Bool(b) => Ok(Some(Cow::Borrowed(if *b { "true" } else { "false" }))),
        V::I(n) => Ok(Some(Cow::Owned(n.to_string()))),
        V::U(n) => Ok(Some(Cow::Owned(n.to_string()))),
        V::O(m) => match m.get("#text") {
            Some(inner) => text_value(inner),
            None => Err(Fallback::Shape),
        },
        V::F | V::A => Err(Fallback::Shape),
    }
}

/// `_str`: `text_value(v) or None`, as an empty string for none.
pub(super) fn text_or_empty<'b>(v: Option<&'b V<'_>>) -> R<Cow<'b, str>> {
    match v {
        None => Ok(Cow::Borrowed("")),
        Some(v) => Ok(text_value(v)?.unwrap_or(Cow::Borrowed(""))),
    }
}

/// `_get(doc, *path)`: None when a step is missing or not an object.
pub(super) fn get<'b, 'a>(node: &'b M<'a>, path: &[&str]) -> Option<&'b V<'a>> {
    let (last, steps) = path.split_last()?;
    let mut at = node;
    for key in steps {
        match at.get(key)? {
            V::O(m) => at = m,
            _ => return None,
        }
    }
    at.get(last)
}

/// `_get(doc, key, *path)` from a parsed top-level value.
pub(super) fn get_in<'b, 'a>(value: &'b Option<V<'a>>, path: &[&str]) -> Option<&'b V<'a>> {
    match value {
        Some(V::O(m)) => get(m, path),
        _ => None,
    }
}

/// A top-level value, parsed; Fallback if it cannot be (never: the line parsed).
pub(super) fn top_get<'a>(doc: &Top<'a>, key: &str) -> R<Option<V<'a>>> {
    doc.get(key).map_err(|_| Fallback::Shape)
}

pub(super) fn two(b: &[u8], at: usize) -> Option<u32> {
    let (x, y) = (*b.get(at)?, *b.get(at + 1)?);
    if x.is_ascii_digit() && y.is_ascii_digit() {
        Some(((x - b'0') * 10 + (y - b'0')) as u32)
    } else {
        None
    }
}

pub(super) fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(super) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

pub(super) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `utc_iso` for the forms winlogbeat writes: `yyyy-mm-ddThh:mm:ss[.digits](Z|±hh:mm)` (or a
/// space for the `T`). A string that is surely not a zoned time gives None, as in Python;
/// anything `datetime.fromisoformat` might read in another way is Fallback.
pub(super) fn utc_iso(v: Option<&V<'_>>) -> R<Option<String>> {
    let s = match v {
        Some(V::S(s)) => s.as_ref(),
        _ => return Ok(None),
    };
    if !s.is_ascii() {
        return Err(Fallback::NonAscii);
    }
    let t = py_strip(s);
    let b = t.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' {
        return Ok(None);
    }
    let Some((body, offset_minutes)) = split_zone(b)? else {
        return Ok(None);
    };
    // body: base[.fraction]
    let (base, fraction) = match body.iter().position(|c| *c == b'.') {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, &body[body.len()..]),
    };
    if !fraction.iter().all(|c| c.is_ascii_digit()) {
        return Ok(None); // `fraction and not fraction.isdigit()`
    }
    if base.len() != 19 || !matches!(base[10], b'T' | b' ') || base[13] != b':' || base[16] != b':'
    {
        return Err(Fallback::UnusualValue);
    }
    let year = base[..4]
        .iter()
        .try_fold(0i64, |a, c| {
            c.is_ascii_digit().then(|| a * 10 + (c - b'0') as i64)
        })
        .ok_or(Fallback::UnusualValue)?;
    let (mo, d) = (
        two(base, 5).ok_or(Fallback::UnusualValue)?,
        two(base, 8).ok_or(Fallback::UnusualValue)?,
    );
    let (h, mi, sec) = (
        two(base, 11).ok_or(Fallback::UnusualValue)?,
        two(base, 14).ok_or(Fallback::UnusualValue)?,
        two(base, 17).ok_or(Fallback::UnusualValue)?,
    );
    if !(2..=9998).contains(&year) || mo == 0 || mo > 12 || d == 0 || d > days_in_month(year, mo) {
        return Err(Fallback::UnusualValue); // fromisoformat's ValueError, or the edges of datetime's range
    }
    if h > 23 || mi > 59 || sec > 59 {
        return Err(Fallback::UnusualValue);
    }
    let minutes = days_from_civil(year, mo, d) * 1440 + (h * 60 + mi) as i64 - offset_minutes;
    let (y, m2, d2) = civil_from_days(minutes.div_euclid(1440));
    let rest = minutes.rem_euclid(1440);
    let mut out = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        y,
        m2,
        d2,
        rest / 60,
        rest % 60,
        sec
    );
    if !fraction.is_empty() {
        out.push('.');
        out.push_str(std::str::from_utf8(fraction).expect("ASCII"));
    }
    out.push('Z');
    Ok(Some(out))
}

/// `(the time before its zone, the zone's offset in minutes)`: `Z`, or `±hh:mm` after the
/// seconds; None without a zone.
fn split_zone(b: &[u8]) -> R<Option<(&[u8], i64)>> {
    if matches!(b[b.len() - 1], b'Z' | b'z') {
        Ok(Some((&b[..b.len() - 1], 0)))
    } else {
        // the last sign at or after index 19, as `max(rfind("+", 19), rfind("-", 19))`
        let sign_at = match b[19..].iter().rposition(|c| *c == b'+' || *c == b'-') {
            Some(i) => i + 19,
            None => return Ok(None),
        };
        let off = &b[sign_at..];
        if off.len() != 6 || off[3] != b':' {
            return Err(Fallback::UnusualValue);
        }
        let (hh, mm) = (
            two(off, 1).ok_or(Fallback::UnusualValue)?,
            two(off, 4).ok_or(Fallback::UnusualValue)?,
        );
        if hh > 23 || mm > 59 {
            return Err(Fallback::UnusualValue);
        }
        let m = (hh * 60 + mm) as i64;
        Ok(Some((&b[..sign_at], if off[0] == b'-' { -m } else { m })))
    }
}

/// `guid_braced` (empty: none).
pub(super) fn guid_braced(v: Option<&V<'_>>) -> R<String> {
    match v {
        Some(V::S(s)) if !s.is_empty() => {
            if !s.is_ascii() {
                return Err(Fallback::NonAscii);
            }
            let t = py_strip(s);
            let braced = if t.starts_with('{') {
                t.to_string()
            } else {
                format!("{{{t}}}")
            };
            Ok(braced.to_ascii_uppercase())
        }
        _ => Ok(String::new()),
    }
}

pub(super) fn level_name(v: Option<&V<'_>>) -> R<Option<i64>> {
    if let Some(V::S(s)) = v {
        if !s.is_ascii() {
            return Err(Fallback::NonAscii);
        }
        let known = match py_strip(s).to_ascii_lowercase().as_str() {
            "critical" => Some(1),
            "error" => Some(2),
            "warning" => Some(3),
            "information" | "info" => Some(4),
            "verbose" => Some(5),
            _ => None,
        };
        if known.is_some() {
            return Ok(known);
        }
    }
    to_int(v)
}

pub(super) fn opcode(v: Option<&V<'_>>) -> R<Option<i64>> {
    if let Some(n) = to_int(v)? {
        return Ok(Some(n));
    }
    match v {
        // str(value).strip().lower() looked up in the standard names
        Some(V::S(s)) => {
            if !s.is_ascii() {
                return Err(Fallback::NonAscii);
            }
            Ok(match py_strip(s).to_ascii_lowercase().as_str() {
                "info" => Some(0),
                "start" => Some(1),
                "stop" => Some(2),
                "datacollectionstart" => Some(3),
                "datacollectionstop" => Some(4),
                _ => None,
            })
        }
        _ => Ok(None), // "None", "True", a float or a structure: never a name
    }
}

pub(super) fn data_value<'b>(v: &'b V<'_>) -> R<DataValue<'b>> {
    Ok(match text_value(v)? {
        None => DataValue::Null,
        Some(text) => DataValue::Text(text),
    })
}

/// Top-level keys of NXLog / logstash documents that are not EventData

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ints() {
        assert!(matches!(str_to_int(" 42 "), Ok(Some(42))));
        assert!(matches!(str_to_int("0x1F"), Ok(Some(31))));
        assert!(matches!(str_to_int("-0x1F"), Ok(None)));
        assert!(matches!(str_to_int("+7"), Ok(Some(7))));
        assert!(matches!(
            str_to_int("-9223372036854775808"),
            Ok(Some(i64::MIN))
        ));
        assert!(str_to_int("9223372036854775808").is_err());
        assert!(matches!(str_to_int("abc"), Ok(None)));
        assert!(str_to_int("1_0").is_err());
    }

    #[test]
    fn times() {
        let v = V::S("2026-11-02T00:30:00.5+01:00".into());
        assert_eq!(
            utc_iso(Some(&v)).ok().flatten().as_deref(),
            Some("2026-11-01T23:30:00.5Z")
        );
        let v = V::S("2026-11-02 00:00:00.503Z".into());
        assert_eq!(
            utc_iso(Some(&v)).ok().flatten().as_deref(),
            Some("2026-11-02T00:00:00.503Z")
        );
        let v = V::S("2026-11-02 00:00:00".into());
        assert!(matches!(utc_iso(Some(&v)), Ok(None)));
    }
}
