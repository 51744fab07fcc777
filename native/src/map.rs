//! One EVTX record (pyevtx-rs JSON shape) → the ECS document and `_id` that
//! `shipper.readers.evtx._event_from_json` + `shipper.sysmon.ecs.to_ecs_and_id` give, for the
//! records both agree are ordinary: a Sysmon record in the shape Windows writes, every string
//! ASCII, every value convertible. Anything else returns `None` and is mapped by Python, so
//! the native path never has to reproduce an error document or a Unicode rule.

use std::borrow::Cow;
use std::sync::Arc;

use base64::Engine;
use blake2::digest::{Update, VariableOutput};

use crate::json::{write_obj, Obj, J};
use sha1::{Digest, Sha1};

use crate::cmdline::split_command_line;
use crate::ip::{parse_ip, pton};
use crate::psl::Psl;
use crate::record;
use crate::util::{
    all_digits, basename, is_hex, parse_int_str, parse_u64, partition, py_strip, rpartition,
};

pub const SYSMON_PROVIDER: &str = "Microsoft-Windows-Sysmon";
const ECS_VERSION: &str = "8.17.0";
const MAX_LONG: u64 = (1u64 << 63) - 1;
const MAX_PORT: u64 = 65535;
const NULL_GUID: &str = "{00000000-0000-0000-0000-000000000000}";

pub struct Mapped {
    pub event_id: i64,
    pub record_id: Option<i64>,
    pub doc: Vec<u8>,
    pub doc_id: String,
}

/// Why a record is not mapped natively (kept for tests and the benchmark's curiosity only).
type Fallback = ();

// ------------------------------------------------------------------ the System fields

pub struct System<'a> {
    pub provider: Cow<'a, str>,
    pub event_id: i64,
    /// None: the record has none (an NXLog export without RecordNumber)
    pub record_id: Option<i64>,
    pub computer: Cow<'a, str>,
    pub channel: Cow<'a, str>,
    /// None: the record has no TimeCreated Python could read (NXLog's zone-less local time)
    pub time_created: Option<Cow<'a, str>>,
    /// empty: none
    pub provider_guid: String,
    pub version: Option<i64>,
    pub level: Option<i64>,
    pub task: Option<i64>,
    pub opcode: Option<i64>,
    pub process_id: Option<i64>,
    pub thread_id: Option<i64>,
    /// empty: none
    pub user_sid: Cow<'a, str>,
}

/// `careful`: Python reads this record on its careful path (`_event_from_json_careful`), which
/// renders the provider GUID with `guid_braced` (stripped; empty: none).
fn system_fields<'a>(sys: &'a record::System<'a>, careful: bool) -> Option<System<'a>> {
    let provider = sys.provider.attributes.name.0.as_ref();
    let guid = sys.provider.attributes.guid.0.as_ref();
    let stamp = sys.time_created.attributes.system_time.0.as_ref();
    let computer = sys.computer.0.as_ref();
    if !provider.is_ascii() || !guid.is_ascii() || !stamp.is_ascii() || !computer.is_ascii() {
        return None;
    }
    if !stamp.ends_with('Z') {
        return None;
    }
    let guid = if careful { py_strip(guid) } else { guid };
    let provider_guid = if careful && guid.is_empty() {
        String::new() // no provider_guid at all
    } else if guid.starts_with('{') {
        guid.to_ascii_uppercase()
    } else {
        format!("{{{}}}", guid.to_ascii_uppercase())
    };
    let _ = &sys.keywords; // must be a string (the parse checked it)
    Some(System {
        provider: Cow::Borrowed(provider),
        event_id: sys.event_id,
        record_id: Some(sys.event_record_id),
        computer: Cow::Borrowed(computer),
        channel: Cow::Borrowed(sys.channel.0.as_ref()),
        time_created: Some(Cow::Borrowed(stamp)),
        provider_guid,
        version: sys.version.0,
        level: sys.level.0,
        task: sys.task.0,
        opcode: sys.opcode.0,
        process_id: sys.execution.attributes.process_id.0,
        thread_id: sys.execution.attributes.thread_id.0,
        user_sid: Cow::Borrowed(sys.security.attributes.user_id.0.as_ref()),
    })
}

// ------------------------------------------------------------------ EventData normalisation

/// The normalised EventData: names and values in document order; consumed entries are removed.
struct Data {
    entries: Vec<(String, String)>,
}

impl Data {
    fn pos(&self, name: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| k == name)
    }
    fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    fn contains(&self, name: &str) -> bool {
        self.pos(name).is_some()
    }
    fn pop(&mut self, name: &str) -> Option<String> {
        let i = self.pos(name)?;
        Some(self.entries.remove(i).1)
    }
    fn del(&mut self, name: &str) {
        if let Some(i) = self.pos(name) {
            self.entries.remove(i);
        }
    }
}

const BOOL_FIELDS: [&str; 6] = [
    "Initiated",
    "SourceIsIpv6",
    "DestinationIsIpv6",
    "Archived",
    "IsExecutable",
    "Signed",
];
const HEX_FIELDS: [&str; 2] = ["LogonId", "GrantedAccess"];

fn is_blank_edge(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\r' | b'\n' | 0x0c | 0x0b)
}

fn canonical_guid(s: &str) -> bool {
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

fn guid_rendering(s: &str) -> String {
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

fn normalise_hex(value: &str) -> Option<String> {
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

fn normalise_bool(value: &str) -> Option<&'static str> {
    match py_strip(value).to_ascii_lowercase().as_str() {
        "true" => Some("true"),
        "false" => Some("false"),
        _ => None,
    }
}

/// Fields the mapper case-folds, strips, slices or parses: their values must be ASCII here.
const ASCII_ONLY: [&str; 18] = [
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

fn special(name: &str) -> bool {
    BOOL_FIELDS.contains(&name)
        || HEX_FIELDS.contains(&name)
        || (name.len() >= 4 && name[name.len() - 4..].eq_ignore_ascii_case("guid"))
}

/// `normalise_event_data` over the record's EventData (values str / int / null only).
fn event_data(items: &[(record::Str<'_>, record::DataValue<'_>)]) -> Option<Data> {
    let mut entries: Vec<(String, String)> = Vec::with_capacity(items.len());
    for (name, value) in items {
        let name = name.0.as_ref();
        if !name.is_ascii() {
            return None;
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
            return None; // Unicode case and white-space rules: Python's
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
    Some(Data { entries })
}

// ------------------------------------------------------------------ times

fn valid_date(y: u32, m: u32, d: u32) -> bool {
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

fn num(s: &str) -> u32 {
    s.parse().unwrap_or(u32::MAX)
}

/// `_fixed_layout`: `yyyy-MM-dd?HH:mm:ss` with ASCII digits in place, a real date and time.
fn fixed_layout(v: &str) -> bool {
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
fn parse_utc_time(v: &str) -> Option<String> {
    let b = v.as_bytes();
    if b.len() == 23 && b[10] == b' ' && b[19] == b'.' && all_digits(&v[20..]) && fixed_layout(v) {
        return Some(format!("{}T{}Z", &v[0..10], &v[11..23]));
    }
    None
}

/// `parse_iso_time`, its fast path only.
fn parse_iso_time(v: &str) -> Option<String> {
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

// ------------------------------------------------------------------ the document

struct St {
    data: Data,
    ips: Vec<String>,
    users: Vec<String>,
    hashes: Vec<String>,
    hosts: Vec<String>,
}

fn add_unique(items: &mut Vec<String>, value: &str) {
    if !items.iter().any(|v| v == value) {
        items.push(value.to_string());
    }
}

fn sub<'a>(d: &'a mut Obj, key: &'static str) -> &'a mut Obj {
    if !d.contains_key(key) {
        d.insert(key, J::O(Obj::new()));
    }
    match d.get_mut(key) {
        Some(J::O(m)) => m,
        _ => unreachable!("only objects are created at inner paths"),
    }
}

fn has(doc: &Obj, path: &[&str]) -> bool {
    let mut d = doc;
    for (i, key) in path.iter().enumerate() {
        match d.get(key) {
            None => return false,
            Some(v) => {
                if i + 1 == path.len() {
                    return true;
                }
                match v {
                    J::O(m) => d = m,
                    _ => return false,
                }
            }
        }
    }
    true
}

fn put(doc: &mut Obj, path: &[&'static str], value: J) {
    let mut d = doc;
    for key in &path[..path.len() - 1] {
        d = sub(d, key);
    }
    d.insert(path[path.len() - 1].to_string(), value);
}

fn s(v: &str) -> J {
    J::S(v.to_string())
}

fn str_list(items: &[String]) -> J {
    J::A(items.iter().map(|v| s(v)).collect())
}

struct Spec {
    category: &'static [&'static str],
    kind: &'static [&'static str],
    action: &'static str,
    hash_target: Option<&'static str>,
    pe_target: Option<&'static str>,
}

const fn sp(
    category: &'static [&'static str],
    kind: &'static [&'static str],
    action: &'static str,
    hash_target: Option<&'static str>,
    pe_target: Option<&'static str>,
) -> Spec {
    Spec {
        category,
        kind,
        action,
        hash_target,
        pe_target,
    }
}

const P: Option<&str> = Some("process");
const F: Option<&str> = Some("file");

/// `shipper.sysmon.events.EVENTS` (a unit test compares both tables).
fn spec(eid: i64) -> Option<Spec> {
    Some(match eid {
        1 => sp(&["process"], &["start"], "Process creation", P, P),
        2 => sp(
            &["file"],
            &["change"],
            "File creation time changed",
            None,
            None,
        ),
        3 => sp(
            &["network"],
            &["start", "connection", "protocol"],
            "Network connection",
            None,
            None,
        ),
        4 => sp(
            &["process"],
            &["change"],
            "Sysmon service state changed",
            None,
            None,
        ),
        5 => sp(&["process"], &["end"], "Process terminated", None, None),
        6 => sp(&["driver"], &["start"], "Driver loaded", F, None),
        7 => sp(
            &["process", "library"],
            &["change", "start"],
            "Image loaded",
            F,
            F,
        ),
        8 => sp(&["process"], &["change"], "CreateRemoteThread", None, None),
        9 => sp(&["process"], &["access"], "RawAccessRead", None, None),
        10 => sp(&["process"], &["access"], "ProcessAccess", None, None),
        11 => sp(&["file"], &["creation"], "File created", None, None),
        12 => sp(
            &["configuration", "registry"],
            &["change"],
            "Registry object added or deleted",
            None,
            None,
        ),
        13 => sp(
            &["configuration", "registry"],
            &["change"],
            "Registry value set",
            None,
            None,
        ),
        14 => sp(
            &["configuration", "registry"],
            &["change"],
            "Registry object renamed",
            None,
            None,
        ),
        15 => sp(&["file"], &["access"], "File stream created", F, None),
        16 => sp(
            &["configuration"],
            &["change"],
            "Sysmon configuration changed",
            None,
            None,
        ),
        17 => sp(&["file"], &["creation"], "Pipe created", None, None),
        18 => sp(&["file"], &["access"], "Pipe connected", None, None),
        19 => sp(
            &["process"],
            &["creation"],
            "WmiEventFilter activity detected",
            None,
            None,
        ),
        20 => sp(
            &["process"],
            &["creation"],
            "WmiEventConsumer activity detected",
            None,
            None,
        ),
        21 => sp(
            &["process"],
            &["access"],
            "WmiEventConsumerToFilter activity detected",
            None,
            None,
        ),
        22 => sp(
            &["network"],
            &["connection", "protocol", "info"],
            "DNS query",
            None,
            None,
        ),
        23 => sp(&["file"], &["deletion"], "File delete archived", P, None),
        24 => sp(&[], &["change"], "Clipboard changed", P, None),
        25 => sp(&["process"], &["change"], "Process tampering", P, None),
        26 => sp(&["file"], &["deletion"], "File delete logged", F, None),
        27 => sp(
            &["file"],
            &["creation", "denied"],
            "File block executable",
            F,
            None,
        ),
        28 => sp(
            &["file"],
            &["deletion", "denied"],
            "File block shredding",
            F,
            None,
        ),
        29 => sp(
            &["file"],
            &["creation"],
            "File executable detected",
            F,
            None,
        ),
        255 => sp(&["process"], &["error"], "Sysmon error", None, None),
        _ => return None,
    })
}

/// The table as (id, category, type, action, hash target, pe target), for the test that
/// compares it with the Python one.
/// (id, category, type, action, hash target, pe target)
pub type SpecRow = (
    i64,
    Vec<String>,
    Vec<String>,
    String,
    Option<String>,
    Option<String>,
);

pub fn spec_table() -> Vec<SpecRow> {
    (0..=300)
        .filter_map(|eid| {
            spec(eid).map(|x| {
                (
                    eid,
                    x.category.iter().map(|v| v.to_string()).collect(),
                    x.kind.iter().map(|v| v.to_string()).collect(),
                    x.action.to_string(),
                    x.hash_target.map(str::to_string),
                    x.pe_target.map(str::to_string),
                )
            })
        })
        .collect()
}

const STRINGS: [(&str, &[&str]); 8] = [
    ("ProcessGuid", &["process", "entity_id"]),
    ("SourceProcessGuid", &["process", "entity_id"]),
    ("SourceProcessGUID", &["process", "entity_id"]),
    ("CurrentDirectory", &["process", "working_directory"]),
    ("ParentProcessGuid", &["process", "parent", "entity_id"]),
    ("Signature", &["file", "code_signature", "subject_name"]),
    ("SourceHostname", &["source", "domain"]),
    ("DestinationHostname", &["destination", "domain"]),
];
const INTS: [(&str, &[&str], u64); 6] = [
    ("ProcessId", &["process", "pid"], MAX_LONG),
    ("SourceProcessId", &["process", "pid"], MAX_LONG),
    ("SourceThreadId", &["process", "thread", "id"], MAX_LONG),
    ("ParentProcessId", &["process", "parent", "pid"], MAX_LONG),
    ("SourcePort", &["source", "port"], MAX_PORT),
    ("DestinationPort", &["destination", "port"], MAX_PORT),
];
const PE_FIELDS: [(&str, &str); 5] = [
    ("OriginalFileName", "original_file_name"),
    ("Company", "company"),
    ("Description", "description"),
    ("FileVersion", "file_version"),
    ("Product", "product"),
];
const BOOL_TARGETS: [(&str, &[&str]); 3] = [
    ("Signed", &["file", "code_signature", "signed"]),
    ("Archived", &["sysmon", "file", "archived"]),
    ("IsExecutable", &["sysmon", "file", "is_executable"]),
];

impl St {
    fn take_int(&mut self, name: &str, top: u64) -> Result<Option<u64>, Fallback> {
        let Some(value) = self.data.get(name) else {
            return Ok(None);
        };
        match parse_int_str(value) {
            Ok(Some(n)) if n <= top => {
                self.data.del(name);
                Ok(Some(n))
            }
            _ => Err(()),
        }
    }

    fn take_bool(&mut self, name: &str) -> Result<Option<bool>, Fallback> {
        let Some(value) = self.data.get(name) else {
            return Ok(None);
        };
        match value {
            "true" => {
                self.data.del(name);
                Ok(Some(true))
            }
            "false" => {
                self.data.del(name);
                Ok(Some(false))
            }
            _ => {
                // `false - shredded file …`: the first word; the raw value stays
                let (head, sep, _) = partition(value, " - ");
                if !sep {
                    return Err(());
                }
                match py_strip(head).to_ascii_lowercase().as_str() {
                    "true" => Ok(Some(true)),
                    "false" => Ok(Some(false)),
                    _ => Err(()),
                }
            }
        }
    }

    fn take_ip(&mut self, name: &str) -> Result<Option<String>, Fallback> {
        let Some(value) = self.data.get(name) else {
            return Ok(None);
        };
        let ip = parse_ip(value).ok_or(())?;
        self.data.del(name);
        Ok(Some(ip))
    }
}

fn map_user(st: &mut St, target: &mut Obj, user: &str) {
    let parts: Vec<&str> = user.split('\\').collect();
    if parts.len() == 2 && !parts[0].is_empty() && !parts[1].is_empty() {
        target.insert("domain", s(parts[0]));
        target.insert("name", s(parts[1]));
        add_unique(&mut st.users, parts[1]);
    } else {
        target.insert("name", s(user));
        add_unique(&mut st.users, user);
    }
}

fn map_command_line(target: &mut Obj, command_line: &str) {
    target.insert("command_line", s(command_line));
    let args = split_command_line(command_line);
    if !args.is_empty() {
        let n = args.len();
        target.insert("args", J::A(args.into_iter().map(J::S).collect()));
        target.insert("args_count", J::U(n as u64));
    }
}

fn map_file_path(file: &mut Obj, path: &str) {
    file.insert("path", s(path));
    let (directory, sep, name) = rpartition(path, b'\\');
    if sep && !directory.is_empty() {
        file.insert("directory", s(directory));
    }
    if name.is_empty() {
        return;
    }
    file.insert("name", s(name));
    let base = partition(name, ":").0;
    let (stem, dot, ext) = rpartition(base, b'.');
    if dot && !stem.is_empty() && !ext.is_empty() {
        file.insert("extension", s(ext));
    }
}

const ECS_HASH_ALGOS: [&str; 5] = ["md5", "sha1", "sha256", "sha384", "sha512"];

fn parse_hashes(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in value.split(',') {
        let (algo, sep, digest) = partition(part, "=");
        if !sep {
            continue;
        }
        let algo = py_strip(algo).to_ascii_lowercase();
        let digest = py_strip(digest).to_ascii_lowercase();
        if algo.is_empty() || digest.is_empty() || digest.bytes().all(|c| c == b'0') {
            continue;
        }
        out.push((algo, digest));
    }
    out
}

fn map_hashes(st: &mut St, doc: &mut Obj, target: &'static str) {
    for field in ["Hashes", "Hash"] {
        let Some(value) = st.data.get(field) else {
            continue;
        };
        let pairs = parse_hashes(value);
        if pairs.is_empty() {
            continue;
        }
        let root = sub(doc, target);
        let mut complete = true;
        for (algo, digest) in &pairs {
            if algo == "imphash" {
                sub(root, "pe").insert("imphash", s(digest));
            } else if ECS_HASH_ALGOS.contains(&algo.as_str()) {
                sub(root, "hash").insert(algo.clone(), s(digest));
            } else {
                complete = false;
            }
            add_unique(&mut st.hashes, digest);
        }
        if complete {
            st.data.del(field);
        }
    }
}

fn map_process(st: &mut St, doc: &mut Obj, spec: &Option<Spec>) {
    let image = st.data.pop("Image").or_else(|| st.data.pop("SourceImage"));
    if let Some(image) = image {
        let proc = sub(doc, "process");
        proc.insert("executable", s(&image));
        proc.insert("name", s(basename(&image)));
    }
    if let Some(cl) = st.data.pop("CommandLine") {
        map_command_line(sub(doc, "process"), &cl);
    }
    if let Some(pi) = st.data.pop("ParentImage") {
        let parent = sub(sub(doc, "process"), "parent");
        parent.insert("executable", s(&pi));
        parent.insert("name", s(basename(&pi)));
    }
    if let Some(pcl) = st.data.pop("ParentCommandLine") {
        map_command_line(sub(sub(doc, "process"), "parent"), &pcl);
    }
    if let Some(user) = st.data.pop("User") {
        map_user(st, sub(doc, "user"), &user);
    }
    if let Some(pu) = st.data.pop("ParentUser") {
        map_user(st, sub(sub(sub(doc, "process"), "parent"), "user"), &pu);
    }
    if let Some(pe_root) = spec.as_ref().and_then(|x| x.pe_target) {
        for (name, ecs_name) in PE_FIELDS {
            if let Some(v) = st.data.pop(name) {
                sub(sub(doc, pe_root), "pe").insert(ecs_name, J::S(v));
            }
        }
    }
}

fn map_file(st: &mut St, doc: &mut Obj) {
    for name in ["TargetFilename", "ImageLoaded", "Device"] {
        if let Some(v) = st.data.pop(name) {
            map_file_path(sub(doc, "file"), &v);
            break;
        }
    }
    if let Some(pipe) = st.data.get("PipeName") {
        if !has(doc, &["file", "name"]) {
            let pipe = pipe.to_string();
            sub(doc, "file").insert("name", J::S(pipe));
            st.data.del("PipeName");
        }
    }
    if let Some(status) = st.data.pop("SignatureStatus") {
        let sig = sub(sub(doc, "file"), "code_signature");
        let valid = status == "Valid";
        sig.insert("status", J::S(status));
        sig.insert("valid", J::B(valid));
    }
}

fn community_id(transport: &str, sip: &str, sport: u64, dip: &str, dport: u64) -> Option<String> {
    let proto: u8 = match transport.to_ascii_lowercase().as_str() {
        "tcp" => 6,
        "udp" => 17,
        "sctp" => 132,
        _ => return None,
    };
    if sport > 65535 || dport > 65535 {
        return None;
    }
    let family6 = sip.contains(':');
    let mut src = pton(family6, sip)?;
    let mut dst = pton(family6, dip)?;
    let (mut sp, mut dp) = (sport as u16, dport as u16);
    if (&src, sp) > (&dst, dp) {
        std::mem::swap(&mut src, &mut dst);
        std::mem::swap(&mut sp, &mut dp);
    }
    let mut h = Sha1::new();
    Digest::update(&mut h, [0u8, 0u8]);
    Digest::update(&mut h, &src);
    Digest::update(&mut h, &dst);
    Digest::update(&mut h, [proto, 0u8]);
    Digest::update(&mut h, sp.to_be_bytes());
    Digest::update(&mut h, dp.to_be_bytes());
    let digest = h.finalize();
    Some(format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    ))
}

fn map_network(st: &mut St, doc: &mut Obj) -> Result<(), Fallback> {
    let transport = st.data.pop("Protocol");
    if let Some(t) = &transport {
        sub(doc, "network").insert("transport", s(&t.to_ascii_lowercase()));
    }
    for (side, name) in [("source", "SourceIp"), ("destination", "DestinationIp")] {
        if let Some(ip) = st.take_ip(name)? {
            add_unique(&mut st.ips, &ip);
            sub(doc, side).insert("ip", J::S(ip));
        }
    }
    for name in ["DestinationPortName", "SourcePortName"] {
        if let Some(pn) = st.data.get(name) {
            let lowered = pn.to_ascii_lowercase();
            sub(doc, "network").insert("protocol", J::S(lowered));
            st.data.del(name);
            break;
        }
    }
    if let Some(initiated) = st.take_bool("Initiated")? {
        sub(doc, "network").insert("direction", s(if initiated { "egress" } else { "ingress" }));
    }
    if let Some(v6) = st.take_bool("SourceIsIpv6")? {
        sub(doc, "network").insert("type", s(if v6 { "ipv6" } else { "ipv4" }));
    }
    if let Some(t) = &transport {
        let end = |side: &str| -> Option<(String, u64)> {
            let J::O(m) = doc.get(side)? else { return None };
            Some((m.get("ip")?.as_str()?.to_string(), m.get("port")?.as_u64()?))
        };
        if let (Some((sip, sport)), Some((dip, dport))) = (end("source"), end("destination")) {
            if let Some(cid) = community_id(t, &sip, sport, &dip, dport) {
                sub(doc, "network").insert("community_id", J::S(cid));
            }
        }
    }
    Ok(())
}

fn dns_status(value: &str) -> String {
    let st = py_strip(value);
    if all_digits(st) {
        if let Some(n) = parse_u64(st) {
            if let Some(name) = crate::dnstables::status(n) {
                return name.to_string();
            }
        }
    }
    st.to_string()
}

fn map_dns(st: &mut St, doc: &mut Obj, eid: i64, psl: Option<&Psl>) -> Result<(), Fallback> {
    if let Some(name) = st.data.pop("QueryName") {
        let mut question = Obj::new();
        question.insert("name", s(&name));
        let host = py_strip(&name).trim_end_matches('.');
        if host.contains('.') {
            // an IP address is not split (Python asks `ipaddress`): leave such names to Python
            if host.contains(':') || host.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
                return Err(());
            }
            let psl = psl.ok_or(())?;
            if let Some(parts) = psl.split_domain(&name) {
                question.insert("registered_domain", J::S(parts.registered));
                question.insert("top_level_domain", J::S(parts.tld));
                if let Some(sd) = parts.sub {
                    question.insert("subdomain", J::S(sd));
                }
            }
        }
        sub(doc, "dns").insert("question", J::O(question));
        if !name.is_empty() {
            add_unique(&mut st.hosts, &name);
        }
    }
    if let Some(status) = st.data.pop("QueryStatus") {
        sub(sub(doc, "sysmon"), "dns").insert("status", J::S(dns_status(&status)));
    }
    if let Some(results) = st.data.get("QueryResults") {
        let mut answers: Vec<J> = Vec::new();
        let mut ips: Vec<String> = Vec::new();
        let mut hosts: Vec<String> = Vec::new();
        let mut complete = true;
        for entry in results.split(';') {
            let entry = py_strip(entry);
            if entry.is_empty() {
                continue;
            }
            if let Some(rest) = entry.strip_prefix("type:") {
                let (number, _, host) = partition(py_strip(rest), " ");
                let host = py_strip(host);
                if !all_digits(number) || host.is_empty() {
                    complete = false;
                    continue;
                }
                let n = parse_u64(number).ok_or(())?;
                let mut a = Obj::new();
                a.insert("type", J::S(crate::dnstables::type_name(n)));
                a.insert("data", s(host));
                answers.push(J::O(a));
                hosts.push(host.to_string());
                continue;
            }
            match parse_ip(entry) {
                None => complete = false,
                Some(ip) => {
                    let mut a = Obj::new();
                    a.insert("type", s(if ip.contains(':') { "AAAA" } else { "A" }));
                    a.insert("data", s(&ip));
                    answers.push(J::O(a));
                    ips.push(ip);
                }
            }
        }
        if !answers.is_empty() {
            let mut resolved: Vec<String> = Vec::new();
            for ip in &ips {
                add_unique(&mut resolved, ip);
                add_unique(&mut st.ips, ip);
            }
            let dns = sub(doc, "dns");
            dns.insert("answers", J::A(answers));
            if !ips.is_empty() {
                dns.insert("resolved_ip", str_list(&resolved));
            }
            for h in &hosts {
                add_unique(&mut st.hosts, h);
            }
        }
        if complete {
            st.data.del("QueryResults");
        }
    }
    if eid == 22 {
        sub(doc, "network").insert("protocol", s("dns"));
    }
    Ok(())
}

fn hive_of(first: &str) -> Option<&'static str> {
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

fn split_hive(target: &str) -> Option<(&'static str, &str)> {
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

fn hex_group(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 8 || !s.bytes().all(is_hex) {
        return None;
    }
    u64::from_str_radix(s, 16).ok()
}

fn parse_details(details: &str) -> (&'static str, String) {
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

fn map_registry(st: &mut St, doc: &mut Obj) {
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

fn map_event_data(st: &mut St, doc: &mut Obj, eid: i64, psl: Option<&Psl>) -> Result<(), Fallback> {
    for (name, path) in STRINGS {
        if let Some(v) = st.data.get(name) {
            if !has(doc, path) {
                let v = v.to_string();
                put(doc, path, J::S(v));
                st.data.del(name);
            }
        }
    }
    for (name, path, top) in INTS {
        if st.data.contains(name) && !has(doc, path) {
            if let Some(n) = st.take_int(name, top)? {
                put(doc, path, J::U(n));
            }
        }
    }
    let spec = spec(eid);
    map_process(st, doc, &spec);
    map_file(st, doc);
    for (name, path) in BOOL_TARGETS {
        if let Some(b) = st.take_bool(name)? {
            put(doc, path, J::B(b));
        }
    }
    if let Some(target) = spec.as_ref().and_then(|x| x.hash_target) {
        map_hashes(st, doc, target);
    }
    if eid == 3 || st.data.contains("SourceIp") || st.data.contains("DestinationIp") {
        map_network(st, doc)?;
    }
    if eid == 22 || st.data.contains("QueryName") {
        map_dns(st, doc, eid, psl)?;
    }
    if st.data.contains("TargetObject") || st.data.contains("Details") {
        map_registry(st, doc);
    }
    if eid == 25 {
        if let Some(t) = st.data.pop("Type") {
            doc.insert("message", J::S(t));
        }
    } else if eid == 255 {
        if let Some(code) = st.data.pop("ID") {
            sub(doc, "error").insert("code", J::S(code));
        }
        if let Some(d) = st.data.pop("Description") {
            let msg = d.trim_end_matches(['\r', '\n']).to_string();
            sub(doc, "error").insert("message", J::S(msg));
        }
    }
    Ok(())
}

fn opcode_name(op: i64) -> String {
    match op {
        0 => "Info",
        1 => "Start",
        2 => "Stop",
        3 => "DCStart",
        4 => "DCStop",
        7 => "Extension",
        8 => "Reply",
        9 => "Resume",
        10 => "Suspend",
        11 => "Send",
        240 => "Receive",
        _ => return op.to_string(),
    }
    .to_string()
}

fn level_name(level: i64) -> Option<&'static str> {
    Some(match level {
        0 | 4 => "information",
        1 => "critical",
        2 => "error",
        3 => "warning",
        5 => "verbose",
        _ => return None,
    })
}

fn non_negative(v: Option<i64>) -> Option<i64> {
    v.filter(|n| *n >= 0)
}

fn document_id(sys: &System<'_>, data: &Data) -> String {
    let utc = data.get("UtcTime").unwrap_or("");
    let utc_norm = parse_utc_time(utc).unwrap_or_else(|| utc.to_string());
    let material = [
        sys.computer.to_ascii_lowercase(),
        sys.channel.to_string(),
        sys.provider.to_string(),
        sys.record_id.map(|r| r.to_string()).unwrap_or_default(),
        sys.event_id.to_string(),
        utc_norm,
    ]
    .join("\x1f");
    let mut material = material.into_bytes();
    if sys.record_id.is_none() {
        // Python adds orjson.dumps(data, option=OPT_SORT_KEYS) so that events never collide
        let mut entries: Vec<&(String, String)> = data.entries.iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        material.push(0x1f);
        material.push(b'{');
        for (i, (k, v)) in entries.into_iter().enumerate() {
            if i > 0 {
                material.push(b',');
            }
            crate::json::write_str(k, &mut material);
            material.push(b':');
            crate::json::write_str(v, &mut material);
        }
        material.push(b'}');
    }
    let mut hasher = blake2::Blake2bVar::new(20).expect("20 is a valid BLAKE2b size");
    hasher.update(&material);
    let mut out = [0u8; 20];
    hasher
        .finalize_variable(&mut out)
        .expect("output size matches");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
}

/// Map one record (`{"Event": …}` as pyevtx-rs renders it), or None for Python to map.
pub fn map_record(json: &[u8], psl: Option<&Arc<Psl>>) -> Option<Mapped> {
    let record = record::parse(json)?;
    let items = &record.event.event_data.0;
    // a JSON boolean in EventData sends the record down Python's careful path
    let careful = items
        .iter()
        .any(|(_, v)| matches!(v, record::DataValue::Bool(_)));
    let sys = system_fields(&record.event.system, careful)?;
    if careful {
        // Python's careful path reads the record: its System numbers must be plain integers
        let s = &record.event.system;
        let numbers = [&s.version, &s.level, &s.task, &s.opcode];
        let exec = &s.execution.attributes;
        if numbers.iter().any(|n| n.0.is_none())
            || exec.process_id.0.is_none()
            || exec.thread_id.0.is_none()
        {
            return None;
        }
    }
    map_event(&sys, items, psl)
}

/// The document and `_id` of a record read into `sys` and EventData `items` (in document
/// order, dict semantics already applied or not: a repeated name keeps its first place and
/// takes the last value), or None for Python to map.
pub fn map_event(
    sys: &System<'_>,
    items: &[(record::Str<'_>, record::DataValue<'_>)],
    psl: Option<&Arc<Psl>>,
) -> Option<Mapped> {
    if sys.provider != SYSMON_PROVIDER
        || sys.record_id.is_some_and(|r| r < 0)
        || sys.computer.is_empty()
    {
        return None;
    }
    if sys.channel.is_empty() {
        return None; // Python names the channel for the id: not worth repeating here
    }
    let data = event_data(items)?;
    let doc_id = document_id(sys, &data);
    let psl = psl.map(|p| p.as_ref());
    let doc = map_doc(sys, data, psl)?;
    let mut out = Vec::with_capacity(4096);
    write_obj(&doc, &mut out);
    Some(Mapped {
        event_id: sys.event_id,
        record_id: sys.record_id,
        doc: out,
        doc_id,
    })
}

fn map_doc(sys: &System<'_>, data: Data, psl: Option<&Psl>) -> Option<Obj> {
    let eid = sys.event_id;
    let code = eid.to_string();
    let mut st = St {
        data,
        ips: vec![],
        users: vec![],
        hashes: vec![],
        hosts: vec![],
    };
    let mut doc = Obj::new();
    let mut event = Obj::new();
    event.insert("kind", s("event"));
    event.insert("code", s(&code));
    event.insert("module", s("sysmon"));
    event.insert("dataset", s("sysmon.operational"));
    event.insert("provider", s(&sys.provider));
    let spec = spec(eid);
    if let Some(x) = &spec {
        if !x.category.is_empty() {
            event.insert("category", J::A(x.category.iter().map(|v| s(v)).collect()));
        }
        event.insert("type", J::A(x.kind.iter().map(|v| s(v)).collect()));
        event.insert("action", s(x.action));
    }
    let created = match &sys.time_created {
        Some(t) => {
            let c = parse_iso_time(t)?;
            event.insert("created", s(&c));
            Some(c)
        }
        None => None,
    };
    let timestamp = match st.data.get("UtcTime") {
        Some(utc) => {
            let t = parse_utc_time(utc)?;
            st.data.del("UtcTime");
            t
        }
        // no time at all: Python's document has no @timestamp (the pipeline picks one)
        None => format!("{}Z", &created?[..23]),
    };
    doc.insert("@timestamp", J::S(timestamp));
    doc.insert("event", J::O(event));
    let mut host = Obj::new();
    host.insert("name", s(&sys.computer));
    host.insert("hostname", s(&sys.computer.to_ascii_lowercase()));
    doc.insert("host", J::O(host));
    if let Some(level) = non_negative(sys.level).and_then(level_name) {
        let mut log = Obj::new();
        log.insert("level", s(level));
        doc.insert("log", J::O(log));
    }
    if let Some(rule) = st.data.pop("RuleName") {
        let mut r = Obj::new();
        r.insert("name", J::S(rule));
        doc.insert("rule", J::O(r));
    }
    if !sys.user_sid.is_empty() {
        let mut u = Obj::new();
        u.insert("id", s(&sys.user_sid));
        doc.insert("user", J::O(u));
    }
    map_event_data(&mut st, &mut doc, eid, psl).ok()?;

    let mut related = Obj::new();
    if !st.users.is_empty() {
        related.insert("user", str_list(&st.users));
    }
    if !st.hashes.is_empty() {
        related.insert("hash", str_list(&st.hashes));
    }
    if !st.ips.is_empty() {
        related.insert("ip", str_list(&st.ips));
    }
    if !st.hosts.is_empty() {
        related.insert("hosts", str_list(&st.hosts));
    }
    if !related.is_empty() {
        doc.insert("related", J::O(related));
    }

    let mut winlog = Obj::new();
    if !sys.channel.is_empty() {
        winlog.insert("channel", s(&sys.channel));
    }
    winlog.insert("computer_name", s(&sys.computer));
    winlog.insert("event_id", s(&code));
    if let Some(r) = sys.record_id {
        winlog.insert("record_id", J::I(r));
    }
    winlog.insert("provider_name", s(&sys.provider));
    if !sys.provider_guid.is_empty() {
        let g = normalise_guid(&sys.provider_guid).unwrap_or_else(|| sys.provider_guid.clone());
        winlog.insert("provider_guid", J::S(g));
    }
    if let Some(pid) = non_negative(sys.process_id) {
        let mut p = Obj::new();
        p.insert("pid", J::I(pid));
        winlog.insert("process", J::O(p));
    }
    if let Some(tid) = non_negative(sys.thread_id) {
        let mut t = Obj::new();
        t.insert("id", J::I(tid));
        sub(&mut winlog, "process").insert("thread", J::O(t));
    }
    if let Some(v) = non_negative(sys.version) {
        winlog.insert("version", J::I(v));
    }
    if let Some(op) = non_negative(sys.opcode) {
        winlog.insert("opcode", J::S(opcode_name(op)));
    }
    if let Some(task) = non_negative(sys.task) {
        winlog.insert("task", J::S(task.to_string()));
    }
    if !sys.user_sid.is_empty() {
        let mut u = Obj::new();
        u.insert("identifier", s(&sys.user_sid));
        winlog.insert("user", J::O(u));
    }
    if !st.data.entries.is_empty() {
        let mut ed = Obj::new();
        for (k, v) in st.data.entries {
            ed.insert(k, J::S(v));
        }
        winlog.insert("event_data", J::O(ed));
    }
    doc.insert("winlog", J::O(winlog));
    let mut ecs = Obj::new();
    ecs.insert("version", s(ECS_VERSION));
    doc.insert("ecs", J::O(ecs));
    Some(doc)
}
