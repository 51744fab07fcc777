//! The fast paths of `parse_utc_time` and `parse_iso_time`.

use crate::util::all_digits;

pub(super) fn valid_date(y: u32, m: u32, d: u32) -> bool {
    if y == 0 || m == 0 || m > 12 || d == 0 {
        return false;
    }
    let leap = (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if leap {
                29
            } else {
                28
            }
        }
    };
    d <= days
}

pub(super) fn num(s: &str) -> u32 {
    s.parse().unwrap_or(u32::MAX)
}

/// `_fixed_layout`: `yyyy-MM-dd?HH:mm:ss` with ASCII digits in place, a real date and time.
pub(super) fn fixed_layout(v: &str) -> bool {
    let b = v.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return false;
    }
    for r in [0..4, 5..7, 8..10, 11..13, 14..16, 17..19] {
        if !b[r].iter().all(u8::is_ascii_digit) {
            return false;
        }
    }
    &v[11..13] < "24"
        && &v[14..16] < "60"
        && &v[17..19] < "60"
        && valid_date(num(&v[0..4]), num(&v[5..7]), num(&v[8..10]))
}

/// `parse_utc_time`, its fast path only (None: let Python decide).
pub(super) fn parse_utc_time(v: &str) -> Option<String> {
    let b = v.as_bytes();
    if b.len() == 23 && b[10] == b' ' && b[19] == b'.' && all_digits(&v[20..]) && fixed_layout(v) {
        return Some(format!("{}T{}Z", &v[0..10], &v[11..23]));
    }
    None
}

/// `parse_iso_time`, its fast path only.
pub(super) fn parse_iso_time(v: &str) -> Option<String> {
    let b = v.as_bytes();
    if b.len() > 21 && b[b.len() - 1] == b'Z' && b[10] == b'T' && b[19] == b'.' {
        let frac = &v[20..v.len() - 1];
        if all_digits(frac) && fixed_layout(v) {
            let mut f = frac.to_string();
            f.push_str("000000");
            return Some(format!("{}.{}Z", &v[0..19], &f[..6]));
        }
    }
    // `yyyy-MM-ddTHH:mm:ssZ` (no fraction: the readers' utc_iso gives these): the pattern's
    // groups as they are, with zero microseconds
    if b.len() == 20 && b[19] == b'Z' && b[10] == b'T' && fixed_layout(v) {
        return Some(format!("{}.000000Z", &v[0..19]));
    }
    None
}
