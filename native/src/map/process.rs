//! Process, parent and user fields.

use super::spec::Spec;
use super::tree::{add_unique, s, sub, St};
use crate::cmdline::split_command_line;
use crate::json::{Obj, J};
use crate::util::basename;

pub(super) const PE_FIELDS: [(&str, &str); 5] = [
    ("OriginalFileName", "original_file_name"),
    ("Company", "company"),
    ("Description", "description"),
    ("FileVersion", "file_version"),
    ("Product", "product"),
];

pub(super) fn map_user(st: &mut St, target: &mut Obj, user: &str) {
    let parts: Vec<&str> = user.split('\\').collect();
    if parts.len() == 2 && !parts[0].is_empty() && !parts[1].is_empty() {
        target.insert("domain", s(parts[0]));
        target.insert("name", s(parts[1]));
        add_unique(&mut st.users, parts[1]);
    } else {
        target.insert("name", s(user));
        add_unique(&mut st.users, user);
    }
}

pub(super) fn map_command_line(target: &mut Obj, command_line: &str) {
    target.insert("command_line", s(command_line));
    let args = split_command_line(command_line);
    if !args.is_empty() {
        let n = args.len();
        target.insert("args", J::A(args.into_iter().map(J::S).collect()));
        target.insert("args_count", J::U(n as u64));
    }
}

pub(super) fn map_process(st: &mut St, doc: &mut Obj, spec: &Option<Spec>) {
    let image = st.data.pop("Image").or_else(|| st.data.pop("SourceImage"));
    if let Some(image) = image {
        let proc = sub(doc, "process");
        proc.insert("executable", s(&image));
        proc.insert("name", s(basename(&image)));
    }
    if let Some(cl) = st.data.pop("CommandLine") {
        map_command_line(sub(doc, "process"), &cl);
    }
    if let Some(pi) = st.data.pop("ParentImage") {
        let parent = sub(sub(doc, "process"), "parent");
        parent.insert("executable", s(&pi));
        parent.insert("name", s(basename(&pi)));
    }
    if let Some(pcl) = st.data.pop("ParentCommandLine") {
        map_command_line(sub(sub(doc, "process"), "parent"), &pcl);
    }
    if let Some(user) = st.data.pop("User") {
        map_user(st, sub(doc, "user"), &user);
    }
    if let Some(pu) = st.data.pop("ParentUser") {
        map_user(st, sub(sub(sub(doc, "process"), "parent"), "user"), &pu);
    }
    if let Some(pe_root) = spec.as_ref().and_then(|x| x.pe_target) {
        for (name, ecs_name) in PE_FIELDS {
            if let Some(v) = st.data.pop(name) {
                sub(sub(doc, pe_root), "pe").insert(ecs_name, J::S(v));
            }
        }
    }
}
