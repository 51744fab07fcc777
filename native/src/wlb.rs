//! JSON lines from winlogbeat / Elastic Agent and from NXLog → the ECS document and `_id`
//! that `shipper.readers.jsonl.event_from_winlogbeat` / `event_from_nxlog` +
//! `shipper.sysmon.ecs.to_ecs_and_id` give.
//!
//! Only the lines Python's reader takes on its fast path are read here (one complete JSON
//! object per line, at the top level of the file), and of those only the ones every rule
//! below can reproduce exactly: a winlogbeat document (a `winlog` object) or an NXLog one (flat)
//! of a Sysmon record whose values are plain strings and integers, with ASCII where Python
//! would strip, fold case or parse. A record of another provider, which the pipeline only
//! counts, is given back as its provider's name when Python would read it without an error.
//! Everything else (floats, odd shapes, broken lines) stops the run and is read by Python, so
//! the native path never has to reproduce an error document.

use std::borrow::Cow;
use std::sync::Arc;

use crate::jv::{Top, M, V};

use crate::map::{self, Mapped, System};
use crate::psl::Psl;
use crate::record::{DataValue, Str};
use crate::util::py_strip;

/// Not for the native path: Python reads this line.
pub struct Fallback;
type R<T> = Result<T, Fallback>;

/// `shipper.readers._common.to_int`, or Fallback where Python's `int()` would accept more
/// than the plain forms (underscores, Unicode digits) or give a number beyond 64 bits.
fn to_int(v: Option<&V<'_>>) -> R<Option<i64>> {
    match v {
        Some(V::I(i)) => Ok(Some(*i)),
        Some(V::U(_)) => Err(Fallback), // a Python int beyond i64
        Some(V::S(s)) => str_to_int(s),
        // null, a bool, a float (or an integer beyond u64: orjson makes it a float), a structure
        _ => Ok(None),
    }
}

fn str_to_int(s: &str) -> R<Option<i64>> {
    if !s.is_ascii() || s.contains('_') {
        return Err(Fallback);
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
    let magnitude = u64::from_str_radix(digits, radix).map_err(|_| Fallback)?;
    if negative {
        if magnitude > (i64::MAX as u64) + 1 {
            return Err(Fallback);
        }
        Ok(Some((magnitude as i128).wrapping_neg() as i64))
    } else {
        i64::try_from(magnitude).map(Some).map_err(|_| Fallback)
    }
}

/// `text_value`: the string a JSON value stands for (None for null); Fallback where Python
/// would render a float or dump a structure.
fn text_value<'b>(v: &'b V<'_>) -> R<Option<Cow<'b, str>>> {
    match v {
        V::S(s) => Ok(Some(Cow::Borrowed(s.as_ref()))),
        V::Null => Ok(None),
        V::Bool(b) => Ok(Some(Cow::Borrowed(if *b { "true" } else { "false" }))),
        V::I(n) => Ok(Some(Cow::Owned(n.to_string()))),
        V::U(n) => Ok(Some(Cow::Owned(n.to_string()))),
        V::O(m) => match m.get("#text") {
            Some(inner) => text_value(inner),
            None => Err(Fallback),
        },
        V::F | V::A => Err(Fallback),
    }
}

/// `_str`: `text_value(v) or None`, as an empty string for none.
fn text_or_empty<'b>(v: Option<&'b V<'_>>) -> R<Cow<'b, str>> {
    match v {
        None => Ok(Cow::Borrowed("")),
        Some(v) => Ok(text_value(v)?.unwrap_or(Cow::Borrowed(""))),
    }
}

/// `_get(doc, *path)`: None when a step is missing or not an object.
fn get<'b, 'a>(node: &'b M<'a>, path: &[&str]) -> Option<&'b V<'a>> {
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
fn get_in<'b, 'a>(value: &'b Option<V<'a>>, path: &[&str]) -> Option<&'b V<'a>> {
    match value {
        Some(V::O(m)) => get(m, path),
        _ => None,
    }
}

/// A top-level value, parsed; Fallback if it cannot be (never: the line parsed).
fn top_get<'a>(doc: &Top<'a>, key: &str) -> R<Option<V<'a>>> {
    doc.get(key).map_err(|_| Fallback)
}

fn two(b: &[u8], at: usize) -> Option<u32> {
    let (x, y) = (*b.get(at)?, *b.get(at + 1)?);
    if x.is_ascii_digit() && y.is_ascii_digit() {
        Some(((x - b'0') * 10 + (y - b'0')) as u32)
    } else {
        None
    }
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
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
fn utc_iso(v: Option<&V<'_>>) -> R<Option<String>> {
    let s = match v {
        Some(V::S(s)) => s.as_ref(),
        _ => return Ok(None),
    };
    if !s.is_ascii() {
        return Err(Fallback);
    }
    let t = py_strip(s);
    let b = t.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' {
        return Ok(None);
    }
    let (body, offset_minutes): (&[u8], i64) = if matches!(b[b.len() - 1], b'Z' | b'z') {
        (&b[..b.len() - 1], 0)
    } else {
        // the last sign at or after index 19, as `max(rfind("+", 19), rfind("-", 19))`
        let sign_at = match b[19..].iter().rposition(|c| *c == b'+' || *c == b'-') {
            Some(i) => i + 19,
            None => return Ok(None),
        };
        let off = &b[sign_at..];
        if off.len() != 6 || off[3] != b':' {
            return Err(Fallback);
        }
        let (hh, mm) = (two(off, 1).ok_or(Fallback)?, two(off, 4).ok_or(Fallback)?);
        if hh > 23 || mm > 59 {
            return Err(Fallback);
        }
        let m = (hh * 60 + mm) as i64;
        (&b[..sign_at], if off[0] == b'-' { -m } else { m })
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
        return Err(Fallback);
    }
    let year = base[..4]
        .iter()
        .try_fold(0i64, |a, c| {
            c.is_ascii_digit().then(|| a * 10 + (c - b'0') as i64)
        })
        .ok_or(Fallback)?;
    let (mo, d) = (two(base, 5).ok_or(Fallback)?, two(base, 8).ok_or(Fallback)?);
    let (h, mi, sec) = (
        two(base, 11).ok_or(Fallback)?,
        two(base, 14).ok_or(Fallback)?,
        two(base, 17).ok_or(Fallback)?,
    );
    if !(2..=9998).contains(&year) || mo == 0 || mo > 12 || d == 0 || d > days_in_month(year, mo) {
        return Err(Fallback); // fromisoformat's ValueError, or the edges of datetime's range
    }
    if h > 23 || mi > 59 || sec > 59 {
        return Err(Fallback);
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

/// `guid_braced` (empty: none).
fn guid_braced(v: Option<&V<'_>>) -> R<String> {
    match v {
        Some(V::S(s)) if !s.is_empty() => {
            if !s.is_ascii() {
                return Err(Fallback);
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

fn level_name(v: Option<&V<'_>>) -> R<Option<i64>> {
    if let Some(V::S(s)) = v {
        if !s.is_ascii() {
            return Err(Fallback);
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

fn opcode(v: Option<&V<'_>>) -> R<Option<i64>> {
    if let Some(n) = to_int(v)? {
        return Ok(Some(n));
    }
    match v {
        // str(value).strip().lower() looked up in the standard names
        Some(V::S(s)) => {
            if !s.is_ascii() {
                return Err(Fallback);
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

fn data_value<'b>(v: &'b V<'_>) -> R<DataValue<'b>> {
    Ok(match text_value(v)? {
        None => DataValue::Null,
        Some(text) => DataValue::Text(text),
    })
}

/// Top-level keys of NXLog / logstash documents that are not EventData
/// (`shipper.readers.jsonl.NXLOG_METADATA`, compared by the tests).
pub const NXLOG_METADATA: [&str; 50] = [
    "EventTime",
    "EventReceivedTime",
    "Hostname",
    "Keywords",
    "EventType",
    "EventTypeOrignal",
    "SeverityValue",
    "Severity",
    "EventID",
    "SourceName",
    "ProviderGuid",
    "Version",
    "Task",
    "OpcodeValue",
    "Opcode",
    "RecordNumber",
    "ActivityID",
    "RelatedActivityID",
    "ExecutionProcessID",
    "ThreadID",
    "Channel",
    "Domain",
    "AccountName",
    "UserID",
    "AccountType",
    "Category",
    "Message",
    "Level",
    "Qualifiers",
    "SourceModuleName",
    "SourceModuleType",
    "ERROR_EVT_UNRESOLVED",
    "TimeCreated",
    "EventData",
    "UserData",
    "MessageSourceAddress",
    "SourceAddress",
    "@timestamp",
    "@version",
    "host",
    "port",
    "tags",
    "type",
    "path",
    "log",
    "agent",
    "ecs",
    "beat",
    "input",
    "fields",
];

/// NXLog's own EventType vocabulary (`NXLOG_EVENT_TYPES`).
pub const NXLOG_EVENT_TYPES: [&str; 7] = [
    "INFO",
    "WARNING",
    "ERROR",
    "CRITICAL",
    "VERBOSE",
    "AUDIT_SUCCESS",
    "AUDIT_FAILURE",
];

/// One NXLog document → its document and `_id`, another provider's record, or Fallback
/// (`event_from_nxlog`).
fn map_nxlog(doc: &Top<'_>, psl: Option<&Arc<Psl>>) -> R<Line> {
    let field = |key: &str| top_get(doc, key);
    let event_id = to_int(field("EventID")?.as_ref())?.ok_or(Fallback)?;
    let source_name = field("SourceName")?;
    let provider_name;
    let mut provider = text_or_empty(source_name.as_ref())?;
    if provider.is_empty() {
        provider_name = field("ProviderName")?;
        provider = text_or_empty(provider_name.as_ref())?;
    }
    if provider != map::SYSMON_PROVIDER {
        // Python reads the record without an error when it has a provider, and its time (the
        // one value left that can raise there: an overflow) converts
        if let Some(v @ V::S(_)) = &field("EventTime")? {
            utc_iso(Some(v))?;
        }
        return other(provider);
    }
    let sysmon_event_type = doc.contains_key("EventTypeOrignal");
    let mut values: Vec<(&str, V<'_>)> = Vec::with_capacity(doc.0.len());
    for (key, slot) in &doc.0 {
        let key = key.as_ref();
        let metadata = NXLOG_METADATA.contains(&key);
        if metadata && key != "EventType" {
            continue; // never parsed (NXLog's Message is the longest value)
        }
        let value = slot.value().map_err(|_| Fallback)?;
        if metadata {
            let sysmon_type = matches!(&value, V::S(t) if !NXLOG_EVENT_TYPES.contains(&t.as_ref()));
            if !(sysmon_event_type || sysmon_type) {
                continue;
            }
        }
        values.push((key, value));
    }
    let mut items: Vec<(Str<'_>, DataValue<'_>)> = Vec::with_capacity(values.len());
    for (key, value) in &values {
        items.push((Str(Cow::Borrowed(key)), data_value(value)?));
    }
    let level = match to_int(field("Level")?.as_ref())? {
        Some(l) => Some(l),
        None => match to_int(field("SeverityValue")?.as_ref())? {
            Some(1) => Some(5),
            Some(2) => Some(4),
            Some(3) => Some(3),
            Some(4) => Some(2),
            Some(5) => Some(1),
            _ => None,
        },
    };
    let event_time = field("EventTime")?;
    let time_created = match &event_time {
        Some(v @ V::S(_)) => utc_iso(Some(v))?.map(Cow::Owned),
        _ => None,
    };
    let hostname = field("Hostname")?;
    let computer = text_or_empty(hostname.as_ref())?;
    let user_id = field("UserID")?;
    let sid;
    let mut user_sid = text_or_empty(user_id.as_ref())?;
    if user_sid.is_empty() {
        sid = field("SID")?;
        user_sid = text_or_empty(sid.as_ref())?;
    }
    if !provider.is_ascii() || !computer.is_ascii() {
        return Err(Fallback);
    }
    let channel = field("Channel")?;
    let sys = System {
        provider,
        event_id,
        record_id: to_int(field("RecordNumber")?.as_ref())?,
        computer,
        channel: text_or_empty(channel.as_ref())?,
        time_created,
        provider_guid: guid_braced(field("ProviderGuid")?.as_ref())?,
        version: to_int(field("Version")?.as_ref())?,
        level,
        task: to_int(field("Task")?.as_ref())?,
        opcode: to_int(field("OpcodeValue")?.as_ref())?,
        process_id: to_int(field("ExecutionProcessID")?.as_ref())?,
        thread_id: to_int(field("ThreadID")?.as_ref())?,
        user_sid,
    };
    map::map_event(&sys, &items, psl)
        .map(Line::Doc)
        .ok_or(Fallback)
}

/// A record of another provider: the pipeline only counts it (`RawEvent.provider`, never
/// empty there: Python raises for a record without one).
fn other(provider: Cow<'_, str>) -> R<Line> {
    if provider.is_empty() {
        return Err(Fallback);
    }
    Ok(Line::Other(provider.into_owned()))
}

/// One document (its top level read, values still raw) → its document and `_id`, another
/// provider's record, or Fallback (`event_from_document`).
fn map_document(doc: &Top<'_>, psl: Option<&Arc<Psl>>) -> R<Line> {
    let winlog = match doc.parsed(crate::jv::PARSED_KEY) {
        Some(V::O(w)) => w,
        _ => return map_nxlog(doc, psl),
    };
    let event = top_get(doc, "event")?;
    let event_id = match to_int(winlog.get("event_id"))? {
        Some(n) => n,
        None => to_int(get_in(&event, &["code"]))?.ok_or(Fallback)?,
    };
    let mut provider = text_or_empty(winlog.get("provider_name"))?;
    if provider.is_empty() {
        provider = text_or_empty(get_in(&event, &["provider"]))?;
    }
    let stamp = match utc_iso(winlog.get("time_created"))? {
        Some(s) => Some(s),
        None => match utc_iso(top_get(doc, "@timestamp")?.as_ref())? {
            Some(s) => Some(s),
            None => utc_iso(get_in(&event, &["created"]))?,
        },
    };
    if provider != map::SYSMON_PROVIDER {
        return other(provider); // (as for NXLog: its time converted above)
    }
    let stamp = stamp.ok_or(Fallback)?;
    let task = match to_int(winlog.get("task"))? {
        Some(t) => Some(t),
        None => {
            let text = match winlog.get("task") {
                None | Some(V::Null) => false,
                // a float, or a structure orjson would dump: some text, never empty
                Some(V::F) | Some(V::A) => true,
                Some(V::O(m)) if !m.contains_key("#text") => true,
                Some(v) => text_value(v)?.is_some_and(|t| !t.is_empty()),
            };
            (text && provider == map::SYSMON_PROVIDER).then_some(event_id)
        }
    };
    let computer = text_or_empty(winlog.get("computer_name"))?;
    let channel = text_or_empty(winlog.get("channel"))?;
    let user_sid = text_or_empty(get(winlog, &["user", "identifier"]))?;
    if !provider.is_ascii() || !computer.is_ascii() {
        return Err(Fallback);
    }
    let log = top_get(doc, "log")?;
    let sys = System {
        provider,
        event_id,
        record_id: to_int(winlog.get("record_id"))?,
        computer,
        channel,
        time_created: Some(Cow::Owned(stamp)),
        provider_guid: guid_braced(winlog.get("provider_guid"))?,
        version: to_int(winlog.get("version"))?,
        level: level_name(get_in(&log, &["level"]))?,
        task,
        opcode: opcode(winlog.get("opcode"))?,
        process_id: to_int(get(winlog, &["process", "pid"]))?,
        thread_id: to_int(get(winlog, &["process", "thread", "id"]))?,
        user_sid,
    };
    let mut items: Vec<(Str<'_>, DataValue<'_>)> = Vec::new();
    if let Some(V::O(data)) = winlog.get("event_data") {
        items.reserve(data.0.len());
        for (key, value) in &data.0 {
            items.push((Str(Cow::Borrowed(key.as_ref())), data_value(value)?));
        }
    }
    map::map_event(&sys, &items, psl)
        .map(Line::Doc)
        .ok_or(Fallback)
}

/// What a line is to the pipeline.
pub enum Line {
    /// a Sysmon record: its document and `_id`
    Doc(Mapped),
    /// a record of another provider (named), which the pipeline counts and skips
    Other(String),
}

/// One line (without its newline) → its document or its provider, or Fallback (not one JSON
/// object, not a winlogbeat / NXLog record the native path reproduces).
pub fn map_line(line: &str, psl: Option<&Arc<Psl>>) -> R<Line> {
    match serde_json::from_str::<Top<'_>>(line) {
        Ok(doc) => map_document(&doc, psl),
        Err(_) => Err(Fallback),
    }
}

/// What `map_lines` read: the characters consumed from the start of the text, the documents of
/// its Sysmon records and the providers of the others, and one entry per record (line) read
/// (the consumed text ends just past the last one's newline).
pub struct Run {
    pub chars: usize,
    pub mapped: Vec<Mapped>,
    /// (index of the record among the run's records, its provider), in order
    pub others: Vec<(usize, String)>,
    /// per record: (line number of its start, codec bytes just past its newline), both counted
    /// from the start of the text (line 0)
    pub ends: Vec<(usize, usize)>,
}

/// Bytes `text` takes in a file of code unit `width` (1: UTF-8, 2: UTF-16, 4: UTF-32), as
/// `ByteCounter.advance` counts them.
fn codec_len(text: &str, width: usize) -> usize {
    match width {
        1 => text.len(),
        2 => text
            .chars()
            .map(|c| if (c as u32) > 0xFFFF { 4 } else { 2 })
            .sum(),
        _ => text.chars().count() * width,
    }
}

/// Map the winlogbeat / NXLog lines at the start of `text` (Python's decoded buffer from a
/// position at the top level of the file, outside any array or broken document), skipping
/// blank runs between them as Python does (`" \t\r\n\u{feff}"`). Stops before the first line
/// that is not complete (no newline yet), contains U+FFFD (the byte counter's business) or is
/// neither mapped here nor another provider's record Python reads without an error; nothing
/// after the last line's newline is consumed.
pub fn map_lines(text: &str, width: usize, psl: Option<&Arc<Psl>>) -> Run {
    map_lines_in(text.as_bytes(), width, psl, false)
}

/// `map_lines` on the bytes of a UTF-8 file from a position at the top level (`data[start..]`),
/// as Python would read them once decoded: each line is checked to be UTF-8 first (the
/// run stops before one that is not: the decoder makes U+FFFD of it, the byte counter's
/// business). Spares the reader the UTF-8 copy of a decoded buffer that is not ASCII.
pub fn map_bytes(data: &[u8], start: usize, psl: Option<&Arc<Psl>>) -> Run {
    map_lines_in(data.get(start..).unwrap_or_default(), 1, psl, true)
}

/// Characters in UTF-8 `b`: its bytes less those that continue a character (`10xxxxxx`),
/// counted eight at a time.
fn char_count(b: &[u8]) -> usize {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let words = b.chunks_exact(8);
    let tail = words.remainder();
    let continuing: usize = words
        .map(|w| {
            let w = u64::from_le_bytes(w.try_into().expect("eight bytes"));
            (w & !(w << 1) & HIGH).count_ones() as usize
        })
        .sum::<usize>()
        + tail.iter().filter(|&&c| c & 0xC0 == 0x80).count();
    b.len() - continuing
}

fn map_lines_in(b: &[u8], width: usize, psl: Option<&Arc<Psl>>, validate: bool) -> Run {
    let mut run = Run {
        chars: 0,
        mapped: Vec::new(),
        others: Vec::new(),
        ends: Vec::new(),
    };
    let mut codec_bytes = 0usize;
    let mut done = 0usize; // bytes of `b` consumed
    let mut i = 0usize;
    let mut line = 0usize;
    loop {
        while i < b.len() {
            match b[i] {
                b' ' | b'\t' | b'\r' => i += 1,
                b'\n' => {
                    i += 1;
                    line += 1;
                }
                0xEF if b[i..].starts_with("\u{feff}".as_bytes()) => i += 3,
                _ => break,
            }
        }
        if i >= b.len() || b[i] != b'{' {
            break;
        }
        let Some(nl) = memchr::memchr(b'\n', &b[i..]) else {
            break;
        };
        let end = i + nl + 1;
        // what is consumed: blanks (ASCII, BOMs), the line, its newline
        let piece = &b[done..end];
        let ascii = piece.is_ascii(); // the common case: every count is the byte count
        let body = if validate {
            match std::str::from_utf8(&b[i..i + nl]) {
                Ok(body) => body,
                Err(_) => break,
            }
        } else {
            // SAFETY: `b` is a `&str`'s bytes (map_lines) and `i..i + nl` lies between ASCII
            // bytes, so on character boundaries
            unsafe { std::str::from_utf8_unchecked(&b[i..i + nl]) }
        };
        if !ascii && body.contains('\u{fffd}') {
            break;
        }
        let Ok(m) = map_line(body, psl) else {
            break;
        };
        if ascii || width == 1 {
            run.chars += if ascii {
                piece.len()
            } else {
                char_count(piece)
            };
            codec_bytes += piece.len() * width;
        } else {
            // SAFETY: as for `body` (the blanks before it are ASCII or whole BOMs)
            let text = unsafe { std::str::from_utf8_unchecked(piece) };
            run.chars += text.chars().count();
            codec_bytes += codec_len(text, width);
        }
        match m {
            Line::Doc(m) => run.mapped.push(m),
            Line::Other(provider) => run.others.push((run.ends.len(), provider)),
        }
        run.ends.push((line, codec_bytes));
        line += 1;
        done = end;
        i = end;
    }
    run
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_counts() {
        for s in [
            "",
            "a",
            "é",
            "abcdefgh",
            "aé®😀公司 Ünï ГмбХ",
            &"é😀x".repeat(40),
        ] {
            for cut in 0..s.len().min(9) {
                let t = &s[s.char_indices().nth(cut).map_or(s.len(), |(i, _)| i)..];
                assert_eq!(char_count(t.as_bytes()), t.chars().count(), "{t:?}");
            }
        }
    }

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
