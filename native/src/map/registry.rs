//! Registry paths (hive, key, value) and value data.

use super::tree::{s, sub, St};
use crate::json::{Obj, J};
use crate::util::{is_hex, partition, rpartition};

pub(super) fn hive_of(first: &str) -> Option<&'static str> {
    Some(match first.to_ascii_uppercase().as_str() {
        "HKLM" | "HKEY_LOCAL_MACHINE" => "HKLM",
        "HKU" | "HKEY_USERS" => "HKU",
        "HKCU" | "HKEY_CURRENT_USER" => "HKCU",
        "HKCR" | "HKEY_CLASSES_ROOT" => "HKCR",
        "HKCC" | "HKEY_CURRENT_CONFIG" => "HKCC",
        "HKDD" | "HKEY_DYN_DATA" => "HKDD",
        "HKPD" | "HKEY_PERFORMANCE_DATA" => "HKPD",
        _ => return None,
    })
}

pub(super) fn split_hive(target: &str) -> Option<(&'static str, &str)> {
    if target.len() >= 10 && target[..10].eq_ignore_ascii_case("\\REGISTRY\\") {
        let (root, _, rest) = partition(&target[10..], "\\");
        let hive = match root.to_ascii_uppercase().as_str() {
            "MACHINE" => "HKLM",
            "USER" => "HKU",
            _ => return None,
        };
        return Some((hive, rest));
    }
    let (first, _, rest) = partition(target, "\\");
    hive_of(first).map(|h| (h, rest))
}

pub(super) fn hex_group(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 8 || !s.bytes().all(is_hex) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

pub(super) fn parse_details(details: &str) -> (&'static str, String) {
    if let Some(inner) = details
        .strip_prefix("DWORD (0x")
        .and_then(|r| r.strip_suffix(')'))
    {
        if let Some(v) = hex_group(inner) {
            return ("SZ_DWORD", v.to_string());
        }
    } else if details.starts_with("QWORD (") {
        if let Some(inner) = details
            .strip_prefix("QWORD (0x")
            .and_then(|r| r.strip_suffix(')'))
        {
            let (hi, sep, lo) = partition(inner, "-0x");
            if sep {
                if let (Some(h), Some(l)) = (hex_group(hi), hex_group(lo)) {
                    return ("SZ_QWORD", ((h << 32) | l).to_string());
                }
            }
        }
    } else if details == "Binary Data" {
        return ("REG_BINARY", details.to_string());
    }
    ("REG_SZ", details.to_string())
}

pub(super) fn map_registry(st: &mut St, doc: &mut Obj) {
    if let Some(target) = st.data.pop("TargetObject") {
        let names_value = match st.data.get("EventType") {
            Some(et) if !et.is_empty() => et.ends_with("Value"),
            _ => st.data.contains("Details"),
        };
        let registry = sub(doc, "registry");
        match split_hive(&target) {
            None => {
                registry.insert("path", s(&target));
            }
            Some((hive, rest)) => {
                let path = if rest.is_empty() {
                    hive.to_string()
                } else {
                    format!("{hive}\\{rest}")
                };
                registry.insert("path", J::S(path));
                registry.insert("hive", s(hive));
                if !rest.is_empty() {
                    let (parent, sep, last) = rpartition(rest, b'\\');
                    let key = if names_value {
                        if sep {
                            parent
                        } else {
                            ""
                        }
                    } else {
                        rest
                    };
                    if !key.is_empty() {
                        registry.insert("key", s(key));
                    }
                    if !last.is_empty() {
                        registry.insert("value", s(last));
                    }
                }
            }
        }
    }
    if let Some(details) = st.data.pop("Details") {
        let (kind, value) = parse_details(&details);
        let data = sub(sub(doc, "registry"), "data");
        data.insert("type", s(kind));
        data.insert("strings", J::A(vec![J::S(value)]));
    }
}
