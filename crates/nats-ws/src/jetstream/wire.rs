//! The JSON of the JetStream API, read and written by the core's own JSON reader and writer
//! (`proto::json`) rather than a JSON library: the client reads a few answers and writes a few
//! requests, and a derive-based reader would bring its generic machinery, number parsing and
//! error formatting into every app that uses KV.
//!
//! As with nats.go's `encoding/json`: unknown members are skipped, missing ones and `null` keep
//! their default, and a member of the wrong type (or an enum value this client does not know) is
//! an error. Durations are integer nanoseconds on the wire.

use std::time::Duration;

use super::types::*;
use crate::proto::json::{JsonError, Reader, Writer};

/// A type an answer (or a part of one) is read into, member by member.
pub(crate) trait FromJson: Default {
    /// Reads the value of member `key` (never `null`), or skips it if the type has no such field.
    fn member(&mut self, key: &str, r: &mut Reader<'_>) -> Result<(), JsonError>;
}

/// A request body (or a part of one), written member by member.
pub(crate) trait ToJson {
    fn members(&self, w: &mut Writer);
}

/// The object at the cursor, read into a `T`.
pub(crate) fn object<T: FromJson>(r: &mut Reader<'_>) -> Result<T, JsonError> {
    let mut value = T::default();
    r.fields(|key, r| {
        if r.null() {
            Ok(())
        } else {
            value.member(key, r)
        }
    })?;
    Ok(value)
}

/// A whole answer read as `T`; the error says where it went wrong.
pub(crate) fn read<T: FromJson>(json: &[u8]) -> Result<T, String> {
    let mut value = T::default();
    let mut r = Reader::new(json);
    match r.document(|key, r| {
        if r.null() {
            Ok(())
        } else {
            value.member(key, r)
        }
    }) {
        Ok(()) => Ok(value),
        Err(reason) => Err(failure(reason, &r)),
    }
}

/// Why and where reading failed.
fn failure(reason: JsonError, r: &Reader<'_>) -> String {
    let (at, key) = r.position();
    if key.is_empty() {
        format!("{reason} at byte {at}")
    } else {
        format!("{reason} at byte {at} (reading \"{key}\")")
    }
}

/// A request body as JSON.
pub(crate) fn write(body: &impl ToJson) -> Vec<u8> {
    let mut w = Writer::new();
    body.members(&mut w);
    w.finish().into_bytes()
}

/// The `error` member of an answer, if it has one (a failed call's answer is
/// `{"type": …, "error": {…}}` whatever the call); an error member that cannot be read is a bad
/// answer, never a success.
pub(crate) fn api_error(json: &[u8]) -> Option<Result<ApiError, String>> {
    let mut error = None;
    let mut r = Reader::new(json);
    // Whether the rest of the answer reads is for the caller's own reading to say.
    let _ = r.document(|key, r| {
        if key != "error" {
            return r.skip();
        }
        if !r.null() {
            match object(r) {
                Ok(e) => error = Some(Ok(e)),
                Err(reason) => {
                    error = Some(Err(failure(reason, r)));
                    return Err(reason);
                }
            }
        }
        Ok(())
    });
    error
}

fn u64(r: &mut Reader<'_>) -> Result<u64, JsonError> {
    r.unsigned(u64::MAX)
}

/// A map of subjects to their counts of messages, as the sum of the counts.
#[cfg(feature = "kv")]
fn message_total(r: &mut Reader<'_>) -> Result<u64, JsonError> {
    let mut total = 0u64;
    r.fields(|_, r| {
        total = total.saturating_add(r.unsigned(u64::MAX)?);
        Ok(())
    })?;
    Ok(total)
}

fn usize(r: &mut Reader<'_>) -> Result<usize, JsonError> {
    // In range by the check (a usize is at most 64 bits).
    r.unsigned(usize::MAX as u64).map(|n| n as usize)
}

fn i64(r: &mut Reader<'_>) -> Result<i64, JsonError> {
    r.signed(i64::MIN, i64::MAX)
}

fn u16(r: &mut Reader<'_>) -> Result<u16, JsonError> {
    r.unsigned(u16::MAX.into()).map(|n| n as u16)
}

/// Nanoseconds (the server's int64; a negative one, "unset" to some servers, reads as zero).
fn nanos(r: &mut Reader<'_>) -> Result<Duration, JsonError> {
    Ok(Duration::from_nanos(i64(r)?.max(0) as u64))
}

/// The longest duration the server reads: int64 nanoseconds, about 292 years.
const MAX_NANOS: u64 = i64::MAX as u64;

/// Nanoseconds for the server: a longer duration (`Duration::MAX` for "as long as it takes") is
/// sent as the longest.
pub(crate) fn server_nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).map_or(MAX_NANOS, |n| n.min(MAX_NANOS))
}

fn write_nanos(w: &mut Writer, key: &str, d: Duration) {
    if !d.is_zero() {
        w.unsigned(key, server_nanos(d));
    }
}

fn write_nonzero(w: &mut Writer, key: &str, n: i64) {
    if n != 0 {
        w.signed(key, n);
    }
}

fn write_true(w: &mut Writer, key: &str, b: bool) {
    if b {
        w.bool(key, true);
    }
}

/// An enum the API spells as a string.
trait Named: Copy + 'static {
    const NAMES: &'static [(&'static str, Self)];
    const WHAT: JsonError;

    fn read(r: &mut Reader<'_>) -> Result<Self, JsonError> {
        let name = r.string()?;
        Self::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, v)| v)
            .ok_or(Self::WHAT)
    }

    fn name(self) -> &'static str
    where
        Self: PartialEq,
    {
        Self::NAMES
            .iter()
            .find(|(_, v)| *v == self)
            .map_or("", |&(n, _)| n)
    }
}

impl Named for RetentionPolicy {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("limits", RetentionPolicy::Limits),
        ("interest", RetentionPolicy::Interest),
        ("workqueue", RetentionPolicy::WorkQueue),
    ];
    const WHAT: JsonError = "unknown retention policy";
}

impl Named for DiscardPolicy {
    const NAMES: &'static [(&'static str, Self)] =
        &[("old", DiscardPolicy::Old), ("new", DiscardPolicy::New)];
    const WHAT: JsonError = "unknown discard policy";
}

impl Named for StorageType {
    const NAMES: &'static [(&'static str, Self)] =
        &[("file", StorageType::File), ("memory", StorageType::Memory)];
    const WHAT: JsonError = "unknown storage type";
}

impl Named for DeliverPolicy {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("all", DeliverPolicy::All),
        // What the server writes for a policy it has no name for, and reads as "all".
        ("undefined", DeliverPolicy::All),
        ("last", DeliverPolicy::Last),
        ("new", DeliverPolicy::New),
        ("by_start_sequence", DeliverPolicy::ByStartSequence),
        ("by_start_time", DeliverPolicy::ByStartTime),
        ("last_per_subject", DeliverPolicy::LastPerSubject),
    ];
    const WHAT: JsonError = "unknown deliver policy";
}

impl Named for AckPolicy {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("none", AckPolicy::None),
        ("all", AckPolicy::All),
        ("explicit", AckPolicy::Explicit),
        ("flow_control", AckPolicy::FlowControl),
    ];
    const WHAT: JsonError = "unknown ack policy";
}

impl Named for ReplayPolicy {
    const NAMES: &'static [(&'static str, Self)] = &[
        ("instant", ReplayPolicy::Instant),
        ("original", ReplayPolicy::Original),
    ];
    const WHAT: JsonError = "unknown replay policy";
}

// ---- answers ---------------------------------------------------------------------------------

fn string(r: &mut Reader<'_>) -> Result<String, JsonError> {
    r.string()
}

/// An RFC 3339 time; `None` if it does not read as one (it only ever adds to what is known).
fn time(r: &mut Reader<'_>) -> Result<Option<web_time::SystemTime>, JsonError> {
    string(r).map(|text| crate::time::parse_rfc3339(&text))
}

fn some_string(r: &mut Reader<'_>) -> Result<Option<String>, JsonError> {
    r.string().map(Some)
}

fn strings(r: &mut Reader<'_>) -> Result<Vec<String>, JsonError> {
    r.strings()
}

fn bool(r: &mut Reader<'_>) -> Result<bool, JsonError> {
    r.bool()
}

fn some_object<T: FromJson>(r: &mut Reader<'_>) -> Result<Option<T>, JsonError> {
    object(r).map(Some)
}

fn named<T: Named>(r: &mut Reader<'_>) -> Result<T, JsonError> {
    T::read(r)
}

fn list<T>(
    r: &mut Reader<'_>,
    mut item: impl FnMut(&mut Reader<'_>) -> Result<T, JsonError>,
) -> Result<Vec<T>, JsonError> {
    let mut out = Vec::new();
    r.array(|r| {
        out.push(item(r)?);
        Ok(())
    })?;
    Ok(out)
}

/// A list of infos, where one being created or deleted right now may be `null`.
#[allow(clippy::type_complexity)]
fn infos<T: FromJson>(r: &mut Reader<'_>) -> Result<Option<Vec<Option<Box<T>>>>, JsonError> {
    list(r, |r| {
        if r.null() {
            Ok(None)
        } else {
            object(r).map(|info| Some(Box::new(info)))
        }
    })
    .map(Some)
}

/// `FromJson` for a type whose members are named as its fields, each read by the function
/// given (members it does not name are skipped).
macro_rules! from_json {
    ($($type:ty { $($field:ident: $read:expr),* $(,)? })*) => {$(
        impl FromJson for $type {
            fn member(&mut self, key: &str, r: &mut Reader<'_>) -> Result<(), JsonError> {
                match key {
                    $(stringify!($field) => self.$field = $read(r)?,)*
                    _ => r.skip()?,
                }
                Ok(())
            }
        }
    )*};
}

from_json! {
    StreamConfig {
        name: string,
        description: some_string,
        subjects: strings,
        retention: named,
        max_consumers: i64,
        max_msgs: i64,
        max_bytes: i64,
        max_age: nanos,
        max_msgs_per_subject: i64,
        max_msg_size: i64,
        discard: named,
        storage: named,
        num_replicas: usize,
        duplicate_window: nanos,
        allow_direct: bool,
        allow_rollup_hdrs: bool,
        deny_delete: bool,
        deny_purge: bool,
        allow_msg_ttl: bool,
        subject_delete_marker_ttl: nanos,
        sealed: bool,
    }
    StreamState {
        messages: u64,
        bytes: u64,
        first_seq: u64,
        last_seq: u64,
        consumer_count: usize,
        num_subjects: u64,
        num_deleted: u64,
        first_ts: string,
        last_ts: string,
    }
    StreamCluster {
        name: some_string,
        leader: some_string,
    }
    StreamInfo {
        config: object,
        state: object,
        created: string,
        cluster: some_object,
    }
    StreamBrief {
        config: object,
        state: object,
        created: time,
        cluster: some_object,
    }
    StreamBriefConfig {
        duplicate_window: nanos,
        allow_direct: bool,
    }
    StreamBriefState {
        last_seq: u64,
        num_subjects: u64,
    }
    ConsumerConfig {
        durable_name: some_string,
        name: some_string,
        description: some_string,
        deliver_policy: named,
        opt_start_seq: |r| u64(r).map(Some),
        ack_policy: named,
        ack_wait: nanos,
        max_deliver: i64,
        filter_subject: some_string,
        filter_subjects: strings,
        replay_policy: named,
        max_ack_pending: i64,
        max_waiting: i64,
        deliver_subject: some_string,
        flow_control: bool,
        idle_heartbeat: nanos,
        headers_only: bool,
        mem_storage: bool,
        inactive_threshold: nanos,
        num_replicas: |r| usize(r).map(Some),
        backoff: |r| list(r, u64),
    }
    SequenceInfo {
        consumer_seq: u64,
        stream_seq: u64,
        last_active: some_string,
    }
    ConsumerInfo {
        stream_name: string,
        name: string,
        created: string,
        config: object,
        delivered: object,
        ack_floor: object,
        num_ack_pending: u64,
        num_redelivered: u64,
        num_waiting: u64,
        num_pending: u64,
        cluster: some_object,
    }
    ConsumerBrief {
        created: time,
        delivered: object,
        num_pending: u64,
    }
    ConsumerBriefSequence {
        consumer_seq: u64,
        stream_seq: u64,
    }
    PubAck {
        stream: string,
        seq: u64,
        duplicate: bool,
        domain: some_string,
    }
    AccountLimits {
        max_memory: i64,
        max_storage: i64,
        max_streams: i64,
        max_consumers: i64,
    }
    AccountInfo {
        memory: u64,
        storage: u64,
        streams: usize,
        consumers: usize,
        limits: object,
        domain: some_string,
    }
    ApiError {
        code: u16,
        err_code: u16,
        description: string,
    }
    StreamNamesPage {
        total: usize,
        offset: usize,
        limit: usize,
        streams: |r: &mut Reader<'_>| r.strings().map(Some),
    }
    StreamListPage {
        total: usize,
        offset: usize,
        limit: usize,
        streams: infos,
        missing: strings,
    }
    ConsumerListPage {
        total: usize,
        offset: usize,
        limit: usize,
        consumers: infos,
        missing: strings,
    }
    StoredMessageResponse {
        message: object,
    }
    StoredMessageRaw {
        subject: string,
        seq: u64,
        hdrs: some_string,
        data: some_string,
        time: string,
    }
    PurgeResponse {
        purged: u64,
    }
    SuccessResponse {
        success: bool,
    }
}

#[cfg(feature = "kv")]
from_json! {
    SubjectsPage {
        total: u64,
        state: object,
    }
    SubjectsPageState {
        subjects: message_total,
    }
}

// ---- requests --------------------------------------------------------------------------------

/// What is left out is what the server takes as unset: empty, zero, false.
impl ToJson for StreamConfig {
    fn members(&self, w: &mut Writer) {
        w.string("name", Some(&self.name));
        w.string("description", self.description.as_deref());
        w.strings("subjects", &self.subjects);
        w.string("retention", Some(self.retention.name()));
        write_nonzero(w, "max_consumers", self.max_consumers);
        write_nonzero(w, "max_msgs", self.max_msgs);
        write_nonzero(w, "max_bytes", self.max_bytes);
        write_nanos(w, "max_age", self.max_age);
        write_nonzero(w, "max_msgs_per_subject", self.max_msgs_per_subject);
        write_nonzero(w, "max_msg_size", self.max_msg_size);
        w.string("discard", Some(self.discard.name()));
        w.string("storage", Some(self.storage.name()));
        w.unsigned("num_replicas", self.num_replicas as u64);
        write_nanos(w, "duplicate_window", self.duplicate_window);
        write_true(w, "allow_direct", self.allow_direct);
        write_true(w, "allow_rollup_hdrs", self.allow_rollup_hdrs);
        write_true(w, "deny_delete", self.deny_delete);
        write_true(w, "deny_purge", self.deny_purge);
        write_true(w, "allow_msg_ttl", self.allow_msg_ttl);
        write_nanos(
            w,
            "subject_delete_marker_ttl",
            self.subject_delete_marker_ttl,
        );
        write_true(w, "sealed", self.sealed);
    }
}

impl ToJson for ConsumerConfig {
    fn members(&self, w: &mut Writer) {
        w.string("durable_name", self.durable_name.as_deref());
        w.string("name", self.name.as_deref());
        w.string("description", self.description.as_deref());
        w.string("deliver_policy", Some(self.deliver_policy.name()));
        if let Some(seq) = self.opt_start_seq {
            w.unsigned("opt_start_seq", seq);
        }
        w.string("ack_policy", Some(self.ack_policy.name()));
        write_nanos(w, "ack_wait", self.ack_wait);
        write_nonzero(w, "max_deliver", self.max_deliver);
        w.string("filter_subject", self.filter_subject.as_deref());
        if !self.filter_subjects.is_empty() {
            w.strings("filter_subjects", &self.filter_subjects);
        }
        w.string("replay_policy", Some(self.replay_policy.name()));
        write_nonzero(w, "max_ack_pending", self.max_ack_pending);
        write_nonzero(w, "max_waiting", self.max_waiting);
        w.string("deliver_subject", self.deliver_subject.as_deref());
        write_true(w, "flow_control", self.flow_control);
        write_nanos(w, "idle_heartbeat", self.idle_heartbeat);
        write_true(w, "headers_only", self.headers_only);
        write_true(w, "mem_storage", self.mem_storage);
        write_nanos(w, "inactive_threshold", self.inactive_threshold);
        if let Some(n) = self.num_replicas {
            w.unsigned("num_replicas", n as u64);
        }
        if !self.backoff.is_empty() {
            // Durations too (int64 nanoseconds to the server): longer ones sent as the longest.
            let backoff: Vec<u64> = self.backoff.iter().map(|&n| n.min(MAX_NANOS)).collect();
            w.unsigneds("backoff", &backoff);
        }
    }
}

impl ToJson for ApiRequest<'_> {
    fn members(&self, w: &mut Writer) {
        if let Some(n) = self.offset {
            w.unsigned("offset", n as u64);
        }
        w.string("subjects_filter", self.subjects_filter);
        w.string("subject", self.subject);
        w.string("filter", self.filter);
        if let Some(n) = self.seq {
            w.unsigned("seq", n);
        }
        w.string("last_by_subj", self.last_by_subj);
        w.string("next_by_subj", self.next_by_subj);
        if let Some(n) = self.batch {
            w.unsigned("batch", n as u64);
        }
        if let Some(n) = self.expires {
            w.unsigned("expires", n);
        }
        if let Some(n) = self.idle_heartbeat {
            w.unsigned("idle_heartbeat", n);
        }
    }
}

/// The body of `CONSUMER.CREATE`.
pub(crate) struct CreateConsumer<'a> {
    pub stream_name: &'a str,
    pub config: &'a ConsumerConfig,
}

impl ToJson for CreateConsumer<'_> {
    fn members(&self, w: &mut Writer) {
        w.string("stream_name", Some(self.stream_name));
        w.object("config", |w| self.config.members(w));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn written(body: &impl ToJson) -> Value {
        serde_json::from_slice(&write(body)).expect("valid JSON")
    }

    fn every_stream_setting() -> StreamConfig {
        StreamConfig {
            name: "S".into(),
            description: Some("all \"of\" it".into()),
            subjects: vec!["a.>".into(), "b".into()],
            retention: RetentionPolicy::WorkQueue,
            max_consumers: -1,
            max_msgs: 10,
            max_bytes: 1 << 40,
            max_age: Duration::from_millis(1500),
            max_msgs_per_subject: 5,
            max_msg_size: 1024,
            discard: DiscardPolicy::New,
            storage: StorageType::Memory,
            num_replicas: 3,
            duplicate_window: Duration::from_secs(120),
            allow_direct: true,
            allow_rollup_hdrs: true,
            deny_delete: true,
            deny_purge: true,
            allow_msg_ttl: true,
            subject_delete_marker_ttl: Duration::from_secs(1),
            sealed: true,
        }
    }

    fn every_consumer_setting() -> ConsumerConfig {
        ConsumerConfig {
            durable_name: Some("d".into()),
            name: Some("n".into()),
            description: Some("x".into()),
            deliver_policy: DeliverPolicy::ByStartSequence,
            opt_start_seq: Some(42),
            ack_policy: AckPolicy::All,
            ack_wait: Duration::from_secs(30),
            max_deliver: 3,
            filter_subject: Some("a.*".into()),
            filter_subjects: vec!["b".into(), "c.>".into()],
            replay_policy: ReplayPolicy::Original,
            max_ack_pending: 100,
            max_waiting: 7,
            deliver_subject: Some("_INBOX.x".into()),
            flow_control: true,
            idle_heartbeat: Duration::from_secs(5),
            headers_only: true,
            mem_storage: true,
            inactive_threshold: Duration::from_secs(300),
            num_replicas: Some(1),
            backoff: vec![1_000_000_000, 5_000_000_000],
        }
    }

    /// The member names and spellings are nats-server's (its Go `json` tags).
    #[test]
    fn configurations_are_written_as_the_server_names_them() {
        assert_eq!(
            written(&every_stream_setting()),
            json!({
                "name": "S", "description": "all \"of\" it", "subjects": ["a.>", "b"],
                "retention": "workqueue", "max_consumers": -1, "max_msgs": 10,
                "max_bytes": 1u64 << 40, "max_age": 1_500_000_000u64, "max_msgs_per_subject": 5,
                "max_msg_size": 1024, "discard": "new", "storage": "memory", "num_replicas": 3,
                "duplicate_window": 120_000_000_000u64, "allow_direct": true,
                "allow_rollup_hdrs": true, "deny_delete": true, "deny_purge": true,
                "allow_msg_ttl": true, "subject_delete_marker_ttl": 1_000_000_000u64,
                "sealed": true,
            })
        );
        // Unset settings are left out, and the server applies its defaults.
        assert_eq!(
            written(&StreamConfig::new("S", ["a"])),
            json!({"name": "S", "subjects": ["a"], "retention": "limits", "discard": "old",
                   "storage": "file", "num_replicas": 1})
        );
        assert_eq!(
            written(&CreateConsumer {
                stream_name: "S",
                config: &every_consumer_setting(),
            }),
            json!({"stream_name": "S", "config": {
                "durable_name": "d", "name": "n", "description": "x",
                "deliver_policy": "by_start_sequence", "opt_start_seq": 42, "ack_policy": "all",
                "ack_wait": 30_000_000_000u64, "max_deliver": 3, "filter_subject": "a.*",
                "filter_subjects": ["b", "c.>"], "replay_policy": "original",
                "max_ack_pending": 100, "max_waiting": 7, "deliver_subject": "_INBOX.x",
                "flow_control": true, "idle_heartbeat": 5_000_000_000u64, "headers_only": true,
                "mem_storage": true, "inactive_threshold": 300_000_000_000u64, "num_replicas": 1,
                "backoff": [1_000_000_000u64, 5_000_000_000u64],
            }})
        );
        assert_eq!(
            written(&CreateConsumer {
                stream_name: "S",
                config: &ConsumerConfig::default(),
            }),
            json!({"stream_name": "S", "config": {"deliver_policy": "all",
                   "ack_policy": "explicit", "replay_policy": "instant"}})
        );
        // The server reads durations as int64 nanoseconds: longer ones are sent as the longest.
        let forever = StreamConfig {
            max_age: Duration::MAX,
            ..StreamConfig::new("S", ["a"])
        };
        assert_eq!(written(&forever)["max_age"], json!(i64::MAX));
    }

    #[test]
    fn configurations_read_back_as_written() {
        let stream = every_stream_setting();
        assert_eq!(read::<StreamConfig>(&write(&stream)), Ok(stream));
        let consumer = every_consumer_setting();
        assert_eq!(read::<ConsumerConfig>(&write(&consumer)), Ok(consumer));
        for policy in [
            DeliverPolicy::All,
            DeliverPolicy::Last,
            DeliverPolicy::New,
            DeliverPolicy::ByStartTime,
            DeliverPolicy::LastPerSubject,
        ] {
            let config = ConsumerConfig {
                deliver_policy: policy,
                ack_policy: AckPolicy::None,
                ..Default::default()
            };
            assert_eq!(read::<ConsumerConfig>(&write(&config)), Ok(config));
        }
        let config = StreamConfig {
            retention: RetentionPolicy::Interest,
            ..StreamConfig::new("S", ["a"])
        };
        assert_eq!(read::<StreamConfig>(&write(&config)), Ok(config));
    }

    /// As Go's `encoding/json` reads them: `null` and absent members keep the default, unknown
    /// ones are skipped, a wrong type is an error that says where.
    #[test]
    fn answers_read_like_the_server_meant_them() {
        let info: StreamInfo = read(
            br#"{"config":{"name":"S","description":null,"subjects":null,"max_age":-1,
                "mirror":{"name":"M","external":{"api":"$JS.x.API"}},"num_replicas":3},
                "state":{"messages":2,"first_ts":"0001-01-01T00:00:00Z","lost":{"msgs":[1,2]}},
                "cluster":null,"sources":[{"name":"a"}],"alternates":[]}"#,
        )
        .unwrap();
        assert_eq!(info.config.name, "S");
        assert_eq!(info.config.description, None);
        assert!(info.config.subjects.is_empty());
        assert_eq!(info.config.max_age, Duration::ZERO);
        assert_eq!(info.config.num_replicas, 3);
        assert_eq!(info.state.messages, 2);
        assert_eq!(info.state.first_ts, "0001-01-01T00:00:00Z");
        assert_eq!(info.cluster, None);

        let wrong = read::<StreamInfo>(br#"{"config":{"name":"S","max_msgs":"ten"}}"#);
        assert_eq!(
            wrong,
            Err("expected an integer at byte 33 (reading \"max_msgs\")".into())
        );
        assert!(read::<StreamInfo>(br#"{"config":{"retention":"someday"}}"#)
            .unwrap_err()
            .starts_with("unknown retention policy"));
        assert!(read::<StreamInfo>(br#"{"config":{"num_replicas":-1}}"#).is_err());
        assert!(read::<PubAck>(br#"{"stream":"S","seq":1}x"#).is_err());
        assert!(read::<PubAck>(b"").is_err());
        assert!(read::<PubAck>(br#"["S",1]"#).is_err());

        let account: AccountInfo = read(
            br#"{"type":"io.nats.jetstream.api.v1.account_info_response","memory":1,"storage":2,
                "streams":3,"consumers":4,"limits":{"max_memory":-1,"max_storage":5,
                "max_streams":-1,"max_consumers":-1,"max_ack_pending":-1},"domain":"hub",
                "api":{"total":9,"errors":0}}"#,
        )
        .unwrap();
        assert_eq!(
            account,
            AccountInfo {
                memory: 1,
                storage: 2,
                streams: 3,
                consumers: 4,
                limits: AccountLimits {
                    max_memory: -1,
                    max_storage: 5,
                    max_streams: -1,
                    max_consumers: -1,
                },
                domain: Some("hub".into()),
            }
        );
        let ack: PubAck = read(
            br#"{"stream":"KV_b","domain":"hub","seq":18446744073709551615,"duplicate":true}"#,
        )
        .unwrap();
        assert_eq!(
            ack,
            PubAck {
                stream: "KV_b".into(),
                seq: u64::MAX,
                duplicate: true,
                domain: Some("hub".into()),
            }
        );
        let stored: StoredMessageResponse = read(
            br#"{"message":{"subject":"a","seq":3,"hdrs":"TkFUUy8xLjANCg0K","data":"aGk=",
                "time":"2026-12-05T00:00:00Z"}}"#,
        )
        .unwrap();
        assert_eq!(
            (
                stored.message.subject.as_str(),
                stored.message.seq,
                stored.message.hdrs.as_deref(),
                stored.message.data.as_deref(),
                stored.message.time.as_str()
            ),
            (
                "a",
                3,
                Some("TkFUUy8xLjANCg0K"),
                Some("aGk="),
                "2026-12-05T00:00:00Z"
            )
        );
        let names: StreamNamesPage =
            read(br#"{"total":3,"offset":1,"limit":256,"streams":["b","c"]}"#).unwrap();
        assert_eq!(
            (names.total, names.offset, names.limit, names.streams),
            (3, 1, 256, Some(vec!["b".into(), "c".into()]))
        );
        let list: StreamListPage = read(
            br#"{"total":3,"offset":0,"limit":256,"streams":[{"config":{"name":"a"}},null],"missing":["c"]}"#,
        )
        .unwrap();
        let streams = list.streams.unwrap();
        assert_eq!(streams.len(), 2);
        assert_eq!(streams[0].as_ref().unwrap().config.name, "a");
        assert!(streams[1].is_none());
        assert_eq!(list.missing, ["c"]);

        // The briefs the ordered consumer reads: when the stream and the consumer were made.
        let at = |text| crate::time::parse_rfc3339(text);
        let stream: StreamBrief = read(
            br#"{"config":{"name":"S"},"created":"2026-12-05T07:35:01.12Z","state":{"last_seq":4,"num_subjects":3}}"#,
        )
        .unwrap();
        assert_eq!(stream.created, at("2026-12-05T07:35:01.120Z"));
        assert_eq!((stream.state.last_seq, stream.state.num_subjects), (4, 3));
        let consumer: ConsumerBrief = read(
            br#"{"created":"2026-12-05T07:35:01.123456789Z","delivered":{"consumer_seq":1,"stream_seq":2},"num_pending":3}"#,
        )
        .unwrap();
        assert!(consumer.created > stream.created);
        assert_eq!(consumer.num_pending, 3);
        // A time that does not read as one is not known, and the rest is still read.
        let odd: ConsumerBrief = read(br#"{"created":"yesterday","num_pending":3}"#).unwrap();
        assert_eq!((odd.created, odd.num_pending), (None, 3));
    }

    #[test]
    fn an_answer_carrying_an_error_is_that_error() {
        let refused = br#"{"type":"io.nats.jetstream.api.v1.stream_create_response","error":{"code":400,"err_code":10058,"description":"stream name already in use with a different configuration"}}"#;
        let expected = ApiError {
            code: 400,
            err_code: 10058,
            description: "stream name already in use with a different configuration".into(),
        };
        assert_eq!(api_error(refused), Some(Ok(expected.clone())));
        // A null error is none, and what follows it is still read.
        assert_eq!(api_error(br#"{"error":null,"seq":1}"#), None);
        let twice = br#"{"error":null,"error":{"code":400,"err_code":10058,"description":"stream name already in use with a different configuration"}}"#;
        assert_eq!(api_error(twice), Some(Ok(expected)));
        assert_eq!(api_error(br#"{"stream":"S","seq":1}"#), None);
        assert_eq!(api_error(b"not json"), None);
        // An error that cannot be read is a bad answer, never the call's success.
        for (answer, says) in [
            (&br#"{"error":"boom"}"#[..], "expected an object"),
            (
                br#"{"error":{"code":70000,"err_code":1}}"#,
                "(reading \"code\")",
            ),
            (
                br#"{"seq":1,"error":{"description":5}}"#,
                "(reading \"description\")",
            ),
        ] {
            let Some(Err(why)) = api_error(answer) else {
                panic!("{:?} read as no error", String::from_utf8_lossy(answer));
            };
            assert!(why.contains(says), "{why}");
        }
    }

    #[test]
    fn policies_newer_servers_write_are_read() {
        let config: ConsumerConfig =
            read(br#"{"ack_policy":"flow_control","deliver_policy":"undefined"}"#).unwrap();
        assert_eq!(config.ack_policy, AckPolicy::FlowControl);
        assert_eq!(config.deliver_policy, DeliverPolicy::All);
        assert_eq!(written(&config)["ack_policy"], json!("flow_control"));
        assert_eq!(written(&config)["deliver_policy"], json!("all"));
        let long = ConsumerConfig {
            backoff: vec![u64::MAX, 1],
            ..Default::default()
        };
        assert_eq!(written(&long)["backoff"], json!([i64::MAX, 1]));
    }

    /// Whatever a server (or something posing as one) answers, reading it returns: no panic, no
    /// hang, and no more memory than the answer's size allows.
    #[cfg(not(target_arch = "wasm32"))]
    mod hostile {
        use super::*;
        use proptest::prelude::*;

        fn read_all(json: &[u8]) {
            let _ = api_error(json);
            let _ = read::<StreamInfo>(json);
            let _ = read::<StreamListPage>(json);
            let _ = read::<ConsumerListPage>(json);
            let _ = read::<ConsumerInfo>(json);
            let _ = read::<AccountInfo>(json);
            let _ = read::<StoredMessageResponse>(json);
            let _ = read::<PubAck>(json);
        }

        const REAL: &[&str] = &[
            r#"{"type":"io.nats.jetstream.api.v1.stream_info_response","config":{"name":"KV_cap","subjects":["$KV.cap.\u003e"],"retention":"limits","max_consumers":-1,"max_msgs":-1,"max_age":0,"duplicate_window":120000000000,"discard":"new","storage":"file","num_replicas":1,"metadata":{"_nats.ver":"2.15.1"}},"created":"2026-12-04T18:17:36.091965417Z","state":{"messages":2,"first_seq":1,"last_seq":2,"consumer_count":0},"cluster":{"leader":"N"}}"#,
            r#"{"total":2,"offset":0,"limit":256,"consumers":[null,{"stream_name":"S","name":"c","config":{"ack_policy":"explicit","backoff":[1,2]},"delivered":{"consumer_seq":1,"stream_seq":2}}],"missing":["x"]}"#,
            r#"{"error":{"code":404,"err_code":10059,"description":"stream not found"}}"#,
        ];

        proptest! {
            #[test]
            fn any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
                read_all(&bytes);
            }

            #[test]
            fn real_answers_cut_and_changed(
                which in 0..REAL.len(),
                cut in 0usize..400,
                at in 0usize..400,
                byte in prop::sample::select(b"{}[]\",:-0123456789.eEnul tf\\".to_vec()),
            ) {
                let mut json = REAL[which].as_bytes().to_vec();
                if at < json.len() {
                    json[at] = byte;
                }
                json.truncate(cut.max(1));
                read_all(&json);
            }
        }

        #[test]
        fn a_list_of_nulls_costs_a_pointer_each() {
            let nulls = format!(r#"{{"streams":[{}null]}}"#, "null,".repeat(99_999));
            let page: StreamListPage = read(nulls.as_bytes()).unwrap();
            let streams = page.streams.unwrap();
            assert_eq!(streams.len(), 100_000);
            assert_eq!(
                std::mem::size_of_val(&streams[0]),
                std::mem::size_of::<usize>()
            );
        }
    }
}
