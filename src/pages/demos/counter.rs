//! `/counter`: one shared number in KV (`via_config` / `counter`). Every change is a
//! compare-and-set, so concurrent clicks in many tabs never lose an update.
//!
//! Clicks are numbered and queue up in the app, not the page: leaving `/counter` with clicks on
//! the way (the server down, say) does not drop them, and a reload of the tab keeps them in its
//! storage for the next load, which writes them under the writer id that numbered them (each
//! load is a writer of its own: two loads, or a duplicated tab, never number clicks alike). One
//! task, started with the app ([`provide_counter_clicks`]), writes them. Each write starts by
//! reading the key: the value says up to which of this tab's clicks it already includes
//! (`Counter::applied`), those settle, and the rest are applied in a compare-and-set. Only a
//! value seen settles clicks (a read, or one the page's watch delivers), never a write's answer
//! alone: so a write whose answer was lost (a cut, a timeout) is settled by the next read, and so
//! is one that the server acknowledged and then overwrote before that read — a clustered
//! nats-server before 2.9.21 accepts concurrent compare-and-sets at the same revision
//! (nats-server#4320), and the write after ours then lacks our clicks, which the next read shows
//! and the next write adds. Such a server also accepts a write built on an older value after our
//! clicks settled (often right after a leader election): settled clicks are kept, and a later
//! value that holds fewer of them puts them back in the queue ([`Clicks::observe`], for every
//! value read or watched; one written over while no page watches is mended at the next click's
//! read; a new connection or a bucket made again starts the record over). No click is counted
//! twice. (Clicks sent again land after others' newer ones: a Reset among them then also zeroes
//! those.) Failed tries are retried by themselves once connected, without waiting for another
//! click.

use std::time::Duration;

use futures::channel::mpsc;
use futures::StreamExt;
use leptos::prelude::*;
use leptos_nats::{
    bucket_gone, spawn_while_mounted, until_connected, use_kv_key, use_nats, UseNatsReturn,
};
use nats_ws::kv::{Entry, KvError, Operation};

use crate::model::{Clicks, Counter, CounterOp, CONFIG_BUCKET};
use crate::session::{counter_clicks, now_iso, random_hex};
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

/// How a try ended.
enum Tried {
    /// Written, or nothing left to write.
    Done,
    /// The key had moved on since it was read: read again.
    Conflict,
}

/// What the page shares with the write task. All `Copy`; every read in the task is a `try_`
/// read, because the task may wake once more after the app is gone.
#[derive(Clone, Copy)]
struct Writer {
    /// This tab's name in `Counter::applied`: new for every load of the app, since the click
    /// numbers start over.
    id: StoredValue<String>,
    /// Clicks numbered from 1: those not yet known to be in the stored value, and those seen in it.
    clicks: StoredValue<Clicks>,
    /// Clicks earlier loads of this tab left unsettled (reloaded while the server was down, say),
    /// each under the writer that numbered them (`session::counter_clicks`): written before this
    /// load's, and settled the same way, so that one already in is not counted again.
    inherited: StoredValue<Vec<(String, Clicks)>>,
    /// What the tab's storage holds: written again only when it changes (every value the watch
    /// delivers is observed).
    saved: StoredValue<counter_clicks::Unsettled>,
    /// Every click not yet known to be in, this load's and inherited ones.
    pending: RwSignal<usize>,
    error: RwSignal<Option<String>>,
    identity: RwSignal<String>,
    nats: UseNatsReturn,
}

impl Writer {
    fn click(&self, op: CounterOp) {
        self.clicks.update_value(|c| c.push(op));
        self.changed();
    }

    /// Every click not yet known to be in (`None` when the app is gone).
    fn pending_all(&self) -> Option<usize> {
        let inherited = self
            .inherited
            .try_with_value(|i| i.iter().map(|(_, c)| c.pending()).sum::<usize>())?;
        Some(self.clicks.try_with_value(Clicks::pending)? + inherited)
    }

    /// The writers with clicks queued and those clicks: the inherited ones, oldest first, then
    /// this load's.
    fn queues(&self) -> Option<counter_clicks::Unsettled> {
        let mut queues: counter_clicks::Unsettled = self.inherited.try_with_value(|i| {
            i.iter()
                .filter(|(_, c)| c.pending() > 0)
                .map(|(w, c)| (w.clone(), c.queued()))
                .collect()
        })?;
        let own = self.clicks.try_with_value(Clicks::queued)?;
        if !own.is_empty() {
            queues.push((self.id.try_get_value()?, own));
        }
        Some(queues)
    }

    /// After the queues changed: the count shown, and what the tab keeps for its next load (the
    /// writers with clicks still queued). Inherited writers whose clicks are all in stay known
    /// here, so that a value written over them puts them back ([`Clicks::observe`]).
    fn changed(&self) -> Option<()> {
        let unsettled = self.queues()?;
        if self.saved.try_with_value(|saved| *saved != unsettled)? {
            counter_clicks::save(&unsettled);
            self.saved.try_set_value(unsettled);
        }
        self.pending.set(self.pending_all()?);
        Some(())
    }

    /// Writes queued clicks until the queue is empty; then waits for the next click. Stops when
    /// the app's reactive values are gone (the task is aborted on cleanup anyway).
    async fn run(self, mut wake: mpsc::UnboundedReceiver<()>) {
        let mut pause = FIRST_PAUSE;
        let mut conflicts = 0u32;
        loop {
            if self.pending_all() == Some(0) {
                // Every click is in (a read or the watch settled the last ones, whatever the
                // last try said): nothing is waiting to be sent again.
                if self.error.try_with_untracked(Option::is_some) == Some(true) {
                    self.error.set(None);
                }
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
                Some(Ok(Tried::Conflict)) => {
                    conflicts += 1;
                    if conflicts > 1 {
                        let wait = FIRST_CONFLICT_PAUSE * 2u32.pow((conflicts - 2).min(6));
                        gloo_timers::future::sleep(wait.min(MAX_CONFLICT_PAUSE)).await;
                    }
                }
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

    /// One try: waits for a connection, reads the key, drops the clicks it includes, writes the
    /// others (which the next try's read then settles). `None` when the app is gone.
    async fn step(&self) -> Option<Result<Tried, String>> {
        let Some(client) = self.nats.client.try_get_untracked()? else {
            return Some(Err("not connected yet".into()));
        };
        if !until_connected(&client).await {
            // This client was closed: the settings changed and a new one takes over.
            return Some(Ok(Tried::Done));
        }
        let store = match self.nats.kv_bucket(&client, CONFIG_BUCKET).await {
            Ok(store) => store,
            Err(e) => return Some(Err(e.to_string())),
        };
        let current = match store.entry(KEY).await {
            Ok(current) => current,
            Err(e) => return Some(Err(self.failed(e))),
        };
        let stored = current.as_ref().filter(|e| e.operation == Operation::Put);
        // Written by another client as something else than a counter: not counted on.
        let unreadable = stored.filter(|e| Counter::parse(&e.value).is_none());
        let value = stored
            .and_then(|e| Counter::parse(&e.value))
            .unwrap_or_default();
        if let (Some(e), None) = (&current, unreadable) {
            self.observe(&value, e.revision)?;
        }
        // The oldest inherited writer's clicks first, then this load's: one writer's per write.
        let queues = self.queues()?;
        let Some((id, clicks)) = queues.first() else {
            return Some(Ok(Tried::Done));
        };
        let (by, at) = (self.identity.try_get_untracked()?, now_iso());
        let has_reset =
            |clicks: &[(u64, CounterOp)]| clicks.iter().any(|(_, op)| *op == CounterOp::Reset);
        // A value that is not a number has nothing to add to: written over only when a Reset
        // asks for it.
        let alone = match unreadable {
            Some(_) if !has_reset(clicks) => None,
            _ => value.with_clicks(id, &by, &at, clicks),
        };
        let next = match alone {
            Some(next) => next,
            // These clicks cannot be written (the value is not a counter, or they go past its
            // limits), but a Reset after them can: every queue at once, what came before that
            // Reset counting for nothing. (Else the Reset would wait behind them for good.)
            None if queues.iter().any(|(_, c)| has_reset(c)) => {
                match value.with_queues(&queues, &by, &at) {
                    Some(next) => next,
                    None => return Some(Err(past_the_limits())),
                }
            }
            None => {
                return Some(Err(match unreadable {
                    Some(e) => not_a_counter(&e.value),
                    None => past_the_limits(),
                }))
            }
        };
        let json = serde_json::to_vec(&next).unwrap_or_default();
        let written = match &current {
            Some(e) => store.update(KEY, json, e.revision).await,
            None => store.create(KEY, json).await,
        };
        match written {
            // Settled by the next read, which shows whether the value kept them.
            Ok(_) => {
                self.error.set(None);
                Some(Ok(Tried::Done))
            }
            // Someone wrote first (or our own answer was lost): the next read settles it.
            Err(KvError::WrongLastRevision { .. } | KvError::KeyExists { .. }) => {
                Some(Ok(Tried::Conflict))
            }
            Err(e) => Some(Err(self.failed(e))),
        }
    }

    /// A failed read or write's text; a bucket that is gone (deleted on /kv, say) is bound again,
    /// and so created again, at the next try.
    fn failed(&self, e: KvError) -> String {
        if bucket_gone(&e) {
            self.nats.forget_kv_bucket(CONFIG_BUCKET);
            self.forget_settled();
        }
        e.to_string()
    }

    /// The key's value at `revision`, read or watched: the clicks it holds are settled, and
    /// settled ones it was written over go back in the queue ([`Clicks::observe`]). `Some(true)`
    /// when clicks went back.
    fn observe(&self, value: &Counter, revision: u64) -> Option<bool> {
        let id = self.id.try_get_value()?;
        let mut back = self
            .clicks
            .try_update_value(|c| c.observe(&id, value, revision))?;
        back |= self.inherited.try_update_value(|i| {
            i.iter_mut()
                .fold(false, |back, (w, c)| c.observe(w, value, revision) | back)
        })?;
        self.changed()?;
        Some(back)
    }

    /// The values to come are another bucket's: see [`Clicks::forget_settled`].
    fn forget_settled(&self) {
        self.clicks.try_update_value(Clicks::forget_settled);
        self.inherited
            .try_update_value(|i| i.iter_mut().for_each(|(_, c)| c.forget_settled()));
    }
}

/// What is said of clicks that would take the counter past an `i64`.
fn past_the_limits() -> String {
    format!(
        "the counter cannot go past {} or below {}: Reset starts it again from 0",
        i64::MAX,
        i64::MIN
    )
}

/// What is said of a stored value that is not a counter (its start, as text).
fn not_a_counter(value: &[u8]) -> String {
    let start = crate::model::clip_payload(value, 40);
    format!("the stored value is not a counter (\u{201c}{start}\u{201d}): Reset writes 0 over it")
}

/// The counter's clicks and the task that writes them, for the whole app: provided once, in the
/// root, so that clicks outlive the page they were made on.
#[derive(Clone)]
pub struct CounterClicks {
    writer: Writer,
    wake: mpsc::UnboundedSender<()>,
}

impl CounterClicks {
    fn click(&self, op: CounterOp) {
        self.writer.click(op);
        let _ = self.wake.unbounded_send(());
    }

    /// A value of the key that the page's watch delivered: settles the clicks it holds, and has
    /// the writer send again settled ones that it was written over.
    fn observe(&self, entry: &Entry) {
        if entry.operation != Operation::Put {
            return;
        }
        let Some(value) = Counter::parse(&entry.value) else {
            return;
        };
        if self.writer.observe(&value, entry.revision) == Some(true) {
            let _ = self.wake.unbounded_send(());
        }
    }
}

/// Starts the counter's write task and provides [`CounterClicks`] to every page. Call in the
/// root, below `provide_nats` and the identity.
pub fn provide_counter_clicks() {
    let stored = counter_clicks::load();
    let inherited: Vec<(String, Clicks)> = stored
        .iter()
        .cloned()
        .map(|(writer, queue)| (writer, Clicks::inherited(queue)))
        .filter(|(_, c)| c.pending() > 0)
        .collect();
    let writer = Writer {
        id: StoredValue::new(random_hex(12)),
        clicks: StoredValue::new(Clicks::default()),
        pending: RwSignal::new(inherited.iter().map(|(_, c)| c.pending()).sum()),
        inherited: StoredValue::new(inherited),
        saved: StoredValue::new(stored),
        error: RwSignal::new(None),
        identity: use_identity(),
        nats: use_nats(),
    };
    // Another connection (servers or credentials changed in ⚙) reads another bucket.
    let client = writer.nats.client;
    Effect::new(move |seen: Option<()>| {
        client.track();
        if seen.is_some() {
            writer.forget_settled();
        }
    });
    let (wake, woken) = mpsc::unbounded();
    spawn_while_mounted(writer.run(woken));
    provide_context(CounterClicks { writer, wake });
}

#[component]
pub fn CounterPage() -> impl IntoView {
    let counter = use_kv_key(CONFIG_BUCKET, KEY);
    let clicks = expect_context::<CounterClicks>();
    let Writer { pending, error, .. } = clicks.writer;
    let watched = clicks.clone();
    Effect::new(move |_| {
        counter
            .entry
            .with(|e| e.iter().for_each(|e| watched.observe(e)))
    });
    let click = move |op: CounterOp| clicks.click(op);

    // `Some(None)`: a value another client wrote that is not a counter.
    let parsed = Memo::new(move |_| {
        counter
            .entry
            .with(|e| e.as_ref().map(|e| Counter::parse(&e.value)))
    });
    let value = move || match parsed.get() {
        Some(Some(c)) => c.value.to_string(),
        Some(None) => "?".to_owned(),
        None => "0".to_owned(),
    };
    // Connected, and the counter cannot be read (a refusal: the error below says why). Not while
    // the page waits for the server.
    let live = use_nats().status;
    let unreachable =
        move || counter.error.with(Option::is_some) && live.with(|s| s.is_connected());
    let last_by = move || match parsed.get() {
        Some(Some(c)) if !c.by.is_empty() => c.by,
        Some(_) => "another client".to_owned(),
        None if counter.loaded.get() => "nobody yet".to_owned(),
        // Not read yet, or not readable (the error below says why): not "nobody".
        None => "…".to_owned(),
    };
    let unreadable = move || {
        counter.entry.with(|e| {
            e.as_ref()
                .filter(|e| Counter::parse(&e.value).is_none())
                .map(|e| not_a_counter(&e.value))
        })
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
                {move || match (counter.loaded.get(), unreachable()) {
                    (true, _) => value(),
                    // Not readable (the error below says why): no waiting dots.
                    (false, true) => "–".to_owned(),
                    (false, false) => "…".to_owned(),
                }}
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
            // Said as soon as it is seen, not only at the next click.
            <Show when=move || unreadable().is_some() && error.with(Option::is_none)>
                <p class="error" data-testid="counter-unreadable">{unreadable}</p>
            </Show>
            <Show when=move || error.get().or(counter.error.get()).is_some()>
                <p class="error" data-testid="counter-error">{move || error.get().or(counter.error.get())}</p>
            </Show>
        </section>
    }
}
