//! The rules of the streams console, free of Leptos and of the network: the create form into a
//! [`StreamConfig`], the test-message headers, payload previews and the formats of the tables.

use std::fmt;
use std::time::Duration;

use nats_ws::jetstream::{
    ConsumerInfo, DiscardPolicy, RetentionPolicy, StorageType, StreamConfig, StreamInfo,
    StreamState,
};
use nats_ws::{validate_publish_subject, validate_subscribe_subject, HeaderMap};

use crate::model::{format_bytes, format_exact_duration};
use crate::pages::console::subjects::overlap;

/// The subject every peek walks: all of a stream's messages.
pub const ALL_SUBJECTS: &str = ">";

/// Payload bytes shown of a message; the rest is counted, not rendered.
pub const PREVIEW_BYTES: usize = 16 * 1024;

/// What the create form holds, as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CreateForm {
    pub name: String,
    /// Separated by commas or whitespace.
    pub subjects: String,
    pub storage: StorageType,
    pub retention: RetentionPolicy,
    /// Empty = unlimited.
    pub max_msgs: String,
    /// Bytes, or with a unit: `512K`, `10M`, `1G` (powers of 1024). Empty = unlimited.
    pub max_bytes: String,
    /// `30s`, `15m`, `2h`, `7d`, `1h30m`. Empty = forever.
    pub max_age: String,
}

/// Why the create form cannot become a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    Name(&'static str),
    NoSubjects,
    Subject(String),
    Number {
        field: &'static str,
        value: String,
        problem: NumberProblem,
    },
    Age(String),
}

/// What is wrong with a number typed in the create form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberProblem {
    /// Not digits (a count).
    NotWhole,
    /// Not digits with an optional unit (a size).
    NotSize,
    Negative,
    /// Past what nats-server keeps (a signed 64-bit number).
    TooLarge,
}

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormError::Name(reason) => write!(f, "stream name: {reason}"),
            FormError::NoSubjects => write!(f, "give the stream at least one subject, e.g. orders.>"),
            FormError::Subject(e) => write!(f, "{e}"),
            FormError::Number {
                field,
                value,
                problem,
            } => {
                let why = match problem {
                    NumberProblem::NotWhole => "is not a whole number",
                    NumberProblem::NotSize => {
                        "is not a size such as 4096, 512K, 10M or 2G (a whole number, with a unit or not)"
                    }
                    NumberProblem::Negative => "is negative",
                    NumberProblem::TooLarge => "is too large for nats-server (at most 2^63 - 1)",
                };
                write!(f, "{field}: {value:?} {why}; leave it empty or 0 for unlimited")
            }
            FormError::Age(value) => write!(
                f,
                "max age: {value:?} is not a duration such as 90s, 15m, 2h, 7d or 1h30m, of at most 106751d (leave it empty to keep messages forever)"
            ),
        }
    }
}

/// The reason a stream name is refused, as nats-server and the client refuse it.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
    {
        Some("names cannot contain whitespace, '.', '*', '>', '/' or '\\'")
    } else if name.len() > 255 {
        Some("it is longer than 255 bytes")
    } else {
        None
    }
}

pub fn parse_subjects(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A count; empty means unlimited (0).
pub fn parse_count(field: &'static str, text: &str) -> Result<i64, FormError> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(0);
    }
    let bad = |problem| FormError::Number {
        field,
        value: text.to_owned(),
        problem,
    };
    let digits = text.replace('_', "");
    let (negative, digits) = match digits.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, digits.strip_prefix('+').unwrap_or(&digits)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(NumberProblem::NotWhole));
    }
    if negative && digits.bytes().any(|b| b != b'0') {
        return Err(bad(NumberProblem::Negative));
    }
    digits
        .parse::<i64>()
        .map_err(|_| bad(NumberProblem::TooLarge))
}

/// Bytes with an optional unit (K, M, G, T, with or without `B`/`iB`, powers of 1024).
pub fn parse_size(field: &'static str, text: &str) -> Result<i64, FormError> {
    let bad = |problem| FormError::Number {
        field,
        value: text.trim().to_owned(),
        problem,
    };
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let unit = unit.trim().to_ascii_uppercase();
    let shift = match unit.trim_end_matches("IB").trim_end_matches('B') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ if text.starts_with('-') => return Err(bad(NumberProblem::Negative)),
        _ => return Err(bad(NumberProblem::NotSize)),
    };
    if digits.is_empty() {
        return if unit.is_empty() {
            Ok(0)
        } else {
            Err(bad(NumberProblem::NotSize))
        };
    }
    let n = parse_count(field, digits).map_err(|e| match e {
        FormError::Number {
            problem: NumberProblem::TooLarge,
            ..
        } => bad(NumberProblem::TooLarge),
        _ => bad(NumberProblem::NotSize),
    })?;
    n.checked_mul(1i64 << shift)
        .ok_or_else(|| bad(NumberProblem::TooLarge))
}

/// A stream's max age: [`crate::model::parse_duration`], or the form's error.
pub fn parse_age(text: &str) -> Result<Duration, FormError> {
    crate::model::parse_duration(text).ok_or_else(|| FormError::Age(text.trim().to_owned()))
}

impl CreateForm {
    /// The configuration to create, or the first thing to fix.
    pub fn to_config(&self) -> Result<StreamConfig, FormError> {
        let name = self.name.trim();
        if let Some(reason) = name_problem(name) {
            return Err(FormError::Name(reason));
        }
        let subjects = parse_subjects(&self.subjects);
        if subjects.is_empty() {
            return Err(FormError::NoSubjects);
        }
        for subject in &subjects {
            validate_subscribe_subject(subject).map_err(|e| FormError::Subject(e.to_string()))?;
        }
        let mut config = StreamConfig::new(name, subjects);
        config.storage = self.storage;
        config.retention = self.retention;
        config.max_msgs = parse_count("max messages", &self.max_msgs)?;
        config.max_bytes = parse_size("max bytes", &self.max_bytes)?;
        config.max_age = parse_age(&self.max_age)?;
        Ok(config)
    }
}

/// Which of `subjects` of a new stream `name` overlaps a subject another of `streams` stores, and
/// that stream, said for the server's refusal (nats-server refuses two streams that could store
/// the same message, and names neither). Asked only once the server refused: the list may hold a
/// stream deleted since it was read, and a stream made since is not in it.
pub fn taken_subject(name: &str, subjects: &[String], streams: &[StreamInfo]) -> Option<String> {
    streams
        .iter()
        .filter(|other| other.config.name != name)
        .find_map(|other| {
            subjects.iter().find_map(|mine| {
                let theirs = other.config.subjects.iter().find(|t| overlap(mine, t))?;
                let stream = &other.config.name;
                let clash = match mine == theirs {
                    true => format!("stream {stream} stores {mine} already"),
                    false => format!("{mine} overlaps {theirs}, which stream {stream} stores"),
                };
                Some(format!(
                    "{clash}: two streams cannot store the same subject, so pick subjects no other stream takes"
                ))
            })
        })
}

/// The headers of a test message, one `Name: value` a line (blank lines skipped).
pub fn parse_headers(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut headers = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("header line {}: write it as Name: value", i + 1));
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "header line {}: the name must be printable ASCII without spaces",
                i + 1
            ));
        }
        let value = value.trim();
        if value.chars().any(char::is_control) {
            return Err(format!(
                "header line {}: the value has a control character",
                i + 1
            ));
        }
        headers.push((name.to_owned(), value.to_owned()));
    }
    Ok(headers)
}

/// What a test message is published with: its headers, and its `Nats-Msg-Id` apart (the
/// publish options carry it, so that the ack's `duplicate` means what it says).
pub fn publish_headers(headers: Vec<(String, String)>) -> (Option<HeaderMap>, Option<String>) {
    let mut map = HeaderMap::new();
    let mut msg_id = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("Nats-Msg-Id") {
            msg_id = Some(value);
        } else {
            map.append(name, value);
        }
    }
    ((!map.is_empty()).then_some(map), msg_id)
}

/// A subject to publish a test message to: the stream's first subject with its wildcards filled.
pub fn example_subject(subjects: &[String]) -> String {
    subjects
        .first()
        .map(|s| {
            s.split('.')
                .map(|t| if t == "*" || t == ">" { "test" } else { t })
                .collect::<Vec<_>>()
                .join(".")
        })
        .filter(|s| validate_publish_subject(s).is_ok())
        .unwrap_or_default()
}

/// A payload as shown: text when it is UTF-8 without unusual control characters, hex otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preview {
    Empty,
    Text(String),
    Hex(String),
}

/// The first [`PREVIEW_BYTES`] of `payload`, and how many bytes were left out.
pub fn preview(payload: &[u8]) -> (Preview, usize) {
    if payload.is_empty() {
        return (Preview::Empty, 0);
    }
    let shown = &payload[..payload.len().min(PREVIEW_BYTES)];
    let omitted = payload.len() - shown.len();
    // A cut may fall inside a character: judge by what is valid up to there.
    match crate::model::text_of(shown, omitted > 0).filter(|s| {
        !s.chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    }) {
        Some(s) => (Preview::Text(s.to_owned()), payload.len() - s.len()),
        None => (Preview::Hex(hex(shown)), omitted),
    }
}

/// Bytes as hex, 16 a line, in pairs separated by spaces.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .chunks(16)
        .map(|line| {
            line.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A count limit: `unlimited` for the server's -1 (or 0).
pub fn limit_count(n: i64) -> String {
    if n <= 0 {
        "unlimited".into()
    } else {
        n.to_string()
    }
}

pub fn limit_bytes(n: i64) -> String {
    if n <= 0 {
        "unlimited".into()
    } else {
        format_bytes(n as u64)
    }
}

/// A duration limit (max age): `unlimited` when zero.
pub fn limit_age(d: Duration) -> String {
    if d.is_zero() {
        "unlimited".into()
    } else {
        age(d)
    }
}

/// A configured duration as it is: `250ms`, `42s`, `5m 3s`, `1d 30m`.
pub fn age(d: Duration) -> String {
    format_exact_duration(d)
}

/// An RFC 3339 time from the server as `2026-01-02 03:04:05.678 UTC`; `—` for none (empty or
/// Go's zero time).
pub fn server_time(rfc3339: &str) -> String {
    let t = rfc3339.trim();
    if t.is_empty() || t.starts_with("0001-01-01") {
        return "—".into();
    }
    let Some(utc) = t.strip_suffix('Z') else {
        return t.to_owned();
    };
    let (main, fraction) = utc.split_once('.').unwrap_or((utc, ""));
    let millis: String = fraction.chars().take(3).collect();
    let main = main.replacen('T', " ", 1);
    if millis.is_empty() {
        format!("{main} UTC")
    } else {
        format!("{main}.{millis} UTC")
    }
}

/// A stream's first or last sequence as shown: a dash when it holds no message (an empty stream
/// says 0 / 0, a purged one first = last + 1, neither of which is a message to look for).
pub fn sequence_text(state: &StreamState, sequence: u64) -> String {
    if state.messages == 0 {
        "—".to_owned()
    } else {
        sequence.to_string()
    }
}

pub fn retention_name(r: RetentionPolicy) -> &'static str {
    match r {
        RetentionPolicy::Limits => "limits",
        RetentionPolicy::Interest => "interest",
        RetentionPolicy::WorkQueue => "work queue",
        _ => "other",
    }
}

pub fn storage_name(s: StorageType) -> &'static str {
    match s {
        StorageType::File => "file",
        StorageType::Memory => "memory",
        _ => "other",
    }
}

pub fn discard_name(d: DiscardPolicy) -> &'static str {
    match d {
        DiscardPolicy::Old => "old",
        DiscardPolicy::New => "new",
        _ => "other",
    }
}

/// `durable` or `ephemeral`.
pub fn consumer_kind(c: &ConsumerInfo) -> &'static str {
    if c.config.durable_name.is_some() {
        "durable"
    } else {
        "ephemeral"
    }
}

/// What a consumer delivers: its filter(s), or every subject.
pub fn consumer_filter(c: &ConsumerInfo) -> String {
    match (
        &c.config.filter_subject,
        c.config.filter_subjects.as_slice(),
    ) {
        (Some(f), _) if !f.is_empty() => f.clone(),
        (_, []) => "all subjects".into(),
        (_, many) => many.join(", "),
    }
}

/// The typed confirmation matches the stream's name.
pub fn confirmed(typed: &str, name: &str) -> bool {
    !name.is_empty() && typed.trim() == name
}

#[cfg(test)]
mod tests {
    #[test]
    fn sequences_of_an_empty_or_purged_stream_are_a_dash() {
        let purged = StreamState {
            first_seq: 11,
            last_seq: 10,
            ..Default::default()
        };
        assert_eq!(sequence_text(&purged, purged.first_seq), "—");
        let held = StreamState {
            messages: 2,
            first_seq: 3,
            last_seq: 4,
            ..Default::default()
        };
        assert_eq!(sequence_text(&held, held.last_seq), "4");
    }

    use super::*;

    fn form(name: &str, subjects: &str) -> CreateForm {
        CreateForm {
            name: name.into(),
            subjects: subjects.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_create_form_becomes_a_stream_config() {
        let mut f = form(" ORDERS ", "orders.>, refunds.*  audit");
        f.storage = StorageType::Memory;
        f.retention = RetentionPolicy::WorkQueue;
        f.max_msgs = "1_000".into();
        f.max_bytes = "10M".into();
        f.max_age = "1h30m".into();
        let c = f.to_config().unwrap();
        assert_eq!(c.name, "ORDERS");
        assert_eq!(c.subjects, ["orders.>", "refunds.*", "audit"]);
        assert_eq!(
            (c.storage, c.retention),
            (StorageType::Memory, RetentionPolicy::WorkQueue)
        );
        assert_eq!((c.max_msgs, c.max_bytes), (1000, 10 << 20));
        assert_eq!(c.max_age, Duration::from_secs(5400));
        assert_eq!(c.num_replicas, 1);
        // Empty limits are unlimited: zero, which nats-ws leaves out of the request.
        let c = form("A", "a").to_config().unwrap();
        assert_eq!((c.max_msgs, c.max_bytes, c.max_age), (0, 0, Duration::ZERO));
    }

    /// A subject another stream stores was refused by the server in its own words (naming neither
    /// stream): the page names the stream.
    #[test]
    fn a_subject_another_stream_stores_is_named_with_that_stream() {
        let stream = |name: &str, subjects: &[&str]| StreamInfo {
            config: StreamConfig::new(name, subjects.iter().copied()),
            ..Default::default()
        };
        let streams = [
            stream("ORDERS", &["orders.>"]),
            stream("KV_cfg", &["$KV.cfg.>"]),
            stream("MIRROR", &[]),
        ];
        let taken = |name: &str, subjects: &[&str]| {
            let subjects: Vec<String> = subjects.iter().map(|s| s.to_string()).collect();
            taken_subject(name, &subjects, &streams)
        };
        assert_eq!(
            taken("NEW", &["refunds.>", "orders.eu"]).unwrap(),
            "orders.eu overlaps orders.>, which stream ORDERS stores: two streams cannot store the same subject, so pick subjects no other stream takes"
        );
        assert!(taken("NEW", &["orders.>"])
            .unwrap()
            .starts_with("stream ORDERS stores orders.> already: "));
        assert!(taken("NEW", &["*.eu"])
            .unwrap()
            .contains("which stream ORDERS"));
        assert!(taken("NEW", &["$KV.*.x"])
            .unwrap()
            .contains("stream KV_cfg"));
        assert_eq!(
            taken("NEW", &["refunds.>", "orders"]),
            None,
            "orders is not within orders.>"
        );
        // The same name: the server answers for it (the same stream again, or a name in use).
        assert_eq!(taken("ORDERS", &["orders.>"]), None);
    }

    #[test]
    fn the_create_form_says_what_to_fix() {
        assert_eq!(
            form("", "a").to_config(),
            Err(FormError::Name("it is empty"))
        );
        for bad in ["a.b", "a b", "a*", "a>", "a/b"] {
            assert!(
                matches!(form(bad, "a").to_config(), Err(FormError::Name(_))),
                "{bad}"
            );
        }
        assert_eq!(form("A", " , ").to_config(), Err(FormError::NoSubjects));
        let e = form("A", "a..b").to_config().unwrap_err();
        assert!(matches!(e, FormError::Subject(_)), "{e:?}");
        assert!(e.to_string().contains("a..b"), "{e}");
        assert!(matches!(
            form("A", "a.>.b").to_config(),
            Err(FormError::Subject(_))
        ));
        let mut f = form("A", "a");
        f.max_msgs = "-1".into();
        assert_eq!(
            f.to_config(),
            Err(FormError::Number {
                field: "max messages",
                value: "-1".into(),
                problem: NumberProblem::Negative,
            })
        );
        // (max messages, max bytes): what is wrong.
        for (msgs, bytes, problem) in [
            ("12a", "", NumberProblem::NotWhole),
            ("1.5", "", NumberProblem::NotWhole),
            ("99999999999999999999", "", NumberProblem::TooLarge),
            ("", "1.5G", NumberProblem::NotSize),
            ("", "-5M", NumberProblem::Negative),
            ("", "99999999999T", NumberProblem::TooLarge),
            ("", "_K", NumberProblem::NotSize),
        ] {
            (f.max_msgs, f.max_bytes) = (msgs.into(), bytes.into());
            let e = f.to_config().unwrap_err();
            assert!(
                matches!(e, FormError::Number { problem: p, .. } if p == problem),
                "{msgs:?} {bytes:?}: {e:?}"
            );
            assert!(
                e.to_string().ends_with("leave it empty or 0 for unlimited"),
                "{e}"
            );
        }
        f.max_bytes = "1.5G".into();
        assert!(f.to_config().unwrap_err().to_string().contains("10M"));
        f.max_msgs = String::new();
        f.max_bytes = "12 parsecs".into();
        assert!(matches!(
            f.to_config(),
            Err(FormError::Number {
                field: "max bytes",
                ..
            })
        ));
        f.max_bytes = String::new();
        f.max_age = "soon".into();
        let e = f.to_config().unwrap_err();
        assert_eq!(e, FormError::Age("soon".into()));
        assert!(e.to_string().contains("90s"), "{e}");
    }

    #[test]
    fn sizes_and_ages_parse_with_units() {
        assert_eq!(parse_size("b", "").unwrap(), 0);
        assert_eq!(parse_size("b", "512").unwrap(), 512);
        assert_eq!(parse_size("b", "2K").unwrap(), 2048);
        assert_eq!(parse_size("b", "2 KiB").unwrap(), 2048);
        // What Rust's own parse takes stays taken.
        assert_eq!(parse_count("n", "+5").unwrap(), 5);
        assert_eq!(parse_count("n", "-0").unwrap(), 0);
        assert_eq!(parse_count("n", "1_000").unwrap(), 1000);
        assert_eq!(parse_size("b", "3mb").unwrap(), 3 << 20);
        assert_eq!(parse_size("b", "1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("b", "1T").unwrap(), 1 << 40);
        for bad in ["K", "1X", "-5", "1.5M", "99999999999T"] {
            assert!(parse_size("b", bad).is_err(), "{bad}");
        }
        assert_eq!(parse_age("").unwrap(), Duration::ZERO);
        assert_eq!(parse_age("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_age("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_age("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_age("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_age("1d2h3m4s").unwrap(), Duration::from_secs(93_784));
        for bad in [
            "5",
            "h",
            "1w",
            "1.5h",
            "-1s",
            "1h 30m",
            "99999999999d",
            "99999999h",
            "106752d",
        ] {
            assert!(parse_age(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn headers_are_one_per_line_and_the_msg_id_goes_to_the_options() {
        let h =
            parse_headers("X-Trace: abc\n\n  Nats-Msg-Id : m1 \nX-Empty:\nX-Trace: two").unwrap();
        assert_eq!(h.len(), 4);
        assert_eq!(h[1], ("Nats-Msg-Id".to_owned(), "m1".to_owned()));
        let (map, id) = publish_headers(h);
        let map = map.unwrap();
        assert_eq!(id.as_deref(), Some("m1"));
        assert_eq!(map.get_all("X-Trace").collect::<Vec<_>>(), ["abc", "two"]);
        assert_eq!(map.get("X-Empty"), Some(""));
        assert!(map.get("Nats-Msg-Id").is_none());
        assert_eq!(publish_headers(Vec::new()), (None, None));
        assert!(parse_headers("no colon").unwrap_err().contains("line 1"));
        assert!(parse_headers("ok: 1\nbad name: 2")
            .unwrap_err()
            .contains("line 2"));
        assert!(parse_headers(": empty").is_err());
        assert!(parse_headers("X: a\u{7}b").is_err());
    }

    #[test]
    fn payloads_preview_as_text_or_hex() {
        assert_eq!(preview(b""), (Preview::Empty, 0));
        assert_eq!(
            preview(b"<b>hi</b>\n\t"),
            (Preview::Text("<b>hi</b>\n\t".into()), 0)
        );
        assert_eq!(
            preview("héllo".as_bytes()),
            (Preview::Text("héllo".into()), 0)
        );
        assert_eq!(
            preview(&[0, 159, 146, 150]),
            (Preview::Hex("00 9f 92 96".into()), 0)
        );
        assert_eq!(
            preview(b"bell\x07"),
            (Preview::Hex("62 65 6c 6c 07".into()), 0)
        );
        let long: Vec<u8> = (0..40u8).collect();
        assert_eq!(hex(&long).lines().count(), 3);
        // Long text is cut at a character boundary; the rest is counted.
        let mut text = "a".repeat(PREVIEW_BYTES - 1);
        text.push('é');
        text.push_str("tail");
        match preview(text.as_bytes()) {
            (Preview::Text(s), omitted) => {
                assert_eq!(s.len(), PREVIEW_BYTES - 1);
                assert_eq!(omitted, 6);
            }
            other => panic!("{other:?}"),
        }
        let big = vec![0u8; PREVIEW_BYTES + 10];
        assert!(matches!(preview(&big), (Preview::Hex(_), 10)));
    }

    #[test]
    fn formats_of_the_tables() {
        assert_eq!(limit_count(-1), "unlimited");
        assert_eq!(limit_count(10), "10");
        assert_eq!(limit_bytes(-1), "unlimited");
        assert_eq!(limit_bytes(2048), "2.0 KiB");
        assert_eq!(limit_age(Duration::ZERO), "unlimited");
        assert_eq!(limit_age(Duration::from_secs(120)), "2m");
        assert_eq!(limit_age(Duration::from_secs(86_400 + 1800)), "1d 30m");
        assert_eq!(age(Duration::from_millis(250)), "250ms");
        assert_eq!(
            server_time("2026-11-30T17:46:30.138817123Z"),
            "2026-11-30 17:46:30.138 UTC"
        );
        assert_eq!(
            server_time("2026-11-30T17:46:30Z"),
            "2026-11-30 17:46:30 UTC"
        );
        assert_eq!(server_time("0001-01-01T00:00:00Z"), "—");
        assert_eq!(server_time(""), "—");
        assert_eq!(
            server_time("2026-11-30T17:46:30+02:00"),
            "2026-11-30T17:46:30+02:00"
        );
        assert_eq!(example_subject(&["orders.*.>".into()]), "orders.test.test");
        assert_eq!(example_subject(&["a.b".into(), "c".into()]), "a.b");
        assert_eq!(example_subject(&[]), "");
        assert_eq!(retention_name(RetentionPolicy::WorkQueue), "work queue");
        assert!(confirmed(" ORDERS ", "ORDERS"));
        assert!(!confirmed("orders", "ORDERS"));
        assert!(!confirmed("", ""));
    }

    #[test]
    fn consumers_are_named_by_kind_and_filter() {
        let mut c = ConsumerInfo::default();
        assert_eq!(
            (consumer_kind(&c), consumer_filter(&c).as_str()),
            ("ephemeral", "all subjects")
        );
        c.config.durable_name = Some("d".into());
        c.config.filter_subjects = vec!["a.*".into(), "b".into()];
        assert_eq!(
            (consumer_kind(&c), consumer_filter(&c).as_str()),
            ("durable", "a.*, b")
        );
        c.config.filter_subject = Some("x.>".into());
        assert_eq!(consumer_filter(&c), "x.>");
    }
}
