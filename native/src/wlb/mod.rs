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

mod lines;
mod nxlog;
mod values;

use std::borrow::Cow;
use std::sync::Arc;

use crate::fallback::Fallback;
use crate::jv::Top;
use crate::jv::V;
use crate::map::{self, Mapped, System};
use crate::psl::Psl;
use crate::record::{DataValue, Str};

pub use lines::{map_bytes, map_lines, Run};
use nxlog::map_nxlog;
pub use nxlog::{NXLOG_EVENT_TYPES, NXLOG_METADATA};
use values::{
    data_value, get, get_in, guid_braced, level_name, opcode, text_or_empty, text_value, to_int,
    top_get, utc_iso,
};

type R<T> = Result<T, Fallback>;

/// A record of another provider: the pipeline only counts it (`RawEvent.provider`, never
/// empty there: Python raises for a record without one).
fn other(provider: Cow<'_, str>) -> R<Line> {
    if provider.is_empty() {
        return Err(Fallback::ReadError);
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
        None => to_int(get_in(&event, &["code"]))?.ok_or(Fallback::ReadError)?,
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
    let stamp = stamp.ok_or(Fallback::Shape)?;
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
        return Err(Fallback::NonAscii);
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
    map::map_event(&sys, &items, psl).map(Line::Doc)
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
        Err(_) => Err(Fallback::BrokenLine),
    }
}
