//! Notifications in the corner, gone after a few seconds.

use std::time::Duration;

use leptos::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Toast {
    id: u64,
    text: String,
}

#[derive(Clone, Copy)]
struct Toasts {
    list: RwSignal<Vec<Toast>>,
    next_id: StoredValue<u64>,
}

const SHOWN_FOR: Duration = Duration::from_secs(6);
const AT_MOST: usize = 5;

pub fn provide_toasts() {
    provide_context(Toasts {
        list: RwSignal::new(Vec::new()),
        next_id: StoredValue::new(0),
    });
}

/// Shows `text` for a few seconds.
pub fn push_toast(text: String) {
    let Some(toasts) = use_context::<Toasts>() else {
        return;
    };
    let id = toasts.next_id.get_value();
    toasts.next_id.set_value(id + 1);
    toasts.list.update(|list| {
        list.push(Toast { id, text });
        let excess = list.len().saturating_sub(AT_MOST);
        list.drain(..excess);
    });
    set_timeout(
        move || toasts.list.update(|list| list.retain(|t| t.id != id)),
        SHOWN_FOR,
    );
}

#[component]
pub fn ToastHost() -> impl IntoView {
    let toasts = expect_context::<Toasts>();
    view! {
        <div class="toasts" aria-live="polite">
            <For each=move || toasts.list.get() key=|t| t.id let:toast>
                <div class="toast" data-testid="toast" role="status">
                    <span>{toast.text}</span>
                    <button
                        class="toast-close"
                        aria-label="Dismiss"
                        on:click=move |_| toasts.list.update(|l| l.retain(|t| t.id != toast.id))
                    >
                        "×"
                    </button>
                </div>
            </For>
        </div>
    }
}
