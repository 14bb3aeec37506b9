//! What every worker does, as the page sees it: the consumers (bucket `workers`, live), the
//! status feed, the stream and its recent messages (polled while visible), and each worker's
//! memory over time.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use leptos::prelude::*;
use leptos_nats::spawn_while_mounted;
use nats_ws::jetstream::{ApiErrorKind, StreamState};
use nats_ws::kv::SystemTime;
use nats_ws::Client;
use via_workers::{MemoryStats, StatusEvent, WorkerInfo};

use super::logic::{
    add_sample, chart_points, describe_status, kind_name, live_workers, memory_text, memory_value,
    partitions_text, payload_text, status_class, where_text, FEED_LINES, MEMORY_SAMPLES,
    RECENT_MESSAGES,
};
use super::{Ctx, Lag};
use crate::components::clock::{now_ms, time_of_day, use_now};
use crate::components::live_bucket::watch_existing_bucket;
use crate::components::visibility::poll_while_visible;
use crate::model::{format_bytes, parse_json, push_bounded};

/// The bucket of the workers' presence: `Settings::default().workers_bucket`, which the page
/// uses (the live-bucket watch wants a name that outlives it).
const WORKERS_BUCKET: &str = "workers";
/// How often the stream, its consumers and its recent messages are read while visible.
const POLL: Duration = Duration::from_secs(2);
/// A worker whose last memory sample is older than this has no chart.
const MEMORY_SHOWN_FOR_MS: f64 = 60_000.0;

#[component]
pub(super) fn Consumers(client: Client, ctx: Ctx) -> impl IntoView {
    let bucket = watch_existing_bucket(client, WORKERS_BUCKET);
    // A worker's heartbeat is when the server stored it, on the server's clock: workers in tabs
    // write their browsers' times, which may be off by any amount, and so may this one's.
    let now = bucket.server_time(use_now(Duration::from_secs(1)));
    let ttl_ms = ctx.settings().lease_ttl.as_millis() as u64;
    let workers = Memo::new(move |_| {
        let infos: Vec<WorkerInfo> = bucket.entries.with(|map| {
            map.values()
                .filter_map(|e| {
                    let info: WorkerInfo = parse_json(&e.value)?;
                    let stored = e
                        .created
                        .and_then(|c| c.duration_since(SystemTime::UNIX_EPOCH).ok());
                    Some(match stored {
                        Some(at) => WorkerInfo {
                            heartbeat_at: at.as_millis() as u64,
                            ..info
                        },
                        None => info,
                    })
                })
                .collect()
        });
        live_workers(infos, now.get() as u64, ttl_ms)
    });
    let ids =
        Memo::new(move |_| workers.with(|w| w.iter().map(|i| i.id.clone()).collect::<Vec<_>>()));

    view! {
        <section class="card" aria-labelledby="consumers-title">
            <div class="card-head">
                <h2 id="consumers-title">"Consumers"</h2>
                <span class="muted" data-testid="worker-count">
                    {move || match ids.with(Vec::len) {
                        1 => "1 worker".to_owned(),
                        n => format!("{n} workers"),
                    }}
                </span>
            </div>
            <Show when=move || bucket.error.get().is_some()>
                <p class="error">{move || bucket.error.get()}</p>
            </Show>
            <Show
                when=move || !ids.with(Vec::is_empty)
                fallback=move || {
                    view! {
                        <p class="empty">
                            {move || if bucket.loaded.get() { "No worker yet: join with this tab, or add a worker process." } else if bucket.error.with(Option::is_some) { "Not loaded: see the error above." } else { "Loading workers…" }}
                        </p>
                    }
                }
            >
                <div class="table-wrap">
                    <table class="proc-table workers-table stacks">
                        <thead>
                            <tr>
                                <th>"Worker"</th>
                                <th>"Kind"</th>
                                <th>"Where"</th>
                                <th>"Partitions"</th>
                                <th class="num">"Processed"</th>
                                <th>"Lag per partition"</th>
                            </tr>
                        </thead>
                        <tbody>
                            <For
                                each=move || ids.get()
                                key=|id| id.clone()
                                children=move |id| view! { <WorkerRow id workers ctx/> }
                            />
                        </tbody>
                    </table>
                </div>
            </Show>
        </section>
    }
}

#[component]
fn WorkerRow(id: String, workers: Memo<Vec<WorkerInfo>>, ctx: Ctx) -> impl IntoView {
    let info = {
        let id = id.clone();
        Memo::new(move |_| workers.with(|w| w.iter().find(|i| i.id == id).cloned()))
    };
    let field = move |f: fn(&WorkerInfo) -> String| {
        move || info.with(|i| i.as_ref().map(f).unwrap_or_default())
    };
    let lag = move || {
        let partitions =
            info.with(|i| i.as_ref().map(|i| i.partitions.clone()).unwrap_or_default());
        ctx.lag.with(|lag| {
            partitions
                .iter()
                .map(|p| match lag.get(p) {
                    Some(l) => format!("p{p} {}", l.pending + l.ack_pending),
                    None => format!("p{p} ?"),
                })
                .collect::<Vec<_>>()
                .join(" · ")
        })
    };
    view! {
        <tr data-testid="worker-row">
            <td><code>{id.clone()}</code></td>
            <td data-label="Kind">
                <span class="tag">{field(|i| kind_name(i.kind).to_owned())}</span>
            </td>
            <td class="small" data-label="Where">{field(where_text)}</td>
            <td data-label="Partitions" data-testid=format!("worker-partitions-{id}")>{field(|i| partitions_text(&i.partitions))}</td>
            <td class="num" data-label="Processed" data-testid=format!("worker-processed-{id}")>{field(|i| i.processed.to_string())}</td>
            <td class="small" data-label="Lag" title="messages not yet delivered plus delivered but not yet acknowledged">{lag}</td>
        </tr>
    }
}

/// This tab's connection, as the status feed follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    /// Still making its first connection: nothing was missed.
    NotYet,
    Up,
    /// Was connected, is not: what is said meanwhile does not reach the feed.
    Away,
}

/// One line of the feed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FeedLine {
    seq: u64,
    at: u64,
    worker: String,
    text: String,
    class: &'static str,
}

#[component]
pub(super) fn StatusFeed(client: Client, ctx: Ctx) -> impl IntoView {
    let lines = RwSignal::new(Vec::<FeedLine>::new());
    // The lines' keys, for the feed's own lines too.
    let next_seq = StoredValue::new(0u64);
    let error = RwSignal::new(None::<String>);
    let subject = ctx.settings().status_subject();
    {
        let subject = subject.clone();
        spawn_while_mounted(async move {
            let mut sub = match client.subscribe(&subject) {
                Ok(sub) => sub,
                Err(e) => {
                    error.set(Some(format!("no status feed: {e}")));
                    return;
                }
            };
            while let Some(message) = sub.next().await {
                let Ok(message) = message else { continue };
                let seq = next_seq.get_value() + 1;
                next_seq.set_value(seq);
                let line = match parse_json::<StatusEvent>(&message.payload) {
                    Some(e) => FeedLine {
                        seq,
                        at: e.at,
                        text: describe_status(&e),
                        class: status_class(e.kind),
                        worker: e.worker,
                    },
                    None => FeedLine {
                        seq,
                        at: now_ms() as u64,
                        worker: "?".into(),
                        text: format!("unreadable status: {}", payload_text(&message.payload)),
                        class: "status-loss",
                    },
                };
                lines.update(|l| push_bounded(l, [line], FEED_LINES));
            }
        });
    }
    // The feed has no history: what was said while this tab was away is not coming. Said where it
    // happened, so that a "released" without its "acquired", or a line that arrives late with an
    // earlier time (a worker's own, sent once it was back), reads as what it is.
    let status = leptos_nats::use_nats().status;
    Effect::new(move |was: Option<Link>| {
        let connected = status.with(|s| s.is_connected());
        if was == Some(Link::Away) && connected {
            let seq = next_seq.get_value() + 1;
            next_seq.set_value(seq);
            let line = FeedLine {
                seq,
                at: now_ms() as u64,
                worker: "this tab".into(),
                text: "connected again: what was said while it was away is not shown".into(),
                class: "status-loss",
            };
            lines.update(|l| push_bounded(l, [line], FEED_LINES));
        }
        match (was.unwrap_or(Link::NotYet), connected) {
            (_, true) => Link::Up,
            (Link::NotYet, false) => Link::NotYet,
            (_, false) => Link::Away,
        }
    });
    view! {
        <section class="card feed-card" aria-labelledby="feed-title">
            <div class="card-head">
                <h2 id="feed-title">"Status feed"</h2>
                <span class="muted small">"newest first · " <code>{subject}</code></span>
            </div>
            <Show when=move || error.get().is_some()>
                <p class="error">{move || error.get()}</p>
            </Show>
            // Focusable, so that the feed scrolls from the keyboard too.
            <ol class="status-feed" aria-live="off" tabindex="0" aria-labelledby="feed-title">
                <Show when=move || lines.with(Vec::is_empty)>
                    <li class="muted">"Nothing yet: lease changes show here as they happen."</li>
                </Show>
                <For
                    each=move || lines.get().into_iter().rev()
                    key=|l| l.seq
                    children=|l| {
                        view! {
                            <li class=format!("status-event {}", l.class) data-testid="status-event">
                                <time>{time_of_day(l.at as f64, true)}</time>
                                " "
                                <code class="status-worker">{l.worker}</code>
                                " "
                                <span>{l.text}</span>
                            </li>
                        }
                    }
                />
            </ol>
        </section>
    }
}

/// A stored message, for the recent list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Recent {
    seq: u64,
    subject: String,
    text: String,
}

#[component]
pub(super) fn StreamPanel(ctx: Ctx) -> impl IntoView {
    let state = RwSignal::new(None::<StreamState>);
    let missing = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let recent = RwSignal::new(Vec::<Recent>::new());
    // The last sequence the recent list was read at: read again only when the stream moved.
    let recent_at = StoredValue::new(None::<u64>);

    // Set only when it changes: the alert is said again each time it is put back, and a failure
    // that lasts would be said every round.
    let set_error = move |text: Option<String>| {
        if error.try_with_untracked(|e| *e != text) == Some(true) {
            error.try_set(text);
        }
    };
    let refresh = move || async move {
        let (js, settings) = (ctx.js.get_value(), ctx.settings());
        let lags = futures::future::join_all((0..settings.partitions).map(|p| {
            let js = js.clone();
            let stream = settings.stream.clone();
            let durable = settings.durable(p);
            async move { (p, js.consumer_info(&stream, &durable).await) }
        }));
        let (info, lags) = futures::join!(js.stream_info(&settings.stream), lags);
        let info = match info {
            Ok(info) => info,
            Err(e) => {
                if e.api_kind() == Some(ApiErrorKind::StreamNotFound) {
                    missing.try_set(true);
                    set_error(None);
                } else {
                    set_error(Some(format!(
                        "could not read stream {}: {e}",
                        settings.stream
                    )));
                }
                return;
            }
        };
        missing.try_set(false);
        let mut round_error = None;
        let lag: BTreeMap<u32, Lag> = lags
            .into_iter()
            .filter_map(|(p, r)| {
                r.ok().map(|c| {
                    (
                        p,
                        Lag {
                            pending: c.num_pending,
                            ack_pending: c.num_ack_pending,
                        },
                    )
                })
            })
            .collect();
        if ctx.lag.try_with_untracked(|l| *l != lag).unwrap_or(false) {
            ctx.lag.try_set(lag);
        }
        let s = info.state;
        if recent_at.try_get_value().flatten() != Some(s.last_seq) {
            let low = s
                .first_seq
                .max(s.last_seq.saturating_sub(RECENT_MESSAGES - 1))
                .max(1);
            let gets = (low..=s.last_seq).rev().map(|seq| {
                let js = js.clone();
                let stream = settings.stream.clone();
                async move { js.get_message(&stream, seq).await }
            });
            let mut list = Vec::new();
            let mut failed = None;
            for got in futures::future::join_all(gets).await {
                match got {
                    Ok(Some(m)) => list.push(Recent {
                        seq: m.sequence,
                        subject: m.subject,
                        text: payload_text(&m.payload),
                    }),
                    // Gone already (max age): nothing to show.
                    Ok(None) => {}
                    Err(e) => failed = Some(e),
                }
            }
            match failed {
                Some(e) => {
                    round_error = Some(format!("could not read the recent messages: {e}"));
                }
                None => {
                    recent_at.try_set_value(Some(s.last_seq));
                }
            }
            recent.try_set(list);
        }
        if state
            .try_with_untracked(|old| old.as_ref() != Some(&s))
            .unwrap_or(false)
        {
            state.try_set(Some(s));
        }
        set_error(round_error);
    };
    poll_while_visible(POLL, None, refresh);

    let name = ctx.settings().stream;
    let figure = move |f: fn(&StreamState) -> String| {
        move || state.with(|s| s.as_ref().map(f).unwrap_or_else(|| "—".into()))
    };

    view! {
        <section class="card stream-card" aria-labelledby="stream-title">
            <div class="card-head">
                <h2 id="stream-title">"Stream " <code>{name}</code></h2>
                <span class="muted small">"every 2 s while visible"</span>
            </div>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert" data-testid="stream-error">{move || error.get()}</p>
            </Show>
            <Show when=move || missing.get()>
                <p class="hint">"The stream does not exist yet: it is created on join or publish."</p>
            </Show>
            <dl class="stream-stats">
                <div>
                    <dt>"Messages"</dt>
                    <dd data-testid="stream-count">{figure(|s| s.messages.to_string())}</dd>
                </div>
                <div>
                    <dt>"Bytes"</dt>
                    <dd>{figure(|s| format_bytes(s.bytes))}</dd>
                </div>
                <div>
                    <dt>"First seq"</dt>
                    <dd>{figure(|s| s.first_seq.to_string())}</dd>
                </div>
                <div>
                    <dt>"Last seq"</dt>
                    <dd>{figure(|s| s.last_seq.to_string())}</dd>
                </div>
            </dl>
            <h3>"Recent messages"</h3>
            <ol
                class="recent-messages"
                data-testid="stream-messages"
                tabindex="0"
                aria-label="Recent messages"
            >
                <Show when=move || recent.with(Vec::is_empty)>
                    <li class="muted">"No message yet."</li>
                </Show>
                <For
                    each=move || recent.get()
                    key=|m| m.seq
                    children=|m| {
                        view! {
                            <li class="recent-message">
                                <span class="muted small">{format!("#{}", m.seq)}</span>
                                " "
                                <code class="small">{m.subject}</code>
                                " "
                                <span class="recent-payload">{m.text}</span>
                            </li>
                        }
                    }
                />
            </ol>
        </section>
    }
}

#[component]
pub(super) fn MemoryPanel(client: Client, ctx: Ctx) -> impl IntoView {
    let series = RwSignal::new(BTreeMap::<String, Vec<MemoryStats>>::new());
    let error = RwSignal::new(None::<String>);
    let filter = ctx.settings().memory_filter();
    {
        let filter = filter.clone();
        spawn_while_mounted(async move {
            let mut sub = match client.subscribe(&filter) {
                Ok(sub) => sub,
                Err(e) => {
                    error.set(Some(format!("no memory figures: {e}")));
                    return;
                }
            };
            while let Some(message) = sub.next().await {
                let Ok(message) = message else { continue };
                // Only a sample whose worker matches its subject: a stray message cannot draw
                // under another worker's name.
                let Some(stats) = parse_json::<MemoryStats>(&message.payload) else {
                    continue;
                };
                if !message.subject.ends_with(&format!(".{}", stats.worker)) {
                    continue;
                }
                // Kept by when it arrived: `at` is the worker's clock, which may be off this
                // browser's by any amount.
                let arrived = MemoryStats {
                    at: now_ms() as u64,
                    ..stats
                };
                series.update(|s| add_sample(s, arrived, MEMORY_SHOWN_FOR_MS as u64));
            }
        });
    }
    let now = use_now(Duration::from_secs(5));
    let shown = Memo::new(move |_| {
        let now = now.get();
        series.with(|s| {
            s.iter()
                .filter(|(_, v)| {
                    v.last()
                        .is_some_and(|l| l.at as f64 + MEMORY_SHOWN_FOR_MS > now)
                })
                .map(|(k, _)| k.clone())
                .collect::<Vec<_>>()
        })
    });

    view! {
        <section class="card" aria-labelledby="memory-title">
            <div class="card-head">
                <h2 id="memory-title">"Memory"</h2>
                <span class="muted small">
                    "every 5 s per worker · flat is healthy, a line that only climbs is a leak"
                </span>
            </div>
            <Show when=move || error.get().is_some()>
                <p class="error">{move || error.get()}</p>
            </Show>
            <Show
                when=move || !shown.with(Vec::is_empty)
                fallback=|| view! { <p class="empty">"No worker has reported its memory in the last minute."</p> }
            >
                <div class="memory-charts">
                    <For
                        each=move || shown.get()
                        key=|id| id.clone()
                        children=move |id| view! { <MemoryChart id series/> }
                    />
                </div>
            </Show>
        </section>
    }
}

const CHART_W: f64 = 240.0;
const CHART_H: f64 = 48.0;

#[component]
fn MemoryChart(id: String, series: RwSignal<BTreeMap<String, Vec<MemoryStats>>>) -> impl IntoView {
    let samples = {
        let id = id.clone();
        Memo::new(move |_| series.with(|s| s.get(&id).cloned().unwrap_or_default()))
    };
    let points = move || {
        samples.with(|s| {
            let values: Vec<u64> = s.iter().filter_map(memory_value).collect();
            chart_points(&values, CHART_W, CHART_H)
        })
    };
    let last = move || samples.with(|s| s.last().map(memory_text).unwrap_or_default());
    let label = {
        let id = id.clone();
        move || {
            samples.with(|s| {
                let values: Vec<u64> = s.iter().filter_map(memory_value).collect();
                match (values.first(), values.last()) {
                    (Some(a), Some(b)) => format!(
                        "Memory of {id}, {} samples: from {} to {}",
                        values.len(),
                        format_bytes(*a),
                        format_bytes(*b)
                    ),
                    _ => format!("Memory of {id}: no figures"),
                }
            })
        }
    };
    view! {
        <figure class="memory-chart" data-testid=format!("worker-memory-{id}")>
            <figcaption>
                <code>{id.clone()}</code>
                <span class="muted small">{move || format!(" · {} events", samples.with(|s| s.last().map(|l| l.processed).unwrap_or(0)))}</span>
            </figcaption>
            <svg
                viewBox=format!("0 0 {CHART_W} {CHART_H}")
                preserveAspectRatio="none"
                role="img"
                aria-label=label
            >
                <line class="chart-axis" x1="0" y1=CHART_H x2=CHART_W y2=CHART_H/>
                <polyline class="chart-line" points=points/>
            </svg>
            <p class="small memory-last">{last}</p>
            <p class="muted small">{format!("up to {MEMORY_SAMPLES} samples")}</p>
        </figure>
    }
}
