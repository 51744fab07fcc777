//! IP text forms exactly as `shipper.sysmon.dns.parse_ip` gives them: the C library's
//! `inet_pton` / `inet_ntop` rules (glibc), which Python's `socket` module calls.

use crate::util::py_strip;

/// glibc `inet_pton4`: four dotted decimal octets, no leading zeros, nothing else.
pub fn pton4(s: &[u8]) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut octets = 0usize;
    let mut saw_digit = false;
    let mut cur: u32 = 0;
    for &ch in s {
        if ch.is_ascii_digit() {
            let new = cur * 10 + u32::from(ch - b'0');
            if saw_digit && cur == 0 {
                return None;
            }
            if new > 255 {
                return None;
            }
            cur = new;
            if !saw_digit {
                octets += 1;
                if octets > 4 {
                    return None;
                }
                saw_digit = true;
            }
            out[octets - 1] = cur as u8;
        } else if ch == b'.' && saw_digit {
            if octets == 4 {
                return None;
            }
            cur = 0;
            saw_digit = false;
        } else {
            return None;
        }
    }
    if octets < 4 {
        return None;
    }
    Some(out)
}

fn hex_value(c: u8) -> Option<u32> {
    match c {
        b'0'..=b'9' => Some(u32::from(c - b'0')),
        b'a'..=b'f' => Some(u32::from(c - b'a' + 10)),
        b'A'..=b'F' => Some(u32::from(c - b'A' + 10)),
        _ => None,
    }
}

/// glibc `inet_pton6`.
pub fn pton6(s: &[u8]) -> Option<[u8; 16]> {
    let mut tmp = [0u8; 16];
    let mut tp = 0usize;
    let mut colonp: Option<usize> = None;
    let mut i = 0usize;
    if s.is_empty() {
        return None;
    }
    if s[0] == b':' {
        i += 1;
        if i >= s.len() || s[i] != b':' {
            return None;
        }
    }
    let mut curtok = i;
    let mut xdigits = 0;
    let mut val: u32 = 0;
    while i < s.len() {
        let ch = s[i];
        i += 1;
        if let Some(d) = hex_value(ch) {
            if xdigits == 4 {
                return None;
            }
            val = (val << 4) | d;
            if val > 0xffff {
                return None;
            }
            xdigits += 1;
            continue;
        }
        if ch == b':' {
            curtok = i;
            if xdigits == 0 {
                if colonp.is_some() {
                    return None;
                }
                colonp = Some(tp);
                continue;
            } else if i == s.len() {
                return None;
            }
            if tp + 2 > 16 {
                return None;
            }
            tmp[tp] = (val >> 8) as u8;
            tmp[tp + 1] = val as u8;
            tp += 2;
            xdigits = 0;
            val = 0;
            continue;
        }
        if ch == b'.' && tp + 4 <= 16 {
            if let Some(v4) = pton4(&s[curtok..]) {
                tmp[tp..tp + 4].copy_from_slice(&v4);
                tp += 4;
                xdigits = 0;
                break;
            }
        }
        return None;
    }
    if xdigits > 0 {
        if tp + 2 > 16 {
            return None;
        }
        tmp[tp] = (val >> 8) as u8;
        tmp[tp + 1] = val as u8;
        tp += 2;
    }
    if let Some(cp) = colonp {
        if tp == 16 {
            return None;
        }
        let n = tp - cp;
        let mut out = [0u8; 16];
        out[..cp].copy_from_slice(&tmp[..cp]);
        out[16 - n..].copy_from_slice(&tmp[cp..tp]);
        return Some(out);
    }
    if tp != 16 {
        return None;
    }
    Some(tmp)
}

pub fn ntop4(b: &[u8]) -> String {
    format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3])
}

/// glibc `inet_ntop6`.
pub fn ntop6(src: &[u8; 16]) -> String {
    let mut words = [0u32; 8];
    for (i, w) in words.iter_mut().enumerate() {
        *w = (u32::from(src[2 * i]) << 8) | u32::from(src[2 * i + 1]);
    }
    let (mut best_base, mut best_len): (isize, usize) = (-1, 0);
    let (mut cur_base, mut cur_len): (isize, usize) = (-1, 0);
    for (i, &w) in words.iter().enumerate() {
        if w == 0 {
            if cur_base == -1 {
                cur_base = i as isize;
                cur_len = 1;
            } else {
                cur_len += 1;
            }
        } else if cur_base != -1 {
            if best_base == -1 || cur_len > best_len {
                best_base = cur_base;
                best_len = cur_len;
            }
            cur_base = -1;
        }
    }
    if cur_base != -1 && (best_base == -1 || cur_len > best_len) {
        best_base = cur_base;
        best_len = cur_len;
    }
    if best_base != -1 && best_len < 2 {
        best_base = -1;
    }
    let mut out = String::with_capacity(40);
    for i in 0..8usize {
        let ii = i as isize;
        if best_base != -1 && ii >= best_base && ii < best_base + best_len as isize {
            if ii == best_base {
                out.push(':');
            }
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        if i == 6 && best_base == 0 && (best_len == 6 || (best_len == 5 && words[5] == 0xffff)) {
            out.push_str(&ntop4(&src[12..16]));
            break;
        }
        out.push_str(&format!("{:x}", words[i]));
    }
    if best_base != -1 && best_base as usize + best_len == 8 {
        out.push(':');
    }
    out
}

const MAPPED_V4_PREFIX: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/// `parse_ip`: a valid IP in canonical text form (IPv4-mapped IPv6 → IPv4, zone dropped).
pub fn parse_ip(value: &str) -> Option<String> {
    let s = py_strip(value);
    if s.contains('.') && !s.contains(':') {
        return pton4(s.as_bytes()).map(|b| ntop4(&b));
    }
    let s = match s.find('%') {
        Some(z) if z > 0 => &s[..z],
        _ => s,
    };
    let packed = pton6(s.as_bytes())?;
    if packed[..12] == MAPPED_V4_PREFIX {
        return Some(ntop4(&packed[12..]));
    }
    Some(ntop6(&packed))
}

/// The packed address of a canonical IP (the family chosen by `family6`), as `inet_pton` does.
pub fn pton(family6: bool, s: &str) -> Option<Vec<u8>> {
    if family6 {
        pton6(s.as_bytes()).map(|b| b.to_vec())
    } else {
        pton4(s.as_bytes()).map(|b| b.to_vec())
    }
}
