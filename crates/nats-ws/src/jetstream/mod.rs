//! JetStream: streams, consumers and acknowledged publishing, over the JSON API at `$JS.API.…`.
//!
//! Everything here is plain request/reply on top of [`Client`]; nothing new on the wire. Failures
//! the server reports keep its `err_code` and description ([`JetStreamError::Api`]).

mod consumer;
mod types;
mod wire;

/// For the KV layer, which drives ordered consumers itself.
#[cfg(feature = "kv")]
pub(crate) mod consumer_internal {
    pub(crate) use super::consumer::{CatchUp, OrderedEvent};
}

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use thiserror::Error;
use web_time::Instant;

pub use consumer::{FetchOptions, JsMessage, MessageInfo, Ordered, OrderedItem, OrderedOptions};
pub use types::*;

use crate::client::Client;
use crate::error::{PublishError, Quoted, RequestError, SubscribeError, Took};
use crate::header::{status, HeaderMap};
use crate::message::Message;
use crate::proto::Status;
use wire::{FromJson, ToJson};

/// JetStream error codes (`err_code`) the client acts on.
pub mod err_codes {
    /// "JetStream system temporarily unavailable": the cluster has no JetStream leader.
    pub const CLUSTER_NOT_AVAILABLE: u16 = 10008;
    pub const CONSUMER_NOT_FOUND: u16 = 10014;
    pub const NO_MESSAGE_FOUND: u16 = 10037;
    pub const SEQUENCE_NOT_FOUND: u16 = 10043;
    pub const STREAM_NAME_IN_USE: u16 = 10058;
    pub const STREAM_NOT_FOUND: u16 = 10059;
    /// A stream's subjects overlap another stream's ("subjects overlap with an existing stream").
    pub const STREAM_SUBJECT_OVERLAP: u16 = 10065;
    pub const WRONG_LAST_MSG_ID: u16 = 10070;
    pub const WRONG_LAST_SEQUENCE: u16 = 10071;
    /// The same refusal from a replicated stream that has a write to the subject in flight (it
    /// cannot name the last sequence yet): nats-server's `JSStreamWrongLastSequenceConstantErr`.
    pub const WRONG_LAST_SEQUENCE_CONSTANT: u16 = 10164;
}

/// What an API error means, from its `err_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiErrorKind {
    StreamNotFound,
    ConsumerNotFound,
    /// The stream exists with another configuration.
    StreamNameInUse,
    NoMessageFound,
    SequenceNotFound,
    /// `Nats-Expected-Last-(Subject-)Sequence` did not match: someone wrote first (10071, or
    /// 10164 from a replicated stream with another write to the subject in flight).
    WrongLastSequence,
    WrongLastMsgId,
    /// Any other code, kept as is.
    Other(u16),
}

impl ApiErrorKind {
    pub fn from_err_code(code: u16) -> Self {
        match code {
            err_codes::STREAM_NOT_FOUND => ApiErrorKind::StreamNotFound,
            err_codes::CONSUMER_NOT_FOUND => ApiErrorKind::ConsumerNotFound,
            err_codes::STREAM_NAME_IN_USE => ApiErrorKind::StreamNameInUse,
            err_codes::NO_MESSAGE_FOUND => ApiErrorKind::NoMessageFound,
            err_codes::SEQUENCE_NOT_FOUND => ApiErrorKind::SequenceNotFound,
            err_codes::WRONG_LAST_SEQUENCE | err_codes::WRONG_LAST_SEQUENCE_CONSTANT => {
                ApiErrorKind::WrongLastSequence
            }
            err_codes::WRONG_LAST_MSG_ID => ApiErrorKind::WrongLastMsgId,
            other => ApiErrorKind::Other(other),
        }
    }
}

/// Why a JetStream call failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum JetStreamError {
    /// The server refused the call; `err_code` says why (see [`err_codes`]).
    #[error("{description} (jetstream err_code {err_code}, status {code})")]
    Api {
        code: u16,
        err_code: u16,
        description: String,
    },
    #[error("no jetstream answered on {}: the server is starting, its cluster is electing this stream's leader, or jetstream is off (`jetstream {{ … }}` in nats-server.conf)", Quoted(subject))]
    NotEnabled { subject: String },
    #[error(transparent)]
    Request(#[from] RequestError),
    #[error(transparent)]
    Subscribe(#[from] SubscribeError),
    #[error("invalid {what} {}: {reason}", Quoted(name))]
    InvalidName {
        what: &'static str,
        name: String,
        reason: &'static str,
    },
    #[error("unexpected answer from the jetstream api: {0}")]
    BadResponse(String),
    #[error("gave up after {} without an acknowledgement from jetstream", Took(*.0))]
    DeadlineExceeded(Duration),
    /// A publish tried until its deadline without ever being connected: nothing was sent, so
    /// nothing was stored (unlike [`JetStreamError::DeadlineExceeded`], after which it may be).
    #[error("not sent: no connection to the server for {}, so nothing was stored", Took(*.0))]
    NotSent(Duration),
    /// A pull heard nothing from the server for this long, heartbeats included: the server no
    /// longer holds it (it restarted, or the connection was cut while it waited). Pull again.
    #[error("no heartbeat from jetstream for {}: the pull was lost (a server restart or a cut connection); pull again", Took(*.0))]
    MissedHeartbeats(Duration),
    /// A call's argument cannot be sent as it is.
    #[error("invalid argument: {0}")]
    InvalidArgument(&'static str),
}

impl JetStreamError {
    /// The server's `err_code`, for API errors.
    pub fn err_code(&self) -> Option<u16> {
        match self {
            JetStreamError::Api { err_code, .. } => Some(*err_code),
            _ => None,
        }
    }

    /// What an API error means; `None` for errors that are not the server's API answer.
    pub fn api_kind(&self) -> Option<ApiErrorKind> {
        self.err_code().map(ApiErrorKind::from_err_code)
    }

    /// Refused by the server for the user's permissions (to publish the request, or to
    /// subscribe to what its answer or deliveries need): asking again changes nothing until they
    /// change, in the server's config or by signing in as another user.
    pub fn is_permission_denied(&self) -> bool {
        matches!(
            self,
            JetStreamError::Request(RequestError::PermissionDenied { .. })
                | JetStreamError::Subscribe(SubscribeError::PermissionDenied { .. })
        )
    }

    /// Worth trying again after a moment (server restarting, connection down, no stream
    /// answering yet); a call refused for what it is (permission, size, a bad name) is not.
    /// [`JetStreamError::DeadlineExceeded`] is not either: the call already retried until then.
    pub fn is_transient(&self) -> bool {
        match self {
            JetStreamError::NotEnabled { .. } => true,
            JetStreamError::MissedHeartbeats(_) => true,
            // Never sent for want of a connection: as `NotConnected`, sent again once it is back.
            JetStreamError::NotSent(_) => true,
            JetStreamError::Request(RequestError::NoResponders { .. }) => true,
            // Timed out, not connected (never sent), connection lost (sent, outcome unknown),
            // reconnect buffer full.
            JetStreamError::Request(e) => e.is_transient(),
            // "JetStream system temporarily unavailable", leadership changes.
            JetStreamError::Api { code: 503, .. } => true,
            _ => false,
        }
    }
}

impl From<PublishError> for JetStreamError {
    fn from(e: PublishError) -> Self {
        JetStreamError::Request(RequestError::Publish(e))
    }
}

/// A message as stored in a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub subject: String,
    pub sequence: u64,
    pub headers: Option<HeaderMap>,
    pub payload: Bytes,
    /// RFC 3339 time the message was stored.
    pub time: String,
}

/// Options of an acknowledged publish.
#[derive(Debug, Clone, Default)]
pub struct PublishOptions {
    /// `Nats-Msg-Id`: the stream drops a repeat within its duplicate window. When unset, a random id
    /// is used so that retries (after a disconnect, a try that got no answer, or during a
    /// cluster's election) cannot store the message twice.
    pub msg_id: Option<String>,
    pub expected_stream: Option<String>,
    pub expected_last_sequence: Option<u64>,
    pub expected_last_subject_sequence: Option<u64>,
    pub expected_last_msg_id: Option<String>,
    /// How long to keep retrying while the server is unreachable, or while a cluster elects the
    /// leader of the stream that stores the subject. Default: the context's `publish_deadline`
    /// (30 s).
    pub deadline: Option<Duration>,
}

impl PublishOptions {
    pub fn msg_id(mut self, id: impl Into<String>) -> Self {
        self.msg_id = Some(id.into());
        self
    }

    pub fn expected_last_subject_sequence(mut self, seq: u64) -> Self {
        self.expected_last_subject_sequence = Some(seq);
        self
    }

    pub fn expected_last_sequence(mut self, seq: u64) -> Self {
        self.expected_last_sequence = Some(seq);
        self
    }

    pub fn expected_stream(mut self, stream: impl Into<String>) -> Self {
        self.expected_stream = Some(stream.into());
        self
    }

    pub fn deadline(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }
}

/// How long a try of a publish or a consumer's create waits at first (see
/// [`JetStream::attempt_timeout`]), and how many such tries before the waits grow.
const QUICK_TIMEOUT: Duration = Duration::from_secs(1);
const QUICK_TRIES: u32 = 10;
/// A try that got no answer is sent again at once only if it waited at least this long.
pub(crate) const MIN_UNANSWERED: Duration = Duration::from_millis(100);

/// A handle on JetStream through a [`Client`]. Cheap to clone.
#[derive(Clone)]
pub struct JetStream {
    client: Client,
    prefix: String,
    timeout: Duration,
    publish_deadline: Duration,
    /// Whether each stream allows direct get, learned once per stream.
    direct: Arc<Mutex<HashMap<String, bool>>>,
}

impl std::fmt::Debug for JetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStream")
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl Client {
    /// JetStream through this connection, with the default API prefix `$JS.API`.
    pub fn jetstream(&self) -> JetStream {
        JetStream {
            client: self.clone(),
            prefix: "$JS.API".to_owned(),
            timeout: Duration::from_secs(5),
            publish_deadline: Duration::from_secs(30),
            direct: Arc::default(),
        }
    }
}

/// Stream and consumer names: no whitespace, `.`, `*`, `>`, or path separators.
pub(crate) fn validate_name(what: &'static str, name: &str) -> Result<(), JetStreamError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name
        .chars()
        .any(|c| c.is_whitespace() || matches!(c, '.' | '*' | '>' | '/' | '\\'))
    {
        Some("names cannot contain whitespace, '.', '*', '>', '/' or '\\'")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(JetStreamError::InvalidName {
            what,
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// A request's JSON body.
pub(crate) fn json_body(body: &impl ToJson) -> Vec<u8> {
    wire::write(body)
}

/// A stream's info as a caller reads it, all of it or [`StreamBrief`]: each answer that carries
/// one tells the direct-get cache whether the stream allows direct gets.
pub(crate) trait StreamAnswer: FromJson {
    fn allow_direct(&self) -> bool;
}

impl StreamAnswer for StreamInfo {
    fn allow_direct(&self) -> bool {
        self.config.allow_direct
    }
}

impl StreamAnswer for StreamBrief {
    fn allow_direct(&self) -> bool {
        self.config.allow_direct
    }
}

/// An API answer: `T`, or the error it carries instead.
fn parse_response<T: FromJson>(payload: &[u8]) -> Result<T, JetStreamError> {
    match wire::api_error(payload) {
        Some(Ok(e)) => {
            return Err(JetStreamError::Api {
                code: e.code,
                err_code: e.err_code,
                description: e.description,
            })
        }
        Some(Err(unreadable)) => return Err(JetStreamError::BadResponse(unreadable)),
        None => {}
    }
    wire::read(payload).map_err(JetStreamError::BadResponse)
}

impl JetStream {
    /// A context with another API prefix (JetStream domains: `$JS.<domain>.API`).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Timeout of each API call. Default 5 s. (Where a cluster's election is likely, a publish's
    /// tries and an ordered consumer's creates wait at most 1 s each: see `attempt_timeout`.)
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long an acknowledged publish keeps retrying while the server is unreachable. Default 30 s.
    pub fn with_publish_deadline(mut self, deadline: Duration) -> Self {
        self.publish_deadline = deadline;
        self
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Replicas for a stream or bucket that should outlive the loss of a server: 1 on a single
    /// server, as many as the cluster has servers ([`ServerInfo::cluster_size`]) up to 3 — the
    /// replication NATS recommends, which survives one server down. Read from the INFO of the
    /// server this client is connected to; while it is not, waits for the connection up to the
    /// API timeout (then 1). The INFO lists the servers that are up: a stream created while one
    /// of three is down gets 2 (raise it later with a stream update).
    ///
    /// [`ServerInfo::cluster_size`]: crate::proto::ServerInfo::cluster_size
    pub async fn default_replicas(&self) -> usize {
        if !self.client.status().is_connected() {
            self.wait_for_connection(self.timeout).await;
        }
        self.client
            .server_info()
            .map_or(1, |info| info.cluster_size().min(3))
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the server this client is on says it is part of a cluster (its last INFO).
    pub(crate) fn in_cluster(&self) -> bool {
        self.client
            .server_info()
            .is_some_and(|info| info.cluster_size() > 1)
    }

    /// How long a publish is sent again while the server is unreachable before it fails (see
    /// [`JetStream::with_publish_deadline`]).
    pub fn publish_deadline(&self) -> Duration {
        self.publish_deadline
    }

    pub(crate) fn api_subject(&self, suffix: &str) -> String {
        format!("{}.{suffix}", self.prefix)
    }

    /// One API call: request on `<prefix>.<suffix>`, typed JSON answer.
    pub(crate) async fn api<T: FromJson>(
        &self,
        suffix: &str,
        body: &[u8],
    ) -> Result<T, JetStreamError> {
        let subject = self.api_subject(suffix);
        let reply = self
            .client
            .request_with(&subject, None, body, self.timeout)
            .await
            .map_err(|e| match e {
                RequestError::NoResponders { subject } => JetStreamError::NotEnabled { subject },
                e => JetStreamError::Request(e),
            })?;
        parse_response(&reply.payload)
    }

    pub(crate) async fn api_json<T: FromJson>(
        &self,
        suffix: &str,
        body: &impl ToJson,
    ) -> Result<T, JetStreamError> {
        self.api(suffix, &json_body(body)).await
    }

    // ---- account and streams -----------------------------------------------------------------

    pub async fn account_info(&self) -> Result<AccountInfo, JetStreamError> {
        self.api("INFO", b"").await
    }

    /// Creates a stream; succeeds unchanged if an identical one exists, fails with err_code
    /// [`err_codes::STREAM_NAME_IN_USE`] if one with another configuration does.
    pub async fn create_stream(&self, config: &StreamConfig) -> Result<StreamInfo, JetStreamError> {
        self.create_stream_as(config).await
    }

    /// Creates the stream unless one by its name is there: `Ok` once it is, whatever its
    /// configuration (an existing stream is left as it is).
    ///
    /// It looks first, so a user who may read streams but not create them can use one that
    /// exists; a user who may create but not look creates. Safe to race: a create that lost to
    /// another client's is refused "stream name already in use" (the stream is there: `Ok`), or on
    /// nats-server 2.9 "subjects overlap with an existing stream", after which it looks again. If
    /// the stream is still not there (or may not be looked at), the create's refusal is the
    /// error; if that look failed for another reason (a timeout), its error.
    pub async fn ensure_stream(&self, config: &StreamConfig) -> Result<(), JetStreamError> {
        let absent_or_hidden = |e: &JetStreamError| {
            e.api_kind() == Some(ApiErrorKind::StreamNotFound)
                || matches!(
                    e,
                    JetStreamError::Request(RequestError::PermissionDenied { .. })
                )
        };
        match self.stream_brief(&config.name).await {
            Ok(_) => return Ok(()),
            Err(e) if absent_or_hidden(&e) => {}
            Err(e) => return Err(e),
        }
        let refused = match self.create_stream_as::<StreamBrief>(config).await {
            Ok(_) => return Ok(()),
            Err(e) if e.err_code() == Some(err_codes::STREAM_NAME_IN_USE) => return Ok(()),
            Err(e) => e,
        };
        match self.stream_brief(&config.name).await {
            Ok(_) => Ok(()),
            Err(look) if absent_or_hidden(&look) => Err(refused),
            Err(look) => Err(look),
        }
    }

    /// [`JetStream::create_stream`], the answer read as `T` (all of it, or [`StreamBrief`]).
    pub(crate) async fn create_stream_as<T: StreamAnswer>(
        &self,
        config: &StreamConfig,
    ) -> Result<T, JetStreamError> {
        validate_name("stream name", &config.name)?;
        let info: T = self
            .api_json(&format!("STREAM.CREATE.{}", config.name), config)
            .await?;
        self.remember_direct(&config.name, info.allow_direct());
        Ok(info)
    }

    pub async fn update_stream(&self, config: &StreamConfig) -> Result<StreamInfo, JetStreamError> {
        validate_name("stream name", &config.name)?;
        let info: StreamInfo = self
            .api_json(&format!("STREAM.UPDATE.{}", config.name), config)
            .await?;
        self.remember_direct(&config.name, info.config.allow_direct);
        Ok(info)
    }

    pub async fn stream_info(&self, name: &str) -> Result<StreamInfo, JetStreamError> {
        self.stream_info_as(name).await
    }

    /// [`JetStream::stream_info`] for the client's own use: only what [`StreamBrief`] reads.
    pub(crate) async fn stream_brief(&self, name: &str) -> Result<StreamBrief, JetStreamError> {
        self.stream_info_as(name).await
    }

    /// The subjects of stream `name` matching `filter` that hold a message: how many, and with
    /// `counts`, how many messages they hold together. Without `counts` the server is asked for
    /// the page past the last, so it names none of them (it would send up to 100 000 names).
    #[cfg(feature = "kv")]
    pub(crate) async fn subjects_matching(
        &self,
        name: &str,
        filter: &str,
        counts: bool,
    ) -> Result<SubjectsPage, JetStreamError> {
        validate_name("stream name", name)?;
        let body = ApiRequest {
            subjects_filter: Some(filter),
            // nats-server reads it as a Go `int`: in range on every platform it builds for.
            offset: (!counts).then_some(i32::MAX as usize),
            ..Default::default()
        };
        self.api_json(&format!("STREAM.INFO.{name}"), &body).await
    }

    async fn stream_info_as<T: StreamAnswer>(&self, name: &str) -> Result<T, JetStreamError> {
        validate_name("stream name", name)?;
        let info: T = self.api(&format!("STREAM.INFO.{name}"), b"").await?;
        self.remember_direct(name, info.allow_direct());
        Ok(info)
    }

    pub async fn delete_stream(&self, name: &str) -> Result<(), JetStreamError> {
        validate_name("stream name", name)?;
        let _: types::SuccessResponse = self.api(&format!("STREAM.DELETE.{name}"), b"").await?;
        self.direct
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        Ok(())
    }

    /// Removes every message; returns how many.
    pub async fn purge_stream(&self, name: &str) -> Result<u64, JetStreamError> {
        validate_name("stream name", name)?;
        let r: types::PurgeResponse = self.api(&format!("STREAM.PURGE.{name}"), b"").await?;
        Ok(r.purged)
    }

    /// Removes the messages of one subject (wildcards allowed); returns how many.
    pub async fn purge_subject(&self, name: &str, subject: &str) -> Result<u64, JetStreamError> {
        validate_name("stream name", name)?;
        let body = ApiRequest {
            filter: Some(subject),
            ..Default::default()
        };
        let r: types::PurgeResponse = self
            .api_json(&format!("STREAM.PURGE.{name}"), &body)
            .await?;
        Ok(r.purged)
    }

    /// Every stream name, all pages.
    pub async fn stream_names(&self) -> Result<Vec<String>, JetStreamError> {
        let mut names = Vec::new();
        loop {
            let body = ApiRequest {
                offset: Some(names.len()),
                ..Default::default()
            };
            let page: types::StreamNamesPage = self.api_json("STREAM.NAMES", &body).await?;
            let got = page.streams.unwrap_or_default();
            let done = got.is_empty() || names.len() + got.len() >= page.total;
            names.extend(got);
            if done {
                return Ok(names);
            }
        }
    }

    /// Whether a stream stores `subject`: `None` without an answer within a second (or `left`),
    /// or while the cluster elects its JetStream leader (nats-server answers 10008 meanwhile),
    /// `Some(false)` when JetStream has none, is off (for the account too), or refuses to say.
    async fn stream_captures(&self, subject: &str, left: Duration) -> Option<bool> {
        let body = ApiRequest {
            subject: Some(subject),
            ..Default::default()
        };
        let js = self.clone().with_timeout(QUICK_TIMEOUT.min(left));
        match js
            .api_json::<types::StreamNamesPage>("STREAM.NAMES", &body)
            .await
        {
            Ok(page) => Some(page.streams.is_some_and(|names| !names.is_empty())),
            Err(JetStreamError::Request(
                RequestError::TimedOut { .. }
                | RequestError::ConnectionLost { .. }
                | RequestError::NotConnected { .. },
            )) => None,
            Err(JetStreamError::Api {
                err_code: err_codes::CLUSTER_NOT_AVAILABLE,
                ..
            }) => None,
            Err(_) => Some(false),
        }
    }

    /// Every stream's info, all pages. A stream created or deleted while the pages are read shifts
    /// the ones after it: each is listed once, and one that moved between pages may be missed
    /// (as with nats.go's lister, the API has no snapshot).
    pub async fn streams(&self) -> Result<Vec<StreamInfo>, JetStreamError> {
        self.streams_on(None).await
    }

    /// [`JetStream::streams`], only those that store `subject` (wildcards allowed) when given.
    pub(crate) async fn streams_on(
        &self,
        subject: Option<&str>,
    ) -> Result<Vec<StreamInfo>, JetStreamError> {
        let (mut streams, mut offset) = (Vec::<StreamInfo>::new(), 0);
        let mut seen = std::collections::HashSet::new();
        loop {
            let body = ApiRequest {
                offset: Some(offset),
                subject,
                ..Default::default()
            };
            let page: types::StreamListPage = self.api_json("STREAM.LIST", &body).await?;
            let got = page.streams.unwrap_or_default();
            // A cluster leaves out the streams whose leader did not answer in time, and names
            // them in `missing`: they still take their place in the offsets.
            offset += got.len() + page.missing.len();
            let done = got.is_empty() && page.missing.is_empty() || offset >= page.total;
            // A stream being created or deleted right now may be listed as null: skip it.
            for info in got.into_iter().flatten() {
                if seen.insert(info.config.name.clone()) {
                    streams.push(*info);
                }
            }
            if done {
                return Ok(streams);
            }
        }
    }

    fn remember_direct(&self, stream: &str, allow_direct: bool) {
        self.direct
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(stream.to_owned(), allow_direct);
    }

    async fn allows_direct(&self, stream: &str) -> Result<bool, JetStreamError> {
        if let Some(&direct) = self
            .direct
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(stream)
        {
            return Ok(direct);
        }
        Ok(self.stream_brief(stream).await?.config.allow_direct)
    }

    /// The message at `sequence`; `None` if there is none.
    pub async fn get_message(
        &self,
        stream: &str,
        sequence: u64,
    ) -> Result<Option<StoredMessage>, JetStreamError> {
        self.get(
            stream,
            ApiRequest {
                seq: Some(sequence),
                ..Default::default()
            },
            None,
        )
        .await
    }

    /// The last message on `subject`; `None` if there is none.
    pub async fn get_last_message(
        &self,
        stream: &str,
        subject: &str,
    ) -> Result<Option<StoredMessage>, JetStreamError> {
        self.get(
            stream,
            ApiRequest {
                last_by_subj: Some(subject),
                ..Default::default()
            },
            Some(subject),
        )
        .await
    }

    /// The first message on `subject` at or after `sequence`; `None` if there is none.
    pub async fn get_next_message(
        &self,
        stream: &str,
        sequence: u64,
        subject: &str,
    ) -> Result<Option<StoredMessage>, JetStreamError> {
        self.get(
            stream,
            ApiRequest {
                seq: Some(sequence),
                next_by_subj: Some(subject),
                ..Default::default()
            },
            None,
        )
        .await
    }

    /// The last message on `subject` (wildcards allowed) before `sequence`; `None` if there is
    /// none.
    ///
    /// The API has no "previous": this asks for the next message at `sequence - 1` first (one
    /// call when nothing was deleted just before), then bisects the sequences below it with
    /// "next at or after", so a gap of deleted messages costs at most 64 more calls whatever
    /// its length. Nothing is consumed or created on the server.
    pub async fn get_previous_message(
        &self,
        stream: &str,
        sequence: u64,
        subject: &str,
    ) -> Result<Option<StoredMessage>, JetStreamError> {
        let Some(mut hi) = sequence.checked_sub(1).filter(|&s| s > 0) else {
            return Ok(None);
        };
        let below = |m: Option<StoredMessage>| m.filter(|m| m.sequence < sequence);
        if let Some(m) = below(self.get_next_message(stream, hi, subject).await?) {
            return Ok(Some(m));
        }
        if hi == 1 {
            return Ok(None);
        }
        // Nothing in [hi, sequence). `best` is a message below `sequence` at `best.sequence`;
        // nothing matches in (hi, sequence); each step halves the range in between.
        let Some(mut best) = below(self.get_next_message(stream, 1, subject).await?) else {
            return Ok(None);
        };
        hi -= 1;
        while best.sequence < hi {
            let mid = best.sequence + (hi - best.sequence).div_ceil(2);
            match below(self.get_next_message(stream, mid, subject).await?) {
                Some(m) => best = m,
                None => hi = mid - 1,
            }
        }
        Ok(Some(best))
    }

    /// Direct get when the stream allows it (any replica answers, no JSON), `STREAM.MSG.GET` otherwise.
    async fn get(
        &self,
        stream: &str,
        body: ApiRequest<'_>,
        last_by_subject: Option<&str>,
    ) -> Result<Option<StoredMessage>, JetStreamError> {
        validate_name("stream name", stream)?;
        if self.allows_direct(stream).await? {
            let (subject, payload) = match last_by_subject {
                Some(s) => (
                    self.api_subject(&format!("DIRECT.GET.{stream}.{s}")),
                    Vec::new(),
                ),
                None => (
                    self.api_subject(&format!("DIRECT.GET.{stream}")),
                    json_body(&body),
                ),
            };
            let reply = self
                .client
                .request_with(&subject, None, &payload, self.timeout)
                .await
                .map_err(|e| match e {
                    RequestError::NoResponders { subject } => {
                        JetStreamError::NotEnabled { subject }
                    }
                    e => JetStreamError::Request(e),
                })?;
            return direct_reply(reply);
        }
        match self
            .api_json::<types::StoredMessageResponse>(&format!("STREAM.MSG.GET.{stream}"), &body)
            .await
        {
            Ok(r) => Ok(Some(stored_from_json(r.message)?)),
            Err(JetStreamError::Api {
                err_code: err_codes::NO_MESSAGE_FOUND,
                ..
            }) => Ok(None),
            Err(JetStreamError::Api {
                code: 404,
                err_code,
                ..
            }) if err_code != err_codes::STREAM_NOT_FOUND => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes one message; `false` if there was none at that sequence.
    pub async fn delete_message(
        &self,
        stream: &str,
        sequence: u64,
    ) -> Result<bool, JetStreamError> {
        validate_name("stream name", stream)?;
        let body = ApiRequest {
            seq: Some(sequence),
            ..Default::default()
        };
        match self
            .api_json::<types::SuccessResponse>(&format!("STREAM.MSG.DELETE.{stream}"), &body)
            .await
        {
            Ok(r) => Ok(r.success),
            // nats-server 2.9 answers "sequence N not found" (10043) for a missing message.
            Err(JetStreamError::Api {
                err_code: err_codes::NO_MESSAGE_FOUND | err_codes::SEQUENCE_NOT_FOUND,
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    // ---- publishing --------------------------------------------------------------------------

    /// Publishes and waits for the stream's acknowledgement.
    pub async fn publish(
        &self,
        subject: &str,
        payload: impl AsRef<[u8]>,
    ) -> Result<PubAck, JetStreamError> {
        self.publish_with(subject, None, payload.as_ref(), &PublishOptions::default())
            .await
    }

    /// Publishes with headers and options, and waits for the acknowledgement. While the server is
    /// unreachable (disconnected, restarting) the publish is retried with the same `Nats-Msg-Id`
    /// until acknowledged or the deadline passes, so it is stored at most once as long as the
    /// deadline is shorter than the stream's duplicate window.
    pub async fn publish_with(
        &self,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: &[u8],
        options: &PublishOptions,
    ) -> Result<PubAck, JetStreamError> {
        self.publish_tracked(subject, headers, payload, options)
            .await
            .0
    }

    /// [`JetStream::publish_with`], also telling whether an attempt may have been stored without
    /// its answer arriving (timed out, connection lost). A later attempt refused by an expectation
    /// (`Nats-Expected-…`) may then have been refused because of that earlier one.
    pub(crate) async fn publish_tracked(
        &self,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: &[u8],
        options: &PublishOptions,
    ) -> (Result<PubAck, JetStreamError>, bool) {
        let mut maybe_stored = false;
        let result = self
            .publish_attempts(subject, headers, payload, options, &mut maybe_stored)
            .await;
        (result, maybe_stored)
    }

    async fn publish_attempts(
        &self,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: &[u8],
        options: &PublishOptions,
        maybe_stored: &mut bool,
    ) -> Result<PubAck, JetStreamError> {
        let mut headers = headers.cloned().unwrap_or_default();
        let msg_id = options
            .msg_id
            .clone()
            .unwrap_or_else(|| self.client.new_token());
        headers.insert("Nats-Msg-Id", msg_id);
        if let Some(s) = &options.expected_stream {
            headers.insert("Nats-Expected-Stream", s.as_str());
        }
        if let Some(n) = options.expected_last_sequence {
            headers.insert("Nats-Expected-Last-Sequence", n.to_string());
        }
        if let Some(n) = options.expected_last_subject_sequence {
            headers.insert("Nats-Expected-Last-Subject-Sequence", n.to_string());
        }
        if let Some(id) = &options.expected_last_msg_id {
            headers.insert("Nats-Expected-Last-Msg-Id", id.as_str());
        }
        let deadline = options.deadline.unwrap_or(self.publish_deadline);
        let started = Instant::now();
        let mut pause = Duration::from_millis(100);
        // No responders while connected usually means no stream captures the subject: give up
        // after a few tries (as nats.go does) rather than at the deadline.
        let mut no_responders = 0;
        // Tries in a row that got no answer: each is sent again at once (if it waited at least
        // `MIN_UNANSWERED`), with the same id.
        let mut unanswered = 0;
        // Whether a stream stores the subject, once asked (after no responders, in a cluster):
        // then the stream is electing its leader, and tries are short (`attempt_timeout`).
        let mut captured: Option<bool> = None;
        loop {
            let left = deadline.saturating_sub(started.elapsed());
            let timeout = match captured {
                Some(true) => Self::attempt_timeout(unanswered, self.timeout),
                _ => self.timeout,
            };
            let tried = Instant::now();
            let attempt = self
                .client
                .request_with(
                    subject,
                    Some(&headers),
                    payload,
                    timeout.min(left.max(Duration::from_millis(1))),
                )
                .await;
            let error = match attempt {
                Ok(reply) => {
                    let mut ack: PubAck = parse_response(&reply.payload)?;
                    // A random id of our own can only have been seen from an earlier attempt of
                    // this same publish (one whose answer was lost): it was stored.
                    if options.msg_id.is_none() {
                        ack.duplicate = false;
                    }
                    return Ok(ack);
                }
                Err(RequestError::NoResponders { subject }) => {
                    JetStreamError::NotEnabled { subject }
                }
                Err(e) => {
                    *maybe_stored |= matches!(
                        e,
                        RequestError::TimedOut { .. } | RequestError::ConnectionLost { .. }
                    );
                    JetStreamError::Request(e)
                }
            };
            if let JetStreamError::NotEnabled { .. } = error {
                no_responders += 1;
                // In a cluster a stream whose leader died has no responders either, until
                // another is elected (4–9 s): asked once whether a stream stores the subject,
                // it is tried until the deadline if one does (or if nobody answers that: a
                // JetStream leader's election).
                if no_responders >= 3 && captured != Some(true) {
                    if captured.is_none() && self.in_cluster() {
                        let left = deadline.saturating_sub(started.elapsed());
                        let found = self.stream_captures(subject, left).await;
                        captured = Some(found.unwrap_or(true));
                    }
                    if captured != Some(true) {
                        return Err(error);
                    }
                }
            } else {
                no_responders = 0;
            }
            if !error.is_transient() {
                return Err(error);
            }
            if started.elapsed() >= deadline {
                let never_sent = !*maybe_stored
                    && matches!(
                        error,
                        JetStreamError::Request(RequestError::NotConnected { .. })
                    );
                return Err(match never_sent {
                    true => JetStreamError::NotSent(deadline),
                    false => JetStreamError::DeadlineExceeded(deadline),
                });
            }
            if let JetStreamError::Request(RequestError::TimedOut { .. }) = error {
                unanswered += 1;
                // It waited its timeout already: no pause on top (unless that was next to
                // nothing: a tiny API timeout must not make a loop of it).
                if tried.elapsed() >= MIN_UNANSWERED {
                    continue;
                }
            } else {
                unanswered = 0;
            }
            self.wait_for_connection(pause.min(deadline.saturating_sub(started.elapsed())))
                .await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    /// How long the next try of a publish or a consumer's create waits for its answer, after
    /// `unanswered` tries in a row that got none: `QUICK_TIMEOUT` for the first `QUICK_TRIES`,
    /// then twice as long each time, up to `cap` (the API's timeout). An answer takes
    /// milliseconds; in a cluster that just lost a server none comes to a try sent to a stream
    /// or JetStream leader that died, or to a consumer placed on the dead server (a cluster
    /// counts a killed server as up for a while), and only a try sent after the election (4–9 s)
    /// gets one. The longer waits are for a server that is merely slow. Used only where an
    /// election is likely: a publish that met no responders while a stream stores its subject,
    /// an ordered consumer made again in a cluster after its consumer was found gone, its
    /// heartbeats stopped or the connection came back; elsewhere a try waits the API's timeout (a
    /// slow link or server answers late, and a late answer to an earlier try is not waited for).
    pub(crate) fn attempt_timeout(unanswered: u32, cap: Duration) -> Duration {
        let slower = unanswered.saturating_sub(QUICK_TRIES - 1).min(8);
        (QUICK_TIMEOUT * (1 << slower)).min(cap)
    }

    /// Waits until the client is connected, or `at_most`.
    pub(crate) async fn wait_for_connection(&self, at_most: Duration) {
        use futures::{FutureExt, StreamExt};
        let mut statuses = self.client.status_stream();
        let connected = async {
            while let Some(s) = statuses.next().await {
                if s.is_connected() {
                    // Let the handshake's buffered traffic go first.
                    return;
                }
                if matches!(s, Status::Closed) {
                    return;
                }
            }
        };
        let was_connected = self.client.status().is_connected();
        if was_connected {
            crate::rt::sleep(at_most).await;
            return;
        }
        futures::select_biased! {
            _ = connected.fuse() => {},
            _ = crate::rt::sleep(at_most).fuse() => {},
        }
    }
}

/// A status of 400 or more on a message from the server (direct get, pull), as an API error.
pub(crate) fn status_error(message: &Message) -> Option<JetStreamError> {
    let code = message.status().filter(|&c| c >= 400)?;
    let description = message
        .headers
        .as_ref()
        .and_then(|h| h.description())
        .unwrap_or_default()
        .to_owned();
    Some(JetStreamError::Api {
        code,
        err_code: 0,
        description,
    })
}

/// A direct-get reply: the stored message with `Nats-*` headers, or a status such as 404.
fn direct_reply(reply: Message) -> Result<Option<StoredMessage>, JetStreamError> {
    if reply.status() == Some(status::NOT_FOUND) {
        return Ok(None);
    }
    if let Some(error) = status_error(&reply) {
        return Err(error);
    }
    // The server appends its `Nats-*` headers after the stored ones, which may hold the same
    // names (a message republished by another stream, or a publisher's own): the last are its.
    let mut headers = reply.headers.unwrap_or_default();
    let take = |h: &mut HeaderMap, name: &str| h.take_last(name);
    let subject = take(&mut headers, "Nats-Subject").ok_or_else(|| {
        JetStreamError::BadResponse("direct get reply without Nats-Subject".into())
    })?;
    let sequence = take(&mut headers, "Nats-Sequence")
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            JetStreamError::BadResponse("direct get reply without Nats-Sequence".into())
        })?;
    let time = take(&mut headers, "Nats-Time-Stamp").unwrap_or_default();
    take(&mut headers, "Nats-Stream");
    let headers = (!headers.is_empty()).then_some(headers);
    Ok(Some(StoredMessage {
        subject,
        sequence,
        headers,
        payload: reply.payload,
        time,
    }))
}

fn stored_from_json(raw: types::StoredMessageRaw) -> Result<StoredMessage, JetStreamError> {
    let decode = |text: String| {
        crate::rfc4648::decode_base64(text.as_bytes())
            .ok_or_else(|| JetStreamError::BadResponse("bad base64 in a stored message".to_owned()))
    };
    let payload = match raw.data {
        Some(d) => Bytes::from(decode(d)?),
        None => Bytes::new(),
    };
    let headers = match raw.hdrs {
        Some(h) => {
            let block = decode(h)?;
            Some(HeaderMap::parse(&block).map_err(|e| JetStreamError::BadResponse(e.to_string()))?)
        }
        None => None,
    };
    Ok(StoredMessage {
        subject: raw.subject,
        sequence: raw.seq,
        headers,
        payload,
        time: raw.time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_pages_may_hold_null_for_what_is_being_created_or_deleted() {
        // Seen from nats-server while a consumer was being created: a null in the list.
        let page: types::ConsumerListPage = parse_response(
            br#"{"type":"io.nats.jetstream.api.v1.consumer_list_response","total":1,"offset":0,"limit":256,"consumers":[null]}"#,
        )
        .unwrap();
        assert_eq!(page.consumers.map(|c| c.len()), Some(1));
        let page: types::StreamListPage =
            parse_response(br#"{"total":1,"offset":0,"limit":256,"streams":[null]}"#).unwrap();
        assert!(page.streams.unwrap()[0].is_none());
    }

    #[test]
    fn api_errors_are_typed_by_err_code() {
        let e = parse_response::<StreamInfo>(
            br#"{"type":"io.nats.jetstream.api.v1.stream_info_response","error":{"code":404,"err_code":10059,"description":"stream not found"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.api_kind(), Some(ApiErrorKind::StreamNotFound));
        assert_eq!(
            e.to_string(),
            "stream not found (jetstream err_code 10059, status 404)"
        );
        for code in [10071, 10164] {
            assert_eq!(
                ApiErrorKind::from_err_code(code),
                ApiErrorKind::WrongLastSequence
            );
        }
        assert_eq!(
            ApiErrorKind::from_err_code(12345),
            ApiErrorKind::Other(12345)
        );
        let ok = parse_response::<PubAck>(br#"{"stream":"S","seq":7}"#).unwrap();
        assert_eq!((ok.stream.as_str(), ok.seq, ok.duplicate), ("S", 7, false));
        // The error is the answer wherever it stands, also after a member that does not read;
        // one that does not read itself is a bad answer; without one, the bad member is.
        let refused = r#""error":{"code":503,"err_code":10077,"description":"no suitable peers"}"#;
        for answer in [
            format!(r#"{{{refused},"seq":7}}"#),
            format!(r#"{{"seq":"seven",{refused}}}"#),
        ] {
            let e = parse_response::<PubAck>(answer.as_bytes()).unwrap_err();
            assert_eq!(e.err_code(), Some(10077), "{answer}");
        }
        let e = parse_response::<PubAck>(br#"{"seq":7,"error":"boom"}"#).unwrap_err();
        assert!(
            matches!(&e, JetStreamError::BadResponse(why) if why.contains("expected an object")),
            "{e}"
        );
        let e = parse_response::<PubAck>(br#"{"seq":"seven"}"#).unwrap_err();
        assert!(
            matches!(&e, JetStreamError::BadResponse(why) if why.contains("(reading \"seq\")")),
            "{e}"
        );
    }

    /// nats-server 2.15.1's answer to `STREAM.INFO` for a KV bucket, as recorded.
    const STREAM_INFO: &str = r#"{"type":"io.nats.jetstream.api.v1.stream_info_response","total":0,"offset":0,"limit":0,"config":{"name":"KV_cap","subjects":["$KV.cap.\u003e"],"retention":"limits","max_consumers":-1,"max_msgs":-1,"max_bytes":-1,"max_age":0,"max_msgs_per_subject":1,"max_msg_size":-1,"discard":"new","storage":"file","num_replicas":1,"duplicate_window":120000000000,"compression":"none","allow_direct":false,"mirror_direct":false,"sealed":false,"deny_delete":true,"deny_purge":false,"allow_rollup_hdrs":true,"consumer_limits":{},"allow_msg_ttl":true,"metadata":{"_nats.level":"5","_nats.req.level":"1","_nats.ver":"2.15.1"}},"created":"2026-12-04T18:17:36.091965417Z","state":{"messages":2,"bytes":80,"first_seq":1,"first_ts":"2026-12-04T18:17:36.096236157Z","last_seq":2,"last_ts":"2026-12-04T18:17:36.097715807Z","num_subjects":2,"consumer_count":0},"cluster":{"leader":"NBDKWPEI6A6X7H6TDZ5LWFY7VHQT75AUKCCO6U6KKN5X425LYL66YCMP"},"ts":"2026-12-04T18:17:36.098270652Z"}"#;

    /// nats-server 2.15.1's answer to an ordered consumer's `CONSUMER.CREATE`, as recorded.
    const CONSUMER_CREATED: &str = r#"{"type":"io.nats.jetstream.api.v1.consumer_create_response","stream_name":"KV_cap","name":"ord1","created":"2026-12-04T18:17:36.099005625Z","config":{"name":"ord1","deliver_policy":"last_per_subject","ack_policy":"none","max_deliver":-1,"filter_subject":"$KV.cap.\u003e","replay_policy":"instant","flow_control":true,"deliver_subject":"_INBOX.x","idle_heartbeat":5000000000,"inactive_threshold":300000000000,"num_replicas":1,"mem_storage":true,"metadata":{"_nats.level":"5","_nats.req.level":"0","_nats.ver":"2.15.1"}},"delivered":{"consumer_seq":0,"stream_seq":0},"ack_floor":{"consumer_seq":0,"stream_seq":0},"num_ack_pending":0,"num_redelivered":0,"num_waiting":0,"num_pending":2,"ts":"2026-12-04T18:17:36.099221476Z"}"#;

    fn both<T: FromJson, B: FromJson>(answer: &str) -> (T, B) {
        let full = parse_response(answer.as_bytes()).expect("the full answer reads");
        let brief = parse_response(answer.as_bytes()).expect("the brief reads");
        (full, brief)
    }

    /// What the client's own paths read through the brief types is what the full types read,
    /// from real answers and from variations of them (direct gets on, a cluster electing, a server
    /// that names no cluster, a consumer resuming mid-stream).
    #[test]
    fn the_brief_answers_read_what_the_full_ones_read() {
        let variants = [
            STREAM_INFO.to_owned(),
            STREAM_INFO.replace(r#""allow_direct":false"#, r#""allow_direct":true"#),
            STREAM_INFO.replace(r#""duplicate_window":120000000000"#, r#""duplicate_window":5000000000"#),
            STREAM_INFO.replace("NBDKWPEI6A6X7H6TDZ5LWFY7VHQT75AUKCCO6U6KKN5X425LYL66YCMP", ""),
            STREAM_INFO.replace(r#","cluster":{"leader":"NBDKWPEI6A6X7H6TDZ5LWFY7VHQT75AUKCCO6U6KKN5X425LYL66YCMP"}"#, ""),
            STREAM_INFO.replace(r#""last_seq":2"#, r#""last_seq":18446744073709551615"#),
        ];
        let mut seen = std::collections::HashSet::new();
        for answer in &variants {
            let (full, brief): (StreamInfo, StreamBrief) = both(answer);
            let read = (
                brief.config.duplicate_window,
                brief.config.allow_direct,
                brief.state.last_seq,
                brief.cluster.clone(),
            );
            assert_eq!(
                read,
                (
                    full.config.duplicate_window,
                    full.config.allow_direct,
                    full.state.last_seq,
                    full.cluster.clone()
                ),
                "{answer}"
            );
            assert!(
                seen.insert(format!("{read:?}")),
                "each variant reads differently"
            );
        }
        for answer in [
            CONSUMER_CREATED.to_owned(),
            CONSUMER_CREATED.replace(
                r#""delivered":{"consumer_seq":0,"stream_seq":0}"#,
                r#""delivered":{"consumer_seq":3,"stream_seq":41,"last_active":"2026-12-04T18:17:37Z"}"#,
            ),
        ] {
            let (full, brief): (ConsumerInfo, ConsumerBrief) = both(&answer);
            assert_eq!(
                (
                    brief.num_pending,
                    brief.delivered.stream_seq,
                    brief.delivered.consumer_seq
                ),
                (
                    full.num_pending,
                    full.delivered.stream_seq,
                    full.delivered.consumer_seq
                ),
                "{answer}"
            );
        }
        // An error answer is the same error through either.
        let refused =
            r#"{"error":{"code":404,"err_code":10014,"description":"consumer not found"}}"#;
        let full = parse_response::<ConsumerInfo>(refused.as_bytes()).unwrap_err();
        let brief = parse_response::<ConsumerBrief>(refused.as_bytes()).unwrap_err();
        assert_eq!(full.to_string(), brief.to_string());
    }

    /// A setting this client does not know (a newer server's) makes the full info unreadable, but
    /// does not stop a bucket from binding or a watch from starting.
    #[test]
    fn the_brief_answers_do_not_read_settings_they_do_not_need() {
        let newer = STREAM_INFO.replace(r#""retention":"limits""#, r#""retention":"someday""#);
        assert!(parse_response::<StreamInfo>(newer.as_bytes()).is_err());
        let brief: StreamBrief = parse_response(newer.as_bytes()).unwrap();
        assert_eq!(brief.config.duplicate_window, Duration::from_secs(120));
        let newer = CONSUMER_CREATED.replace(r#""ack_policy":"none""#, r#""ack_policy":"someday""#);
        assert!(parse_response::<ConsumerInfo>(newer.as_bytes()).is_err());
        let brief: ConsumerBrief = parse_response(newer.as_bytes()).unwrap();
        assert_eq!(brief.num_pending, 2);
    }

    /// Each request body is the JSON the API expects, with only the fields the call sets.
    #[test]
    fn request_bodies_carry_only_what_each_call_sets() {
        let json = |body: ApiRequest<'_>| {
            serde_json::from_slice::<serde_json::Value>(&json_body(&body)).unwrap()
        };
        let cases = [
            (
                ApiRequest {
                    seq: Some(5),
                    next_by_subj: Some("$KV.b.\"k\""),
                    ..Default::default()
                },
                serde_json::json!({ "seq": 5, "next_by_subj": "$KV.b.\"k\"" }),
            ),
            (
                ApiRequest {
                    last_by_subj: Some("$KV.b.k"),
                    ..Default::default()
                },
                serde_json::json!({ "last_by_subj": "$KV.b.k" }),
            ),
            (
                ApiRequest {
                    offset: Some(0),
                    subject: Some("$KV.*.>"),
                    ..Default::default()
                },
                serde_json::json!({ "offset": 0, "subject": "$KV.*.>" }),
            ),
            (
                ApiRequest {
                    batch: Some(10),
                    expires: Some(u64::MAX),
                    ..Default::default()
                },
                serde_json::json!({ "batch": 10, "expires": u64::MAX }),
            ),
            (
                ApiRequest {
                    filter: Some("a.>"),
                    ..Default::default()
                },
                serde_json::json!({ "filter": "a.>" }),
            ),
            (
                ApiRequest {
                    offset: Some(256),
                    ..Default::default()
                },
                serde_json::json!({ "offset": 256 }),
            ),
            (
                ApiRequest {
                    seq: Some(7),
                    ..Default::default()
                },
                serde_json::json!({ "seq": 7 }),
            ),
            (ApiRequest::default(), serde_json::json!({})),
        ];
        for (body, expected) in cases {
            assert_eq!(json(body), expected);
        }
    }
}
