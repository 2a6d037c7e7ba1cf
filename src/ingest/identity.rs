//! Who an item of usage is about, as its producer names them: an identity
//! (`model::IdentityKey`), read only for a collector token
//! (`TokenGrant::attributes_by_identity`); every other token's events are
//! its owner's whatever the body says.
//!
//! When an item carries several, the first kind of
//! [`IdentityKind::ORDER`] wins; within a kind, the first attribute listed.
//!
//! OTLP (metric data points, log records, spans), read from the item's
//! own attributes and from its resource's (the item's wins for the same
//! attribute: producers differ in where they put them):
//!
//! | order | attribute | kind |
//! | --- | --- | --- |
//! | 1 | `enduser.id` | `enduser` |
//! | 2 | `user.email` | `email` (lower-cased) |
//! | 3 | `user.account_uuid`, then `user.account_id` | `account` |
//! | 4 | `user.id`, then `installation.id` | `install` |
//!
//! LiteLLM (`StandardLoggingPayload`):
//!
//! | order | field | kind |
//! | --- | --- | --- |
//! | 1 | `end_user`, then `metadata.user_api_key_end_user_id`, then `metadata.user_api_key_user_id` | `litellm_user` |
//! | 2 | `metadata.user_api_key_alias`, else a digest of `metadata.user_api_key_hash` (or of `metadata.user_api_key`; never the key itself) | `litellm_key` |
//!
//! A value passes the rules of every name ([`check_text`]: at most 256
//! characters, no control, bidirectional or zero-width characters); a bad
//! one refuses its item, naming the attribute. An empty value is no value.
//! An item that names no identity is the token owner's.

use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::event::{Problem, check_text};
use crate::model::{IdentityKey, IdentityKind};

/// The OTLP attributes that name a person, in attribution's order.
pub const OTLP_ATTRIBUTES: [(&str, IdentityKind); 6] = [
    ("enduser.id", IdentityKind::EndUser),
    ("user.email", IdentityKind::Email),
    ("user.account_uuid", IdentityKind::Account),
    ("user.account_id", IdentityKind::Account),
    ("user.id", IdentityKind::Install),
    ("installation.id", IdentityKind::Install),
];

/// The identity an OTLP item names, from its own attributes and its
/// resource's; the reason (naming the attribute) when the chosen value
/// cannot be stored.
pub fn from_otlp(resource: &[KeyValue], item: &[KeyValue]) -> Result<Option<IdentityKey>, String> {
    for (key, kind) in OTLP_ATTRIBUTES {
        let value = match otlp_text(item, key)? {
            Some(value) => Some(value),
            None => otlp_text(resource, key)?,
        };
        if let Some(value) = value {
            return key_of(kind, &value)
                .map(Some)
                .map_err(|reason| format!("{key} {reason}"));
        }
    }
    Ok(None)
}

/// An attribute as text (a string, or an integer as its digits); `None`
/// when absent or empty; refused when it is another kind of value.
fn otlp_text(attributes: &[KeyValue], key: &str) -> Result<Option<String>, String> {
    let value = attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref());
    match value {
        None => Ok(None),
        Some(any_value::Value::StringValue(s)) => {
            Ok(Some(s.clone()).filter(|s| !s.trim().is_empty()))
        }
        Some(any_value::Value::IntValue(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(format!("{key} must be a string")),
    }
}

/// A checked identity (emails lower-cased), or why the value is refused.
fn key_of(kind: IdentityKind, value: &str) -> Result<IdentityKey, String> {
    let key = IdentityKey::new(kind, value);
    // Checked as stored: lower-casing can lengthen a value.
    check_text(&key.value)?;
    Ok(key)
}

/// LiteLLM's fields that name a person, in attribution's order. The last
/// two name a key: their value is digested, never kept.
pub const LITELLM_FIELDS: [(&str, IdentityKind); 6] = [
    ("end_user", IdentityKind::LitellmUser),
    (
        "metadata.user_api_key_end_user_id",
        IdentityKind::LitellmUser,
    ),
    ("metadata.user_api_key_user_id", IdentityKind::LitellmUser),
    ("metadata.user_api_key_alias", IdentityKind::LitellmKey),
    ("metadata.user_api_key_hash", IdentityKind::LitellmKey),
    ("metadata.user_api_key", IdentityKind::LitellmKey),
];

/// The identity a LiteLLM payload names; the problem (naming the field)
/// when the chosen value cannot be stored.
pub fn from_litellm(payload: &Map<String, Value>) -> Result<Option<IdentityKey>, Problem> {
    for (field, kind) in LITELLM_FIELDS {
        let value = match field.split_once('.') {
            Some((outer, inner)) => payload.get(outer).and_then(|o| o.get(inner)),
            None => payload.get(field),
        };
        let refused = |reason| (Some(field.to_owned()), reason);
        let Some(value) = json_text(value).map_err(refused)? else {
            continue;
        };
        let value = match field {
            "metadata.user_api_key_hash" | "metadata.user_api_key" => key_digest(&value),
            _ => value,
        };
        return key_of(kind, &value).map(Some).map_err(refused);
    }
    Ok(None)
}

/// A JSON string field; `None` when absent, null or empty.
fn json_text(value: Option<&Value>) -> Result<Option<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone()).filter(|s| !s.trim().is_empty())),
        Some(_) => Err("must be a string".into()),
    }
}

/// The identity of a LiteLLM key known only by its hash (or, from some
/// versions, the key itself): a digest of LiteLLM's hash of the key
/// (SHA-256 of the key, as its database keeps it), so that both fields
/// give one identity and no key, nor anything that opens one, is stored.
fn key_digest(value: &str) -> String {
    let value = value.trim();
    let hashed = if value.starts_with("sk-") {
        crate::secret::hex(&Sha256::digest(value.as_bytes()))
    } else {
        value.to_ascii_lowercase()
    };
    let digest = crate::secret::hex(&Sha256::digest(format!("litellm-key\0{hashed}").as_bytes()));
    format!("sha256:{}", &digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use serde_json::json;

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..KeyValue::default()
        }
    }

    fn s(key: &str, value: &str) -> KeyValue {
        kv(key, any_value::Value::StringValue(value.into()))
    }

    fn otlp(resource: &[KeyValue], item: &[KeyValue]) -> Option<String> {
        from_otlp(resource, item)
            .expect("valid")
            .map(|k| k.to_string())
    }

    #[test]
    fn the_tables_follow_the_kinds_order() {
        for table in [&OTLP_ATTRIBUTES, &LITELLM_FIELDS] {
            let kinds: Vec<IdentityKind> = table.iter().map(|(_, kind)| *kind).collect();
            let mut sorted = kinds.clone();
            sorted.sort_by_key(|kind| IdentityKind::ORDER.iter().position(|k| k == kind));
            assert_eq!(kinds, sorted);
        }
    }

    #[test]
    fn every_otlp_attribute_maps_to_its_kind() {
        for (key, kind) in OTLP_ATTRIBUTES {
            let found = from_otlp(&[], &[s(key, "Value-1")]).expect("valid");
            let want = if kind == IdentityKind::Email {
                "value-1"
            } else {
                "Value-1"
            };
            assert_eq!(
                found,
                Some(IdentityKey {
                    kind,
                    value: want.into()
                }),
                "{key}"
            );
            // From the resource alone too.
            assert_eq!(
                from_otlp(&[s(key, "Value-1")], &[])
                    .expect("valid")
                    .map(|k| k.kind),
                Some(kind)
            );
        }
        assert_eq!(
            otlp(&[s("service.name", "claude-code")], &[s("session.id", "x")]),
            None
        );
        // An integer id is its digits.
        assert_eq!(
            otlp(&[], &[kv("user.id", any_value::Value::IntValue(42))]).as_deref(),
            Some("install:42")
        );
    }

    #[test]
    fn the_order_decides_wherever_each_attribute_is() {
        let all = [
            s("installation.id", "inst-1"),
            s("user.id", "uid-1"),
            s("user.account_id", "acc-id"),
            s("user.account_uuid", "acc-uuid"),
            s("user.email", "Ada@Example.com"),
            s("enduser.id", "jdoe"),
        ];
        // Dropping the most preferred each time reveals the next.
        let want = [
            "enduser:jdoe",
            "email:ada@example.com",
            "account:acc-uuid",
            "account:acc-id",
            "install:uid-1",
            "install:inst-1",
        ];
        for (kept, want) in (1..=all.len()).rev().zip(want) {
            let attrs = &all[..kept];
            assert_eq!(otlp(&[], attrs).as_deref(), Some(want), "on the item");
            assert_eq!(otlp(attrs, &[]).as_deref(), Some(want), "on the resource");
        }
        // A preferred kind on the resource beats a later kind on the item.
        assert_eq!(
            otlp(
                &[s("enduser.id", "jdoe")],
                &[s("user.email", "ada@example.com")]
            )
            .as_deref(),
            Some("enduser:jdoe")
        );
        assert_eq!(
            otlp(
                &[s("user.id", "uid")],
                &[s("user.email", "ada@example.com")]
            )
            .as_deref(),
            Some("email:ada@example.com")
        );
    }

    #[test]
    fn the_item_s_own_attribute_wins_over_the_resource_s() {
        let resource = [s("user.email", "shared@example.com")];
        assert_eq!(
            otlp(&resource, &[s("user.email", "GRACE@example.com")]).as_deref(),
            Some("email:grace@example.com")
        );
        // An empty value is no value: the resource's stands.
        assert_eq!(
            otlp(&resource, &[s("user.email", "  ")]).as_deref(),
            Some("email:shared@example.com")
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_attribute() {
        let cases = [
            (
                s("user.email", "ada\u{202e}@example.com"),
                "user.email",
                "invisible",
            ),
            (s("enduser.id", "a\nb"), "enduser.id", "control"),
            (
                s("user.account_uuid", &"x".repeat(257)),
                "user.account_uuid",
                "256",
            ),
            (
                kv("user.id", any_value::Value::BoolValue(true)),
                "user.id",
                "string",
            ),
        ];
        for (attribute, key, reason) in cases {
            for (resource, item) in [
                (vec![attribute.clone()], vec![]),
                (vec![], vec![attribute.clone()]),
            ] {
                let refused = from_otlp(&resource, &item).expect_err("refused");
                assert!(
                    refused.starts_with(key) && refused.contains(reason),
                    "{refused}"
                );
            }
        }
        // Lower-casing that lengthens a value past the limit is caught.
        let long = "\u{130}".repeat(200);
        assert!(from_otlp(&[], &[s("user.email", &long)]).is_err());
        // A bad value of a kind that is not chosen does not matter.
        assert_eq!(
            otlp(&[], &[s("enduser.id", "jdoe"), s("user.email", "a\u{0}b")]).as_deref(),
            Some("enduser:jdoe")
        );
    }

    fn litellm(payload: Value) -> Result<Option<String>, Problem> {
        from_litellm(payload.as_object().expect("object")).map(|k| k.map(|k| k.to_string()))
    }

    #[test]
    fn litellm_users_come_before_keys() {
        let full = json!({
            "end_user": "customer-7",
            "metadata": {
                "user_api_key_end_user_id": "customer-8",
                "user_api_key_user_id": "ada",
                "user_api_key_alias": "ada-laptop",
                "user_api_key_hash": "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
            }
        });
        assert_eq!(
            litellm(full.clone()),
            Ok(Some("litellm_user:customer-7".into()))
        );
        let mut p = full;
        p["end_user"] = json!("");
        assert_eq!(
            litellm(p.clone()),
            Ok(Some("litellm_user:customer-8".into()))
        );
        p["metadata"]["user_api_key_end_user_id"] = Value::Null;
        assert_eq!(litellm(p.clone()), Ok(Some("litellm_user:ada".into())));
        p["metadata"]["user_api_key_user_id"] = Value::Null;
        assert_eq!(
            litellm(p.clone()),
            Ok(Some("litellm_key:ada-laptop".into()))
        );
        p["metadata"]["user_api_key_alias"] = Value::Null;
        let by_hash = litellm(p.clone()).expect("valid").expect("a key");
        assert!(by_hash.starts_with("litellm_key:sha256:"), "{by_hash}");
        assert!(!by_hash.contains("88dc28d0"), "never LiteLLM's hash itself");
        p["metadata"]["user_api_key_hash"] = Value::Null;
        assert_eq!(litellm(p), Ok(None));
        assert_eq!(litellm(json!({"id": "x"})), Ok(None));
    }

    #[test]
    fn a_litellm_key_is_one_identity_by_hash_or_by_key_and_never_stored() {
        let key = "sk-1234567890abcdefghijkl";
        let hash = crate::secret::hex(&Sha256::digest(key.as_bytes()));
        let by_key = litellm(json!({"metadata": {"user_api_key": key}})).expect("valid");
        let by_hash = litellm(json!({"metadata": {"user_api_key_hash": hash}})).expect("valid");
        assert_eq!(by_key, by_hash);
        let value = by_key.expect("a key");
        assert!(
            !value.contains(key) && !value.contains(&hash[..16]),
            "{value}"
        );
    }

    #[test]
    fn bad_litellm_values_are_refused_naming_the_field() {
        let cases = [
            (json!({"end_user": "a\u{200b}b"}), "end_user"),
            (json!({"end_user": 7}), "end_user"),
            (
                json!({"metadata": {"user_api_key_user_id": "x\ty"}}),
                "metadata.user_api_key_user_id",
            ),
            (
                json!({"metadata": {"user_api_key_alias": "k".repeat(300)}}),
                "metadata.user_api_key_alias",
            ),
            (
                json!({"metadata": {"user_api_key_hash": ["x"]}}),
                "metadata.user_api_key_hash",
            ),
        ];
        for (payload, field) in cases {
            let (named, _) = litellm(payload.clone()).expect_err("refused");
            assert_eq!(named.as_deref(), Some(field), "{payload}");
        }
    }
}
