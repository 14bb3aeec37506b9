//! The rules of the KV console, free of Leptos and of the network: the key filter, value previews
//! (text, pretty JSON, hex), the wording of a conflict, and the bucket form.

use std::fmt;
use std::time::Duration;

use nats_ws::jetstream::StorageType;
use nats_ws::kv::{KvConfig, Operation, SystemTime};

use crate::model::parse_duration;

/// Keys rendered at most; the others matching are counted, not drawn.
pub const ROW_LIMIT: usize = 500;

/// Characters of a value shown in its row.
pub const PREVIEW_CHARS: usize = 120;

/// Bytes of a value shown in full view; the rest is counted.
pub const FULL_BYTES: usize = 64 * 1024;

/// What the filter box holds, understood.
///
/// With `*` or `>` it is a NATS key pattern, and becomes the watch's filter: the server sends only
/// the keys matching, which is what keeps a large bucket cheap. Without, it is text that a key
/// must contain (case-sensitive, like keys), checked in the page over the keys watched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum KeyFilter {
    #[default]
    All,
    Contains(String),
    Pattern(String),
}

/// Why a filter is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError(pub String);

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not a key pattern: tokens are separated by '.', '*' stands for one whole token and '>' for the rest (last token only), e.g. config.* or users.>",
            self.0
        )
    }
}

fn key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'=')
}

impl KeyFilter {
    pub fn parse(text: &str) -> Result<KeyFilter, FilterError> {
        let text = text.trim();
        if text.is_empty() || text == ">" {
            return Ok(KeyFilter::All);
        }
        if !text.contains(['*', '>']) {
            return Ok(KeyFilter::Contains(text.to_owned()));
        }
        let tokens: Vec<&str> = text.split('.').collect();
        let last = tokens.len() - 1;
        let ok = tokens.iter().enumerate().all(|(i, t)| {
            *t == "*" || (*t == ">" && i == last) || (!t.is_empty() && t.bytes().all(key_char))
        });
        if ok {
            Ok(KeyFilter::Pattern(text.to_owned()))
        } else {
            Err(FilterError(text.to_owned()))
        }
    }

    /// The filter of the watch: the pattern, or every key.
    pub fn watch_filter(&self) -> &str {
        match self {
            KeyFilter::Pattern(p) => p,
            _ => ">",
        }
    }

    /// Whether `key` is one this filter lets through: matches the pattern (token by token, as
    /// the server's subject filter), or contains the text.
    pub fn covers(&self, key: &str) -> bool {
        match self {
            KeyFilter::All => true,
            KeyFilter::Contains(text) => key.contains(text.as_str()),
            KeyFilter::Pattern(pattern) => nats_ws::subject_matches(pattern, key),
        }
    }

    /// Whether a watched key is shown (the server already applied a pattern).
    pub fn shows(&self, key: &str) -> bool {
        match self {
            KeyFilter::Contains(text) => key.contains(text.as_str()),
            _ => true,
        }
    }
}

/// The keys to draw, in order, and how many match in all.
pub fn visible_keys<'a>(
    keys: impl Iterator<Item = &'a String>,
    filter: &KeyFilter,
    limit: usize,
) -> (Vec<String>, usize) {
    let mut shown = Vec::new();
    let mut total = 0;
    for key in keys.filter(|k| filter.shows(k)) {
        total += 1;
        if shown.len() < limit {
            shown.push(key.clone());
        }
    }
    (shown, total)
}

/// The line above the keys: how many match the filter, and how many of them are drawn.
pub fn key_count(drawn: usize, total: usize, filter: &KeyFilter) -> String {
    let keys = if total == 1 { "key" } else { "keys" };
    let what = match filter {
        KeyFilter::All => keys.to_owned(),
        KeyFilter::Contains(text) => format!("{keys} containing “{text}”"),
        KeyFilter::Pattern(p) => format!("{keys} matching {p}"),
    };
    if drawn < total {
        format!("the first {drawn} of {total} {what}")
    } else {
        format!("{total} {what}")
    }
}

/// How a value is shown in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueView {
    Empty,
    Text(String),
    /// Pretty-printed.
    Json(String),
    /// A hex dump: offset, 16 bytes, and the printable ASCII of them.
    Binary(String),
}

impl ValueView {
    pub fn kind(&self) -> &'static str {
        match self {
            ValueView::Empty => "empty",
            ValueView::Text(_) => "text",
            ValueView::Json(_) => "JSON",
            ValueView::Binary(_) => "binary",
        }
    }

    pub fn body(&self) -> &str {
        match self {
            ValueView::Empty => "",
            ValueView::Text(s) | ValueView::Json(s) | ValueView::Binary(s) => s,
        }
    }
}

/// Text, when the bytes are UTF-8 without control characters other than tab and line breaks.
fn as_text(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes).ok().filter(|s| {
        !s.chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
    })
}

/// The whole value (up to [`FULL_BYTES`]): JSON objects and arrays pretty-printed, text as is,
/// anything else as a hex dump.
pub fn full_value(bytes: &[u8]) -> ValueView {
    if bytes.is_empty() {
        return ValueView::Empty;
    }
    // Pretty-printed only when it is shown whole: a larger value is cut as text below.
    if let Some(text) = as_text(bytes).filter(|_| bytes.len() <= FULL_BYTES) {
        if text.trim_start().starts_with(['{', '[']) {
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
                if let Ok(pretty) = serde_json::to_string_pretty(&json) {
                    return ValueView::Json(pretty);
                }
            }
        }
    }
    let cut = &bytes[..bytes.len().min(FULL_BYTES)];
    // The cut may split a character: text is judged on the whole value.
    let view = match as_text(bytes) {
        Some(_) => ValueView::Text(String::from_utf8_lossy(cut).into_owned()),
        None => ValueView::Binary(hex_dump(cut)),
    };
    match (view, bytes.len() > FULL_BYTES) {
        (ValueView::Text(s), true) => ValueView::Text(format!(
            "{s}\n… {} more bytes not shown",
            bytes.len() - FULL_BYTES
        )),
        (ValueView::Binary(s), true) => ValueView::Binary(format!(
            "{s}\n… {} more bytes not shown",
            bytes.len() - FULL_BYTES
        )),
        (view, _) => view,
    }
}

/// `00000000  7b 22 61 22 …  |{"a"…|`, 16 bytes a line.
pub fn hex_dump(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .enumerate()
        .map(|(i, chunk)| {
            let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
            let ascii: String = chunk
                .iter()
                .map(|&b| {
                    if b.is_ascii_graphic() || b == b' ' {
                        b as char
                    } else {
                        '.'
                    }
                })
                .collect();
            format!("{:08x}  {:<47}  |{ascii}|", i * 16, hex.join(" "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One line for a table cell: text with its whitespace folded, or the first bytes in hex.
pub fn preview_line(bytes: &[u8], max_chars: usize) -> String {
    if bytes.is_empty() {
        return String::new();
    }
    match as_text(bytes) {
        Some(text) => {
            // Only the start is folded: a cell shows `max_chars` of a value of any size.
            let mut end = text.len().min(max_chars.saturating_mul(8).max(64));
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            let folded = text[..end].split_whitespace().collect::<Vec<_>>().join(" ");
            let more = end < text.len();
            match folded.char_indices().nth(max_chars) {
                Some((at, _)) => format!("{}…", &folded[..at]),
                None if more => format!("{folded}…"),
                None => folded,
            }
        }
        None => {
            let n = (max_chars / 3).min(bytes.len());
            let hex: Vec<String> = bytes[..n].iter().map(|b| format!("{b:02x}")).collect();
            let more = if bytes.len() > n { " …" } else { "" };
            format!("hex {}{more}", hex.join(" "))
        }
    }
}

pub fn operation_name(op: Operation) -> &'static str {
    match op {
        Operation::Put => "put",
        Operation::Delete => "delete",
        Operation::Purge => "purge",
        _ => "other",
    }
}

/// Milliseconds since the Unix epoch, for the clock helpers.
pub fn epoch_ms(time: Option<SystemTime>) -> Option<f64> {
    Some(
        time?
            .duration_since(SystemTime::UNIX_EPOCH)
            .ok()?
            .as_secs_f64()
            * 1000.0,
    )
}

/// A bucket's TTL: `never` for none.
pub fn format_ttl(ttl: Duration) -> String {
    if ttl.is_zero() {
        "never".to_owned()
    } else {
        crate::model::format_exact_duration(ttl)
    }
}

/// What the key is now, as far as a conflict is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Current {
    /// Its latest revision.
    At { revision: u64, operation: Operation },
    /// No revision is stored (purged with its marker gone, or never written).
    Gone,
}

/// Why an update at `expected` was refused, and that nothing was written.
pub fn describe_conflict(key: &str, expected: u64, current: Current) -> String {
    let now = match current {
        Current::At {
            revision,
            operation: Operation::Put,
        } => format!("it is now at revision {revision}"),
        Current::At {
            revision,
            operation,
        } => format!(
            "it was removed ({} at revision {revision})",
            operation_name(operation)
        ),
        Current::Gone => "it no longer has any revision".to_owned(),
    };
    format!(
        "Key {key} changed since you loaded revision {expected}: {now}. Nothing was written. Compare the two values, then keep the current one or write yours over it."
    )
}

/// What the create-bucket form holds, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketForm {
    pub name: String,
    /// 1–64.
    pub history: String,
    /// `30s`, `15m`, `2h`, `7d`, `1h30m`; empty = forever.
    pub ttl: String,
    pub storage: StorageType,
}

impl BucketForm {
    pub fn to_config(&self) -> Result<KvConfig, String> {
        let name = self.name.trim();
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "bucket name {name:?}: use letters, digits, '-' and '_'"
            ));
        }
        // Its stream, KV_<name>, may have 255 bytes: the server's refusal spoke of a stream and
        // repeated the whole name.
        if name.len() > 252 {
            return Err(format!(
                "the bucket name is {} characters long: at most 252",
                name.len()
            ));
        }
        let history = match self.history.trim() {
            "" => 1,
            text => text
                .parse::<i64>()
                .ok()
                .filter(|h| (1..=64).contains(h))
                .ok_or_else(|| format!("history {text:?}: a whole number from 1 to 64"))?,
        };
        let ttl = parse_duration(&self.ttl).ok_or_else(|| {
            format!(
                "TTL {:?}: a duration such as 90s, 15m, 2h, 7d or 1h30m, of at most 106751d (empty: entries never expire)",
                self.ttl.trim()
            )
        })?;
        Ok(KvConfig::new(name)
            .history(history)
            .ttl(ttl)
            .storage(self.storage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_large_value_is_cut_before_it_is_formatted() {
        // 1 MB of JSON: shown as its first FULL_BYTES, not pretty-printed whole.
        let big = format!("[{}0]", "1234567, ".repeat(110_000));
        match full_value(big.as_bytes()) {
            ValueView::Text(t) => {
                assert!(t.len() < FULL_BYTES + 100, "{}", t.len());
                assert!(
                    t.ends_with("more bytes not shown"),
                    "{}",
                    &t[t.len() - 40..]
                );
            }
            _ => panic!("not text"),
        }
        // A row's preview of it: max_chars, and marked as cut, whitespace folded.
        let line = preview_line(big.as_bytes(), 120);
        assert_eq!(line.chars().count(), 121, "{line}");
        assert!(line.ends_with('…'));
        let spaced = format!("a{}b", " ".repeat(2000));
        assert_eq!(preview_line(spaced.as_bytes(), 120), "a…");
        // Short values as before.
        assert_eq!(preview_line(b"x  y", 120), "x y");
    }

    #[test]
    fn filters_are_patterns_with_wildcards_and_text_without() {
        assert_eq!(KeyFilter::parse(""), Ok(KeyFilter::All));
        assert_eq!(KeyFilter::parse("  > "), Ok(KeyFilter::All));
        assert_eq!(
            KeyFilter::parse("user"),
            Ok(KeyFilter::Contains("user".into()))
        );
        // Text may hold anything: it is only compared.
        assert_eq!(
            KeyFilter::parse("a b<"),
            Ok(KeyFilter::Contains("a b<".into()))
        );
        for ok in ["config.*", "users.>", "*.x.*", "*", "a-b/c=d_e.>"] {
            assert_eq!(
                KeyFilter::parse(ok),
                Ok(KeyFilter::Pattern(ok.into())),
                "{ok}"
            );
        }
        for bad in ["a.>.b", "a*", "a..*", ".*", "*.", "a.b>", "ü.*", "a b.*"] {
            assert!(KeyFilter::parse(bad).is_err(), "{bad}");
        }
        let e = KeyFilter::parse("a.>.b").unwrap_err().to_string();
        assert!(e.contains("\"a.>.b\"") && e.contains("last token"), "{e}");

        let pattern = KeyFilter::parse("config.*").unwrap();
        assert_eq!(pattern.watch_filter(), "config.*");
        assert!(pattern.shows("anything: the server filtered"));
        let text = KeyFilter::parse("theme").unwrap();
        assert_eq!(text.watch_filter(), ">");
        assert!(text.shows("ui.theme.dark") && !text.shows("ui.Theme"));
        assert_eq!(KeyFilter::All.watch_filter(), ">");
    }

    #[test]
    fn only_the_first_keys_matching_are_drawn_and_all_are_counted() {
        let keys: Vec<String> = (0..1200).map(|i| format!("k{i:04}")).collect();
        let (shown, total) = visible_keys(keys.iter(), &KeyFilter::All, ROW_LIMIT);
        assert_eq!((shown.len(), total), (500, 1200));
        assert_eq!((shown[0].as_str(), shown[499].as_str()), ("k0000", "k0499"));
        let filter = KeyFilter::parse("k11").unwrap();
        let (shown, total) = visible_keys(keys.iter(), &filter, ROW_LIMIT);
        assert_eq!((shown.len(), total), (100, 100));
        assert_eq!(shown[0], "k1100");
    }

    #[test]
    fn key_counts_say_what_is_drawn() {
        assert_eq!(key_count(0, 0, &KeyFilter::All), "0 keys");
        assert_eq!(key_count(1, 1, &KeyFilter::All), "1 key");
        assert_eq!(
            key_count(500, 1200, &KeyFilter::All),
            "the first 500 of 1200 keys"
        );
        assert_eq!(
            key_count(2, 2, &KeyFilter::parse("app.*").unwrap()),
            "2 keys matching app.*"
        );
        assert_eq!(
            key_count(1, 1, &KeyFilter::parse("ada").unwrap()),
            "1 key containing “ada”"
        );
    }

    #[test]
    fn values_as_text_json_or_hex_never_markup() {
        assert_eq!(full_value(b""), ValueView::Empty);
        assert_eq!(
            full_value(b"<b>bold</b>"),
            ValueView::Text("<b>bold</b>".into())
        );
        assert_eq!(
            full_value(br#"{"a":[1,2],"b":"<i>"}"#),
            ValueView::Json("{\n  \"a\": [\n    1,\n    2\n  ],\n  \"b\": \"<i>\"\n}".into())
        );
        // Not JSON after all, and numbers stay text.
        assert_eq!(full_value(b"{oops"), ValueView::Text("{oops".into()));
        assert_eq!(full_value(b"42"), ValueView::Text("42".into()));
        let bin = full_value(&[0x00, 0xff, b'A', 0x10]);
        assert_eq!(bin.kind(), "binary");
        assert_eq!(
            bin.body(),
            format!("00000000  00 ff 41 10{}  |..A.|", " ".repeat(47 - 11))
        );
        // Control characters make it binary; tabs and line breaks do not.
        assert_eq!(full_value(b"a\x1bb").kind(), "binary");
        assert_eq!(full_value(b"a\tb\r\nc").kind(), "text");
        let big = vec![b'x'; FULL_BYTES + 10];
        assert!(full_value(&big)
            .body()
            .ends_with("… 10 more bytes not shown"));
        let lines = hex_dump(&[7u8; 40]);
        assert_eq!(lines.lines().count(), 3);
        assert!(lines.lines().nth(2).unwrap().starts_with("00000020  07 07"));
    }

    #[test]
    fn previews_fold_whitespace_and_cut() {
        assert_eq!(preview_line(b"", 10), "");
        assert_eq!(preview_line(b"a\n  b\tc", 10), "a b c");
        assert_eq!(preview_line("ééééé".as_bytes(), 3), "ééé…");
        assert_eq!(preview_line(b"<script>", 20), "<script>");
        assert_eq!(preview_line(&[0, 1, 2, 255], 120), "hex 00 01 02 ff");
        assert_eq!(preview_line(&[0u8; 10], 9), "hex 00 00 00 …");
    }

    #[test]
    fn conflicts_say_what_happened_and_that_nothing_was_written() {
        let put = describe_conflict(
            "theme",
            3,
            Current::At {
                revision: 4,
                operation: Operation::Put,
            },
        );
        assert!(
            put.starts_with(
                "Key theme changed since you loaded revision 3: it is now at revision 4."
            ),
            "{put}"
        );
        assert!(put.contains("Nothing was written"));
        let deleted = describe_conflict(
            "theme",
            3,
            Current::At {
                revision: 9,
                operation: Operation::Delete,
            },
        );
        assert!(
            deleted.contains("it was removed (delete at revision 9)"),
            "{deleted}"
        );
        assert!(describe_conflict("k", 1, Current::Gone).contains("no longer has any revision"));
    }

    #[test]
    fn formats() {
        assert_eq!(operation_name(Operation::Purge), "purge");
        assert_eq!(format_ttl(Duration::ZERO), "never");
        let pattern = |p: &str| KeyFilter::parse(p).expect("a pattern");
        assert!(pattern("config.*").covers("config.theme"));
        assert!(!pattern("config.*").covers("config.theme.dark"));
        assert!(!pattern("config.*").covers("config"));
        assert!(pattern("users.>").covers("users.a.b"));
        assert!(!pattern("users.>").covers("users"));
        assert!(!pattern("b.*").covers("a.x"));
        assert!(pattern("*.x").covers("a.x"));
        assert!(KeyFilter::parse("ada").expect("text").covers("user.ada"));
        assert!(KeyFilter::All.covers("anything"));
        assert_eq!(format_ttl(Duration::from_secs(90)), "1m 30s");
        // The server takes 100 ms and up: not "0s".
        assert_eq!(format_ttl(Duration::from_millis(500)), "500ms");
        assert_eq!(epoch_ms(None), None);
        assert_eq!(
            epoch_ms(Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1500))),
            Some(1500.0)
        );
    }

    #[test]
    fn bucket_form() {
        let form = |name: &str, history: &str, ttl: &str| BucketForm {
            name: name.into(),
            history: history.into(),
            ttl: ttl.into(),
            storage: StorageType::Memory,
        };
        let config = form(" orders ", "5", "1h30m").to_config().unwrap();
        assert_eq!(
            (
                config.bucket.as_str(),
                config.history,
                config.ttl,
                config.storage
            ),
            ("orders", 5, Duration::from_secs(5400), StorageType::Memory)
        );
        let defaults = form("b", "", "").to_config().unwrap();
        assert_eq!((defaults.history, defaults.ttl), (1, Duration::ZERO));
        assert!(form("a.b", "1", "")
            .to_config()
            .unwrap_err()
            .contains("bucket name"));
        assert!(form("", "1", "").to_config().is_err());
        // Its stream's name, KV_<name>, may have 255 bytes.
        assert!(form(&"b".repeat(252), "1", "").to_config().is_ok());
        assert_eq!(
            form(&"b".repeat(300), "1", "").to_config().unwrap_err(),
            "the bucket name is 300 characters long: at most 252"
        );
        assert!(form("b", "65", "")
            .to_config()
            .unwrap_err()
            .contains("1 to 64"));
        assert!(form("b", "0", "").to_config().is_err());
        assert!(form("b", "1", "soon")
            .to_config()
            .unwrap_err()
            .contains("TTL"));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(
            parse_duration("106751d"),
            Some(Duration::from_secs(106_751 * 86_400))
        );
        for bad in [
            "1",
            "h",
            "1x",
            "1h-",
            "99999999999999999999d",
            "99999999999h",
            "106752d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
