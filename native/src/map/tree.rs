//! The document being built (an ordered tree) and the state of one record's mapping.

use super::data::Data;
use super::Fallback;
use crate::ip::parse_ip;
use crate::json::{Obj, J};
use crate::util::{parse_int_str, partition, py_strip};

pub(super) struct St {
    pub(super) data: Data,
    pub(super) ips: Vec<String>,
    pub(super) users: Vec<String>,
    pub(super) hashes: Vec<String>,
    pub(super) hosts: Vec<String>,
}

pub(super) fn add_unique(items: &mut Vec<String>, value: &str) {
    if !items.iter().any(|v| v == value) {
        items.push(value.to_string());
    }
}

pub(super) fn sub<'a>(d: &'a mut Obj, key: &'static str) -> &'a mut Obj {
    if !d.contains_key(key) {
        d.insert(key, J::O(Obj::new()));
    }
    match d.get_mut(key) {
        Some(J::O(m)) => m,
        _ => unreachable!("only objects are created at inner paths"),
    }
}

pub(super) fn has(doc: &Obj, path: &[&str]) -> bool {
    let mut d = doc;
    for (i, key) in path.iter().enumerate() {
        match d.get(key) {
            None => return false,
            Some(v) => {
                if i + 1 == path.len() {
                    return true;
                }
                match v {
                    J::O(m) => d = m,
                    _ => return false,
                }
            }
        }
    }
    true
}

pub(super) fn put(doc: &mut Obj, path: &[&'static str], value: J) {
    let mut d = doc;
    for key in &path[..path.len() - 1] {
        d = sub(d, key);
    }
    d.insert(path[path.len() - 1].to_string(), value);
}

pub(super) fn s(v: &str) -> J {
    J::S(v.to_string())
}

pub(super) fn str_list(items: &[String]) -> J {
    J::A(items.iter().map(|v| s(v)).collect())
}

impl St {
    pub(super) fn take_int(&mut self, name: &str, top: u64) -> Result<Option<u64>, Fallback> {
        let Some(value) = self.data.get(name) else {
            return Ok(None);
        };
        match parse_int_str(value) {
            Ok(Some(n)) if n <= top => {
                self.data.del(name);
                Ok(Some(n))
            }
            _ => Err(Fallback::PipelineError),
        }
    }

    pub(super) fn take_bool(&mut self, name: &str) -> Result<Option<bool>, Fallback> {
        let Some(value) = self.data.get(name) else {
            return Ok(None);
        };
        match value {
            "true" => {
                self.data.del(name);
                Ok(Some(true))
            }
            "false" => {
                self.data.del(name);
                Ok(Some(false))
            }
            _ => {
                // `false - shredded file …`: the first word; the raw value stays
                let (head, sep, _) = partition(value, " - ");
                if !sep {
                    return Err(Fallback::PipelineError);
                }
                match py_strip(head).to_ascii_lowercase().as_str() {
                    "true" => Ok(Some(true)),
                    "false" => Ok(Some(false)),
                    _ => Err(Fallback::PipelineError),
                }
            }
        }
    }

    pub(super) fn take_ip(&mut self, name: &str) -> Result<Option<String>, Fallback> {
        let Some(value) = self.data.get(name) else {
            return Ok(None);
        };
        let ip = parse_ip(value).ok_or(Fallback::PipelineError)?;
        self.data.del(name);
        Ok(Some(ip))
    }
}
