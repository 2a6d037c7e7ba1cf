//! Teams: who belongs together for chargeback, and who leads them. The
//! store is `crate::teams`; these are the names every capability shares
//! (a [`TeamId`] is part of a read's `Scope`).

use std::fmt;

/// A team's row id. Distinct from other ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TeamId(pub i64);

impl fmt::Display for TeamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Most teams an instance may have. Every grouped read by team names each
/// team with usage, and the team page lists them: a bound keeps both
/// bounded (a small organisation has tens).
pub const MAX_TEAMS: usize = 1_000;

/// Most membership rows (current and past) an instance may have. A read
/// grouped by team costs one exact piece per membership change inside its
/// range, so the history is what bounds it: 50,000 is a 500-person
/// organisation reorganised every month for eight years.
pub const MAX_MEMBERSHIPS: usize = 50_000;

/// What `view=` starts with to ask for a team's usage (`view=team:web`).
/// Usernames cannot contain `:`, so it never names a user.
pub const VIEW_PREFIX: &str = "team:";

/// The reason a team name is refused, if it is. The same rules as
/// usernames (they appear in URLs, logs and CSV files alike).
pub fn check_name(name: &str) -> Result<(), String> {
    if super::names::is_plain_name(name) {
        Ok(())
    } else {
        Err(format!(
            "a team name is 1 to {} characters: letters, digits, '.', '-', '_' or '@', \
             starting with a letter or digit",
            super::names::MAX_PLAIN_NAME
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn team_names_follow_the_rules_of_usernames() {
        for good in ["web", "Platform.Team", "a", "data-eng_2", "ops@berlin"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-web",
            "web team",
            "team:web",
            "(no team)",
            "<b>",
            "web\u{200b}",
            &"a".repeat(65),
        ] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
