//! Connection options and their defaults.

use std::time::Duration;

use crate::auth::Auth;

/// When to try again after the connection failed or was lost.
///
/// The wait before attempt `n` (0-based) is `min(initial_delay × factor^n, max_delay)` plus a random
/// jitter in `0..=jitter`. After `max_attempts` failed attempts in a row the client goes offline until
/// `reconnect_now()`. Attempts rotate over the server urls.
#[derive(Debug, Clone, PartialEq)]
pub struct ReconnectPolicy {
    /// Default 2 s.
    pub initial_delay: Duration,
    /// Default 1.5.
    pub factor: f64,
    /// Default 30 s.
    pub max_delay: Duration,
    /// Default `Some(10)`; `None` retries forever.
    pub max_attempts: Option<u32>,
    /// Default 100 ms.
    pub jitter: Duration,
}

impl Default for ReconnectPolicy {
    fn default() -> Self {
        ReconnectPolicy {
            initial_delay: Duration::from_secs(2),
            factor: 1.5,
            max_delay: Duration::from_secs(30),
            max_attempts: Some(10),
            jitter: Duration::from_millis(100),
        }
    }
}

impl ReconnectPolicy {
    /// The wait before attempt `attempt` (0-based), without jitter.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = i32::try_from(attempt).unwrap_or(i32::MAX);
        let secs = self.initial_delay.as_secs_f64() * self.factor.powi(exp);
        if !secs.is_finite() || secs >= self.max_delay.as_secs_f64() {
            self.max_delay
        } else {
            Duration::from_secs_f64(secs)
        }
    }
}

/// Everything that shapes a connection. Build with [`Options::new`] and the `with_*` methods.
#[derive(Debug, Clone)]
pub struct Options {
    /// Server urls, tried in rotation; at least one. WebSocket (`ws://host:port` or `wss://…`, the
    /// server's websocket port) everywhere; natively also `nats://host:port`, plain TCP to the
    /// server's client port (4222 by default).
    pub servers: Vec<String>,
    /// Shown by the server's monitoring (`/connz`). Default none.
    pub name: Option<String>,
    pub auth: Auth,
    /// Receive the messages this connection publishes, when also subscribed. Default true.
    pub echo: bool,
    /// A PING is sent this often. Default 30 s.
    pub ping_interval: Duration,
    /// The connection is stale, and replaced, when a PING is due while this many keepalive PINGs
    /// are still unanswered (a dead link is noticed within `ping_interval × (max_pings_out + 1)`).
    /// Counting PINGs, not time, means a late timer (a throttled background tab) never declares a
    /// healthy connection stale. Default 2.
    pub max_pings_out: u32,
    /// An attempt fails when the handshake has not completed within this time. Default 5 s.
    pub connect_timeout: Duration,
    pub reconnect: ReconnectPolicy,
    /// Publishes made while disconnected wait in a buffer of at most this many bytes, flushed in order
    /// after the next handshake. 0 refuses publishes while disconnected. Default 8 MiB.
    pub reconnect_buffer_size: usize,
    /// Buffered publishes older than this when the connection comes back are dropped, not sent
    /// (reported as [`crate::ClientEvent::BufferedExpired`]): a message meant for now should not
    /// arrive an hour later. `None` keeps them however long the outage. Default 2 min.
    pub reconnect_buffer_max_age: Option<Duration>,
    /// Do not add the servers a cluster advertises (INFO `connect_urls`) to the pool: only the
    /// configured urls are tried (e.g. behind a proxy whose clients cannot reach the nodes).
    /// Default false.
    pub ignore_discovered_servers: bool,
    /// A subscription holds at most this many messages that the application has not read yet;
    /// beyond it (or [`Options::pending_bytes_limit`]) messages are dropped and counted, and a
    /// [`crate::ClientEvent::SlowConsumer`] is reported, so memory stays bounded. Default 65 536
    /// (nats.go: 524 288; a browser tab has less memory to spare).
    pub pending_msgs_limit: usize,
    /// Bytes of payload a subscription holds unread at most. Default 64 MiB (as nats.go).
    pub pending_bytes_limit: usize,
    /// Default timeout of requests. Default 5 s.
    pub request_timeout: Duration,
    /// Prefix of reply subjects. Default `_INBOX`.
    pub inbox_prefix: String,
    /// The longest command line the server takes (a publish's subjects and sizes, a
    /// subscription's subject and queue group): nats-server closes a connection that sends a
    /// longer one, and does not say its limit in INFO. A publish or subscription that would need
    /// a longer line is refused before anything is sent. Default 4096, nats-server's
    /// `max_control_line` (0 reads as that too); set it to the server's if that was raised.
    pub max_control_line: usize,
}

impl Options {
    /// One server, or several separated by commas (`"nats://a:4222,nats://b:4222"`, as nats.go's
    /// `Connect` and async-nats take them), tried in rotation: a client can then start while the
    /// first is down.
    pub fn new(server: impl Into<String>) -> Self {
        let server = server.into();
        let servers = match server.contains(',') {
            false => vec![server],
            true => server
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        Options {
            servers,
            name: None,
            auth: Auth::None,
            echo: true,
            ping_interval: Duration::from_secs(30),
            max_pings_out: 2,
            connect_timeout: Duration::from_secs(5),
            reconnect: ReconnectPolicy::default(),
            reconnect_buffer_size: 8 * 1024 * 1024,
            reconnect_buffer_max_age: Some(Duration::from_secs(120)),
            ignore_discovered_servers: false,
            pending_msgs_limit: 65_536,
            pending_bytes_limit: 64 * 1024 * 1024,
            request_timeout: Duration::from_secs(5),
            inbox_prefix: "_INBOX".to_owned(),
            max_control_line: 4096,
        }
    }

    /// Several servers, tried in rotation.
    pub fn with_servers<I, S>(servers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut opts = Options::new(String::new());
        opts.servers = servers.into_iter().map(Into::into).collect();
        opts
    }

    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    pub fn user_password(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Auth::UserPassword {
            user: user.into(),
            password: password.into(),
        };
        self
    }

    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Token(token.into());
        self
    }

    /// Any [`Auth`]: an NKey, a `.creds` file's JWT, an authenticator.
    pub fn auth(mut self, auth: Auth) -> Self {
        self.auth = auth;
        self
    }

    pub fn echo(mut self, echo: bool) -> Self {
        self.echo = echo;
        self
    }

    pub fn ping_interval(mut self, interval: Duration) -> Self {
        self.ping_interval = interval;
        self
    }

    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    pub fn reconnect(mut self, policy: ReconnectPolicy) -> Self {
        self.reconnect = policy;
        self
    }

    pub fn reconnect_buffer_size(mut self, bytes: usize) -> Self {
        self.reconnect_buffer_size = bytes;
        self
    }

    pub fn reconnect_buffer_max_age(mut self, max_age: Option<Duration>) -> Self {
        self.reconnect_buffer_max_age = max_age;
        self
    }

    pub fn ignore_discovered_servers(mut self, ignore: bool) -> Self {
        self.ignore_discovered_servers = ignore;
        self
    }

    /// Default limits of every subscription's unread messages (see [`Options::pending_msgs_limit`]).
    pub fn pending_limits(mut self, messages: usize, bytes: usize) -> Self {
        self.pending_msgs_limit = messages;
        self.pending_bytes_limit = bytes;
        self
    }

    pub fn max_pings_out(mut self, max: u32) -> Self {
        self.max_pings_out = max;
        self
    }

    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    pub fn inbox_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.inbox_prefix = prefix.into();
        self
    }

    /// See [`Options::max_control_line`].
    pub fn max_control_line(mut self, bytes: usize) -> Self {
        self.max_control_line = bytes;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comma_separated_url_is_several_servers() {
        let o = Options::new("nats://a:4222, nats://b:4222,,nats://c:4222 ");
        assert_eq!(
            o.servers,
            ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
        );
        assert_eq!(Options::new("ws://a:8080").servers, ["ws://a:8080"]);
    }

    #[test]
    fn backoff_schedule() {
        let p = ReconnectPolicy::default();
        let secs: Vec<f64> = (0..10).map(|n| p.delay(n).as_secs_f64()).collect();
        let expected = [
            2.0, 3.0, 4.5, 6.75, 10.125, 15.1875, 22.78125, 30.0, 30.0, 30.0,
        ];
        for (got, want) in secs.iter().zip(expected) {
            assert!((got - want).abs() < 1e-9, "{secs:?}");
        }
        assert_eq!(p.delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn debug_redacts_credentials() {
        let o = Options::new("ws://x").user_password("alice", "s3cret");
        let shown = format!("{o:?}");
        assert!(
            shown.contains("alice") && !shown.contains("s3cret"),
            "{shown}"
        );
        let o = Options::new("ws://x").token("t0ken");
        assert!(!format!("{o:?}").contains("t0ken"));
        #[cfg(feature = "nkeys")]
        {
            let seed = nkeys::KeyPair::new_from_raw(nkeys::KeyPairType::User, [3u8; 32])
                .unwrap()
                .seed()
                .unwrap();
            let o = Options::new("ws://x").auth(Auth::nkey(&seed).unwrap());
            assert!(!format!("{o:?}").contains(&seed[2..]));
            let o = Options::new("ws://x").auth(Auth::Jwt {
                jwt: "eyJ.claims.sig".into(),
                seed: seed.clone(),
            });
            let shown = format!("{o:?}");
            assert!(
                !shown.contains(&seed[2..]) && !shown.contains("claims"),
                "{shown}"
            );
        }
    }
}
