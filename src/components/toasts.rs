//! Notifications in the corner, gone after a few seconds, and the app's one live region: what a
//! screen reader announces (each notification and each change of the connection's state), once.

use std::time::Duration;

use leptos::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Toast {
    id: u64,
    text: String,
}

/// The notification list, provided once by the app. Copy it into callbacks that run outside the
/// component tree (subscription handlers), where context is not reachable.
#[derive(Clone, Copy)]
pub struct Toasts {
    list: RwSignal<Vec<Toast>>,
    next_id: StoredValue<u64>,
    /// The live region's lines: what was announced last, with whatever joined it in the same task.
    announcement: RwSignal<Vec<String>>,
    /// Whether the task now running announced something: another announcement joins it instead
    /// of replacing it before a screen reader could hear it.
    joining: StoredValue<bool>,
}

const SHOWN_FOR: Duration = Duration::from_secs(6);
/// Toasts shown at once, and lines of one announcement.
const AT_MOST: usize = 5;

pub fn provide_toasts() -> Toasts {
    let toasts = Toasts {
        list: RwSignal::new(Vec::new()),
        next_id: StoredValue::new(0),
        announcement: RwSignal::new(Vec::new()),
        joining: StoredValue::new(false),
    };
    provide_context(toasts);
    toasts
}

impl Toasts {
    /// Shows `text` for a few seconds.
    pub fn push(self, text: String) {
        self.announce(text.clone());
        let id = self.next_id.get_value();
        self.next_id.set_value(id + 1);
        self.list.update(|list| {
            list.push(Toast { id, text });
            let excess = list.len().saturating_sub(AT_MOST);
            list.drain(..excess);
        });
        let list = self.list;
        set_timeout(move || list.update(|l| l.retain(|t| t.id != id)), SHOWN_FOR);
    }

    /// Has a screen reader say `text`, without showing a notification. Several in one task (a
    /// burst of messages) are said together.
    pub fn announce(self, text: String) {
        if self.joining.get_value() {
            // A hidden tab's timers may wait a minute: the last few, not all of them.
            self.announcement.update(|lines| {
                lines.push(text);
                let excess = lines.len().saturating_sub(AT_MOST);
                lines.drain(..excess);
            });
            return;
        }
        self.joining.set_value(true);
        let joining = self.joining;
        set_timeout(move || joining.set_value(false), Duration::ZERO);
        self.announcement.set(vec![text]);
    }
}

#[component]
pub fn ToastHost() -> impl IntoView {
    let toasts = expect_context::<Toasts>();
    view! {
        // The one live region: the toasts themselves are not, so that nothing is said twice.
        <div class="sr-only" role="status" aria-live="polite" aria-atomic="true" data-testid="announcer">
            {move || {
                toasts
                    .announcement
                    .get()
                    .into_iter()
                    .map(|line| view! { <p>{line}</p> })
                    .collect_view()
            }}
        </div>
        <div class="toasts">
            <For each=move || toasts.list.get() key=|t| t.id let:toast>
                <div class="toast" data-testid="toast">
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
