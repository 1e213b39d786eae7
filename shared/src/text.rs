//! Free text a person types (names, addresses, descriptions): trimmed of surrounding whitespace,
//! bounded in characters, no control characters (a newline only where the text may have lines) and
//! none of Unicode's bidirectional embeddings, overrides or isolates, which would make a name read
//! backwards, or its neighbours on a board (Trojan Source, CVE-2021-42574).
//! One rule for every such field, as docs/openapi.yaml states it (`Text100`, and the patterns of
//! `address` and `description`).

use std::ops::RangeInclusive;

use crate::ApiError;

/// Whether a text may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    One,
    Many,
}

/// The text, trimmed. Its length is counted as sent for the upper bound (what a schema's
/// `maxLength` counts) and trimmed for the lower one, so blank text is empty.
pub fn text(
    field: &str,
    value: &str,
    chars: RangeInclusive<usize>,
    lines: Lines,
) -> Result<String, ApiError> {
    let trimmed = value.trim();
    if value.chars().count() > *chars.end() || trimmed.chars().count() < *chars.start() {
        return Err(ApiError::validation(
            field,
            format!("use {} to {} characters", chars.start(), chars.end()),
        ));
    }
    let allowed = |c: char| !c.is_control() || (lines == Lines::Many && c == '\n');
    if !trimmed.chars().all(allowed) {
        return Err(ApiError::validation(
            field,
            "control characters are not allowed",
        ));
    }
    if trimmed.chars().any(is_bidi_control) {
        return Err(ApiError::validation(
            field,
            "bidirectional embedding, override and isolate characters are not allowed",
        ));
    }
    Ok(trimmed.to_owned())
}

/// U+202A–U+202E and U+2066–U+2069 (the marks U+200E and U+200F stay: they change no order but
/// their own neighbours', as right-to-left names need).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_bounded_and_free_of_control_characters() {
        let one = |v: &str| text("name", v, 1..=5, Lines::One);
        assert_eq!(one(" kim ").unwrap(), "kim");
        assert_eq!(one("\tkim\n").unwrap(), "kim");
        assert_eq!(one("김밥천국").unwrap(), "김밥천국");
        for refused in [
            "", "   ", "kimbap", "  kim  ", "k\u{1}m", "k\nm", "k\u{85}m",
        ] {
            let err = one(refused).unwrap_err();
            assert_eq!(err.code, "VALIDATION_FAILED", "{refused:?}");
            assert!(err.message.starts_with("name"), "{}", err.message);
        }
        for reversed in ["\u{202E}kim", "k\u{2066}i\u{2069}m", "k\u{202A}m"] {
            let err = one(reversed).unwrap_err();
            assert!(err.message.contains("bidirectional"), "{reversed:?}");
        }
        assert_eq!(
            one("\u{200F}كيم").unwrap(),
            "\u{200F}كيم",
            "a right-to-left mark stays"
        );
        let many = |v: &str| text("description", v, 0..=20, Lines::Many);
        assert_eq!(many("").unwrap(), "");
        assert_eq!(many("two\nlines\n").unwrap(), "two\nlines");
        assert!(many("tab\there").is_err());
    }
}
