//! What the two programs share: the arguments that shape a deployment ([`Common`]), the
//! connection they open, and the counting allocator `via-worker` reports its memory with.
//! Thin on purpose: the rules, the loop and the publisher live in `via-workers`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lexopt::ValueExt;
use via_workers::Settings;

pub mod alloc;

/// Where the server is when neither `--url` nor `VIA_NATS_URL` says.
pub const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

/// The url and the settings every program of one deployment must agree on.
#[derive(Debug, Clone)]
pub struct Common {
    pub url: String,
    pub settings: Settings,
}

impl Default for Common {
    fn default() -> Self {
        Common {
            url: std::env::var("VIA_NATS_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| DEFAULT_URL.to_owned()),
            settings: Settings::default(),
        }
    }
}

impl Common {
    /// Takes the long option `name` if it is one of the shared ones (`--url`, `--partitions`,
    /// `--prefix`, `--stream`); `Ok(false)` leaves it to the program.
    pub fn take(&mut self, name: &str, parser: &mut lexopt::Parser) -> Result<bool, lexopt::Error> {
        match name {
            "url" => self.url = text(parser)?,
            "partitions" => self.settings.partitions = number(parser)?,
            "prefix" => self.settings.prefix = text(parser)?,
            "stream" => self.settings.stream = text(parser)?,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The connection, signed in as `user` (see `via_credentials`): retried forever at a short
    /// pace, so a program started before the server (or across a restart) simply waits for it.
    pub fn options(&self, name: &str, user: &str) -> Result<nats_ws::Options, String> {
        let options = nats_ws::Options::new(self.url.clone())
            .name(name)
            .reconnect(nats_ws::ReconnectPolicy {
                initial_delay: Duration::from_millis(100),
                factor: 1.5,
                max_delay: Duration::from_secs(1),
                max_attempts: None,
                jitter: Duration::from_millis(100),
            });
        via_credentials::sign_in(options, user)
    }
}

/// The value of the current option, as text.
pub fn text(parser: &mut lexopt::Parser) -> Result<String, lexopt::Error> {
    parser.value()?.string()
}

/// The value of the current option, as a number.
pub fn number<T>(parser: &mut lexopt::Parser) -> Result<T, lexopt::Error>
where
    T: std::str::FromStr,
    T::Err: Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
{
    parser.value()?.parse()
}

/// The value of the current option, in milliseconds.
pub fn millis(parser: &mut lexopt::Parser) -> Result<Duration, lexopt::Error> {
    number::<u64>(parser).map(Duration::from_millis)
}

/// True if `id` can be a worker id: a KV key and a subject token.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// This machine's name, as the kernel has it (empty if it cannot be read).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// A fresh run id for the publisher: 8 hex digits from the clock and a counter, enough to tell
/// runs apart (the ids only have to be unique within the stream's duplicate window).
pub fn run_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    let mixed = nanos
        ^ u64::from(std::process::id()).rotate_left(32)
        ^ COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("run-{:08x}", (mixed ^ (mixed >> 32)) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_keys_and_subject_tokens() {
        assert!(valid_id("proc-0a1b2c3d"));
        assert!(valid_id("w_1"));
        assert!(!valid_id(""));
        assert!(!valid_id("a.b"));
        assert!(!valid_id("a b"));
        assert!(!valid_id("a*"));
        assert!(!valid_id(&"x".repeat(65)));
    }

    #[test]
    fn run_ids_differ() {
        assert_ne!(run_id(), run_id());
    }

    #[test]
    fn shared_options_are_taken_and_others_left() {
        let mut common = Common::default();
        let mut parser =
            lexopt::Parser::from_args(["--partitions", "4", "--prefix", "t", "--count", "3"]);
        let mut left = Vec::new();
        while let Some(arg) = parser.next().expect("arguments") {
            let lexopt::Arg::Long(name) = arg else {
                panic!("only long options here");
            };
            let name = name.to_owned();
            if !common.take(&name, &mut parser).expect("values") {
                left.push(name);
                let _ = parser.value();
            }
        }
        assert_eq!(common.settings.partitions, 4);
        assert_eq!(common.settings.prefix, "t");
        assert_eq!(left, vec!["count".to_owned()]);
    }
}
