//! Key-Value buckets on JetStream: bucket `b` is stream `KV_b` on subjects `$KV.b.>`, and each key's
//! latest message is its value. A value's revision is its stream sequence.
//!
//! Watchers stand on an ordered consumer, so they survive reconnects and server restarts without a
//! gap or a repeat: after a disconnect they continue from the last revision they delivered.

use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use thiserror::Error;
use web_time::UNIX_EPOCH;

use crate::error::{Quoted, RequestError};
use crate::header::HeaderMap;
use crate::jetstream::consumer_internal::{CatchUp, OrderedEvent};
use crate::jetstream::{
    err_codes, ApiErrorKind, DeliverPolicy, DiscardPolicy, JetStream, JetStreamError, JsMessage,
    Ordered, OrderedOptions, PublishOptions, StorageType, StoredMessage, StreamBrief, StreamConfig,
};

/// The clock of [`Entry::created`]: `std::time::SystemTime` natively, `web_time`'s in the browser
/// (where std has no clock).
pub use web_time::SystemTime;

const OPERATION_HEADER: &str = "KV-Operation";
/// Why the server itself wrote a marker (nats-server 2.11+): `MaxAge`, `Purge`, `Remove`.
const MARKER_REASON_HEADER: &str = "Nats-Marker-Reason";

/// How long a request that nobody answered waits for JetStream to say whether its bucket still
/// exists (`Store::request_error`).
const GONE_CHECK_TIMEOUT: Duration = Duration::from_secs(1);

/// `e`, said as [`KvError::BucketNotFound`] when JetStream says bucket `bucket`'s stream does not
/// exist.
fn stream_error(bucket: &str, e: JetStreamError) -> KvError {
    match e.err_code() == Some(err_codes::STREAM_NOT_FOUND) {
        true => KvError::BucketNotFound {
            bucket: bucket.to_owned(),
        },
        false => e.into(),
    }
}

/// Why a KV call failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KvError {
    #[error(
        "invalid key {}: keys are letters, digits and - / _ = . (not starting or ending with '.', no '..')",
        Quoted(key)
    )]
    InvalidKey { key: String },
    #[error(
        "invalid bucket name {}: use letters, digits, '-' and '_'",
        Quoted(bucket)
    )]
    InvalidBucket { bucket: String },
    #[error("bucket {} does not exist: create it first", Quoted(bucket))]
    BucketNotFound { bucket: String },
    /// A create found a bucket of that name with another configuration (an identical one is
    /// taken as it is).
    #[error(
        "bucket {} already exists with another configuration: open it, or delete it first",
        Quoted(bucket)
    )]
    BucketExists { bucket: String },
    #[error("key {} already exists (revision {revision})", Quoted(key))]
    KeyExists { key: String, revision: u64 },
    #[error(
        "key {} changed since revision {expected}: read it again and retry",
        Quoted(key)
    )]
    WrongLastRevision { key: String, expected: u64 },
    /// An acknowledgement was lost and the server's answer to a resend cannot tell whether the
    /// first attempt was stored (it was resent after the duplicate window, and the history no
    /// longer holds what followed the expected revision).
    #[error("key {}: the write may or may not have been stored (its acknowledgement was lost): read the key before trying again", Quoted(key))]
    OutcomeUnknown { key: String },
    #[error("key {} kept changing: gave up after {attempts} attempts", Quoted(key))]
    TooManyConflicts { key: String, attempts: usize },
    #[error("history must be between 1 and 64, not {0}")]
    InvalidHistory(i64),
    #[error(transparent)]
    JetStream(#[from] JetStreamError),
}

impl KvError {
    /// Whether this says the bucket is gone: not found when bound, or its stream deleted under a
    /// call (binding it again, with a create, makes it anew).
    pub fn is_bucket_gone(&self) -> bool {
        match self {
            KvError::BucketNotFound { .. } => true,
            KvError::JetStream(e) => e.err_code() == Some(err_codes::STREAM_NOT_FOUND),
            _ => false,
        }
    }

    /// Refused for the user's permissions ([`JetStreamError::is_permission_denied`]).
    pub fn is_permission_denied(&self) -> bool {
        matches!(self, KvError::JetStream(e) if e.is_permission_denied())
    }
}

/// What a revision did to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    Put,
    Delete,
    Purge,
}

/// One revision of one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub bucket: String,
    pub key: String,
    pub value: Bytes,
    pub revision: u64,
    /// For watchers: how many newer revisions (of any watched key) are already stored, as the
    /// server counts them; while limits remove entries, a newer server may say 0 too soon.
    pub delta: u64,
    pub operation: Operation,
    /// Headers stored with the value (`KV-Operation` for markers, anything the writer added).
    pub headers: Option<HeaderMap>,
    /// When the server stored this revision; `None` when it is not known (the entry
    /// [`Store::update_with`] returns, or a time the server wrote in a form not understood).
    pub created: Option<SystemTime>,
}

impl Entry {
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.value).ok()
    }
}

/// Bucket settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvConfig {
    pub bucket: String,
    pub description: Option<String>,
    /// Revisions kept per key, 1–64. Default 1.
    pub history: i64,
    /// Entries expire after this long; zero keeps them. Default zero.
    pub ttl: Duration,
    /// Bucket size limit in bytes; 0 = unlimited.
    pub max_bytes: i64,
    /// Largest value in bytes; 0 = the server's max_payload.
    pub max_value_size: i64,
    pub storage: StorageType,
    pub replicas: usize,
    /// When an entry expires (`ttl`), the server leaves a marker that watchers see as a purge, and
    /// that lives this long (at least 1 s). Zero: entries vanish without a marker. nats-server
    /// 2.11+ only (older servers ignore it). Default zero.
    pub limit_marker_ttl: Duration,
}

impl KvConfig {
    pub fn new(bucket: impl Into<String>) -> Self {
        KvConfig {
            bucket: bucket.into(),
            description: None,
            history: 1,
            ttl: Duration::ZERO,
            max_bytes: 0,
            max_value_size: 0,
            storage: StorageType::File,
            replicas: 1,
            limit_marker_ttl: Duration::ZERO,
        }
    }

    pub fn history(mut self, history: i64) -> Self {
        self.history = history;
        self
    }

    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    pub fn max_bytes(mut self, bytes: i64) -> Self {
        self.max_bytes = bytes;
        self
    }

    pub fn storage(mut self, storage: StorageType) -> Self {
        self.storage = storage;
        self
    }

    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    pub fn limit_marker_ttl(mut self, ttl: Duration) -> Self {
        self.limit_marker_ttl = ttl;
        self
    }
}

/// A bucket's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvStatus {
    pub bucket: String,
    /// Keys with at least one stored revision (deleted keys whose marker is kept included).
    pub keys: u64,
    /// Stored revisions (including delete markers and history).
    pub values: u64,
    pub history: i64,
    pub ttl: Duration,
    pub bytes: u64,
    pub storage: StorageType,
}

/// Options of [`Store::watch_with`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchOptions {
    /// Only changes from now on; the initial-values marker comes at once.
    pub updates_only: bool,
    /// Every stored revision of the watched keys first, not just the latest.
    pub include_history: bool,
    /// Skip delete and purge markers.
    pub ignore_deletes: bool,
    /// Continue from this revision (inclusive), e.g. the last one seen plus one.
    pub resume_from_revision: Option<u64>,
}

/// What a watcher yields: entries, and a marker that the initial values are all delivered (once,
/// and again after a [`WatchEvent::Reset`]).
///
/// The initial values are those stored when the watcher's consumer is created, on the first poll
/// of the [`Watch`] (not when it is made). A write racing that creation may come before or after
/// the marker: the server decides (nats-server 2.10+ queues API requests, so a put sent after the
/// creation request can still be stored first).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WatchEvent {
    Entry(Entry),
    InitialDone,
    /// The bucket was deleted and created again while watched (seen when the watcher's consumer
    /// is recreated, e.g. after the server stopped sending to the deleted one): every entry seen
    /// so far is gone. The new bucket's values follow, then `InitialDone` again. Like `Resumed`,
    /// it also ends an error given before.
    Reset,
    /// After an error the watch gave (JetStream not answering for the account, a refused
    /// consumer), it runs again, from where it was: whatever showed that error can clear it now
    /// rather than at the next change, which may be a long time coming.
    Resumed,
}

fn valid_bucket(bucket: &str) -> Result<(), KvError> {
    if !bucket.is_empty()
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(())
    } else {
        Err(KvError::InvalidBucket {
            bucket: bucket.to_owned(),
        })
    }
}

fn valid_key(key: &str, wildcards: bool) -> Result<(), KvError> {
    let chars_ok = |token: &str| {
        (wildcards && (token == "*" || token == ">"))
            || (!token.is_empty()
                && token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'/' | b'_' | b'=')))
    };
    // `>` matches the rest: a filter with more after it is refused here, not by the server at the
    // watch's first try (as "consumer filter subject is not a valid subset").
    let tail_in_the_middle = crate::text::contains(key, ">.");
    if key.is_empty()
        || key.starts_with('.')
        || key.ends_with('.')
        || tail_in_the_middle
        || !key.split('.').all(chars_ok)
    {
        return Err(KvError::InvalidKey {
            key: key.to_owned(),
        });
    }
    Ok(())
}

impl JetStream {
    /// Creates a bucket; succeeds unchanged if an identical one exists.
    pub async fn create_key_value(&self, config: KvConfig) -> Result<Store, KvError> {
        valid_bucket(&config.bucket)?;
        if !(1..=64).contains(&config.history) {
            return Err(KvError::InvalidHistory(config.history));
        }
        let two_minutes = Duration::from_secs(120);
        let stream = StreamConfig {
            name: format!("KV_{}", config.bucket),
            description: config.description.clone(),
            subjects: vec![format!("$KV.{}.>", config.bucket)],
            max_msgs_per_subject: config.history,
            max_bytes: config.max_bytes,
            max_age: config.ttl,
            max_msg_size: config.max_value_size,
            storage: config.storage,
            num_replicas: config.replicas.max(1),
            discard: DiscardPolicy::New,
            allow_direct: true,
            allow_rollup_hdrs: true,
            deny_delete: true,
            allow_msg_ttl: !config.limit_marker_ttl.is_zero(),
            subject_delete_marker_ttl: config.limit_marker_ttl,
            duplicate_window: if config.ttl.is_zero() {
                two_minutes
            } else {
                config.ttl.min(two_minutes)
            },
            ..Default::default()
        };
        let info: StreamBrief = match self.create_stream_as(&stream).await {
            Ok(info) => info,
            Err(e) if e.err_code() == Some(err_codes::STREAM_NAME_IN_USE) => {
                return Err(KvError::BucketExists {
                    bucket: config.bucket,
                })
            }
            Err(e) => return Err(e.into()),
        };
        Ok(Store::new(
            self.clone(),
            &config.bucket,
            info.config.duplicate_window,
        ))
    }

    /// Binds to an existing bucket.
    pub async fn key_value(&self, bucket: &str) -> Result<Store, KvError> {
        valid_bucket(bucket)?;
        match self.stream_brief(&format!("KV_{bucket}")).await {
            Ok(info) => Ok(Store::new(
                self.clone(),
                bucket,
                info.config.duplicate_window,
            )),
            Err(e) => Err(stream_error(bucket, e)),
        }
    }

    /// Every bucket with its state, sorted by name, from the pages of one `STREAM.LIST` filtered on
    /// `$KV.*.>` (as nats.go's `KeyValueStores`): one request per 256 streams, not one per bucket.
    /// Streams on `$KV.` subjects whose name is not `KV_<bucket>` are not buckets and are left out.
    pub async fn key_value_statuses(&self) -> Result<Vec<KvStatus>, KvError> {
        let mut statuses: Vec<KvStatus> = self
            .streams_on(Some("$KV.*.>"))
            .await?
            .iter()
            .filter_map(|info| {
                let bucket = info.config.name.strip_prefix("KV_")?;
                valid_bucket(bucket).ok()?;
                Some(status_of(bucket, info))
            })
            .collect();
        statuses.sort_by(|a, b| a.bucket.cmp(&b.bucket));
        Ok(statuses)
    }

    /// Deletes a bucket and everything in it.
    pub async fn delete_key_value(&self, bucket: &str) -> Result<(), KvError> {
        valid_bucket(bucket)?;
        match self.delete_stream(&format!("KV_{bucket}")).await {
            Err(e) => Err(stream_error(bucket, e)),
            Ok(other) => Ok(other),
        }
    }
}

/// A bucket. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    js: JetStream,
    bucket: String,
    stream: String,
    prefix: String,
    /// The stream drops a message whose `Nats-Msg-Id` it saw this recently: resends within it are
    /// safe.
    duplicate_window: Duration,
}

impl Store {
    fn new(js: JetStream, bucket: &str, duplicate_window: Duration) -> Self {
        Store {
            js,
            bucket: bucket.to_owned(),
            stream: format!("KV_{bucket}"),
            prefix: format!("$KV.{bucket}."),
            duplicate_window,
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn subject(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    pub async fn status(&self) -> Result<KvStatus, KvError> {
        let info = self
            .js
            .stream_info(&self.stream)
            .await
            .map_err(|e| self.stream_error(e))?;
        Ok(status_of(&self.bucket, &info))
    }

    fn entry_from_stored(&self, key: &str, stored: StoredMessage) -> Entry {
        let operation = operation_of(stored.headers.as_ref());
        Entry {
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            value: stored.payload,
            revision: stored.sequence,
            delta: 0,
            operation,
            headers: stored.headers,
            created: crate::time::parse_rfc3339(&stored.time),
        }
    }

    /// The latest revision of `key`, delete and purge markers included; `None` if never written.
    pub async fn entry(&self, key: &str) -> Result<Option<Entry>, KvError> {
        valid_key(key, false)?;
        let stored = match self
            .js
            .get_last_message(&self.stream, &self.subject(key))
            .await
        {
            Ok(stored) => stored,
            Err(e) => return Err(self.request_error(e).await),
        };
        Ok(stored.map(|s| self.entry_from_stored(key, s)))
    }

    /// `e`, said as [`KvError::BucketNotFound`] when JetStream says the bucket's stream does not
    /// exist: every call on a deleted bucket says so, and binding it again creates it.
    fn stream_error(&self, e: JetStreamError) -> KvError {
        stream_error(&self.bucket, e)
    }

    /// The error of a request to the stream itself (a direct get, a publish): as
    /// [`Self::stream_error`], and when nobody answered it. A deleted stream answers nothing:
    /// "no responders" (as when JetStream is down), or on nats-server 2.9 a direct get times out.
    /// Then JetStream is asked whether the stream exists: only while connected (disconnected, the
    /// connection is the cause), and for at most [`GONE_CHECK_TIMEOUT`], so a read that timed out
    /// does not wait a whole timeout again.
    async fn request_error(&self, e: JetStreamError) -> KvError {
        let unanswered = matches!(
            e,
            JetStreamError::NotEnabled { .. }
                | JetStreamError::Request(RequestError::TimedOut { .. })
        );
        if !unanswered || !self.js.client().status().is_connected() {
            return self.stream_error(e);
        }
        let js = self
            .js
            .clone()
            .with_timeout(GONE_CHECK_TIMEOUT.min(self.js.timeout()));
        match js.stream_brief(&self.stream).await {
            Err(info) if info.err_code() == Some(err_codes::STREAM_NOT_FOUND) => {
                self.stream_error(info)
            }
            _ => e.into(),
        }
    }

    /// The current value of `key`; `None` if it does not exist or was deleted.
    pub async fn get(&self, key: &str) -> Result<Option<Entry>, KvError> {
        Ok(self
            .entry(key)
            .await?
            .filter(|e| e.operation == Operation::Put))
    }

    /// `key` at exactly `revision`; `None` if that revision is not of this key (or was removed).
    pub async fn get_revision(&self, key: &str, revision: u64) -> Result<Option<Entry>, KvError> {
        valid_key(key, false)?;
        let stored = match self.js.get_message(&self.stream, revision).await {
            Ok(stored) => stored,
            Err(e) => return Err(self.request_error(e).await),
        };
        Ok(stored
            .filter(|s| s.subject == self.subject(key))
            .map(|s| self.entry_from_stored(key, s))
            .filter(|e| e.operation == Operation::Put))
    }

    async fn publish(
        &self,
        key: &str,
        value: &[u8],
        headers: Option<&HeaderMap>,
        expected: Option<u64>,
    ) -> Result<u64, KvError> {
        valid_key(key, false)?;
        // Every attempt of this write carries the same id: the stream stores it once however many
        // resends reach it within the duplicate window, and the id tells our write from others'.
        let msg_id = self.js.client().new_token();
        // A plain put resent after the window would be stored again: stop retrying well before
        // it ends. A compare-and-set cannot be stored twice (the resend fails the expectation).
        let deadline = match (expected, self.duplicate_window.is_zero()) {
            (None, false) => Some(self.js.publish_deadline().min(self.duplicate_window / 2)),
            _ => None,
        };
        let options = PublishOptions {
            msg_id: Some(msg_id.clone()),
            expected_last_subject_sequence: expected,
            deadline,
            ..Default::default()
        };
        let (result, maybe_stored) = self
            .js
            .publish_tracked(&self.subject(key), headers, value, &options)
            .await;
        match result {
            Ok(ack) => Ok(ack.seq),
            // 10071, or 10164 from a replicated bucket with another write to the key in flight
            // (nats.go's isWrongLastSeqErr takes both).
            Err(e) if e.api_kind() == Some(ApiErrorKind::WrongLastSequence) => {
                let expected = expected.unwrap_or(0);
                // Refused maybe because an earlier attempt, whose answer was lost, was stored:
                // then the write is done, and must not be reported as a conflict (update_with
                // would apply its change a second time).
                if maybe_stored {
                    if let Some(revision) = self.own_write_after(key, expected, &msg_id).await? {
                        return Ok(revision);
                    }
                }
                Err(KvError::WrongLastRevision {
                    key: key.to_owned(),
                    expected,
                })
            }
            Err(e @ JetStreamError::NotEnabled { .. }) => Err(self.request_error(e).await),
            Err(e) => Err(self.stream_error(e)),
        }
    }

    /// The revision of our write with `msg_id` made over `expected`, if it was stored; `None` if
    /// another write followed `expected` instead. [`KvError::OutcomeUnknown`] when the history no
    /// longer says.
    async fn own_write_after(
        &self,
        key: &str,
        expected: u64,
        msg_id: &str,
    ) -> Result<Option<u64>, KvError> {
        let subject = self.subject(key);
        let ours = |m: &StoredMessage| {
            m.headers.as_ref().and_then(|h| h.get("Nats-Msg-Id")) == Some(msg_id)
        };
        let Some(last) = self.js.get_last_message(&self.stream, &subject).await? else {
            // Nothing on the key: ours was not stored, or was purged since.
            return Err(KvError::OutcomeUnknown {
                key: key.to_owned(),
            });
        };
        if ours(&last) {
            return Ok(Some(last.sequence));
        }
        // Someone wrote after it, or it was never stored: only one write can have followed
        // `expected`. The server keeps a write's headers, so the last one may say it is that
        // one; otherwise the first message on the key after `expected` is, as long as `expected`
        // is still stored (a key loses its oldest revisions first).
        let expectation = last
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Expected-Last-Subject-Sequence"))
            .and_then(|v| v.trim().parse::<u64>().ok());
        if expectation == Some(expected) {
            return Ok(None);
        }
        let expected_kept = expected > 0
            && self
                .js
                .get_message(&self.stream, expected)
                .await?
                .is_some_and(|m| m.subject == subject);
        if !expected_kept {
            return Err(KvError::OutcomeUnknown {
                key: key.to_owned(),
            });
        }
        let next = self
            .js
            .get_next_message(&self.stream, expected + 1, &subject)
            .await?;
        Ok(next.filter(ours).map(|m| m.sequence))
    }

    /// Sets `key`; returns the new revision.
    ///
    /// While the server is unreachable the put is resent with the same `Nats-Msg-Id`, for at
    /// most half the bucket's duplicate window (min(TTL, 2 min)) so that it is never stored twice;
    /// then it fails with [`JetStreamError::DeadlineExceeded`]: it may or may not have been stored
    /// (or with [`JetStreamError::NotSent`] if it never was: nothing stored).
    /// Writes that expect a revision (create, update, …) are retried for the context's publish
    /// deadline: a resend cannot be stored twice, and one refused because the first attempt was
    /// stored is recognised by its id and reported as the success it was.
    pub async fn put(&self, key: &str, value: impl AsRef<[u8]>) -> Result<u64, KvError> {
        self.publish(key, value.as_ref(), None, None).await
    }

    /// Sets `key` with headers stored alongside (e.g. who wrote it); returns the new revision.
    pub async fn put_with_headers(
        &self,
        key: &str,
        value: impl AsRef<[u8]>,
        headers: &HeaderMap,
    ) -> Result<u64, KvError> {
        self.publish(key, value.as_ref(), Some(headers), None).await
    }

    /// Sets `key` only if it has no value (never written, deleted or purged).
    pub async fn create(&self, key: &str, value: impl AsRef<[u8]>) -> Result<u64, KvError> {
        self.create_inner(key, value.as_ref(), None).await
    }

    /// [`Store::create`] with headers stored alongside.
    pub async fn create_with_headers(
        &self,
        key: &str,
        value: impl AsRef<[u8]>,
        headers: &HeaderMap,
    ) -> Result<u64, KvError> {
        self.create_inner(key, value.as_ref(), Some(headers)).await
    }

    async fn create_inner(
        &self,
        key: &str,
        value: &[u8],
        headers: Option<&HeaderMap>,
    ) -> Result<u64, KvError> {
        let exists = |revision| KvError::KeyExists {
            key: key.to_owned(),
            revision,
        };
        match self.publish(key, value, headers, Some(0)).await {
            Err(KvError::WrongLastRevision { .. }) => match self.entry(key).await? {
                // The last revision is a delete marker: creating over it is allowed.
                Some(e) if e.operation != Operation::Put => {
                    match self.publish(key, value, headers, Some(e.revision)).await {
                        Err(KvError::WrongLastRevision { .. }) => Err(exists(0)),
                        other => other,
                    }
                }
                Some(e) => Err(exists(e.revision)),
                None => Err(exists(0)),
            },
            other => other,
        }
    }

    /// Sets `key` only if its latest revision is still `revision` (compare-and-set).
    pub async fn update(
        &self,
        key: &str,
        value: impl AsRef<[u8]>,
        revision: u64,
    ) -> Result<u64, KvError> {
        self.publish(key, value.as_ref(), None, Some(revision))
            .await
    }

    fn marker(operation: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(OPERATION_HEADER, operation);
        if operation == "PURGE" {
            h.insert("Nats-Rollup", "sub");
        }
        h
    }

    /// Deletes `key` (history is kept); returns the marker's revision.
    pub async fn delete(&self, key: &str) -> Result<u64, KvError> {
        self.publish(key, b"", Some(&Self::marker("DEL")), None)
            .await
    }

    /// Deletes `key` if its latest revision is still `revision`.
    pub async fn delete_expecting(&self, key: &str, revision: u64) -> Result<u64, KvError> {
        self.publish(key, b"", Some(&Self::marker("DEL")), Some(revision))
            .await
    }

    /// Deletes `key` and all its history.
    pub async fn purge(&self, key: &str) -> Result<u64, KvError> {
        self.publish(key, b"", Some(&Self::marker("PURGE")), None)
            .await
    }

    /// Purges `key` if its latest revision is still `revision`.
    pub async fn purge_expecting(&self, key: &str, revision: u64) -> Result<u64, KvError> {
        self.publish(key, b"", Some(&Self::marker("PURGE")), Some(revision))
            .await
    }

    /// Reads, modifies and writes back with compare-and-set, retrying on conflict up to
    /// `max_attempts` times. `modify` gets the current entry (`None` if the key has no value) and
    /// returns the new value. Returns the entry written.
    pub async fn update_with<F>(
        &self,
        key: &str,
        max_attempts: usize,
        modify: F,
    ) -> Result<Entry, KvError>
    where
        F: FnMut(Option<&Entry>) -> Bytes,
    {
        self.read_modify_write(key, max_attempts, None, modify)
            .await
    }

    /// [`Store::update_with`], with `headers` stored alongside each write (e.g. who wrote it).
    pub async fn update_with_headers<F>(
        &self,
        key: &str,
        max_attempts: usize,
        headers: &HeaderMap,
        modify: F,
    ) -> Result<Entry, KvError>
    where
        F: FnMut(Option<&Entry>) -> Bytes,
    {
        self.read_modify_write(key, max_attempts, Some(headers), modify)
            .await
    }

    async fn read_modify_write<F>(
        &self,
        key: &str,
        max_attempts: usize,
        headers: Option<&HeaderMap>,
        mut modify: F,
    ) -> Result<Entry, KvError>
    where
        F: FnMut(Option<&Entry>) -> Bytes,
    {
        for _ in 0..max_attempts.max(1) {
            let current = self.entry(key).await?;
            let live = current.as_ref().filter(|e| e.operation == Operation::Put);
            let value = modify(live);
            let written = match &current {
                Some(e) => self.publish(key, &value, headers, Some(e.revision)).await,
                None => self.create_inner(key, &value, headers).await,
            };
            match written {
                Ok(revision) => {
                    return Ok(Entry {
                        bucket: self.bucket.clone(),
                        key: key.to_owned(),
                        value,
                        revision,
                        delta: 0,
                        operation: Operation::Put,
                        headers: headers.cloned(),
                        created: None,
                    })
                }
                Err(KvError::WrongLastRevision { .. } | KvError::KeyExists { .. }) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(KvError::TooManyConflicts {
            key: key.to_owned(),
            attempts: max_attempts.max(1),
        })
    }

    fn entry_from_message(&self, m: &JsMessage) -> Option<Entry> {
        let info = m.info()?;
        let key = m
            .message
            .subject
            .strip_prefix(self.prefix.as_str())?
            .to_owned();
        Some(Entry {
            bucket: self.bucket.clone(),
            key,
            value: m.message.payload.clone(),
            revision: info.stream_sequence,
            delta: info.pending,
            operation: operation_of(m.message.headers.as_ref()),
            headers: m.message.headers.clone(),
            created: Some(UNIX_EPOCH + Duration::from_nanos(info.timestamp_ns)),
        })
    }

    /// Reads what matched when the ordered consumer was made, then stops ([`CatchUp`]): writes
    /// that keep coming meanwhile neither hold it nor make it much longer. Starts over if the
    /// consumer is made again on the way (a reconnect, a gap): a last-per-subject consumer then
    /// resumes with every revision stored since, which the count cannot tell from what it waits
    /// for. The stream's own count of what `floor` names (read first) is a floor under the
    /// consumer's count, which nats-server 2.10+ can give lowered by a removal whose new message
    /// it has not counted yet: as low as 0, which ended a hot key's history before its first
    /// revision. The count on each message is not trusted either (see below).
    async fn snapshot(
        &self,
        options: OrderedOptions,
        floor: Floor<'_>,
    ) -> Result<Vec<Entry>, KvError> {
        loop {
            if let Some(entries) = self.snapshot_once(options.clone(), floor).await? {
                return Ok(entries);
            }
        }
    }

    /// What the stream holds of `floor` now; 0 if it does not say (a user who may not ask: the
    /// consumer's count alone then).
    async fn floor(&self, floor: Floor<'_>) -> u64 {
        let counted = match floor {
            Floor::Keys(">") => {
                (self.js.stream_brief(&self.stream).await).map(|brief| brief.state.num_subjects)
            }
            Floor::Keys(filter) => (self.js)
                .subjects_matching(&self.stream, &self.subject(filter), false)
                .await
                .map(|page| page.total),
            Floor::Revisions(key) => (self.js)
                .subjects_matching(&self.stream, &self.subject(key), true)
                .await
                .map(|page| page.state.subjects),
        };
        counted.unwrap_or(0)
    }

    /// One try of [`Store::snapshot`]: `None` when the consumer was made again on the way.
    async fn snapshot_once(
        &self,
        options: OrderedOptions,
        floor: Floor<'_>,
    ) -> Result<Option<Vec<Entry>>, KvError> {
        // Not asked while disconnected (the read's consumer waits for the connection within its
        // time; this would wait first): the read starts over once the consumer is made, with it.
        let skipped = !self.js.client().status().is_connected();
        let floor = match skipped {
            true => 0,
            false => self.floor(floor).await,
        };
        let mut catch_up = CatchUp::new(options.deliver_policy);
        // The count each message carries comes from the server's same counter: under writes to a
        // key past its history limit it says 0 with revisions still to come (a hot key's history
        // ended after 1 of 64). Counted down instead; a message removed before it was delivered
        // (expired, purged meanwhile) leaves it to the idle heartbeat.
        catch_up.distrust_pending();
        // A read fails as a get does when the server is out of reach, not after the outage.
        let options = OrderedOptions {
            give_up_after: Some(options.give_up_after.unwrap_or(self.js.timeout())),
            ..options
        };
        let mut ordered = Ordered::new(self.js.clone(), &self.stream, options);
        let mut made = false;
        let mut entries = Vec::new();
        while let Some(event) = ordered.next_event().await {
            let done = match event.map_err(|e| self.stream_error(e))? {
                OrderedEvent::Created { .. } if made || skipped => return Ok(None),
                OrderedEvent::Created {
                    num_pending, reset, ..
                } => {
                    made = true;
                    catch_up.created(num_pending.max(floor), reset)
                }
                OrderedEvent::Idle => catch_up.idle(),
                OrderedEvent::Message(m) => {
                    let entry = self.entry_from_message(&m);
                    let done = catch_up.delivered(entry.as_ref().map(|e| e.delta));
                    entries.extend(entry);
                    done
                }
            };
            if done {
                return Ok(Some(entries));
            }
        }
        // The consumer ended before everything came: the client was closed. Not a bucket with
        // fewer keys (or none).
        Err(KvError::JetStream(JetStreamError::Subscribe(
            crate::error::SubscribeError::Closed,
        )))
    }

    /// Every key with a value, in byte order: what the bucket held when the call began, and
    /// perhaps keys written meanwhile (a key written again is named once, with its latest state).
    pub async fn keys(&self) -> Result<Vec<String>, KvError> {
        self.keys_matching(">").await
    }

    /// The keys with a value that match `filter` (`*` and `>` wildcards), as [`Store::keys`].
    pub async fn keys_matching(&self, filter: &str) -> Result<Vec<String>, KvError> {
        valid_key(filter, true)?;
        let options = OrderedOptions {
            filter_subject: Some(self.subject(filter)),
            deliver_policy: DeliverPolicy::LastPerSubject,
            headers_only: true,
            ..Default::default()
        };
        // A key written again between its first delivery and the end comes twice: its last
        // operation says whether it has a value.
        let mut last = std::collections::BTreeMap::new();
        for entry in self.snapshot(options, Floor::Keys(filter)).await? {
            last.insert(entry.key, entry.operation);
        }
        Ok(last
            .into_iter()
            .filter(|(_, operation)| *operation == Operation::Put)
            .map(|(key, _)| key)
            .collect())
    }

    /// Every stored revision of `key`, oldest first, markers included.
    pub async fn history(&self, key: &str) -> Result<Vec<Entry>, KvError> {
        valid_key(key, false)?;
        let options = OrderedOptions {
            filter_subject: Some(self.subject(key)),
            deliver_policy: DeliverPolicy::All,
            ..Default::default()
        };
        self.snapshot(options, Floor::Revisions(key)).await
    }

    /// Watches `filter` (a key, or a pattern with `*` / `>`): current values, the
    /// [`WatchEvent::InitialDone`] marker, then every change.
    pub fn watch(&self, filter: &str) -> Result<Watch, KvError> {
        self.watch_with(filter, WatchOptions::default())
    }

    /// Watches the whole bucket.
    pub fn watch_all(&self) -> Result<Watch, KvError> {
        self.watch(">")
    }

    pub fn watch_with(&self, filter: &str, options: WatchOptions) -> Result<Watch, KvError> {
        valid_key(filter, true)?;
        let (deliver_policy, start_sequence) = match options.resume_from_revision {
            Some(rev) => (DeliverPolicy::ByStartSequence, Some(rev)),
            None if options.include_history => (DeliverPolicy::All, None),
            None if options.updates_only => (DeliverPolicy::New, None),
            None => (DeliverPolicy::LastPerSubject, None),
        };
        let ordered = Ordered::new(
            self.js.clone(),
            &self.stream,
            OrderedOptions {
                filter_subject: Some(self.subject(filter)),
                deliver_policy,
                start_sequence,
                ..Default::default()
            },
        );
        let floor = if deliver_policy == DeliverPolicy::LastPerSubject {
            let (store, filter) = (self.clone(), filter.to_owned());
            KeyFloor::Reading(Box::pin(
                async move { store.floor(Floor::Keys(&filter)).await },
            ))
        } else {
            KeyFloor::Known(0)
        };
        let state = WatchState {
            store: self.clone(),
            ordered,
            ignore_deletes: options.ignore_deletes,
            catch_up: CatchUp::new(deliver_policy),
            marked: false,
            floor,
            seen: 0,
        };
        // Fused: once ended (the client closed), it stays ended rather than panicking when polled
        // again, as `unfold` alone would.
        Ok(Watch {
            inner: Box::pin(
                futures::stream::unfold(state, |mut s| async move {
                    s.next().await.map(|item| (item, s))
                })
                .fuse(),
            ),
        })
    }
}

fn status_of(bucket: &str, info: &crate::jetstream::StreamInfo) -> KvStatus {
    KvStatus {
        bucket: bucket.to_owned(),
        keys: info.state.num_subjects,
        values: info.state.messages,
        history: info.config.max_msgs_per_subject,
        ttl: info.config.max_age,
        bytes: info.state.bytes,
        storage: info.config.storage,
    }
}

/// From `KV-Operation`, or for markers the server wrote itself (2.11+: an entry expired, a purge),
/// from `Nats-Marker-Reason`, read as nats.go does (`MaxAge` and `Purge` purge, `Remove` deletes).
fn operation_of(headers: Option<&HeaderMap>) -> Operation {
    let Some(headers) = headers else {
        return Operation::Put;
    };
    match headers.get(OPERATION_HEADER) {
        Some("DEL") => Operation::Delete,
        Some("PURGE") => Operation::Purge,
        Some(_) => Operation::Put,
        None => match headers.get(MARKER_REASON_HEADER) {
            Some("MaxAge" | "Purge") => Operation::Purge,
            Some("Remove") => Operation::Delete,
            _ => Operation::Put,
        },
    }
}

/// What a one-time read of a bucket counts on: the keys matching a filter (each one's last
/// message), or every stored revision of a key.
#[derive(Clone, Copy)]
enum Floor<'a> {
    Keys(&'a str),
    Revisions(&'a str),
}

/// The stream's count of a watch's keys, read while its consumer is made.
#[cfg(not(target_arch = "wasm32"))]
type FloorRead = futures::future::BoxFuture<'static, u64>;
#[cfg(target_arch = "wasm32")]
type FloorRead = futures::future::LocalBoxFuture<'static, u64>;

/// A watch's floor under its count of initial values: being read, or known (0: none).
enum KeyFloor {
    Reading(FloorRead),
    Known(u64),
}

struct WatchState {
    store: Store,
    ordered: Ordered,
    ignore_deletes: bool,
    /// When the initial values are in: live updates arriving meanwhile must not push the marker
    /// back.
    catch_up: CatchUp,
    /// The marker was given (since the last reset).
    marked: bool,
    /// A floor under the count of initial values, for a last-per-subject watch: the keys the
    /// stream holds. nats-server can answer the consumer's creation with a count lowered by keys
    /// written meanwhile, and the marker then came after 1 key of 50 (2.15.1, every key written
    /// without pause). 0 when there is none (another policy, after a reset, a user who may not
    /// ask).
    floor: KeyFloor,
    /// Messages delivered before the marker.
    seen: u64,
}

impl WatchState {
    async fn next(&mut self) -> Option<Result<WatchEvent, KvError>> {
        loop {
            if !self.marked && self.catch_up.is_done() {
                let floor = match &mut self.floor {
                    KeyFloor::Known(keys) => *keys,
                    KeyFloor::Reading(read) => read.await,
                };
                self.floor = KeyFloor::Known(floor);
                if self.seen >= floor {
                    self.marked = true;
                    return Some(Ok(WatchEvent::InitialDone));
                }
            }
            // Sent at the first poll, alongside the consumer's creation; answered meanwhile.
            if let KeyFloor::Reading(read) = &mut self.floor {
                if let std::task::Poll::Ready(keys) = futures::poll!(read) {
                    self.floor = KeyFloor::Known(keys);
                }
            }
            match self.ordered.next_event().await? {
                Err(e) => return Some(Err(self.store.stream_error(e))),
                Ok(OrderedEvent::Created {
                    num_pending,
                    reset,
                    resumed,
                }) => {
                    self.catch_up.created(num_pending, reset);
                    if reset {
                        // The initial values start over, and their marker with them (counted by
                        // the server's count alone).
                        self.marked = false;
                        self.seen = 0;
                        self.floor = KeyFloor::Known(0);
                        return Some(Ok(WatchEvent::Reset));
                    }
                    if resumed {
                        return Some(Ok(WatchEvent::Resumed));
                    }
                }
                Ok(OrderedEvent::Idle) => {
                    // Nothing more to send: what the floor counted and did not come is gone.
                    self.catch_up.idle();
                    if self.catch_up.is_done() {
                        self.floor = KeyFloor::Known(0);
                    }
                }
                Ok(OrderedEvent::Message(m)) => {
                    let entry = self.store.entry_from_message(&m);
                    self.catch_up.delivered(entry.as_ref().map(|e| e.delta));
                    if !self.marked {
                        self.seen += 1;
                    }
                    let Some(entry) = entry else {
                        continue;
                    };
                    if self.ignore_deletes && entry.operation != Operation::Put {
                        continue;
                    }
                    return Some(Ok(WatchEvent::Entry(entry)));
                }
            }
        }
    }
}

/// A live view of keys: a [`Stream`] of [`WatchEvent`]s. Dropping it stops the watch.
pub struct Watch {
    inner: crate::rt::BoxStream<Result<WatchEvent, KvError>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Watch")
    }
}

impl Stream for Watch {
    type Item = Result<WatchEvent, KvError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_buckets() {
        for ok in ["a", "config.app.name", "a-b_c/d=e", "A1"] {
            assert!(valid_key(ok, false).is_ok(), "{ok}");
        }
        for bad in ["", ".a", "a.", "a b", "a*", "a.>", "ü", "a..b"] {
            assert!(valid_key(bad, false).is_err(), "{bad:?}");
        }
        assert!(valid_key("config.>", true).is_ok());
        assert!(valid_key("*.x", true).is_ok());
        assert!(valid_key(">", true).is_ok());
        for bad in ["a.>.b", ">.x", "a.>>", "a.*x"] {
            assert!(valid_key(bad, true).is_err(), "{bad:?}");
        }
        assert!(valid_bucket("via_config").is_ok());
        assert!(valid_bucket("users-1").is_ok());
        assert!(valid_bucket("a.b").is_err());
        assert!(valid_bucket("").is_err());
    }

    #[test]
    fn operations_from_headers_and_server_markers() {
        let headers = |pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, *v);
            }
            h
        };
        let op = |pairs: &[(&str, &str)]| operation_of(Some(&headers(pairs)));
        assert_eq!(operation_of(None), Operation::Put);
        assert_eq!(op(&[("Nats-Msg-Id", "x")]), Operation::Put);
        assert_eq!(op(&[("KV-Operation", "DEL")]), Operation::Delete);
        assert_eq!(
            op(&[("KV-Operation", "PURGE"), ("Nats-Rollup", "sub")]),
            Operation::Purge
        );
        assert_eq!(
            op(&[("Nats-Marker-Reason", "MaxAge"), ("Nats-TTL", "1s")]),
            Operation::Purge
        );
        assert_eq!(op(&[("Nats-Marker-Reason", "Purge")]), Operation::Purge);
        assert_eq!(op(&[("Nats-Marker-Reason", "Remove")]), Operation::Delete);
        assert_eq!(op(&[("Nats-Marker-Reason", "Other")]), Operation::Put);
    }

    /// The floors under `keys`, `keys_matching` and `history` are the stream's own counts: the
    /// subjects holding a message (a deleted key's marker included), and a key's stored revisions.
    #[cfg(not(target_arch = "wasm32"))]
    #[tokio::test]
    async fn floors_are_the_streams_counts() {
        let server = test_support::TestServer::start();
        let client = crate::connect(crate::Options::new(server.url()))
            .await
            .unwrap();
        let config = KvConfig::new("floors").history(3);
        let kv = client.jetstream().create_key_value(config).await.unwrap();
        for key in ["a.x", "a.y", "b.x", "a.x", "a.x", "a.x"] {
            kv.put(key, "v").await.unwrap();
        }
        kv.delete("b.x").await.unwrap();
        assert_eq!(kv.floor(Floor::Keys(">")).await, 3);
        assert_eq!(kv.floor(Floor::Keys("a.*")).await, 2);
        assert_eq!(kv.floor(Floor::Keys("b.>")).await, 1);
        assert_eq!(kv.floor(Floor::Keys("c.*")).await, 0);
        // Four writes of a.x, three kept.
        assert_eq!(kv.floor(Floor::Revisions("a.x")).await, 3);
        assert_eq!(kv.floor(Floor::Revisions("b.x")).await, 2);
        assert_eq!(kv.floor(Floor::Revisions("nothing")).await, 0);
    }
}
