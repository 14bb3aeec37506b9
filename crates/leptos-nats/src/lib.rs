//! Leptos bindings for [`nats_ws`]: the connection provided once, subscriptions and KV keys as
//! signals.
//!
//! ```ignore
//! // In the root component:
//! leptos_nats::provide_nats(nats_ws::Options::new("ws://127.0.0.1:8080"));
//! // Anywhere below it:
//! let UseNatsReturn { status, .. } = leptos_nats::use_nats();
//! let latest = leptos_nats::use_subscription("chat.room.general");
//! let counter = leptos_nats::use_kv_key("via_config", "counter");
//! ```
//!
//! Every hook registers an `on_cleanup` that stops what it started: unmounting a component
//! unsubscribes its subscriptions and stops its watchers. Hooks follow the client: when the
//! connection is replaced (new settings), they start over on the new one.
//!
//! This crate knows nothing of pages, and nothing of bytes beyond what `nats_ws` hands it.

mod context;
mod hooks;

pub use context::{
    pause_until_reconnect, provide_nats, spawn_while_mounted, until_connected, use_nats,
    NatsContext, UseNatsReturn,
};
pub use hooks::{
    bucket_gone, use_kv_key, use_kv_watch, use_subscription, use_subscription_list,
    use_subscription_with_options, write_failure, KvChange, UseKvKeyReturn, UseKvWatchReturn,
    UseSubscriptionListReturn, Waiting, WriteFailure,
};
