//! The little the higher layers (JetStream, KV, and crates built on nats-ws that run in both
//! places) need from the runtime: a sleep.

use std::time::Duration;

/// Sleeps on tokio natively and on `setTimeout` in the browser.
pub async fn sleep(duration: Duration) {
    #[cfg(not(target_arch = "wasm32"))]
    tokio::time::sleep(duration).await;
    #[cfg(target_arch = "wasm32")]
    gloo_timers::future::TimeoutFuture::new(timer_ms(duration)).await;
}

/// `duration` for `setTimeout`: whole milliseconds, rounded up (a timer that fires a hair early
/// would only be set again), at most `i32::MAX` (browsers take more as 0: a long sleep would end
/// at once). In `u64`: a `u128` division would bring its routines into the wasm of a client
/// built without the `service` feature.
#[cfg(any(target_arch = "wasm32", test))]
pub(crate) fn timer_ms(duration: Duration) -> u32 {
    let ms = (duration.as_secs().saturating_mul(1000))
        .saturating_add(u64::from(duration.subsec_nanos().div_ceil(1_000_000)));
    ms.min(i32::MAX as u64) as u32
}

/// A boxed stream: `Send` natively, where tasks may move between threads; not in the browser,
/// where timers are JS objects.
#[cfg(all(feature = "kv", not(target_arch = "wasm32")))]
pub(crate) type BoxStream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = T> + Send>>;
#[cfg(all(feature = "kv", target_arch = "wasm32"))]
pub(crate) type BoxStream<T> = std::pin::Pin<Box<dyn futures::Stream<Item = T>>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timer_ms_rounds_up_and_stays_within_what_browsers_take() {
        assert_eq!(timer_ms(Duration::ZERO), 0);
        assert_eq!(timer_ms(Duration::from_nanos(1)), 1);
        assert_eq!(timer_ms(Duration::from_millis(1500)), 1500);
        assert_eq!(timer_ms(Duration::from_micros(1500)), 2);
        assert_eq!(timer_ms(Duration::from_secs(3 * 24 * 3600)), 259_200_000);
        assert_eq!(
            timer_ms(Duration::from_secs(30 * 24 * 3600)),
            i32::MAX as u32
        );
        assert_eq!(timer_ms(Duration::MAX), i32::MAX as u32);
    }
}
