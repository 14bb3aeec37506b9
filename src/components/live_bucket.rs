//! A KV bucket that another program owns, watched live: the map of its keys, for as long as the
//! calling component lives.
//!
//! Unlike `leptos_nats::use_kv_watch`, this never creates the bucket. The agent creates
//! `processes` and `services_registry` with its own settings (the registry's 15 s max age is what
//! removes a crashed owner's entry); a page that created them first, with defaults, would take
//! that away. While the bucket does not exist, the map is empty and `missing` is true.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use leptos::prelude::*;
use leptos_nats::{spawn_while_mounted, until_connected};
use nats_ws::kv::{Entry, KvError, Operation, WatchEvent};
use nats_ws::Client;

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
}

/// Watches every key of `bucket` on `client`, started over if the watch ends.
pub fn watch_existing_bucket(client: Client, bucket: &'static str) -> LiveBucket {
    let live = LiveBucket {
        entries: RwSignal::new(BTreeMap::new()),
        loaded: RwSignal::new(false),
        missing: RwSignal::new(false),
        error: RwSignal::new(None),
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
            while let Some(event) = watch.next().await {
                // An error is shown until the watch delivers again.
                if event.is_ok() && live.error.with_untracked(Option::is_some) {
                    live.error.set(None);
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
                        if std::mem::take(&mut fresh) {
                            live.entries.set(BTreeMap::new());
                        }
                        live.loaded.set(true);
                    }
                    // The bucket was recreated: start over with its values.
                    Ok(WatchEvent::Reset) => fresh = true,
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
