//! Feeding the stream: events with unique ids (also their `Nats-Msg-Id`), each to the partition
//! its key hashes to, acknowledged by JetStream, at most `window` unacknowledged at once, at a
//! given rate or as fast as the server acknowledges.

use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use nats_ws::jetstream::{JetStream, PublishOptions};
use web_time::Instant;

use crate::{setup, Event, Settings, WorkerError};

/// What to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub count: u64,
    /// Events per second; `None`: as fast as acknowledged.
    pub rate: Option<u32>,
    /// Ids are `<run>-<i>`: unique per run, so a rerun is not taken for duplicates.
    pub run: String,
    /// Keys are `k-<i mod keys>`.
    pub keys: u32,
    /// Unacknowledged publishes at once.
    pub window: usize,
}

impl Plan {
    pub fn new(count: u64, run: impl Into<String>) -> Self {
        Plan {
            count,
            rate: None,
            run: run.into(),
            keys: 1000,
            window: 256,
        }
    }

    /// The `i`-th event.
    pub fn event(&self, i: u64) -> Event {
        Event {
            id: format!("{}-{i}", self.run),
            key: format!("k-{}", i % u64::from(self.keys.max(1))),
            published_at: crate::now_ms(),
        }
    }
}

/// What was published.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub published: u64,
    /// Acknowledged as duplicates (a retry of one already stored).
    pub duplicates: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub elapsed: Duration,
}

/// Whether a publish failed for want of the server (never connected within its deadline, or no
/// acknowledgement before it): the same event is published again once connected, with the same
/// `Nats-Msg-Id`, so one stored after all is acknowledged as a duplicate within the stream's
/// duplicate window, not stored twice.
fn for_want_of_the_server(e: &nats_ws::jetstream::JetStreamError) -> bool {
    use nats_ws::jetstream::JetStreamError;
    matches!(
        e,
        JetStreamError::NotSent(_) | JetStreamError::DeadlineExceeded(_)
    )
}

/// Publishes `plan`; `progress` is called with the count acknowledged so far, at most every 100.
/// It starts once connected; an outage pauses it (what was not acknowledged is published again
/// once connected), however long; it ends at the first other failure, or when the client is
/// closed or gives up reconnecting.
pub async fn publish(
    js: &JetStream,
    settings: &Settings,
    plan: &Plan,
    mut progress: impl FnMut(u64),
) -> Result<Report, WorkerError> {
    setup::validate(settings)?;
    let start = Instant::now();
    // A run started while the server is away waits for it, as a run under way does, rather than
    // failing on its first request a timeout later; so does one whose connection drops while it
    // makes the stream and consumers ready.
    loop {
        if js.client().wait_connected().await.is_err() {
            return Err(nats_ws::jetstream::JetStreamError::NotSent(start.elapsed()).into());
        }
        match setup::ensure_stream_and_consumers(js, settings).await {
            Ok(()) => break,
            Err(e) if setup::is_transient(&e) && !js.client().status().is_connected() => {}
            Err(e) => return Err(e),
        }
    }
    let mut report = Report::default();
    let mut pending = FuturesUnordered::new();
    let mut next = 0u64;
    // Events whose publish failed for want of the server: published again first, once connected.
    let mut again = std::collections::VecDeque::new();
    let mut failure = None;
    let publish = |i: u64| {
        let event = plan.event(i);
        let subject = settings.partition_subject(settings.partition_for(&event.key));
        let body = serde_json::to_vec(&event).unwrap_or_default();
        let options = PublishOptions::default().msg_id(event.id);
        let js = js.clone();
        async move { (i, js.publish_with(&subject, None, &body, &options).await) }
    };
    loop {
        if failure.is_none() && !again.is_empty() && pending.is_empty() {
            if js.client().wait_connected().await.is_err() {
                failure = Some(nats_ws::jetstream::JetStreamError::NotSent(start.elapsed()));
                continue;
            }
            while pending.len() < plan.window.max(1) {
                let Some(i) = again.pop_front() else { break };
                pending.push(publish(i));
            }
        }
        // Ahead of the rate: how long until the next event is due.
        let mut wait = Duration::ZERO;
        while failure.is_none()
            && again.is_empty()
            && next < plan.count
            && pending.len() < plan.window.max(1)
        {
            if let Some(rate) = plan.rate.filter(|r| *r > 0) {
                let due = Duration::from_secs_f64(next as f64 / f64::from(rate));
                wait = due.saturating_sub(start.elapsed());
                if !wait.is_zero() {
                    break;
                }
            }
            pending.push(publish(next));
            next += 1;
        }
        let (i, result) = if wait.is_zero() || failure.is_some() || !again.is_empty() {
            match pending.next().await {
                Some(result) => result,
                None if failure.is_none() && !again.is_empty() => continue,
                None => break,
            }
        } else {
            // Whichever comes first: an acknowledgement, or the time to publish the next one.
            let sleep = nats_ws::rt::sleep(wait).fuse();
            futures::pin_mut!(sleep);
            futures::select_biased! {
                result = pending.select_next_some() => result,
                _ = sleep => continue,
            }
        };
        // After a failure, what is in flight is still counted, then the failure returned.
        let ack = match result {
            Ok(ack) => ack,
            Err(e) if for_want_of_the_server(&e) => {
                again.push_back(i);
                continue;
            }
            Err(e) => {
                failure.get_or_insert(e);
                continue;
            }
        };
        if ack.duplicate {
            report.duplicates += 1;
        }
        if report.first_seq == 0 || ack.seq < report.first_seq {
            report.first_seq = ack.seq;
        }
        report.last_seq = report.last_seq.max(ack.seq);
        report.published += 1;
        if report.published % 100 == 0 || report.published == plan.count {
            progress(report.published);
        }
    }
    report.elapsed = start.elapsed();
    match failure {
        Some(e) => {
            progress(report.published);
            Err(e.into())
        }
        None => Ok(report),
    }
}
