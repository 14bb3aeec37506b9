//! Creating what the workers need when it is missing: the stream, one durable pull consumer per
//! partition and the two buckets. Whoever comes first (a worker, the publisher, the page) does it;
//! the others find it there. Existing ones are used as they are, never reconfigured.

use std::time::Duration;

use nats_ws::jetstream::JetStreamError;
use nats_ws::jetstream::{
    AckPolicy, ApiErrorKind, ConsumerConfig, DeliverPolicy, JetStream, StreamConfig,
};
use nats_ws::kv::{KvConfig, KvError, Store};

use crate::{Settings, WorkerError};

/// The stream keeps an hour of events, at most 256 MiB: enough to replay any demo.
const STREAM_MAX_AGE: Duration = Duration::from_secs(3600);
const STREAM_MAX_BYTES: i64 = 256 << 20;

/// The two buckets, bound (and created if missing).
pub struct Buckets {
    pub leases: Store,
    pub workers: Store,
}

/// Checks `settings` for what the server would refuse later in a less readable way.
pub fn validate(settings: &Settings) -> Result<(), WorkerError> {
    let bad = |what: &str| Err(WorkerError::Settings(what.to_owned()));
    if settings.partitions == 0 || settings.partitions > 1024 {
        return bad("partitions must be between 1 and 1024");
    }
    if settings.prefix.is_empty()
        || !settings.prefix.split('.').all(|t| {
            !t.is_empty()
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
    {
        return bad(
            "the subject prefix must be tokens of letters, digits, '-' and '_' joined by '.'",
        );
    }
    if settings.tick.is_zero() {
        return bad("tick must be longer than zero");
    }
    // A renewal happens on the first tick after it is due, and must land before the deadline.
    if settings.renew_every + settings.tick + settings.safety_margin >= settings.lease_ttl {
        return bad("renew_every + tick + safety_margin must be shorter than lease_ttl");
    }
    // A batch older than ack_wait - safety_margin goes back unprocessed (it may be delivered
    // again): a pull that waits its whole expiry must come back sooner.
    if settings.ack_wait <= PULL_EXPIRES + settings.safety_margin {
        return bad("ack_wait must be longer than the pull expiry (1 s) + safety_margin");
    }
    if settings.batch == 0 {
        return bad("batch must be at least 1");
    }
    Ok(())
}

/// How long one pull of a worker waits for messages at the server (the settings' `ack_wait`
/// must outlast it).
pub(crate) const PULL_EXPIRES: Duration = Duration::from_secs(1);

/// The stream `settings.stream` on `<prefix>.events.>`, created if missing (safe to race: see
/// [`JetStream::ensure_stream`]).
pub async fn ensure_stream(js: &JetStream, settings: &Settings) -> Result<(), WorkerError> {
    let config = StreamConfig {
        max_age: STREAM_MAX_AGE,
        max_bytes: STREAM_MAX_BYTES,
        description: Some("Partitioned events: one durable pull consumer per partition".into()),
        num_replicas: js.default_replicas().await,
        ..StreamConfig::new(&settings.stream, [settings.events_filter()])
    };
    Ok(js.ensure_stream(&config).await?)
}

/// The durable pull consumer of `partition`, created if missing.
pub async fn ensure_consumer(
    js: &JetStream,
    settings: &Settings,
    partition: u32,
) -> Result<(), WorkerError> {
    let durable = settings.durable(partition);
    match js.consumer_info(&settings.stream, &durable).await {
        Ok(_) => return Ok(()),
        Err(e) if e.api_kind() == Some(ApiErrorKind::ConsumerNotFound) => {}
        Err(e) => return Err(e.into()),
    }
    let config = ConsumerConfig {
        durable_name: Some(durable),
        description: Some(format!(
            "partition {partition}, consumed by its lease holder"
        )),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: settings.ack_wait,
        filter_subject: Some(settings.partition_subject(partition)),
        max_ack_pending: 1000,
        ..Default::default()
    };
    match js.create_consumer(&settings.stream, &config).await {
        Ok(_) => Ok(()),
        // The same race as the stream's: a create that lost it may be refused (a consumer "already
        // exists" on some versions); it is there if it is there (errors as for the stream).
        Err(e) => match js
            .consumer_info(&settings.stream, &settings.durable(partition))
            .await
        {
            Ok(_) => Ok(()),
            Err(look) if look.api_kind() == Some(ApiErrorKind::ConsumerNotFound) => Err(e.into()),
            Err(look) => Err(look.into()),
        },
    }
}

async fn ensure_bucket(js: &JetStream, config: KvConfig) -> Result<Store, KvError> {
    let bucket = config.bucket.clone();
    match js.key_value(&bucket).await {
        Ok(store) => return Ok(store),
        Err(KvError::BucketNotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    match js.create_key_value(config).await {
        Ok(store) => Ok(store),
        // Someone else may have made it in between: as for the stream, nats-server answers the
        // losing create "stream name already in use" or (2.9) "subjects overlap with an existing
        // stream". It is there if it is there (errors as for the stream).
        Err(e) => match js.key_value(&bucket).await {
            Err(KvError::BucketNotFound { .. }) => Err(e),
            looked => looked,
        },
    }
}

/// The buckets `leases` and `workers`; their max age is the lease TTL, so the key of a worker
/// that died without a word goes away by itself.
pub async fn ensure_buckets(js: &JetStream, settings: &Settings) -> Result<Buckets, WorkerError> {
    let replicas = js.default_replicas().await;
    let config = |bucket: &str, description: &str| {
        let mut config = KvConfig::new(bucket)
            .ttl(settings.lease_ttl)
            .replicas(replicas);
        config.description = Some(description.to_owned());
        config
    };
    let leases = ensure_bucket(
        js,
        config(
            &settings.lease_bucket,
            "Partition leases: p.<n> = {owner, renewed_at}",
        ),
    )
    .await?;
    // The lease deadlines assume the bucket expires keys after exactly the lease TTL: a shorter
    // max age would free a partition while its holder still consumes it, none would never free
    // a dead worker's partitions.
    let ttl = leases.status().await?.ttl;
    if ttl != settings.lease_ttl {
        return Err(WorkerError::Settings(format!(
            "the bucket {:?} expires keys after {} ms, the workers' lease TTL is {} ms: delete the bucket or use its TTL",
            settings.lease_bucket,
            ttl.as_millis(),
            settings.lease_ttl.as_millis()
        )));
    }
    let workers = ensure_bucket(
        js,
        config(
            &settings.workers_bucket,
            "Live workers: <id> = WorkerInfo, rewritten every few seconds",
        ),
    )
    .await?;
    Ok(Buckets { leases, workers })
}

/// Everything: stream, consumers, buckets.
pub async fn ensure_all(js: &JetStream, settings: &Settings) -> Result<Buckets, WorkerError> {
    validate(settings)?;
    ensure_stream_and_consumers(js, settings).await?;
    ensure_buckets(js, settings).await
}

/// The stream and every partition's consumer, made if missing: what a publisher needs.
pub async fn ensure_stream_and_consumers(
    js: &JetStream,
    settings: &Settings,
) -> Result<(), WorkerError> {
    ensure_stream(js, settings).await?;
    for p in 0..settings.partitions {
        ensure_consumer(js, settings, p).await?;
    }
    Ok(())
}

/// True for failures that go away by themselves (no connection, a timeout).
pub fn is_transient(e: &WorkerError) -> bool {
    let js = |e: &JetStreamError| {
        matches!(
            e,
            JetStreamError::Request(r) if r.is_transient()
        ) || matches!(e, JetStreamError::NotEnabled { .. })
    };
    match e {
        WorkerError::JetStream(e) => js(e),
        WorkerError::Kv(KvError::JetStream(e)) => js(e),
        WorkerError::Kv(KvError::OutcomeUnknown { .. }) => true,
        WorkerError::Publish(_) | WorkerError::NoServer => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_that_would_undo_every_full_pull_are_refused() {
        assert!(validate(&Settings::default()).is_ok());
        // A pull waits up to 1 s; with a 500 ms margin, a 1.5 s ack wait would send back every
        // batch that waited its whole expiry.
        let short = Settings {
            ack_wait: Duration::from_millis(1500),
            safety_margin: Duration::from_millis(500),
            ..Settings::default()
        };
        let e = validate(&short).expect_err("ack_wait too short");
        assert!(e.to_string().contains("ack_wait"), "{e}");
        let enough = Settings {
            ack_wait: Duration::from_millis(2000),
            ..short
        };
        assert!(validate(&enough).is_ok());
    }
}
