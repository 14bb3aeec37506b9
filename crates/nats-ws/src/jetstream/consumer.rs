//! Consumers: management, pull `fetch`, acknowledgements, message metadata, and the ordered push
//! consumer that KV watchers stand on.

use std::time::Duration;

use futures::{FutureExt, Stream, StreamExt};
use web_time::Instant;

use super::types::{
    AckPolicy, ApiRequest, ConsumerBrief, ConsumerConfig, ConsumerInfo, ConsumerListPage,
    DeliverPolicy,
};
use super::wire::{server_nanos, CreateConsumer, FromJson};
use super::{json_body, status_error, validate_name, JetStream, JetStreamError};
use crate::client::{Client, ClientEvent, Subscriber};
use crate::error::{PublishError, RequestError};
use crate::header::status;
use crate::message::Message;
use crate::proto::Status;

/// A fetch waiting this long or longer asks for heartbeats ([`FETCH_HEARTBEAT`]), as nats.go's.
const FETCH_HEARTBEAT_FROM: Duration = Duration::from_secs(10);
const FETCH_HEARTBEAT: Duration = Duration::from_secs(5);

/// Options of [`JetStream::fetch`].
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// At most this many messages (at least 1). Default 1.
    pub batch: usize,
    /// Wait at most this long for them (from 10 s on, the pull asks for a heartbeat every 5 s,
    /// and ends after two missed: [`JetStreamError::MissedHeartbeats`]). Default 5 s.
    pub expires: Duration,
}

impl Default for FetchOptions {
    fn default() -> Self {
        FetchOptions {
            batch: 1,
            expires: Duration::from_secs(5),
        }
    }
}

/// Where a JetStream message came from, parsed from its `$JS.ACK…` reply subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    pub domain: Option<String>,
    pub stream: String,
    pub consumer: String,
    /// How many times this message has been delivered (1 = first time).
    pub delivered: u64,
    pub stream_sequence: u64,
    pub consumer_sequence: u64,
    /// Nanoseconds since the Unix epoch when the message was stored.
    pub timestamp_ns: u64,
    /// Messages left for this consumer after this one.
    pub pending: u64,
}

impl MessageInfo {
    /// Parses `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>` and the newer
    /// `$JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>[.<token>]`.
    pub fn parse(reply: &str) -> Option<MessageInfo> {
        let tokens: Vec<&str> = reply.split('.').collect();
        if tokens.len() < 9 || tokens[0] != "$JS" || tokens[1] != "ACK" {
            return None;
        }
        // 11 or more: newer servers may append tokens (nats.go is not strict past the 11th).
        let (domain, rest) = match tokens.len() {
            9 => (None, &tokens[2..]),
            10 => return None,
            _ => {
                let domain = (tokens[2] != "_").then(|| tokens[2].to_owned());
                (domain, &tokens[4..11])
            }
        };
        let n = |i: usize| rest[i].parse::<u64>().ok();
        Some(MessageInfo {
            domain,
            stream: rest[0].to_owned(),
            consumer: rest[1].to_owned(),
            delivered: n(2)?,
            stream_sequence: n(3)?,
            consumer_sequence: n(4)?,
            timestamp_ns: n(5)?,
            pending: n(6)?,
        })
    }
}

/// A message delivered by a consumer, with its acknowledgement handles.
#[derive(Debug, Clone)]
pub struct JsMessage {
    pub message: Message,
    client: Client,
}

impl JsMessage {
    /// Stream, consumer, sequences and pending count; `None` if the reply subject is not `$JS.ACK…`.
    pub fn info(&self) -> Option<MessageInfo> {
        MessageInfo::parse(self.message.reply.as_deref()?)
    }

    fn respond(&self, body: &[u8]) -> Result<(), PublishError> {
        match self.message.reply.as_deref() {
            Some(reply) => self.client.publish(reply, body),
            None => Ok(()),
        }
    }

    /// Processed: do not deliver again.
    pub fn ack(&self) -> Result<(), PublishError> {
        self.respond(b"+ACK")
    }

    /// Not processed: deliver again now.
    pub fn nak(&self) -> Result<(), PublishError> {
        self.respond(b"-NAK")
    }

    /// Not processed: deliver again after `delay`.
    pub fn nak_with_delay(&self, delay: Duration) -> Result<(), PublishError> {
        self.respond(format!("-NAK {{\"delay\":{}}}", delay.as_nanos()).as_bytes())
    }

    /// Still working on it: restart the ack wait.
    pub fn in_progress(&self) -> Result<(), PublishError> {
        self.respond(b"+WPI")
    }

    /// Never deliver again, not even if unacknowledged.
    pub fn term(&self) -> Result<(), PublishError> {
        self.respond(b"+TERM")
    }
}

impl JetStream {
    /// Creates (or, with the same name, updates) a consumer. A `durable_name` makes it durable.
    pub async fn create_consumer(
        &self,
        stream: &str,
        config: &ConsumerConfig,
    ) -> Result<ConsumerInfo, JetStreamError> {
        self.create_consumer_as(stream, config).await
    }

    /// [`JetStream::create_consumer`], the answer read as `T` (all of it, or [`ConsumerBrief`]).
    async fn create_consumer_as<T: FromJson>(
        &self,
        stream: &str,
        config: &ConsumerConfig,
    ) -> Result<T, JetStreamError> {
        validate_name("stream name", stream)?;
        let suffix = match (&config.durable_name, &config.name) {
            (Some(durable), _) => {
                validate_name("consumer name", durable)?;
                format!("CONSUMER.DURABLE.CREATE.{stream}.{durable}")
            }
            (None, Some(name)) => {
                validate_name("consumer name", name)?;
                format!("CONSUMER.CREATE.{stream}.{name}")
            }
            (None, None) => format!("CONSUMER.CREATE.{stream}"),
        };
        self.api_json(
            &suffix,
            &CreateConsumer {
                stream_name: stream,
                config,
            },
        )
        .await
    }

    /// Changes a consumer's configuration (the fields the server lets change).
    pub async fn update_consumer(
        &self,
        stream: &str,
        config: &ConsumerConfig,
    ) -> Result<ConsumerInfo, JetStreamError> {
        self.create_consumer(stream, config).await
    }

    pub async fn consumer_info(
        &self,
        stream: &str,
        consumer: &str,
    ) -> Result<ConsumerInfo, JetStreamError> {
        self.consumer_info_as(stream, consumer).await
    }

    /// Whether `consumer` exists: `Ok` if the server has it, its refusal otherwise.
    async fn consumer_exists(&self, stream: &str, consumer: &str) -> Result<(), JetStreamError> {
        self.consumer_info_as::<ConsumerBrief>(stream, consumer)
            .await
            .map(drop)
    }

    async fn consumer_info_as<T: FromJson>(
        &self,
        stream: &str,
        consumer: &str,
    ) -> Result<T, JetStreamError> {
        validate_name("stream name", stream)?;
        validate_name("consumer name", consumer)?;
        self.api(&format!("CONSUMER.INFO.{stream}.{consumer}"), b"")
            .await
    }

    /// Every consumer of a stream, all pages.
    pub async fn consumers(&self, stream: &str) -> Result<Vec<ConsumerInfo>, JetStreamError> {
        validate_name("stream name", stream)?;
        let (mut all, mut offset) = (Vec::<ConsumerInfo>::new(), 0);
        let mut seen = std::collections::HashSet::new();
        loop {
            let body = ApiRequest {
                offset: Some(offset),
                ..Default::default()
            };
            let page: ConsumerListPage = self
                .api_json(&format!("CONSUMER.LIST.{stream}"), &body)
                .await?;
            let got = page.consumers.unwrap_or_default();
            // As for streams: those a cluster left out still count in the offsets, and a
            // consumer that moved between pages while they were read is listed once.
            offset += got.len() + page.missing.len();
            let done = got.is_empty() && page.missing.is_empty() || offset >= page.total;
            // A consumer being created or deleted right now is listed as null: skip it.
            for info in got.into_iter().flatten() {
                if seen.insert(info.name.clone()) {
                    all.push(*info);
                }
            }
            if done {
                return Ok(all);
            }
        }
    }

    pub async fn delete_consumer(
        &self,
        stream: &str,
        consumer: &str,
    ) -> Result<(), JetStreamError> {
        validate_name("stream name", stream)?;
        validate_name("consumer name", consumer)?;
        let _: super::types::SuccessResponse = self
            .api(&format!("CONSUMER.DELETE.{stream}.{consumer}"), b"")
            .await?;
        Ok(())
    }

    /// Pulls up to `batch` messages from a pull consumer, waiting at most `expires` for them.
    /// Returns fewer (possibly none) when the consumer has no more within that time.
    pub async fn fetch(
        &self,
        stream: &str,
        consumer: &str,
        options: FetchOptions,
    ) -> Result<Vec<JsMessage>, JetStreamError> {
        validate_name("stream name", stream)?;
        validate_name("consumer name", consumer)?;
        if options.batch == 0 {
            return Err(JetStreamError::InvalidArgument(
                "a fetch's batch must be at least 1",
            ));
        }
        let client = self.client();
        let inbox = client.new_inbox();
        let mut sub = client.subscribe(&inbox)?;
        // A long pull asks for heartbeats (as nats.go's Fetch does from 10 s on): one the server
        // lost (a restart, or a cut connection while a message came) ends after two missed,
        // not at its expiry.
        let heartbeat = (options.expires >= FETCH_HEARTBEAT_FROM).then_some(FETCH_HEARTBEAT);
        let body = ApiRequest {
            batch: Some(options.batch),
            // Capped at what the server reads (`Duration::MAX`: as long as it takes).
            expires: Some(server_nanos(options.expires)),
            idle_heartbeat: heartbeat.map(server_nanos),
            ..Default::default()
        };
        let subject = self.api_subject(&format!("CONSUMER.MSG.NEXT.{stream}.{consumer}"));
        client.publish_message(&subject, Some(&inbox), None, &json_body(&body))?;
        let mut messages = Vec::with_capacity(options.batch);
        // The server ends the request itself (408) at `expires`; the local deadline is a safety
        // net, a second later (as nats.go's). nats-server before 2.9.16 can drop a request at its
        // expiry without the 408 when a message comes at that moment: a batch held until the
        // request timeout (5 s) would age towards the consumer's ack wait, after which the server
        // delivers it again.
        let slack = self.timeout().min(Duration::from_secs(1));
        let deadline = crate::rt::sleep(options.expires.saturating_add(slack)).fuse();
        futures::pin_mut!(deadline);
        let mut unanswered = false;
        let mut no_responders = false;
        // When the server was last heard from (anything on the pull's inbox), counted only
        // while connected: a pull cannot hear its server while disconnected.
        let mut heard = Instant::now();
        while messages.len() < options.batch {
            let silence = async {
                match heartbeat {
                    Some(every) => crate::rt::sleep(every).await,
                    None => std::future::pending().await,
                }
            };
            let next = futures::select_biased! {
                m = sub.next().fuse() => m,
                _ = deadline => {
                    unanswered = true;
                    break;
                }
                () = silence.fuse() => {
                    let quiet = heard.elapsed();
                    if !client.status().is_connected() {
                        heard = Instant::now();
                    } else if heartbeat.is_some_and(|every| quiet >= every * 2) {
                        if messages.is_empty() {
                            return Err(JetStreamError::MissedHeartbeats(quiet));
                        }
                        break;
                    }
                    continue;
                }
            };
            heard = Instant::now();
            let Some(message) = next else { break };
            let message = message?;
            match message.status() {
                None => messages.push(JsMessage {
                    message,
                    client: client.clone(),
                }),
                // Heartbeats and the like: keep waiting.
                Some(status::CONTROL) => {}
                // 404 no messages, 408 request expired, 409 e.g. max waiting exceeded: the pull is over.
                Some(status::NOT_FOUND | status::TIMEOUT) => break,
                // Newer servers (2.10+) answer a pull on a missing consumer with no responders.
                Some(status::NO_RESPONDERS) if messages.is_empty() => {
                    no_responders = true;
                    break;
                }
                Some(_) => {
                    if let Some(error) = status_error(&message).filter(|_| messages.is_empty()) {
                        return Err(error);
                    }
                    break;
                }
            }
        }
        if (unanswered || no_responders) && messages.is_empty() {
            // Nothing serves this pull, e.g. no such consumer: nats-server 2.9 drops the request
            // silently (not even a 408 at the expiry), 2.10+ answers 503. Say why, the same way
            // for both, rather than return an empty batch.
            self.consumer_exists(stream, consumer).await?;
            if no_responders {
                return Err(JetStreamError::NotEnabled { subject });
            }
        }
        Ok(messages)
    }

    /// An ordered push consumer on `stream`: every message once, in stream order, across reconnects
    /// and server restarts (the consumer is recreated from the last sequence seen + 1, or before
    /// any message from where the first consumer started). It reads from one consumer at a time,
    /// named `<random>_<serial>`, and deletes it when dropped; the delete of one it replaces is
    /// sent before the next is created, without waiting for the answer.
    pub fn ordered(
        &self,
        stream: &str,
        options: OrderedOptions,
    ) -> impl Stream<Item = Result<JsMessage, JetStreamError>> + Unpin {
        self.ordered_items(stream, options).filter_map(|item| {
            futures::future::ready(match item {
                Ok(OrderedItem::Message(m)) => Some(Ok(m)),
                Ok(OrderedItem::CaughtUp | OrderedItem::Reset | OrderedItem::Resumed) => None,
                Err(e) => Some(Err(e)),
            })
        })
    }

    /// [`JetStream::ordered`], and a marker: [`OrderedItem::CaughtUp`] once every message that
    /// matched when the consumer was first made has been delivered (at once if none did), so
    /// what follows is new. Given once, and again only after an [`OrderedItem::Reset`] (the
    /// stream was deleted and made again, and its messages start over); counted as a KV watch's
    /// `InitialDone` is ([`CatchUp`]): a page shows a history, then announces only what arrives.
    pub fn ordered_items(
        &self,
        stream: &str,
        options: OrderedOptions,
    ) -> impl Stream<Item = Result<OrderedItem, JetStreamError>> + Unpin {
        struct State {
            ordered: Ordered,
            catch_up: CatchUp,
            due: bool,
        }
        let state = State {
            catch_up: CatchUp::new(options.deliver_policy),
            ordered: Ordered::new(self.clone(), stream, options),
            due: false,
        };
        Box::pin(futures::stream::unfold(state, |mut s| async move {
            loop {
                if std::mem::take(&mut s.due) {
                    return Some((Ok(OrderedItem::CaughtUp), s));
                }
                match s.ordered.next_event().await? {
                    Ok(OrderedEvent::Created {
                        num_pending,
                        reset,
                        resumed,
                    }) => {
                        s.due = s.catch_up.created(num_pending, reset);
                        if reset {
                            return Some((Ok(OrderedItem::Reset), s));
                        }
                        if resumed {
                            return Some((Ok(OrderedItem::Resumed), s));
                        }
                    }
                    Ok(OrderedEvent::Idle) => s.due = s.catch_up.idle(),
                    Ok(OrderedEvent::Message(m)) => {
                        // The reply subject is read only until caught up.
                        if !s.catch_up.is_done() {
                            s.due = s.catch_up.delivered(m.info().map(|info| info.pending));
                        }
                        return Some((Ok(OrderedItem::Message(m)), s));
                    }
                    Err(e) => return Some((Err(e), s)),
                }
            }
        }))
    }
}

/// What [`JetStream::ordered_items`] delivers.
#[derive(Debug)]
#[non_exhaustive]
pub enum OrderedItem {
    /// The next message, in stream order.
    Message(JsMessage),
    /// Every message that matched when the consumer was first made has been delivered.
    CaughtUp,
    /// The stream was deleted and made again: what was delivered before is gone, and its
    /// messages start over (a new [`OrderedItem::CaughtUp`] follows them). Like `Resumed`, it
    /// also ends an error given before.
    Reset,
    /// After an error it gave, the consumer is made again and delivers from where it was: the
    /// error is over (said at once, not with the next message, which may be a long time coming).
    Resumed,
}

/// Says when an ordered consumer has delivered every message that matched when it was first
/// made: a KV watch's `InitialDone`, [`OrderedItem::CaughtUp`]. Counted down from the first
/// consumer's `num_pending`, one per message delivered; an idle heartbeat with nothing
/// undelivered ends it early (messages removed before they were delivered never come), and so
/// does a message whose reply subject says 0 pending, except for `LastPerSubject`.
///
/// There nats-server's count is not trusted (nats.go and nats.js trust it): 2.10+ lowers its
/// cached count at once when a limit removes a message at or after the next one to deliver, and
/// raises it for a new message only when the stream's signal reaches the consumer. For the other
/// policies a removed message was counted and a new one was not (0 pending then means nothing of
/// what matched at first is left); a last-per-subject consumer counts one message per subject,
/// so the removal of an older revision lowers the count by one it never held, and under writes to
/// a bucket with a history limit its first message can say 0 pending (`keys` returned one key of
/// 51 on 2.15.1). Those removals can reach the count a consumer's creation is answered with, too
/// (seen as 0 on 2.15.1): then the marker comes before some of the values, which follow it. KV
/// `keys`, `keys_matching` and `history` read the stream's own count first for that (of the
/// subjects, of the key's revisions: an empty history of a key written without pause, now and
/// then, on 2.15.1), and do not trust a message's 0 either: it comes from the same counter (the
/// same key's history often ended after 1 of its 64 revisions). A watch reads the count of its
/// keys alongside its consumer's creation, so its first values wait for nothing, and gives its
/// marker once that many messages came (a marker after 1 key of 50 was seen on 2.15.1 under
/// writes to every key); a key written between the creation and its delivery can still follow
/// the marker, which no count can tell.
#[derive(Debug)]
pub(crate) struct CatchUp {
    /// Of what matched at first, how many are still to come; `None` before the first creation.
    left: Option<u64>,
    done: bool,
    /// Whether a message's pending count of 0 ends it (not for `LastPerSubject`).
    trusts_pending: bool,
}

impl CatchUp {
    /// For a consumer made with `policy`.
    pub(crate) fn new(policy: DeliverPolicy) -> Self {
        CatchUp {
            left: None,
            done: false,
            trusts_pending: policy != DeliverPolicy::LastPerSubject,
        }
    }

    /// A consumer (re)created with `num_pending` messages matching it; `reset`: the stream was
    /// made again and its messages start over. Whether that makes it caught up.
    pub(crate) fn created(&mut self, num_pending: u64, reset: bool) -> bool {
        if reset {
            *self = CatchUp {
                left: None,
                done: false,
                ..*self
            };
        }
        if self.done {
            return false;
        }
        // Made again on the way (a reconnect, a gap): what was published since the first one is
        // new, not part of what there was to catch up with.
        let left = self.left.map_or(num_pending, |left| left.min(num_pending));
        self.left = Some(left);
        self.end_if(left == 0)
    }

    /// A message's pending count of 0 no longer ends it, whatever the policy: for one-time reads
    /// (KV `keys`, `history`), which count down from a floor of their own.
    #[cfg(feature = "kv")]
    pub(crate) fn distrust_pending(&mut self) {
        self.trusts_pending = false;
    }

    /// A message delivered, with the pending count its reply subject carries. Whether that makes
    /// it caught up.
    pub(crate) fn delivered(&mut self, pending: Option<u64>) -> bool {
        if self.done {
            return false;
        }
        let left = self.left.unwrap_or(0).saturating_sub(1);
        self.left = Some(left);
        self.end_if(left == 0 || (self.trusts_pending && pending == Some(0)))
    }

    /// The consumer is idle with nothing undelivered. Whether that makes it caught up.
    pub(crate) fn idle(&mut self) -> bool {
        let started = self.left.is_some();
        !self.done && self.end_if(started)
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    fn end_if(&mut self, now: bool) -> bool {
        self.done |= now;
        now
    }
}

/// The longest wait between two tries to make a consumer that failed for what it asked (its
/// stream gone, a refusal): a bucket deleted and made again is watched again within it, however
/// long it was gone (nats.js waits 5 s at most between such tries).
const MAX_FAILURE_PAUSE: Duration = Duration::from_secs(5);

/// The wait between two tries to make a consumer the user's permissions refused: only a change
/// of them in the server's config makes another try work (signing in as another user makes
/// another client), and each refusal is a line in the server's log. (nats.js tries such a watch
/// again at its usual pace, up to 5 s.)
const PERMISSION_PAUSE: Duration = Duration::from_secs(30);

/// The wait after another try that failed with `e`: doubled from 1 s, at most
/// [`MAX_FAILURE_PAUSE`]; [`PERMISSION_PAUSE`] after a refusal for the user's permissions.
fn next_failure_pause(pause: Duration, e: &JetStreamError) -> Duration {
    if e.is_permission_denied() {
        return PERMISSION_PAUSE;
    }
    (pause * 2).clamp(Duration::from_secs(1), MAX_FAILURE_PAUSE)
}

/// Options of an ordered consumer.
#[derive(Debug, Clone)]
pub struct OrderedOptions {
    pub filter_subject: Option<String>,
    pub deliver_policy: DeliverPolicy,
    /// With `DeliverPolicy::ByStartSequence`.
    pub start_sequence: Option<u64>,
    /// Deliver headers only (with `Nats-Msg-Size`), no payloads.
    pub headers_only: bool,
    /// The server sends a heartbeat this often when idle; two missed ones (counted while
    /// connected, as nats.go and nats.js count them) recreate the consumer, and so does one whose
    /// `Nats-Last-Consumer` is not the last message received. Default 5 s.
    pub idle_heartbeat: Duration,
    /// For a one-shot read (a bucket's keys, a key's history): how long the consumer may go
    /// without being made (the server unreachable, JetStream not answering) before the next
    /// event is that failure instead of another try; a lost connection then ends the consumer at
    /// once, to be made again within that time. `None` (the default): keep trying for as long as
    /// it takes, as a watch does.
    pub give_up_after: Option<Duration>,
}

impl Default for OrderedOptions {
    fn default() -> Self {
        OrderedOptions {
            filter_subject: None,
            deliver_policy: DeliverPolicy::All,
            start_sequence: None,
            headers_only: false,
            idle_heartbeat: Duration::from_secs(5),
            give_up_after: None,
        }
    }
}

/// How long a recreation waits for the stream's info (see `Ordered::stream_started_over`).
const STREAM_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// How long the check after a server left the cluster waits for the consumer's info
/// (see `Ordered::check_consumer`).
const CONSUMER_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// Missed heartbeats that make the consumer be recreated.
const MISSED_HEARTBEATS: u32 = 2;

/// Whether the consumer still exists, asked after a server left the cluster.
#[cfg(not(target_arch = "wasm32"))]
type Check = futures::future::BoxFuture<'static, bool>;
#[cfg(target_arch = "wasm32")]
type Check = futures::future::LocalBoxFuture<'static, bool>;

/// The idle timer: kept across deliveries, which only move `last_activity` (a timer set and
/// cleared per message was a `setTimeout` and a `clearTimeout` for each frame of a busy watch).
#[cfg(not(target_arch = "wasm32"))]
type Timer = futures::future::BoxFuture<'static, ()>;
#[cfg(target_arch = "wasm32")]
type Timer = futures::future::LocalBoxFuture<'static, ()>;

pub(crate) enum OrderedEvent {
    /// A (re)created consumer; `num_pending` messages match it at creation. `reset`: the stream
    /// had been deleted and created again (see `Ordered::stream_started_over`), so the consumer
    /// started over with the original deliver policy instead of resuming.
    Created {
        num_pending: u64,
        reset: bool,
        /// An error was given since the last consumer was made: it is over.
        resumed: bool,
    },
    Message(JsMessage),
    /// An idle heartbeat with nothing undelivered: the consumer has sent all it had.
    Idle,
}

/// The ordered consumer's state machine, driven by `next_event`.
pub struct Ordered {
    js: JetStream,
    stream: String,
    options: OrderedOptions,
    sub: Option<Subscriber>,
    statuses: std::pin::Pin<Box<dyn Stream<Item = Status> + Send>>,
    /// The client's events, for [`ClientEvent::ServerLeft`].
    events: std::pin::Pin<Box<dyn Stream<Item = ClientEvent> + Send>>,
    /// Asking whether the consumer survived a server leaving; cleared by any delivery.
    check: Option<Check>,
    disconnected: bool,
    last_stream_seq: u64,
    last_consumer_seq: u64,
    /// Until a message is delivered: the stream sequence the consumer started after, from its
    /// create reply (`delivered.stream_seq`). A recreation continues from there rather than with
    /// the original policy, which for `New` or `Last` would skip what was stored in between.
    cursor: Option<u64>,
    /// The server's time of the last consumer's creation: a stream made after it is not the
    /// one that consumer read.
    consumer_created: Option<web_time::SystemTime>,
    /// Consumer names are `<name_base>_<serial>`, a new serial for each creation attempt.
    name_base: String,
    serial: u64,
    /// The consumer that feeds `sub`.
    current: Option<String>,
    /// Consumers that may still exist on the server: the one a reset replaces, and one whose
    /// creation got no answer (the server may have created it). Their deletes are requested at
    /// the next creation (see `release_stale`; one made while disconnected keeps them for the
    /// next), and on drop, so this holds a few names at most.
    stale: Vec<String>,
    last_activity: Instant,
    /// Fires when the heartbeats could have been missed if nothing arrived since it was set;
    /// only while connected.
    idle_timer: Option<Timer>,
    retry_pause: Duration,
    /// Creates in a row that got no answer (see `JetStream::attempt_timeout`).
    unanswered_creates: u32,
    /// Why the consumer is made again suggests a server died or a cluster elects (a check after
    /// a server left found it gone, its heartbeats stopped, the connection came back), not a
    /// slow client or server (a gap): then its creates are short tries. Set only once a consumer
    /// was made (each cause needs one); cleared by a create.
    election_likely: bool,
    /// The stream's info went unanswered at a try: not asked again until a create gets an
    /// answer (or fails for the connection) or the connection comes back.
    stream_unanswered: bool,
    /// Wait before trying again after a non-transient failure; zero when the last try worked.
    failure_pause: Duration,
    /// The stream was found to have started over; reported with the next consumer created.
    reset_pending: bool,
    /// The stream started over at some point: everything in it is newer than what was delivered
    /// before (see [`Ordered::config`]).
    started_over: bool,
    /// Since when the consumer is being made (tries that failed for the connection or an
    /// unanswered API included); `None` while it runs. For `give_up_after`.
    making_since: Option<Instant>,
    /// An error was given since the last consumer was made (see `OrderedEvent::Created`).
    reported: bool,
}

impl std::fmt::Debug for Ordered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ordered")
            .field("stream", &self.stream)
            .field("last_stream_seq", &self.last_stream_seq)
            .finish()
    }
}

impl Ordered {
    pub(crate) fn new(js: JetStream, stream: &str, options: OrderedOptions) -> Self {
        let statuses = Box::pin(js.client().status_stream());
        let events = Box::pin(js.client().events());
        // The random token of a fresh inbox: 22 alphanumerics, valid in a consumer name.
        let inbox = js.client().new_inbox();
        let name_base = inbox.rsplit('.').next().unwrap_or_default().to_owned();
        Ordered {
            js,
            stream: stream.to_owned(),
            options,
            sub: None,
            statuses,
            events,
            check: None,
            disconnected: false,
            last_stream_seq: 0,
            last_consumer_seq: 0,
            cursor: None,
            consumer_created: None,
            name_base,
            serial: 0,
            current: None,
            stale: Vec::new(),
            last_activity: Instant::now(),
            idle_timer: None,
            retry_pause: Duration::from_millis(100),
            unanswered_creates: 0,
            election_likely: false,
            stream_unanswered: false,
            failure_pause: Duration::ZERO,
            reset_pending: false,
            started_over: false,
            making_since: None,
            reported: false,
        }
    }

    /// A one-shot read has tried to make its consumer for as long as it may.
    fn out_of_time(&self) -> bool {
        match (self.options.give_up_after, self.making_since) {
            (Some(limit), Some(since)) => since.elapsed() >= limit,
            _ => false,
        }
    }

    fn failed_before(&self) -> bool {
        !self.failure_pause.is_zero()
    }

    /// The stream sequence of the last message delivered.
    pub fn last_stream_sequence(&self) -> u64 {
        self.last_stream_seq
    }

    fn config(&self, name: &str, inbox: String) -> ConsumerConfig {
        let resume_after = match self.last_stream_seq {
            0 => self.cursor,
            last => Some(last),
        };
        let (deliver_policy, opt_start_seq) = match resume_after {
            Some(seq) => (DeliverPolicy::ByStartSequence, Some(seq.saturating_add(1))),
            // A stream that started over holds nothing older than where the consumer began:
            // "from now on" (new, last) or "from this sequence" (of the old stream) would skip
            // what the new one holds, or start past its end; all of it is for this consumer.
            // (Last per subject and by start time still say what they said.)
            None if self.started_over
                && matches!(
                    self.options.deliver_policy,
                    DeliverPolicy::New | DeliverPolicy::Last | DeliverPolicy::ByStartSequence
                ) =>
            {
                (DeliverPolicy::All, None)
            }
            None => (self.options.deliver_policy, self.options.start_sequence),
        };
        ConsumerConfig {
            name: Some(name.to_owned()),
            deliver_subject: Some(inbox),
            deliver_policy,
            opt_start_seq,
            ack_policy: AckPolicy::None,
            max_deliver: 1,
            flow_control: true,
            idle_heartbeat: self.options.idle_heartbeat,
            filter_subject: self.options.filter_subject.clone(),
            headers_only: self.options.headers_only,
            mem_storage: true,
            inactive_threshold: Duration::from_secs(300),
            num_replicas: Some(1),
            ..Default::default()
        }
    }

    /// Whether the stream was deleted and created again (or restored from an older copy, which
    /// keeps its creation time: only its ending sooner tells): its sequences start over, and resuming after the last one delivered would skip everything up
    /// to it (a KV watch would show the old values as current until the new stream got that
    /// far). Said by the stream being newer than the last consumer made on it, or by its ending
    /// before where a recreation would resume (sequences never go down otherwise: a purge keeps
    /// them, limits drop from the front). One request per try (none while the last one went
    /// unanswered), given `STREAM_CHECK_TIMEOUT`; on a refusal (no permission) it resumes as
    /// before, and so it does without an answer (`None`: a cluster still electing the stream's
    /// leader).
    fn stream_started_over(&self) -> impl std::future::Future<Output = Option<bool>> + 'static {
        let resume_after = match self.last_stream_seq {
            // A start past the stream's end (2.10+ does not pull it back) is no sign of anything.
            0 if self.options.deliver_policy == DeliverPolicy::ByStartSequence => None,
            0 => self.cursor,
            last => Some(last),
        };
        let consumer_created = self.consumer_created;
        let js = self.js.clone().with_timeout(STREAM_CHECK_TIMEOUT);
        let stream = self.stream.clone();
        async move {
            let Some(after) = resume_after.filter(|&seq| seq > 0) else {
                return Some(false);
            };
            // In a cluster only the leader's word counts: during an election a follower may
            // answer from a copy that is behind. (A server on its own names no cluster.)
            match js.stream_brief(&stream).await {
                Ok(info) => {
                    let newer = matches!(
                        (info.created, consumer_created),
                        (Some(stream), Some(consumer)) if stream > consumer
                    );
                    Some(
                        (newer || info.state.last_seq < after)
                            && info
                                .cluster
                                .as_ref()
                                .is_none_or(|c| c.leader.as_deref().is_some_and(|l| !l.is_empty())),
                    )
                }
                Err(
                    JetStreamError::NotEnabled { .. }
                    | JetStreamError::Request(RequestError::TimedOut { .. }),
                ) => None,
                Err(_) => Some(false),
            }
        }
    }

    /// Creates the next consumer; `Ok((num_pending, reset))`, see [`OrderedEvent::Created`].
    async fn create(&mut self) -> Result<(u64, bool), JetStreamError> {
        self.sub = None;
        self.check = None;
        self.stale.extend(self.current.take());
        self.release_stale();
        // Asked once while unanswered: during an election each try would wait for it again
        // (a second per try, on top of the create's own).
        if !self.stream_unanswered {
            match self.stream_started_over().await {
                Some(true) => {
                    self.last_stream_seq = 0;
                    self.cursor = None;
                    self.started_over = true;
                    // Said with the next consumer that is created, even if this attempt fails.
                    self.reset_pending = true;
                }
                Some(false) => {}
                None => self.stream_unanswered = true,
            }
        }
        let client = self.js.client().clone();
        let inbox = client.new_inbox();
        let sub = client.subscribe(&inbox)?;
        self.serial += 1;
        let name = format!("{}_{}", self.name_base, self.serial);
        let config = self.config(&name, inbox);
        // Counted as ours from the moment it is asked for, so that it is deleted even if this
        // future is dropped before the answer comes.
        self.stale.push(name);
        self.forget_earlier_connections();
        // In a cluster that just lost a server, a create placed on the dead one or sent to a
        // dead JetStream leader goes unanswered (in
        // `ordered_consumer_is_made_again_soon_after_the_node_running_it_dies`, with the API's
        // 5 s, 8 of 12 first tries after a kill did, once 3 in a row: 16.7 s).
        // Short tries when re-made in a cluster, where an election is the likely reason.
        let timeout = match self.election_likely && self.js.in_cluster() {
            true => JetStream::attempt_timeout(self.unanswered_creates, self.js.timeout()),
            false => self.js.timeout(),
        };
        let created = (self.js.clone().with_timeout(timeout))
            .create_consumer_as::<ConsumerBrief>(&self.stream, &config)
            .await;
        if matches!(
            created,
            Err(JetStreamError::Request(RequestError::TimedOut { .. }))
        ) {
            self.unanswered_creates = self.unanswered_creates.saturating_add(1);
        } else {
            self.unanswered_creates = 0;
            // Any answer, or a lost connection, ends the election's skipping of the stream
            // check: a stream found gone and made again is checked at the next try.
            self.stream_unanswered = false;
        }
        // Only an answer from the API says the consumer was not created; after a timeout or a lost
        // connection the server may well have created it: it stays in `stale`.
        let info = match created {
            Ok(info) => info,
            Err(e) => {
                // Refused, or never reached a server: not created.
                if matches!(
                    e,
                    JetStreamError::Api { .. }
                        | JetStreamError::NotEnabled { .. }
                        | JetStreamError::Request(
                            RequestError::NotConnected { .. } | RequestError::NoResponders { .. }
                        )
                ) {
                    self.stale.pop();
                }
                return Err(e);
            }
        };
        self.current = self.stale.pop();
        self.consumer_created = info.created;
        self.election_likely = false;
        // Last values per subject that are still to come are not a range of the stream (the
        // stream holds older revisions between them): until one is delivered, a recreation takes
        // the last values again instead.
        let snapshot_pending =
            self.options.deliver_policy == DeliverPolicy::LastPerSubject && info.num_pending > 0;
        if self.last_stream_seq == 0 && !snapshot_pending {
            self.cursor = Some(info.delivered.stream_seq);
        }
        self.sub = Some(sub);
        self.last_consumer_seq = 0;
        self.last_activity = Instant::now();
        // What matched at creation: a server that took the info after it began to deliver (a
        // cluster's new leader can) counts what it delivered as no longer pending; nats.go adds
        // it back the same way.
        let matched = info.num_pending.saturating_add(info.delivered.consumer_seq);
        Ok((matched, std::mem::take(&mut self.reset_pending)))
    }

    /// What the client said before this consumer is asked for is of connections it will not be
    /// made on: an outage that ended before (a watch made before it and first polled after it) is
    /// no reason to make it again, nor is a server that left the cluster before. Read here, just
    /// before the create is sent, so that only what comes after it counts. (A connection lost
    /// and back between this and the send costs one recreation, as before.)
    fn forget_earlier_connections(&mut self) {
        while let Some(Some(status)) = self.statuses.next().now_or_never() {
            self.disconnected = !status.is_connected();
        }
        while let Some(Some(_)) = self.events.next().now_or_never() {}
    }

    /// Whether the current consumer is still there, asked when a server left the cluster: one
    /// that was on it is gone, and its heartbeats would say so only after
    /// `MISSED_HEARTBEATS` × `idle_heartbeat` (10 s by default). Any answer but its info within
    /// `CONSUMER_CHECK_TIMEOUT` — no answer (the server that had it is gone), "not found",
    /// "cluster not available" — counts as gone: recreating one that was not costs a consumer,
    /// waiting costs the user seconds.
    fn check_consumer(&self) -> Option<Check> {
        let name = self.current.clone()?;
        let js = self.js.clone().with_timeout(CONSUMER_CHECK_TIMEOUT);
        let stream = self.stream.clone();
        let check = async move { js.consumer_exists(&stream, &name).await.is_ok() };
        #[cfg(not(target_arch = "wasm32"))]
        let check = check.boxed();
        #[cfg(target_arch = "wasm32")]
        let check = check.boxed_local();
        Some(check)
    }

    /// Asks the server to delete the consumers in `stale` and forgets those asked about, without
    /// waiting for the answers, as nats.go does when it resets an ordered consumer: after the
    /// server that ran them died, or while a cluster elects leaders, a delete can go unanswered
    /// for seconds, and waiting for it held up the new consumer (a watcher showed nothing new for
    /// 15–27 s after a node of a cluster was killed). While disconnected they are kept for the
    /// next creation (on drop, left). One refused (a user who may not delete consumers) or lost
    /// leaves the consumer to the server's inactive threshold (5 minutes); the refusal ends with
    /// the request rather than reach the application's [`crate::ClientEvent`]s, as the
    /// application asked for nothing.
    fn release_stale(&mut self) {
        let client = self.js.client();
        let stream = &self.stream;
        self.stale.retain(|name| {
            let subject = self
                .js
                .api_subject(&format!("CONSUMER.DELETE.{stream}.{name}"));
            !client.request_detached(&subject, b"", self.js.timeout())
        });
    }

    /// An error for the caller; the next consumer made says it is over.
    fn report(&mut self, e: JetStreamError) -> Option<Result<OrderedEvent, JetStreamError>> {
        self.reported = true;
        Some(Err(e))
    }

    /// A watch's create that failed while connected because JetStream itself does not answer for
    /// this account: not enabled for it, not running on the server, or a domain no server serves.
    /// Not the connection's doing, and it may last (a server restarted without JetStream): the
    /// watch says so and tries again after a pause, as after a refusal, instead of waiting
    /// without a word. (A one-shot read says it when its time is up.)
    fn jetstream_is_away(&self, e: &JetStreamError) -> bool {
        self.options.give_up_after.is_none()
            && matches!(
                e,
                JetStreamError::NotEnabled { .. }
                    | JetStreamError::Request(RequestError::NoResponders { .. })
            )
            && self.js.client().status().is_connected()
    }

    /// The next message or consumer (re)creation; `None` once the client is closed.
    pub(crate) async fn next_event(&mut self) -> Option<Result<OrderedEvent, JetStreamError>> {
        loop {
            if self.sub.is_none() {
                if matches!(self.js.client().status(), Status::Closed) {
                    return None;
                }
                if self.failed_before() {
                    // Or until a new connection: its server may take what the last one refused
                    // (permissions changed in a restart), or have the stream back.
                    futures::select_biased! {
                        _ = crate::rt::sleep(self.failure_pause).fuse() => {},
                        _ = self.js.client().next_reconnect().fuse() => {},
                    }
                }
                let tried = Instant::now();
                self.making_since.get_or_insert(tried);
                match self.create().await {
                    Ok((num_pending, reset)) => {
                        self.making_since = None;
                        self.retry_pause = Duration::from_millis(100);
                        // The failure pause is reset by the first message or heartbeat the new
                        // consumer delivers, not here: a consumer whose deliveries are refused
                        // is made without error, and must not be made again every second.
                        return Some(Ok(OrderedEvent::Created {
                            num_pending,
                            reset,
                            resumed: std::mem::take(&mut self.reported),
                        }));
                    }
                    // An unanswered create waited its timeout already: no pause on top, or the
                    // tries after a cluster's election would come seconds apart (unless that wait
                    // was next to nothing: a tiny API timeout must not make a loop of it).
                    // A one-shot read says why it has nothing, as a request would, rather than
                    // wait for as long as the outage lasts.
                    Err(e) if e.is_transient() && self.out_of_time() => {
                        self.making_since = None;
                        return self.report(e);
                    }
                    Err(JetStreamError::Request(RequestError::TimedOut { .. }))
                        if tried.elapsed() >= super::MIN_UNANSWERED =>
                    {
                        continue
                    }
                    Err(e) if e.is_transient() && !self.jetstream_is_away(&e) => {
                        self.js.wait_for_connection(self.retry_pause).await;
                        self.retry_pause = (self.retry_pause * 2).min(Duration::from_secs(2));
                        continue;
                    }
                    Err(e) => {
                        self.making_since = None;
                        // Reported, and tried again on the next call, after a pause that grows
                        // (up to `MAX_FAILURE_PAUSE`; `PERMISSION_PAUSE` after a refusal), so a
                        // stream that is gone is not hammered.
                        let pause = std::mem::replace(&mut self.failure_pause, Duration::ZERO);
                        self.failure_pause = next_failure_pause(pause, &e);
                        return self.report(e);
                    }
                }
            }
            let idle_limit = self
                .options
                .idle_heartbeat
                .saturating_mul(MISSED_HEARTBEATS);
            // Heartbeats can only be missed while connected: while disconnected there is no timer,
            // only status changes and messages wake this loop (a timer that already expired would
            // otherwise fire at once, again and again, until the connection is back).
            if !self.js.client().status().is_connected() {
                self.idle_timer = None;
            } else if self.idle_timer.is_none() {
                let left = idle_limit.saturating_sub(self.last_activity.elapsed());
                self.idle_timer = Some(Box::pin(crate::rt::sleep(left)));
            }
            let idle = self.idle_timer.as_mut();
            let idle = async move {
                match idle {
                    Some(timer) => timer.await,
                    None => futures::future::pending().await,
                }
            };
            let check = self.check.as_mut();
            let check = async move {
                match check {
                    Some(check) => check.await,
                    None => futures::future::pending().await,
                }
            };
            let sub = self.sub.as_mut().expect("created above");
            // Biased: a message already waiting counts as activity before an idle timer that
            // became ready while the application was busy elsewhere, or a check's answer.
            let woke = futures::select_biased! {
                m = sub.next().fuse() => Wake::Message(m),
                s = self.statuses.next().fuse() => Wake::Status(s),
                e = self.events.next().fuse() => Wake::Event(e),
                alive = check.fuse() => Wake::Checked(alive),
                _ = idle.fuse() => Wake::Idle,
            };
            match woke {
                Wake::Message(None) => self.sub = None,
                Wake::Message(Some(Err(e))) => {
                    // The delivery subscription was refused (a user who may create consumers but
                    // not subscribe to their inbox): it has ended. A consumer made again at once
                    // would be refused again, at the speed of a round trip: pause as after a
                    // failed creation.
                    // Not counted as reported: the next consumer is made without error and then
                    // refused again, so its making would say "resumed" for a moment each time.
                    self.sub = None;
                    let e = JetStreamError::from(e);
                    let pause = std::mem::replace(&mut self.failure_pause, Duration::ZERO);
                    self.failure_pause = next_failure_pause(pause, &e);
                    return Some(Err(e));
                }
                Wake::Message(Some(Ok(message))) => {
                    self.last_activity = Instant::now();
                    self.failure_pause = Duration::ZERO;
                    // The consumer is alive: whatever a check would say, this says it later.
                    self.check = None;
                    if message.status() == Some(status::CONTROL) {
                        if heartbeat_shows_a_gap(&message, self.last_consumer_seq) {
                            // Messages were lost after the last one delivered (nothing later
                            // would reveal it): start again after it, as nats.go does.
                            self.sub = None;
                            continue;
                        }
                        self.answer_control(&message);
                        // A heartbeat (a flow control request has a reply subject) from a
                        // consumer that is not stalled: it has nothing more to send now.
                        let stalled = message
                            .headers
                            .as_ref()
                            .is_some_and(|h| h.get("Nats-Consumer-Stalled").is_some());
                        if message.reply.is_none() && !stalled {
                            return Some(Ok(OrderedEvent::Idle));
                        }
                        continue;
                    }
                    let Some(info) = message.reply.as_deref().and_then(MessageInfo::parse) else {
                        continue;
                    };
                    if Some(info.consumer_sequence) != self.last_consumer_seq.checked_add(1) {
                        // A gap: something was lost; start again after the last message delivered.
                        self.sub = None;
                        continue;
                    }
                    self.last_consumer_seq = info.consumer_sequence;
                    if info.stream_sequence == self.last_stream_seq {
                        // Delivered already: nats-server 2.9.10 sends a last-per-subject
                        // consumer's message again (up to 50 times in a row, the consumer's
                        // sequence counting on) while its subject is written. Once is enough,
                        // and counting it again would end a catch-up early. (A sequence below
                        // the last is a stream made again that the check before the recreation
                        // did not see: delivered, as before.)
                        continue;
                    }
                    self.last_stream_seq = info.stream_sequence;
                    let client = self.js.client().clone();
                    return Some(Ok(OrderedEvent::Message(JsMessage { message, client })));
                }
                Wake::Status(None) | Wake::Status(Some(Status::Closed)) => return None,
                Wake::Status(Some(s)) if s.is_connected() => {
                    if std::mem::take(&mut self.disconnected) {
                        // The idle limit counts from the reconnection, not from the last message.
                        self.last_activity = Instant::now();
                        // The server may have restarted and lost the consumer: recreate it.
                        self.sub = None;
                        self.election_likely = true;
                        self.stream_unanswered = false;
                    }
                }
                Wake::Status(Some(_)) => {
                    self.disconnected = true;
                    // A one-shot read does not wait out the outage with its consumer: made again
                    // when the connection is back in time, or the read fails (see above).
                    if self.options.give_up_after.is_some() {
                        self.sub = None;
                    }
                }
                Wake::Event(Some(ClientEvent::ServerLeft)) => {
                    if self.check.is_none() {
                        self.check = self.check_consumer();
                    }
                }
                Wake::Event(Some(_)) => {}
                // The client is gone; its status stream says so too.
                Wake::Event(None) => self.events = Box::pin(futures::stream::pending()),
                Wake::Checked(alive) => {
                    self.check = None;
                    if !alive {
                        self.sub = None;
                        self.election_likely = true;
                    }
                }
                Wake::Idle => {
                    // Spent; set again for what is left if something arrived meanwhile.
                    self.idle_timer = None;
                    if self.last_activity.elapsed() >= idle_limit
                        && self.js.client().status().is_connected()
                    {
                        self.sub = None;
                        self.election_likely = true;
                    }
                }
            }
        }
    }

    /// Flow control requests want an empty reply; a stalled consumer names where to send one.
    fn answer_control(&self, message: &Message) {
        let client = self.js.client();
        if let Some(reply) = message.reply.as_deref() {
            let _ = client.publish(reply, b"");
        } else if let Some(stalled) = message
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Consumer-Stalled"))
        {
            let _ = client.publish(stalled, b"");
        }
    }
}

/// Whether an idle heartbeat says the consumer sent more (`Nats-Last-Consumer`) than was received.
/// `Nats-Last-Stream` is not compared: a filtered consumer moves past the stream sequences of other
/// subjects, so it is ahead of the last message delivered without anything being lost.
fn heartbeat_shows_a_gap(message: &Message, last_consumer_seq: u64) -> bool {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get("Nats-Last-Consumer"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|sent| sent != last_consumer_seq)
}

impl Drop for Ordered {
    /// Deletes the consumers still ours rather than leave them to the server's inactive threshold
    /// (5 minutes). Fire and forget.
    fn drop(&mut self) {
        self.stale.extend(self.current.take());
        self.release_stale();
    }
}

enum Wake {
    Message(Option<Result<Message, crate::error::SubscribeError>>),
    Status(Option<Status>),
    Event(Option<ClientEvent>),
    Checked(bool),
    Idle,
}

#[cfg(test)]
mod tests {
    #[test]
    fn catch_up_counts_what_matched_at_first() {
        use super::{CatchUp, DeliverPolicy};
        let all = || CatchUp::new(DeliverPolicy::All);

        // Three at first: the third delivered ends it, whatever arrives meanwhile.
        let mut c = all();
        assert!(!c.created(3, false));
        assert!(!c.delivered(Some(2)));
        assert!(!c.delivered(Some(2)));
        assert!(c.delivered(Some(1)), "the third of three");
        assert!(!c.delivered(Some(0)), "said once");
        assert!(!c.idle());

        // Nothing at first: at once.
        assert!(all().created(0, false));

        // Made again after two of five, with two published since: three are left, not five.
        let mut c = all();
        assert!(!c.created(5, false));
        assert!(!c.delivered(Some(4)));
        assert!(!c.delivered(Some(3)));
        assert!(!c.created(5, false));
        assert!(!c.delivered(Some(4)));
        assert!(!c.delivered(Some(3)));
        assert!(c.delivered(Some(2)), "the fifth of the first five");

        // Made again after messages were removed: fewer left than counted.
        let mut c = all();
        assert!(!c.created(5, false));
        assert!(!c.delivered(Some(4)));
        assert!(c.created(0, false));

        // A message with nothing pending ends it early (the rest was removed)...
        let mut c = all();
        assert!(!c.created(5, false));
        assert!(c.delivered(Some(0)));
        // ... but not a last-per-subject consumer, whose count a removal can lower too far.
        let mut c = CatchUp::new(DeliverPolicy::LastPerSubject);
        assert!(!c.created(3, false));
        assert!(!c.delivered(Some(0)));
        assert!(!c.delivered(Some(0)));
        assert!(c.delivered(Some(0)), "the third of three");
        // Nor a one-time read's: counted down from what it was made with.
        #[cfg(feature = "kv")]
        {
            let mut c = all();
            c.distrust_pending();
            assert!(!c.created(2, false));
            assert!(!c.delivered(Some(0)));
            assert!(c.delivered(Some(0)), "the second of two");
        }

        // Removed before they were delivered (2.9.10 does not lower the pending count for them):
        // the idle heartbeat ends it; before any consumer it means nothing.
        let mut c = all();
        assert!(!c.idle());
        assert!(!c.created(3, false));
        assert!(!c.delivered(Some(2)));
        assert!(c.idle());
        assert!(!c.idle());

        // A stream made again starts over, marker and all, with the same policy.
        let mut c = CatchUp::new(DeliverPolicy::LastPerSubject);
        assert!(c.created(0, false));
        assert!(!c.created(2, true));
        assert!(!c.delivered(Some(0)));
        assert!(c.delivered(Some(0)));
        assert!(c.created(0, true));
    }

    use super::*;

    #[test]
    fn metadata_old_format() {
        let i =
            MessageInfo::parse("$JS.ACK.ORDERS.worker.2.1042.17.1700000000000000000.5").unwrap();
        assert_eq!(i.stream, "ORDERS");
        assert_eq!(i.consumer, "worker");
        assert_eq!(
            (
                i.delivered,
                i.stream_sequence,
                i.consumer_sequence,
                i.pending
            ),
            (2, 1042, 17, 5)
        );
        assert_eq!(i.timestamp_ns, 1_700_000_000_000_000_000);
        assert_eq!(i.domain, None);
    }

    #[test]
    fn metadata_new_format() {
        let i = MessageInfo::parse("$JS.ACK.hub.ACCHASH.KV_cfg.c1.1.7.3.1700000000000000000.0.XyZ")
            .unwrap();
        assert_eq!(i.domain.as_deref(), Some("hub"));
        assert_eq!((i.stream.as_str(), i.consumer.as_str()), ("KV_cfg", "c1"));
        assert_eq!(
            (i.stream_sequence, i.consumer_sequence, i.pending),
            (7, 3, 0)
        );
        let i = MessageInfo::parse("$JS.ACK._.ACCHASH.S.C.1.2.3.4.5").unwrap();
        assert_eq!(i.domain, None);
    }

    #[test]
    fn metadata_rejects_other_subjects() {
        assert!(MessageInfo::parse("_INBOX.abc.1").is_none());
        assert!(MessageInfo::parse("$JS.ACK.S.C.x.1.2.3.4").is_none());
        assert!(MessageInfo::parse("$JS.ACK.S.C.1.2.3").is_none());
        assert!(
            MessageInfo::parse("$JS.ACK.D.S.C.1.2.3.4.5").is_none(),
            "10 tokens"
        );
        assert!(MessageInfo::parse(
            "$JS.ACK.S.C.1.2.3.4.u64max+1"
                .replace("u64max+1", "18446744073709551616")
                .as_str()
        )
        .is_none());
    }

    #[test]
    fn metadata_accepts_tokens_a_newer_server_appends() {
        let i =
            MessageInfo::parse("$JS.ACK.hub.ACC.KV_cfg.c1.1.7.3.1700000000000000000.0.XyZ.more")
                .unwrap();
        assert_eq!((i.stream_sequence, i.consumer_sequence), (7, 3));
    }
}
