//! The JSON shapes of the JetStream API: stream and consumer configuration and info, acks, errors.
//!
//! Durations travel as nanoseconds on the wire and are `Duration` here. Unknown fields are
//! ignored and missing ones default, so newer servers do not break older clients; `wire.rs`
//! reads and writes them.

use std::time::Duration;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetentionPolicy {
    #[default]
    Limits,
    Interest,
    WorkQueue,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DiscardPolicy {
    #[default]
    Old,
    New,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum StorageType {
    #[default]
    File,
    Memory,
}

/// A stream's configuration. `Default` plus a name and subjects is a valid stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamConfig {
    pub name: String,
    pub description: Option<String>,
    pub subjects: Vec<String>,
    pub retention: RetentionPolicy,
    /// 0 = unlimited (the server stores -1).
    pub max_consumers: i64,
    pub max_msgs: i64,
    pub max_bytes: i64,
    pub max_age: Duration,
    pub max_msgs_per_subject: i64,
    pub max_msg_size: i64,
    pub discard: DiscardPolicy,
    pub storage: StorageType,
    pub num_replicas: usize,
    pub duplicate_window: Duration,
    pub allow_direct: bool,
    pub allow_rollup_hdrs: bool,
    pub deny_delete: bool,
    pub deny_purge: bool,
    /// Per-message TTLs (`Nats-TTL` header). nats-server 2.11+; older servers drop the field
    /// (check the echoed configuration).
    pub allow_msg_ttl: bool,
    /// When limits (max age, a TTL) remove a subject's last message, leave a marker with header
    /// `Nats-Marker-Reason` that lives this long. nats-server 2.11+, at least 1 s.
    pub subject_delete_marker_ttl: Duration,
    /// A sealed stream refuses new messages, deletes and purges; set by an update, never undone.
    pub sealed: bool,
}

impl StreamConfig {
    pub fn new(
        name: impl Into<String>,
        subjects: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        StreamConfig {
            name: name.into(),
            subjects: subjects.into_iter().map(Into::into).collect(),
            num_replicas: 1,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamState {
    pub messages: u64,
    pub bytes: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub consumer_count: usize,
    pub num_subjects: u64,
    /// Sequences between the first and the last that hold no message (deleted, acknowledged from
    /// a work queue).
    pub num_deleted: u64,
    /// RFC 3339 times of the first and last message; the server's zero time when empty.
    pub first_ts: String,
    pub last_ts: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamInfo {
    pub config: StreamConfig,
    pub state: StreamState,
    pub created: String,
    /// Which server answered for the stream; `None` from servers that do not say.
    pub cluster: Option<StreamCluster>,
}

/// What the client's own paths read of a stream's info: binding a bucket (its duplicate window),
/// choosing direct gets, and checking whether an ordered consumer's stream started over. Every
/// other field of the answer is skipped unread, so an app that only uses KV or ordered consumers
/// does not carry a reader for every stream setting (about 4 KB of the gzipped client).
#[derive(Debug, Default)]
pub(crate) struct StreamBrief {
    pub config: StreamBriefConfig,
    pub state: StreamBriefState,
    /// When the stream was made (`None` if unreadable): one made again is newer than a consumer
    /// made on the old one.
    pub created: Option<web_time::SystemTime>,
    pub cluster: Option<StreamCluster>,
}

#[derive(Debug, Default)]
pub(crate) struct StreamBriefConfig {
    pub duplicate_window: Duration,
    pub allow_direct: bool,
}

#[derive(Debug, Default)]
pub(crate) struct StreamBriefState {
    pub last_seq: u64,
    /// Subjects with a message: a KV bucket's keys (with a value or a marker).
    pub num_subjects: u64,
}

/// A stream's info asked for the subjects matching a filter: how many hold a message (`total`),
/// and the messages of those listed in this page, together. The rest of the info is skipped.
#[cfg(feature = "kv")]
#[derive(Debug, Default)]
pub(crate) struct SubjectsPage {
    pub total: u64,
    pub state: SubjectsPageState,
}

#[cfg(feature = "kv")]
#[derive(Debug, Default)]
pub(crate) struct SubjectsPageState {
    /// The listed subjects' counts of messages, added up as they are read.
    pub subjects: u64,
}

/// The `cluster` of a stream's or a consumer's info: its leader, empty while a cluster elects one
/// (then a follower, perhaps one still catching up, may have answered).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamCluster {
    pub name: Option<String>,
    pub leader: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliverPolicy {
    #[default]
    All,
    Last,
    New,
    ByStartSequence,
    ByStartTime,
    LastPerSubject,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AckPolicy {
    None,
    All,
    #[default]
    Explicit,
    /// Like `All`, acknowledged by the replies to flow control (nats-server 2.14+, which gives
    /// it to the consumers that source or mirror a stream).
    FlowControl,
}

/// A consumer's configuration. Set `durable_name` for a durable consumer, `deliver_subject` for push.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerConfig {
    pub durable_name: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub deliver_policy: DeliverPolicy,
    pub opt_start_seq: Option<u64>,
    pub ack_policy: AckPolicy,
    pub ack_wait: Duration,
    pub max_deliver: i64,
    pub filter_subject: Option<String>,
    /// Several filters (nats-server 2.10+), instead of `filter_subject`.
    pub filter_subjects: Vec<String>,
    pub replay_policy: ReplayPolicy,
    pub max_ack_pending: i64,
    pub max_waiting: i64,
    pub deliver_subject: Option<String>,
    pub flow_control: bool,
    pub idle_heartbeat: Duration,
    pub headers_only: bool,
    pub mem_storage: bool,
    pub inactive_threshold: Duration,
    pub num_replicas: Option<usize>,
    /// Delays between redeliveries (`nak` without delay, ack wait expiry).
    pub backoff: Vec<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplayPolicy {
    #[default]
    Instant,
    Original,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SequenceInfo {
    pub consumer_seq: u64,
    pub stream_seq: u64,
    /// RFC 3339 time of the last delivery (of `delivered`) or acknowledgement (of `ack_floor`);
    /// absent until there was one.
    pub last_active: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerInfo {
    pub stream_name: String,
    pub name: String,
    /// RFC 3339 time the consumer was created.
    pub created: String,
    pub config: ConsumerConfig,
    pub delivered: SequenceInfo,
    pub ack_floor: SequenceInfo,
    pub num_ack_pending: u64,
    pub num_redelivered: u64,
    pub num_waiting: u64,
    pub num_pending: u64,
    /// In a cluster, the server that runs it (`leader`); `None` from a server on its own.
    pub cluster: Option<StreamCluster>,
}

/// What an ordered consumer reads of its consumer's info when it is created, or whether one
/// exists: the rest of the answer (the whole configuration echoed back) is skipped unread.
#[derive(Debug, Default)]
pub(crate) struct ConsumerBrief {
    /// The server's time of its creation (`None` if unreadable).
    pub created: Option<web_time::SystemTime>,
    pub delivered: ConsumerBriefSequence,
    pub num_pending: u64,
}

#[derive(Debug, Default)]
pub(crate) struct ConsumerBriefSequence {
    pub consumer_seq: u64,
    pub stream_seq: u64,
}

/// The body of a JetStream API request: each call sets the fields it needs, and the others are
/// left out of the JSON.
#[derive(Debug, Default)]
pub(crate) struct ApiRequest<'a> {
    pub offset: Option<usize>,
    /// `STREAM.INFO`: the subjects to count (and to list, a page at `offset`).
    pub subjects_filter: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub filter: Option<&'a str>,
    pub seq: Option<u64>,
    pub last_by_subj: Option<&'a str>,
    pub next_by_subj: Option<&'a str>,
    pub batch: Option<usize>,
    /// Nanoseconds.
    pub expires: Option<u64>,
    /// A pull's heartbeat, nanoseconds.
    pub idle_heartbeat: Option<u64>,
}

/// The server's answer to a JetStream publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PubAck {
    pub stream: String,
    pub seq: u64,
    /// The message id had been seen within the duplicate window: nothing was stored.
    pub duplicate: bool,
    pub domain: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountLimits {
    pub max_memory: i64,
    pub max_storage: i64,
    pub max_streams: i64,
    pub max_consumers: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountInfo {
    pub memory: u64,
    pub storage: u64,
    pub streams: usize,
    pub consumers: usize,
    pub limits: AccountLimits,
    pub domain: Option<String>,
}

/// The `error` object of a failed API call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiError {
    pub code: u16,
    pub err_code: u16,
    pub description: String,
}

#[derive(Debug, Default)]
pub(crate) struct StreamNamesPage {
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub streams: Option<Vec<String>>,
}

#[derive(Debug, Default)]
pub(crate) struct StreamListPage {
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    /// Boxed, so that a list of nulls takes no more memory than the answer did.
    pub streams: Option<Vec<Option<Box<StreamInfo>>>>,
    /// Streams a cluster could not get the info of in time (they count in `total`).
    pub missing: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct ConsumerListPage {
    pub total: usize,
    pub offset: usize,
    pub limit: usize,
    pub consumers: Option<Vec<Option<Box<ConsumerInfo>>>>,
    /// Consumers a cluster could not get the info of in time (they count in `total`).
    pub missing: Vec<String>,
}

#[derive(Debug, Default)]
pub(crate) struct StoredMessageResponse {
    pub message: StoredMessageRaw,
}

#[derive(Debug, Default)]
pub(crate) struct StoredMessageRaw {
    pub subject: String,
    pub seq: u64,
    pub hdrs: Option<String>,
    pub data: Option<String>,
    pub time: String,
}

#[derive(Debug, Default)]
pub(crate) struct PurgeResponse {
    pub purged: u64,
}

#[derive(Debug, Default)]
pub(crate) struct SuccessResponse {
    pub success: bool,
}
