//! DNS query fields: the question split by the public suffix list, answers, status.

use super::tree::{add_unique, s, str_list, sub, St};
use super::Fallback;
use crate::ip::parse_ip;
use crate::json::{Obj, J};
use crate::psl::Psl;
use crate::util::{all_digits, parse_u64, partition, py_strip};

pub(super) fn dns_status(value: &str) -> String {
    let st = py_strip(value);
    if all_digits(st) {
        if let Some(n) = parse_u64(st) {
            if let Some(name) = crate::dnstables::status(n) {
                return name.to_string();
            }
        }
    }
    st.to_string()
}

pub(super) fn map_dns(
    st: &mut St,
    doc: &mut Obj,
    eid: i64,
    psl: Option<&Psl>,
) -> Result<(), Fallback> {
    if let Some(name) = st.data.pop("QueryName") {
        map_question(st, doc, &name, psl)?;
    }
    if let Some(status) = st.data.pop("QueryStatus") {
        sub(sub(doc, "sysmon"), "dns").insert("status", J::S(dns_status(&status)));
    }
    if let Some(results) = st.data.get("QueryResults") {
        let mut answers: Vec<J> = Vec::new();
        let mut ips: Vec<String> = Vec::new();
        let mut hosts: Vec<String> = Vec::new();
        let mut complete = true;
        for entry in results.split(';') {
            let entry = py_strip(entry);
            if entry.is_empty() {
                continue;
            }
            if let Some(rest) = entry.strip_prefix("type:") {
                let (number, _, host) = partition(py_strip(rest), " ");
                let host = py_strip(host);
                if !all_digits(number) || host.is_empty() {
                    complete = false;
                    continue;
                }
                let n = parse_u64(number).ok_or(Fallback::UnusualValue)?;
                let mut a = Obj::new();
                a.insert("type", J::S(crate::dnstables::type_name(n)));
                a.insert("data", s(host));
                answers.push(J::O(a));
                hosts.push(host.to_string());
                continue;
            }
            match parse_ip(entry) {
                None => complete = false,
                Some(ip) => {
                    let mut a = Obj::new();
                    a.insert("type", s(if ip.contains(':') { "AAAA" } else { "A" }));
                    a.insert("data", s(&ip));
                    answers.push(J::O(a));
                    ips.push(ip);
                }
            }
        }
        if !answers.is_empty() {
            let mut resolved: Vec<String> = Vec::new();
            for ip in &ips {
                add_unique(&mut resolved, ip);
                add_unique(&mut st.ips, ip);
            }
            let dns = sub(doc, "dns");
            dns.insert("answers", J::A(answers));
            if !ips.is_empty() {
                dns.insert("resolved_ip", str_list(&resolved));
            }
            for h in &hosts {
                add_unique(&mut st.hosts, h);
            }
        }
        if complete {
            st.data.del("QueryResults");
        }
    }
    if eid == 22 {
        sub(doc, "network").insert("protocol", s("dns"));
    }
    Ok(())
}

/// `dns.question.*` of the query `name`, split by the public suffix list.
fn map_question(st: &mut St, doc: &mut Obj, name: &str, psl: Option<&Psl>) -> Result<(), Fallback> {
    let mut question = Obj::new();
    question.insert("name", s(name));
    let host = py_strip(name).trim_end_matches('.');
    if host.contains('.') {
        // an IP address is not split (Python asks `ipaddress`): leave such names to Python
        if host.contains(':') || host.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            return Err(Fallback::UnusualValue);
        }
        let psl = psl.ok_or(Fallback::UnusualValue)?;
        if let Some(parts) = psl.split_domain(name) {
            question.insert("registered_domain", J::S(parts.registered));
            question.insert("top_level_domain", J::S(parts.tld));
            if let Some(sd) = parts.sub {
                question.insert("subdomain", J::S(sd));
            }
        }
    }
    sub(doc, "dns").insert("question", J::O(question));
    if !name.is_empty() {
        add_unique(&mut st.hosts, name);
    }
    Ok(())
}
