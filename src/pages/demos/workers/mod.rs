//! `/workers`: partitioned workers with KV leases (`via-workers`), in this tab and elsewhere.
//!
//! "Join as worker" runs the library's worker loop in this tab until "Leave", until the page
//! unmounts or the tab is closed or reloaded (`pagehide`): it then leaves cleanly, releasing its
//! leases and removing its presence, so its partitions move at once; only a tab that crashes
//! leaves its leases to expire. New connection settings (a sign-in) join again on the new
//! connection. Around it, what every worker does: the consumers (bucket `workers`, live), the
//! status feed, the stream and its recent messages, each worker's memory over time, the agent's
//! `worker-*` processes (add, kill) and a publish control.
//!
//! The page creates the stream, the consumers and the buckets when they are missing (on arrival,
//! on join, on publish), so an outside publisher can start as soon as one tab is here. Everything
//! another program sent is shown as text; a failure is a message, never a broken page.

mod logic;
mod panels;
mod processes;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use futures::channel::oneshot;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_nats::{spawn_while_mounted, until_connected, use_nats};
use nats_ws::jetstream::JetStream;
use nats_ws::Client;
use via_workers::publisher::{self, Plan};
use via_workers::worker::{self, Observer};
use via_workers::{
    setup, Identity, MemoryStats, Settings, StatusEvent, StatusKind, WorkerError, WorkerKind,
};
use wasm_bindgen::JsCast;

use crate::components::toasts::Toasts;
use logic::{browser_summary, parse_publish, partitions_text};

/// How often this tab's processed count reaches the page while it works: a count per message
/// would redraw per message.
const PROCESSED_EVERY: Duration = Duration::from_millis(250);
/// How long the page waits before setting up again after a failure it can outlast.
const SETUP_AGAIN: Duration = Duration::from_secs(3);

#[component]
pub fn WorkersPage() -> impl IntoView {
    let nats = use_nats();
    // This tab's worker, working when the client is swapped (a sign-in): the worker goes with the
    // old connection, and the page joins again with the new one.
    let rejoin = StoredValue::new(false);
    view! {
        <section class="page-head">
            <h1>"Workers"</h1>
            <p class="lede">
                "Events go to " <code>"poc.events.p.<n>"</code> " in the stream " <code>"EVENTS"</code>
                "; each of the 8 partitions is consumed by exactly one worker at a time, the one holding its lease in the KV bucket "
                <code>"leases"</code> ". Join with this tab, add native workers, kill one: its partitions move and nothing is lost."
            </p>
        </section>
        {move || match nats.client.get() {
            Some(client) => view! { <Workers client rejoin/> }.into_any(),
            None => view! { <p class="muted">"Not connected."</p> }.into_any(),
        }}
    }
}

/// What the page's parts share. `Copy`.
#[derive(Clone, Copy)]
pub(crate) struct Ctx {
    pub settings: StoredValue<Settings>,
    pub js: StoredValue<JetStream, LocalStorage>,
    /// Why the stream, consumers or buckets could not be set up, while that lasts.
    pub setup_error: RwSignal<Option<String>>,
    /// Per partition, its durable's pending and unacknowledged messages, as last read.
    pub lag: RwSignal<BTreeMap<u32, Lag>>,
}

/// A partition's backlog: messages not yet delivered, and delivered but not yet acknowledged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Lag {
    pub pending: u64,
    pub ack_pending: u64,
}

impl Ctx {
    pub fn settings(self) -> Settings {
        self.settings.get_value()
    }
}

#[component]
fn Workers(client: Client, rejoin: StoredValue<bool>) -> impl IntoView {
    let ctx = Ctx {
        settings: StoredValue::new(Settings::default()),
        js: StoredValue::new_local(client.jetstream()),
        setup_error: RwSignal::new(None),
        lag: RwSignal::new(BTreeMap::new()),
    };

    // On arrival: whoever comes first creates what the workers need.
    {
        let client = client.clone();
        spawn_while_mounted(async move {
            loop {
                if !until_connected(&client).await {
                    return;
                }
                match setup::ensure_all(&ctx.js.get_value(), &ctx.settings()).await {
                    Ok(_) => {
                        ctx.setup_error.set(None);
                        return;
                    }
                    Err(e) => {
                        ctx.setup_error.set(Some(setup_failure(&e)));
                        if !setup::is_transient(&e) {
                            return;
                        }
                    }
                }
                gloo_timers::future::sleep(SETUP_AGAIN).await;
            }
        });
    }

    view! {
        <Show when=move || ctx.setup_error.get().is_some()>
            <p class="error" role="alert" data-testid="workers-setup-error">{move || ctx.setup_error.get()}</p>
        </Show>
        <div class="workers-top">
            <ThisTab client=client.clone() ctx rejoin/>
            <PublishControl ctx/>
        </div>
        <panels::Consumers client=client.clone() ctx/>
        <div class="workers-grid">
            <panels::StatusFeed client=client.clone() ctx/>
            <panels::StreamPanel ctx/>
        </div>
        <panels::MemoryPanel client=client.clone() ctx/>
        <processes::WorkerProcesses client/>
    }
}

/// A setup failure in words that say what to do.
fn setup_failure(e: &WorkerError) -> String {
    if setup::is_transient(e) {
        format!("could not set up the stream and buckets yet (trying again): {e}")
    } else {
        format!("could not set up the stream and buckets: {e}")
    }
}

/// Where this tab's worker is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Idle,
    Working,
    Leaving,
}

/// This tab's worker, as the page shows it. `Copy`.
#[derive(Clone, Copy)]
struct Own {
    phase: RwSignal<Phase>,
    id: RwSignal<Option<String>>,
    partitions: RwSignal<Vec<u32>>,
    processed: RwSignal<u64>,
    /// The last failure the loop reported (it retries by itself).
    trouble: RwSignal<Option<String>>,
    /// What the last run ended with.
    outcome: RwSignal<Option<Result<String, String>>>,
    /// Dropping it (Leave, unmount) stops the loop.
    stop: StoredValue<Option<oneshot::Sender<()>>>,
}

impl Own {
    /// Stops the worker's loop, if one runs (it then leaves); safe once the page is gone.
    fn end(self) {
        let _ = self.stop.try_update_value(|s| drop(s.take()));
    }
}

/// The observer of this tab's worker: it touches signals that may be gone (the page unmounted
/// while the worker leaves), hence `try_`; the processed count only goes to a cell.
struct TabObserver {
    own: Own,
    processed: Rc<Cell<u64>>,
}

impl Observer for TabObserver {
    fn processed(&mut self, _: u32, _: u64, _: Option<&via_workers::Event>, _: bool, _: u64) {
        self.processed.set(self.processed.get() + 1);
    }

    fn status(&mut self, event: &StatusEvent) {
        let Some(p) = event.partition else { return };
        self.own.partitions.try_update(|list| match event.kind {
            StatusKind::Acquired => {
                if let Err(at) = list.binary_search(&p) {
                    list.insert(at, p);
                }
            }
            StatusKind::Released | StatusKind::Lost | StatusKind::Expired => {
                list.retain(|x| *x != p)
            }
            StatusKind::Joined | StatusKind::Left => {}
        });
    }

    fn memory(&mut self) -> MemoryStats {
        tab_memory()
    }

    fn trouble(&mut self, what: &str, error: &WorkerError) {
        // Said for as long as it lasts, not retried: the settings of another worker.
        let retrying = match error {
            WorkerError::Mismatch(_) => "",
            _ => " (retrying)",
        };
        self.own
            .trouble
            .try_set(Some(crate::session::explain(format!(
                "{what}: {error}{retrying}"
            ))));
    }

    fn untroubled(&mut self) {
        if self.own.trouble.try_with_untracked(Option::is_some) == Some(true) {
            self.own.trouble.try_set(None);
        }
    }
}

/// The heap's counters (the app's global allocator counts them), the wasm linear memory's size,
/// and the JS heap where the browser reports it (`performance.memory` is Chromium's,
/// non-standard: read through `Reflect`).
fn tab_memory() -> MemoryStats {
    let wasm = wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .ok()
        .and_then(|m| m.buffer().dyn_into::<js_sys::ArrayBuffer>().ok())
        .map(|b| u64::from(b.byte_length()));
    let heap = js_sys::Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|p| js_sys::Reflect::get(&p, &"memory".into()).ok())
        .filter(|m| m.is_object())
        .and_then(|m| js_sys::Reflect::get(&m, &"usedJSHeapSize".into()).ok())
        .and_then(|v| v.as_f64())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(|v| v as u64);
    MemoryStats {
        wasm_memory_bytes: wasm,
        js_heap_bytes: heap,
        ..via_workers::alloc::stats()
    }
}

/// How this tab calls itself in the workers table: the app's identity and the browser.
fn tab_host() -> String {
    let browser = window()
        .navigator()
        .user_agent()
        .map(|ua| browser_summary(&ua))
        .unwrap_or_else(|_| "browser".into());
    let name = crate::use_identity().get_untracked();
    format!("{name} · {browser}")
}

#[component]
fn ThisTab(client: Client, ctx: Ctx, rejoin: StoredValue<bool>) -> impl IntoView {
    let toasts = expect_context::<Toasts>();
    let own = Own {
        phase: RwSignal::new(Phase::Idle),
        id: RwSignal::new(None),
        partitions: RwSignal::new(Vec::new()),
        processed: RwSignal::new(0),
        trouble: RwSignal::new(None),
        outcome: RwSignal::new(None),
        stop: StoredValue::new(None),
    };
    let host = tab_host();

    let join = move || {
        if own.phase.get_untracked() != Phase::Idle {
            return;
        }
        let me = Identity::new(WorkerKind::Tab, host.clone(), None);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        own.stop.set_value(Some(stop_tx));
        own.id.set(Some(me.id.clone()));
        own.partitions.set(Vec::new());
        own.processed.set(0);
        own.trouble.set(None);
        own.outcome.set(None);
        own.phase.set(Phase::Working);

        let counter = Rc::new(Cell::new(0u64));
        let copy = {
            let counter = counter.clone();
            move || {
                let n = counter.get();
                if own
                    .processed
                    .try_get_untracked()
                    .is_some_and(|shown| shown != n)
                {
                    own.processed.try_set(n);
                }
            }
        };
        let copy = Rc::new(copy);
        let interval = {
            let copy = copy.clone();
            set_interval_with_handle(move || copy(), PROCESSED_EVERY).ok()
        };
        let interval = Rc::new(RefCell::new(interval));
        let client = client.clone();
        let settings = ctx.settings();
        spawn_local(async move {
            let mut observer = TabObserver {
                own,
                processed: counter,
            };
            let stop = async move {
                // A send or the sender dropped: either means stop.
                let _ = stop_rx.await;
            };
            let result = worker::run(&client, &settings, &me, &mut observer, stop).await;
            if let Some(handle) = interval.borrow_mut().take() {
                handle.clear();
            }
            copy();
            own.phase.try_set(Phase::Idle);
            own.partitions.try_set(Vec::new());
            match result {
                Ok(summary) => {
                    own.outcome.try_set(Some(Ok(format!(
                        "{} left after processing {} events ({} leases acquired, {} released, {} lost, {} expired).",
                        me.id, summary.processed, summary.acquired, summary.released, summary.lost, summary.expired
                    ))));
                }
                Err(e) => {
                    let text = format!("the worker {} stopped: {e}", me.id);
                    own.outcome.try_set(Some(Err(text.clone())));
                    toasts.push(text);
                }
            }
        });
    };
    let leave = move |_| {
        if own.phase.get_untracked() == Phase::Working {
            own.phase.set(Phase::Leaving);
            own.end();
        }
    };
    // Leaving the page leaves cleanly: the loop releases its leases after this component is gone
    // (and if the stored sender is disposed first, dropping it stops the loop all the same).
    on_cleanup(move || {
        if own.phase.try_get_untracked() == Some(Phase::Working) {
            rejoin.try_set_value(true);
        }
        own.end();
    });
    // So does closing or reloading the tab, as far as the browser lets it run (the loop's first
    // wait for an answer): the leases held are deleted and the worker is gone from the bucket at
    // once, rather than its partitions waiting out their leases with nobody working on them.
    let hide = window_event_listener_untyped("pagehide", move |_| own.end());
    on_cleanup(move || hide.remove());
    // Signed in as another user while working: the worker left with the old connection (its
    // leases released), and this one joins with the new.
    if rejoin.get_value() {
        rejoin.set_value(false);
        join();
        own.outcome.set(Some(Ok(
            "Joined again on the new connection: the worker before left with the old one.".into(),
        )));
    }

    let phase_text = move || match own.phase.get() {
        Phase::Idle => "not a worker",
        Phase::Working => "working",
        Phase::Leaving => "leaving…",
    };

    view! {
        <section class="card this-tab" aria-labelledby="this-tab-title">
            <div class="card-head">
                <h2 id="this-tab-title">"This tab"</h2>
                <span class="muted" data-testid="worker-self-phase">{phase_text}</span>
            </div>
            <p class="hint">
                "A worker in this tab holds leases like any other; closing or reloading the tab releases them and they move at once (a tab that crashes leaves them to expire: 10 s)."
            </p>
            <dl class="self-stats">
                <div>
                    <dt>"Worker id"</dt>
                    <dd data-testid="worker-self-id">{move || own.id.get().unwrap_or_else(|| "—".into())}</dd>
                </div>
                <div>
                    <dt>"Partitions held"</dt>
                    <dd data-testid="worker-self-partitions">
                        {move || {
                            if own.phase.get() == Phase::Idle {
                                "—".to_owned()
                            } else {
                                own.partitions.with(|p| partitions_text(p))
                            }
                        }}
                    </dd>
                </div>
                <div>
                    <dt>"Processed"</dt>
                    <dd data-testid="worker-self-processed">{move || own.processed.get().to_string()}</dd>
                </div>
            </dl>
            <Show when=move || own.trouble.get().is_some() && own.phase.get() != Phase::Idle>
                <p class="hint" data-testid="worker-trouble">{move || own.trouble.get()}</p>
            </Show>
            {move || {
                own.outcome
                    .get()
                    .map(|o| match o {
                        Ok(text) => view! { <p class="hint" data-testid="worker-outcome">{text}</p> }.into_any(),
                        Err(text) => {
                            view! { <p class="error" role="alert" data-testid="worker-outcome">{text}</p> }
                                .into_any()
                        }
                    })
            }}
            <div class="actions">
                <button
                    data-testid="worker-join"
                    disabled=move || own.phase.get() != Phase::Idle
                    on:click={
                        let join = join.clone();
                        move |_| join()
                    }
                >
                    "Join as worker"
                </button>
                <button
                    class="secondary"
                    data-testid="worker-leave"
                    disabled=move || own.phase.get() != Phase::Working
                    on:click=leave
                >
                    {move || if own.phase.get() == Phase::Leaving { "Leaving…" } else { "Leave" }}
                </button>
            </div>
        </section>
    }
}

#[component]
fn PublishControl(ctx: Ctx) -> impl IntoView {
    let toasts = expect_context::<Toasts>();
    let status = use_nats().status;
    let count = RwSignal::new("1000".to_owned());
    let rate = RwSignal::new("0".to_owned());
    let busy = RwSignal::new(false);
    let progress = RwSignal::new(None::<(u64, u64)>);
    let error = RwSignal::new(None::<String>);
    let done = RwSignal::new(None::<String>);
    // The run under way: stopped by Stop, and when the page goes (a run of a million events at
    // one a second went on for days, unseen, and a second one could start beside it).
    let running = StoredValue::new_local(None::<futures::future::AbortHandle>);
    let stop = move || {
        if let Some(Some(handle)) = running.try_update_value(Option::take) {
            handle.abort();
        }
    };
    on_cleanup(stop);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let (n, per_second) = match parse_publish(&count.get_untracked(), &rate.get_untracked()) {
            Ok(plan) => plan,
            Err(e) => {
                error.set(Some(e));
                return;
            }
        };
        error.set(None);
        done.set(None);
        busy.set(true);
        progress.set(Some((0, n)));
        let run = format!("web-{:08x}", getrandom::u32().unwrap_or_default());
        let plan = Plan {
            rate: per_second,
            ..Plan::new(n, run)
        };
        let (js, settings) = (ctx.js.get_value(), ctx.settings());
        let (handle, registration) = futures::future::AbortHandle::new_pair();
        running.set_value(Some(handle));
        spawn_local(async move {
            let publishing = publisher::publish(&js, &settings, &plan, |acked| {
                progress.try_set(Some((acked, n)));
            });
            let result = futures::future::Abortable::new(publishing, registration).await;
            busy.try_set(false);
            running.try_set_value(None);
            let Ok(result) = result else {
                let acked = progress.try_get_untracked().flatten().map_or(0, |(a, _)| a);
                done.try_set(Some(format!(
                    "stopped: at least {acked} of {n} events were published"
                )));
                return;
            };
            match result {
                Ok(report) => {
                    let dup = match report.duplicates {
                        0 => String::new(),
                        d => format!(", {d} duplicates"),
                    };
                    done.try_set(Some(format!(
                        "published {} events in {:.1} s (seq {}–{}{dup})",
                        report.published,
                        report.elapsed.as_secs_f64(),
                        report.first_seq,
                        report.last_seq
                    )));
                }
                Err(e) => {
                    let text = format!("publishing failed: {e}");
                    error.try_set(Some(text.clone()));
                    toasts.push(text);
                }
            }
        });
    };

    view! {
        <section class="card publish-card" aria-labelledby="publish-title">
            <h2 id="publish-title">"Publish events"</h2>
            <form class="publish-form" on:submit=submit aria-label="Publish events">
                <div class="row">
                    <label>
                        "Events"
                        <input
                            type="number"
                            min="1"
                            max=logic::MAX_PUBLISH.to_string()
                            inputmode="numeric"
                            data-testid="publish-count"
                            prop:value=move || count.get()
                            on:input=move |ev| count.set(event_target_value(&ev))
                        />
                    </label>
                    <label>
                        "Rate (events/s, 0 = as fast as acked)"
                        <input
                            type="number"
                            min="0"
                            inputmode="numeric"
                            data-testid="publish-rate"
                            prop:value=move || rate.get()
                            on:input=move |ev| rate.set(event_target_value(&ev))
                        />
                    </label>
                </div>
                <div class="actions">
                    <span class="muted small" data-testid="publish-progress">
                        {move || {
                            let (a, n) = progress.get()?;
                            // A run waits for the server (before it starts, and in an outage).
                            Some(match busy.get() && !status.with(|s| s.is_connected()) {
                                true => format!("{a} / {n} acknowledged · waiting for the connection…"),
                                false => format!("{a} / {n} acknowledged"),
                            })
                        }}
                    </span>
                    <Show when=move || busy.get()>
                        <button type="button" class="secondary" data-testid="publish-stop" on:click=move |_| stop()>
                            "Stop"
                        </button>
                    </Show>
                    <button type="submit" data-testid="publish-events" disabled=move || busy.get()>
                        {move || if busy.get() { "Publishing…" } else { "Publish" }}
                    </button>
                </div>
            </form>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert" data-testid="publish-error">{move || error.get()}</p>
            </Show>
            <Show when=move || done.get().is_some()>
                <p class="hint" data-testid="publish-done">{move || done.get()}</p>
            </Show>
        </section>
    }
}
