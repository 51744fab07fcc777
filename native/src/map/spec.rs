//! The event table: category, type, action and hash / PE targets per event ID.

pub(super) struct Spec {
    pub(super) category: &'static [&'static str],
    pub(super) kind: &'static [&'static str],
    pub(super) action: &'static str,
    pub(super) hash_target: Option<&'static str>,
    pub(super) pe_target: Option<&'static str>,
}

pub(super) const fn sp(
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

pub(super) const P: Option<&str> = Some("process");
pub(super) const F: Option<&str> = Some("file");

/// `shipper.sysmon.events.EVENTS` (a unit test compares both tables).
pub(super) fn spec(eid: i64) -> Option<Spec> {
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
