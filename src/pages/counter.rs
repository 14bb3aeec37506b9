//! `/counter`: one shared number in KV (`via_config` / `counter`). Every change is a
//! compare-and-set, so concurrent clicks in many tabs never lose an update.

use std::collections::VecDeque;

use bytes::Bytes;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_nats::use_kv_key;

use crate::model::{apply_counter_ops, Counter, CounterOp, CONFIG_BUCKET};
use crate::session::now_iso;
use crate::use_identity;

/// Compare-and-set attempts per batch before reporting a failure (each conflict means someone
/// else's write went through, so the loop always makes progress overall).
const MAX_ATTEMPTS: usize = 100;

#[component]
pub fn CounterPage() -> impl IntoView {
    let counter = use_kv_key(CONFIG_BUCKET, "counter");
    let identity = use_identity();
    // Clicks queue up here and are written in batches by one task at a time, in order.
    let queue = StoredValue::new(VecDeque::<CounterOp>::new());
    let pending = RwSignal::new(0usize);
    let writing = StoredValue::new(false);
    let error = RwSignal::new(None::<String>);

    let flush = move || {
        if writing.get_value() {
            return;
        }
        writing.set_value(true);
        spawn_local(async move {
            loop {
                let ops: Vec<CounterOp> = queue.with_value(|q| q.iter().copied().collect());
                if ops.is_empty() {
                    break;
                }
                let Some(store) = counter.store() else {
                    error.set(Some(
                        "not connected yet: your clicks are kept and sent once it is".into(),
                    ));
                    break;
                };
                let by = identity.get_untracked();
                let result = store
                    .update_with("counter", MAX_ATTEMPTS, |current| {
                        let value = current
                            .and_then(|e| Counter::parse(&e.value))
                            .map_or(0, |c| c.value);
                        let next = Counter {
                            value: apply_counter_ops(value, &ops),
                            by: by.clone(),
                            at: now_iso(),
                        };
                        Bytes::from(serde_json::to_vec(&next).unwrap_or_default())
                    })
                    .await;
                match result {
                    Ok(_) => {
                        queue.update_value(|q| drop(q.drain(..ops.len())));
                        pending.set(queue.with_value(VecDeque::len));
                        error.set(None);
                    }
                    Err(e) => {
                        error.set(Some(format!(
                            "{e}; your clicks are kept and retried on the next one"
                        )));
                        break;
                    }
                }
            }
            writing.set_value(false);
        });
    };
    let click = move |op: CounterOp| {
        queue.update_value(|q| q.push_back(op));
        pending.set(queue.with_value(VecDeque::len));
        flush();
    };
    // Retry what is queued once the value is known and whenever the connection comes back.
    let status = leptos_nats::use_nats().status;
    Effect::new(move |_| {
        if counter.loaded.get() && status.get().is_connected() && pending.get_untracked() > 0 {
            flush();
        }
    });

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
                <button data-testid="counter-dec" on:click=move |_| click(CounterOp::Add(-1))>"−1"</button>
                <button data-testid="counter-inc" on:click=move |_| click(CounterOp::Add(1))>"+1"</button>
                <button data-testid="counter-add10" on:click=move |_| click(CounterOp::Add(10))>"+10"</button>
                <button class="secondary" data-testid="counter-reset" on:click=move |_| click(CounterOp::Reset)>
                    "Reset"
                </button>
            </div>
            <p class="muted small">
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
