//! Text from the network as the console shows it: the characters that reorder the text around
//! them (U+202E and its kin) written out, never applied, so that no payload, header, subject or
//! value makes a page say something else.

use std::borrow::Cow;

use leptos::prelude::*;

/// Whether `c` reorders the text around it: the embeddings and overrides (U+202A–U+202E), the
/// isolates (U+2066–U+2069) and the marks (U+200E, U+200F, U+061C). Anyone can put them in a
/// payload, a header or a subject, and applied they make the page say something else
/// (`"🎉 \u{202E}evil"` drawn as `"🎉 live"`), so the page shows them instead ([`bidi_pieces`]).
pub fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}'
    )
}

/// A part of a text as the page shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Text(&'a str),
    /// A bidi control, shown as [`escaped`].
    Control(char),
}

/// `text` cut around its bidi controls, in order; `None` when it has none (nearly always: then
/// nothing is allocated).
pub fn bidi_pieces(text: &str) -> Option<Vec<Piece<'_>>> {
    if !text.chars().any(is_bidi_control) {
        return None;
    }
    let mut pieces = Vec::new();
    let mut start = 0;
    // `get`, not a slice: the app's wasm has no panicking `str` slice (see ARCHITECTURE.md).
    for (at, c) in text.char_indices().filter(|&(_, c)| is_bidi_control(c)) {
        match text.get(start..at) {
            Some(run) if !run.is_empty() => pieces.push(Piece::Text(run)),
            _ => {}
        }
        pieces.push(Piece::Control(c));
        start = at + c.len_utf8();
    }
    match text.get(start..) {
        Some(run) if !run.is_empty() => pieces.push(Piece::Text(run)),
        _ => {}
    }
    Some(pieces)
}

/// How the page writes a bidi control: `\u{202E}`, as Rust and JavaScript escape it.
pub fn escaped(c: char) -> String {
    format!("\\u{{{:X}}}", c as u32)
}

/// `text` with its bidi controls written as [`escaped`]: for what cannot hold markup (a title, a
/// label).
pub fn without_bidi(text: &str) -> Cow<'_, str> {
    match bidi_pieces(text) {
        None => Cow::Borrowed(text),
        Some(pieces) => Cow::Owned(
            pieces
                .into_iter()
                .map(|p| match p {
                    Piece::Text(t) => Cow::Borrowed(t),
                    Piece::Control(c) => Cow::Owned(escaped(c)),
                })
                .collect(),
        ),
    }
}

/// `text` from the network as the page shows it: each bidi control written out (`\u{202E}`, apart
/// from the text around it), so that no payload, header or subject reorders what the page says.
pub fn shown(text: &str) -> AnyView {
    match bidi_pieces(text) {
        None => text.to_owned().into_any(),
        Some(pieces) => pieces
            .into_iter()
            .map(|piece| match piece {
                Piece::Text(run) => run.to_owned().into_any(),
                Piece::Control(c) => view! {
                    <span class="bidi-control" title="A character that reorders text, shown rather than applied">
                        {escaped(c)}
                    </span>
                }
                .into_any(),
            })
            .collect_view()
            .into_any(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_controls_are_cut_out_to_be_shown() {
        assert_eq!(bidi_pieces("plain עברית text"), None);
        assert_eq!(
            bidi_pieces("🎉 \u{202E}evil\u{2066}\u{200F}"),
            Some(vec![
                Piece::Text("🎉 "),
                Piece::Control('\u{202E}'),
                Piece::Text("evil"),
                Piece::Control('\u{2066}'),
                Piece::Control('\u{200F}'),
            ])
        );
        assert_eq!(
            bidi_pieces("\u{061C}"),
            Some(vec![Piece::Control('\u{061C}')])
        );
        for c in [
            '\u{202A}', '\u{202E}', '\u{2066}', '\u{2069}', '\u{200E}', '\u{200F}', '\u{061C}',
        ] {
            assert!(is_bidi_control(c), "{c:?}");
        }
        for c in ['\u{2029}', '\u{2065}', '\u{206A}', '\u{200D}', 'a', 'ש'] {
            assert!(!is_bidi_control(c), "{c:?}");
        }
        assert_eq!(without_bidi("a\u{202E}b"), "a\\u{202E}b");
        assert!(matches!(without_bidi("ab"), Cow::Borrowed("ab")));
    }
}
