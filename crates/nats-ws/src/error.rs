//! Errors, typed per operation. Messages are lowercase and say what to do next.

use crate::text;
use std::fmt;
use std::time::Duration;

use thiserror::Error;

/// Text from a user or the network in an error message: in double quotes, with quotes,
/// backslashes and control characters escaped as Rust writes them (`{:?}` of a `str` without
/// pulling `Debug`'s Unicode tables into the wasm).
pub(crate) struct Quoted<'a>(pub &'a str);

/// Longer texts are quoted by their start and end, with their length: an error about a subject
/// of 10 000 bytes is read on a screen, and a page showing it whole was 90 000 px wide.
const QUOTED_MAX: usize = 120;

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.0;
        if text.len() <= QUOTED_MAX {
            f.write_str("\"")?;
            escaped(f, text)?;
            return f.write_str("\"");
        }
        let head = (0..=80).rev().find(|&i| text.is_char_boundary(i));
        let tail = (text.len() - 24..text.len()).find(|&i| text.is_char_boundary(i));
        f.write_str("\"")?;
        escaped(f, text.get(..head.unwrap_or(0)).unwrap_or_default())?;
        f.write_str("…")?;
        escaped(
            f,
            text.get(tail.unwrap_or(text.len())..).unwrap_or_default(),
        )?;
        write!(f, "\" ({} bytes)", text.len())
    }
}

/// `text` with quotes, backslashes and control characters escaped.
fn escaped(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    let mut rest = text;
    while let Some(at) = rest.find(|c: char| c == '"' || c == '\\' || c.is_control()) {
        f.write_str(rest.get(..at).unwrap_or_default())?;
        let c = rest
            .get(at..)
            .and_then(|r| r.chars().next())
            .unwrap_or_default();
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\r' => f.write_str("\\r")?,
            '\t' => f.write_str("\\t")?,
            c => write!(f, "\\u{{{:x}}}", u32::from(c))?,
        }
        rest = rest.get(at + c.len_utf8()..).unwrap_or_default();
    }
    f.write_str(rest)
}

/// A timeout in an error message: `5s`, `250ms`, `1500ms`, `40µs` (without `Duration`'s `Debug`).
pub(crate) struct Took(pub Duration);

impl fmt::Display for Took {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        if d.subsec_nanos() == 0 {
            write!(f, "{}s", d.as_secs())
        } else if d.subsec_micros() % 1000 == 0 || d >= Duration::from_secs(1) {
            // Whole milliseconds in `u64`: a `u128` remainder would bring its division routines
            // into the wasm.
            let ms =
                (d.as_secs().saturating_mul(1000)).saturating_add(u64::from(d.subsec_millis()));
            write!(f, "{ms}ms")
        } else {
            write!(f, "{}µs", d.subsec_micros())
        }
    }
}

/// A subject, reply subject or queue group that the server would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid subject {}: {reason}", Quoted(subject))]
pub struct SubjectError {
    pub subject: String,
    pub reason: &'static str,
}

impl SubjectError {
    pub(crate) fn new(subject: &str, reason: &'static str) -> Self {
        SubjectError {
            subject: subject.to_owned(),
            reason,
        }
    }
}

/// A header block that cannot be encoded or was not understood.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum HeaderError {
    #[error("invalid header name {}: use printable ASCII without ':' or spaces", Quoted(.0))]
    InvalidName(String),
    #[error("invalid value for header {}: values cannot contain CR or LF", Quoted(.0))]
    InvalidValue(String),
    #[error("header block does not start with NATS/1.0 (got {})", Quoted(.0))]
    BadVersionLine(String),
}

/// Bytes from the server that are not the NATS protocol. The connection is dropped and re-established.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ParseError {
    #[error("unknown protocol operation starting with {}", Quoted(.0))]
    UnknownOp(String),
    #[error("malformed {op} line {}: {reason}", Quoted(line))]
    BadArgs {
        op: &'static str,
        line: String,
        reason: &'static str,
    },
    #[error("control line longer than {0} bytes")]
    LineTooLong(usize),
    #[error("a message of {size} bytes announced, more than the {max} accepted (the larger of 64 MiB and the server's max_payload)")]
    TooLarge { size: usize, max: usize },
    #[error("control line not terminated by CRLF: {}", Quoted(.0))]
    BadLineEnd(String),
    #[error("message payload not followed by CRLF")]
    BadPayloadEnd,
    #[error("invalid INFO json: {0}")]
    BadInfo(String),
}

/// Credentials that cannot be used: reported when they are given ([`crate::Auth::nkey`],
/// [`crate::Auth::credentials`]) or, for an authenticator, when it is asked at a (re)connect.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CredentialsError {
    #[error("the NKey seed is not valid ({0}): a user seed is 58 characters starting with SU")]
    InvalidSeed(String),
    #[error("this seed is not a user's (it does not start with SU): connect with a user's seed")]
    NotAUserSeed,
    #[error(
        "no user JWT in the credentials: a .creds file has a -----BEGIN NATS USER JWT----- block"
    )]
    NoJwt,
    #[error("no seed in the credentials: a .creds file has a -----BEGIN USER NKEY SEED----- block after the JWT")]
    NoSeed,
    #[error("could not read the credentials file {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("the authenticator failed: {0}")]
    Authenticator(String),
    /// The server's nonce could not be signed (in a browser: WebCrypto without Ed25519).
    #[error("could not sign the server's nonce: {0}")]
    Signing(String),
}

/// Why the connection to the server failed or was lost. Carried by [`crate::Status`] so a UI can show it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ConnectionError {
    #[error("could not connect to {url}: {detail}{}", transport_hint(url, detail))]
    Transport { url: String, detail: String },
    #[error("the connection to {url} was lost: {detail}")]
    Lost { url: String, detail: String },
    #[error(
        "{url} answered, but not with the NATS protocol ({detail}){}",
        transport_hint(url, "")
    )]
    NotNats { url: String, detail: String },
    #[error("protocol error from the server, reconnecting: {0}")]
    Protocol(ParseError),
    #[error("the server refused the credentials (authorization violation): check the user and password, the token, the NKey or the .creds (an expired JWT is refused too)")]
    AuthorizationViolation,
    /// The credentials could not be made (a bad seed, an unreadable `.creds` file, a failing
    /// authenticator): nothing was sent.
    #[error("could not authenticate: {0}")]
    Credentials(CredentialsError),
    #[error("the server closed the connection: {0}")]
    Server(String),
    /// The server closed the connection at its `CONNECT`: the line (the connection name and the
    /// credentials, as JSON: `size` bytes) is longer than the server's `max_control_line`. Given
    /// up after the same server refused it twice, as for [`ConnectionError::AuthorizationViolation`].
    #[error("the server refused this client's CONNECT line ({size} bytes: the connection name and the credentials) as longer than its max_control_line (4096 bytes unless configured): use a shorter connection name, or raise max_control_line in the server's configuration")]
    ConnectTooLong { size: usize },
    #[error("nothing received from the server for {}: the connection was stale", Took(*.0))]
    Stale(Duration),
    #[error(
        "no answer from {url} within {} while connecting{}",
        Took(*after),
        timeout_hint(url)
    )]
    Timeout { url: String, after: Duration },
    #[error("{url} requires TLS, which this client speaks only over WebSocket: connect to the server's websocket port with wss://")]
    TlsRequired { url: String },
    #[error("invalid server url {}: {reason}", Quoted(url))]
    InvalidUrl { url: String, reason: String },
    #[error("no server urls configured")]
    NoServers,
    #[error("the client was closed")]
    Closed,
    #[error("drain gave up after {} waiting for the server (what was draining has ended)", Took(*.0))]
    DrainTimeout(Duration),
}

/// Sent by the drivers when the server answered the WebSocket upgrade with something that is not HTTP.
pub(crate) const NOT_HTTP: &str = "the server answered with something that is not HTTP";

fn transport_hint(url: &str, detail: &str) -> &'static str {
    if url.starts_with("nats://") {
        return "; is nats-server running, and is this its client port (4222 by default, `port:` in \
                the server's configuration)?";
    }
    let port = text::split(url, "://")
        .nth(1)
        .and_then(|rest| rest.split(['/', '?']).next())
        .and_then(|authority| authority.rsplit_once(':'))
        .map(|(_, port)| port);
    if port == Some("4222") || detail.starts_with(NOT_HTTP) {
        "; this looks like the NATS client (TCP) port, 4222 by default: connect to the websocket port \
         instead, the one set by `websocket { port: ... }` in the server's configuration"
    } else {
        "; is nats-server running with websocket enabled, and is this its websocket port (not the \
         client port)?"
    }
}

/// A websocket listener waits for an HTTP upgrade and says nothing to a plain TCP client, which
/// therefore times out waiting for INFO.
fn timeout_hint(url: &str) -> &'static str {
    if url.starts_with("nats://") {
        ": a nats:// url needs the server's client port (4222 by default); a websocket port stays \
         silent to it"
    } else {
        ""
    }
}

/// Why a publish was refused. Nothing was sent; the connection is unaffected.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PublishError {
    #[error(transparent)]
    InvalidSubject(SubjectError),
    #[error("invalid reply subject: {0}")]
    InvalidReply(SubjectError),
    #[error(transparent)]
    InvalidHeader(#[from] HeaderError),
    #[error("message is {size} bytes (headers + payload) but the server accepts at most {max} (max_payload): send less, or raise max_payload in nats-server.conf")]
    MaxPayloadExceeded { size: usize, max: usize },
    #[error("the subject is too long: with its reply subject (if any) and sizes the command would be {size} bytes, and the server closes a connection that sends one over {max} (max_control_line): use a shorter subject")]
    SubjectTooLong { size: usize, max: usize },
    #[error("not connected and the reconnect buffer ({limit} bytes) cannot hold this message: retry once the connection is back")]
    BufferFull { limit: usize },
    #[error("{waiting} bytes are already waiting to be written to the server (at most {limit}): it is not reading them, or they were published faster than the connection takes them; retry later")]
    BacklogFull { waiting: usize, limit: usize },
    #[error("the client is closed")]
    Closed,
}

/// Why a subscription was refused or ended.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SubscribeError {
    #[error(transparent)]
    InvalidSubject(SubjectError),
    #[error("invalid queue group: {0}")]
    InvalidQueueGroup(SubjectError),
    #[error("the subject is too long: the command (with its queue group, if any) would be {size} bytes, and the server closes a connection that sends one over {max} (max_control_line): use a shorter subject")]
    SubjectTooLong { size: usize, max: usize },
    #[error("permission denied: this user may not subscribe to {} (check the user's permissions in the server config)", Quoted(subject))]
    PermissionDenied { subject: String },
    #[error("the client is closed")]
    Closed,
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RequestError {
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("no reply on {} within {}: is a responder running?", Quoted(subject), Took(*after))]
    TimedOut { subject: String, after: Duration },
    #[error("no responders: nobody is subscribed to {}", Quoted(subject))]
    NoResponders { subject: String },
    #[error("permission denied: this user may not {action} {}", Quoted(subject))]
    PermissionDenied {
        action: &'static str,
        subject: String,
    },
    /// Refused before sending: requests are not buffered while disconnected (the reply could not
    /// find its way back, and a pile of them would go out at once on reconnect).
    #[error(
        "not connected to the server: {} was not sent; retry once connected",
        Quoted(subject)
    )]
    NotConnected { subject: String },
    /// Sent, but the connection was lost before the reply came: it may or may not have been processed.
    #[error("the connection was lost before a reply on {} arrived: it may or may not have been processed", Quoted(subject))]
    ConnectionLost { subject: String },
    #[error("the client was closed before a reply arrived")]
    Closed,
}

impl RequestError {
    /// Worth retrying once the connection is back: nothing says the request itself is wrong.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            RequestError::TimedOut { .. }
                | RequestError::NotConnected { .. }
                | RequestError::ConnectionLost { .. }
                | RequestError::Publish(PublishError::BufferFull { .. })
                | RequestError::Publish(PublishError::BacklogFull { .. })
        )
    }
}

/// A non-fatal error the server reported (`-ERR`) that belongs to no subscription or request, such as
/// publishing to a subject the user may not publish to. The connection stays up.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("permission denied: this user may not publish to {}", Quoted(subject))]
    PublishDenied { subject: String },
    #[error("the server reported: {0}")]
    Other(String),
    #[error("a message's header block could not be read; it was delivered without headers: {0}")]
    BadMessage(HeaderError),
    #[error("a message on {} had a subject or reply subject that is not UTF-8; it is passed on with U+FFFD for the bytes that are not", Quoted(subject))]
    NotUtf8 { subject: String },
}

/// The client was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("the client is closed")]
pub struct ClosedError;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_port_hint() {
        let e = ConnectionError::Transport {
            url: "ws://127.0.0.1:4222".into(),
            detail: "handshake failed".into(),
        };
        assert!(e.to_string().contains("websocket port"), "{e}");
        let e = ConnectionError::Transport {
            url: "ws://127.0.0.1:8080/path".into(),
            detail: "connection refused".into(),
        };
        assert!(e.to_string().contains("websocket enabled"), "{e}");
        // The port is read between the first "://" and the next one.
        for url in [
            "ws://127.0.0.1:4222?x=1",
            "ws://h:4222://x",
            "wss://h:4222/a://b",
        ] {
            assert!(
                transport_hint(url, "").contains("client (TCP) port"),
                "{url}"
            );
        }
        assert!(transport_hint("ws://h://4222", "").contains("websocket enabled"));
        let e = ConnectionError::Transport {
            url: "nats://127.0.0.1:4223".into(),
            detail: "connection refused".into(),
        };
        assert!(e.to_string().contains("client port"), "{e}");
        let e = ConnectionError::Timeout {
            url: "nats://127.0.0.1:8080".into(),
            after: std::time::Duration::from_secs(2),
        };
        assert!(e.to_string().contains("websocket port stays silent"), "{e}");
    }

    #[test]
    fn quoted_text_reads_as_rusts_debug_of_a_str() {
        for text in [
            "",
            "orders.new",
            "say \"hi\"",
            r"back\slash",
            "line\r\nend\ttab",
            "bell\u{7} del\u{7f} c1\u{85}",
            "grüße, 注文 🎉",
        ] {
            assert_eq!(Quoted(text).to_string(), format!("{text:?}"));
        }
    }

    #[test]
    fn long_text_is_quoted_by_its_ends_and_length() {
        let exact = "a".repeat(QUOTED_MAX);
        assert_eq!(Quoted(&exact).to_string(), format!("{exact:?}"));
        let long = format!("{}{}{}", "a".repeat(79), "ü".repeat(5000), "z\n".repeat(12));
        let shown = Quoted(&long).to_string();
        assert_eq!(
            shown,
            format!(
                // The head ends at a character's start: the "ü" across byte 80 is left out.
                "\"{}…{}\" ({} bytes)",
                "a".repeat(79),
                "z\\n".repeat(12),
                long.len()
            )
        );
        assert!(shown.chars().count() < 160, "{shown}");
    }

    #[test]
    fn timeouts_read_in_whole_units() {
        let cases = [
            (Duration::from_secs(5), "5s"),
            (Duration::from_millis(250), "250ms"),
            (Duration::from_millis(1500), "1500ms"),
            (Duration::from_micros(40), "40µs"),
            (Duration::ZERO, "0s"),
        ];
        for (d, want) in cases {
            assert_eq!(Took(d).to_string(), want);
        }
        let timed_out = RequestError::TimedOut {
            subject: "math.sum".into(),
            after: Duration::from_secs(2),
        };
        assert_eq!(
            timed_out.to_string(),
            "no reply on \"math.sum\" within 2s: is a responder running?"
        );
    }
}
