//! `Hashes` / `Hash` → `<target>.hash.*`, `pe.imphash` and `related.hash`.

use super::tree::{add_unique, s, sub, St};
use crate::json::Obj;
use crate::util::{partition, py_strip};

pub(super) const ECS_HASH_ALGOS: [&str; 5] = ["md5", "sha1", "sha256", "sha384", "sha512"];

pub(super) fn parse_hashes(value: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for part in value.split(',') {
        let (algo, sep, digest) = partition(part, "=");
        if !sep {
            continue;
        }
        let algo = py_strip(algo).to_ascii_lowercase();
        let digest = py_strip(digest).to_ascii_lowercase();
        if algo.is_empty() || digest.is_empty() || digest.bytes().all(|c| c == b'0') {
            continue;
        }
        out.push((algo, digest));
    }
    out
}

pub(super) fn map_hashes(st: &mut St, doc: &mut Obj, target: &'static str) {
    for field in ["Hashes", "Hash"] {
        let Some(value) = st.data.get(field) else {
            continue;
        };
        let pairs = parse_hashes(value);
        if pairs.is_empty() {
            continue;
        }
        let root = sub(doc, target);
        let mut complete = true;
        for (algo, digest) in &pairs {
            if algo == "imphash" {
                sub(root, "pe").insert("imphash", s(digest));
            } else if ECS_HASH_ALGOS.contains(&algo.as_str()) {
                sub(root, "hash").insert(algo.clone(), s(digest));
            } else {
                complete = false;
            }
            add_unique(&mut st.hashes, digest);
        }
        if complete {
            st.data.del(field);
        }
    }
}
