//! `/counter`: one shared number in KV (`via_config` / `counter`). Every change is a
//! compare-and-set, so concurrent clicks in many tabs never lose an update.
//!
//! Clicks queue up in the page and one task writes them, a batch at a time, for as long as the
//! page is mounted. A write whose outcome is unknown (the connection was cut, the reply timed out)
//! is sent again unchanged — same base revision, same value, same `Nats-Msg-Id` — until the stream
//! answers: stored (perhaps as a duplicate of the first try), or "wrong last sequence" (not
//! stored: read again and recompute). So a click is never lost and never counted twice.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use futures::channel::mpsc;
use futures::StreamExt;
use leptos::prelude::*;
use leptos_nats::{spawn_while_mounted, until_connected, use_kv_key, use_nats, UseKvKeyReturn};
use nats_ws::jetstream::{err_codes, JetStreamError, PublishOptions};
use nats_ws::kv::{Operation, Store};
use nats_ws::Client;

use crate::model::{apply_counter_ops, Counter, CounterOp, CONFIG_BUCKET};
use crate::session::{now_iso, random_hex};
use crate::use_identity;

const KEY: &str = "counter";
/// The duplicate window of the app's KV buckets: within it a retry with the same `Nats-Msg-Id`
/// is answered "duplicate" if the first try was stored.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How long one try waits for the stream's answer (retrying while disconnected) before the page
/// says so; the write is then tried again, unchanged.
const TRY_DEADLINE: Duration = Duration::from_secs(10);
/// Pause after a failed try, doubling up to `MAX_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// One compare-and-set of a batch of clicks, kept unchanged until the stream has answered it.
struct Write {
    /// How many queued clicks (from the front) it applies.
    ops: usize,
    /// The revision it was computed from (0: the key had none).
    base: u64,
    value: Bytes,
    msg_id: String,
    /// A try failed without an answer: the write may be stored already.
    uncertain: bool,
    /// When the first try went out (`Date.now()`, ms).
    first_sent: Option<f64>,
}

/// What the page shares with its write task. All `Copy`; every read in the task is a `try_`
/// read, because the task may wake once more after the page is gone.
#[derive(Clone, Copy)]
struct Writer {
    queue: StoredValue<VecDeque<CounterOp>>,
    pending: RwSignal<usize>,
    error: RwSignal<Option<String>>,
    counter: UseKvKeyReturn,
    identity: RwSignal<String>,
    client: Signal<Option<Client>>,
}

impl Writer {
    /// Writes queued clicks until the queue is empty; then waits for the next click. Stops when
    /// the page's reactive values are gone (the task is aborted on cleanup anyway).
    async fn run(self, mut wake: mpsc::UnboundedReceiver<()>) {
        let mut write: Option<Write> = None;
        let mut pause = FIRST_PAUSE;
        loop {
            let Some(queued) = self.queue.try_with_value(VecDeque::len) else {
                return;
            };
            if queued == 0 && write.is_none() {
                if wake.next().await.is_none() {
                    return;
                }
                continue;
            }
            match self.step(&mut write).await {
                Some(Ok(())) => pause = FIRST_PAUSE,
                Some(Err(why)) => {
                    self.error.set(Some(format!(
                        "{why}; your clicks are kept and sent again by themselves"
                    )));
                    gloo_timers::future::sleep(pause).await;
                    pause = (pause * 2).min(MAX_PAUSE);
                }
                None => return,
            }
        }
    }

    /// One try: waits for a connection, makes the write if there is none in flight, sends it.
    /// `None` when the page is gone.
    async fn step(&self, write: &mut Option<Write>) -> Option<Result<(), String>> {
        let Some(client) = self.client.try_get_untracked()? else {
            return Some(Err("not connected yet".into()));
        };
        if !until_connected(&client).await {
            // This client was closed: the settings changed and a new one takes over.
            return Some(Ok(()));
        }
        let Some(store) = self.counter.try_store()? else {
            return Some(Err("the counter is not loaded yet".into()));
        };
        let current = match write.take() {
            Some(w) => w,
            None => match self.prepare(&store).await? {
                Ok(w) => w,
                Err(e) => return Some(Err(e)),
            },
        };
        let w = write.insert(current);
        w.first_sent.get_or_insert_with(js_sys::Date::now);
        let options = PublishOptions::default()
            .msg_id(w.msg_id.clone())
            .expected_last_subject_sequence(w.base)
            .deadline(TRY_DEADLINE);
        let subject = format!("$KV.{}.{KEY}", store.bucket());
        let stored = match client
            .jetstream()
            .publish_with(&subject, None, &w.value, &options)
            .await
        {
            Ok(_) => true,
            Err(e) if e.err_code() == Some(err_codes::WRONG_LAST_SEQUENCE) => {
                // Someone wrote first. Within the duplicate window the stream would have answered
                // "duplicate" had an earlier try been stored; past it, look for our id.
                let past_window = w.first_sent.is_some_and(|t| {
                    js_sys::Date::now() - t >= DUPLICATE_WINDOW.as_millis() as f64
                });
                if w.uncertain && past_window {
                    match landed(&store, &w.msg_id).await {
                        Ok(found) => found,
                        Err(e) => return Some(Err(e)),
                    }
                } else {
                    false
                }
            }
            Err(e) => {
                w.uncertain |= uncertain(&e);
                return Some(Err(e.to_string()));
            }
        };
        let done = write.take().map_or(0, |w| w.ops);
        if stored {
            self.queue
                .try_update_value(|q| drop(q.drain(..done.min(q.len()))))?;
            self.pending.set(self.queue.try_with_value(VecDeque::len)?);
            self.error.set(None);
        }
        Some(Ok(()))
    }

    /// Reads the current value and computes the write of every queued click.
    async fn prepare(&self, store: &Store) -> Option<Result<Write, String>> {
        let current = match store.entry(KEY).await {
            Ok(current) => current,
            Err(e) => return Some(Err(e.to_string())),
        };
        let ops: Vec<CounterOp> = self.queue.try_with_value(|q| q.iter().copied().collect())?;
        let value = current
            .as_ref()
            .filter(|e| e.operation == Operation::Put)
            .and_then(|e| Counter::parse(&e.value))
            .map_or(0, |c| c.value);
        let next = Counter {
            value: apply_counter_ops(value, &ops),
            by: self.identity.try_get_untracked()?,
            at: now_iso(),
        };
        Some(Ok(Write {
            ops: ops.len(),
            base: current.map_or(0, |e| e.revision),
            value: Bytes::from(serde_json::to_vec(&next).unwrap_or_default()),
            msg_id: random_hex(22),
            uncertain: false,
            first_sent: None,
        }))
    }
}

/// Whether a failed try may have been stored anyway (it reached the server, the answer did not
/// come back).
fn uncertain(e: &JetStreamError) -> bool {
    !matches!(
        e,
        JetStreamError::Api { .. } | JetStreamError::NotEnabled { .. }
    )
}

/// Whether the key's history holds the write sent with `msg_id`.
async fn landed(store: &Store, msg_id: &str) -> Result<bool, String> {
    let history = store.history(KEY).await.map_err(|e| e.to_string())?;
    Ok(history.iter().any(|e| {
        e.headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .is_some_and(|id| id == msg_id)
    }))
}

#[component]
pub fn CounterPage() -> impl IntoView {
    let counter = use_kv_key(CONFIG_BUCKET, KEY);
    let writer = Writer {
        queue: StoredValue::new(VecDeque::new()),
        pending: RwSignal::new(0),
        error: RwSignal::new(None),
        counter,
        identity: use_identity(),
        client: use_nats().client,
    };
    let (wake, woken) = mpsc::unbounded();
    spawn_while_mounted(writer.run(woken));
    let Writer { pending, error, .. } = writer;
    let click = move |op: CounterOp| {
        writer.queue.update_value(|q| q.push_back(op));
        pending.set(writer.queue.with_value(VecDeque::len));
        let _ = wake.unbounded_send(());
    };

    let parsed = Memo::new(move |_| counter.entry.get().and_then(|e| Counter::parse(&e.value)));
    let value = move || parsed.get().map_or(0, |c| c.value);
    let last_by = move || match parsed.get() {
        Some(c) if !c.by.is_empty() => c.by,
        Some(_) => "another client".to_owned(),
        None => "nobody yet".to_owned(),
    };
    view! {
        <section class="page-head">
            <h1>"Counter"</h1>
            <p class="lede">
                "One number in KV " <code>"via_config / counter"</code>
                ", changed with compare-and-set: click fast in several tabs, nothing is lost."
            </p>
        </section>
        <section class="card counter">
            <div class="counter-value" data-testid="counter-value" aria-live="polite">
                {move || if counter.loaded.get() { value().to_string() } else { "…".to_owned() }}
            </div>
            <p class="muted">
                "Last updated by " <strong data-testid="counter-last-by">{last_by}</strong>
            </p>
            <div class="counter-buttons">
                <button data-testid="counter-dec" on:click={let click = click.clone(); move |_| click(CounterOp::Add(-1))}>"−1"</button>
                <button data-testid="counter-inc" on:click={let click = click.clone(); move |_| click(CounterOp::Add(1))}>"+1"</button>
                <button data-testid="counter-add10" on:click={let click = click.clone(); move |_| click(CounterOp::Add(10))}>"+10"</button>
                <button class="secondary" data-testid="counter-reset" on:click=move |_| click(CounterOp::Reset)>
                    "Reset"
                </button>
            </div>
            <p class="muted small" data-testid="counter-pending">
                {move || match pending.get() {
                    0 => String::new(),
                    n => format!("{n} change(s) on the way…"),
                }}
            </p>
            <Show when=move || error.get().or(counter.error.get()).is_some()>
                <p class="error">{move || error.get().or(counter.error.get())}</p>
            </Show>
        </section>
    }
}
