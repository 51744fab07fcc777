//! The record JSON that the `evtx` crate renders (pyevtx-rs's shape), read straight into the
//! few fields the mapper needs, strings borrowed where they need no unescaping. Any deviation
//! from the shape `shipper.readers.evtx._event_from_json` takes on its fast path (a missing
//! field, an EventID with attributes, an EventData value that is neither a string, an integer
//! nor null…) fails the parse, and the record goes to Python.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

/// A string, borrowed from the input when it holds no escapes.
pub struct Str<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Str<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Str<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Str(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

/// A System value Python reads with `type(x) is int` (anything else: None), present or not.
pub struct AnyInt(pub Option<i64>);

impl<'de> Deserialize<'de> for AnyInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AnyInt;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Ok(AnyInt(Some(n)))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                // beyond i64: Python keeps the big integer; leave such a record to it
                i64::try_from(n)
                    .map(|n| AnyInt(Some(n)))
                    .map_err(|_| E::custom("integer too large"))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(AnyInt(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(AnyInt(None))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(AnyInt(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(AnyInt(None))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(AnyInt(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                while m.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(AnyInt(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut s: A) -> Result<Self::Value, A::Error> {
                while s.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(AnyInt(None))
            }
        }
        d.deserialize_any(V)
    }
}

/// An EventData value: a string, an integer (rendered as Python's `str(int)`), or null.
pub enum DataValue<'a> {
    Text(Cow<'a, str>),
    Number(String),
    /// A JSON boolean: Python's fast path hands such a record to its careful path, which
    /// renders it `true`/`false` (and is otherwise the same for a record of this shape).
    Bool(bool),
    Null,
}

impl<'de: 'a, 'a> Deserialize<'de> for DataValue<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DataValue<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, an integer, a boolean or null")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(DataValue::Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(DataValue::Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(DataValue::Text(Cow::Owned(v)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Self::Value, E> {
                Ok(DataValue::Number(n.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Self::Value, E> {
                Ok(DataValue::Number(n.to_string()))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Self::Value, E> {
                Ok(DataValue::Bool(b))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(DataValue::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(DataValue::Null)
            }
        }
        d.deserialize_any(V)
    }
}

/// The EventData object, in document order.
pub struct EventData<'a>(pub Vec<(Str<'a>, DataValue<'a>)>);

impl<'de: 'a, 'a> Deserialize<'de> for EventData<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = EventData<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an EventData object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(24));
                while let Some(entry) = m.next_entry::<Str<'de>, DataValue<'de>>()? {
                    out.push(entry);
                }
                Ok(EventData(out))
            }
        }
        d.deserialize_map(V)
    }
}

#[derive(Deserialize)]
pub struct Attrs<T> {
    #[serde(rename = "#attributes")]
    pub attributes: T,
}

#[derive(Deserialize)]
pub struct ProviderAttrs<'a> {
    #[serde(rename = "Name", borrow)]
    pub name: Str<'a>,
    #[serde(rename = "Guid", borrow)]
    pub guid: Str<'a>,
}

#[derive(Deserialize)]
pub struct TimeAttrs<'a> {
    #[serde(rename = "SystemTime", borrow)]
    pub system_time: Str<'a>,
}

#[derive(Deserialize)]
pub struct ExecutionAttrs {
    #[serde(rename = "ProcessID")]
    pub process_id: AnyInt,
    #[serde(rename = "ThreadID")]
    pub thread_id: AnyInt,
}

#[derive(Deserialize)]
pub struct SecurityAttrs<'a> {
    #[serde(rename = "UserID", borrow)]
    pub user_id: Str<'a>,
}

#[derive(Deserialize)]
pub struct System<'a> {
    #[serde(rename = "Provider", borrow)]
    pub provider: Attrs<ProviderAttrs<'a>>,
    #[serde(rename = "EventID")]
    pub event_id: i64,
    #[serde(rename = "Version")]
    pub version: AnyInt,
    #[serde(rename = "Level")]
    pub level: AnyInt,
    #[serde(rename = "Task")]
    pub task: AnyInt,
    #[serde(rename = "Opcode")]
    pub opcode: AnyInt,
    #[serde(rename = "Keywords", borrow)]
    pub keywords: Str<'a>,
    #[serde(rename = "TimeCreated", borrow)]
    pub time_created: Attrs<TimeAttrs<'a>>,
    #[serde(rename = "EventRecordID")]
    pub event_record_id: i64,
    #[serde(rename = "Execution")]
    pub execution: Attrs<ExecutionAttrs>,
    #[serde(rename = "Channel", borrow)]
    pub channel: Str<'a>,
    #[serde(rename = "Computer", borrow)]
    pub computer: Str<'a>,
    #[serde(rename = "Security", borrow)]
    pub security: Attrs<SecurityAttrs<'a>>,
}

#[derive(Deserialize)]
pub struct Event<'a> {
    #[serde(rename = "System", borrow)]
    pub system: System<'a>,
    #[serde(rename = "EventData", borrow)]
    pub event_data: EventData<'a>,
}

#[derive(Deserialize)]
pub struct Record<'a> {
    #[serde(rename = "Event", borrow)]
    pub event: Event<'a>,
}

pub fn parse(json: &[u8]) -> Option<Record<'_>> {
    // one validation of the whole buffer instead of one per string
    serde_json::from_str(std::str::from_utf8(json).ok()?).ok()
}
