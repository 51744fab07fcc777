//! Registered domain / public suffix, as `shipper.sysmon.psl.split_domain` computes them with
//! the `publicsuffixlist` package: the rule set and the longest rule's label count are handed
//! over from that package's own parsed list (`set_public_suffixes`), and `_countpublic` is
//! followed step by step. ASCII names only; the caller sends anything else to Python.

use std::collections::HashSet;

use crate::util::py_strip;

pub struct Psl {
    rules: HashSet<String>,
    max_label: usize,
}

pub struct DomainParts {
    pub registered: String,
    pub tld: String,
    pub sub: Option<String>,
}

impl Psl {
    pub fn new(rules: HashSet<String>, max_label: usize) -> Self {
        Psl { rules, max_label }
    }

    fn count_public(&self, labels: &[&str]) -> usize {
        let ll = labels.len();
        if ll == 0 {
            return 0;
        }
        if ll == 1 {
            return 1; // accept_unknown
        }
        let start = ll.saturating_sub(self.max_label + 1);
        for i in start..ll {
            let depth = ll - i;
            let s = labels[ll - depth..].join(".");
            if self.rules.contains(&format!("!{s}")) {
                return depth - 1;
            }
            if self.rules.contains(&format!("*.{s}")) {
                return if i > 0 { depth + 1 } else { depth };
            }
            if self.rules.contains(&s) {
                return depth;
            }
        }
        1 // accept_unknown
    }

    /// (privatesuffix, publicsuffix) of an ASCII name, lower-cased, as publicsuffixlist gives.
    fn suffixes(&self, domain: &str) -> (Option<String>, Option<String>) {
        let d = domain.strip_suffix('.').unwrap_or(domain);
        let lowered = d.to_ascii_lowercase();
        let labels: Vec<&str> = lowered.split('.').collect();
        if labels.iter().any(|l| l.is_empty()) {
            return (None, None);
        }
        let publen = self.count_public(&labels);
        let ll = labels.len();
        let private = if publen == 0 || ll < publen + 1 {
            None
        } else {
            Some(labels[ll - (publen + 1)..].join("."))
        };
        let public = if publen == 0 || ll < publen {
            None
        } else {
            Some(labels[ll - publen..].join("."))
        };
        (private, public)
    }

    /// `split_domain` for an ASCII name that is not an IP address (the caller checks).
    pub fn split_domain(&self, name: &str) -> Option<DomainParts> {
        let host = py_strip(name).trim_end_matches('.');
        if !host.contains('.') {
            return None;
        }
        let (registered, tld) = self.suffixes(host);
        let registered = registered.filter(|r| !r.is_empty())?;
        let tld = tld.filter(|t| !t.is_empty())?;
        let lowered = host.to_ascii_lowercase();
        let sub = if lowered.len() > registered.len() {
            let s = &lowered[..lowered.len() - registered.len() - 1];
            if s.is_empty() {
                None
            } else {
                Some(s.to_string())
            }
        } else {
            None
        };
        Some(DomainParts {
            registered,
            tld,
            sub,
        })
    }
}
