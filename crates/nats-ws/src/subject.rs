//! Subjects: a cheap, immutable string that shares the bytes it was parsed from, plus the validation
//! rules the server enforces, checked before anything is sent.

use std::fmt;
use std::ops::Deref;

use bytes::Bytes;

use crate::error::SubjectError;

/// A subject (or reply subject) as received from the server.
///
/// Backed by [`Bytes`], so parsing a message does not copy or allocate for its subject: the parser hands
/// out slices of the frame it read. Always valid UTF-8: nats-server forwards a subject's bytes as
/// they were published, and bytes that are not UTF-8 arrive replaced by U+FFFD.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Subject(Bytes);

impl Subject {
    /// Wraps bytes as they came if they are UTF-8, else a copy with U+FFFD for the bytes that are
    /// not; `true` in the second case.
    pub(crate) fn from_utf8_lossy(bytes: Bytes) -> (Self, bool) {
        // Subjects are nearly always ASCII; checking that first is cheaper than full UTF-8.
        if bytes.is_ascii() || std::str::from_utf8(&bytes).is_ok() {
            return (Subject(bytes), false);
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (Subject(Bytes::from(text)), true)
    }

    pub fn as_str(&self) -> &str {
        // SAFETY: every constructor (`from_utf8_lossy`, `From<&str>`, `From<String>`) guarantees UTF-8, and the
        // bytes are immutable afterwards.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }
}

impl Deref for Subject {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for Subject {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Subject {
    fn from(s: &str) -> Self {
        Subject(Bytes::copy_from_slice(s.as_bytes()))
    }
}

impl From<String> for Subject {
    fn from(s: String) -> Self {
        Subject(Bytes::from(s))
    }
}

impl PartialEq<str> for Subject {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Subject {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// One pass over the bytes: this runs on every publish, so no splitting or per-token iterators.
fn check_tokens(subject: &str, wildcards: bool) -> Result<(), &'static str> {
    let bytes = subject.as_bytes();
    if bytes.is_empty() {
        return Err("it is empty");
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'.' {
            check_token(&bytes[start..i], wildcards, false)?;
            start = i + 1;
        } else if b.is_ascii_whitespace() || b.is_ascii_control() {
            return Err("it contains whitespace or a control character");
        }
    }
    check_token(&bytes[start..], wildcards, true)
}

fn check_token(token: &[u8], wildcards: bool, last: bool) -> Result<(), &'static str> {
    match token {
        [] => Err("it has an empty token (leading, trailing or double '.')"),
        b"*" | b">" if !wildcards => Err("wildcards ('*', '>') are only allowed when subscribing"),
        b">" if !last => Err("'>' may only be the last token"),
        _ => Ok(()),
    }
}

/// Checks a subject to publish to: no wildcards, no empty tokens, no whitespace.
pub fn validate_publish_subject(subject: &str) -> Result<(), SubjectError> {
    check_tokens(subject, false).map_err(|reason| SubjectError::new(subject, reason))
}

/// Checks a subject to subscribe to: like a publish subject, but `*` may stand for any one token and
/// `>` for all remaining tokens (last token only).
pub fn validate_subscribe_subject(subject: &str) -> Result<(), SubjectError> {
    check_tokens(subject, true).map_err(|reason| SubjectError::new(subject, reason))
}

/// Checks a queue group name: non-empty, no whitespace.
pub fn validate_queue_group(queue: &str) -> Result<(), SubjectError> {
    if queue.is_empty() {
        return Err(SubjectError::new(
            queue,
            "a queue group name cannot be empty",
        ));
    }
    if queue
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(SubjectError::new(
            queue,
            "a queue group name cannot contain whitespace or control characters",
        ));
    }
    Ok(())
}

/// Whether `subject` (no wildcards) is matched by `pattern` (wildcards allowed).
pub fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for p in pattern.split('.') {
        match (p, subject_tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (p, Some(s)) if p == s => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_subjects() {
        for ok in ["foo", "foo.bar", "$JS.API.INFO", "_INBOX.abc.1", "a-b_c.ü"] {
            assert!(validate_publish_subject(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".", "foo.", ".foo", "foo..bar", "foo bar", "foo.*", "foo.>", "*", "a\tb", "a\r\nb",
        ] {
            assert!(validate_publish_subject(bad).is_err(), "{bad:?}");
        }
        // A token that merely contains '*' is a literal, as the server treats it.
        assert!(validate_publish_subject("foo.a*b").is_ok());
    }

    #[test]
    fn subscribe_subjects() {
        for ok in ["foo", "foo.*", "foo.>", "*", ">", "*.bar.>", "foo.*.baz"] {
            assert!(validate_subscribe_subject(ok).is_ok(), "{ok}");
        }
        for bad in ["", "foo.>.bar", "foo..bar", "foo bar", ">.foo", "foo."] {
            assert!(validate_subscribe_subject(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn queue_groups() {
        assert!(validate_queue_group("workers").is_ok());
        assert!(validate_queue_group("").is_err());
        assert!(validate_queue_group("a b").is_err());
    }

    #[test]
    fn matching() {
        assert!(subject_matches("foo.*", "foo.bar"));
        assert!(!subject_matches("foo.*", "foo.bar.baz"));
        assert!(subject_matches("foo.>", "foo.bar.baz"));
        assert!(!subject_matches("foo.>", "foo"));
        assert!(subject_matches("foo", "foo"));
        assert!(!subject_matches("foo", "foo.bar"));
    }
}
