//! Which rules a document can match (`detectors/stream/prefilter.py`): rules indexed by
//! `event.code`, and by necessary literals found by one Aho-Corasick pass per path over the
//! path's lower-cased values.

use std::collections::{HashMap, HashSet};

use aho_corasick::AhoCorasick;

use super::doc::J;
use super::values::{java_lower, keyword_text, Path};

/// Rule positions as a bit set.
#[derive(Clone, Default)]
pub struct Bits(Vec<u64>);

impl Bits {
    pub fn new(n: usize) -> Self {
        Bits(vec![0; n.div_ceil(64)])
    }
    pub fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    pub fn or(&mut self, o: &Bits) {
        self.0.iter_mut().zip(&o.0).for_each(|(a, b)| *a |= b);
    }
    pub fn ones(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(w, &bits)| {
            (0..64).filter(move |b| bits & (1 << b) != 0).map(move |b| w * 64 + b)
        })
    }
}

struct PathLits {
    path: Path,
    automaton: AhoCorasick,
    /// per pattern, the rules it gates
    rules: Vec<Vec<usize>>,
    /// the codes of its rules (None: a rule of every code uses it)
    codes: Option<Vec<String>>,
}

/// Per event code (None: rules of every code), the rules always evaluated and those gated by
/// literals (a few dozen codes: a scan beats hashing).
pub struct Prefilter {
    n: usize,
    by_code: Vec<(Option<String>, Bits, Bits)>,
    paths: Vec<PathLits>,
}

type Lits = Option<Vec<(String, String)>>;

impl Prefilter {
    pub fn new(codes: &[Vec<String>], lits: &[Lits]) -> Result<Self, String> {
        let n = codes.len();
        let mut always: HashMap<Option<String>, Bits> = HashMap::new();
        let mut gated: HashMap<Option<String>, Bits> = HashMap::new();
        let mut by_path: HashMap<&str, (HashMap<&str, Vec<usize>>, HashSet<Option<String>>)> = HashMap::new();
        for (i, (cs, ls)) in codes.iter().zip(lits).enumerate() {
            let keys: Vec<Option<String>> =
                if cs.is_empty() { vec![None] } else { cs.iter().cloned().map(Some).collect() };
            let target = if ls.is_none() { &mut always } else { &mut gated };
            for k in &keys {
                target.entry(k.clone()).or_insert_with(|| Bits::new(n)).set(i);
            }
            for (path, lit) in ls.iter().flatten() {
                let entry = by_path.entry(path).or_default();
                entry.0.entry(lit).or_default().push(i);
                entry.1.extend(keys.iter().cloned());
            }
        }
        let mut paths = Vec::new();
        let mut sorted: Vec<_> = by_path.into_iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (path, (words, pcodes)) in sorted {
            let (pats, rules): (Vec<&str>, Vec<Vec<usize>>) = words.into_iter().unzip();
            let automaton = AhoCorasick::new(&pats).map_err(|e| e.to_string())?;
            let codes = if pcodes.contains(&None) {
                None
            } else {
                Some(pcodes.into_iter().flatten().collect())
            };
            paths.push(PathLits { path: Path::new(path), automaton, rules, codes });
        }
        let mut by_code = Vec::new();
        let keys: HashSet<Option<String>> = always.keys().chain(gated.keys()).cloned().collect();
        for k in keys {
            let a = always.remove(&k).unwrap_or_else(|| Bits::new(n));
            let g = gated.remove(&k).unwrap_or_else(|| Bits::new(n));
            by_code.push((k, a, g));
        }
        Ok(Prefilter { n, by_code, paths })
    }

    /// The rules to evaluate for `doc`, whose event codes are `codes`.
    pub fn candidates<S: AsRef<str>>(&self, doc: &J, codes: &[S]) -> Bits {
        let mut out = Bits::new(self.n);
        let mut gated = Bits::new(self.n);
        for (k, a, g) in &self.by_code {
            let wanted = match k {
                None => true,
                Some(k) => codes.iter().any(|c| c.as_ref() == k),
            };
            if wanted {
                out.or(a);
                gated.or(g);
            }
        }
        if gated.0.iter().all(|w| *w == 0) {
            return out;
        }
        let mut found = Bits::new(self.n);
        let mut raw = Vec::new();
        for p in &self.paths {
            if let Some(pc) = &p.codes {
                if !codes.iter().any(|c| pc.iter().any(|p| p == c.as_ref())) {
                    continue;
                }
            }
            raw.clear();
            p.path.raw(doc, &mut raw);
            for v in &raw {
                let Some(text) = keyword_text(v) else { continue };
                for m in p.automaton.find_overlapping_iter(&java_lower(&text)) {
                    for &r in &p.rules[m.pattern().as_usize()] {
                        found.set(r);
                    }
                }
            }
        }
        for ((o, g), f) in out.0.iter_mut().zip(&gated.0).zip(&found.0) {
            *o |= g & f;
        }
        out
    }
}
