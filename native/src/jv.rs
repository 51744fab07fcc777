//! A borrowed JSON value for the JSON-lines reader: strings are borrowed from the line unless
//! they hold escapes, objects are short vectors with a Python dict's semantics (a repeated key
//! keeps its first place and takes the last value), arrays are only known to be arrays (every
//! rule that meets one leaves the line to Python or only asks whether it is empty… of text).
//! The top level keeps each value as raw JSON (`Top`) and parses only the ones a rule reads:
//! winlogbeat's `message`, `agent`… and NXLog's `Message` are scanned, never built; `winlog`
//! (which every rule reads) is read with the line.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::record::Str;

#[derive(Clone)]
pub enum V<'a> {
    Null,
    Bool(bool),
    /// an integer that fits i64
    I(i64),
    /// an integer beyond i64 (up to u64)
    U(u64),
    /// a float (or an integer beyond u64, which orjson also reads as a float)
    F,
    S(Cow<'a, str>),
    A,
    O(M<'a>),
}

/// An object, in document order, keys unique (dict semantics applied while reading).
#[derive(Clone)]
pub struct M<'a>(pub Vec<(Cow<'a, str>, V<'a>)>);

impl<'a> M<'a> {
    pub fn get(&self, key: &str) -> Option<&V<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
}

fn put<'a, T>(entries: &mut Vec<(Cow<'a, str>, T)>, key: Cow<'a, str>, value: T) {
    if let Some(slot) = entries.iter_mut().find(|(k, _)| *k == key) {
        slot.1 = value;
    } else {
        entries.push((key, value));
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for V<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = V<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
                Ok(V::Bool(b))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Ok(V::I(n))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(n).map(V::I).unwrap_or(V::U(n)))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(V::F)
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(V::S(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(V::S(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(V::S(Cow::Owned(s)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(V::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(V::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<IgnoredAny>()?.is_some() {}
                Ok(V::A)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(m.size_hint().unwrap_or(8));
                while let Some((k, v)) = m.next_entry::<Str<'de>, V<'de>>()? {
                    put(&mut entries, k.0, v);
                }
                Ok(V::O(M(entries)))
            }
        }
        d.deserialize_any(Vis)
    }
}

/// A top-level value: raw JSON, or (winlogbeat's `winlog`, the object every rule reads) read
/// while the line is, so that it is not scanned twice.
pub enum Slot<'a> {
    Raw(&'a RawValue),
    Parsed(V<'a>),
}

/// The top-level key read into a `V` as the line is parsed.
pub const PARSED_KEY: &str = "winlog";

/// A top-level object whose values stay raw JSON until asked for (but `PARSED_KEY`'s).
pub struct Top<'a>(pub Vec<(Cow<'a, str>, Slot<'a>)>);

impl<'a> Top<'a> {
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }
    fn slot(&self, key: &str) -> Option<&Slot<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
    /// The value of `key` parsed (Ok(None) when absent).
    pub fn get(&self, key: &str) -> Result<Option<V<'a>>, serde_json::Error> {
        match self.slot(key) {
            None => Ok(None),
            Some(slot) => slot.value().map(Some),
        }
    }
    /// The value of `PARSED_KEY`, as read with the line.
    pub fn parsed(&self, key: &str) -> Option<&V<'a>> {
        match self.slot(key) {
            Some(Slot::Parsed(v)) => Some(v),
            _ => None,
        }
    }
}

impl<'a> Slot<'a> {
    /// The value (parsed now if it is raw).
    pub fn value(&self) -> Result<V<'a>, serde_json::Error> {
        match self {
            Slot::Raw(raw) => parse(raw),
            Slot::Parsed(v) => Ok(v.clone()),
        }
    }
}

/// A raw value (already validated by the line's parse) read into a `V`.
pub fn parse(raw: &RawValue) -> Result<V<'_>, serde_json::Error> {
    serde_json::from_str(raw.get())
}

impl<'de: 'a, 'a> Deserialize<'de> for Top<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Vis;
        impl<'de> Visitor<'de> for Vis {
            type Value = Top<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::with_capacity(m.size_hint().unwrap_or(32));
                while let Some(k) = m.next_key::<Str<'de>>()? {
                    let slot = if k.0 == PARSED_KEY {
                        Slot::Parsed(m.next_value::<V<'de>>()?)
                    } else {
                        Slot::Raw(m.next_value::<&'de RawValue>()?)
                    };
                    put(&mut entries, k.0, slot);
                }
                Ok(Top(entries))
            }
        }
        d.deserialize_map(Vis)
    }
}
