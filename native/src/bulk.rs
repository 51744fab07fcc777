//! Bulk request lines for the documents the core maps: the sink's per-document work (the
//! action line, `event.ingested`, the newlines) done in one pass over a run instead of in
//! Python for each document.

use crate::json::write_str;

/// Every native document starts `{"@timestamp":"<24 characters>","event":{` (the mapper writes
/// these two fields first, and `event` is never empty: it always has its `kind`).
const HEAD: &[u8] = b"{\"@timestamp\":\"";
const EVENT: &[u8] = b"\",\"event\":{";
const EVENT_AT: usize = 39;
const BODY_AT: usize = EVENT_AT + EVENT.len();

/// Whether `doc` starts as every native document does.
pub fn native_head(doc: &[u8]) -> bool {
    doc.len() > BODY_AT && doc.starts_with(HEAD) && &doc[EVENT_AT..BODY_AT] == EVENT
}

/// `yyyy.MM` of a native document's `@timestamp` (None if those are not digits).
fn month(doc: &[u8]) -> Option<[u8; 7]> {
    let t = &doc[HEAD.len()..HEAD.len() + 7];
    let digits = [0, 1, 2, 3, 5, 6].iter().all(|&i| t[i].is_ascii_digit());
    (digits && t[4] == b'-').then(|| [t[0], t[1], t[2], t[3], b'.', t[5], t[6]])
}

/// What the shipper adds to every document (`shipper/envelope.py`): `tail`, JSON members
/// (`,"agent":{…}`) appended to the document, and `log_file` (`"file":{"path":…}`) merged into
/// its `log` object. Both empty: the document as it is.
pub struct Envelope<'a> {
    pub tail: &'a [u8],
    pub log_file: &'a [u8],
}

const LOG: &[u8] = b",\"log\":{";

/// `body` (a native document from its `event` members on) with the envelope added. A native
/// document's `log` holds only `level`, so the first `,"log":{` is its own.
fn append_body(body: &[u8], env: &Envelope, out: &mut Vec<u8>) {
    let Some(inner) = body.strip_suffix(b"}") else {
        out.extend_from_slice(body);
        return;
    };
    if env.log_file.is_empty() {
        out.extend_from_slice(inner);
    } else if let Some(at) = inner.windows(LOG.len()).position(|w| w == LOG) {
        let cut = at + LOG.len();
        out.extend_from_slice(&inner[..cut]);
        out.extend_from_slice(env.log_file);
        if inner.get(cut) != Some(&b'}') {
            out.push(b',');
        }
        out.extend_from_slice(&inner[cut..]);
    } else {
        out.extend_from_slice(inner);
        out.extend_from_slice(LOG);
        out.extend_from_slice(env.log_file);
        out.push(b'}');
    }
    out.extend_from_slice(env.tail);
    out.push(b'}');
}

/// Append the two bulk lines of `doc` (a native document: see `native_head`) to `out`:
/// `{"create":{"_index":"<index_prefix><yyyy.MM>","_id":<doc_id>}}` and the document with
/// `"ingested":"<ingested>"` as the first field of its `event` and the envelope added, each
/// ending in a newline. False (and nothing appended) when `doc` is not a native document.
pub fn append_pair(
    doc: &[u8],
    doc_id: &str,
    index_prefix: &str,
    ingested: &str,
    env: &Envelope,
    out: &mut Vec<u8>,
) -> bool {
    if !native_head(doc) {
        return false;
    }
    let Some(month) = month(doc) else {
        return false;
    };
    let mut index = String::with_capacity(index_prefix.len() + month.len());
    index.push_str(index_prefix);
    index.extend(month.iter().map(|&b| b as char));
    let extra = env.tail.len() + env.log_file.len() + 16;
    out.reserve(doc.len() + index.len() + doc_id.len() + ingested.len() + extra + 48);
    out.extend_from_slice(b"{\"create\":{\"_index\":");
    write_str(&index, out);
    out.extend_from_slice(b",\"_id\":");
    write_str(doc_id, out);
    out.extend_from_slice(b"}}\n");
    out.extend_from_slice(&doc[..BODY_AT]);
    out.extend_from_slice(b"\"ingested\":\"");
    out.extend_from_slice(ingested.as_bytes());
    out.extend_from_slice(b"\",");
    append_body(&doc[BODY_AT..], env, out);
    out.push(b'\n');
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: Envelope = Envelope {
        tail: b"",
        log_file: b"",
    };

    #[test]
    fn envelope() {
        let env = Envelope {
            tail: br#","agent":{"type":"t"}"#,
            log_file: br#""file":{"path":"/x"}"#,
        };
        let with_log = br#"{"@timestamp":"2024-05-01T10:00:00.123Z","event":{"kind":"event"},"log":{"level":"information"},"x":1}"#;
        let mut out = Vec::new();
        assert!(append_pair(with_log, "i", "p-", "T", &env, &mut out));
        let text = String::from_utf8(out).unwrap();
        let doc = text.lines().nth(1).unwrap();
        assert_eq!(
            doc,
            r#"{"@timestamp":"2024-05-01T10:00:00.123Z","event":{"ingested":"T","kind":"event"},"log":{"file":{"path":"/x"},"level":"information"},"x":1,"agent":{"type":"t"}}"#
        );
        let without = br#"{"@timestamp":"2024-05-01T10:00:00.123Z","event":{"kind":"event"},"x":1}"#;
        let mut out = Vec::new();
        assert!(append_pair(without, "i", "p-", "T", &env, &mut out));
        let text = String::from_utf8(out).unwrap();
        assert!(text.lines().nth(1).unwrap().ends_with(r#","x":1,"log":{"file":{"path":"/x"}},"agent":{"type":"t"}}"#));
    }

    #[test]
    fn pair() {
        let doc = br#"{"@timestamp":"2024-05-01T10:00:00.123Z","event":{"kind":"event"},"x":1}"#;
        let mut out = Vec::new();
        assert!(append_pair(
            doc,
            "a\"b",
            "p-events-",
            "2026-01-01T00:00:00.000Z",
            &NONE,
            &mut out
        ));
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"create\":{\"_index\":\"p-events-2024.05\",\"_id\":\"a\\\"b\"}}\n\
             {\"@timestamp\":\"2024-05-01T10:00:00.123Z\",\"event\":{\"ingested\":\"2026-01-01T00:00:00.000Z\",\
             \"kind\":\"event\"},\"x\":1}\n"
        );
        let mut out = Vec::new();
        assert!(!append_pair(b"{\"event\":{}}", "x", "p-", "t", &NONE, &mut out));
        assert!(!append_pair(
            br#"{"@timestamp":"20x4-05-01T10:00:00.123Z","event":{"kind":"event"}}"#,
            "x",
            "p-",
            "t",
            &NONE,
            &mut out
        ));
        assert!(out.is_empty());
    }
}
