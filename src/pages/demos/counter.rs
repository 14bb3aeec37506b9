//! `/counter`: one shared number in KV (`via_config` / `counter`). Every change is a
//! compare-and-set, so concurrent clicks in many tabs never lose an update.
//!
//! Clicks are numbered and queue up in the page; one task writes them, for as long as the page is
//! mounted. Each write starts from a value of the key: the value says up to which of this page's
//! clicks it already includes (`Counter::applied`), those leave the queue, and the rest are applied
//! in a compare-and-set at that value's revision. The value is the one the page's watch last
//! delivered, so a click costs one round trip; after a lost compare-and-set, an error, or while the
//! watch is not loaded, it is read from the server instead.
//!
//! Only a value settles clicks, never a write's answer alone: after a write, the task waits for
//! the watch to deliver that revision or a later one (or reads, if it does not come within
//! `WATCH_WAIT`). So a write whose answer was lost (a cut, a timeout) is settled by the next value,
//! and so is one that the server acknowledged and then overwrote before that value — a clustered
//! nats-server before 2.9.21 accepts concurrent compare-and-sets at the same revision
//! (nats-server#4320), and the write after ours then lacks our clicks, which the next value shows
//! and the next write adds. (One overwritten after the value that settled it stays lost: only such
//! a server does that.) No click is counted twice: a write applies only the clicks its base value
//! lacks, and succeeds only if that value is still the latest. Failed tries are retried by
//! themselves once connected, without waiting for another click.

use std::collections::VecDeque;
use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt as _, StreamExt};
use leptos::prelude::*;
use leptos_nats::{spawn_while_mounted, until_connected, use_kv_key, use_nats, UseKvKeyReturn};
use nats_ws::kv::{Entry, KvError, Operation};
use nats_ws::Client;

use crate::model::{Counter, CounterOp, CONFIG_BUCKET};
use crate::session::{now_iso, random_hex};
use crate::use_identity;

const KEY: &str = "counter";
/// Pause after a failed try, doubling up to `MAX_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_millis(250);
const MAX_PAUSE: Duration = Duration::from_secs(2);
/// Pause before the second of consecutive lost compare-and-sets, doubling up to
/// `MAX_CONFLICT_PAUSE`: the first retry goes at once (another tab wrote first), but a replica
/// that keeps answering reads from behind (one catching up after a restart) must not make the
/// task read and write as fast as the network allows.
const FIRST_CONFLICT_PAUSE: Duration = Duration::from_millis(10);
const MAX_CONFLICT_PAUSE: Duration = Duration::from_millis(500);
/// How long a written revision may take to come back through the watch before the task reads it
/// from the server instead (the watch may be recreating its consumer after a cut).
const WATCH_WAIT: Duration = Duration::from_millis(300);

/// How a try ended.
enum Tried {
    /// Nothing left to write.
    Done,
    /// Written at this revision: the clicks are settled once a value of at least it is seen.
    Written(u64),
    /// The key had moved on since it was read: read again.
    Conflict,
}

/// The value a try builds its write on.
enum Base {
    /// The one the watch last delivered (`None`: the key has no value).
    Watched(Option<Entry>),
    /// Read from the server.
    Server,
}

/// What the page shares with its write task. All `Copy`; every read in the task is a `try_`
/// read, because the task may wake once more after the page is gone.
#[derive(Clone, Copy)]
struct Writer {
    /// This page's name in `Counter::applied`: new for every mount, since the click numbers
    /// start over.
    id: StoredValue<String>,
    /// Clicks not yet known to be in the stored value, numbered from 1.
    queue: StoredValue<VecDeque<(u64, CounterOp)>>,
    last_click: StoredValue<u64>,
    /// The revision of this page's last write that no value seen since has reached (0: none).
    written: StoredValue<u64>,
    /// The next try reads the key from the server instead of taking the watched value.
    must_read: StoredValue<bool>,
    pending: RwSignal<usize>,
    error: RwSignal<Option<String>>,
    counter: UseKvKeyReturn,
    identity: RwSignal<String>,
    client: Signal<Option<Client>>,
}

impl Writer {
    fn click(&self, op: CounterOp) {
        let n = self.last_click.get_value() + 1;
        self.last_click.set_value(n);
        self.queue.update_value(|q| q.push_back((n, op)));
        self.pending.set(self.queue.with_value(VecDeque::len));
    }

    /// Writes queued clicks until the queue is empty; then waits for the next click. `wake` also
    /// fires on every value the watch delivers. Stops when the page's reactive values are gone
    /// (the task is aborted on cleanup anyway).
    async fn run(self, mut wake: mpsc::UnboundedReceiver<()>) {
        let mut pause = FIRST_PAUSE;
        let mut conflicts = 0u32;
        loop {
            if self.queue.try_with_value(VecDeque::is_empty) == Some(true) {
                if wake.next().await.is_none() {
                    return;
                }
                continue;
            }
            match self.step().await {
                Some(Ok(Tried::Done)) => {
                    pause = FIRST_PAUSE;
                    conflicts = 0;
                }
                Some(Ok(Tried::Written(revision))) => {
                    pause = FIRST_PAUSE;
                    conflicts = 0;
                    // Clicks made meanwhile wait too: they go into the next write.
                    match self.wait_for_watch(revision, &mut wake).await {
                        Some(true) => {}
                        Some(false) => self.must_read.update_value(|v| *v = true),
                        None => return,
                    }
                }
                Some(Ok(Tried::Conflict)) => {
                    self.must_read.update_value(|v| *v = true);
                    conflicts += 1;
                    if conflicts > 1 {
                        let wait = FIRST_CONFLICT_PAUSE * 2u32.pow((conflicts - 2).min(6));
                        gloo_timers::future::sleep(wait.min(MAX_CONFLICT_PAUSE)).await;
                    }
                }
                Some(Err(why)) => {
                    self.must_read.update_value(|v| *v = true);
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

    /// Waits until the watch has delivered `revision` or a later one: `Some(true)`; `Some(false)`
    /// if it has not within `WATCH_WAIT`; `None` when the page is gone.
    async fn wait_for_watch(
        &self,
        revision: u64,
        wake: &mut mpsc::UnboundedReceiver<()>,
    ) -> Option<bool> {
        let timeout = gloo_timers::future::sleep(WATCH_WAIT).fuse();
        futures::pin_mut!(timeout);
        loop {
            if self.watched_revision()? >= revision {
                return Some(true);
            }
            futures::select! {
                woken = wake.next() => { woken?; }
                () = timeout => return Some(false),
            }
        }
    }

    /// The revision of the watched value (0 when the key has none).
    fn watched_revision(&self) -> Option<u64> {
        self.counter
            .entry
            .try_with_untracked(|e| e.as_ref().map_or(0, |e| e.revision))
    }

    /// Where the next write starts from: the watched value if it will do (loaded, not after a
    /// failed try, not older than this page's last write), else the server's.
    fn base(&self) -> Option<Base> {
        if self.must_read.try_get_value()? || !self.counter.loaded.try_get_untracked()? {
            return Some(Base::Server);
        }
        let entry = self.counter.entry.try_get_untracked()?;
        let revision = entry.as_ref().map_or(0, |e| e.revision);
        Some(if revision >= self.written.try_get_value()? {
            Base::Watched(entry)
        } else {
            Base::Server
        })
    }

    /// One try: waits for a connection, takes the key's value (watched, or read), drops the clicks
    /// it includes, writes the others (which a later value then settles). `None` when the page is
    /// gone.
    async fn step(&self) -> Option<Result<Tried, String>> {
        let Some(client) = self.client.try_get_untracked()? else {
            return Some(Err("not connected yet".into()));
        };
        if !until_connected(&client).await {
            // This client was closed: the settings changed and a new one takes over.
            return Some(Ok(Tried::Done));
        }
        let Some(store) = self.counter.try_store()? else {
            return Some(Err("the counter is not loaded yet".into()));
        };
        let current = match self.base()? {
            Base::Watched(entry) => entry,
            Base::Server => match store.entry(KEY).await {
                Ok(current) => {
                    self.must_read.try_update_value(|v| *v = false)?;
                    current
                }
                Err(e) => return Some(Err(e.to_string())),
            },
        };
        // This value is at least as new as the last write: nothing older is outstanding.
        self.written.try_update_value(|v| *v = 0)?;
        let value = current
            .as_ref()
            .filter(|e| e.operation == Operation::Put)
            .and_then(|e| Counter::parse(&e.value))
            .unwrap_or_default();
        let id = self.id.try_get_value()?;
        self.settled(value.applied_upto(&id))?;
        let clicks: Vec<(u64, CounterOp)> =
            self.queue.try_with_value(|q| q.iter().copied().collect())?;
        if clicks.is_empty() {
            return Some(Ok(Tried::Done));
        }
        let next = value.with_clicks(
            &id,
            &self.identity.try_get_untracked()?,
            &now_iso(),
            &clicks,
        );
        let json = serde_json::to_vec(&next).unwrap_or_default();
        let written = match &current {
            Some(e) => store.update(KEY, json, e.revision).await,
            None => store.create(KEY, json).await,
        };
        match written {
            // Settled by a later value, which shows whether the value kept them.
            Ok(revision) => {
                self.error.set(None);
                self.written.try_update_value(|v| *v = revision)?;
                Some(Ok(Tried::Written(revision)))
            }
            // Someone wrote first (or our own answer was lost): a read settles it.
            Err(KvError::WrongLastRevision { .. } | KvError::KeyExists { .. }) => {
                Some(Ok(Tried::Conflict))
            }
            Err(e) => Some(Err(e.to_string())),
        }
    }

    /// Clicks up to number `upto` are in the stored value: they leave the queue.
    fn settled(&self, upto: u64) -> Option<()> {
        self.queue
            .try_update_value(|q| q.retain(|(n, _)| *n > upto))?;
        self.pending.set(self.queue.try_with_value(VecDeque::len)?);
        Some(())
    }
}

#[component]
pub fn CounterPage() -> impl IntoView {
    let counter = use_kv_key(CONFIG_BUCKET, KEY);
    let writer = Writer {
        id: StoredValue::new(random_hex(12)),
        queue: StoredValue::new(VecDeque::new()),
        last_click: StoredValue::new(0),
        written: StoredValue::new(0),
        must_read: StoredValue::new(false),
        pending: RwSignal::new(0),
        error: RwSignal::new(None),
        counter,
        identity: use_identity(),
        client: use_nats().client,
    };
    let (wake, woken) = mpsc::unbounded();
    spawn_while_mounted(writer.run(woken));
    // Every value the watch delivers may settle a write the task waits on.
    Effect::new({
        let wake = wake.clone();
        move |_| {
            counter.entry.track();
            let _ = wake.unbounded_send(());
        }
    });
    let Writer { pending, error, .. } = writer;
    let click = move |op: CounterOp| {
        writer.click(op);
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
