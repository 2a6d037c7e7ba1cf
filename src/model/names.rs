//! Plain names: the one rule for names people type and that appear in
//! URLs, logs and CSV files (usernames, team names).

/// Longest plain name, in bytes (all ASCII).
pub const MAX_PLAIN_NAME: usize = 64;

/// 1 to [`MAX_PLAIN_NAME`] ASCII letters, digits, `.`, `-`, `_` or `@`,
/// starting with a letter or digit: nothing to escape, nothing that looks
/// like something else.
pub fn is_plain_name(name: &str) -> bool {
    let ok_len = (1..=MAX_PLAIN_NAME).contains(&name.len());
    let ok_first = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@'));
    ok_len && ok_first && ok_chars
}
