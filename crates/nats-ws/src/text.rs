//! Searching text for a word: what the client does with urls and server error texts.
//!
//! `str::contains` and `str::split_once` with a `&str` pattern bring the standard library's
//! Two-Way searcher into a browser build, and with it the panic path of slicing a `str` at a byte
//! that is not a character boundary (which formats the character with `Debug`): about 2 KB
//! gzipped, for texts a few dozen bytes long. These search bytes, and slice only with `str::get`.

/// Where `needle` first starts in `hay`: candidates by `memchr` of its first byte (the parser's
/// own search), each compared whole.
pub(crate) fn find(hay: &str, needle: &str) -> Option<usize> {
    let (hay, needle) = (hay.as_bytes(), needle.as_bytes());
    let Some((&first, _)) = needle.split_first() else {
        return Some(0);
    };
    let mut from = 0;
    while let Some(i) = hay.get(from..).and_then(|rest| memchr::memchr(first, rest)) {
        let at = from + i;
        if hay.get(at..at + needle.len()) == Some(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

pub(crate) fn contains(hay: &str, needle: &str) -> bool {
    find(hay, needle).is_some()
}

/// `hay` before and after the first `needle`.
pub(crate) fn split_once<'a>(hay: &'a str, needle: &str) -> Option<(&'a str, &'a str)> {
    // A match of a whole `str` starts and ends on character boundaries: `get` never says no.
    let at = find(hay, needle)?;
    Some((hay.get(..at)?, hay.get(at + needle.len()..)?))
}

/// The parts of `hay` between the `needle`s (a non-empty one), as `str::split` gives them.
pub(crate) fn split<'a>(hay: &'a str, needle: &'a str) -> impl Iterator<Item = &'a str> {
    debug_assert!(
        !needle.is_empty(),
        "std splits by an empty needle between characters"
    );
    let mut rest = Some(hay);
    std::iter::from_fn(move || {
        let text = rest?;
        match split_once(text, needle) {
            Some((part, after)) if !needle.is_empty() => {
                rest = Some(after);
                Some(part)
            }
            _ => {
                rest = None;
                Some(text)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn they_answer_as_the_standard_library_does() {
        let hays = [
            "",
            "ws://127.0.0.1:8080",
            "ws://a://b",
            "://",
            "nats",
            "wss://ünïcödé.example:443/päth",
            "permissions violation for subscription to \"a.b\" using queue \"q\"",
            "aaab",
            "NATS/1.0 503\r\nA: b\r\n\r\n",
            "\r\n\r\n",
            "aaaa://x://y",
            "a\r\r\n\rb\r\n",
        ];
        let needles = [
            "://",
            "using queue",
            "ü",
            "a",
            "aab",
            "",
            "b",
            "not there",
            "\r\n",
        ];
        for hay in hays {
            for needle in needles {
                assert_eq!(find(hay, needle), hay.find(needle), "{hay:?} {needle:?}");
                assert_eq!(contains(hay, needle), hay.contains(needle));
                assert_eq!(split_once(hay, needle), hay.split_once(needle));
                if !needle.is_empty() {
                    let ours: Vec<_> = split(hay, needle).collect();
                    let std: Vec<_> = hay.split(needle).collect();
                    assert_eq!(ours, std, "{hay:?} {needle:?}");
                }
            }
        }
    }
}
