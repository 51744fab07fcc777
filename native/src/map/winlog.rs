//! `winlog.*`: the System fields as winlogbeat names them, and the EventData not mapped.

use super::data::{normalise_guid, Data};
use super::system::System;
use super::tree::{s, sub};
use crate::json::{Obj, J};

/// The `winlog` object of a record whose unmapped EventData is `data`.
pub(super) fn winlog(sys: &System<'_>, code: &str, data: Data) -> Obj {
    let mut winlog = Obj::new();
    if !sys.channel.is_empty() {
        winlog.insert("channel", s(&sys.channel));
    }
    winlog.insert("computer_name", s(&sys.computer));
    winlog.insert("event_id", s(code));
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
    if !data.entries.is_empty() {
        let mut ed = Obj::new();
        for (k, v) in data.entries {
            ed.insert(k, J::S(v));
        }
        winlog.insert("event_data", J::O(ed));
    }
    winlog
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

pub(super) fn level_name(level: i64) -> Option<&'static str> {
    Some(match level {
        0 | 4 => "information",
        1 => "critical",
        2 => "error",
        3 => "warning",
        5 => "verbose",
        _ => return None,
    })
}

pub(super) fn non_negative(v: Option<i64>) -> Option<i64> {
    v.filter(|n| *n >= 0)
}
