//! NXLog documents (`shipper.readers.jsonl.event_from_nxlog`): System fields and EventData as
//! flat siblings.

use std::borrow::Cow;
use std::sync::Arc;

use super::values::{data_value, guid_braced, text_or_empty, to_int, top_get, utc_iso};
use super::{other, Line, R};
use crate::fallback::Fallback;
use crate::jv::{Top, V};
use crate::map::{self, System};
use crate::psl::Psl;
use crate::record::{DataValue, Str};

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
pub(super) fn map_nxlog(doc: &Top<'_>, psl: Option<&Arc<Psl>>) -> R<Line> {
    let field = |key: &str| top_get(doc, key);
    let event_id = to_int(field("EventID")?.as_ref())?.ok_or(Fallback::ReadError)?;
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
    let values = event_data(doc)?;
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
        return Err(Fallback::NonAscii);
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
    map::map_event(&sys, &items, psl).map(Line::Doc)
}

/// The EventData of an NXLog document: every top-level value but the metadata (NXLog's own
/// `EventType` aside from Sysmon's), parsed.
fn event_data<'d, 'a>(doc: &'d Top<'a>) -> R<Vec<(&'d str, V<'a>)>> {
    let sysmon_event_type = doc.contains_key("EventTypeOrignal");
    let mut values: Vec<(&str, V<'_>)> = Vec::with_capacity(doc.0.len());
    for (key, slot) in &doc.0 {
        let key = key.as_ref();
        let metadata = NXLOG_METADATA.contains(&key);
        if metadata && key != "EventType" {
            continue; // never parsed (NXLog's Message is the longest value)
        }
        let value = slot.value().map_err(|_| Fallback::Shape)?;
        if metadata {
            let sysmon_type = matches!(&value, V::S(t) if !NXLOG_EVENT_TYPES.contains(&t.as_ref()));
            if !(sysmon_event_type || sysmon_type) {
                continue;
            }
        }
        values.push((key, value));
    }
    Ok(values)
}
