//! A producer's name for a person: an identity (kind and value), such as
//! the `user.email` Claude Code puts on its telemetry. Identities map to
//! accounts; until one is mapped its usage is held as unassigned.

use std::fmt;

/// The kinds of identity producers send, in the order attribution
/// prefers them when an item carries several (`ORDER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IdentityKind {
    /// `enduser.id`: set by an admin (`OTEL_RESOURCE_ATTRIBUTES`) where
    /// the agent knows no account.
    EndUser,
    /// `user.email` (Claude Code, Gemini CLI, Codex).
    Email,
    /// `user.account_uuid` / `user.account_id`.
    Account,
    /// `user.id`, `installation.id`: one installation of an agent.
    Install,
    /// LiteLLM's `user_api_key_user_id`, or the request's end user.
    LitellmUser,
    /// LiteLLM's `user_api_key_alias`, or a hash of the key.
    LitellmKey,
}

impl IdentityKind {
    /// Attribution's order of preference: the first kind an item carries
    /// decides whose usage it is.
    pub const ORDER: [IdentityKind; 6] = [
        IdentityKind::EndUser,
        IdentityKind::Email,
        IdentityKind::Account,
        IdentityKind::Install,
        IdentityKind::LitellmUser,
        IdentityKind::LitellmKey,
    ];

    /// The stable name (part of the product: CLI arguments, the API).
    pub fn as_str(self) -> &'static str {
        match self {
            IdentityKind::EndUser => "enduser",
            IdentityKind::Email => "email",
            IdentityKind::Account => "account",
            IdentityKind::Install => "install",
            IdentityKind::LitellmUser => "litellm_user",
            IdentityKind::LitellmKey => "litellm_key",
        }
    }

    pub fn parse(name: &str) -> Option<IdentityKind> {
        IdentityKind::ORDER.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for IdentityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One identity. Values are compared as sent, except emails, which are
/// lower-cased (`IdentityKey::new`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdentityKey {
    pub kind: IdentityKind,
    pub value: String,
}

impl IdentityKey {
    pub fn new(kind: IdentityKind, value: &str) -> IdentityKey {
        let value = value.trim();
        let value = match kind {
            IdentityKind::Email => value.to_lowercase(),
            _ => value.to_owned(),
        };
        IdentityKey { kind, value }
    }
}

impl fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.value)
    }
}

/// Which events an `identity` filter of a read selects (admins').
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum IdentityFilter {
    /// `identity=unassigned`: every event held by an identity that is
    /// linked to no one (ignored ones included).
    Unassigned,
    /// `identity=KIND:VALUE`: the events attributed by that identity,
    /// wherever they are now (with its person once it is linked).
    One(IdentityKey),
}

impl IdentityFilter {
    pub const UNASSIGNED: &'static str = "unassigned";

    /// `unassigned` or `KIND:VALUE`; `None` for anything else.
    pub fn parse(text: &str) -> Option<IdentityFilter> {
        let text = text.trim();
        if text == Self::UNASSIGNED {
            return Some(IdentityFilter::Unassigned);
        }
        let (kind, value) = text.split_once(':')?;
        let kind = IdentityKind::parse(kind.trim())?;
        let key = IdentityKey::new(kind, value);
        (!key.value.is_empty()).then_some(IdentityFilter::One(key))
    }
}

impl fmt::Display for IdentityFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityFilter::Unassigned => f.write_str(Self::UNASSIGNED),
            IdentityFilter::One(key) => key.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_and_emails_fold_case() {
        for kind in IdentityKind::ORDER {
            assert_eq!(IdentityKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(IdentityKind::parse("nope"), None);
        let key = IdentityKey::new(IdentityKind::Email, " Ada@Example.COM ");
        assert_eq!(key.to_string(), "email:ada@example.com");
        assert_eq!(IdentityKey::new(IdentityKind::EndUser, "Ada").value, "Ada");
    }

    #[test]
    fn identity_filters_parse_and_print_back() {
        assert_eq!(
            IdentityFilter::parse("unassigned"),
            Some(IdentityFilter::Unassigned)
        );
        let one = IdentityFilter::parse("email:Carol@Example.com").expect("an identity");
        assert_eq!(one.to_string(), "email:carol@example.com");
        // The value may hold colons (an account id, a URL-ish end user).
        let colons = IdentityFilter::parse("enduser:a:b").expect("an identity");
        assert_eq!(colons.to_string(), "enduser:a:b");
        for bad in ["", "carol", "phone:1", "email:", "email: ", "Unassigned"] {
            assert_eq!(IdentityFilter::parse(bad), None, "{bad}");
        }
    }
}
