//! Whether the tab is visible: pages that must poll (JetStream has no change feed for stream
//! state, `$SRV` none for stats) poll only while it is.

use std::future::Future;
use std::time::Duration;

use leptos::prelude::*;
use leptos_nats::spawn_while_mounted;

/// Whether the document is visible, following `visibilitychange` while the caller lives.
pub fn use_document_visible() -> ReadSignal<bool> {
    let (visible, set_visible) = signal(!document().hidden());
    let handle = window_event_listener_untyped("visibilitychange", move |_| {
        set_visible.set(!document().hidden());
    });
    on_cleanup(move || handle.remove());
    visible
}

/// Runs `refresh`, then again every `every`, only while the document is visible: one loop at a
/// time, from an effect of the caller's, whose cleanup aborts it when the document hides, when
/// the caller unmounts, and when `wake` is notified (a change made on the page: the new loop reads
/// at once). Becoming visible again reads at once too.
pub fn poll_while_visible<F, Fut>(every: Duration, wake: Option<Trigger>, refresh: F)
where
    F: Fn() -> Fut + Copy + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let visible = use_document_visible();
    Effect::new(move |_| {
        if let Some(wake) = wake {
            wake.track();
        }
        if visible.get() {
            spawn_while_mounted(async move {
                loop {
                    refresh().await;
                    gloo_timers::future::sleep(every).await;
                }
            });
        }
    });
}
