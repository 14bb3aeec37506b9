//! The little the higher layers (JetStream, KV, and crates built on nats-ws that run in both
//! places) need from the runtime: a sleep.

use std::time::Duration;

/// Sleeps on tokio natively and on `setTimeout` in the browser.
pub async fn sleep(duration: Duration) {
    #[cfg(not(target_arch = "wasm32"))]
    tokio::time::sleep(duration).await;
    #[cfg(target_arch = "wasm32")]
    gloo_timers::future::TimeoutFuture::new(duration.as_millis().min(u32::MAX as u128) as u32)
        .await;
}

/// A boxed stream: `Send` natively, where tasks may move between threads; not in the browser,
/// where timers are JS objects.
#[cfg(all(feature = "kv", not(target_arch = "wasm32")))]
pub(crate) type BoxStream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = T> + Send>>;
#[cfg(all(feature = "kv", target_arch = "wasm32"))]
pub(crate) type BoxStream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = T>>>;
