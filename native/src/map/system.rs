//! The System fields of an EVTX record, as Python's readers turn them into a RawEvent.

use std::borrow::Cow;

use super::Fallback;
use crate::record;
use crate::util::py_strip;

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
pub(super) fn system_fields<'a>(
    sys: &'a record::System<'a>,
    careful: bool,
) -> Result<System<'a>, Fallback> {
    let provider = sys.provider.attributes.name.0.as_ref();
    let guid = sys.provider.attributes.guid.0.as_ref();
    let stamp = sys.time_created.attributes.system_time.0.as_ref();
    let computer = sys.computer.0.as_ref();
    if !provider.is_ascii() || !guid.is_ascii() || !stamp.is_ascii() || !computer.is_ascii() {
        return Err(Fallback::NonAscii);
    }
    if !stamp.ends_with('Z') {
        return Err(Fallback::Shape);
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
    Ok(System {
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
