//! One EVTX record (pyevtx-rs JSON shape) → the ECS document and `_id` that
//! `shipper.readers.evtx._event_from_json` + `shipper.sysmon.ecs.to_ecs_and_id` give, for the
//! records both agree are ordinary: a Sysmon record in the shape Windows writes, every string
//! ASCII, every value convertible. Anything else returns its `Fallback` and is mapped by Python, so
//! the native path never has to reproduce an error document or a Unicode rule.

mod data;
mod dns;
mod fields;
mod file;
mod hashes;
mod id;
mod network;
mod process;
mod registry;
mod spec;
mod system;
mod time;
mod tree;
mod winlog;

use std::sync::Arc;

use crate::json::{write_obj, Obj, J};
use crate::psl::Psl;
use crate::record;

use data::{event_data, Data};
use fields::map_event_data;
use id::document_id;
use spec::spec;
pub use spec::{spec_table, SpecRow};
use system::system_fields;
pub use system::System;
use time::{parse_iso_time, parse_utc_time};
use tree::{s, str_list, St};
use winlog::{level_name, non_negative, winlog};

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

pub use crate::fallback::Fallback;

/// Map one record (`{"Event": …}` as pyevtx-rs renders it), or why Python maps it.
pub fn map_record(json: &[u8], psl: Option<&Arc<Psl>>) -> Result<Mapped, Fallback> {
    let record = record::parse(json).ok_or(Fallback::Shape)?;
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
            return Err(Fallback::Shape);
        }
    }
    map_event(&sys, items, psl)
}

/// The document and `_id` of a record read into `sys` and EventData `items` (in document
/// order, dict semantics already applied or not: a repeated name keeps its first place and
/// takes the last value), or why Python maps it.
pub fn map_event(
    sys: &System<'_>,
    items: &[(record::Str<'_>, record::DataValue<'_>)],
    psl: Option<&Arc<Psl>>,
) -> Result<Mapped, Fallback> {
    if sys.provider != SYSMON_PROVIDER {
        return Err(Fallback::OtherProvider);
    }
    if sys.record_id.is_some_and(|r| r < 0) || sys.computer.is_empty() {
        return Err(Fallback::Shape);
    }
    if sys.channel.is_empty() {
        return Err(Fallback::Shape); // Python names the channel for the id: not worth repeating here
    }
    let data = event_data(items)?;
    let doc_id = document_id(sys, &data);
    let psl = psl.map(|p| p.as_ref());
    let doc = map_doc(sys, data, psl)?;
    let mut out = Vec::with_capacity(4096);
    write_obj(&doc, &mut out);
    Ok(Mapped {
        event_id: sys.event_id,
        record_id: sys.record_id,
        doc: out,
        doc_id,
    })
}

fn map_doc(sys: &System<'_>, data: Data, psl: Option<&Psl>) -> Result<Obj, Fallback> {
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
    let mut event = event_fields(sys, &code);
    let timestamp = times(sys, &mut st, &mut event)?;
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
    map_event_data(&mut st, &mut doc, eid, psl)?;
    if let Some(related) = related(&st) {
        doc.insert("related", J::O(related));
    }
    doc.insert("winlog", J::O(winlog(sys, &code, st.data)));
    let mut ecs = Obj::new();
    ecs.insert("version", s(ECS_VERSION));
    doc.insert("ecs", J::O(ecs));
    Ok(doc)
}

/// `event.*` but `created`: kind, code, module, dataset, provider and the event table's.
fn event_fields(sys: &System<'_>, code: &str) -> Obj {
    let mut event = Obj::new();
    event.insert("kind", s("event"));
    event.insert("code", s(code));
    event.insert("module", s("sysmon"));
    event.insert("dataset", s("sysmon.operational"));
    event.insert("provider", s(&sys.provider));
    if let Some(x) = spec(sys.event_id) {
        if !x.category.is_empty() {
            event.insert("category", J::A(x.category.iter().map(|v| s(v)).collect()));
        }
        event.insert("type", J::A(x.kind.iter().map(|v| s(v)).collect()));
        event.insert("action", s(x.action));
    }
    event
}

/// `event.created` (into `event`) and the `@timestamp`: `UtcTime`, else TimeCreated.
fn times(sys: &System<'_>, st: &mut St, event: &mut Obj) -> Result<String, Fallback> {
    let created = match &sys.time_created {
        Some(t) => {
            let c = parse_iso_time(t).ok_or(Fallback::UnusualValue)?;
            event.insert("created", s(&c));
            Some(c)
        }
        None => None,
    };
    Ok(match st.data.get("UtcTime") {
        Some(utc) => {
            let t = parse_utc_time(utc).ok_or(Fallback::UnusualValue)?;
            st.data.del("UtcTime");
            t
        }
        // no time at all: Python's document has no @timestamp (the pipeline picks one)
        None => format!("{}Z", &created.ok_or(Fallback::Shape)?[..23]),
    })
}

/// `related.*`: the users, hashes, IPs and hosts gathered, None when there are none.
fn related(st: &St) -> Option<Obj> {
    let mut related = Obj::new();
    for (key, items) in [
        ("user", &st.users),
        ("hash", &st.hashes),
        ("ip", &st.ips),
        ("hosts", &st.hosts),
    ] {
        if !items.is_empty() {
            related.insert(key, str_list(items));
        }
    }
    (!related.is_empty()).then_some(related)
}
