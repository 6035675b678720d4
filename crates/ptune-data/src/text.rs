//! Text as errors show it: user text is quoted shortened, so a 120 KB subject or template does not
//! flood the terminal, and files may start with a UTF-8 byte order mark.

use std::borrow::Cow;

/// How many characters of user text an error shows before cutting it off with `…`.
pub const QUOTE_CHARS: usize = 80;

/// How many characters of a library's message (e.g. serde_json's, which echoes the bad value) an
/// error shows: its head and tail are kept, since the tail says where the problem is.
const MESSAGE_CHARS: usize = 200;

/// `text` cut to its first [`QUOTE_CHARS`] characters plus `…` when longer, else as it is.
pub fn short(text: &str) -> Cow<'_, str> {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
        None => Cow::Borrowed(text),
    }
}

/// [`short`] in quotes with escapes (`"The capital of [X] is [Y] ."`): how errors quote user text.
pub fn quote(text: &str) -> String {
    format!("{:?}", short(text))
}

/// A message that may echo user input, its middle elided when longer than 200 characters.
pub fn short_message(message: &str) -> Cow<'_, str> {
    let n = message.chars().count();
    if n <= MESSAGE_CHARS {
        return Cow::Borrowed(message);
    }
    let head: String = message.chars().take(MESSAGE_CHARS - 60).collect();
    let tail: String = message.chars().skip(n - 60).collect();
    Cow::Owned(format!("{head} … {tail}"))
}

/// `text` without a leading UTF-8 byte order mark, which some editors write and JSON forbids.
pub fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let subject = "é".repeat(120_000);
        let q = quote(&subject);
        assert_eq!(
            q.chars().count(),
            QUOTE_CHARS + 3,
            "80 chars, …, two quotes"
        );
        assert!(q.ends_with("…\""), "{q}");
        assert_eq!(quote("Paris"), "\"Paris\"");
    }

    #[test]
    fn long_messages_keep_head_and_tail() {
        let msg = format!(
            "invalid type: string \"{}\" at line 1 column 9",
            "x".repeat(5000)
        );
        let s = short_message(&msg);
        assert!(s.chars().count() <= MESSAGE_CHARS + 3, "{s}");
        assert!(s.starts_with("invalid type: string"), "{s}");
        assert!(s.ends_with("at line 1 column 9"), "{s}");
    }
}
