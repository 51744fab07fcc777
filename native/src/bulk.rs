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

/// Append the two bulk lines of `doc` (a native document: see `native_head`) to `out`:
/// `{"create":{"_index":"<index_prefix><yyyy.MM>","_id":<doc_id>}}` and the document with
/// `"ingested":"<ingested>"` as the first field of its `event`, each ending in a newline.
/// False (and nothing appended) when `doc` is not a native document.
pub fn append_pair(
    doc: &[u8],
    doc_id: &str,
    index_prefix: &str,
    ingested: &str,
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
    out.reserve(doc.len() + index.len() + doc_id.len() + ingested.len() + 48);
    out.extend_from_slice(b"{\"create\":{\"_index\":");
    write_str(&index, out);
    out.extend_from_slice(b",\"_id\":");
    write_str(doc_id, out);
    out.extend_from_slice(b"}}\n");
    out.extend_from_slice(&doc[..BODY_AT]);
    out.extend_from_slice(b"\"ingested\":\"");
    out.extend_from_slice(ingested.as_bytes());
    out.extend_from_slice(b"\",");
    out.extend_from_slice(&doc[BODY_AT..]);
    out.push(b'\n');
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair() {
        let doc = br#"{"@timestamp":"2024-05-01T10:00:00.123Z","event":{"kind":"event"},"x":1}"#;
        let mut out = Vec::new();
        assert!(append_pair(
            doc,
            "a\"b",
            "p-events-",
            "2026-01-01T00:00:00.000Z",
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
        assert!(!append_pair(b"{\"event\":{}}", "x", "p-", "t", &mut out));
        assert!(!append_pair(
            br#"{"@timestamp":"20x4-05-01T10:00:00.123Z","event":{"kind":"event"}}"#,
            "x",
            "p-",
            "t",
            &mut out
        ));
        assert!(out.is_empty());
    }
}
