//! The monitor's arithmetic, kept out of Leptos so it runs natively on a fake clock: totals, the
//! rate over the last second, the per-second history behind the sparkline, the bounded table of
//! subjects, and how a payload is shown (always as text; the characters that would reorder it are
//! shown instead of applied by `console::bidi`).
//!
//! [`MonitorStats::record`] is called once per message and must stay cheap: a few additions, one
//! hash lookup, no allocation except the first time a subject is seen. Nothing here grows without
//! bound: the history is a fixed ring, and a table of [`MAX_SUBJECTS`] makes room for a new subject
//! by dropping half of its rows (subjects seen once first, as the reply inboxes and ack subjects of
//! a busy system are, then the longest unseen), their counts kept under "other".

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::pages::console::subjects::{covers, overlap};

/// Distinct subjects kept in the table (see [`MonitorStats::record`]).
pub const MAX_SUBJECTS: usize = 1000;
/// Seconds of history behind the sparkline.
pub const SPARK_SECONDS: usize = 60;
/// The history's resolution: the rate is the sum of the last ten buckets.
const BUCKET_MS: u64 = 100;
const BUCKETS_PER_SECOND: u64 = 1000 / BUCKET_MS;
/// 60 s of buckets, plus the current (partial) one and slack so the oldest second never aliases it.
const BUCKETS: usize = (SPARK_SECONDS as u64 * BUCKETS_PER_SECOND) as usize + 20;

/// Messages and bytes per second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rate {
    pub msgs: u64,
    pub bytes: u64,
}

/// One subject's line in the table.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SubjectStats {
    pub count: u64,
    pub bytes: u64,
    /// When the last message came, in ms since the epoch.
    pub last_ms: f64,
    /// The second (`ms / 1000`) `in_second` counts, and the count of the one before it.
    second: u64,
    in_second: u64,
    in_previous: u64,
}

impl SubjectStats {
    fn record(&mut self, bytes: u64, now_ms: f64) {
        let second = to_index(now_ms, 1000);
        if second > self.second {
            self.in_previous = if second == self.second + 1 {
                self.in_second
            } else {
                0
            };
            self.in_second = 0;
            self.second = second;
        }
        self.in_second += 1;
        self.count += 1;
        self.bytes += bytes;
        self.last_ms = self.last_ms.max(now_ms);
    }

    /// Messages in the last whole second before `now_ms`.
    pub fn rate(&self, now_ms: f64) -> u64 {
        let now = to_index(now_ms, 1000);
        if now == self.second {
            self.in_previous
        } else if now == self.second + 1 {
            self.in_second
        } else {
            0
        }
    }
}

/// A row of the subjects table as the page shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct SubjectRow {
    pub subject: String,
    pub count: u64,
    pub bytes: u64,
    pub rate: u64,
    pub last_ms: f64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortKey {
    Subject,
    Count,
    Rate,
    LastSeen,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            key: SortKey::Count,
            descending: true,
        }
    }
}

impl Sort {
    /// A click on `key`'s header: the same column flips direction, another starts with the order
    /// that makes sense for it (names A→Z, numbers largest first).
    pub fn clicked(self, key: SortKey) -> Sort {
        if self.key == key {
            Sort {
                key,
                descending: !self.descending,
            }
        } else {
            Sort {
                key,
                descending: key != SortKey::Subject,
            }
        }
    }
}

fn to_index(ms: f64, per: u64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        ms as u64 / per
    } else {
        0
    }
}

/// Everything the monitor counts. Time is passed in (`now_ms`, ms since the epoch); a clock that
/// steps back is treated as standing still.
#[derive(Clone, Debug)]
pub struct MonitorStats {
    pub messages: u64,
    pub bytes: u64,
    msgs_ring: Vec<u64>,
    bytes_ring: Vec<u64>,
    /// The newest bucket index the ring holds (`ms / BUCKET_MS`); 0 before the first tick.
    head: u64,
    subjects: HashMap<String, SubjectStats>,
    /// What the subjects dropped from the table to make room had counted.
    pub other: SubjectStats,
}

impl Default for MonitorStats {
    fn default() -> Self {
        MonitorStats {
            messages: 0,
            bytes: 0,
            msgs_ring: vec![0; BUCKETS],
            bytes_ring: vec![0; BUCKETS],
            head: 0,
            subjects: HashMap::new(),
            other: SubjectStats::default(),
        }
    }
}

impl MonitorStats {
    /// Counts one message of `bytes` (payload and headers) on `subject`.
    pub fn record(&mut self, subject: &str, bytes: usize, now_ms: f64) {
        let bytes = bytes as u64;
        self.tick(now_ms);
        let slot = (self.head % BUCKETS as u64) as usize;
        self.msgs_ring[slot] += 1;
        self.bytes_ring[slot] += bytes;
        self.messages += 1;
        self.bytes += bytes;
        if let Some(s) = self.subjects.get_mut(subject) {
            s.record(bytes, now_ms);
        } else {
            if self.subjects.len() >= MAX_SUBJECTS {
                self.make_room();
            }
            let mut s = SubjectStats::default();
            s.record(bytes, now_ms);
            self.subjects.insert(subject.to_owned(), s);
        }
    }

    /// Drops half of the table, subjects seen once first (a request's reply inbox, an ack's
    /// subject: a busy system makes thousands a second, and a table that kept the first ones for
    /// good had no room for a subject that started later), then the longest unseen; what they
    /// counted goes to `other`. Once per [`MAX_SUBJECTS`] / 2 new subjects: a few per message.
    fn make_room(&mut self) {
        let mut order: Vec<(bool, f64, &String)> = self
            .subjects
            .iter()
            .map(|(subject, s)| (s.count > 1, s.last_ms, subject))
            .collect();
        let half = order.len() / 2;
        if half == 0 {
            return;
        }
        order.select_nth_unstable_by(half, |a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let dropped: Vec<String> = order[..half].iter().map(|(_, _, s)| (*s).clone()).collect();
        for subject in dropped {
            if let Some(s) = self.subjects.remove(&subject) {
                self.other.count += s.count;
                self.other.bytes += s.bytes;
                self.other.last_ms = self.other.last_ms.max(s.last_ms);
            }
        }
    }

    /// Moves the history to `now_ms`, emptying the buckets that passed without a message.
    pub fn tick(&mut self, now_ms: f64) {
        let now = to_index(now_ms, BUCKET_MS);
        if now <= self.head {
            return;
        }
        if self.head == 0 || now - self.head >= BUCKETS as u64 {
            self.msgs_ring.fill(0);
            self.bytes_ring.fill(0);
        } else {
            for i in self.head + 1..=now {
                let slot = (i % BUCKETS as u64) as usize;
                self.msgs_ring[slot] = 0;
                self.bytes_ring[slot] = 0;
            }
        }
        self.head = now;
    }

    /// Sum of the buckets `[from, to)` back from the head (0 = the current bucket).
    fn sum_back(&self, from: u64, to: u64) -> Rate {
        let mut rate = Rate::default();
        for back in from..to {
            if back > self.head {
                break;
            }
            let slot = ((self.head - back) % BUCKETS as u64) as usize;
            rate.msgs += self.msgs_ring[slot];
            rate.bytes += self.bytes_ring[slot];
        }
        rate
    }

    /// Messages and bytes in the last whole second before the current bucket (as of the last
    /// [`tick`](Self::tick) or [`record`](Self::record)).
    pub fn rate(&self) -> Rate {
        self.sum_back(1, 1 + BUCKETS_PER_SECOND)
    }

    /// Messages per second over the last [`SPARK_SECONDS`] seconds, oldest first (the newest is
    /// the same second as [`rate`](Self::rate)).
    pub fn history(&self) -> Vec<u64> {
        (0..SPARK_SECONDS as u64)
            .rev()
            .map(|s| {
                let from = 1 + s * BUCKETS_PER_SECOND;
                self.sum_back(from, from + BUCKETS_PER_SECOND).msgs
            })
            .collect()
    }

    /// Distinct subjects in the table (not counting "other").
    pub fn subject_count(&self) -> usize {
        self.subjects.len()
    }

    /// The first `limit` rows of the table in `sort` order.
    pub fn subject_rows(&self, sort: Sort, now_ms: f64, limit: usize) -> Vec<SubjectRow> {
        let mut rows: Vec<SubjectRow> = self
            .subjects
            .iter()
            .map(|(subject, s)| SubjectRow {
                subject: subject.clone(),
                count: s.count,
                bytes: s.bytes,
                rate: s.rate(now_ms),
                last_ms: s.last_ms,
            })
            .collect();
        let by_key = |a: &SubjectRow, b: &SubjectRow| match sort.key {
            SortKey::Subject => Ordering::Equal,
            SortKey::Count => a.count.cmp(&b.count),
            SortKey::Rate => a.rate.cmp(&b.rate),
            SortKey::LastSeen => a.last_ms.total_cmp(&b.last_ms),
        };
        crate::sort::sort_by(&mut rows, |a, b| {
            let primary = if sort.descending {
                by_key(b, a)
            } else {
                by_key(a, b)
            };
            // Ties (and the subject column) in name order, reversed only when sorting by name.
            let names = if sort.key == SortKey::Subject && sort.descending {
                b.subject.cmp(&a.subject)
            } else {
                a.subject.cmp(&b.subject)
            };
            primary.then(names)
        });
        rows.truncate(limit);
        rows
    }
}

/// Splits what was typed into subjects (separated by spaces or commas) and checks each with the
/// client's subscribe rules. Duplicates are dropped, and so is a subject another one covers
/// (`orders.new` beside `orders.>`): the server sends a message once for each subscription it
/// matches, so it would be counted and logged twice. Nothing valid is an error. With the subjects,
/// what was left out, or that two of them still overlap (`a.*` and `*.b`: neither covers the
/// other, a message on `a.b` comes twice).
pub fn parse_subjects(input: &str) -> Result<(Vec<String>, Option<String>), String> {
    let mut subjects: Vec<String> = Vec::new();
    let mut left_out: Vec<String> = Vec::new();
    for s in input
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
    {
        nats_ws::validate_subscribe_subject(s).map_err(|e| e.to_string())?;
        if subjects.iter().any(|t| t == s) {
            continue;
        }
        if let Some(wider) = subjects.iter().find(|t| covers(t, s)) {
            left_out.push(format!("{s} (within {wider})"));
            continue;
        }
        subjects.retain(|t| {
            let within = covers(s, t);
            if within {
                left_out.push(format!("{t} (within {s})"));
            }
            !within
        });
        subjects.push(s.to_owned());
    }
    if subjects.is_empty() {
        return Err("type a subject to monitor, e.g. > or orders.*".to_owned());
    }
    let overlapping = subjects.iter().enumerate().find_map(|(i, a)| {
        let b = subjects.get(i + 1..)?.iter().find(|b| overlap(a, b))?;
        Some(format!(
            "{a} and {b} overlap: a message on a subject both match comes once for each, and is counted twice"
        ))
    });
    let note = match (left_out.is_empty(), overlapping) {
        (true, overlapping) => overlapping,
        (false, overlapping) => Some(
            format!("not subscribed twice: {}", left_out.join(", "))
                + &overlapping.map(|o| format!("; {o}")).unwrap_or_default(),
        ),
    };
    Ok((subjects, note))
}

/// The one-line preview of a payload: text with control characters shown as `·`, cut after
/// `max_chars` characters; a payload that is not UTF-8 as hex.
pub fn preview(payload: &[u8], max_chars: usize) -> String {
    if payload.is_empty() {
        return String::new();
    }
    match std::str::from_utf8(payload) {
        Ok(text) => {
            let mut out: String = text
                .chars()
                .take(max_chars)
                .map(|c| if c.is_control() { '·' } else { c })
                .collect();
            if text.chars().nth(max_chars).is_some() {
                out.push('…');
            }
            out
        }
        Err(_) => {
            let shown = payload.len().min(max_chars / 3);
            let mut out = hex_bytes(&payload[..shown]);
            if shown < payload.len() {
                out.push_str(" …");
            }
            out
        }
    }
}

fn hex_bytes(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A payload in full, for an expanded row: JSON pretty-printed, other text as it is, anything
/// else as a hex dump (offset, 16 bytes a line). `total` is the payload's size when `payload` is
/// only its beginning.
pub fn expanded(payload: &[u8], total: usize) -> String {
    // A beginning may end inside a character: text is judged by what is valid up to there.
    let text = crate::model::text_of(payload, total > payload.len());
    let mut out = if let Ok(value) = serde_json::from_slice::<serde_json::Value>(payload) {
        serde_json::to_string_pretty(&value).unwrap_or_default()
    } else if let Some(text) = text {
        text.to_owned()
    } else {
        payload
            .chunks(16)
            .enumerate()
            .map(|(i, line)| format!("{:08x}  {}", i * 16, hex_bytes(line)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    if total > payload.len() {
        out.push_str(&format!(
            "\n… (the first {} of {} bytes)",
            payload.len(),
            total
        ));
    }
    out
}

/// The points of an SVG polyline for `values` in a `width` × `height` box, the largest value at
/// the top (a flat line at the bottom when all are 0).
pub fn sparkline_points(values: &[u64], width: f64, height: f64) -> String {
    let max = values.iter().copied().max().unwrap_or(0).max(1) as f64;
    let step = if values.len() > 1 {
        width / (values.len() - 1) as f64
    } else {
        0.0
    };
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let x = i as f64 * step;
            let y = height - (v as f64 / max) * height;
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: f64 = 1_700_000_000_000.0;

    #[test]
    fn counts_every_message_and_byte() {
        let mut s = MonitorStats::default();
        for i in 0..5000 {
            s.record(if i % 2 == 0 { "a" } else { "b.c" }, 10, T0 + i as f64);
        }
        assert_eq!(s.messages, 5000);
        assert_eq!(s.bytes, 50_000);
        let rows = s.subject_rows(Sort::default(), T0, 10);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows.iter().map(|r| r.count).sum::<u64>(), 5000);
        assert_eq!(rows[0].count, 2500);
    }

    #[test]
    fn rate_is_the_last_whole_second() {
        let mut s = MonitorStats::default();
        // 100 messages spread over [T0, T0+1000).
        for i in 0..100 {
            s.record("x", 8, T0 + i as f64 * 10.0);
        }
        s.tick(T0 + 1000.0);
        assert_eq!(
            s.rate(),
            Rate {
                msgs: 100,
                bytes: 800
            }
        );
        // Half a second later, half of them have left the window.
        s.tick(T0 + 1500.0);
        assert_eq!(s.rate().msgs, 50);
        // Idle: it falls to zero.
        s.tick(T0 + 2100.0);
        assert_eq!(s.rate(), Rate::default());
        assert_eq!(s.messages, 100);
    }

    #[test]
    fn history_has_one_value_per_second_oldest_first() {
        let mut s = MonitorStats::default();
        for second in 0..3u64 {
            for _ in 0..=second {
                s.record("x", 1, T0 + second as f64 * 1000.0 + 5.0);
            }
        }
        s.tick(T0 + 3000.0);
        let h = s.history();
        assert_eq!(h.len(), SPARK_SECONDS);
        assert_eq!(&h[SPARK_SECONDS - 3..], &[1, 2, 3]);
        assert!(h[..SPARK_SECONDS - 3].iter().all(|&v| v == 0));
        // A minute later they are gone.
        s.tick(T0 + 3000.0 + 60_000.0);
        assert!(s.history().iter().all(|&v| v == 0));
    }

    #[test]
    fn a_long_gap_empties_the_ring_and_a_clock_stepping_back_is_ignored() {
        let mut s = MonitorStats::default();
        s.record("x", 1, T0);
        s.tick(T0 + 3_600_000.0);
        assert!(s.history().iter().all(|&v| v == 0));
        s.record("x", 1, T0); // back in time: counted in the current bucket
        s.tick(T0 + 3_600_100.0);
        assert_eq!(s.rate().msgs, 1);
        assert_eq!(s.messages, 2);
    }

    #[test]
    fn subject_rate_is_per_whole_second() {
        let mut s = MonitorStats::default();
        for i in 0..7 {
            s.record("a", 1, T0 + i as f64);
        }
        let row = |s: &MonitorStats, now| s.subject_rows(Sort::default(), now, 1)[0].rate;
        assert_eq!(row(&s, T0 + 500.0), 0, "the current second is not complete");
        assert_eq!(row(&s, T0 + 1500.0), 7);
        assert_eq!(row(&s, T0 + 2500.0), 0);
        s.record("a", 1, T0 + 1200.0);
        assert_eq!(row(&s, T0 + 1300.0), 7);
        assert_eq!(row(&s, T0 + 2300.0), 1);
    }

    #[test]
    fn a_full_table_makes_room_for_a_new_subject_dropping_those_seen_once_first() {
        let mut s = MonitorStats::default();
        // A subject in use from the start, then a flood of one-off reply inboxes.
        s.record("math.sum", 3, T0);
        s.record("math.sum", 3, T0);
        for i in 0..3 * MAX_SUBJECTS {
            s.record(&format!("_INBOX.x.{i}"), 3, T0 + 1.0 + i as f64);
        }
        // A subject that starts after the table first filled is in it, and so is the old one.
        for _ in 0..10 {
            s.record("orders.new", 3, T0 + 5000.0);
        }
        assert!(s.subject_count() <= MAX_SUBJECTS);
        let rows = s.subject_rows(Sort::default(), T0 + 5000.0, MAX_SUBJECTS);
        let count_of = |name: &str| rows.iter().find(|r| r.subject == name).map(|r| r.count);
        assert_eq!(count_of("orders.new"), Some(10));
        assert_eq!(count_of("math.sum"), Some(2));
        // The newest inboxes stay; the oldest went first.
        assert_eq!(
            count_of(&format!("_INBOX.x.{}", 3 * MAX_SUBJECTS - 1)),
            Some(1)
        );
        assert_eq!(count_of("_INBOX.x.0"), None);
        // Nothing is lost from the counts: the dropped rows' are under "other".
        let total = 2 + 3 * MAX_SUBJECTS as u64 + 10;
        assert_eq!(s.messages, total);
        assert_eq!(
            rows.iter().map(|r| r.count).sum::<u64>() + s.other.count,
            total
        );
        assert_eq!(s.other.bytes, 3 * s.other.count);
    }

    #[test]
    fn sorting_by_each_column() {
        let mut s = MonitorStats::default();
        for (subject, n, at) in [("b", 3, 10.0), ("a", 1, 30.0), ("c", 2, 20.0)] {
            for _ in 0..n {
                s.record(subject, 1, T0 + at);
            }
        }
        let order = |sort| {
            s.subject_rows(sort, T0 + 100.0, 10)
                .into_iter()
                .map(|r| r.subject)
                .collect::<Vec<_>>()
        };
        let sort = Sort::default();
        assert_eq!(order(sort), ["b", "c", "a"]);
        assert_eq!(order(sort.clicked(SortKey::Count)), ["a", "c", "b"]);
        let by_name = sort.clicked(SortKey::Subject);
        assert_eq!(order(by_name), ["a", "b", "c"]);
        assert_eq!(order(by_name.clicked(SortKey::Subject)), ["c", "b", "a"]);
        assert_eq!(order(sort.clicked(SortKey::LastSeen)), ["a", "c", "b"]);
        assert_eq!(s.subject_rows(sort, T0, 2).len(), 2);
    }

    #[test]
    fn subjects_are_validated_like_the_client_does() {
        assert_eq!(parse_subjects(">").unwrap(), (vec![">".to_owned()], None));
        assert_eq!(
            parse_subjects(" chat.>, user.>  chat.> ").unwrap(),
            (vec!["chat.>".to_owned(), "user.>".to_owned()], None)
        );
        assert!(parse_subjects("a..b").unwrap_err().contains("empty token"));
        assert!(parse_subjects("foo.>.bar")
            .unwrap_err()
            .contains("last token"));
        assert!(parse_subjects("ok, .x").is_err());
        assert!(parse_subjects("  ").is_err());
    }

    /// The server sends a message once per subscription it matches: a user's `ov.>, ov.a` counted
    /// and logged every message on `ov.a` twice.
    #[test]
    fn a_subject_another_covers_is_not_subscribed_twice() {
        let parsed = |input| parse_subjects(input).unwrap();
        assert_eq!(
            parsed("ov.>, ov.a"),
            (
                vec!["ov.>".to_owned()],
                Some("not subscribed twice: ov.a (within ov.>)".to_owned())
            )
        );
        assert_eq!(
            parsed("via.> a.b.c >").0,
            [">"],
            "the wider one, typed last"
        );
        assert_eq!(parsed("a.*.c a.b.c a.b.*").0, ["a.*.c", "a.b.*"]);
        // Neither covers the other; a message on a.b matches both.
        let (subjects, note) = parsed("a.* *.b");
        assert_eq!(subjects, ["a.*", "*.b"]);
        assert!(note.unwrap().starts_with("a.* and *.b overlap"));
        // Not covered, and no overlap: a.* is one token after a, a.> one or more.
        assert_eq!(
            parsed("a.b a.b.c a.*.d.>"),
            (
                vec!["a.b".to_owned(), "a.b.c".to_owned(), "a.*.d.>".to_owned()],
                None
            )
        );
        assert_eq!(parsed("a.> a.*").0, ["a.>"]);
        assert_eq!(parsed("a.* a.>").0, ["a.>"]);
        assert_eq!(
            parsed("a a.>"),
            (vec!["a".to_owned(), "a.>".to_owned()], None)
        );
    }

    #[test]
    fn previews_are_text_or_hex() {
        assert_eq!(preview(b"<b>x</b>", 80), "<b>x</b>");
        assert_eq!(preview(b"line\nnext", 80), "line·next");
        assert_eq!(preview("héllo wörld".as_bytes(), 5), "héllo…");
        assert_eq!(preview(&[0xff, 0x00, 0x10], 80), "ff 00 10");
        assert_eq!(preview(&[0xff; 40], 9), "ff ff ff …");
        assert_eq!(preview(b"", 80), "");
    }

    #[test]
    fn expanded_pretty_prints_json_and_dumps_binary() {
        assert_eq!(
            expanded(br#"{"a":[1,2]}"#, 11),
            "{\n  \"a\": [\n    1,\n    2\n  ]\n}"
        );
        assert_eq!(expanded(b"plain", 5), "plain");
        let bin: Vec<u8> = (0u8..18).map(|b| b | 0x80).collect();
        assert_eq!(
            expanded(&bin, 18),
            "00000000  80 81 82 83 84 85 86 87 88 89 8a 8b 8c 8d 8e 8f\n00000010  90 91"
        );
        assert_eq!(expanded(b"abc", 10), "abc\n… (the first 3 of 10 bytes)");
        // A beginning cut inside a character is still text; a whole payload that is not valid
        // UTF-8 is not.
        let cut = &"aé".as_bytes()[..2];
        assert_eq!(expanded(cut, 3), "a\n… (the first 2 of 3 bytes)");
        assert!(expanded(cut, 2).starts_with("00000000  61 c3"));
    }

    #[test]
    fn sparkline_scales_to_the_peak() {
        assert_eq!(
            sparkline_points(&[0, 5, 10], 100.0, 20.0),
            "0.0,20.0 50.0,10.0 100.0,0.0"
        );
        assert_eq!(sparkline_points(&[0, 0], 10.0, 4.0), "0.0,4.0 10.0,4.0");
        assert_eq!(sparkline_points(&[], 10.0, 4.0), "");
    }
}
