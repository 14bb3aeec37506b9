//! Durable consumer: the memory stream `playgrnd_stream` (subjects `orders.>`) and its durable pull
//! consumer `orders-processor` (explicit ack), created when missing and otherwise used as they are.
//! Online, this tab pulls orders and acks each; offline it stops pulling and the orders wait on
//! the server (the pending count grows); back online, they all arrive, in order. The durable
//! remembers its ack floor, so a reload continues after it — and several tabs online share the
//! work, each order going to one of them.
//!
//! All that holds while the server runs: the stream lives in memory, so a server restart loses it,
//! the durable and the orders waiting in them. The page sets them up again when it finds them gone
//! (or made anew by another tab: the durable's creation time changed), and the card says so, with
//! how many orders were waiting as it last read them.
//!
//! Online or offline is remembered per tab (sessionStorage) across reloads: a reload continues as
//! the tab was; a new tab starts online. Going offline lets the pull in flight (at most
//! [`PULL_EXPIRES`]) finish and ack what it brings, so that no order is left delivered and
//! unacknowledged (it would come back only after the ack wait, out of order). The pull loop goes on
//! while the tab is hidden (an online consumer works in the background); the consumer's state
//! (pending, ack floor) is read every second only while it is visible, and after each action.

use std::time::Duration;

use futures::future::{abortable, AbortHandle};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_nats::{spawn_while_mounted, until_connected};
use nats_ws::jetstream::{
    AckPolicy, ApiErrorKind, ConsumerConfig, ConsumerInfo, DeliverPolicy, FetchOptions, JetStream,
    JetStreamError, StorageType, StreamConfig,
};
use nats_ws::Client;
use serde::{Deserialize, Serialize};

use super::steps::{within, CardTasks, StepList, StepLog};
use crate::components::clock::monotonic_ms;
use crate::components::visibility::poll_while_visible;
use crate::session::random_hex;

pub const STREAM: &str = "playgrnd_stream";
pub const SUBJECTS: &str = "orders.>";
pub const SUBJECT: &str = "orders.new";
pub const CONSUMER: &str = "orders-processor";
/// sessionStorage: whether this tab is online (`true` / `false`).
const ONLINE_KEY: &str = "via.playground.durable.online";
/// How many orders a pull asks for, and how long it waits for them. One: a pull returns as soon
/// as its batch is full, so each order shows as it arrives (a pull of 10 would hold the first
/// until 10 came or the pull expired).
const BATCH: usize = 1;
const PULL_EXPIRES: Duration = Duration::from_secs(1);
/// How long an order may stay delivered and unacknowledged before the server delivers it again.
const ACK_WAIT: Duration = Duration::from_secs(30);
/// How often the consumer's state is read while the tab is visible.
const POLL: Duration = Duration::from_secs(1);
/// How long the figures may trail the orders the tab takes.
const REFRESH_AFTER: Duration = Duration::from_millis(100);
/// How long to wait before trying again after a failure.
const RETRY: Duration = Duration::from_secs(3);
/// Orders per click of Publish.
const PUBLISH_COUNT: usize = 3;
/// The received list keeps the newest this many.
const KEEP_RECEIVED: usize = 50;
const ITEMS: [&str; 6] = [
    "coffee",
    "bagel",
    "croissant",
    "green tea",
    "muffin",
    "orange juice",
];

/// An order as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub id: String,
    pub item: String,
}

/// The `n`th order (from 1) of the tab whose prefix is `tab`: `ord-<tab>-0001`, items in turn.
pub fn order(tab: &str, n: u64) -> Order {
    Order {
        id: format!("ord-{tab}-{n:04}"),
        item: ITEMS[(n.saturating_sub(1) % ITEMS.len() as u64) as usize].to_owned(),
    }
}

/// An order as this tab received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// This tab's running number, never reused: the list's key (a stream recreated after a
    /// server restart numbers its messages from 1 again).
    pub n: u64,
    pub stream_seq: u64,
    /// 1 the first time; more when it was delivered before and not acknowledged.
    pub delivered: u64,
    pub payload: String,
}

/// A running number for [`Received::n`].
fn next_n() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Adds `r` to the list, keeping the newest [`KEEP_RECEIVED`].
pub fn keep_received(list: &mut Vec<Received>, r: Received) {
    crate::model::push_bounded(list, [r], KEEP_RECEIVED);
}

/// A payload as text, cut at 200 characters.
pub fn payload_text(payload: &[u8]) -> String {
    crate::model::clip_payload(payload, 200)
}

/// Reads the remembered online state: on unless this tab turned it off.
pub fn read_online(stored: Option<&str>) -> bool {
    stored != Some("false")
}

fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok()?
}

fn load_online() -> bool {
    read_online(
        session_storage()
            .and_then(|s| s.get_item(ONLINE_KEY).ok().flatten())
            .as_deref(),
    )
}

fn save_online(online: bool) {
    if let Some(s) = session_storage() {
        let _ = s.set_item(ONLINE_KEY, if online { "true" } else { "false" });
    }
}

fn is_missing(e: &JetStreamError) -> bool {
    matches!(
        e.api_kind(),
        Some(ApiErrorKind::StreamNotFound | ApiErrorKind::ConsumerNotFound)
    )
}

/// The stream's configuration when this page creates it (replicated on a cluster).
fn stream_config(replicas: usize) -> StreamConfig {
    let mut config = StreamConfig::new(STREAM, [SUBJECTS]);
    config.num_replicas = replicas;
    config.description = Some("/playground: orders for the durable consumer".into());
    config.storage = StorageType::Memory;
    // Acked orders stay (limits retention, so that the ack floor means something): bounded.
    config.max_msgs = 10_000;
    config
}

fn consumer_config() -> ConsumerConfig {
    ConsumerConfig {
        durable_name: Some(CONSUMER.to_owned()),
        description: Some("/playground: processes orders, explicit ack".into()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        ..Default::default()
    }
}

/// Creates the stream and the durable when missing; each that exists is used as it is. Returns
/// the stream's creation time with the durable's info.
async fn ensure(js: &JetStream, log: StepLog) -> Result<(String, ConsumerInfo), JetStreamError> {
    let stream_created = match js.stream_info(STREAM).await {
        Ok(info) => {
            log.ok(
                "server → tab",
                format!(
                    "stream {STREAM} is there: {} orders, last sequence {}",
                    info.state.messages, info.state.last_seq
                ),
            );
            info.created
        }
        Err(e) if e.api_kind() == Some(ApiErrorKind::StreamNotFound) => {
            match js
                .create_stream(&stream_config(js.default_replicas().await))
                .await
            {
                Ok(info) => {
                    log.ok(
                        "tab → server",
                        format!("created stream {STREAM} on {SUBJECTS}, in memory"),
                    );
                    info.created
                }
                // "Stream name already in use", or on 2.9 "subjects overlap" when both raced.
                Err(e) => match js.stream_info(STREAM).await {
                    Ok(info) => {
                        log.info(
                            "server → tab",
                            format!("stream {STREAM} was already there: using it"),
                        );
                        info.created
                    }
                    Err(_) => return Err(e),
                },
            }
        }
        Err(e) => return Err(e),
    };
    let info = match js.consumer_info(STREAM, CONSUMER).await {
        Ok(info) => {
            log.ok(
                "server → tab",
                format!(
                    "durable {CONSUMER} is there: ack floor at sequence {}, {} pending — it continues from there",
                    info.ack_floor.stream_seq, info.num_pending
                ),
            );
            info
        }
        Err(e) if e.api_kind() == Some(ApiErrorKind::ConsumerNotFound) => {
            let info = js.create_consumer(STREAM, &consumer_config()).await?;
            log.ok(
                "tab → server",
                format!(
                    "created durable pull consumer {CONSUMER} (explicit ack, from the first order): {} pending",
                    info.num_pending
                ),
            );
            info
        }
        Err(e) => return Err(e),
    };
    Ok((stream_created, info))
}

/// What this tab last read of the stream and the durable: their creation times (made anew, they
/// have others) and how many orders were waiting (pending, or delivered and not acknowledged).
#[derive(Debug, Clone, Default)]
struct Known {
    stream_created: Option<String>,
    consumer_created: Option<String>,
    waiting: Option<u64>,
}

impl Known {
    /// Whether a durable created at `created` is another than the one last read.
    fn anew(&self, created: &str) -> bool {
        self.consumer_created
            .as_deref()
            .is_some_and(|c| c != created)
    }
}

/// What the card says when the durable it knew was made anew: `stream_gone` whether its stream
/// went with it (`None`: not known), `waiting` the orders waiting in it as last read.
pub fn made_anew(stream_gone: Option<bool>, waiting: Option<u64>) -> String {
    let lost = match waiting {
        None => "the orders that were waiting in it, if any, are lost".to_owned(),
        Some(0) => "no order was waiting in it".to_owned(),
        Some(1) => "the 1 order that was waiting is lost".to_owned(),
        Some(n) => format!("the {n} orders that were waiting are lost"),
    };
    match stream_gone {
        Some(true) => format!(
            "{STREAM} was gone (a memory stream does not outlive a server restart): {lost}; set up again."
        ),
        Some(false) => format!(
            "The durable {CONSUMER} was gone (deleted): made again, it starts over from the first order in {STREAM}."
        ),
        None => format!(
            "The durable {CONSUMER} was made anew, its stream {STREAM} too if a server restart lost it \
             (a memory stream does not outlive one): then {lost}."
        ),
    }
}

/// What the card's parts share. `Copy`.
#[derive(Clone, Copy)]
struct Ctx {
    client: StoredValue<Client, LocalStorage>,
    js: StoredValue<JetStream, LocalStorage>,
    log: StepLog,
    /// The stream and the durable exist (as far as this tab knows).
    ready: RwSignal<bool>,
    /// What the user chose.
    online: RwSignal<bool>,
    /// Whether the pull loop runs (it finishes its pull after going offline).
    fetching: RwSignal<bool>,
    info: RwSignal<Option<ConsumerInfo>>,
    received: RwSignal<Vec<Received>>,
    error: RwSignal<Option<String>>,
    /// Reads the consumer's state at once.
    wake: Trigger,
    /// A wake is due (see `Ctx::refresh_soon`).
    wake_queued: StoredValue<bool>,
    fetch_task: StoredValue<Option<AbortHandle>>,
    /// A setup is under way.
    setting_up: StoredValue<bool>,
    known: StoredValue<Known>,
    /// What the card says once it found the durable made anew (see [`made_anew`]), until the
    /// next Publish.
    lost: RwSignal<Option<String>>,
}

/// Marks a setup as under way until dropped (also when its task is aborted).
struct Busy(StoredValue<bool>);

impl Busy {
    fn new(flag: StoredValue<bool>) -> Busy {
        flag.try_set_value(true);
        Busy(flag)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.try_set_value(false);
    }
}

impl Ctx {
    /// Sets up (again) until it worked; a failure is a step once and a message meanwhile. One at a
    /// time: a second caller (the pull loop and the poller both notice a lost stream) waits for
    /// the first.
    async fn setup(self) {
        while self.setting_up.try_get_value() == Some(true) {
            gloo_timers::future::sleep(Duration::from_millis(250)).await;
            if self.ready.try_get_untracked() == Some(true) {
                return;
            }
        }
        let _busy = Busy::new(self.setting_up);
        let mut last_failure = None;
        loop {
            let client = self.client.get_value();
            if !until_connected(&client).await {
                return;
            }
            match ensure(&self.js.get_value(), self.log).await {
                Ok((stream_created, info)) => {
                    self.seen(Some(stream_created), &info);
                    self.info.try_set(Some(info));
                    self.error.try_set(None);
                    self.ready.try_set(true);
                    return;
                }
                Err(e) => {
                    let text = format!("cannot set up {STREAM} / {CONSUMER}: {e}");
                    if last_failure.as_ref() != Some(&text) {
                        self.log.fail("server → tab", text.clone());
                    }
                    self.error.try_set(Some(text.clone()));
                    last_failure = Some(text);
                }
            }
            gloo_timers::future::sleep(RETRY).await;
        }
    }

    /// Pulls and acks while the tab is online; ends after the pull in flight when it goes offline.
    async fn fetch_loop(self) {
        let client = self.client.get_value();
        let js = self.js.get_value();
        while self.online.try_get_untracked() == Some(true) {
            // A closed client (the settings changed) is for good: this card goes with it, and
            // the loop must not be started again.
            if !client.status().is_connected() {
                if !until_connected(&client).await {
                    return;
                }
                // The switch may have gone offline while the server was away: asked again
                // before anything is pulled.
                continue;
            }
            let options = FetchOptions {
                batch: BATCH,
                expires: PULL_EXPIRES,
            };
            let asked_at = monotonic_ms();
            match js.fetch(STREAM, CONSUMER, options).await {
                Ok(batch) => {
                    self.error.try_set(None);
                    if batch.is_empty() {
                        // A pull ended at once without orders (the server turned it away):
                        // no tight loop.
                        if monotonic_ms() - asked_at < 100.0 {
                            gloo_timers::future::sleep(Duration::from_millis(250)).await;
                        }
                        continue;
                    }
                    for m in &batch {
                        let info = m.info();
                        let seq = info.as_ref().map_or(0, |i| i.stream_sequence);
                        let delivered = info.as_ref().map_or(1, |i| i.delivered);
                        let payload = payload_text(&m.message.payload);
                        let again = if delivered > 1 {
                            format!(" (delivery {delivered})")
                        } else {
                            String::new()
                        };
                        match m.ack() {
                            Ok(()) => self.log.ok(
                                "server → tab",
                                format!("#{seq}{again} {payload} — ack sent"),
                            ),
                            Err(e) => self
                                .log
                                .fail("tab → server", format!("#{seq}: the ack failed: {e}")),
                        }
                        self.received.try_update(|list| {
                            keep_received(
                                list,
                                Received {
                                    n: next_n(),
                                    stream_seq: seq,
                                    delivered,
                                    payload,
                                },
                            )
                        });
                    }
                    self.refresh_soon();
                }
                Err(e) if is_missing(&e) => {
                    self.log.info(
                        "server → tab",
                        format!("{e}: the stream lives in memory (a server restart loses it) — setting it up again"),
                    );
                    self.ready.try_set(false);
                    self.setup().await;
                }
                Err(e) => {
                    if client.status().is_connected() {
                        self.error
                            .try_set(Some(format!("pulling from {CONSUMER}: {e}")));
                    }
                    gloo_timers::future::sleep(RETRY).await;
                }
            }
        }
        self.fetching.try_set(false);
    }

    /// Notes what `info` (and the stream's creation time, when read) says of the durable; one made
    /// anew since the last reading is said on the card.
    fn seen(self, stream_created: Option<String>, info: &ConsumerInfo) {
        let Some(before) = self.known.try_get_value() else {
            return;
        };
        if before.anew(&info.created) {
            let stream_gone = match (&before.stream_created, &stream_created) {
                (Some(was), Some(now)) => Some(was != now),
                _ => None,
            };
            let text = made_anew(stream_gone, before.waiting);
            self.log.fail("server → tab", text.clone());
            self.lost.try_set(Some(text));
        }
        self.known.try_set_value(Known {
            stream_created: stream_created.or(before.stream_created),
            consumer_created: Some(info.created.clone()),
            waiting: Some(info.num_pending + info.num_ack_pending),
        });
    }

    /// Reads the consumer's state soon: at most once per [`REFRESH_AFTER`], however many orders
    /// arrive meanwhile (one pull per order: a burst of a thousand asked a thousand times).
    fn refresh_soon(self) {
        if self.wake_queued.try_get_value() != Some(false) {
            return;
        }
        self.wake_queued.set_value(true);
        set_timeout(
            move || {
                if self.wake_queued.try_set_value(false).is_none() {
                    self.wake.notify();
                }
            },
            REFRESH_AFTER,
        );
    }

    /// Reads the consumer's state (pending, ack floor).
    async fn refresh(self) {
        if !self.ready.get_untracked() {
            // A setup cut short (this poll loop restarts on every wake and visibility change,
            // aborting what it ran) is taken up again here; one runs at a time.
            self.setup().await;
            return;
        }
        let js = self.js.get_value();
        match js.consumer_info(STREAM, CONSUMER).await {
            Ok(info) => {
                // Made anew by another tab or program (after a server restart, whichever page
                // looks first sets it up again): whether the stream was too.
                let anew = self.known.try_with_value(|k| k.anew(&info.created));
                let stream_created = match anew {
                    Some(true) => js.stream_info(STREAM).await.ok().map(|s| s.created),
                    _ => None,
                };
                self.seen(stream_created, &info);
                self.info.try_set(Some(info));
            }
            // Deleted, or lost with a server restart (the stream lives in memory): created again.
            Err(e) if is_missing(&e) => {
                self.info.try_set(None);
                self.ready.try_set(false);
                self.log.info(
                    "server → tab",
                    format!("{e}: the stream lives in memory (a server restart loses it) — setting it up again"),
                );
                self.setup().await;
            }
            // Disconnected: the status badge says so; the last figures stay.
            Err(_) => {}
        }
    }

    async fn publish(self, tab: &str, first: u64) {
        let log = self.log;
        // Set up first, if it is not; but a click is not kept waiting for a server that is down
        // or a stream that cannot be made.
        if !self.ready.get_untracked()
            && (within(self.setup()).await.is_none() || !self.ready.get_untracked())
        {
            let why = self
                .error
                .try_get_untracked()
                .flatten()
                .unwrap_or_else(|| "not connected".to_owned());
            return log.fail(
                "tab → stream",
                format!("nothing published: {STREAM} is not ready ({why}); try again once it is"),
            );
        }
        let js = self.js.get_value();
        for n in first..first + PUBLISH_COUNT as u64 {
            let body = match serde_json::to_string(&order(tab, n)) {
                Ok(body) => body,
                Err(e) => return log.fail("tab", e.to_string()),
            };
            let sent_at = log.elapsed();
            match js.publish(SUBJECT, body.as_bytes()).await {
                Ok(ack) => log.ok(
                    "tab → stream",
                    format!(
                        "{SUBJECT} {body}: stored as #{} ({:.0} ms)",
                        ack.seq,
                        log.elapsed() - sent_at
                    ),
                ),
                Err(e) => {
                    self.wake.notify();
                    return log.fail("tab → stream", format!("{SUBJECT} {body}: {e}"));
                }
            }
        }
        if self.online.get_untracked() {
            log.info(
                "server → consumer",
                "online: this tab (or another one online) pulls them now",
            );
        } else {
            log.info(
                "server → consumer",
                "offline: they wait on the server; pending grows",
            );
        }
        self.wake.notify();
    }
}

#[component]
pub fn DurableCard(client: Client) -> impl IntoView {
    let tasks = CardTasks::new();
    let ctx = Ctx {
        client: StoredValue::new_local(client.clone()),
        js: StoredValue::new_local(client.jetstream()),
        log: StepLog::new(),
        ready: RwSignal::new(false),
        online: RwSignal::new(load_online()),
        fetching: RwSignal::new(false),
        info: RwSignal::new(None),
        received: RwSignal::new(Vec::new()),
        error: RwSignal::new(None),
        wake: Trigger::new(),
        wake_queued: StoredValue::new(false),
        fetch_task: StoredValue::new(None),
        setting_up: StoredValue::new(false),
        known: StoredValue::new(Known::default()),
        lost: RwSignal::new(None),
    };
    let tab = StoredValue::new(random_hex(4));
    let published = StoredValue::new(0u64);
    let publishing = RwSignal::new(false);

    spawn_while_mounted(ctx.setup());
    poll_while_visible(POLL, Some(ctx.wake), move || ctx.refresh());

    // One pull loop per tab: started when online and set up, and not stopped by going offline
    // (it ends by itself after its pull), only by leaving the page.
    Effect::new(move |_| {
        if ctx.online.get() && ctx.ready.get() && !ctx.fetching.get() {
            ctx.fetching.set(true);
            let (task, handle) = abortable(ctx.fetch_loop());
            ctx.fetch_task.set_value(Some(handle));
            spawn_local(async move {
                let _ = task.await;
            });
        }
    });
    on_cleanup(move || {
        if let Some(Some(task)) = ctx.fetch_task.try_get_value() {
            task.abort();
        }
    });

    let on_toggle = move |ev: leptos::ev::Event| {
        let online = event_target_checked(&ev);
        save_online(online);
        ctx.online.set(online);
        ctx.log.start();
        let floor = ctx
            .info
            .with_untracked(|i| i.as_ref().map(|i| i.ack_floor.stream_seq));
        let floor = floor.map_or_else(String::new, |f| format!(" after the ack floor #{f}"));
        if online {
            ctx.log.info(
                "tab → server",
                format!("online: pulling from {CONSUMER}{floor}, one order per pull, acking each"),
            );
        } else {
            ctx.log.info(
                "tab",
                format!(
                    "offline: the pull in flight ends within {} s, then no more pulls; new orders wait on the server",
                    PULL_EXPIRES.as_secs()
                ),
            );
        }
        ctx.wake.notify();
    };

    let publish = move |_| {
        if publishing.get_untracked() {
            return;
        }
        publishing.set(true);
        ctx.lost.set(None);
        ctx.log.start();
        let first = published.get_value() + 1;
        published.set_value(first + PUBLISH_COUNT as u64 - 1);
        let tab = tab.get_value();
        tasks.spawn(async move {
            ctx.publish(&tab, first).await;
            publishing.try_set(false);
        });
    };

    let state = move || match (ctx.ready.get(), ctx.online.get(), ctx.fetching.get()) {
        (false, _, _) => "setting up…",
        (true, true, _) => "online: pulling and acking",
        (true, false, true) => "going offline: finishing the pull in flight…",
        (true, false, false) => "offline: orders wait on the server",
    };
    let figure = move |f: fn(&ConsumerInfo) -> u64| {
        move || {
            ctx.info.with(|i| {
                i.as_ref()
                    .map_or_else(|| "–".to_owned(), |i| f(i).to_string())
            })
        }
    };

    view! {
        <section class="card pg-card" aria-labelledby="pg-durable-title">
            <div class="card-head">
                <h2 id="pg-durable-title">"4 · Durable consumer"</h2>
                <button data-testid="pg-durable-publish" on:click=publish disabled=move || publishing.get()>
                    {move || if publishing.get() { "Publishing…" } else { "Publish 3 orders" }}
                </button>
            </div>
            <p class="muted small">
                "Orders go to " <code>{SUBJECT}</code> " in the stream " <code>{STREAM}</code>
                "; the durable pull consumer " <code>{CONSUMER}</code>
                " remembers what was acknowledged. Take it offline, publish, bring it back: nothing is lost "
                "while the server runs, and a reload continues where it stopped. Tabs online share the orders. "
                "The stream is in memory: a server restart loses it and the orders waiting in it (the card says so)."
            </p>
            <div class="pg-controls">
                <label class="switch">
                    <input
                        type="checkbox"
                        role="switch"
                        class="pg-switch"
                        data-testid="pg-durable-online"
                        prop:checked=move || ctx.online.get()
                        on:change=on_toggle
                    />
                    "Online: this tab pulls and acks"
                </label>
                <span class="muted small" data-testid="pg-durable-state">{state}</span>
            </div>
            <dl class="pg-durable-figures">
                <div>
                    <dt>"Pending"</dt>
                    <dd data-testid="pg-durable-pending">{figure(|i| i.num_pending)}</dd>
                </div>
                <div>
                    <dt>"Ack floor"</dt>
                    <dd>"#" <span data-testid="pg-durable-ack-floor">{figure(|i| i.ack_floor.stream_seq)}</span></dd>
                </div>
                <div>
                    <dt>"Unacked"</dt>
                    <dd data-testid="pg-durable-ack-pending">{figure(|i| i.num_ack_pending)}</dd>
                </div>
            </dl>
            {move || ctx.lost.get().map(|text| view! {
                <p class="pg-durable-lost" data-testid="pg-durable-lost">{text}</p>
            })}
            <Show when=move || ctx.error.get().is_some()>
                <p class="error" role="alert" data-testid="pg-durable-error">{move || ctx.error.get()}</p>
            </Show>
            <div class="pg-durable-received">
                <h3 class="small muted">"Received by this tab"</h3>
                <Show
                    when=move || ctx.received.with(|r| !r.is_empty())
                    fallback=|| view! { <p class="muted small">"Nothing yet since this page opened."</p> }
                >
                    <ol>
                        <For
                            each=move || ctx.received.get()
                            key=|r| r.n
                            children=move |r| {
                                view! {
                                    <li data-testid="pg-durable-received" data-seq=r.stream_seq.to_string()>
                                        <span class="pg-durable-seq">{format!("#{}", r.stream_seq)}</span>
                                        " "
                                        <code>{r.payload}</code>
                                        {(r.delivered > 1).then(|| view! {
                                            <span class="muted small">{format!(" delivery {}", r.delivered)}</span>
                                        })}
                                    </li>
                                }
                            }
                        />
                    </ol>
                </Show>
            </div>
            <StepList log=ctx.log testid="pg-durable-step"/>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_have_sequence_ids_and_items_in_turn() {
        let first = order("ab12", 1);
        assert_eq!(first.id, "ord-ab12-0001");
        assert_eq!(first.item, "coffee");
        assert_eq!(order("ab12", 7).item, "coffee");
        assert_eq!(
            serde_json::to_string(&order("ab12", 2)).unwrap(),
            r#"{"id":"ord-ab12-0002","item":"bagel"}"#
        );
    }

    #[test]
    fn a_tab_is_online_unless_it_went_offline() {
        assert!(read_online(None));
        assert!(read_online(Some("true")));
        assert!(!read_online(Some("false")));
    }

    #[test]
    fn the_received_list_keeps_the_newest() {
        let mut list = Vec::new();
        for seq in 1..=KEEP_RECEIVED as u64 + 5 {
            keep_received(
                &mut list,
                Received {
                    n: next_n(),
                    stream_seq: seq,
                    delivered: 1,
                    payload: String::new(),
                },
            );
        }
        assert_eq!(list.len(), KEEP_RECEIVED);
        assert_eq!(list[0].stream_seq, 6);
        assert_eq!(payload_text(&[b'<', 0xff]), "<\u{fffd}");
        assert!(payload_text("x".repeat(300).as_bytes()).ends_with('…'));
    }

    #[test]
    fn a_durable_made_anew_says_what_was_lost() {
        assert_eq!(
            made_anew(Some(true), Some(3)),
            "playgrnd_stream was gone (a memory stream does not outlive a server restart): \
             the 3 orders that were waiting are lost; set up again."
        );
        assert!(made_anew(Some(true), Some(1)).contains("the 1 order that was waiting is lost"));
        assert!(made_anew(Some(true), Some(0)).contains("no order was waiting in it"));
        assert!(made_anew(Some(true), None).contains("if any, are lost"));
        assert!(made_anew(Some(false), Some(3))
            .starts_with("The durable orders-processor was gone (deleted)"));
        assert!(made_anew(None, Some(2)).contains("then the 2 orders that were waiting are lost"));
    }

    #[test]
    fn the_consumer_is_a_durable_pull_consumer_with_explicit_ack() {
        let c = consumer_config();
        assert_eq!(c.durable_name.as_deref(), Some(CONSUMER));
        assert_eq!(c.ack_policy, AckPolicy::Explicit);
        assert_eq!(c.deliver_subject, None);
        let s = stream_config(3);
        assert_eq!(s.subjects, [SUBJECTS]);
        assert_eq!(s.storage, StorageType::Memory);
        assert_eq!(s.num_replicas, 3);
    }
}
