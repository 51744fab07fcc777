//! EventData normalisation (`shipper.sysmon.normalise.normalise_event_data`).

use super::{Fallback, NULL_GUID};
use crate::record;
use crate::util::{is_hex, py_strip};

/// The normalised EventData: names and values in document order; consumed entries are removed.
pub(super) struct Data {
    pub(super) entries: Vec<(String, String)>,
}

impl Data {
    pub(super) fn pos(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k == name)
    }
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub(super) fn contains(&self, name: &str) -> bool {
        self.pos(name).is_some()
    }
    pub(super) fn pop(&mut self, name: &str) -> Option<String> {
        let i = self.pos(name)?;
        Some(self.entries.remove(i).1)
    }
    pub(super) fn del(&mut self, name: &str) {
        if let Some(i) = self.pos(name) {
            self.entries.remove(i);
        }
    }
}

pub(super) const BOOL_FIELDS: [&str; 6] = [
    "Initiated",
    "SourceIsIpv6",
    "DestinationIsIpv6",
    "Archived",
    "IsExecutable",
    "Signed",
];
pub(super) const HEX_FIELDS: [&str; 2] = ["LogonId", "GrantedAccess"];

pub(super) fn is_blank_edge(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0x0c | 0x0b)
}

pub(super) fn canonical_guid(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 38 || b[0] != b'{' || b[37] != b'}' {
        return false;
    }
    for (i, &c) in b[1..37].iter().enumerate() {
        let dash = matches!(i, 8 | 13 | 18 | 23);
        if dash {
            if c != b'-' {
                return false;
            }
        } else if !(c.is_ascii_digit() || (b'A'..=b'F').contains(&c)) {
            return false;
        }
    }
    true
}

/// `normalise_guid`: `{UPPER-CASE-GUID}` for a GUID with or without braces, else None.
pub fn normalise_guid(value: &str) -> Option<String> {
    let mut s = value;
    let b = s.as_bytes();
    if b.len() == 38 && b[0] == b'{' && b[37] == b'}' {
        s = &s[1..37];
    } else if b.len() != 36 {
        s = py_strip(s);
        let b = s.as_bytes();
        if b.len() == 38 && b[0] == b'{' && b[37] == b'}' {
            s = &s[1..37];
        }
    }
    let b = s.as_bytes();
    if b.len() != 36 || b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
        return None;
    }
    for (i, &c) in b.iter().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        if !is_hex(c) {
            return None;
        }
    }
    Some(format!("{{{}}}", s.to_ascii_uppercase()))
}

pub(super) fn guid_rendering(s: &str) -> String {
    if canonical_guid(s) {
        return if s == NULL_GUID {
            String::new()
        } else {
            s.to_string()
        };
    }
    match normalise_guid(s) {
        Some(g) if g == NULL_GUID => String::new(),
        Some(g) => g,
        None => s.to_string(),
    }
}

pub(super) fn normalise_hex(value: &str) -> Option<String> {
    let s = py_strip(value);
    let b = s.as_bytes();
    if b.len() < 3
        || b[0] != b'0'
        || (b[1] != b'x' && b[1] != b'X')
        || !b[2..].iter().all(|&c| is_hex(c))
    {
        return None;
    }
    let digits = s[2..].trim_start_matches('0').to_ascii_lowercase();
    Some(if digits.is_empty() {
        "0x0".to_string()
    } else {
        format!("0x{digits}")
    })
}

pub(super) fn normalise_bool(value: &str) -> Option<&'static str> {
    match py_strip(value).to_ascii_lowercase().as_str() {
        "true" => Some("true"),
        "false" => Some("false"),
        _ => None,
    }
}

/// Fields the mapper case-folds, strips, slices or parses: their values must be ASCII here.
pub(super) const ASCII_ONLY: [&str; 18] = [
    "UtcTime",
    "Protocol",
    "DestinationPortName",
    "SourcePortName",
    "SourceIp",
    "DestinationIp",
    "Hashes",
    "Hash",
    "TargetObject",
    "QueryName",
    "QueryStatus",
    "QueryResults",
    "ProcessId",
    "SourceProcessId",
    "SourceThreadId",
    "ParentProcessId",
    "SourcePort",
    "DestinationPort",
];

pub(super) fn special(name: &str) -> bool {
    BOOL_FIELDS.contains(&name)
        || HEX_FIELDS.contains(&name)
        || (name.len() >= 4 && name[name.len() - 4..].eq_ignore_ascii_case("guid"))
}

/// `normalise_event_data` over the record's EventData (values str / int / null only).
pub(super) fn event_data(
    items: &[(record::Str<'_>, record::DataValue<'_>)],
) -> Result<Data, Fallback> {
    let mut entries: Vec<(String, String)> = Vec::with_capacity(items.len());
    for (name, value) in items {
        let name = name.0.as_ref();
        if !name.is_ascii() {
            return Err(Fallback::NonAscii);
        }
        let raw: String = match value {
            record::DataValue::Text(s) => s.to_string(),
            record::DataValue::Number(n) => n.clone(),
            record::DataValue::Bool(b) => (if *b { "true" } else { "false" }).to_string(),
            record::DataValue::Null => continue,
        };
        if raw.is_empty() || raw == "-" {
            continue;
        }
        let b = raw.as_bytes();
        let edge = is_blank_edge(b[0]) || is_blank_edge(b[b.len() - 1]);
        if !raw.is_ascii() && (edge || ASCII_ONLY.contains(&name) || special(name)) {
            return Err(Fallback::NonAscii); // Unicode case and white-space rules: Python's
        }
        if edge {
            let stripped = py_strip(&raw);
            if stripped.is_empty() || stripped == "-" {
                continue;
            }
        }
        let value = if BOOL_FIELDS.contains(&name) {
            normalise_bool(&raw).map(str::to_string).unwrap_or(raw)
        } else if HEX_FIELDS.contains(&name) {
            normalise_hex(&raw).unwrap_or(raw)
        } else if name.len() >= 4 && name[name.len() - 4..].eq_ignore_ascii_case("guid") {
            let g = guid_rendering(&raw);
            if g.is_empty() {
                continue;
            }
            g
        } else {
            raw
        };
        // a repeated name keeps its first place and takes the last value (a Python dict)
        if let Some(slot) = entries.iter_mut().find(|(k, _)| k == name) {
            slot.1 = value;
        } else {
            entries.push((name.to_string(), value));
        }
    }
    Ok(Data { entries })
}
