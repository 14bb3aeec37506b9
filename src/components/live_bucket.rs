//! A KV bucket that another program owns, watched live: the map of its keys, for as long as the
//! calling component lives.
//!
//! Unlike `leptos_nats::use_kv_watch`, this never creates the bucket. The agent creates
//! `processes` and `services_registry` with its own settings (the registry's 15 s max age is what
//! removes a crashed owner's entry); a page that created them first, with defaults, would take
//! that away. While the bucket does not exist, the map is empty and `missing` is true.
//!
//! Times that other programs wrote into values (a heartbeat, a start) are their clocks, not this
//! browser's, which may be off by any amount. [`LiveBucket::server_time`] is this browser's clock
//! moved onto the server's, estimated from when the server stored each value the watch delivers
//! ([`ClockOffset`]); on the machine that runs nats-server (and its agents) that is their clock.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use leptos::prelude::*;
use leptos_nats::{spawn_while_mounted, until_connected};
use nats_ws::kv::{Entry, KvError, Operation, SystemTime, WatchEvent};
use nats_ws::Client;

use crate::components::clock::now_ms;

/// How often a missing bucket is looked for again.
const LOOK_AGAIN: Duration = Duration::from_secs(2);

/// What [`watch_existing_bucket`] returns. `Copy`.
#[derive(Clone, Copy)]
pub struct LiveBucket {
    /// Every key with a value.
    pub entries: RwSignal<BTreeMap<String, Entry>>,
    /// True once the initial values are in (or the bucket is known not to exist).
    pub loaded: RwSignal<bool>,
    /// The bucket does not exist (yet).
    pub missing: RwSignal<bool>,
    pub error: RwSignal<Option<String>>,
    /// This browser's clock minus the server's.
    offset: StoredValue<ClockOffset>,
}

/// How far this browser's clock is ahead of the server's (ms; negative when behind), from values
/// the server stored: when one arrives live, the time it arrived minus the time the server
/// stored it is the offset plus the delivery's latency (a few ms). Values from before the watch
/// caught up arrive late by their age: of those, the smallest difference is kept, until a live
/// one replaces it (a bucket someone writes every few seconds has one within seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClockOffset {
    live: Option<f64>,
    earlier: Option<f64>,
}

impl ClockOffset {
    /// A value the server stored at `stored_ms` arrived at `arrived_ms` (this browser's clock);
    /// `live`: the watch had caught up when it came.
    pub fn observe(&mut self, arrived_ms: f64, stored_ms: f64, live: bool) {
        let offset = arrived_ms - stored_ms;
        if !offset.is_finite() {
            return;
        }
        if live {
            self.live = Some(offset);
        } else {
            self.earlier = Some(self.earlier.map_or(offset, |e| e.min(offset)));
        }
    }

    /// The best estimate so far; 0 (the clocks agree) before any value arrived.
    pub fn get(&self) -> f64 {
        self.live.or(self.earlier).unwrap_or(0.0)
    }
}

/// Watches every key of `bucket` on `client`, started over if the watch ends.
pub fn watch_existing_bucket(client: Client, bucket: &'static str) -> LiveBucket {
    let live = LiveBucket {
        entries: RwSignal::new(BTreeMap::new()),
        loaded: RwSignal::new(false),
        missing: RwSignal::new(false),
        error: RwSignal::new(None),
        offset: StoredValue::new(ClockOffset::default()),
    };
    spawn_while_mounted(async move {
        let js = client.jetstream();
        loop {
            if !until_connected(&client).await {
                return;
            }
            let store = match js.key_value(bucket).await {
                Ok(store) => store,
                Err(KvError::BucketNotFound { .. }) => {
                    live.missing.set(true);
                    live.entries.set(BTreeMap::new());
                    live.loaded.set(true);
                    gloo_timers::future::sleep(LOOK_AGAIN).await;
                    continue;
                }
                Err(e) => {
                    if client.status().is_connected() {
                        live.error.set(Some(format!("bucket {bucket}: {e}")));
                    }
                    gloo_timers::future::sleep(LOOK_AGAIN).await;
                    continue;
                }
            };
            live.missing.set(false);
            live.error.set(None);
            let mut watch = match store.watch_all() {
                Ok(watch) => watch,
                Err(e) => {
                    live.error.set(Some(format!("bucket {bucket}: {e}")));
                    gloo_timers::future::sleep(LOOK_AGAIN).await;
                    continue;
                }
            };
            // The map starts over with the first initial value (or the end of them).
            let mut fresh = true;
            // Values arrive as they are stored once the initial ones are in.
            let mut caught_up = false;
            while let Some(event) = watch.next().await {
                // An error is shown until the watch delivers again.
                if event.is_ok() && live.error.with_untracked(Option::is_some) {
                    live.error.set(None);
                }
                if let Ok(WatchEvent::Entry(Entry {
                    created: Some(created),
                    ..
                })) = &event
                {
                    if let Ok(stored) = created.duration_since(SystemTime::UNIX_EPOCH) {
                        let stored = stored.as_secs_f64() * 1000.0;
                        live.offset
                            .update_value(|o| o.observe(now_ms(), stored, caught_up));
                    }
                }
                match event {
                    Ok(WatchEvent::Entry(entry)) => live.entries.update(|map| {
                        if std::mem::take(&mut fresh) {
                            map.clear();
                        }
                        if entry.operation == Operation::Put {
                            map.insert(entry.key.clone(), entry);
                        } else {
                            map.remove(&entry.key);
                        }
                    }),
                    Ok(WatchEvent::InitialDone) => {
                        caught_up = true;
                        if std::mem::take(&mut fresh) {
                            live.entries.set(BTreeMap::new());
                        }
                        live.loaded.set(true);
                    }
                    // The bucket was recreated: start over with its values.
                    Ok(WatchEvent::Reset) => {
                        fresh = true;
                        caught_up = false;
                    }
                    Ok(_) => {}
                    // Deleted (by an admin, say): what it held is gone too; looked for again
                    // until it is back.
                    Err(e) if leptos_nats::bucket_gone(&e) => {
                        live.entries.set(BTreeMap::new());
                        live.missing.set(true);
                        break;
                    }
                    Err(e) => live.error.set(Some(format!("bucket {bucket}: {e}"))),
                }
            }
            gloo_timers::future::sleep(LOOK_AGAIN).await;
        }
    });
    live
}

impl LiveBucket {
    /// The server's time (ms since the epoch) as this browser's clock `local` tells it: `local`
    /// minus the [`ClockOffset`] estimated so far. Compare times other programs wrote with this,
    /// not with this browser's clock.
    pub fn server_time(self, local: ReadSignal<f64>) -> Signal<f64> {
        let offset = self.offset;
        Signal::derive(move || local.get() - offset.with_value(ClockOffset::get))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_live_value_tells_the_offset_earlier_ones_bound_it() {
        let mut o = ClockOffset::default();
        assert_eq!(o.get(), 0.0, "no value yet: the clocks are taken to agree");
        // This browser is 60 s ahead. Values from before the watch caught up, 9 s and 2 s old.
        o.observe(1_000_000.0, 1_000_000.0 - 60_000.0 - 9_000.0, false);
        o.observe(1_000_001.0, 1_000_001.0 - 60_000.0 - 2_000.0, false);
        assert_eq!(o.get(), 62_000.0, "the freshest of them bounds it");
        // A value stored as it was delivered (3 ms on the way).
        o.observe(1_005_000.0, 1_005_000.0 - 60_000.0 - 3.0, true);
        assert_eq!(o.get(), 60_003.0);
        // An older value later does not move a live estimate; a later live one does.
        o.observe(1_006_000.0, 900_000.0, false);
        assert_eq!(o.get(), 60_003.0);
        o.observe(1_010_000.0, 1_010_000.0 - 59_990.0, true);
        assert_eq!(o.get(), 59_990.0);
        // A browser behind the server.
        let mut behind = ClockOffset::default();
        behind.observe(1_000.0, 31_000.0, true);
        assert_eq!(behind.get(), -30_000.0);
        behind.observe(f64::NAN, 1.0, true);
        assert_eq!(behind.get(), -30_000.0, "nonsense is ignored");
    }
}
