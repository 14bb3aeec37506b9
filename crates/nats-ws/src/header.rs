//! NATS message headers: the `NATS/1.0[ <status>[ <description>]]` line followed by `Key: Value` lines.

use std::fmt;

use crate::error::HeaderError;

/// Status codes the server puts on the header line.
pub mod status {
    /// Idle heartbeat or flow control request (JetStream push consumers).
    pub const CONTROL: u16 = 100;
    /// No messages, or not found.
    pub const NOT_FOUND: u16 = 404;
    /// Request timeout (pull consumers).
    pub const TIMEOUT: u16 = 408;
    /// Conflict (e.g. leadership change, consumer deleted).
    pub const CONFLICT: u16 = 409;
    /// No responders: nobody is subscribed to the subject of a request.
    pub const NO_RESPONDERS: u16 = 503;
}

/// An ordered multimap of header names to values, plus the optional status line.
///
/// Names keep the case they were given; [`HeaderMap::get`] matches names case-insensitively, as the
/// official clients do when reading the server's own headers.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    status: Option<u16>,
    description: Option<String>,
    entries: Vec<(String, String)>,
}

impl HeaderMap {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a value, keeping any earlier values of the same name.
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.entries.push((name.into(), value.into()));
        self
    }

    /// Sets a value, replacing every earlier value of the same name.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        let name = name.into();
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        self.entries.push((name, value.into()));
        self
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Removes and returns the last value of `name`, leaving earlier ones.
    #[cfg(feature = "jetstream")]
    pub(crate) fn take_last(&mut self, name: &str) -> Option<String> {
        let at = self
            .entries
            .iter()
            .rposition(|(n, _)| n.eq_ignore_ascii_case(name))?;
        Some(self.entries.remove(at).1)
    }

    pub fn remove(&mut self, name: &str) {
        self.entries.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.status.is_none()
    }

    /// The status code of the header line (e.g. 503 for no responders), if any.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The text after the status code, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// Checks names and values before they are encoded: a name is a non-empty run of printable ASCII
    /// without ':' or spaces; a value has no CR or LF.
    pub(crate) fn validate(&self) -> Result<(), HeaderError> {
        for (name, value) in &self.entries {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
                return Err(HeaderError::InvalidName(name.clone()));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n') {
                return Err(HeaderError::InvalidValue(name.clone()));
            }
        }
        Ok(())
    }

    /// The exact number of bytes [`HeaderMap::encode`] writes.
    pub(crate) fn encoded_len(&self) -> usize {
        let mut len = b"NATS/1.0\r\n\r\n".len();
        for (n, v) in &self.entries {
            len += n.len() + 2 + v.len() + 2;
        }
        len
    }

    pub(crate) fn encode(&self, out: &mut impl bytes::BufMut) {
        out.put_slice(b"NATS/1.0\r\n");
        for (n, v) in &self.entries {
            out.put_slice(n.as_bytes());
            out.put_slice(b": ");
            out.put_slice(v.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
    }

    /// Parses a header block as the server sends it in `HMSG`.
    ///
    /// Bytes that are not UTF-8 (the protocol does not forbid them in values) become U+FFFD: the
    /// message is delivered with that header value visibly altered, rather than dropped.
    pub fn parse(block: &[u8]) -> Result<Self, HeaderError> {
        let text = String::from_utf8_lossy(block);
        let mut lines = crate::text::split(&text, "\r\n");
        let first = lines.next().unwrap_or_default();
        let rest = first
            .strip_prefix("NATS/1.0")
            .ok_or_else(|| HeaderError::BadVersionLine(first.chars().take(32).collect()))?;
        let mut map = HeaderMap::default();
        let rest = rest.trim_start();
        if !rest.is_empty() {
            let (code, description) = rest.split_once(' ').unwrap_or((rest, ""));
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HeaderError::BadVersionLine(
                    first.chars().take(32).collect(),
                ));
            }
            map.status = code.parse().ok();
            let description = description.trim();
            if !description.is_empty() {
                map.description = Some(description.to_owned());
            }
        }
        for line in lines {
            if line.is_empty() {
                continue;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| HeaderError::InvalidName(line.chars().take(32).collect()))?;
            let name = name.trim();
            if name.is_empty() {
                return Err(HeaderError::InvalidName(String::new()));
            }
            map.entries.push((name.to_owned(), value.trim().to_owned()));
        }
        Ok(map)
    }
}

impl fmt::Debug for HeaderMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("HeaderMap");
        if let Some(s) = self.status {
            d.field("status", &s);
        }
        if let Some(s) = &self.description {
            d.field("description", s);
        }
        d.field("entries", &self.entries).finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for HeaderMap {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut map = HeaderMap::new();
        for (k, v) in iter {
            map.append(k, v);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut h = HeaderMap::new();
        h.append("Nats-Msg-Id", "abc")
            .append("X-Multi", "1")
            .append("X-Multi", "2");
        let mut buf = Vec::new();
        h.encode(&mut buf);
        assert_eq!(buf.len(), h.encoded_len());
        let parsed = HeaderMap::parse(&buf).unwrap();
        assert_eq!(parsed, h);
        assert_eq!(parsed.get("nats-msg-id"), Some("abc"));
        assert_eq!(parsed.get_all("X-Multi").collect::<Vec<_>>(), ["1", "2"]);
    }

    #[test]
    fn status_line() {
        let h = HeaderMap::parse(b"NATS/1.0 503\r\n\r\n").unwrap();
        assert_eq!(h.status(), Some(503));
        assert_eq!(h.description(), None);
        let h = HeaderMap::parse(b"NATS/1.0 100 Idle Heartbeat\r\nNats-Last-Consumer: 4\r\n\r\n")
            .unwrap();
        assert_eq!(h.status(), Some(100));
        assert_eq!(h.description(), Some("Idle Heartbeat"));
        assert_eq!(h.get("Nats-Last-Consumer"), Some("4"));
    }

    #[test]
    fn bad_blocks_are_errors() {
        assert!(HeaderMap::parse(b"HTTP/1.1 200\r\n\r\n").is_err());
        assert!(HeaderMap::parse(b"NATS/1.0 5x3\r\n\r\n").is_err());
        assert!(HeaderMap::parse(b"NATS/1.0\r\nno-colon\r\n\r\n").is_err());
        assert!(HeaderMap::parse(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn validation() {
        let mut h = HeaderMap::new();
        h.insert("Bad Name", "x");
        assert!(h.validate().is_err());
        let mut h = HeaderMap::new();
        h.insert("Good", "a\r\nPUB evil 0");
        assert!(h.validate().is_err());
    }
}
