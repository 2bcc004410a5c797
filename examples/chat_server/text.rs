//! What the room relays and which nicks it accepts: pure functions.

/// The comparison form of a nick: case, `0`/`o`, `1`/`l`/`i` and `-`/`_` folded.
pub fn nick_key(nick: &str) -> String {
    nick.chars()
        .map(|c| match c.to_ascii_lowercase() {
            '0' => 'o',
            '1' | 'i' => 'l',
            '-' => '_',
            c => c,
        })
        .collect()
}

/// True for a valid nick: 1 to 32 of `[A-Za-z0-9_-]`, starting with a letter.
pub fn is_valid_nick(nick: &[u8]) -> bool {
    (1..=32).contains(&nick.len())
        && nick[0].is_ascii_alphabetic()
        && nick
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Characters that reorder or hide text on a terminal.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Characters that show nothing.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
    ) || is_bidi_control(c)
}

/// The text to relay for `line`, neutralised; `None` if it shows nothing.
pub fn sanitize(line: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(line);
    if text.chars().all(|c| c.is_whitespace() || is_invisible(c)) {
        return None;
    }
    Some(
        text.chars()
            .map(|c| match c {
                '\t' => ' ',
                c if c.is_control() || is_bidi_control(c) => '\u{FFFD}',
                c => c,
            })
            .collect(),
    )
}
