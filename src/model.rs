//! The app's data, as it travels through NATS, and the pure rules around it (no DOM, no I/O), so
//! they can be unit-tested natively.

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

/// A user, as stored in bucket `users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub created_at: String,
    pub updated_at: String,
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

/// The counter's value as stored under `counter`: JSON {"value","by","at"}, or a bare integer
/// written by another tool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counter {
    pub value: i64,
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub at: String,
}

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
}

/// One change the counter page asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CounterOp {
    Add(i64),
    Reset,
}

/// Applies queued operations in order to `value`.
pub fn apply_counter_ops(value: i64, ops: &[CounterOp]) -> i64 {
    ops.iter().fold(value, |v, op| match op {
        CounterOp::Add(n) => v.saturating_add(*n),
        CounterOp::Reset => 0,
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn counter_ops_apply_in_order() {
        use CounterOp::*;
        assert_eq!(apply_counter_ops(5, &[Add(1), Add(10), Reset, Add(-1)]), -1);
        assert_eq!(apply_counter_ops(i64::MAX, &[Add(1)]), i64::MAX);
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
    fn rooms() {
        assert!(valid_room("general"));
        assert!(valid_room("team-2_x"));
        assert!(!valid_room("a.b"));
        assert!(!valid_room(""));
        assert!(!valid_room("has space"));
    }
}
