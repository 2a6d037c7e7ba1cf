//! Plain names: the one rule for names people type and that appear in
//! URLs, logs and CSV files (usernames, team names); and the rule of every
//! name a producer or a price list sends (model names and other labels).

/// Longest id, name or label we store, in characters.
pub const MAX_TEXT: usize = 256;

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

/// A name as we store it (trimmed), or why it cannot be stored.
pub fn check_text(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.chars().count() > MAX_TEXT {
        return Err(format!("must be at most {MAX_TEXT} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    if let Some(c) = text.chars().find(|c| is_invisible(*c)) {
        return Err(format!(
            "must not contain invisible or direction-changing characters (U+{:04X})",
            c as u32
        ));
    }
    Ok(text.to_owned())
}

/// Characters that change how a name looks without being seen: bidi
/// overrides and isolates, zero-width characters, the BOM, soft hyphens
/// and other format characters. With them `claude-sonnet-4-5` and a name
/// that only looks like it would be two models, one of them unpriced;
/// in a currency symbol, text that shows other than it reads.
pub fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
        | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFFB}'
        | '\u{E0000}'..='\u{E0FFF}')
}
