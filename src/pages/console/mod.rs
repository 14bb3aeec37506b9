//! The console: pages that show and steer the server and what runs next to it — the message
//! monitor, JetStream streams, KV buckets, NATS services and their dependency graph, the
//! processes via-agent supervises and the leaf nodes it starts. Everything comes from NATS itself
//! (subscriptions, the JetStream API, `$SRV`, KV watches), so every page works with nothing but the
//! browser and nats-server, and all tabs agree. One page per file.

pub mod graph;
pub mod kv;
pub mod monitor;
pub mod processes;
pub mod scale;
pub mod server;
pub mod services;
pub mod streams;

use leptos::prelude::*;

/// The open item of a page (a bucket, a stream), for the page to keep across a change of
/// connection: signing in as admin after a refusal rebuilds what hangs on the client, not this.
/// `clear` empties what was typed for the item whenever another one is opened.
fn kept_selection(clear: impl Fn() + 'static) -> RwSignal<Option<String>> {
    let selected = RwSignal::new(None::<String>);
    Effect::new(move |before: Option<Option<String>>| {
        let now = selected.get();
        if before.is_some_and(|b| b != now) {
            clear();
        }
        now
    });
    selected
}
