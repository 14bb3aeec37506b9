//! The app's data, as it travels through NATS, and the pure rules around it (no DOM, no I/O), so
//! they can be unit-tested natively.

use std::collections::VecDeque;

use process_control::{LogLine, ProcessState};
use serde::{Deserialize, Serialize};

/// KV bucket of the counter, the config keys and the theme (shared with other systems: keep).
pub const CONFIG_BUCKET: &str = "via_config";
/// KV bucket of users (key = user id).
pub const USERS_BUCKET: &str = "users";
/// The chat stream and its subjects.
pub const CHAT_STREAM: &str = "CHAT";
pub const CHAT_SUBJECTS: &str = "chat.>";
/// Rooms every tab shows, `general` first.
pub const DEFAULT_ROOMS: [&str; 3] = ["general", "random", "help"];

pub fn room_subject(room: &str) -> String {
    format!("chat.room.{room}")
}

/// A room name is one subject token: letters, digits, '-' and '_'.
pub fn valid_room(room: &str) -> bool {
    !room.is_empty()
        && room.len() <= 32
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A user, as stored in bucket `users` (key = id).
///
/// Other clients write this bucket too: every field may be missing or of another type, and there
/// may be fields this app does not know. An edit here writes back what it did not change as it
/// was written: unknown fields, a numeric `created_at`, a `null` name, a missing field.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct User {
    #[serde(default, deserialize_with = "lenient_text")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient_text")]
    pub name: String,
    #[serde(default, deserialize_with = "lenient_text")]
    pub email: String,
    #[serde(default, deserialize_with = "lenient_text")]
    pub created_at: String,
    #[serde(default, deserialize_with = "lenient_text")]
    pub updated_at: String,
    /// The stored object as read ([`User::from_entry`]); `None` for a user made here. (Read a
    /// user with `from_entry`: deserialized directly, it has none, and an edit would write only
    /// the fields above.)
    #[serde(skip)]
    pub written: Option<serde_json::Map<String, serde_json::Value>>,
}

/// What `lenient_text` reads `v` as.
fn as_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(_) | serde_json::Value::Bool(_) => v.to_string(),
        _ => String::new(),
    }
}

/// A text field as another client may have written it: text as it is, a number or a boolean as
/// its JSON text (a Unix time, say), null or anything else as empty.
fn lenient_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    serde_json::Value::deserialize(d).map(|v| as_text(&v))
}

impl Serialize for User {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(None)?;
        let written = self.written.as_ref();
        for (field, text) in self.text_fields() {
            match written.map(|w| w.get(field)) {
                // Unchanged here: as it was written.
                Some(Some(was)) if as_text(was) == text => map.serialize_entry(field, was)?,
                // Missing, and still empty.
                Some(None) if text.is_empty() => {}
                _ => map.serialize_entry(field, text)?,
            }
        }
        for (k, v) in written.into_iter().flatten() {
            if !TEXT_FIELDS.contains(&k.as_str()) {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

/// The fields of [`User`] that are text.
const TEXT_FIELDS: [&str; 5] = ["id", "name", "email", "created_at", "updated_at"];

impl User {
    /// The user stored under `key`, if its value is a JSON object; the key is its id, whatever
    /// the object says (the key is what every write goes to).
    pub fn from_entry(key: &str, value: &[u8]) -> Option<User> {
        let value: serde_json::Value = serde_json::from_slice(value).ok()?;
        let mut user = User::deserialize(&value).ok()?;
        let serde_json::Value::Object(written) = value else {
            return None;
        };
        user.written = Some(written);
        key.clone_into(&mut user.id);
        Some(user)
    }

    /// Each of [`TEXT_FIELDS`] with its value.
    fn text_fields(&self) -> [(&'static str, &str); 5] {
        let values = [
            &self.id,
            &self.name,
            &self.email,
            &self.created_at,
            &self.updated_at,
        ];
        std::array::from_fn(|i| (TEXT_FIELDS[i], values[i].as_str()))
    }

    /// What a row shows as the name: the name, else the key.
    pub fn display_name(&self) -> &str {
        if self.name.trim().is_empty() {
            &self.id
        } else {
            &self.name
        }
    }
}

/// `bytes` as text, when it is UTF-8; when it is only the beginning of a payload (`cut`), a
/// character split at the end is left out rather than making it binary.
pub fn text_of(bytes: &[u8], cut: bool) -> Option<&str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Some(s),
        Err(e) if cut && e.error_len().is_none() => {
            std::str::from_utf8(&bytes[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    }
}

/// Checks a user form; the error says what to fix.
pub fn validate_user(name: &str, email: &str) -> Result<(), &'static str> {
    let (name, email) = (name.trim(), email.trim());
    if name.is_empty() {
        return Err("a name is required");
    }
    if name.chars().count() > 80 {
        return Err("the name is too long (80 characters at most)");
    }
    let Some((local, domain)) = email.split_once('@') else {
        return Err("the email needs an @");
    };
    if local.is_empty() || !domain.contains('.') || email.contains(char::is_whitespace) {
        return Err("that email does not look right (name@example.com)");
    }
    Ok(())
}

/// The user other than `except` (an id) whose email is `email`, compared as a mail system
/// would find the same box: trimmed and in any case (ASCII's: the Unicode case tables are 8 KB
/// of the app's first load). `users` are (key, value) as stored.
///
/// Only what this tab has seen: two tabs creating the same email at the same moment both
/// succeed (bucket `users` is keyed by id and holds only users).
pub fn email_owner<'a>(
    users: impl IntoIterator<Item = (&'a String, &'a [u8])>,
    email: &str,
    except: Option<&str>,
) -> Option<User> {
    let email = email.trim();
    users
        .into_iter()
        .filter(|(key, _)| Some(key.as_str()) != except)
        .filter_map(|(key, value)| User::from_entry(key, value))
        .find(|u| u.email.trim().eq_ignore_ascii_case(email))
}

/// `user.created|updated|deleted` notifications.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserEvent {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub action: String,
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub at: String,
}

/// The text of the notification for an event on `subject` (`user.<action>`), whoever sent it.
/// Events from other clients may carry only some fields (`{"name":"External User"}`).
pub fn describe_user_event(subject: &str, payload: &[u8]) -> String {
    let event: Option<UserEvent> = serde_json::from_slice(payload).ok();
    let action = event
        .as_ref()
        .map(|e| e.action.as_str())
        .filter(|a| !a.is_empty())
        .or_else(|| subject.strip_prefix("user."))
        .unwrap_or("changed")
        .to_owned();
    let name = event
        .as_ref()
        .map(|e| {
            if e.name.is_empty() {
                e.id.as_str()
            } else {
                e.name.as_str()
            }
        })
        .filter(|n| !n.is_empty())
        .unwrap_or("a user")
        .to_owned();
    let by = event
        .as_ref()
        .map(|e| e.by.as_str())
        .filter(|b| !b.is_empty())
        .unwrap_or("another client");
    format!("User {name} {action} by {by}")
}

/// A chat message, as stored in stream `CHAT`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub id: String,
    pub room: String,
    pub user: String,
    pub text: String,
    pub at: String,
}

/// The counter's value as stored under `counter`: JSON {"value","by","at","applied"}, or a bare
/// integer written by another tool.
///
/// `applied` makes every click count exactly once however writes are cut: each writer (one per
/// counter page) numbers its clicks, and a value carries, per recent writer, the number of its last
/// click it includes. A write starts from the value it read, adds that writer's clicks after its
/// number and only those, and is a compare-and-set, so every later value carries the entry forward.
/// After a write whose answer was lost, reading the key tells which clicks are in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    pub value: i64,
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub at: String,
    /// (writer, last click included), least recently written first, at most [`APPLIED_KEPT`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub applied: Vec<(String, u64)>,
}

/// Writers remembered in [`Counter::applied`]: a writer forgotten before it reads the key again
/// after a lost answer would count its clicks again, which takes this many other writers' writes
/// in between.
pub const APPLIED_KEPT: usize = 64;

impl Counter {
    pub fn parse(bytes: &[u8]) -> Option<Counter> {
        if let Ok(c) = serde_json::from_slice::<Counter>(bytes) {
            return Some(c);
        }
        let text = std::str::from_utf8(bytes).ok()?.trim();
        text.parse::<i64>().ok().map(|value| Counter {
            value,
            ..Default::default()
        })
    }

    /// The number of `writer`'s last click this value includes (0: none).
    pub fn applied_upto(&self, writer: &str) -> u64 {
        self.applied
            .iter()
            .find(|(w, _)| w == writer)
            .map_or(0, |(_, n)| *n)
    }

    /// This value with `writer`'s clicks `clicks` (numbered, in order) applied: only those after
    /// the writer's last click already in. The writer becomes the most recent in `applied`.
    /// `None` when the value would go past an `i64` ([`apply_counter_ops`]).
    pub fn with_clicks(
        &self,
        writer: &str,
        by: &str,
        at: &str,
        clicks: &[(u64, CounterOp)],
    ) -> Option<Counter> {
        self.with_queues(&[(writer.to_owned(), clicks.to_vec())], by, at)
    }

    /// [`Counter::with_clicks`] for several writers' queues in one value, in their order (what
    /// comes before a Reset in any of them does not count).
    pub fn with_queues(
        &self,
        queues: &[(String, Vec<(u64, CounterOp)>)],
        by: &str,
        at: &str,
    ) -> Option<Counter> {
        let mut new = Vec::new();
        let mut applied: Vec<(String, u64)> = self.applied.clone();
        for (writer, clicks) in queues {
            let done = self.applied_upto(writer);
            new.extend(clicks.iter().filter(|(n, _)| *n > done).map(|(_, op)| *op));
            let upto = clicks.iter().map(|(n, _)| *n).fold(done, u64::max);
            applied.retain(|(w, _)| w != writer);
            applied.push((writer.clone(), upto));
        }
        let excess = applied.len().saturating_sub(APPLIED_KEPT);
        applied.drain(..excess);
        Some(Counter {
            value: apply_counter_ops(self.value, &new)?,
            by: by.to_owned(),
            at: at.to_owned(),
            applied,
        })
    }
}

/// Settled clicks kept by [`Clicks`]: a value written over more of them than this is past
/// repair (it takes a stale write that many clicks later).
pub const SETTLED_KEPT: usize = 1000;

/// One writer's clicks: those not yet seen in the stored value (`queue`, to write) and those a
/// read showed in it (`settled`, kept). A compare-and-set against an old revision should fail,
/// but a clustered nats-server before 2.9.21 may accept it (nats-server#4320; after a leader
/// election, many): that write replaces the value with one built on an older one, which lacks
/// clicks already settled. The value says so itself — it names fewer of this writer's clicks —
/// and [`Clicks::observe`] puts them back in the queue.
#[derive(Debug, Default)]
pub struct Clicks {
    queue: VecDeque<(u64, CounterOp)>,
    settled: VecDeque<(u64, CounterOp)>,
    /// The latest revision seen holding every settled click.
    settled_at: u64,
    last: u64,
}

impl Clicks {
    /// Numbers and queues a click.
    pub fn push(&mut self, op: CounterOp) {
        self.last += 1;
        self.queue.push_back((self.last, op));
    }

    /// The clicks to write, oldest first.
    pub fn queued(&self) -> Vec<(u64, CounterOp)> {
        self.queue.iter().copied().collect()
    }

    /// Clicks an earlier load of the tab queued and did not see settled (kept in the tab's
    /// storage), numbered as they were: still to be written under the writer they were made by.
    pub fn inherited(queue: Vec<(u64, CounterOp)>) -> Clicks {
        let last = queue.iter().map(|(n, _)| *n).max().unwrap_or(0);
        Clicks {
            queue: queue.into(),
            last,
            ..Clicks::default()
        }
    }

    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Forgets the settled clicks: the values to come are another bucket's (another server or
    /// account, or the bucket made again), whose revisions say nothing of those seen so far.
    pub fn forget_settled(&mut self) {
        self.settled.clear();
        self.settled_at = 0;
    }

    /// `value`, the key at `revision` (read, or delivered by a watch), as `writer` sees it:
    /// the queued clicks it holds are settled; settled clicks it lacks go back in the queue if
    /// it is newer than every value seen holding them and names the writer at all. (A value that
    /// does not name it — a bare integer from another tool, a bucket made again, a writer pushed
    /// out of `applied` — is not a copy of an older one of this writer's values.) `true` when
    /// clicks went back.
    pub fn observe(&mut self, writer: &str, value: &Counter, revision: u64) -> bool {
        let Some(have) = value
            .applied
            .iter()
            .find(|(w, _)| w == writer)
            .map(|(_, n)| *n)
        else {
            return false;
        };
        let lost_from = self.settled.partition_point(|(n, _)| *n <= have);
        let lost = lost_from < self.settled.len() && revision > self.settled_at;
        if lost {
            let back: Vec<_> = self.settled.drain(lost_from..).collect();
            for click in back.into_iter().rev() {
                self.queue.push_front(click);
            }
        }
        let held = self.queue.partition_point(|(n, _)| *n <= have);
        self.settled.extend(self.queue.drain(..held));
        let excess = self.settled.len().saturating_sub(SETTLED_KEPT);
        self.settled.drain(..excess);
        if !lost && self.settled.back().is_none_or(|(n, _)| *n <= have) {
            self.settled_at = self.settled_at.max(revision);
        }
        lost
    }
}

/// One change the counter page asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CounterOp {
    Add(i64),
    Reset,
}

/// Applies queued operations in order to `value`; `None` when the result is past what the counter
/// holds (an `i64`): the clicks cannot be stored, and are not rounded into the limit.
pub fn apply_counter_ops(value: i64, ops: &[CounterOp]) -> Option<i64> {
    // What came before the last Reset does not count.
    let (start, ops) = match ops.iter().rposition(|op| *op == CounterOp::Reset) {
        Some(at) => (0, &ops[at + 1..]),
        None => (value, ops),
    };
    ops.iter().try_fold(start, |v, op| match op {
        CounterOp::Add(n) => v.checked_add(*n),
        CounterOp::Reset => Some(0),
    })
}

/// The config keys the page shows, with the values its control cycles through.
pub const CONFIG_KEYS: [(&str, &[&str]); 7] = [
    (
        "config.app.name",
        &["VIA Console", "VIA Demo", "NATS Playground"],
    ),
    ("config.app.debug", &["false", "true"]),
    ("config.app.log_level", &["info", "debug", "warn", "error"]),
    ("config.feature.flag1", &["off", "on"]),
    ("config.feature.flag2", &["off", "on"]),
    ("config.service.timeout", &["30s", "5s", "10s", "60s"]),
    ("config.service.retry_count", &["3", "0", "1", "5"]),
];

/// The value after `current` in `choices`; the first one for anything unknown.
pub fn next_config_value<'a>(choices: &[&'a str], current: Option<&str>) -> &'a str {
    let position = current.and_then(|c| choices.iter().position(|v| *v == c));
    match position {
        Some(i) => choices[(i + 1) % choices.len()],
        None => choices[0],
    }
}

/// Themes the app ships; `data-theme` values in style/main.css.
pub const THEMES: [&str; 5] = ["light", "dark", "ocean", "forest", "sunset"];

pub fn known_theme(name: &str) -> bool {
    THEMES.contains(&name)
}

// ---- the console: via-agent's processes, leaves and service registry ------------------------
// The contract (subjects, buckets, ProcessState, RegistryEntry, LogLine, replies) is the
// `process-control` crate's, shared with the agent; what follows is how the pages show it.

/// A value another program wrote (a KV entry, a message), or `None` when it is not JSON of that
/// shape. The contract's types read leniently, so only a broken value is left out.
pub fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    serde_json::from_slice(bytes).ok()
}

/// Rows in display order: processes by name, then leaves by their number (`leaf-2` before
/// `leaf-10`).
pub fn sort_processes(list: &mut [ProcessState]) {
    crate::sort::sort_by(list, |a, b| {
        (a.is_leaf(), leaf_number(&a.name), &a.name).cmp(&(
            b.is_leaf(),
            leaf_number(&b.name),
            &b.name,
        ))
    });
}

fn leaf_number(name: &str) -> Option<u64> {
    name.strip_prefix("leaf-")?.parse().ok()
}

/// Lines kept in a log tail.
pub const LOG_TAIL: usize = 500;

/// Whether a line that came live was already in the initial lines the `logs` endpoint returned
/// (the subscription starts before the request, so the two overlap): older than the last initial
/// line, or the same line at the same millisecond.
pub fn already_shown(initial: &[LogLine], live: &LogLine) -> bool {
    let Some(last) = initial.last() else {
        return false;
    };
    live.ts < last.ts
        || (live.ts == last.ts
            && initial
                .iter()
                .rev()
                .take_while(|l| l.ts == last.ts)
                .any(|l| l == live))
}

/// The longest duration nats-server takes (nanoseconds in an i64: about 106 751 days); a longer
/// one typed in a form is refused, not stored as this.
pub const LONGEST_SERVER_DURATION: std::time::Duration =
    std::time::Duration::from_nanos(i64::MAX as u64);

/// A duration typed in a form: `<number><unit>` parts (`ms`, `s`, `m`, `h`, `d`) written together,
/// as `90s`, `7d` or `1h30m`; empty is zero. `None` for anything else, and for more than
/// [`LONGEST_SERVER_DURATION`].
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    use std::time::Duration;
    let mut rest = text.trim();
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit())?;
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let step = match &rest[..unit] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            "d" => Duration::from_secs(n.checked_mul(86_400)?),
            _ => return None,
        };
        total = total.checked_add(step)?;
        rest = &rest[unit..];
    }
    (total <= LONGEST_SERVER_DURATION).then_some(total)
}

/// `text` cut at `max` characters, with `…` when something was cut.
pub fn clip_text(text: &str, max: usize) -> String {
    let mut cut: String = text.chars().take(max).collect();
    if text.chars().nth(max).is_some() {
        cut.push('…');
    }
    cut
}

/// A payload as text (invalid UTF-8 as `\u{fffd}`), cut at `max` characters.
pub fn clip_payload(payload: &[u8], max: usize) -> String {
    clip_text(&String::from_utf8_lossy(payload), max)
}

/// Appends `items` to `list`, keeping the last `max`.
pub fn push_bounded<T>(list: &mut Vec<T>, items: impl IntoIterator<Item = T>, max: usize) {
    list.extend(items);
    let excess = list.len().saturating_sub(max);
    list.drain(..excess);
}

/// Why a request to the agent failed, in words for the page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AgentError {
    /// Nobody answers on the agent's subjects: via-agent is not running (or not connected to
    /// this server).
    NotRunning,
    /// The agent refused: its code (400, 403, 404, 409, 429, 500) and message.
    Refused { code: u16, message: String },
    /// The request did not get through (not connected, timed out, connection lost).
    Request(String),
    /// The agent answered something this page does not understand.
    BadReply(String),
}

impl std::fmt::Display for AgentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AgentError::NotRunning => f.write_str(
                "via-agent is not running: start it with ./run.sh (or cargo run -p via-agent)",
            ),
            AgentError::Refused { message, .. } => f.write_str(message),
            AgentError::Request(why) => f.write_str(why),
            AgentError::BadReply(why) => write!(f, "unexpected reply from via-agent: {why}"),
        }
    }
}

/// Reads a reply of the agent: an error reply (header `Nats-Service-Error` with
/// `Nats-Service-Error-Code`, or a body `{"error": …, "code": …}`) becomes
/// [`AgentError::Refused`]; anything else must parse as `T`.
pub fn parse_agent_reply<T: serde::de::DeserializeOwned>(
    service_error: Option<&str>,
    service_error_code: Option<&str>,
    body: &[u8],
) -> Result<T, AgentError> {
    #[derive(Deserialize)]
    struct ErrorBody {
        error: String,
        #[serde(default)]
        code: Option<u16>,
    }
    let from_body = serde_json::from_slice::<ErrorBody>(body).ok();
    if service_error.is_some() || from_body.is_some() {
        let code = service_error_code
            .and_then(|c| c.trim().parse().ok())
            .or(from_body.as_ref().and_then(|b| b.code))
            .unwrap_or(500);
        let message = from_body
            .map(|b| b.error)
            .or(service_error.map(str::to_owned))
            .filter(|m| !m.trim().is_empty())
            .unwrap_or_else(|| format!("via-agent refused the request (code {code})"));
        return Err(AgentError::Refused { code, message });
    }
    serde_json::from_slice(body).map_err(|e| AgentError::BadReply(e.to_string()))
}

/// `42s`, `5m 03s`, `2h 07m`, `3d 4h`.
pub fn format_duration(ms: f64) -> String {
    let s = (ms.max(0.0) / 1000.0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86400 => format!("{}h {:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86400, s % 86400 / 3600),
    }
}

/// A configured duration as it is, to the millisecond: `1d 30m`, `500ms`, `2m` (zero parts left
/// out; under a millisecond in µs). [`format_duration`] rounds, for times that pass.
pub fn format_exact_duration(d: std::time::Duration) -> String {
    if d.is_zero() {
        return "0s".to_owned();
    }
    let ms = d.as_millis();
    if ms == 0 {
        return format!("{}µs", d.as_micros());
    }
    let parts = [
        (ms / 86_400_000, "d"),
        (ms / 3_600_000 % 24, "h"),
        (ms / 60_000 % 60, "m"),
        (ms / 1000 % 60, "s"),
        (ms % 1000, "ms"),
    ];
    let mut text = String::new();
    for (n, unit) in parts.into_iter().filter(|(n, _)| *n > 0) {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&n.to_string());
        text.push_str(unit);
    }
    text
}

/// `512 B`, `1.5 KiB`, `12.3 MiB`, `1.0 GiB`.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// Where the topology diagram puts `n` leaves around the hub at (`cx`, `cy`): evenly on a
/// circle of radius `r`, the first one at the top, clockwise.
pub fn leaf_positions(n: usize, cx: f64, cy: f64, r: f64) -> Vec<(f64, f64)> {
    (0..n)
        .map(|i| {
            let angle = -std::f64::consts::FRAC_PI_2 + std::f64::consts::TAU * i as f64 / n as f64;
            (cx + r * angle.cos(), cy + r * angle.sin())
        })
        .collect()
}

/// The streams the app makes when they are missing, and the KV buckets (`KV_<bucket>`).
const APP_STREAMS: [&str; 10] = [
    "CHAT",
    "EVENTS",
    "playgrnd_stream",
    "KV_via_config",
    "KV_users",
    "KV_services_registry",
    "KV_processes",
    "KV_leases",
    "KV_workers",
    "KV_configs_playgrnd",
];

/// What the server refused, in words, from the subject of a permission error: the JetStream API
/// verbs, the app's buckets, the agent's actions; any other subject as itself. A consumer's name
/// (random, new at each try) is not shown: the stream or bucket it reads is.
pub fn refused_action(subject: &str, action: &str) -> String {
    let after = |prefix: &str| subject.strip_prefix(prefix);
    let stream = |rest: &str| rest.split('.').next().unwrap_or(rest).to_owned();
    // "bucket x" for a KV bucket's stream (KV_x), "stream X" for any other.
    let named = |rest: &str| {
        let name = stream(rest);
        match name.strip_prefix("KV_") {
            Some(bucket) => format!("bucket {bucket}"),
            None => format!("stream {name}"),
        }
    };
    if action == "subscribe to" {
        if subject.starts_with("_INBOX.") {
            return "receive replies (subscribe to _INBOX.>), which every request and every \
                    read of a stream or bucket needs"
                .to_owned();
        }
        return format!("subscribe to {subject}");
    }
    if let Some(rest) = after("$JS.API.STREAM.DELETE.") {
        format!("delete streams (here {})", stream(rest))
    } else if let Some(rest) = after("$JS.API.STREAM.PURGE.") {
        format!("purge streams (here {})", stream(rest))
    } else if let Some(rest) = after("$JS.API.STREAM.MSG.DELETE.") {
        format!("delete messages (here in {})", stream(rest))
    } else if let Some(rest) = after("$JS.API.STREAM.CREATE.").or(after("$JS.API.STREAM.UPDATE.")) {
        // The app makes its own streams and buckets when they are missing (after looking):
        // "other than the app's" would not be true of them.
        if APP_STREAMS.contains(&stream(rest).as_str()) {
            return format!("create the app's {}", named(rest));
        }
        match rest.strip_prefix("KV_") {
            Some(bucket) => {
                format!("create or change buckets other than the app's (here {bucket})")
            }
            None => format!(
                "create or change streams other than the app's (here {})",
                stream(rest)
            ),
        }
    } else if let Some(rest) = after("$JS.API.CONSUMER.DELETE.") {
        format!("delete durable consumers (here on {})", stream(rest))
    } else if let Some(rest) = after("$JS.API.CONSUMER.DURABLE.CREATE.") {
        format!("create durable consumers on {}", named(rest))
    } else if let Some(rest) =
        after("$JS.API.CONSUMER.CREATE.").or(after("$JS.API.CONSUMER.MSG.NEXT."))
    {
        format!("read {}", named(rest))
    } else if let Some(rest) = after("$JS.API.CONSUMER.INFO.")
        .or(after("$JS.API.CONSUMER.LIST."))
        .or(after("$JS.API.CONSUMER.NAMES."))
    {
        format!("look at the consumers of {}", named(rest))
    } else if after("$JS.API.CONSUMER.").is_some() {
        "manage consumers".to_owned()
    } else if let Some(rest) = after("$JS.API.STREAM.INFO.")
        .or(after("$JS.API.DIRECT.GET."))
        .or(after("$JS.API.STREAM.MSG.GET."))
    {
        format!("read {}", named(rest))
    } else if after("$JS.API.STREAM.LIST").is_some() || after("$JS.API.STREAM.NAMES").is_some() {
        "list the streams and buckets".to_owned()
    } else if subject == "$JS.API.INFO" {
        "read the account's JetStream usage".to_owned()
    } else if let Some(rest) = after("$KV.") {
        format!("write to bucket {}", stream(rest))
    } else if subject.starts_with("$SYS.") {
        "make system requests ($SYS)".to_owned()
    } else if let Some(verb) = after("via.proc.") {
        format!("{verb} processes")
    } else if let Some(verb) = after("via.leaf.") {
        format!("{verb} leaf nodes")
    } else {
        format!("publish to {subject}")
    }
}

/// An error's text for the page: a permission refusal by the server (nats-ws says `may not
/// publish to "<subject>"`) becomes "the browser user may not delete streams (here CHAT): sign in
/// as admin in ⚙"; any other text is returned as it is. `user` is who the settings sign in as
/// (empty: the anonymous `browser`).
pub fn explain(error: &str, user: &str) -> String {
    let refused = ["publish to", "subscribe to"]
        .into_iter()
        .find_map(|action| {
            let marker = format!("may not {action} \"");
            let start = error.find(&marker)? + marker.len();
            let len = error[start..].find('"')?;
            Some((action, &error[start..start + len]))
        });
    let user = if user.is_empty() { "browser" } else { user };
    let Some((action, subject)) = refused else {
        // JetStream's API unanswered while connected: starting (after a restart), or not there
        // for this user's account at all, which the sys user's is.
        if error.contains("no reply on \"$JS.API.") {
            return match user {
                "sys" => "JetStream did not answer: the sys user's account has none (sys is for \
                          /server); sign in as admin in ⚙, or with no user, for the app's pages"
                    .to_owned(),
                _ => format!(
                    "JetStream did not answer in time: it may be starting after a restart, or not \
                     be enabled for the {user} user's account ({error})"
                ),
            };
        }
        return error.to_owned();
    };
    let what = refused_action(subject, action);
    let hint = if subject.starts_with("$SYS.") {
        "the system user's statistics are on /server (sign in as sys there)"
    } else if user == "admin" {
        "ask for the permission in nats-accounts.conf"
    } else {
        "sign in as admin in ⚙"
    };
    format!("the {user} user may not {what}: {hint}")
}

/// One server's `VARZ` (what `$SYS.REQ.SERVER.PING.VARZ` answers with, under `data`): the
/// fields /server shows. Missing fields read as zero, so both server generations parse.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Varz {
    pub server_id: String,
    pub server_name: String,
    pub version: String,
    pub uptime: String,
    pub connections: u64,
    pub subscriptions: u64,
    pub in_msgs: u64,
    pub out_msgs: u64,
    pub in_bytes: u64,
    pub out_bytes: u64,
    pub routes: u64,
    pub leafnodes: u64,
    pub jetstream: VarzJetStream,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct VarzJetStream {
    pub stats: VarzJetStreamStats,
    pub config: VarzJetStreamConfig,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct VarzJetStreamStats {
    pub memory: u64,
    pub storage: u64,
    pub accounts: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct VarzJetStreamConfig {
    pub max_memory: i64,
    pub max_storage: i64,
}

/// The `VARZ` of a `$SYS.REQ.SERVER.PING.VARZ` reply (`{"server": …, "data": {…}}`); `None`
/// for anything else (an error reply has `error` instead of `data`).
pub fn parse_varz_reply(payload: &[u8]) -> Option<Varz> {
    #[derive(Deserialize)]
    struct Reply {
        data: Option<Varz>,
    }
    serde_json::from_slice::<Reply>(payload)
        .ok()?
        .data
        .filter(|v| !v.server_id.is_empty())
}

/// Per second, from two readings of a counter `elapsed_ms` apart; `None` without a usable pair
/// (first reading, a counter that went back after a restart, no time between).
pub fn rate_per_second(before: u64, after: u64, elapsed_ms: f64) -> Option<f64> {
    (after >= before && elapsed_ms > 0.0).then(|| (after - before) as f64 * 1000.0 / elapsed_ms)
}

/// A rate for a table cell: "0/s", "12/s", "3.4 k/s", "1.2 M/s".
pub fn format_rate(per_second: f64) -> String {
    if per_second >= 999_500.0 {
        format!("{:.1} M/s", per_second / 1e6)
    } else if per_second >= 999.5 {
        format!("{:.1} k/s", per_second / 1e3)
    } else if per_second >= 10.0 || per_second == 0.0 {
        format!("{per_second:.0}/s")
    } else {
        format!("{per_second:.1}/s")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn configured_durations_read_as_they_are() {
        use std::time::Duration;
        for (d, text) in [
            (Duration::ZERO, "0s"),
            (Duration::from_micros(250), "250µs"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_secs(120), "2m"),
            (Duration::from_secs(86_400 + 30 * 60), "1d 30m"),
            (Duration::from_millis(90_061_001), "1d 1h 1m 1s 1ms"),
            (Duration::from_secs(3600), "1h"),
        ] {
            assert_eq!(format_exact_duration(d), text, "{d:?}");
        }
    }

    use super::*;

    #[test]
    fn a_user_written_by_another_client_is_read_and_its_other_fields_survive_an_edit() {
        // Only a name and email, plus a field this app does not know; the id in the value is not
        // the key.
        let value =
            br#"{"id":"elsewhere","name":"Ext","email":"ext@example.com","role":{"admin":true}}"#;
        let mut user = User::from_entry("u1", value).unwrap();
        assert_eq!((user.id.as_str(), user.name.as_str()), ("u1", "Ext"));
        assert_eq!(user.created_at, "");
        user.name = "Edited".into();
        let written: serde_json::Value = serde_json::to_value(&user).unwrap();
        // The fields it did not have are still missing.
        assert_eq!(
            written,
            serde_json::json!({"id": "u1", "name": "Edited", "email": "ext@example.com",
                "role": {"admin": true}})
        );
        // Fields of other types, as JavaScript clients write them.
        let js = User::from_entry(
            "u4",
            br#"{"name":null,"email":"e@x.io","created_at":1700000000}"#,
        )
        .unwrap();
        assert_eq!(
            (js.name.as_str(), js.created_at.as_str()),
            ("", "1700000000")
        );
        assert_eq!(js.display_name(), "u4");
        // Written back, what was not changed keeps its type; what was, is text.
        let mut edited = js.clone();
        edited.email = "new@x.io".into();
        let written = serde_json::to_value(&edited).unwrap();
        assert_eq!(
            written,
            serde_json::json!({"id": "u4", "name": null, "email": "new@x.io",
                "created_at": 1700000000})
        );
        edited.name = "Named".into();
        edited.created_at = "2026-01-01T00:00:00Z".into();
        let written = serde_json::to_value(&edited).unwrap();
        assert_eq!(
            (&written["name"], &written["created_at"]),
            (
                &serde_json::json!("Named"),
                &serde_json::json!("2026-01-01T00:00:00Z")
            )
        );
        // Made here: every field, as text.
        let made = User {
            id: "u5".into(),
            name: "N".into(),
            created_at: "t".into(),
            ..Default::default()
        };
        assert_eq!(
            serde_json::to_value(&made).unwrap(),
            serde_json::json!({"id": "u5", "name": "N", "email": "",
                "created_at": "t", "updated_at": ""})
        );
        // Nothing but a key: shown by its key; edited, it gets only what was typed.
        let mut bare = User::from_entry("u2", b"{}").unwrap();
        assert_eq!(bare.display_name(), "u2");
        bare.name = "Named".into();
        assert_eq!(
            serde_json::to_value(&bare).unwrap(),
            serde_json::json!({"id": "u2", "name": "Named"})
        );
        // Not an object: not a user.
        for value in [&b"\"ada\""[..], b"42", b"not json", b"[1]"] {
            assert!(
                User::from_entry("u3", value).is_none(),
                "{:?}",
                String::from_utf8_lossy(value)
            );
        }
    }

    #[test]
    fn varz_replies_of_both_server_generations_parse() {
        let reply = br#"{"server":{"name":"a","host":"0.0.0.0","id":"NA","ver":"2.9.10"},
            "data":{"server_id":"NA","server_name":"a","version":"2.9.10","uptime":"1h2m3s",
            "connections":3,"subscriptions":42,"in_msgs":100,"out_msgs":250,"in_bytes":5000,
            "out_bytes":9000,"routes":2,"leafnodes":1,"remotes":0,
            "jetstream":{"config":{"max_memory":1024,"max_storage":2048,"store_dir":"/x"},
                         "stats":{"memory":10,"storage":20,"reserved_memory":0,"accounts":2,
                                  "api":{"total":5,"errors":0}}},
            "unknown_field":{"nested":true}}}"#;
        let v = parse_varz_reply(reply).unwrap();
        assert_eq!(
            (v.server_name.as_str(), v.version.as_str()),
            ("a", "2.9.10")
        );
        assert_eq!(
            (v.connections, v.subscriptions, v.routes, v.leafnodes),
            (3, 42, 2, 1)
        );
        assert_eq!(
            (v.jetstream.stats.memory, v.jetstream.stats.storage),
            (10, 20)
        );
        assert_eq!(v.jetstream.config.max_storage, 2048);
        // Without JetStream, and an error reply.
        let bare = br#"{"data":{"server_id":"NB","server_name":"b","version":"2.15.1"}}"#;
        assert_eq!(
            parse_varz_reply(bare).unwrap().jetstream,
            VarzJetStream::default()
        );
        assert_eq!(parse_varz_reply(br#"{"error":{"code":403}}"#), None);
        assert_eq!(parse_varz_reply(b"not json"), None);
    }

    #[test]
    fn rates_need_two_readings_that_go_forward() {
        assert_eq!(rate_per_second(100, 300, 2000.0), Some(100.0));
        assert_eq!(
            rate_per_second(300, 100, 2000.0),
            None,
            "a restart resets the counters"
        );
        assert_eq!(rate_per_second(1, 2, 0.0), None);
        assert_eq!(format_rate(0.0), "0/s");
        assert_eq!(format_rate(2.345), "2.3/s");
        assert_eq!(format_rate(123.4), "123/s");
        assert_eq!(format_rate(12_345.0), "12.3 k/s");
        assert_eq!(format_rate(2_500_000.0), "2.5 M/s");
    }

    #[test]
    fn permission_errors_say_what_was_refused_and_what_to_do() {
        let delete =
            r#"permission denied: this user may not publish to "$JS.API.STREAM.DELETE.CHAT""#;
        assert_eq!(
            explain(delete, ""),
            "the browser user may not delete streams (here CHAT): sign in as admin in ⚙"
        );
        let purge = r#"could not purge: permission denied: this user may not publish to "$JS.API.STREAM.PURGE.EVENTS""#;
        assert_eq!(
            explain(purge, "browser"),
            "the browser user may not purge streams (here EVENTS): sign in as admin in ⚙"
        );
        let create =
            r#"permission denied: this user may not publish to "$JS.API.STREAM.CREATE.KV_mine""#;
        assert!(explain(create, "")
            .contains("create or change buckets other than the app's (here mine)"));
        let start = r#"permission denied: this user may not publish to "via.proc.start""#;
        assert_eq!(
            explain(start, ""),
            "the browser user may not start processes: sign in as admin in ⚙"
        );
        let other = r#"permission denied: this user may not publish to "secret.plans""#;
        assert_eq!(
            explain(other, ""),
            "the browser user may not publish to secret.plans: sign in as admin in ⚙"
        );
        let sys = r#"permission denied: this user may not publish to "$SYS.REQ.SERVER.PING""#;
        assert_eq!(
            explain(sys, "admin"),
            "the admin user may not make system requests ($SYS): the system user's statistics are on /server (sign in as sys there)"
        );
        let sub = r#"permission denied: this user may not subscribe to "$SYS.>" (check the user's permissions in the server config)"#;
        assert!(explain(sub, "").starts_with("the browser user may not subscribe to $SYS.>"));
        // The client library's own texts, as the pages get them.
        let request = nats_ws::RequestError::PermissionDenied {
            action: "publish to",
            subject: "$JS.API.STREAM.DELETE.CHAT".into(),
        };
        assert_eq!(
            explain(&request.to_string(), ""),
            "the browser user may not delete streams (here CHAT): sign in as admin in ⚙"
        );
        let publish = nats_ws::ServerError::PublishDenied {
            subject: "via.proc.stop".into(),
        };
        assert_eq!(
            explain(&publish.to_string(), ""),
            "the browser user may not stop processes: sign in as admin in ⚙"
        );
        let subscribe = nats_ws::SubscribeError::PermissionDenied {
            subject: "secret.>".into(),
        };
        assert!(explain(&subscribe.to_string(), "")
            .starts_with("the browser user may not subscribe to secret.>"));
        // What a user without the app's permissions meets on every page (one of the programs'
        // users, signed in from a tab): the stream or bucket read, never a consumer's random
        // name; the app's own streams are not "other than the app's".
        let watch = r#"permission denied: this user may not publish to "$JS.API.CONSUMER.CREATE.KV_via_config.ZwfmwVwTntwBpOgnMGotB2_5""#;
        assert_eq!(
            explain(watch, "worker"),
            "the worker user may not read bucket via_config: sign in as admin in ⚙"
        );
        let feed = r#"permission denied: this user may not publish to "$JS.API.CONSUMER.CREATE.CHAT.abc.chat.room.general""#;
        assert_eq!(
            explain(feed, "sensor"),
            "the sensor user may not read stream CHAT: sign in as admin in ⚙"
        );
        let bind =
            r#"permission denied: this user may not publish to "$JS.API.STREAM.CREATE.CHAT""#;
        assert_eq!(
            explain(bind, "sensor"),
            "the sensor user may not create the app's stream CHAT: sign in as admin in ⚙"
        );
        let bucket =
            r#"permission denied: this user may not publish to "$JS.API.STREAM.CREATE.KV_users""#;
        assert!(explain(bucket, "math").contains("may not create the app's bucket users"));
        let durable = r#"permission denied: this user may not publish to "$JS.API.CONSUMER.DURABLE.CREATE.EVENTS.p1""#;
        assert!(explain(durable, "").contains("may not create durable consumers on stream EVENTS"));
        let get = r#"permission denied: this user may not publish to "$JS.API.DIRECT.GET.KV_leases.$KV.leases.p1""#;
        assert!(explain(get, "publisher").contains("may not read bucket leases"));
        let info =
            r#"permission denied: this user may not publish to "$JS.API.CONSUMER.INFO.EVENTS.p1""#;
        assert!(explain(info, "sensor").contains("may not look at the consumers of stream EVENTS"));
        let inbox = nats_ws::RequestError::PermissionDenied {
            action: "subscribe to",
            subject: "_INBOX.wex6gAxB3CGUdTeoncCTBe.*".into(),
        };
        let said = explain(&inbox.to_string(), "sensor");
        assert!(
            said.starts_with("the sensor user may not receive replies (subscribe to _INBOX.>)"),
            "{said}"
        );
        assert!(!said.contains("wex6g"), "{said}");
        // JetStream's API unanswered: what it may mean, and for sys (no JetStream) what to do.
        let unanswered = nats_ws::RequestError::TimedOut {
            subject: "$JS.API.STREAM.INFO.KV_users".into(),
            after: std::time::Duration::from_secs(5),
        }
        .to_string();
        assert!(explain(&unanswered, "sys").contains("the sys user's account has none"));
        let said = explain(&unanswered, "");
        assert!(
            said.starts_with("JetStream did not answer in time"),
            "{said}"
        );
        assert!(said.contains("the browser user's account"), "{said}");
        let other = nats_ws::RequestError::TimedOut {
            subject: "math.sum".into(),
            after: std::time::Duration::from_secs(5),
        }
        .to_string();
        assert_eq!(explain(&other, "sys"), other);
        // Anything else is left as it is.
        assert_eq!(explain("no responders", ""), "no responders");
        assert_eq!(
            explain("may not publish to \"unterminated", ""),
            "may not publish to \"unterminated"
        );
    }
    use process_control::{Kind, LeafReply, ProcessReply, RunState, Stream};

    #[test]
    fn counter_reads_json_and_bare_integers() {
        assert_eq!(
            Counter::parse(br#"{"value":5,"by":"user-1","at":"t"}"#)
                .unwrap()
                .value,
            5
        );
        assert_eq!(Counter::parse(b"42").unwrap().value, 42);
        assert_eq!(Counter::parse(b" -7\n").unwrap().value, -7);
        assert_eq!(Counter::parse(b"abc"), None);
    }

    #[test]
    fn counter_clicks_count_once() {
        use CounterOp::*;
        let start = Counter::parse(b"10").unwrap();
        let clicks = [(1, Add(1)), (2, Add(1)), (3, Add(10))];
        let a = start.with_clicks("tab-a", "ada", "t", &clicks).unwrap();
        assert_eq!((a.value, a.applied_upto("tab-a")), (22, 3));
        // The same clicks again (a write whose answer was lost, resent): nothing changes.
        assert_eq!(
            a.with_clicks("tab-a", "ada", "t", &clicks).unwrap().value,
            22
        );
        // Clicks 2..4 with 1..3 in: only 4 is added.
        let b = a
            .with_clicks(
                "tab-a",
                "ada",
                "t",
                &[(2, Add(1)), (3, Add(10)), (4, Add(-1))],
            )
            .unwrap();
        assert_eq!((b.value, b.applied_upto("tab-a")), (21, 4));
        // Another writer's entry is carried forward, and its own clicks counted.
        let c = b
            .with_clicks("tab-b", "bob", "t", &[(1, Reset), (2, Add(5))])
            .unwrap();
        assert_eq!(
            (c.value, c.applied_upto("tab-a"), c.applied_upto("tab-b")),
            (5, 4, 2)
        );
        // Survives the JSON round trip.
        let json = serde_json::to_vec(&c).unwrap();
        assert_eq!(Counter::parse(&json).unwrap(), c);
    }

    /// A value as `writer` wrote it holding its clicks up to `n`, and `others`'.
    fn holding(writer: &str, n: u64) -> Counter {
        Counter {
            applied: vec![("other".to_owned(), 7), (writer.to_owned(), n)],
            ..Counter::default()
        }
    }

    #[test]
    fn clicks_settle_when_a_value_holds_them() {
        use CounterOp::*;
        let mut c = Clicks::default();
        for op in [Add(1), Add(10), Reset] {
            c.push(op);
        }
        assert_eq!(c.queued(), vec![(1, Add(1)), (2, Add(10)), (3, Reset)]);
        // Not named (another tool's bare integer), or holding none: nothing settles.
        assert!(!c.observe("me", &Counter::parse(b"5").unwrap(), 4));
        assert!(!c.observe("me", &holding("me", 0), 5));
        assert_eq!(c.pending(), 3);
        assert!(!c.observe("me", &holding("me", 2), 6));
        assert_eq!(c.queued(), vec![(3, Reset)]);
        c.push(Add(-1));
        assert!(!c.observe("me", &holding("me", 4), 7));
        assert_eq!(c.pending(), 0);
    }

    /// What a reload keeps (JSON in the tab's storage) comes back as the same queue, numbered as
    /// it was: a value holding some of them settles those, and writes only the rest.
    #[test]
    fn inherited_clicks_keep_their_numbers_through_the_tabs_storage() {
        use CounterOp::*;
        let mut before = Clicks::default();
        for op in [Add(1), Add(10), Reset, Add(-1)] {
            before.push(op);
        }
        assert!(!before.observe("old", &holding("old", 1), 3));
        let json = serde_json::to_string(&vec![("old".to_owned(), before.queued())]).unwrap();
        let stored: Vec<(String, Vec<(u64, CounterOp)>)> = serde_json::from_str(&json).unwrap();
        let [(writer, queue)] = stored.as_slice() else {
            panic!("{stored:?}")
        };
        let mut after = Clicks::inherited(queue.clone());
        assert_eq!(after.queued(), vec![(2, Add(10)), (3, Reset), (4, Add(-1))]);
        // The last load's write of click 3 was stored, its answer lost: only 4 is left to write.
        assert!(!after.observe(writer, &holding("old", 3), 5));
        assert_eq!(after.queued(), vec![(4, Add(-1))]);
        let written = holding("old", 3)
            .with_clicks(writer, "ada", "now", &after.queued())
            .unwrap();
        assert_eq!(written.applied_upto("old"), 4);
        assert!(!after.observe(writer, &written, 6));
        assert_eq!(after.pending(), 0);
    }

    #[test]
    fn settled_clicks_a_newer_value_lacks_go_back_in_the_queue() {
        use CounterOp::*;
        let mut c = Clicks::default();
        for _ in 0..4 {
            c.push(Add(1));
        }
        c.observe("me", &holding("me", 3), 10);
        c.push(Add(5));
        // An older value read from a replica that is behind: old news, nothing moves.
        assert!(!c.observe("me", &holding("me", 1), 9));
        assert_eq!(c.queued(), vec![(4, Add(1)), (5, Add(5))]);
        // A newer one built on an older value: clicks 2 and 3 go back, in order, before 4 and 5.
        assert!(c.observe("me", &holding("me", 1), 11));
        assert_eq!(
            c.queued(),
            vec![(2, Add(1)), (3, Add(1)), (4, Add(1)), (5, Add(5))]
        );
        // Said once: the same value again, or later ones built on it, change nothing.
        assert!(!c.observe("me", &holding("me", 1), 11));
        assert!(!c.observe("me", &holding("me", 1), 12));
        assert_eq!(c.pending(), 4);
        // Written again and read back: settled; a value that no longer names the writer (pushed
        // out of `applied`, or another tool's) sends nothing again.
        assert!(!c.observe("me", &holding("me", 5), 13));
        assert_eq!(c.pending(), 0);
        assert!(!c.observe("me", &holding("you", 9), 14));
        assert!(!c.observe("me", &Counter::parse(b"0").unwrap(), 15));
        assert_eq!(c.pending(), 0);
        // Written over again, later: sent again again.
        assert!(c.observe("me", &holding("me", 4), 16));
        assert_eq!(c.queued(), vec![(5, Add(5))]);
        // Another bucket's values (another server, or the bucket made again) are not compared
        // with this one's.
        c.observe("me", &holding("me", 5), 17);
        c.forget_settled();
        assert!(!c.observe("me", &holding("me", 2), 18));
        assert_eq!(c.pending(), 0);
    }

    #[test]
    fn settled_clicks_are_kept_up_to_a_bound() {
        let mut c = Clicks::default();
        let n = SETTLED_KEPT as u64 + 5;
        for _ in 0..n {
            c.push(CounterOp::Add(1));
        }
        c.observe("me", &holding("me", n), 1);
        assert!(c.observe("me", &holding("me", 0), 2));
        assert_eq!(c.pending(), SETTLED_KEPT);
        assert_eq!(c.queued()[0].0, 6);
    }

    #[test]
    fn counter_remembers_the_most_recent_writers() {
        let mut c = Counter::default();
        for i in 0..(APPLIED_KEPT as u64 + 10) {
            c = c
                .with_clicks(&format!("w{i}"), "", "", &[(1, CounterOp::Add(1))])
                .unwrap();
        }
        assert_eq!(c.applied.len(), APPLIED_KEPT);
        assert_eq!(c.applied_upto("w0"), 0);
        assert_eq!(c.applied_upto(&format!("w{}", APPLIED_KEPT + 9)), 1);
        assert_eq!(c.value, APPLIED_KEPT as i64 + 10);
    }

    #[test]
    fn counter_ops_apply_in_order() {
        use CounterOp::*;
        assert_eq!(
            apply_counter_ops(5, &[Add(1), Add(10), Reset, Add(-1)]),
            Some(-1)
        );
        // Past the largest or smallest value: not stored at all (it was rounded into the limit,
        // the click lost without a word), unless a Reset comes after.
        assert_eq!(apply_counter_ops(i64::MAX, &[Add(1)]), None);
        assert_eq!(apply_counter_ops(i64::MIN, &[Add(-1)]), None);
        assert_eq!(
            apply_counter_ops(i64::MAX, &[Add(1), Reset, Add(2)]),
            Some(2)
        );
        assert_eq!(apply_counter_ops(i64::MAX - 1, &[Add(1)]), Some(i64::MAX));
        // One writer's +1 that cannot be stored alone, and another's Reset after it: together.
        let full = Counter::parse(b"9223372036854775807").unwrap();
        assert_eq!(full.with_clicks("a", "", "", &[(1, Add(1))]), None);
        let both = full
            .with_queues(
                &[
                    ("a".into(), vec![(1, Add(1))]),
                    ("b".into(), vec![(1, Reset), (2, Add(2))]),
                ],
                "",
                "",
            )
            .unwrap();
        assert_eq!(both.value, 2);
        assert_eq!((both.applied_upto("a"), both.applied_upto("b")), (1, 2));
    }

    #[test]
    fn config_values_cycle() {
        let choices = ["a", "b", "c"];
        assert_eq!(next_config_value(&choices, Some("a")), "b");
        assert_eq!(next_config_value(&choices, Some("c")), "a");
        assert_eq!(next_config_value(&choices, Some("weird")), "a");
        assert_eq!(next_config_value(&choices, None), "a");
    }

    #[test]
    fn user_events_from_anyone() {
        assert_eq!(
            describe_user_event("user.created", br#"{"name":"External User"}"#),
            "User External User created by another client"
        );
        let ours = br#"{"id":"u1","name":"Ann","email":"a@b.c","action":"updated","by":"user-ab12","at":"t"}"#;
        assert_eq!(
            describe_user_event("user.updated", ours),
            "User Ann updated by user-ab12"
        );
        assert_eq!(
            describe_user_event("user.deleted", b"not json"),
            "User a user deleted by another client"
        );
    }

    #[test]
    fn user_validation() {
        assert!(validate_user("Ann", "ann@example.com").is_ok());
        assert!(validate_user(" ", "ann@example.com").is_err());
        assert!(validate_user("Ann", "ann.example.com").is_err());
        assert!(validate_user("Ann", "ann@example").is_err());
    }

    #[test]
    fn an_email_belongs_to_the_user_stored_with_it_in_any_case_except_oneself() {
        use super::email_owner;
        let stored: Vec<(String, Vec<u8>)> = vec![
            (
                "a1".into(),
                br#"{"name":"Ada","email":"Ada@Example.com"}"#.to_vec(),
            ),
            ("b2".into(), b"not a user".to_vec()),
            (
                "c3".into(),
                br#"{"name":"Grace","email":"grace@example.com "}"#.to_vec(),
            ),
        ];
        let users = || stored.iter().map(|(k, v)| (k, v.as_slice()));
        let owner = |email, except| email_owner(users(), email, except).map(|u| u.name);
        assert_eq!(owner(" ada@example.COM", None), Some("Ada".into()));
        assert_eq!(owner("grace@example.com", Some("a1")), Some("Grace".into()));
        // One's own email is one's own.
        assert_eq!(owner("ada@example.com", Some("a1")), None);
        assert_eq!(owner("ann@example.com", None), None);
        assert_eq!(owner("not a user", None), None);
    }

    #[test]
    fn rooms() {
        assert!(valid_room("general"));
        assert!(valid_room("team-2_x"));
        assert!(!valid_room("a.b"));
        assert!(!valid_room(""));
        assert!(!valid_room("has space"));
    }

    #[test]
    fn processes_sort_leaves_last_by_number() {
        let mk = |name: &str, kind| ProcessState {
            name: name.into(),
            kind,
            ..Default::default()
        };
        let mut list = vec![
            mk("leaf-10", Kind::Leaf),
            mk("web", Kind::Process),
            mk("leaf-2", Kind::Leaf),
            mk("app", Kind::Process),
        ];
        sort_processes(&mut list);
        let names: Vec<&str> = list.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["app", "web", "leaf-2", "leaf-10"]);
    }

    #[test]
    fn agent_replies_and_errors() {
        let ok: ProcessReply = parse_agent_reply(
            None,
            None,
            br#"{"process":{"name":"app","state":"running"}}"#,
        )
        .unwrap();
        assert_eq!(ok.process.state, RunState::Running);
        let err = parse_agent_reply::<ProcessReply>(
            Some("no process named x"),
            Some("404"),
            br#"{"error":"no process named x","code":404}"#,
        )
        .unwrap_err();
        assert_eq!(
            err,
            AgentError::Refused {
                code: 404,
                message: "no process named x".into()
            }
        );
        // Headers only, empty body.
        let err = parse_agent_reply::<LeafReply>(Some("at most 8 leaf nodes"), Some("429"), b"")
            .unwrap_err();
        assert_eq!(err.to_string(), "at most 8 leaf nodes");
        // Body only.
        let err = parse_agent_reply::<LeafReply>(None, None, br#"{"error":"bad","code":400}"#)
            .unwrap_err();
        assert!(matches!(err, AgentError::Refused { code: 400, .. }));
        assert!(matches!(
            parse_agent_reply::<LeafReply>(None, None, b"{}"),
            Err(AgentError::BadReply(_))
        ));
        assert!(AgentError::NotRunning.to_string().contains("./run.sh"));
    }

    #[test]
    fn log_lines_from_the_ring_are_not_shown_twice() {
        let line = |ts, text: &str| LogLine {
            ts,
            stream: Stream::Stdout,
            line: text.into(),
        };
        let initial = [line(1, "a"), line(2, "b"), line(2, "c")];
        assert!(already_shown(&initial, &line(1, "a")));
        assert!(already_shown(&initial, &line(2, "c")));
        assert!(!already_shown(&initial, &line(2, "d")));
        assert!(!already_shown(&initial, &line(3, "a")));
        assert!(!already_shown(&[], &line(0, "a")));
        let mut tail = vec![1, 2, 3];
        push_bounded(&mut tail, [4, 5], 4);
        assert_eq!(tail, [2, 3, 4, 5]);
    }

    #[test]
    fn text_is_clipped_by_characters() {
        assert_eq!(clip_text("héllo", 5), "héllo");
        assert_eq!(clip_text("héllo!", 5), "héllo…");
        assert_eq!(clip_payload(&[b'<', 0xff], 5), "<\u{fffd}");
    }

    #[test]
    fn formats() {
        assert_eq!(format_duration(42_900.0), "42s");
        assert_eq!(format_duration(303_000.0), "5m 03s");
        assert_eq!(format_duration(7_620_000.0), "2h 07m");
        assert_eq!(format_duration(273_600_000.0), "3d 4h");
        assert_eq!(format_duration(-5.0), "0s");
        assert_eq!(format_bytes(512), "512 B");
        assert_eq!(format_bytes(1536), "1.5 KiB");
        assert_eq!(format_bytes(12_897_485), "12.3 MiB");
    }

    #[test]
    fn leaves_go_around_the_hub() {
        let p = leaf_positions(4, 100.0, 100.0, 50.0);
        let round = |(x, y): (f64, f64)| (x.round() as i64, y.round() as i64);
        let p: Vec<_> = p.into_iter().map(round).collect();
        assert_eq!(p, [(100, 50), (150, 100), (100, 150), (50, 100)]);
        assert!(leaf_positions(0, 0.0, 0.0, 1.0).is_empty());
    }
}
