//! Whether the tab is visible: pages that must poll (JetStream has no change feed for stream
//! state, `$SRV` none for stats) poll only while it is.

use leptos::prelude::*;

/// Whether the document is visible, following `visibilitychange` while the caller lives.
pub fn use_document_visible() -> ReadSignal<bool> {
    let (visible, set_visible) = signal(!document().hidden());
    let handle = window_event_listener_untyped("visibilitychange", move |_| {
        set_visible.set(!document().hidden());
    });
    on_cleanup(move || handle.remove());
    visible
}
