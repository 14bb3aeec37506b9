//! The step list every card draws while it runs: each step as it happens, with its time since the
//! run started, who talked to whom, and whether it went well.

use std::cell::Cell;
use std::future::Future;
use std::rc::Rc;
use std::time::Duration;

use futures::future::{AbortHandle, Abortable};
use futures::FutureExt;

use leptos::prelude::*;

use crate::components::clock::monotonic_ms;
use crate::model::push_bounded;

/// How long a step waits for the server (a connection, a flush, a reply) before it fails.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(5);

/// `fut`, or `None` after [`STEP_TIMEOUT`].
pub async fn within<T>(fut: impl Future<Output = T>) -> Option<T> {
    futures::select! {
        v = fut.fuse() => Some(v),
        _ = gloo_timers::future::sleep(STEP_TIMEOUT).fuse() => None,
    }
}

/// The first refusal by the server of a plain publish to one of `subjects`, in words: a publish
/// has no answer, so its refusal comes among the client's `events` (take them before publishing).
/// Never resolves otherwise.
pub async fn refused_publish(
    mut events: impl futures::Stream<Item = nats_ws::ClientEvent> + Unpin,
    subjects: &[&str],
) -> String {
    use futures::StreamExt as _;
    while let Some(event) = events.next().await {
        if let nats_ws::ClientEvent::ServerError(
            error @ nats_ws::ServerError::PublishDenied { subject },
        ) = &event
        {
            if subjects.contains(&subject.as_str()) {
                return crate::session::explain(error);
            }
        }
    }
    std::future::pending().await
}

/// Starts tasks owned by the card that made it: they stop when the card unmounts, also when
/// started from an event handler (which runs with no reactive owner of its own). `Copy`.
///
/// The card keeps a handle per task still running, not per task ever started (a cleanup per
/// spawn would grow with every click while the page stays open).
#[derive(Clone, Copy)]
pub struct CardTasks(StoredValue<Option<Vec<Task>>, LocalStorage>);

/// A running task's handle, and whether it has ended.
type Task = (AbortHandle, Rc<Cell<bool>>);

impl CardTasks {
    /// Call while the card is being built.
    pub fn new() -> Self {
        let tasks = StoredValue::new_local(Some(Vec::<Task>::new()));
        // An owner's cleanups run before its stored values go.
        on_cleanup(move || {
            // None from here on: a task started later (by a handler still running) is dropped.
            if let Some(Some(list)) = tasks.try_update_value(Option::take) {
                for (handle, _) in list {
                    handle.abort();
                }
            }
        });
        CardTasks(tasks)
    }

    pub fn spawn(self, fut: impl Future<Output = ()> + 'static) {
        let (handle, registration) = AbortHandle::new_pair();
        let ended = Rc::new(Cell::new(false));
        let held = self.0.try_update_value(|tasks| match tasks {
            Some(list) => {
                list.retain(|(_, ended)| !ended.get());
                list.push((handle, ended.clone()));
                true
            }
            None => false,
        });
        if held != Some(true) {
            return; // Gone: the card is no longer there, nothing to run for.
        }
        leptos::task::spawn_local(async move {
            let _ = Abortable::new(fut, registration).await;
            ended.set(true);
        });
    }
}

/// How a step went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    Ok,
    Info,
    Failed,
}

impl StepKind {
    fn class(self) -> &'static str {
        match self {
            StepKind::Ok => "pg-step ok",
            StepKind::Info => "pg-step info",
            StepKind::Failed => "pg-step failed",
        }
    }

    fn mark(self) -> &'static str {
        match self {
            StepKind::Ok => "✓",
            StepKind::Info => "→",
            StepKind::Failed => "✗",
        }
    }
}

/// One step: when (ms since the run started), who to whom (`"tab → server"`), what.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub n: usize,
    pub at_ms: f64,
    pub arrow: String,
    pub text: String,
    pub kind: StepKind,
}

/// A run's steps, as they happen. `Copy`; safe to use after the card is gone (`try_` writes).
#[derive(Clone, Copy)]
pub struct StepLog {
    steps: RwSignal<Vec<Step>>,
    started: StoredValue<f64>,
    /// A failed step is said by the app's one announcer (the list is not a live region).
    toasts: Option<crate::components::toasts::Toasts>,
}

fn next_step() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// At most this many steps are kept per run (a long run keeps its newest).
const MAX_STEPS: usize = 200;

impl StepLog {
    pub fn new() -> Self {
        StepLog {
            steps: RwSignal::new(Vec::new()),
            started: StoredValue::new(monotonic_ms()),
            toasts: use_context(),
        }
    }

    /// Starts a new run: clears the list, and times are counted from now.
    pub fn start(self) {
        self.started.try_set_value(monotonic_ms());
        self.steps.try_set(Vec::new());
    }

    /// Milliseconds since the run started.
    pub fn elapsed(self) -> f64 {
        self.started
            .try_get_value()
            .map(|t| monotonic_ms() - t)
            .unwrap_or(0.0)
    }

    pub fn push(self, kind: StepKind, arrow: &str, text: impl Into<String>) {
        let at_ms = self.elapsed();
        let text = text.into();
        self.steps.try_update(|steps| {
            // Never reused, also across runs: the list is keyed by it, and a run that starts
            // and pushes before the list is drawn again must not look like the old step 1.
            let n = next_step();
            let step = Step {
                n,
                at_ms,
                arrow: arrow.to_owned(),
                text,
                kind,
            };
            push_bounded(steps, [step], MAX_STEPS);
        });
    }

    pub fn ok(self, arrow: &str, text: impl Into<String>) {
        self.push(StepKind::Ok, arrow, text);
    }

    pub fn info(self, arrow: &str, text: impl Into<String>) {
        self.push(StepKind::Info, arrow, text);
    }

    pub fn fail(self, arrow: &str, text: impl Into<String>) {
        let text = text.into();
        if let Some(toasts) = self.toasts {
            toasts.announce(format!("Failed: {text}"));
        }
        self.push(StepKind::Failed, arrow, text);
    }
}

/// `+12.3 ms`, `+1.24 s`.
pub fn format_at(ms: f64) -> String {
    if ms < 1000.0 {
        format!("+{ms:.1} ms")
    } else {
        format!("+{:.2} s", ms / 1000.0)
    }
}

/// The steps as an ordered list; each item carries `data-testid=testid`.
#[component]
pub fn StepList(log: StepLog, testid: &'static str) -> impl IntoView {
    view! {
        // Scrolls past ~12 steps; focusable so that a keyboard can scroll it too.
        <ol class="pg-steps" aria-label="Steps" tabindex="0">
            <For
                each=move || log.steps.get()
                key=|s| s.n
                children=move |s| {
                    view! {
                        <li class=s.kind.class() data-testid=testid>
                            <span class="pg-step-mark" aria-hidden="true">{s.kind.mark()}</span>
                            <span class="pg-step-at">{format_at(s.at_ms)}</span>
                            <span class="pg-step-arrow">{s.arrow}</span>
                            <span class="pg-step-text">{s.text}</span>
                        </li>
                    }
                }
            />
        </ol>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_in_ms_then_seconds() {
        assert_eq!(format_at(12.34), "+12.3 ms");
        assert_eq!(format_at(1240.0), "+1.24 s");
    }
}
