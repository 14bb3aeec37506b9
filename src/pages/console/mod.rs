//! The console: pages that show and steer the server and what runs next to it — the message
//! monitor, JetStream streams, KV buckets, NATS services and their dependency graph, the
//! processes via-agent supervises and the leaf nodes it starts. Everything comes from NATS itself
//! (subscriptions, the JetStream API, `$SRV`, KV watches), so every page works with nothing but the
//! browser and nats-server, and all tabs agree. One page per file.

pub mod bidi;
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
///
/// The item is in the address too (`?<param>=<name>`): a reload opens it again, a link opens it,
/// and Back closes it (or opens the one before).
fn kept_selection(param: &'static str, clear: impl Fn() + 'static) -> RwSignal<Option<String>> {
    use leptos_router::hooks::{use_location, use_navigate, use_query_map};
    use leptos_router::NavigateOptions;
    let query = use_query_map();
    let location = use_location();
    let navigate = use_navigate();
    let in_address = move || query.with(|q| q.get(param)).filter(|name| !name.is_empty());
    let selected = RwSignal::new(
        query
            .with_untracked(|q| q.get(param))
            .filter(|n| !n.is_empty()),
    );
    Effect::new(move |before: Option<Option<String>>| {
        let now = selected.get();
        if before.as_ref().is_some_and(|b| *b != now) {
            clear();
        }
        let shown = query
            .with_untracked(|q| q.get(param))
            .filter(|n| !n.is_empty());
        if shown != now {
            let path = location.pathname.get_untracked();
            let address = match &now {
                Some(name) => format!(
                    "{path}?{param}={}",
                    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
                ),
                None => path,
            };
            navigate(
                &address,
                NavigateOptions {
                    scroll: false,
                    ..Default::default()
                },
            );
        }
        now
    });
    // Back and Forward: the page follows the address.
    Effect::new(move |_| {
        let asked = in_address();
        if selected.get_untracked() != asked {
            selected.set(asked);
        }
    });
    selected
}
