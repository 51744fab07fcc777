//! The stream matcher's rules evaluated natively (`detectors/stream/native.py` describes them;
//! `detectors/stream/rules.py` keeps what cannot come here): a document's JSON in, the
//! positions of the rules whose query accepts it out.

mod doc;
mod node;
mod prefilter;
mod spec;
mod values;

use doc::J;

use node::{compile, eval, Doc, Fields, Node};
use prefilter::Prefilter;
use spec::MatcherSpec;

pub struct Matcher {
    fields: Fields,
    code_slot: usize,
    /// None: a rule this matcher refused (`rejected`), never evaluated here
    rules: Vec<Option<Node>>,
    prefilter: Prefilter,
    pub rejected: Vec<(usize, String)>,
}

impl Matcher {
    pub fn new(spec_json: &[u8]) -> Result<Self, String> {
        let spec: MatcherSpec = serde_json::from_slice(spec_json).map_err(|e| e.to_string())?;
        let mut fields = Fields::default();
        let code_slot = fields.slot(&spec.code);
        let mut rules = Vec::with_capacity(spec.rules.len());
        let mut rejected = Vec::new();
        for (i, r) in spec.rules.iter().enumerate() {
            match compile(&r.pred, &mut fields) {
                Ok(n) => rules.push(Some(n)),
                Err(e) => {
                    rejected.push((i, e));
                    rules.push(None);
                }
            }
        }
        let codes: Vec<Vec<String>> = spec.rules.iter().map(|r| r.codes.clone()).collect();
        let lits: Vec<_> = spec.rules.iter().map(|r| r.lits.clone()).collect();
        let prefilter = Prefilter::new(&codes, &lits)?;
        Ok(Matcher { fields, code_slot, rules, prefilter, rejected })
    }

    fn codes<'a>(&self, doc: &'a Doc) -> &'a [std::borrow::Cow<'a, str>] {
        match doc.values(self.code_slot) {
            node::Values::Keyword(v) => v,
            _ => &[],
        }
    }

    /// Positions of the rules to evaluate for a document (the prefilter's choice).
    pub fn candidates(&self, json: &[u8]) -> Result<Vec<usize>, String> {
        let root = doc::parse(json)?;
        let doc = Doc::new(&root, &self.fields);
        let codes = self.codes(&doc);
        let bits = self.prefilter.candidates(&root, codes);
        Ok(bits.ones().filter(|&i| self.rules[i].is_some()).collect())
    }

    /// Positions of the rules that accept the document, in order.
    pub fn matches(&self, root: &J) -> Vec<u32> {
        let doc = Doc::new(root, &self.fields);
        let codes = self.codes(&doc);
        let mut out = Vec::new();
        for i in self.prefilter.candidates(root, codes).ones() {
            if let Some(n) = &self.rules[i] {
                if eval(n, &doc) {
                    out.push(i as u32);
                }
            }
        }
        out
    }

    /// `matches` on a document's JSON text.
    pub fn matches_json(&self, json: &[u8]) -> Result<Vec<u32>, String> {
        Ok(self.matches(&doc::parse(json)?))
    }
}
