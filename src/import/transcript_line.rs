//! The fields of a Claude Code transcript line that usage needs, read
//! without building the rest: message contents, tool results and file
//! snapshots are nearly all of a transcript's bytes, and building them as
//! JSON values was most of an import's time.
//!
//! Reading follows what a full JSON value would give: a key seen twice
//! counts as its last value, a field of another type than expected is as
//! if absent, and a line that is JSON but not an object has no fields. The
//! whole line is still checked to be JSON.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

/// The fields of one line (each `None` when absent or of another type).
#[derive(Debug, Default)]
pub struct TranscriptLine<'a> {
    /// `message`, when it is an object.
    pub message: Option<MessageFields<'a>>,
    pub timestamp: Option<Cow<'a, str>>,
    pub request_id: Option<Cow<'a, str>>,
    pub session_id: Option<Cow<'a, str>>,
    pub cwd: Option<Cow<'a, str>>,
    pub is_sidechain: Option<bool>,
    /// `costUSD` as sent (`null` is none).
    pub cost_usd: Option<Value>,
}

/// The fields of a line's `message`.
#[derive(Debug, Default)]
pub struct MessageFields<'a> {
    pub id: Option<Cow<'a, str>>,
    pub model: Option<Cow<'a, str>>,
    /// `usage` as sent, `null` included (a small object).
    pub usage: Option<Value>,
}

impl<'a> TranscriptLine<'a> {
    /// Reads `line`; `None` when it is not JSON.
    pub fn parse(line: &'a [u8]) -> Option<TranscriptLine<'a>> {
        let read = serde_json::from_slice::<Loose<TranscriptLine<'a>>>(line).ok()?;
        Some(read.0.unwrap_or_default())
    }
}

/// What is kept of one JSON value of any type: by default nothing, but the
/// value is still read through (which checks that it is JSON).
trait Keep<'de>: Sized {
    fn string(_: Cow<'de, str>) -> Option<Self> {
        None
    }
    fn boolean(_: bool) -> Option<Self> {
        None
    }
    fn object<A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

impl<'de> Keep<'de> for Cow<'de, str> {
    fn string(text: Cow<'de, str>) -> Option<Self> {
        Some(text)
    }
}

impl Keep<'_> for bool {
    fn boolean(value: bool) -> Option<Self> {
        Some(value)
    }
}

impl<'de> Keep<'de> for TranscriptLine<'de> {
    fn object<A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        let mut line = TranscriptLine::default();
        // A key seen twice counts as its last value, as in a JSON value.
        while let Some(Loose(key)) = map.next_key::<Loose<Cow<'de, str>>>()? {
            match key.as_deref().unwrap_or_default() {
                "message" => line.message = map.next_value::<Loose<_>>()?.0,
                "timestamp" => line.timestamp = map.next_value::<Loose<_>>()?.0,
                "requestId" => line.request_id = map.next_value::<Loose<_>>()?.0,
                "sessionId" => line.session_id = map.next_value::<Loose<_>>()?.0,
                "cwd" => line.cwd = map.next_value::<Loose<_>>()?.0,
                "isSidechain" => line.is_sidechain = map.next_value::<Loose<_>>()?.0,
                "costUSD" => {
                    let value: Value = map.next_value()?;
                    line.cost_usd = (!value.is_null()).then_some(value);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(line))
    }
}

impl<'de> Keep<'de> for MessageFields<'de> {
    fn object<A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        let mut message = MessageFields::default();
        while let Some(Loose(key)) = map.next_key::<Loose<Cow<'de, str>>>()? {
            match key.as_deref().unwrap_or_default() {
                "id" => message.id = map.next_value::<Loose<_>>()?.0,
                "model" => message.model = map.next_value::<Loose<_>>()?.0,
                "usage" => message.usage = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some(message))
    }
}

/// Any JSON value, kept when it is of the type `T` keeps.
struct Loose<T>(Option<T>);

impl<'de, T: Keep<'de>> Deserialize<'de> for Loose<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_any(KeepVisitor(PhantomData))
            .map(Loose)
    }
}

struct KeepVisitor<T>(PhantomData<T>);

impl<'de, T: Keep<'de>> Visitor<'de> for KeepVisitor<T> {
    type Value = Option<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(T::string(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(T::string(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(T::string(Cow::Owned(v)))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(T::boolean(v))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        T::object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a full JSON value says of the fields, as the importer read
    /// lines before: the oracle.
    fn oracle(line: &str) -> Option<String> {
        let value: Value = serde_json::from_str(line).ok()?;
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        let message = value.get("message").filter(|m| m.is_object());
        Some(format!(
            "{:?}",
            (
                message.map(|m| (text(m.get("id")), text(m.get("model")), m.get("usage"))),
                text(value.get("timestamp")),
                text(value.get("requestId")),
                text(value.get("sessionId")),
                text(value.get("cwd")),
                value.get("isSidechain").and_then(Value::as_bool),
                value.get("costUSD").filter(|v| !v.is_null()),
            )
        ))
    }

    fn read(line: &str) -> Option<String> {
        let text = |v: &Option<Cow<'_, str>>| v.as_deref().map(str::to_owned);
        let fields = TranscriptLine::parse(line.as_bytes())?;
        Some(format!(
            "{:?}",
            (
                fields
                    .message
                    .as_ref()
                    .map(|m| (text(&m.id), text(&m.model), m.usage.as_ref())),
                text(&fields.timestamp),
                text(&fields.request_id),
                text(&fields.session_id),
                text(&fields.cwd),
                fields.is_sidechain,
                fields.cost_usd.as_ref(),
            )
        ))
    }

    #[test]
    fn fields_read_as_a_full_json_value_gives_them() {
        let lines = [
            r#"{"type":"assistant","sessionId":"s1","requestId":"r1","timestamp":"2026-05-01T10:00:00Z","cwd":"/home/ada/x","isSidechain":false,"message":{"id":"m1","model":"claude","content":[{"type":"text","text":"hi \" there"}],"usage":{"input_tokens":1,"output_tokens":2}}}"#,
            // A key twice: the last one counts.
            r#"{"requestId":"first","requestId":"second","message":{"id":"a","id":"b"}}"#,
            // Other types than expected: as if absent.
            r#"{"sessionId":7,"timestamp":null,"cwd":["x"],"isSidechain":"yes","requestId":{"a":1}}"#,
            // A message that is not an object, then one that is, and back.
            r#"{"message":"hello"}"#,
            r#"{"message":[1,2,{"usage":{}}]}"#,
            r#"{"message":{"usage":null},"message":3}"#,
            r#"{"message":3,"message":{"usage":null,"model":"m"}}"#,
            // Escapes in keys and values.
            r#"{"message":{"us\u0061ge":{"input_tokens":4},"id":"m\u00e9\n"},"cwd":"C:\\src\\x"}"#,
            r#"{"costUSD":0.25,"isSidechain":true}"#,
            r#"{"costUSD":null}"#,
            r#"{"costUSD":"1.5"}"#,
            // Not objects, and not JSON.
            r#"[1,2,3]"#,
            r#""text""#,
            "42",
            "null",
            r#"{"message":{"id":"m1""#,
            r#"{"a":1} trailing"#,
            "",
            "{\"cwd\":\"\u{7f}\u{1b}\"}",
        ];
        for line in lines {
            assert_eq!(read(line), oracle(line), "{line}");
        }
    }
}
