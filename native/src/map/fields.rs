//! EventData → ECS fields: the plain ones here, the rest per group (process, file, …).

use super::dns::map_dns;
use super::file::map_file;
use super::hashes::map_hashes;
use super::network::map_network;
use super::process::map_process;
use super::registry::map_registry;
use super::spec::spec;
use super::tree::{has, put, sub, St};
use super::{Fallback, MAX_LONG, MAX_PORT};
use crate::json::{Obj, J};
use crate::psl::Psl;

pub(super) const STRINGS: [(&str, &[&str]); 8] = [
    ("ProcessGuid", &["process", "entity_id"]),
    ("SourceProcessGuid", &["process", "entity_id"]),
    ("SourceProcessGUID", &["process", "entity_id"]),
    ("CurrentDirectory", &["process", "working_directory"]),
    ("ParentProcessGuid", &["process", "parent", "entity_id"]),
    ("Signature", &["file", "code_signature", "subject_name"]),
    ("SourceHostname", &["source", "domain"]),
    ("DestinationHostname", &["destination", "domain"]),
];
pub(super) const INTS: [(&str, &[&str], u64); 6] = [
    ("ProcessId", &["process", "pid"], MAX_LONG),
    ("SourceProcessId", &["process", "pid"], MAX_LONG),
    ("SourceThreadId", &["process", "thread", "id"], MAX_LONG),
    ("ParentProcessId", &["process", "parent", "pid"], MAX_LONG),
    ("SourcePort", &["source", "port"], MAX_PORT),
    ("DestinationPort", &["destination", "port"], MAX_PORT),
];

pub(super) const BOOL_TARGETS: [(&str, &[&str]); 3] = [
    ("Signed", &["file", "code_signature", "signed"]),
    ("Archived", &["sysmon", "file", "archived"]),
    ("IsExecutable", &["sysmon", "file", "is_executable"]),
];

pub(super) fn map_event_data(
    st: &mut St,
    doc: &mut Obj,
    eid: i64,
    psl: Option<&Psl>,
) -> Result<(), Fallback> {
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
