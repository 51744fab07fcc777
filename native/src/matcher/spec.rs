//! The rules as the Python compiler describes them (`detectors/stream/native.py`): JSON.

use serde::Deserialize;

/// How a field's values are read (`detectors.stream.values`): its document path, its kind
/// (keyword, ip, long, boolean; any other kind has no values here), the `.caseless`
/// normaliser and keyword's `ignore_above` (UTF-16 units).
#[derive(Deserialize, Clone, PartialEq, Eq, Hash, Debug)]
pub struct FieldSpec {
    pub path: String,
    pub kind: String,
    pub lower: bool,
    pub ia: Option<usize>,
}

#[derive(Deserialize, Debug)]
#[serde(tag = "t")]
pub enum NodeSpec {
    #[serde(rename = "all")]
    All { c: Vec<NodeSpec> },
    #[serde(rename = "any")]
    Any { c: Vec<NodeSpec> },
    #[serde(rename = "not")]
    Not { c: Box<NodeSpec> },
    #[serde(rename = "atleast")]
    AtLeast { n: usize, c: Vec<NodeSpec> },
    #[serde(rename = "true")]
    True,
    #[serde(rename = "false")]
    False,
    /// A whole-value match of a Python `re` pattern (DOTALL) on a keyword field.
    #[serde(rename = "re")]
    Re { f: FieldSpec, p: String },
    /// Inclusive bounds in decimal text (None: open), 128-bit addresses.
    #[serde(rename = "ip")]
    Ip { f: FieldSpec, lo: Option<String>, hi: Option<String> },
    #[serde(rename = "long")]
    Long { f: FieldSpec, lo: Option<String>, hi: Option<String> },
    #[serde(rename = "bool")]
    Bool { f: FieldSpec, v: bool },
    /// Keyword range in UTF-8 byte order; `il`/`ih`: bounds included.
    #[serde(rename = "krange")]
    KRange { f: FieldSpec, lo: Option<String>, hi: Option<String>, il: bool, ih: bool },
    /// At least one value the field indexes.
    #[serde(rename = "exists")]
    Exists { f: FieldSpec },
    /// At least one non-null scalar at the path (a date field).
    #[serde(rename = "present")]
    Present { path: String },
}

#[derive(Deserialize, Debug)]
pub struct RuleSpec {
    /// `event.code`s the rule needs (empty: any).
    pub codes: Vec<String>,
    /// (path, lower-case text) pairs one of which a match contains (None: no such literals).
    pub lits: Option<Vec<(String, String)>>,
    pub pred: NodeSpec,
}

#[derive(Deserialize, Debug)]
pub struct MatcherSpec {
    /// The field `event.code` is read from.
    pub code: FieldSpec,
    pub rules: Vec<RuleSpec>,
}
