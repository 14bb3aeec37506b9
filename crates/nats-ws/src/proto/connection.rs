//! The connection state machine: everything a NATS client decides, with no I/O and no clock.
//!
//! # Driving it
//!
//! A driver owns one [`Connection`] and a socket, and loops:
//!
//! 1. [`poll_transmit`](Connection::poll_transmit) until `None`, acting on each [`Transmit`] in order:
//!    open a WebSocket to a url, send bytes (each `Data` one frame of at most [`MAX_FRAME`] bytes;
//!    an operation may span frames), or close the socket.
//! 2. [`poll_event`](Connection::poll_event) until `None`: deliver messages, replies, status changes.
//! 3. Wait for whichever comes first: bytes from the socket ([`handle_input`](Connection::handle_input)),
//!    the socket closing or failing to open ([`handle_disconnected`](Connection::handle_disconnected)),
//!    the deadline from [`poll_timeout`](Connection::poll_timeout) ([`handle_timeout`](Connection::handle_timeout)),
//!    or a call from the application (publish, subscribe, …). Then back to 1.
//!
//! Every function that needs the time takes `now`; the machine never reads a clock, so tests can
//! step a fake one.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use web_time::Instant;

use super::dedup::{Dedup, DEFAULT_CAPACITY};
use super::encode::ClientOp;
use super::id_map::IdMap;
use super::info::{ConnectInfo, ServerInfo};
use super::parser::{Parser, ServerOp};
#[cfg(feature = "nkeys")]
pub use crate::auth::Signed;
use crate::auth::{connect_credentials, ConnectCredentials, Resolved};
use crate::error::{
    ClosedError, ConnectionError, PublishError, RequestError, ServerError, SubscribeError,
};
use crate::header::{status, HeaderMap};
use crate::message::Message;
use crate::options::Options;
use crate::subject::{validate_publish_subject, validate_queue_group, validate_subscribe_subject};
use crate::text;

/// Publishes are refused while more than this waits to be written to the server: one that is not
/// reading it, or a burst published faster than the connection takes it (nats.go's publishers
/// block on the socket instead; a browser's WebSocket takes everything its page hands it, so there
/// only a burst within one task counts). nats-server's own bound for a client it writes to, the
/// other way.
pub const MAX_UNWRITTEN: usize = 64 * 1024 * 1024;

/// The server's default `max_payload`, assumed until the first `INFO` says otherwise.
const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;
/// After a wake-up (tab visible again, browser back online) a connection that has been quiet this
/// long is probed with a PING.
const WAKE_PROBE_QUIET: Duration = Duration::from_secs(5);
/// The largest WebSocket frame handed to the driver. nats-server 2.15 with WebSocket compression
/// refuses a frame whose decompressed size exceeds `max_payload` and closes the connection; small
/// frames also keep one huge buffer (after a reconnect) from blocking the socket for long.
pub const MAX_FRAME: usize = 64 * 1024;
/// The server pool never grows beyond this many urls, whatever a server advertises.
const MAX_SERVERS: usize = 64;
/// Buffered publishes made within this long of each other share one age mark (so an 8 MiB buffer
/// of tiny publishes does not carry a mark each); they may expire this much early.
const MARK_GRANULARITY: Duration = Duration::from_millis(250);

/// What the driver must do with the socket (and, with the `nkeys` feature, a nonce to sign: a
/// driver must answer [`Transmit::Sign`], or every NKey / JWT handshake times out).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Transmit {
    /// Open a WebSocket to this url (replacing any previous socket).
    Connect { url: String },
    /// Send these bytes as one binary frame (at most [`MAX_FRAME`] bytes; an operation may span
    /// frames, which the server joins again).
    Data(Bytes),
    /// Close the socket.
    Close,
    /// Sign the server's nonce with an NKey or JWT user's seed and hand the result to
    /// [`Connection::handle_signed`] (the handshake waits for it, within `connect_timeout`).
    #[cfg(feature = "nkeys")]
    Sign(SignRequest),
}

/// A nonce to sign for the handshake (see [`Transmit::Sign`]).
#[cfg(feature = "nkeys")]
#[derive(Clone, PartialEq, Eq)]
pub struct SignRequest {
    /// The user's 32-byte ed25519 seed, read (and checked) from its `SU…` text.
    pub seed: [u8; 32],
    pub nonce: String,
    /// Which handshake asked: an answer for an earlier one is ignored.
    pub handshake: u64,
}

#[cfg(feature = "nkeys")]
impl SignRequest {
    /// Signs at once with the `nkeys` crate (what the native driver does).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn sign(&self) -> Result<Signed, String> {
        crate::auth::nkey::sign(&self.seed, &self.nonce)
    }
}

// The seed never reaches logs.
#[cfg(feature = "nkeys")]
impl std::fmt::Debug for SignRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignRequest")
            .field("nonce", &self.nonce)
            .field("handshake", &self.handshake)
            .finish_non_exhaustive()
    }
}

/// The connection as an application sees it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Status {
    /// The first attempt is under way.
    Connecting,
    /// Handshake complete; `rtt` is the handshake's round trip. Later measurements (keepalive PINGs)
    /// are in [`Connection::rtt`] and do not change the status, so status watchers wake only when
    /// the connection really changes.
    Connected {
        url: String,
        server_name: String,
        version: String,
        rtt: Duration,
    },
    /// Waiting for, or making, reconnect attempt `attempt` (1-based), due at `retry_at`.
    Reconnecting {
        attempt: u32,
        retry_at: Instant,
        last_error: Option<ConnectionError>,
    },
    /// Every attempt failed; nothing more is tried until `reconnect_now`.
    Offline { last_error: ConnectionError },
    /// Closed by the application.
    Closed,
}

impl Status {
    pub fn is_connected(&self) -> bool {
        matches!(self, Status::Connected { .. })
    }
}

/// Something that happened, for the application.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    Status(Status),
    Message {
        sid: u64,
        message: Message,
    },
    /// The subscription ended: it reached its message limit or was drained (`error: None`), the
    /// server refused it, or the client closed.
    SubscriptionClosed {
        sid: u64,
        error: Option<SubscribeError>,
    },
    /// A request's answer. Requests failed together (the connection lost or closed) come in no
    /// particular order.
    Response {
        id: u64,
        result: Result<Message, RequestError>,
    },
    Flushed {
        id: u64,
        result: Result<(), ConnectionError>,
    },
    /// A non-fatal `-ERR` that belongs to no subscription or request.
    ServerError(ServerError),
    /// The server is in lame-duck mode: it will close this connection soon.
    LameDuck,
    /// A server of the cluster left it: this server's `INFO` no longer lists one it listed
    /// before on this connection (`connect_urls`): it died, restarted, lost its route, or is in
    /// lame-duck mode. What that server alone hosted, such as a consumer with one replica, may
    /// be gone, and nothing else says so at once. (Servers a cluster does not advertise —
    /// `no_advertise` — are never listed, so never said to leave.)
    ServerLeft,
    /// Publishes buffered while disconnected were older than `Options::reconnect_buffer_max_age`
    /// when the connection came back (or the buffer was needed): they were dropped, not sent.
    BufferedExpired {
        messages: usize,
        bytes: usize,
    },
}

/// Per-subscription options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubscribeOptions {
    /// Join this queue group: each message goes to one member of the group.
    pub queue_group: Option<String>,
    /// Unsubscribe automatically after this many messages.
    pub max_messages: Option<u64>,
    /// Skip a message seen within this window: same `Nats-Msg-Id` header when it has one, same
    /// subject and payload otherwise.
    pub dedup_window: Option<Duration>,
    /// Unread messages this subscription may hold before it drops; default
    /// [`crate::Options::pending_msgs_limit`]. Enforced by the [`crate::Client`].
    pub pending_msgs_limit: Option<usize>,
    /// Unread payload bytes this subscription may hold; default [`crate::Options::pending_bytes_limit`].
    pub pending_bytes_limit: Option<usize>,
}

impl SubscribeOptions {
    pub fn queue_group(mut self, group: impl Into<String>) -> Self {
        self.queue_group = Some(group.into());
        self
    }

    pub fn max_messages(mut self, max: u64) -> Self {
        self.max_messages = Some(max);
        self
    }

    /// Limits of unread messages and bytes, beyond which messages are dropped and counted.
    pub fn pending_limits(mut self, messages: usize, bytes: usize) -> Self {
        self.pending_msgs_limit = Some(messages);
        self.pending_bytes_limit = Some(bytes);
        self
    }

    /// Fingerprint dedup with the given window (the app uses 2 s, [`super::dedup::DEFAULT_WINDOW`]).
    pub fn dedup(mut self, window: Duration) -> Self {
        self.dedup_window = Some(window);
        self
    }
}

#[derive(Debug)]
struct Subscription {
    subject: String,
    queue_group: Option<String>,
    max: Option<u64>,
    /// Messages received over the lifetime of the subscription (across reconnects).
    received: u64,
    /// Messages received since the SUB was last sent (the server's own count).
    received_on_this_connection: u64,
    dedup: Option<Dedup>,
    /// UNSUB sent by [`Connection::drain_subscription`]: still delivering until its PONG.
    draining: bool,
}

/// Subscriptions by sid (boxed: the list moves small entries, not whole subscriptions).
type Subs = IdMap<Box<Subscription>>;

#[derive(Debug)]
struct PendingRequest {
    subject: String,
    timeout: Duration,
}

#[derive(Debug)]
enum PongWaiter {
    Keepalive(Instant),
    Flush(u64),
    /// The PONG after a draining subscription's UNSUB: the server has processed it.
    Drain(u64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handshake {
    AwaitInfo,
    /// `CONNECT` waits for the driver to sign the nonce ([`Transmit::Sign`]).
    #[cfg(feature = "nkeys")]
    Signing,
    AwaitPong {
        ping_sent: Instant,
    },
}

#[derive(Debug)]
enum State {
    /// `attempt`: index of the reconnect attempt in the backoff schedule, `None` for a first attempt.
    Connecting {
        server: usize,
        deadline: Instant,
        handshake: Handshake,
        attempt: Option<u32>,
        received_any: bool,
    },
    Connected {
        server: usize,
        next_ping: Instant,
        probe_deadline: Option<Instant>,
    },
    Waiting {
        until: Instant,
        attempt: u32,
    },
    Offline,
    Closed,
}

#[derive(Debug)]
struct ServerUrl {
    url: String,
    /// Learned from the server's `connect_urls`, not configured: dropped when it leaves the cluster.
    discovered: bool,
    /// When an attempt on it last started: a server is only tried again at once after
    /// `initial_delay` (as nats.js throttles each server), so servers that accept and then drop
    /// the connection cannot make the client hop between them without a pause.
    last_attempt: Option<Instant>,
    /// Refusals of this client's `CONNECT` by this server (an authorization error, a line over
    /// its `max_control_line`) since the client last connected to it. At [`REFUSALS`] the client
    /// gives up (Offline), as nats.go does when a server's last error was that same authorization
    /// refusal: counted per server, so one node of a cluster refusing once does not stop the
    /// others being tried.
    refusals: u8,
}

/// See [`ServerUrl::refusals`].
const REFUSALS: u8 = 2;

/// The sans-IO NATS client connection. See the [module docs](self) for the call order.
#[derive(Debug)]
pub struct Connection {
    options: Options,
    rng: fastrand::Rng,
    servers: Vec<ServerUrl>,
    next_server: usize,
    state: State,
    status: Status,
    last_error: Option<ConnectionError>,
    parser: Parser,
    info: Option<ServerInfo>,
    /// The servers the last non-empty `connect_urls` of this connection listed (for
    /// [`Event::ServerLeft`]).
    listed: Vec<String>,
    /// The length of the last `CONNECT`'s arguments, for [`ConnectionError::ConnectTooLong`].
    connect_len: usize,
    /// Bytes for the current socket, handed out by `poll_transmit`.
    out: BytesMut,
    /// Publishes made while not connected, sent after the next handshake.
    pending: BytesMut,
    /// Bytes the driver holds for a socket that has not taken them yet ([`Connection::set_unwritten`]).
    unwritten: usize,
    /// Buffered publishes by age, oldest first: when the first of a group was made, where the
    /// group ends in `pending`, how many publishes it holds.
    pending_marks: VecDeque<(Instant, usize, usize)>,
    /// Servers tried since the last backoff wait: moving on to one not yet tried needs no wait.
    tried_since_wait: usize,
    /// Round trip of the last keepalive (or of the handshake).
    rtt: Option<Duration>,
    /// Draining: subscriptions were unsubscribed, messages still arrive until the drain's PONG.
    draining: bool,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    last_received: Instant,
    pongs: VecDeque<PongWaiter>,
    deferred_flushes: Vec<u64>,
    next_flush: u64,
    subs: Subs,
    next_sid: u64,
    inbox_prefix: String,
    inbox_sid: Option<u64>,
    requests: IdMap<PendingRequest>,
    /// Request deadlines, earliest first. An answered request's entry stays where it is (a heap
    /// cannot take one out of its middle) and goes when it comes to the top, so the top is always
    /// a pending request's; the heap is rebuilt when dead entries outnumber the live ones.
    deadlines: BinaryHeap<Reverse<(Instant, u64)>>,
    next_request: u64,
    /// The handshake waiting for its signature: its number, and what `CONNECT` carries besides.
    #[cfg(feature = "nkeys")]
    signing: Option<(u64, ConnectCredentials, bool)>,
    #[cfg(feature = "nkeys")]
    handshakes: u64,
}

impl Connection {
    /// A connection that starts its first attempt at once. `seed` feeds the jitter and the inbox
    /// name; drivers pass a random one, tests a fixed one.
    pub fn new(options: Options, now: Instant, seed: u64) -> Result<Self, ConnectionError> {
        if options.servers.is_empty() {
            return Err(ConnectionError::NoServers);
        }
        let servers = options
            .servers
            .iter()
            .map(|u| {
                normalize_url(u).map(|url| ServerUrl {
                    url,
                    discovered: false,
                    last_attempt: None,
                    refusals: 0,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut rng = fastrand::Rng::with_seed(seed);
        let token: String = (0..22).map(|_| rng.alphanumeric()).collect();
        let inbox_prefix = format!("{}.{token}.", options.inbox_prefix);
        validate_publish_subject(&format!("{inbox_prefix}x")).map_err(|e| {
            ConnectionError::InvalidUrl {
                url: options.inbox_prefix.clone(),
                reason: format!("inbox prefix: {e}"),
            }
        })?;
        // Every request's reply subject and the inbox's SUB carry it: room for the rest.
        if options.inbox_prefix.len() > MAX_INBOX_PREFIX {
            return Err(ConnectionError::InvalidUrl {
                url: options.inbox_prefix.clone(),
                reason: format!("inbox prefix: longer than {MAX_INBOX_PREFIX} bytes"),
            });
        }
        let mut conn = Connection {
            options,
            rng,
            servers,
            next_server: 0,
            state: State::Offline,
            status: Status::Connecting,
            last_error: None,
            parser: Parser::new(),
            info: None,
            listed: Vec::new(),
            connect_len: 0,
            out: BytesMut::new(),
            pending: BytesMut::new(),
            unwritten: 0,
            pending_marks: VecDeque::new(),
            tried_since_wait: 0,
            rtt: None,
            draining: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            last_received: now,
            pongs: VecDeque::new(),
            deferred_flushes: Vec::new(),
            next_flush: 0,
            subs: IdMap::new(),
            next_sid: 1,
            inbox_prefix,
            inbox_sid: None,
            requests: IdMap::new(),
            deadlines: BinaryHeap::new(),
            next_request: 1,
            #[cfg(feature = "nkeys")]
            signing: None,
            #[cfg(feature = "nkeys")]
            handshakes: 0,
        };
        conn.start_attempt(now, None);
        Ok(conn)
    }

    // ---- driver side -------------------------------------------------------------------------

    /// The next thing to do with the socket.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.transmits.pop_front() {
            return Some(t);
        }
        if self.out.is_empty() {
            return None;
        }
        let n = self.out.len().min(self.frame_limit());
        Some(Transmit::Data(self.out.split_to(n).freeze()))
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next, if at all.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let state_deadline = match &self.state {
            State::Waiting { until, .. } => Some(*until),
            State::Connecting { deadline, .. } => Some(*deadline),
            State::Connected {
                next_ping,
                probe_deadline,
                ..
            } => Some(probe_deadline.map_or(*next_ping, |p| p.min(*next_ping))),
            State::Offline | State::Closed => None,
        };
        let request_deadline = self.deadlines.peek().map(|Reverse((d, _))| *d);
        match (state_deadline, request_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Bytes received from the socket.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.note_input(now) {
            self.parser.feed(data);
            self.parse_input(now);
        }
    }

    /// Like [`Connection::handle_input`], taking the frame by value so that it can become the
    /// parser's buffer without a copy.
    pub fn handle_input_owned(&mut self, now: Instant, data: Vec<u8>) {
        if self.note_input(now) {
            self.parser.feed_owned(data);
            self.parse_input(now);
        }
    }

    /// Records that the server is alive; `false` if input is not expected now (no socket).
    fn note_input(&mut self, now: Instant) -> bool {
        match &mut self.state {
            State::Connecting { received_any, .. } => *received_any = true,
            State::Connected { probe_deadline, .. } => *probe_deadline = None,
            _ => return false,
        }
        self.last_received = now;
        true
    }

    fn parse_input(&mut self, now: Instant) {
        loop {
            match self.parser.next_op() {
                Ok(Some(op)) => self.handle_op(now, op),
                Ok(None) => break,
                Err(e) => {
                    let err = match &self.state {
                        State::Connecting {
                            handshake: Handshake::AwaitInfo,
                            server,
                            ..
                        } => ConnectionError::NotNats {
                            url: self.servers[*server].url.clone(),
                            detail: e.to_string(),
                        },
                        _ => ConnectionError::Protocol(e),
                    };
                    self.fail(now, err);
                    break;
                }
            }
        }
    }

    /// The socket closed, or failed to open; `detail` says how.
    pub fn handle_disconnected(&mut self, now: Instant, detail: &str) {
        let err = match &self.state {
            State::Connecting {
                server,
                received_any: false,
                ..
            } => ConnectionError::Transport {
                url: self.servers[*server].url.clone(),
                detail: detail.to_owned(),
            },
            State::Connecting { server, .. } | State::Connected { server, .. } => {
                ConnectionError::Lost {
                    url: self.servers[*server].url.clone(),
                    detail: detail.to_owned(),
                }
            }
            _ => return,
        };
        self.fail(now, err);
    }

    /// The deadline from `poll_timeout` has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(&Reverse((deadline, id))) = self.deadlines.peek() {
            if deadline > now {
                break;
            }
            self.deadlines.pop();
            if let Some(req) = self.requests.remove(id) {
                let result = Err(RequestError::TimedOut {
                    subject: req.subject,
                    after: req.timeout,
                });
                self.events.push_back(Event::Response { id, result });
            }
        }
        self.prune_deadlines();
        match self.state {
            State::Waiting { until, attempt } if now >= until => {
                self.start_attempt(now, Some(attempt))
            }
            State::Connecting {
                deadline, server, ..
            } if now >= deadline => {
                let url = self.servers[server].url.clone();
                self.fail(
                    now,
                    ConnectionError::Timeout {
                        url,
                        after: self.options.connect_timeout,
                    },
                );
            }
            State::Connected {
                next_ping,
                probe_deadline,
                ..
            } => {
                // Stale means PINGs sent and not answered, never just a late timer: a throttled
                // background tab may fire this an interval late, so the overdue PING goes out first
                // and is given its chance (as nats.go counts `pout`).
                let quiet = now.saturating_duration_since(self.last_received);
                if probe_deadline.is_some_and(|d| now >= d) {
                    self.fail(now, ConnectionError::Stale(quiet));
                } else if now >= next_ping {
                    if self.unanswered_pings() >= self.options.max_pings_out.max(1) as usize {
                        self.fail(now, ConnectionError::Stale(quiet));
                    } else {
                        self.send_keepalive(now);
                    }
                }
            }
            _ => {}
        }
    }

    /// The environment says now is a good moment to check the connection: the browser came back
    /// online, or the tab became visible. Waiting or offline → try at once; connected but quiet for a
    /// while → PING, and treat the connection as stale if nothing answers within `connect_timeout`.
    pub fn handle_wake(&mut self, now: Instant) {
        match self.state {
            State::Waiting { attempt, .. } => self.start_attempt(now, Some(attempt)),
            // A nonce this environment could not sign will not be signed now either (going
            // online or showing the tab changes nothing); reconnect_now() still tries.
            State::Offline if !self.last_error.as_ref().is_some_and(could_not_sign) => {
                self.start_attempt(now, None)
            }
            State::Connected {
                probe_deadline: None,
                ..
            } if now.saturating_duration_since(self.last_received) >= WAKE_PROBE_QUIET => {
                self.send_keepalive(now);
                if let State::Connected { probe_deadline, .. } = &mut self.state {
                    *probe_deadline = Some(now + self.options.connect_timeout);
                }
            }
            _ => {}
        }
    }

    // ---- application side --------------------------------------------------------------------

    pub fn status(&self) -> &Status {
        &self.status
    }

    /// The options this connection was made with.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// What the current (or last) server said in `INFO`.
    pub fn server_info(&self) -> Option<&ServerInfo> {
        self.info.as_ref()
    }

    /// [`Options::max_control_line`], 0 read as nats-server's default (as the server reads it).
    fn max_control_line(&self) -> usize {
        match self.options.max_control_line {
            0 => 4096,
            n => n,
        }
    }

    /// The largest headers + payload the server accepts.
    pub fn max_payload(&self) -> usize {
        match &self.info {
            Some(info) if info.max_payload > 0 => info.max_payload,
            _ => DEFAULT_MAX_PAYLOAD,
        }
    }

    /// Every server url known, configured ones first.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.servers.iter().map(|s| s.url.as_str())
    }

    /// A fresh, unique subject under the inbox prefix, for replies that need their own subscription.
    pub fn new_inbox(&mut self) -> String {
        let token = self.new_token();
        format!("{}.{token}", self.options.inbox_prefix)
    }

    /// 22 random letters and digits from the connection's generator: an inbox's last token, a
    /// message id.
    pub fn new_token(&mut self) -> String {
        (0..22).map(|_| self.rng.alphanumeric()).collect()
    }

    /// Bytes of publishes waiting for the connection to come back.
    pub fn buffered(&self) -> usize {
        self.pending.len()
    }

    /// The last measured round trip to the server (handshake or keepalive PING).
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Publishes a message. Checked first: subject and reply subject, headers, size against the
    /// server's `max_payload`, room in the reconnect buffer while disconnected.
    ///
    /// `now` is called only while disconnected, to age what the reconnect buffer holds: a
    /// publish on a live connection reads no clock (in a browser, a call out of wasm per message).
    /// A `dyn` function, not a generic one: one copy of the checks for every caller.
    pub fn publish(
        &mut self,
        now: &dyn Fn() -> Instant,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&HeaderMap>,
        payload: &[u8],
    ) -> Result<(), PublishError> {
        if matches!(self.state, State::Closed) {
            return Err(PublishError::Closed);
        }
        validate_publish_subject(subject).map_err(PublishError::InvalidSubject)?;
        if let Some(reply) = reply {
            validate_publish_subject(reply).map_err(PublishError::InvalidReply)?;
        }
        if let Some(h) = headers {
            h.validate()?;
        }
        let header_len = headers.map(HeaderMap::encoded_len);
        let size = header_len.unwrap_or(0) + payload.len();
        let max = self.max_payload();
        if size > max {
            return Err(PublishError::MaxPayloadExceeded { size, max });
        }
        // `[H]PUB <subject> [reply] [header size] <size>`: what the server counts, the arguments.
        let line = subject.len()
            + reply.map_or(0, |r| 1 + r.len())
            + header_len.map_or(0, |h| 1 + digits(h))
            + 1
            + digits(size);
        let max = self.max_control_line();
        if line > max {
            return Err(PublishError::SubjectTooLong { size: line, max });
        }
        self.write_user_op(
            now,
            ClientOp::Pub {
                subject,
                reply,
                headers,
                payload,
            },
        )
    }

    /// Subscribes; returns the subscription id (`sid`) that its messages carry.
    pub fn subscribe(
        &mut self,
        subject: &str,
        options: SubscribeOptions,
    ) -> Result<u64, SubscribeError> {
        if matches!(self.state, State::Closed) || self.draining {
            return Err(SubscribeError::Closed);
        }
        validate_subscribe_subject(subject).map_err(SubscribeError::InvalidSubject)?;
        if let Some(q) = &options.queue_group {
            validate_queue_group(q).map_err(SubscribeError::InvalidQueueGroup)?;
        }
        // `SUB <subject> [queue] <sid>`, sent again after every reconnect: a line the server
        // would close the connection for would close every one after it too.
        let line = subject.len()
            + options.queue_group.as_ref().map_or(0, |q| 1 + q.len())
            + 1
            + digits(usize::try_from(self.next_sid).unwrap_or(usize::MAX));
        let max = self.max_control_line();
        if line > max {
            return Err(SubscribeError::SubjectTooLong { size: line, max });
        }
        let sid = self.next_sid;
        self.next_sid += 1;
        let sub = Subscription {
            subject: subject.to_owned(),
            queue_group: options.queue_group,
            max: options.max_messages,
            received: 0,
            received_on_this_connection: 0,
            dedup: options
                .dedup_window
                .map(|w| Dedup::new(w, DEFAULT_CAPACITY)),
            draining: false,
        };
        if self.is_connected() {
            encode_sub(&mut self.out, sid, &sub, sub.max);
        }
        self.subs.insert(sid, Box::new(sub));
        Ok(sid)
    }

    /// Ends a subscription now. Unknown sids are ignored.
    pub fn unsubscribe(&mut self, sid: u64) {
        let Some(sub) = self.subs.remove(sid) else {
            return;
        };
        // A draining subscription's UNSUB is out already.
        if !sub.draining && self.is_connected() {
            ClientOp::Unsub { sid, max: None }.encode(&mut self.out);
        }
    }

    /// Drains one subscription: UNSUB now, then its messages still arrive until the server has
    /// processed the UNSUB (the PONG of a PING sent with it); then it ends,
    /// [`Event::SubscriptionClosed`] without an error. While not connected nothing is on its way:
    /// it ends at once. If the connection is lost first it ends then (nothing more can arrive,
    /// and it is not subscribed again). Returns `false` if it ended at once or was unknown.
    pub fn drain_subscription(&mut self, sid: u64) -> bool {
        let connected = self.is_connected();
        let Some(sub) = self.subs.get_mut(sid) else {
            return false;
        };
        if sub.draining {
            return true;
        }
        if !connected {
            self.end_subscription(sid);
            return false;
        }
        sub.draining = true;
        ClientOp::Unsub { sid, max: None }.encode(&mut self.out);
        ClientOp::Ping.encode(&mut self.out);
        self.pongs.push_back(PongWaiter::Drain(sid));
        true
    }

    /// Ends a draining subscription now, without waiting any longer for the server (the driver's
    /// timeout ran out). Unknown sids are ignored.
    pub fn finish_subscription_drain(&mut self, sid: u64) {
        if self.subs.get(sid).is_some_and(|s| s.draining) {
            self.end_subscription(sid);
        }
    }

    /// Ends a subscription once it has received `max` messages in all.
    pub fn unsubscribe_after(&mut self, sid: u64, max: u64) {
        let connected = self.is_connected();
        let Some(sub) = self.subs.get_mut(sid) else {
            return;
        };
        if sub.received >= max {
            self.unsubscribe(sid);
            self.events
                .push_back(Event::SubscriptionClosed { sid, error: None });
            return;
        }
        sub.max = Some(max);
        if connected && !sub.draining {
            let server_max = sub.received_on_this_connection + (max - sub.received);
            ClientOp::Unsub {
                sid,
                max: Some(server_max),
            }
            .encode(&mut self.out);
        }
    }

    /// Sends a request; its reply (or failure) comes as [`Event::Response`] with the returned id.
    pub fn request(
        &mut self,
        now: Instant,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<u64, RequestError> {
        if matches!(self.state, State::Closed) {
            return Err(RequestError::Closed);
        }
        // Validate before the inbox subscription goes out, so a bad request leaves no trace.
        validate_publish_subject(subject).map_err(PublishError::InvalidSubject)?;
        // Never buffered: a reply can only come back on the connection the request went out on,
        // and requests piled up during an outage would all go out at once when it ends.
        if !self.is_connected() {
            return Err(RequestError::NotConnected {
                subject: subject.to_owned(),
            });
        }
        if self.inbox_sid.is_none() {
            let sid = self.next_sid;
            self.next_sid += 1;
            self.inbox_sid = Some(sid);
            if self.is_connected() {
                self.encode_inbox_sub(sid);
            }
        }
        let id = self.next_request;
        let reply = format!("{}{id}", self.inbox_prefix);
        self.publish(&|| now, subject, Some(&reply), headers, payload)?;
        self.next_request += 1;
        let deadline = now + timeout;
        self.requests.insert(
            id,
            PendingRequest {
                subject: subject.to_owned(),
                timeout,
            },
        );
        self.deadlines.push(Reverse((deadline, id)));
        Ok(id)
    }

    /// Forgets a request whose caller stopped waiting.
    pub fn cancel_request(&mut self, id: u64) {
        if self.requests.remove(id).is_some() {
            self.prune_deadlines();
        }
    }

    /// Drops the entries of requests no longer pending from the top of `deadlines`, and all of
    /// them once they are most of it.
    fn prune_deadlines(&mut self) {
        while let Some(Reverse((_, id))) = self.deadlines.peek() {
            if self.requests.contains_key(*id) {
                break;
            }
            self.deadlines.pop();
        }
        if self.deadlines.len() > 32 + 2 * self.requests.len() {
            let requests = &self.requests;
            self.deadlines
                .retain(|Reverse((_, id))| requests.contains_key(*id));
        }
    }

    /// Asks the server for a PONG; [`Event::Flushed`] with the returned id follows once everything
    /// sent before has been processed by the server. While disconnected it waits for the next
    /// connection (after the buffered publishes). It fails when the connection its PING went out
    /// on is lost before the PONG: what was sent before may not have arrived.
    pub fn flush(&mut self) -> Result<u64, ClosedError> {
        if matches!(self.state, State::Closed) {
            return Err(ClosedError);
        }
        let id = self.next_flush;
        self.next_flush += 1;
        match self.state {
            State::Connected { .. } => {
                ClientOp::Ping.encode(&mut self.out);
                self.pongs.push_back(PongWaiter::Flush(id));
            }
            State::Offline => {
                let err = self.last_error.clone().unwrap_or(ConnectionError::Closed);
                self.events.push_back(Event::Flushed {
                    id,
                    result: Err(err),
                });
            }
            _ => self.deferred_flushes.push(id),
        }
        Ok(id)
    }

    /// Tries again at once: from offline it starts the schedule over; while waiting for the next
    /// attempt it makes that attempt now. Does nothing when connected or connecting.
    pub fn reconnect_now(&mut self, now: Instant) {
        match self.state {
            State::Offline => self.start_attempt(now, None),
            State::Waiting { attempt, .. } => self.start_attempt(now, Some(attempt)),
            _ => {}
        }
    }

    /// First half of a drain: unsubscribes every subscription on the server, but keeps delivering
    /// what is already on its way. Call [`Connection::flush`] next, and once it has completed
    /// [`Connection::finish_drain`]. New subscriptions are refused from now on.
    pub fn drain_subscriptions(&mut self) {
        if self.draining || matches!(self.state, State::Closed) {
            return;
        }
        self.draining = true;
        if self.is_connected() {
            for (sid, sub) in self.subs.iter() {
                if !sub.draining {
                    ClientOp::Unsub { sid, max: None }.encode(&mut self.out);
                }
            }
        }
    }

    /// Second half of a drain: every subscription ends (without an error), then the connection
    /// closes.
    pub fn finish_drain(&mut self) {
        for sid in self.subs.drain().map(|(sid, _)| sid) {
            self.events
                .push_back(Event::SubscriptionClosed { sid, error: None });
        }
        self.close();
    }

    /// Closes for good: what was already published goes out first; in-flight requests and flushes
    /// fail, subscriptions end.
    pub fn close(&mut self) {
        if matches!(self.state, State::Closed) {
            return;
        }
        let was_connected = self.is_connected();
        self.state = State::Closed;
        #[cfg(feature = "nkeys")]
        {
            self.signing = None;
        }
        // Publishes that returned Ok are sent before the socket closes.
        let limit = self.frame_limit();
        while was_connected && !self.out.is_empty() {
            let n = self.out.len().min(limit);
            self.transmits
                .push_back(Transmit::Data(self.out.split_to(n).freeze()));
        }
        self.transmits.push_back(Transmit::Close);
        self.out.clear();
        self.pending.clear();
        self.pending_marks.clear();
        self.parser.reset();
        self.deadlines.clear();
        for (id, _) in self.requests.drain() {
            self.events.push_back(Event::Response {
                id,
                result: Err(RequestError::Closed),
            });
        }
        let flushes = self.pongs.drain(..).filter_map(|p| match p {
            PongWaiter::Flush(id) => Some(id),
            PongWaiter::Keepalive(_) | PongWaiter::Drain(_) => None,
        });
        let flushes: Vec<u64> = flushes.chain(self.deferred_flushes.drain(..)).collect();
        for id in flushes {
            self.events.push_back(Event::Flushed {
                id,
                result: Err(ConnectionError::Closed),
            });
        }
        for sid in self.subs.drain().map(|(sid, _)| sid) {
            self.events.push_back(Event::SubscriptionClosed {
                sid,
                error: Some(SubscribeError::Closed),
            });
        }
        self.set_status(Status::Closed);
    }

    // ---- internals ---------------------------------------------------------------------------

    fn is_connected(&self) -> bool {
        matches!(self.state, State::Connected { .. })
    }

    /// Frames stay within the server's `max_payload` too: with WebSocket compression, nats-server
    /// refuses a frame that inflates beyond it.
    fn frame_limit(&self) -> usize {
        MAX_FRAME.min(self.max_payload()).max(1)
    }

    /// Keepalive PINGs sent on this connection and not answered yet.
    fn unanswered_pings(&self) -> usize {
        self.pongs
            .iter()
            .filter(|p| matches!(p, PongWaiter::Keepalive(_)))
            .count()
    }

    /// Removes a subscription that ends without an error, and says so.
    fn end_subscription(&mut self, sid: u64) {
        if self.subs.remove(sid).is_some() {
            self.events
                .push_back(Event::SubscriptionClosed { sid, error: None });
        }
    }

    fn set_status(&mut self, status: Status) {
        if self.status != status {
            self.status = status.clone();
            self.events.push_back(Event::Status(status));
        }
    }

    /// How many bytes the driver holds that the socket has not taken yet: while the server does
    /// not read (stopped, or a link that stalls without breaking), they pile up until the
    /// connection is found stale; beyond [`MAX_UNWRITTEN`] with what is not yet handed to the
    /// driver, publishes are refused.
    pub fn set_unwritten(&mut self, bytes: usize) {
        self.unwritten = bytes;
    }

    fn write_user_op(
        &mut self,
        now: &dyn Fn() -> Instant,
        op: ClientOp<'_>,
    ) -> Result<(), PublishError> {
        if self.is_connected() {
            let waiting = self.unwritten + self.out.len();
            if waiting > MAX_UNWRITTEN {
                return Err(PublishError::BacklogFull {
                    waiting,
                    limit: MAX_UNWRITTEN,
                });
            }
            op.encode(&mut self.out);
            return Ok(());
        }
        let now = now();
        self.expire_buffered(now);
        let limit = self.options.reconnect_buffer_size;
        if self.pending.len() + op.encoded_len() > limit {
            return Err(PublishError::BufferFull { limit });
        }
        op.encode(&mut self.pending);
        let end = self.pending.len();
        match self.pending_marks.back_mut() {
            Some((at, last_end, count))
                if now.saturating_duration_since(*at) < MARK_GRANULARITY =>
            {
                *last_end = end;
                *count += 1;
            }
            _ => self.pending_marks.push_back((now, end, 1)),
        }
        Ok(())
    }

    /// Drops buffered publishes older than `reconnect_buffer_max_age`, oldest first.
    fn expire_buffered(&mut self, now: Instant) {
        let Some(max_age) = self.options.reconnect_buffer_max_age else {
            return;
        };
        let mut cut = 0;
        let mut messages = 0;
        while let Some(&(at, end, count)) = self.pending_marks.front() {
            if now.saturating_duration_since(at) <= max_age {
                break;
            }
            self.pending_marks.pop_front();
            cut = end;
            messages += count;
        }
        if cut == 0 {
            return;
        }
        let _ = self.pending.split_to(cut);
        for (_, end, _) in &mut self.pending_marks {
            *end -= cut;
        }
        self.events.push_back(Event::BufferedExpired {
            messages,
            bytes: cut,
        });
    }

    fn start_attempt(&mut self, now: Instant, attempt: Option<u32>) {
        let server = self.next_server % self.servers.len();
        self.next_server = self.next_server.wrapping_add(1);
        self.tried_since_wait += 1;
        self.servers[server].last_attempt = Some(now);
        self.parser.reset();
        self.out.clear();
        #[cfg(feature = "nkeys")]
        {
            self.signing = None;
        }
        self.state = State::Connecting {
            server,
            deadline: now + self.options.connect_timeout,
            handshake: Handshake::AwaitInfo,
            attempt,
            received_any: false,
        };
        if attempt.is_none() && !matches!(self.status, Status::Reconnecting { .. }) {
            self.set_status(Status::Connecting);
        }
        self.transmits.push_back(Transmit::Connect {
            url: self.servers[server].url.clone(),
        });
    }

    fn fail(&mut self, now: Instant, err: ConnectionError) {
        let this_attempt = match self.state {
            State::Connecting { attempt, .. } => attempt,
            _ => None,
        };
        let next_attempt = match self.state {
            State::Connecting {
                attempt: Some(n), ..
            } => n + 1,
            State::Connecting { attempt: None, .. } | State::Connected { .. } => 0,
            State::Waiting { .. } | State::Offline | State::Closed => return,
        };
        self.transmits.push_back(Transmit::Close);
        self.parser.reset();
        self.out.clear();
        // A flush whose PING went out on this connection fails: what was sent before it may not
        // have reached the server, and is not sent again (nats.go fails them likewise). Flushes
        // asked for while disconnected wait for the next connection, after the buffered publishes.
        for waiter in self.pongs.drain(..) {
            if let PongWaiter::Flush(id) = waiter {
                self.events.push_back(Event::Flushed {
                    id,
                    result: Err(err.clone()),
                });
            }
        }
        // Draining subscriptions end: nothing more can arrive for them, and they are not sent
        // again on the next connection.
        let drained: Vec<u64> = self
            .subs
            .iter()
            .filter(|(_, s)| s.draining)
            .map(|(sid, _)| sid)
            .collect();
        for sid in drained {
            self.end_subscription(sid);
        }
        // A reply can only come back on the connection its request went out on: fail them now,
        // so callers retry at once instead of waiting out their timeouts. Oldest first, as
        // close() fails them; each goes to its own caller.
        self.deadlines.clear();
        for (id, req) in self.requests.drain() {
            self.events.push_back(Event::Response {
                id,
                result: Err(RequestError::ConnectionLost {
                    subject: req.subject,
                }),
            });
        }
        // The server refused the credentials twice in a row: retrying will not change them
        // (nats.go and nats.js give up likewise). Offline until reconnect_now(). Credentials
        // that could not be made (an authenticator's token service down, a .creds file caught
        // mid-rewrite) do not count: they may work at the next attempt, after the backoff.
        // Counted per server (nats.go keeps each server's last error): one node of a cluster
        // refusing once does not stop the client trying the others.
        // A CONNECT line longer than the server's max_control_line is refused the same way at
        // every attempt too (nats.go and nats.js retry it forever).
        let mut refused_for_good = false;
        if matches!(
            err,
            ConnectionError::AuthorizationViolation | ConnectionError::ConnectTooLong { .. }
        ) {
            if let State::Connecting { server, .. } | State::Connected { server, .. } = self.state {
                if let Some(s) = self.servers.get_mut(server) {
                    s.refusals = s.refusals.saturating_add(1);
                    refused_for_good = s.refusals >= REFUSALS;
                }
            }
        }
        // A nonce this environment could not sign (a browser without Ed25519 in its WebCrypto)
        // will not be signed at the next attempt either, nor for another server: Offline too.
        refused_for_good |= could_not_sign(&err);
        self.last_error = Some(err.clone());
        // Another server not tried since the last wait is tried at once: the backoff is for
        // coming back to a server that just failed (as nats.go waits per server).
        let next = &self.servers[self.next_server % self.servers.len()];
        let rested = next.last_attempt.is_none_or(|at| {
            now.saturating_duration_since(at) >= self.options.reconnect.initial_delay
        });
        if !refused_for_good && self.tried_since_wait < self.servers.len() && rested {
            // While the first connection is still being made the status stays Connecting: the
            // next server may well answer.
            if self.status != Status::Connecting {
                self.set_status(Status::Reconnecting {
                    attempt: next_attempt + 1,
                    retry_at: now,
                    last_error: Some(err),
                });
            }
            self.start_attempt(now, this_attempt);
            return;
        }
        self.tried_since_wait = 0;
        let policy = &self.options.reconnect;
        if refused_for_good || policy.max_attempts.is_some_and(|max| next_attempt >= max) {
            self.state = State::Offline;
            for id in std::mem::take(&mut self.deferred_flushes) {
                self.events.push_back(Event::Flushed {
                    id,
                    result: Err(err.clone()),
                });
            }
            self.set_status(Status::Offline { last_error: err });
            return;
        }
        let jitter_ns = u64::try_from(policy.jitter.as_nanos()).unwrap_or(u64::MAX);
        let jitter = Duration::from_nanos(self.rng.u64(0..=jitter_ns));
        let until = now + policy.delay(next_attempt) + jitter;
        self.state = State::Waiting {
            until,
            attempt: next_attempt,
        };
        self.set_status(Status::Reconnecting {
            attempt: next_attempt + 1,
            retry_at: until,
            last_error: Some(err),
        });
    }

    /// The one subscription every request's reply arrives on: `<prefix>.<token>.*`.
    fn encode_inbox_sub(&mut self, sid: u64) {
        let subject = format!("{}*", self.inbox_prefix);
        ClientOp::Sub {
            subject: &subject,
            queue_group: None,
            sid,
        }
        .encode(&mut self.out);
    }

    fn send_keepalive(&mut self, now: Instant) {
        if let State::Connected { next_ping, .. } = &mut self.state {
            *next_ping = now + self.options.ping_interval;
            ClientOp::Ping.encode(&mut self.out);
            self.pongs.push_back(PongWaiter::Keepalive(now));
        }
    }

    fn handle_op(&mut self, now: Instant, op: ServerOp) {
        let handshake = match &self.state {
            State::Connecting { handshake, .. } => Some(*handshake),
            _ => None,
        };
        match op {
            ServerOp::Info(info) => {
                let tls_required = info.tls_required;
                self.parser.allow_max_payload(info.max_payload);
                self.on_info(*info);
                if handshake == Some(Handshake::AwaitInfo) {
                    let State::Connecting { server, .. } = self.state else {
                        return;
                    };
                    // Over nats:// the server expects a TLS handshake next, which this client
                    // does not do; sending CONNECT in the clear would only get the connection cut.
                    // (Over wss:// the TLS is the WebSocket's, already done.)
                    if tls_required && self.servers[server].url.starts_with("nats://") {
                        let url = self.servers[server].url.clone();
                        self.fail(now, ConnectionError::TlsRequired { url });
                        return;
                    }
                    self.send_connect(now);
                }
            }
            _ if handshake == Some(Handshake::AwaitInfo) => {
                let State::Connecting { server, .. } = self.state else {
                    return;
                };
                let url = self.servers[server].url.clone();
                let detail = format!("expected INFO first, got {}", op_name(&op));
                self.fail(now, ConnectionError::NotNats { url, detail });
            }
            ServerOp::Ping => ClientOp::Pong.encode(&mut self.out),
            ServerOp::Pong => match handshake {
                Some(Handshake::AwaitPong { ping_sent }) => {
                    self.on_connected(now, now.saturating_duration_since(ping_sent))
                }
                _ => self.on_pong(now),
            },
            ServerOp::Ok => {}
            ServerOp::Err(text) => self.on_server_error(now, text),
            ServerOp::Msg {
                sid,
                subject,
                reply,
                payload,
            } => {
                self.note_lossy(&subject);
                self.on_message(
                    now,
                    sid,
                    Message {
                        subject,
                        reply,
                        headers: None,
                        payload,
                    },
                );
            }
            ServerOp::HMsg {
                sid,
                subject,
                reply,
                headers,
                payload,
            } => {
                self.note_lossy(&subject);
                // A header block we cannot read still delivers its message, without headers (as
                // nats.go does), and says so: dropping it would leave a gap that an ordered
                // consumer resets over, receives the same message again, and never gets past.
                let headers = match HeaderMap::parse(&headers) {
                    Ok(h) => Some(h),
                    Err(e) => {
                        let error = ServerError::BadMessage(e);
                        self.events.push_back(Event::ServerError(error));
                        None
                    }
                };
                let message = Message {
                    subject,
                    reply,
                    headers,
                    payload,
                };
                self.on_message(now, sid, message);
            }
        }
    }

    /// Says so when the message just parsed had a subject or reply that was not UTF-8.
    fn note_lossy(&mut self, subject: &str) {
        if self.parser.take_lossy() {
            let subject = subject.to_owned();
            let error = ServerError::NotUtf8 { subject };
            self.events.push_back(Event::ServerError(error));
        }
    }

    fn on_info(&mut self, info: ServerInfo) {
        // Only an INFO of the same connection compares: the first of a new one may come from
        // another server with its own view. An empty list is no news (a cluster that does not
        // advertise; the server lists itself otherwise): the next list is compared with the last
        // one that was not empty.
        let connected = matches!(self.state, State::Connected { .. });
        if !info.connect_urls.is_empty() {
            let left = self
                .listed
                .iter()
                .any(|url| !info.connect_urls.contains(url));
            if connected && left {
                self.events.push_back(Event::ServerLeft);
            }
            self.listed.clone_from(&info.connect_urls);
        } else if !connected {
            self.listed.clear();
        }
        if !self.options.ignore_discovered_servers && !info.connect_urls.is_empty() {
            self.merge_discovered(&info.connect_urls);
        }
        if info.lame_duck_mode && !self.info.as_ref().is_some_and(|i| i.lame_duck_mode) {
            self.events.push_back(Event::LameDuck);
        }
        self.info = Some(info);
    }

    /// The cluster's current list of servers (INFO `connect_urls`): new ones join the pool in random
    /// order (so that clients spread over the cluster), discovered ones no longer listed leave it.
    /// Configured servers always stay, and so does the one we are on.
    fn merge_discovered(&mut self, connect_urls: &[String]) {
        let scheme = self
            .servers
            .first()
            .and_then(|s| text::split_once(&s.url, "://"))
            .map_or("ws", |(scheme, _)| scheme)
            .to_owned();
        // Our scheme, whatever the list says: a server (or anyone on a ws:// link) must not be able
        // to move a wss:// client, and its credentials, to plain ws:// (nats.go does likewise).
        // In the server's order, without repeats (a `Vec`, no hashing or sorting: the list is
        // short, and capped here so that a huge one cannot make this function's scans costly).
        let mut listed: Vec<String> = Vec::new();
        let hosts = connect_urls
            .iter()
            .take(4 * MAX_SERVERS)
            .map(|url| text::split_once(url, "://").map_or(url.as_str(), |(_, rest)| rest));
        for url in hosts.filter_map(|host| normalize_url(&format!("{scheme}://{host}")).ok()) {
            if !listed.contains(&url) {
                listed.push(url);
            }
        }
        let current = match &self.state {
            State::Connected { server, .. } | State::Connecting { server, .. } => {
                Some(self.servers[*server].url.clone())
            }
            _ => None,
        };
        self.servers.retain(|s| {
            !s.discovered || listed.contains(&s.url) || current.as_ref() == Some(&s.url)
        });
        let mut new: Vec<String> = listed
            .into_iter()
            .filter(|url| !self.servers.iter().any(|s| s.url == *url))
            .collect();
        self.rng.shuffle(&mut new);
        let room = MAX_SERVERS.saturating_sub(self.servers.len());
        self.servers
            .extend(new.into_iter().take(room).map(|url| ServerUrl {
                url,
                discovered: true,
                last_attempt: None,
                refusals: 0,
            }));
        // Indices may have moved: point the state at the current server again, and go on from it.
        if let Some(url) = current {
            let at = self.servers.iter().position(|s| s.url == url).unwrap_or(0);
            if let State::Connected { server, .. } | State::Connecting { server, .. } =
                &mut self.state
            {
                *server = at;
            }
            self.next_server = at + 1;
        }
    }

    fn send_connect(&mut self, now: Instant) {
        let creds = match connect_credentials(&self.options.auth) {
            Ok(Resolved::Ready(creds)) => creds,
            #[cfg(feature = "nkeys")]
            Ok(Resolved::Sign {
                creds,
                seed,
                send_nkey,
            }) => {
                self.handshakes += 1;
                let nonce = self.info.as_ref().and_then(|info| info.nonce.clone());
                self.signing = Some((self.handshakes, creds, send_nkey));
                self.transmits.push_back(Transmit::Sign(SignRequest {
                    seed,
                    nonce: nonce.unwrap_or_default(),
                    handshake: self.handshakes,
                }));
                if let State::Connecting { handshake, .. } = &mut self.state {
                    *handshake = Handshake::Signing;
                }
                return;
            }
            Err(err) => {
                self.fail(now, ConnectionError::Credentials(err));
                return;
            }
        };
        self.write_connect(now, creds);
    }

    /// The driver signed the nonce of handshake `request.handshake` (see [`Transmit::Sign`]).
    #[cfg(feature = "nkeys")]
    pub fn handle_signed(&mut self, now: Instant, handshake: u64, result: Result<Signed, String>) {
        let waiting = matches!(
            self.state,
            State::Connecting {
                handshake: Handshake::Signing,
                ..
            }
        );
        if !waiting {
            return;
        }
        let Some((_, mut creds, send_nkey)) = self.signing.take_if(|(h, ..)| *h == handshake)
        else {
            return;
        };
        match result {
            Ok(signed) => {
                if send_nkey {
                    creds.nkey = Some(signed.nkey);
                }
                creds.sig = Some(signed.sig);
                self.write_connect(now, creds);
            }
            Err(detail) => self.fail(
                now,
                ConnectionError::Credentials(crate::CredentialsError::Signing(detail)),
            ),
        }
    }

    fn write_connect(&mut self, now: Instant, creds: ConnectCredentials) {
        let json = ConnectInfo {
            verbose: false,
            pedantic: false,
            tls_required: false,
            lang: "rust-nats-ws",
            version: env!("CARGO_PKG_VERSION"),
            protocol: 1,
            headers: true,
            no_responders: true,
            echo: self.options.echo,
            name: self.options.name.as_deref(),
            user: creds.user.as_deref(),
            pass: creds.pass.as_deref(),
            auth_token: creds.auth_token.as_deref(),
            jwt: creds.jwt.as_deref(),
            nkey: creds.nkey.as_deref(),
            sig: creds.sig.as_deref(),
        }
        .to_json();
        self.connect_len = json.len();
        ClientOp::Connect(&json).encode(&mut self.out);
        ClientOp::Ping.encode(&mut self.out);
        if let State::Connecting { handshake, .. } = &mut self.state {
            *handshake = Handshake::AwaitPong { ping_sent: now };
        }
    }

    fn on_connected(&mut self, now: Instant, rtt: Duration) {
        let State::Connecting { server, .. } = self.state else {
            return;
        };
        self.state = State::Connected {
            server,
            next_ping: now + self.options.ping_interval,
            probe_deadline: None,
        };
        self.last_error = None;
        self.tried_since_wait = 1;
        if let Some(s) = self.servers.get_mut(server) {
            s.refusals = 0;
        }
        self.rtt = Some(rtt);
        // Order matters: subscriptions first (a buffered request's reply must find its inbox), then
        // the publishes buffered while disconnected, then PINGs for flushes waiting on them.
        if let Some(sid) = self.inbox_sid {
            self.encode_inbox_sub(sid);
        }
        for (sid, sub) in self.subs.iter_mut() {
            if self.draining {
                break;
            }
            sub.received_on_this_connection = 0;
            let remaining = sub.max.map(|max| max.saturating_sub(sub.received));
            encode_sub(&mut self.out, sid, sub, remaining);
        }
        self.expire_buffered(now);
        if !self.pending.is_empty() {
            self.out.extend_from_slice(&self.pending);
            self.pending = BytesMut::new();
        }
        self.pending_marks.clear();
        for id in std::mem::take(&mut self.deferred_flushes) {
            ClientOp::Ping.encode(&mut self.out);
            self.pongs.push_back(PongWaiter::Flush(id));
        }
        let info = self.info.clone().unwrap_or_default();
        self.set_status(Status::Connected {
            url: self.servers[server].url.clone(),
            server_name: info.server_name,
            version: info.version,
            rtt,
        });
    }

    fn on_pong(&mut self, now: Instant) {
        match self.pongs.pop_front() {
            Some(PongWaiter::Keepalive(sent)) => {
                self.rtt = Some(now.saturating_duration_since(sent))
            }
            Some(PongWaiter::Flush(id)) => {
                self.events.push_back(Event::Flushed { id, result: Ok(()) })
            }
            Some(PongWaiter::Drain(sid)) => self.finish_subscription_drain(sid),
            None => {}
        }
    }

    fn on_message(&mut self, now: Instant, sid: u64, message: Message) {
        if Some(sid) == self.inbox_sid {
            self.on_response(message);
            return;
        }
        let Some(sub) = self.subs.get_mut(sid) else {
            return;
        };
        sub.received += 1;
        sub.received_on_this_connection += 1;
        let done = sub.max.is_some_and(|max| sub.received >= max);
        let fresh = match &mut sub.dedup {
            Some(d) => {
                let id = message.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id"));
                d.admit(now, &message.subject, id, &message.payload)
            }
            None => true,
        };
        if fresh {
            self.events.push_back(Event::Message { sid, message });
        }
        if done {
            self.subs.remove(sid);
            self.events
                .push_back(Event::SubscriptionClosed { sid, error: None });
        }
    }

    fn on_response(&mut self, message: Message) {
        let Some(id) = message
            .subject
            .strip_prefix(self.inbox_prefix.as_str())
            .and_then(|token| token.parse::<u64>().ok())
        else {
            return;
        };
        let Some(req) = self.requests.remove(id) else {
            return;
        };
        self.prune_deadlines();
        let result = if message.status() == Some(status::NO_RESPONDERS) {
            Err(RequestError::NoResponders {
                subject: req.subject,
            })
        } else {
            Ok(message)
        };
        self.events.push_back(Event::Response { id, result });
    }

    fn on_server_error(&mut self, now: Instant, text: String) {
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("permissions violation for subscription to") {
            // nats-server's texts: `to "S"` (a plain SUB: a queue one on S may be allowed, as
            // with `"S q"` in an allow list), `to "S" using queue "Q"`, either with `(sid "N")`
            // after a permissions reload, and `to "S", too many tokens` (any queue).
            let subject = quoted(&text, 0).unwrap_or_default();
            let using_queue = text::contains(&lower, "using queue");
            let queue = using_queue.then(|| quoted(&text, 1)).flatten();
            let named = text::contains(&lower, "(sid ")
                .then(|| quoted(&text, if using_queue { 2 } else { 1 }))
                .flatten()
                .and_then(|sid| sid.parse::<u64>().ok());
            let any_queue = text::contains(&lower, "too many tokens");
            let denied: Vec<u64> = self
                .subs
                .iter()
                .filter(|&(sid, s)| {
                    s.subject == subject
                        && match named {
                            Some(named) => sid == named,
                            None => any_queue || s.queue_group == queue,
                        }
                })
                .map(|(sid, _)| sid)
                .collect();
            for sid in denied {
                self.subs.remove(sid);
                let error = SubscribeError::PermissionDenied {
                    subject: subject.clone(),
                };
                self.events.push_back(Event::SubscriptionClosed {
                    sid,
                    error: Some(error),
                });
            }
            if subject.starts_with(&self.inbox_prefix) {
                self.inbox_sid = None;
                self.deadlines.clear();
                for (id, _) in self.requests.drain() {
                    let error = RequestError::PermissionDenied {
                        action: "subscribe to",
                        subject: subject.clone(),
                    };
                    self.events.push_back(Event::Response {
                        id,
                        result: Err(error),
                    });
                }
            }
        } else if lower.starts_with("permissions violation for publish to") {
            let subject = quoted(&text, 0).unwrap_or_default();
            let denied: Vec<u64> = self
                .requests
                .iter()
                .filter(|(_, r)| r.subject == subject)
                .map(|(id, _)| id)
                .collect();
            if denied.is_empty() {
                self.events
                    .push_back(Event::ServerError(ServerError::PublishDenied { subject }));
                return;
            }
            for id in denied {
                self.cancel_request(id);
                let error = RequestError::PermissionDenied {
                    action: "publish to",
                    subject: subject.clone(),
                };
                self.events.push_back(Event::Response {
                    id,
                    result: Err(error),
                });
            }
        } else if text::contains(&lower, "authorization violation")
            || text::contains(&lower, "authentication")
        {
            self.fail(now, ConnectionError::AuthorizationViolation);
        } else if text::contains(&lower, "maximum control line exceeded")
            && matches!(
                self.state,
                State::Connecting {
                    handshake: Handshake::AwaitPong { .. },
                    ..
                }
            )
        {
            // Nothing but the CONNECT and a PING has been sent on this connection: the CONNECT
            // was longer than the server's max_control_line.
            let size = self.connect_len;
            self.fail(now, ConnectionError::ConnectTooLong { size });
        } else if FATAL_ERRORS
            .iter()
            .any(|fatal| text::contains(&lower, fatal))
        {
            // The server closes the connection after these; reconnect.
            self.fail(now, ConnectionError::Server(text));
        } else {
            // Anything else (maximum subscriptions exceeded, a publish with a reply the user may
            // not use, invalid subject, …) leaves the connection up: reconnecting would only
            // repeat it. Report it and carry on.
            self.events
                .push_back(Event::ServerError(ServerError::Other(text)));
        }
    }
}

/// `-ERR` texts (lowercase) after which the server closes the connection: only these reconnect.
/// Authorization and authentication errors are told apart before this list is consulted.
const FATAL_ERRORS: &[&str] = &[
    "stale connection",
    "maximum connections exceeded",
    "maximum account active connections exceeded",
    "maximum payload violation",
    "maximum control line exceeded",
    "parser error",
    "unknown protocol operation",
    "secure connection - tls required",
    "invalid client protocol",
    "no responders requires headers support",
];

/// The longest inbox prefix: a quarter of nats-server's default command line.
const MAX_INBOX_PREFIX: usize = 1024;

/// Decimal digits of `n`: its length in a command line.
fn digits(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// SUB, plus UNSUB with the number of messages the server may still deliver, if limited.
fn encode_sub(out: &mut BytesMut, sid: u64, sub: &Subscription, max: Option<u64>) {
    ClientOp::Sub {
        subject: &sub.subject,
        queue_group: sub.queue_group.as_deref(),
        sid,
    }
    .encode(out);
    if let Some(max) = max {
        ClientOp::Unsub {
            sid,
            max: Some(max),
        }
        .encode(out);
    }
}

/// The `n`th double-quoted part of a server error text.
fn quoted(text: &str, n: usize) -> Option<String> {
    text.split('"').nth(2 * n + 1).map(str::to_owned)
}

fn op_name(op: &ServerOp) -> &'static str {
    match op {
        ServerOp::Info(_) => "INFO",
        ServerOp::Msg { .. } => "MSG",
        ServerOp::HMsg { .. } => "HMSG",
        ServerOp::Ping => "PING",
        ServerOp::Pong => "PONG",
        ServerOp::Ok => "+OK",
        ServerOp::Err(_) => "-ERR",
    }
}

/// `url` with its user-info part (`user:password@`) replaced by `…@`, if it has one: what an
/// error or a log may show of a url that carries credentials.
pub fn without_userinfo(url: &str) -> Option<String> {
    let (scheme, _, host) = split_userinfo(url)?;
    Some(format!("{scheme}…@{host}"))
}

/// `url` cut around its user-info part, if it has one: the scheme with its `://` (or nothing),
/// the user info (`user:password`, as written), and what follows the `@`.
pub fn split_userinfo(url: &str) -> Option<(&str, &str, &str)> {
    let (scheme, rest) = match text::find(url, "://") {
        Some(i) => (url.get(..i + 3)?, url.get(i + 3..)?),
        None => ("", url),
    };
    let at = authority_of(rest).bytes().rposition(|b| b == b'@')?;
    Some((scheme, rest.get(..at)?, rest.get(at + 1..)?))
}

/// What a url has after its `://` up to its path, query or fragment.
///
/// (Here and below urls are cut at ASCII bytes and sliced with `str::get`, which never fails
/// there: as in [`text`], slicing with `[..]` and `str` patterns would bring the panic path and a
/// string searcher into a browser build for texts a few dozen bytes long.)
fn authority_of(rest: &str) -> &str {
    let end = rest.bytes().position(|b| matches!(b, b'/' | b'?' | b'#'));
    end.and_then(|end| rest.get(..end)).unwrap_or(rest)
}

/// Accepts `ws://…` and `wss://…` (and natively `nats://…`, plain TCP to the client port); adds
/// `ws://` to a bare `host:port`; refuses other schemes, and credentials in the url.
fn normalize_url(url: &str) -> Result<String, ConnectionError> {
    let url = url.trim();
    if let Some(masked) = without_userinfo(url) {
        // Shown without what came before the '@': it may be a password.
        return Err(ConnectionError::InvalidUrl {
            url: masked,
            reason: "credentials in the url are not used: give them in the options (user and password, or a token)".to_owned(),
        });
    }
    let invalid = |reason: &str| ConnectionError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let with_scheme = match text::split_once(url, "://") {
        Some(("ws" | "wss", _)) => url.to_owned(),
        #[cfg(not(target_arch = "wasm32"))]
        Some(("nats", _)) => url.to_owned(),
        #[cfg(target_arch = "wasm32")]
        Some(("nats", _)) => {
            return Err(invalid(
                "a browser can only open WebSockets: use ws://host:<websocket port>, not nats://",
            ))
        }
        Some(("tls", _)) => return Err(invalid(
            "tls:// (TLS on the client port) is not supported: use wss:// to the websocket port",
        )),
        #[cfg(not(target_arch = "wasm32"))]
        Some(_) => return Err(invalid("use a ws://, wss:// or nats:// url")),
        #[cfg(target_arch = "wasm32")]
        Some(_) => return Err(invalid("use a ws:// or wss:// url")),
        None if url.is_empty() => return Err(invalid("it is empty")),
        // A scheme mistyped (`ws//host`, `ws:/host`, `ws:8080`) would be read as the host `ws`.
        None if mistyped_scheme(url) => {
            return Err(invalid(
                "it has no scheme: write ws://host:port (the server's websocket port) or wss://host:port",
            ))
        }
        None => format!("ws://{url}"),
    };
    let rest = text::split_once(&with_scheme, "://").map_or("", |(_, rest)| rest);
    check_authority(authority_of(rest)).map_err(|reason| invalid(&reason))?;
    Ok(with_scheme)
}

/// Whether `url`, which has no `://`, starts with a scheme's name and more (`ws//host`,
/// `wss:/host`, `ws:8080`): a host of that name is a typing mistake, not a server.
fn mistyped_scheme(url: &str) -> bool {
    let Some(head) = url
        .bytes()
        .position(|b| b == b':' || b == b'/')
        .and_then(|end| url.get(..end))
    else {
        return false;
    };
    ["ws", "wss", "nats", "tls", "http", "https"]
        .iter()
        .any(|scheme| head.eq_ignore_ascii_case(scheme))
}

/// Whether `authority` (what a url has between `://` and its path) is `host` or `host:port`,
/// as a browser would read it: not a host and a port of its own making out of a typing mistake.
fn check_authority(authority: &str) -> Result<(), String> {
    let (host, port) = match authority.strip_prefix('[') {
        // An IPv6 address: `[::1]`, `[::1]:8080`.
        Some(inner) => {
            let (host, after) =
                text::split_once(inner, "]").ok_or("an IPv6 address in it has no closing ]")?;
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':').ok_or("write [IPv6 address]:port")?),
            };
            (host, port)
        }
        None => match text::split_once(authority, ":") {
            Some((_, port)) if text::contains(port, ":") => {
                return Err("write host:port, with one ':' (an IPv6 address in [ ])".to_owned())
            }
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        },
    };
    if host.is_empty() {
        return Err("it has no host".to_owned());
    }
    if host.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(
                c,
                '\\' | '<' | '>' | '"' | '`' | '{' | '}' | '|' | '^' | '%'
            )
    }) {
        return Err(format!("\"{host}\" is not a host name"));
    }
    if host.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{host} is not a host (a port alone?): write host:port, e.g. 127.0.0.1:{host}"
        ));
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && (1..=65535).contains(&port.bytes().fold(0u32, |n, digit| {
                n.saturating_mul(10).saturating_add(u32::from(digit - b'0'))
            }));
        if !valid {
            return Err(format!(
                "the port \"{port}\" is not a number from 1 to 65535"
            ));
        }
    }
    Ok(())
}

/// The environment could not sign the server's nonce (a browser without Ed25519 in its
/// WebCrypto, a page that is not a secure context): trying again changes nothing.
fn could_not_sign(err: &ConnectionError) -> bool {
    matches!(
        err,
        ConnectionError::Credentials(crate::CredentialsError::Signing(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Answered requests' deadlines are dropped from the heap's top at once and from its middle
    // once they are most of it: memory stays bounded however many requests a slow one outlives.
    #[test]
    fn the_deadline_heap_stays_bounded_while_a_slow_request_waits() {
        let now = Instant::now();
        // Keepalives far away: the next timer is a request's.
        let options = Options::new("ws://127.0.0.1:1").ping_interval(Duration::from_secs(600));
        let mut conn = Connection::new(options, now, 1).unwrap();
        conn.handle_input(
            now,
            b"INFO {\"server_id\":\"S\",\"max_payload\":1048576}\r\n",
        );
        conn.handle_input(now, b"PONG\r\n");
        assert!(conn.is_connected());
        conn.request(now, "slow", None, b"", Duration::from_secs(60))
            .unwrap();
        for _ in 0..10_000 {
            let id = conn
                .request(now, "fast", None, b"", Duration::from_secs(120))
                .unwrap();
            let answer = format!(
                "MSG {}{id} {} 2\r\nok\r\n",
                conn.inbox_prefix,
                conn.inbox_sid.unwrap()
            );
            conn.handle_input(now, answer.as_bytes());
            assert!(
                conn.deadlines.len() <= 32 + 2 * conn.requests.len() + 1,
                "{} entries for {} requests",
                conn.deadlines.len(),
                conn.requests.len()
            );
        }
        assert_eq!(conn.requests.len(), 1);
        assert_eq!(conn.poll_timeout(), Some(now + Duration::from_secs(60)));
    }

    // Dropping many subscribers oldest first (each removal from the front of the list) stays
    // cheap, and what is left is found and sent again in order.
    #[test]
    fn subscriptions_removed_one_by_one_leave_the_rest_in_order() {
        let now = Instant::now();
        let mut conn = Connection::new(Options::new("ws://127.0.0.1:1"), now, 1).unwrap();
        let sids: Vec<u64> = (0..20_000)
            .map(|i| {
                let subject = format!("s.{i}");
                conn.subscribe(&subject, SubscribeOptions::default())
                    .unwrap()
            })
            .collect();
        for &sid in &sids[..19_990] {
            conn.unsubscribe(sid);
        }
        assert!(conn.subs.slots() <= 2 * 10 + 33, "{}", conn.subs.slots());
        let left: Vec<u64> = conn.subs.iter().map(|(sid, _)| sid).collect();
        assert_eq!(left, sids[19_990..]);
        assert!(conn.subs.get(sids[0]).is_none() && conn.subs.get(sids[19_995]).is_some());
        // Removed twice, or never there: nothing happens.
        conn.unsubscribe(sids[0]);
        assert!(conn.subs.remove(u64::MAX).is_none());
    }
}
