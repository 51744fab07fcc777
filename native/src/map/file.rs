//! File paths, pipe names and code signatures.

use super::tree::{has, s, sub, St};
use crate::json::{Obj, J};
use crate::util::{partition, rpartition};

pub(super) fn map_file_path(file: &mut Obj, path: &str) {
    file.insert("path", s(path));
    let (directory, sep, name) = rpartition(path, b'\\');
    if sep && !directory.is_empty() {
        file.insert("directory", s(directory));
    }
    if name.is_empty() {
        return;
    }
    file.insert("name", s(name));
    let base = partition(name, ":").0;
    let (stem, dot, ext) = rpartition(base, b'.');
    if dot && !stem.is_empty() && !ext.is_empty() {
        file.insert("extension", s(ext));
    }
}

pub(super) fn map_file(st: &mut St, doc: &mut Obj) {
    for name in ["TargetFilename", "ImageLoaded", "Device"] {
        if let Some(v) = st.data.pop(name) {
            map_file_path(sub(doc, "file"), &v);
            break;
        }
    }
    if let Some(pipe) = st.data.get("PipeName") {
        if !has(doc, &["file", "name"]) {
            let pipe = pipe.to_string();
            sub(doc, "file").insert("name", J::S(pipe));
            st.data.del("PipeName");
        }
    }
    if let Some(status) = st.data.pop("SignatureStatus") {
        let sig = sub(sub(doc, "file"), "code_signature");
        let valid = status == "Valid";
        sig.insert("status", J::S(status));
        sig.insert("valid", J::B(valid));
    }
}
