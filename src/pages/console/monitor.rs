//! `/monitor`: a live message monitor. Subscribe to `>`, a preset or any subjects typed, and see
//! every message: a bounded log (newest first, payloads always as text), totals, the rate over the
//! last second with a 60 s sparkline, and a table of the subjects seen.
//!
//! Built for real rates: each message only updates plain Rust state ([`Acc`], outside signals) —
//! the counts in [`MonitorStats`] and a queue of at most [`LOG_ROWS`] new rows — and the page reads
//! that state into signals in an animation frame at most every [`DRAW_EVERY_MS`] (the log at most
//! every [`LOG_EVERY_MS`], the subjects table every [`TABLE_EVERY_MS`]). So the count is exact however
//! fast messages come, while the DOM work per second stays bounded. Messages the client had to
//! drop (a subscriber over its pending limit) are counted and shown, never hidden.
//!
//! A row shows its message's status line, if any (a 503 has nothing else); expanded, it lists the
//! headers, then the payload. A message's headers are moved into its row, not copied (their first
//! [`KEEP_BYTES`] when there are more), and only an expanded row lists them. Whatever came from the
//! network (subjects, headers, payloads) is shown with its bidi controls written out ([`shown`]):
//! none reorders the page's text.

mod stats;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{AbortHandle, Abortable};
use futures::stream::{select_all, StreamExt};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_nats::{spawn_while_mounted, use_nats};
use nats_ws::{Client, HeaderMap, Message, Status, SubscribeOptions};

use super::bidi::{shown, without_bidi};
use crate::components::clock::{monotonic_ms, now_ms, time_of_day};
use crate::model::format_bytes;
use stats::{
    expanded, parse_subjects, preview, sparkline_points, MonitorStats, Sort, SortKey, SubjectRow,
    MAX_SUBJECTS, SPARK_SECONDS,
};

/// Rows the log keeps.
const LOG_ROWS: usize = 500;
/// Rows of the log in the page while it is read at the top (several screens of the log's box); the
/// rest of the [`LOG_ROWS`] are added [`LOG_MORE`] at a time as it is scrolled down. The page lays
/// out every row it holds at each redraw, ten a second: 500 rows kept a core 85 % busy under
/// 20 msgs/s.
const LOG_WINDOW: usize = 30;
const LOG_MORE: usize = 100;
/// The page redraws (counts, rate, sparkline) at most this often: a message after a quiet spell is
/// drawn in the next animation frame, messages that follow are drawn together. At 20 msgs/s a
/// redraw per message was a tenth of a core for numbers nobody reads at that pace.
const DRAW_EVERY_MS: f64 = 100.0;
/// Rows of the subjects table shown (in the chosen order); the rest are counted below it.
const TABLE_ROWS: usize = 200;
/// The log is redrawn at most this often; after a redraw that replaced most of its rows (a high
/// rate: at 20 000 msgs/s every frame would replace all 500), at most every [`LOG_BUSY_EVERY_MS`].
/// Rebuilding and laying out hundreds of rows is the page's main cost at rate, and nobody reads
/// rows that scroll by faster than that.
/// Such a redraw also shows only the newest [`LOG_ROWS_BUSY`] rows; all [`LOG_ROWS`] come back
/// with the next calm redraw (at most [`LOG_BUSY_EVERY_MS`] later, at once on Pause).
const LOG_EVERY_MS: f64 = 250.0;
const LOG_BUSY_EVERY_MS: f64 = 500.0;
const LOG_ROWS_BUSY: usize = 100;
const TABLE_EVERY_MS: f64 = 500.0;
/// Characters of payload in a log row.
const PREVIEW_CHARS: usize = 120;
/// Bytes of a payload kept for its expanded view; and of its headers' names and values.
const KEEP_BYTES: usize = 64 * 1024;
/// A subscription's unread messages before the client drops: far above what one animation frame
/// at 20 000 msgs/s leaves unread, so only a tab that truly cannot keep up loses messages.
const PENDING_MSGS: usize = 1_000_000;
const PENDING_BYTES: usize = 256 * 1024 * 1024;

const PRESETS: [(&str, &str, &str); 4] = [
    ("all", "All", ">"),
    ("via", "via.>", "via.>"),
    ("kv", "$KV.>", "$KV.>"),
    ("app", "This app", "chat.> user.>"),
];

#[component]
pub fn MonitorPage() -> impl IntoView {
    let nats = use_nats();
    // Kept when the connection changes (a sign-in in ⚙): what was typed, the counts and the log;
    // the subscription is made again on the new connection.
    let state = State::new();
    view! {
        <section class="page-head">
            <h1>"Monitor"</h1>
            <p class="lede">
                "Every message on the subjects you pick, live: " <code>">"</code>
                " for all of them, a preset, or any subjects with " <code>"*"</code> " and "
                <code>">"</code> " wildcards. Payloads are shown as text (JSON pretty-printed, binary as hex)."
            </p>
        </section>
        {move || match nats.client.get() {
            Some(client) => view! { <Monitor client state/> }.into_any(),
            None => view! { <p class="muted">"Not connected."</p> }.into_any(),
        }}
    }
}

/// A message as it waits for the next log redraw, with at most [`KEEP_BYTES`] of its payload,
/// copied: a tab that draws nothing (hidden: no animation frames) holds [`LOG_ROWS`] of them, and
/// the message itself would keep its whole payload, and the network buffer it came in, alive.
/// Its headers (the client's own strings) are kept as they came, or their first [`KEEP_BYTES`].
struct Raw {
    seq: u64,
    at_ms: f64,
    msg: Message,
    /// The payload's length as it came.
    size: usize,
    /// Its headers as it came (the status line aside).
    headers: usize,
}

/// A log row as shown.
#[derive(Debug)]
struct Row {
    seq: u64,
    time: String,
    subject: String,
    reply: String,
    /// Headers as the message came (the status line aside).
    headers: usize,
    /// The header line's status, as `503 No Responders`.
    status: Option<String>,
    /// The headers kept (see [`Raw`]), listed only when the row is expanded.
    header_map: Option<HeaderMap>,
    size: usize,
    preview: String,
    /// The payload's first [`KEEP_BYTES`], copied (so no network frame stays alive for it).
    payload: Bytes,
}

impl Row {
    fn new(raw: Raw) -> Row {
        let Raw {
            seq,
            at_ms,
            msg,
            size,
            headers,
        } = raw;
        let payload = &msg.payload;
        let header_map = msg.headers;
        Row {
            seq,
            time: time_of_day(at_ms, true),
            subject: msg.subject.to_string(),
            reply: msg
                .reply
                .as_ref()
                .map(|r| r.to_string())
                .unwrap_or_default(),
            headers,
            status: header_map.as_ref().and_then(status_of),
            header_map,
            size,
            preview: row_preview(payload, size),
            payload: payload.clone(),
        }
    }
}

/// The status of a header line, as `503 No Responders`.
fn status_of(headers: &HeaderMap) -> Option<String> {
    let code = headers.status()?;
    Some(match headers.description() {
        Some(text) => format!("{code} {text}"),
        None => code.to_string(),
    })
}

/// The most headers a log row keeps: each is two strings in memory, so 64 KiB of short ones on
/// the wire (`a:1`) would be ten times that held.
const KEEP_HEADERS: usize = 256;

/// What a kept header costs beyond its bytes: its two strings' bookkeeping and allocations.
const HEADER_OVERHEAD: usize = 48;

/// The first [`KEEP_HEADERS`] headers of `headers` whose names and values (with
/// [`HEADER_OVERHEAD`] each) fit in [`KEEP_BYTES`], with its status line (a header map's status
/// is only ever read from one).
fn kept_headers(headers: &HeaderMap) -> HeaderMap {
    let line = match (headers.status(), headers.description()) {
        (Some(code), Some(text)) => format!("NATS/1.0 {code} {text}\r\n\r\n"),
        (Some(code), None) => format!("NATS/1.0 {code}\r\n\r\n"),
        (None, _) => "NATS/1.0\r\n\r\n".to_owned(),
    };
    let mut kept = HeaderMap::parse(line.as_bytes()).unwrap_or_default();
    let mut left = KEEP_BYTES;
    for (name, value) in headers.iter().take(KEEP_HEADERS) {
        let Some(rest) = left.checked_sub(header_bytes(name, value) + HEADER_OVERHEAD) else {
            break;
        };
        left = rest;
        kept.append(name, value);
    }
    kept
}

/// What a header counts for in the totals, as on the wire: `Name: value\r\n`.
fn header_bytes(name: &str, value: &str) -> usize {
    name.len() + value.len() + 4
}

/// A log row's preview of `payload`, the beginning of `size` bytes: text judged by what is valid
/// up to the cut, as the expanded view does.
fn row_preview(payload: &[u8], size: usize) -> String {
    let text = crate::model::text_of(payload, size > payload.len());
    preview(text.map_or(payload, str::as_bytes), PREVIEW_CHARS)
}

/// What the subscription task writes for every message, outside the reactive system.
#[derive(Default)]
struct Acc {
    stats: MonitorStats,
    /// Messages for the log since the last redraw, oldest first, at most [`LOG_ROWS`].
    fresh: VecDeque<Raw>,
    /// The log as shown, newest first.
    shown: Vec<Arc<Row>>,
    seq: u64,
    paused: bool,
    filter: Option<String>,
    sort: Sort,
    /// Dropped by the client (a subscription over its pending limit) since Clear: by the
    /// subscriptions that have ended, plus the current ones' count less what they had at Clear.
    dropped_ended: u64,
    dropped_live: u64,
    dropped_live_at_clear: u64,
    frame: Option<AnimationFrameRequestHandle>,
    /// The wait for [`DRAW_EVERY_MS`] to pass since `drawn_ms`, before a frame is asked for.
    timer: Option<TimeoutHandle>,
    /// The last redraw, on the monotonic clock.
    drawn_ms: f64,
    log_drawn_ms: f64,
    /// The last redraw showed only the newest [`LOG_ROWS_BUSY`] rows of `shown`.
    trimmed: bool,
    /// The pause before the next log redraw: [`LOG_EVERY_MS`] or [`LOG_BUSY_EVERY_MS`].
    log_every_ms: f64,
    table_drawn_ms: f64,
    /// The message count the table was drawn at: behind the total, it needs another frame.
    table_messages: u64,
    /// The log or the table must be redrawn whatever the time (cleared, filtered, re-sorted).
    force: bool,
}

impl Acc {
    fn on_message(&mut self, mut msg: Message, now: f64) {
        let header_size = msg.headers.as_ref().map_or(0, |h| {
            h.iter().map(|(k, v)| header_bytes(k, v)).sum::<usize>()
        });
        self.stats
            .record(&msg.subject, msg.payload.len() + header_size, now);
        self.seq += 1;
        if self.paused || self.filter.as_deref().is_some_and(|f| f != &*msg.subject) {
            return;
        }
        if self.fresh.len() == LOG_ROWS {
            self.fresh.pop_front();
        }
        let size = msg.payload.len();
        msg.payload = Bytes::copy_from_slice(&msg.payload[..size.min(KEEP_BYTES)]);
        // The subject and reply are slices of the same network buffer: copied too.
        msg.subject = msg.subject.as_str().into();
        msg.reply = msg.reply.as_ref().map(|r| r.as_str().into());
        let headers = msg.headers.as_ref().map_or(0, HeaderMap::len);
        if header_size + headers * HEADER_OVERHEAD > KEEP_BYTES || headers > KEEP_HEADERS {
            msg.headers = msg.headers.as_ref().map(kept_headers);
        }
        self.fresh.push_back(Raw {
            seq: self.seq,
            at_ms: now,
            msg,
            size,
            headers,
        });
    }

    fn clear(&mut self) {
        self.stats = MonitorStats::default();
        self.fresh.clear();
        self.shown.clear();
        self.dropped_ended = 0;
        self.dropped_live_at_clear = self.dropped_live;
        self.force = true;
    }

    fn dropped(&self) -> u64 {
        self.dropped_ended + self.dropped_live.saturating_sub(self.dropped_live_at_clear)
    }

    /// The subscriptions were replaced: what they dropped is kept, their counters start over.
    fn new_subscriptions(&mut self) {
        self.dropped_ended = self.dropped();
        self.dropped_live = 0;
        self.dropped_live_at_clear = 0;
    }

    fn set_filter(&mut self, filter: Option<String>) {
        if let Some(f) = &filter {
            self.shown.retain(|r| &r.subject == f);
            self.fresh.retain(|r| &*r.msg.subject == f);
        }
        self.filter = filter;
        self.force = true;
    }
}

/// Totals as the page shows them; one signal update per frame.
#[derive(Clone, Debug, Default, PartialEq)]
struct Totals {
    messages: u64,
    bytes: u64,
    rate_msgs: u64,
    rate_bytes: u64,
    history: Vec<u64>,
    dropped: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct Table {
    rows: Vec<SubjectRow>,
    subjects: usize,
    other: u64,
    other_rate: u64,
}

/// The handles the frame callback needs (all `Copy`).
#[derive(Clone, Copy)]
struct Ui {
    acc: StoredValue<Acc, LocalStorage>,
    totals: RwSignal<Totals>,
    rows: RwSignal<Vec<Arc<Row>>>,
    table: RwSignal<Table>,
}

impl Ui {
    /// Asks for a redraw: at the next animation frame if the last one is [`DRAW_EVERY_MS`] ago or
    /// one is forced (a click: cleared, filtered, re-sorted), else once that time is up. Nothing if
    /// one is asked for already.
    fn schedule(self) {
        let Some(Some(wait)) = self.acc.try_update_value(|a| {
            if a.frame.is_some() {
                return None;
            }
            if a.force {
                if let Some(timer) = a.timer.take() {
                    timer.clear();
                }
                return Some(0.0);
            }
            if a.timer.is_some() {
                return None;
            }
            Some(a.drawn_ms + DRAW_EVERY_MS - monotonic_ms())
        }) else {
            return;
        };
        if wait <= 0.0 {
            self.ask_frame();
            return;
        }
        let after = Duration::from_millis(wait.ceil() as u64);
        let timer = set_timeout_with_handle(
            move || {
                if let Some(true) = self.acc.try_update_value(|a| a.timer.take().is_some()) {
                    self.ask_frame();
                }
            },
            after,
        );
        if let Ok(timer) = timer {
            self.acc.update_value(|a| a.timer = Some(timer));
        }
    }

    fn ask_frame(self) {
        if let Ok(handle) = request_animation_frame_with_handle(move || self.draw()) {
            self.acc.update_value(|a| a.frame = Some(handle));
        }
    }

    /// One frame: copies what changed into the signals.
    fn draw(self) {
        let now = now_ms();
        // The pace of redraws on the monotonic clock: the wall clock set back would hold them
        // (and ask for a frame each frame) until it caught up.
        let pace = monotonic_ms();
        let Some((totals, rows, table, again)) = self.acc.try_update_value(|a| {
            a.frame = None;
            a.drawn_ms = pace;
            a.stats.tick(now);
            let rate = a.stats.rate();
            let totals = Totals {
                messages: a.stats.messages,
                bytes: a.stats.bytes,
                rate_msgs: rate.msgs,
                rate_bytes: rate.bytes,
                history: a.stats.history(),
                dropped: a.dropped(),
            };
            let log_due = a.force || pace - a.log_drawn_ms >= a.log_every_ms;
            let rows = (log_due && (a.force || a.trimmed || !a.fresh.is_empty())).then(|| {
                let fresh: Vec<Arc<Row>> = a
                    .fresh
                    .drain(..)
                    .rev()
                    .map(|r| Arc::new(Row::new(r)))
                    .collect();
                let keep = LOG_ROWS.saturating_sub(fresh.len());
                a.shown.truncate(keep);
                let busy = fresh.len() > LOG_ROWS / 2;
                a.log_every_ms = if busy {
                    LOG_BUSY_EVERY_MS
                } else {
                    LOG_EVERY_MS
                };
                a.shown.splice(0..0, fresh);
                a.log_drawn_ms = pace;
                let drawn = if busy { LOG_ROWS_BUSY } else { LOG_ROWS };
                a.trimmed = a.shown.len() > drawn;
                a.shown[..a.shown.len().min(drawn)].to_vec()
            });
            let table = (a.force || pace - a.table_drawn_ms >= TABLE_EVERY_MS).then(|| {
                a.table_drawn_ms = pace;
                a.table_messages = a.stats.messages;
                Table {
                    rows: a.stats.subject_rows(a.sort, now, TABLE_ROWS),
                    subjects: a.stats.subject_count(),
                    other: a.stats.other.count,
                    other_rate: a.stats.other.rate(now),
                }
            });
            a.force = false;
            // Rows held back by the log's pace, or a table behind the counts, need another frame.
            let again = !a.fresh.is_empty() || a.trimmed || a.stats.messages != a.table_messages;
            (totals, rows, table, again)
        }) else {
            return;
        };
        if self.totals.with_untracked(|t| *t != totals) {
            self.totals.set(totals);
        }
        if let Some(rows) = rows {
            self.rows.set(rows);
        }
        if let Some(table) = table {
            if self.table.with_untracked(|t| *t != table) {
                self.table.set(table);
            }
        }
        if again {
            self.schedule();
        }
    }
}

fn format_count(n: u64) -> String {
    n.to_string()
}

/// The page's state, for as long as the page is open (all `Copy`).
#[derive(Clone, Copy)]
struct State {
    ui: Ui,
    input: RwSignal<String>,
    error: RwSignal<Option<String>>,
    /// The subjects subscribed to; still set while a new connection replaces the old one.
    running: RwSignal<Option<Vec<String>>>,
    /// What Start asked for, kept until Stop: a new connection (a sign-in in ⚙, which the
    /// refusal of a subject advises) subscribes to all of it again, what the last one refused too.
    wanted: RwSignal<Option<Vec<String>>>,
    /// What Start left out of what was typed (a subject another covers), or that two overlap.
    note: RwSignal<Option<String>>,
    paused: RwSignal<bool>,
    filter: RwSignal<Option<String>>,
    sort: RwSignal<Sort>,
    /// Connection losses while subscribed: core NATS keeps nothing for a disconnected
    /// subscriber, so whatever was published meanwhile is missing from the counts, and the page
    /// says so.
    interruptions: RwSignal<u32>,
}

impl State {
    fn new() -> State {
        State {
            ui: Ui {
                acc: StoredValue::new_local(Acc::default()),
                totals: RwSignal::new(Totals::default()),
                rows: RwSignal::new(Vec::new()),
                table: RwSignal::new(Table::default()),
            },
            input: RwSignal::new(">".to_owned()),
            error: RwSignal::new(None),
            running: RwSignal::new(None),
            wanted: RwSignal::new(None),
            note: RwSignal::new(None),
            paused: RwSignal::new(false),
            filter: RwSignal::new(None),
            sort: RwSignal::new(Sort::default()),
            interruptions: RwSignal::new(0),
        }
    }
}

#[component]
fn Monitor(client: Client, state: State) -> impl IntoView {
    let State {
        ui,
        input,
        error,
        running,
        wanted,
        note,
        paused,
        filter,
        sort,
        interruptions,
    } = state;
    let status = use_nats().status;
    // Rows of the log in the page (see `LOG_WINDOW`).
    let in_page = RwSignal::new(LOG_WINDOW);
    // The subscription's task: this connection's.
    let task = StoredValue::new_local(None::<AbortHandle>);
    {
        let client = client.clone();
        spawn_while_mounted(async move {
            // Counted when the connection goes from connected to not: a cluster's servers tried
            // one after the other each start at attempt 1, for one loss.
            let mut statuses = client.status_stream();
            let mut was_connected = false;
            while let Some(status) = statuses.next().await {
                let connected = status.is_connected();
                let lost = was_connected && !connected && !matches!(status, Status::Closed);
                if lost && running.with_untracked(Option::is_some) {
                    interruptions.update(|n| *n += 1);
                }
                was_connected = connected;
            }
        });
    }

    // Rates fall and the sparkline moves on even when no message comes.
    if let Ok(tick) = set_interval_with_handle(move || ui.schedule(), Duration::from_millis(500)) {
        on_cleanup(move || tick.clear());
    }
    on_cleanup(move || {
        if let Some(Some(handle)) = task.try_update_value(Option::take) {
            handle.abort();
        }
        if let Some((frame, timer)) = ui
            .acc
            .try_update_value(|a| (a.frame.take(), a.timer.take()))
        {
            if let Some(frame) = frame {
                frame.cancel();
            }
            if let Some(timer) = timer {
                timer.clear();
            }
        }
    });

    let stop = move || {
        if let Some(Some(handle)) = task.try_update_value(Option::take) {
            handle.abort();
        }
        running.set(None);
    };

    let subscribe = {
        let client = client.clone();
        // Whether it is subscribed.
        move |subjects: Vec<String>| -> bool {
            stop();
            wanted.set(Some(subjects.clone()));
            let options = SubscribeOptions::default().pending_limits(PENDING_MSGS, PENDING_BYTES);
            let mut subs = Vec::new();
            for subject in &subjects {
                match client.subscribe_with_options(subject, options.clone()) {
                    // Each item with its subject: a refused one is no longer shown as subscribed.
                    Ok(sub) => {
                        let subject: std::rc::Rc<str> = subject.as_str().into();
                        subs.push(sub.map(move |item| (subject.clone(), item)));
                    }
                    Err(e) => {
                        error.set(Some(crate::session::explain(format!(
                            "Could not subscribe to {subject}: {e}"
                        ))));
                        return false;
                    }
                }
            }
            error.set(None);
            running.set(Some(subjects));
            ui.acc.update_value(Acc::new_subscriptions);
            let (handle, registration) = AbortHandle::new_pair();
            task.set_value(Some(handle));
            let mut stream = select_all(subs);
            let client = client.clone();
            spawn_local(async move {
                let _ = Abortable::new(
                    async move {
                        while let Some((subject, item)) = stream.next().await {
                            match item {
                                Ok(msg) => {
                                    let dropped: u64 =
                                        stream.iter().map(|s| s.get_ref().dropped()).sum();
                                    let alive = ui.acc.try_update_value(|a| {
                                        a.on_message(msg, now_ms());
                                        a.dropped_live = dropped;
                                    });
                                    if alive.is_none() {
                                        return;
                                    }
                                    ui.schedule();
                                }
                                // Ended by the connection's replacement: the page goes on
                                // with the next one.
                                Err(_) if client.status() == Status::Closed => return,
                                Err(e) => {
                                    error.try_set(Some(crate::session::explain(format!(
                                        "The subscription to {subject} ended: {e}"
                                    ))));
                                    running.try_update(|list| {
                                        if let Some(list) = list {
                                            list.retain(|s| **s != *subject);
                                        }
                                    });
                                }
                            }
                        }
                        if client.status() != Status::Closed {
                            running.try_set(None);
                        }
                        ui.schedule();
                    },
                    registration,
                )
                .await;
            });
            true
        }
    };
    let start = {
        let subscribe = subscribe.clone();
        move || match parse_subjects(&input.get_untracked()) {
            Ok((subjects, left_out)) => {
                if subscribe(subjects) {
                    note.set(left_out);
                }
            }
            Err(e) => error.set(Some(format!("Invalid subject: {e}"))),
        }
    };
    // Subscribed on the connection this one replaced: subscribed again here, to what Start
    // asked for (a subject the last connection refused may be allowed now). What was published
    // in between is missing, as after any lost connection.
    let was_running = running.with_untracked(Option::is_some);
    match wanted.get_untracked() {
        Some(subjects) => {
            if subscribe(subjects) && was_running {
                interruptions.update(|n| *n += 1);
            }
        }
        None => error.set(None),
    }
    // Stop: nothing is subscribed again on the next connection.
    let forget = move || {
        stop();
        wanted.set(None);
        error.set(None);
    };

    let preset = {
        let start = start.clone();
        move |subjects: &'static str| {
            input.set(subjects.to_owned());
            start();
        }
    };
    let toggle_pause = move || {
        let now = !paused.get_untracked();
        paused.set(now);
        ui.acc.update_value(|a| {
            a.paused = now;
            a.force = true;
        });
        ui.schedule();
    };
    let clear = move || {
        interruptions.set(0);
        ui.acc.update_value(Acc::clear);
        ui.schedule();
    };
    let set_filter = move |f: Option<String>| {
        filter.set(f.clone());
        ui.acc.update_value(|a| a.set_filter(f));
        ui.schedule();
    };
    let sort_by = move |key: SortKey| {
        let next = sort.get_untracked().clicked(key);
        sort.set(next);
        ui.acc.update_value(|a| {
            a.sort = next;
            a.force = true;
        });
        ui.schedule();
    };

    let totals = ui.totals;
    let table = ui.table;
    let history_points =
        Memo::new(move |_| totals.with(|t| sparkline_points(&t.history, 240.0, 40.0)));
    let peak = Memo::new(move |_| totals.with(|t| t.history.iter().copied().max().unwrap_or(0)));

    let header = move |key: SortKey, label: &'static str, numeric: bool| {
        let aria = move || {
            let s = sort.get();
            if s.key != key {
                "none"
            } else if s.descending {
                "descending"
            } else {
                "ascending"
            }
        };
        let arrow = move || {
            let s = sort.get();
            match (s.key == key, s.descending) {
                (false, _) => "",
                (true, true) => " ↓",
                (true, false) => " ↑",
            }
        };
        view! {
            <th class:num=numeric aria-sort=aria>
                <button class="link-button" on:click=move |_| sort_by(key)>
                    {label}
                    {arrow}
                </button>
            </th>
        }
    };

    view! {
        <section class="card monitor-controls">
            <div class="row">
                {PRESETS
                    .into_iter()
                    .map(|(id, label, subjects)| {
                        let preset = preset.clone();
                        let pressed = move || {
                            running.with(|r| {
                                r.as_ref().is_some_and(|r| r.join(" ") == subjects)
                            })
                        };
                        view! {
                            <button
                                class="secondary"
                                data-testid=format!("monitor-preset-{id}")
                                aria-pressed=move || pressed().to_string()
                                title=format!("Monitor {subjects}")
                                on:click=move |_| preset(subjects)
                            >
                                {label}
                            </button>
                        }
                    })
                    .collect_view()}
            </div>
            <form
                class="row"
                on:submit={
                    let start = start.clone();
                    move |ev: leptos::ev::SubmitEvent| {
                        ev.prevent_default();
                        start();
                    }
                }
            >
                <label class="monitor-subject">
                    "Subjects"
                    <input
                        data-testid="monitor-subject-input"
                        bind:value=input
                        placeholder="orders.> or a.* b.c"
                        spellcheck="false"
                        autocomplete="off"
                        aria-invalid=move || error.with(Option::is_some).to_string()
                        aria-describedby="monitor-error"
                    />
                </label>
                <button type="submit" data-testid="monitor-start">
                    {move || if running.with(Option::is_some) { "Restart" } else { "Start" }}
                </button>
                <button
                    type="button"
                    class="danger"
                    data-testid="monitor-stop"
                    disabled=move || {
                        running.with(Option::is_none) && wanted.with(Option::is_none)
                    }
                    on:click=move |_| forget()
                >
                    "Stop"
                </button>
                <button
                    type="button"
                    class="secondary"
                    data-testid="monitor-pause"
                    aria-pressed=move || paused.get().to_string()
                    on:click=move |_| toggle_pause()
                >
                    {move || if paused.get() { "Resume" } else { "Pause" }}
                </button>
                <button
                    type="button"
                    class="secondary"
                    data-testid="monitor-clear"
                    on:click=move |_| clear()
                >
                    "Clear"
                </button>
            </form>
            <p id="monitor-error" class="error" role="alert" data-testid="monitor-error" hidden=move || error.with(Option::is_none)>
                {move || error.get()}
            </p>
            <p class="muted small" data-testid="monitor-state">
                {move || match running.get() {
                    Some(subjects) => format!("Subscribed to {}", subjects.join(", ")),
                    None => "Not subscribed.".to_owned(),
                }}
                {move || paused.get().then_some(" · paused: the log is frozen, the counts go on")}
                {move || {
                    (running.with(Option::is_some) && !status.with(|s| s.is_connected()))
                        .then_some(" · not receiving while disconnected")
                }}
            </p>
            <Show when=move || running.with(Option::is_some) && note.with(Option::is_some)>
                <p class="muted small" data-testid="monitor-note">{move || note.get()}</p>
            </Show>
        </section>

        <Show when=move || interruptions.get() != 0>
            <p class="notice-inline" data-testid="monitor-interrupted">
                {move || match interruptions.get() {
                    1 => "The connection was lost once while subscribed".to_owned(),
                    n => format!("The connection was lost {n} times while subscribed"),
                }}
                ": messages published while it was down were not received (core NATS keeps nothing for a subscriber that is away), so the counts miss them."
            </p>
        </Show>
        <section class="card monitor-totals" aria-label="Totals">
            <dl class="monitor-figures">
                <div>
                    <dt>"Messages"</dt>
                    <dd data-testid="monitor-count">{move || format_count(totals.with(|t| t.messages))}</dd>
                </div>
                <div>
                    <dt>"Bytes"</dt>
                    <dd data-testid="monitor-bytes">{move || format_bytes(totals.with(|t| t.bytes))}</dd>
                </div>
                <div>
                    <dt>"Rate (last second)"</dt>
                    <dd data-testid="monitor-rate">
                        {move || {
                            totals.with(|t| {
                                format!("{} msgs/s · {}/s", t.rate_msgs, format_bytes(t.rate_bytes))
                            })
                        }}
                    </dd>
                </div>
                <Show when=move || totals.with(|t| t.dropped > 0)>
                    <div class="monitor-dropped">
                        <dt>"Dropped (slow consumer)"</dt>
                        <dd data-testid="monitor-dropped">{move || format_count(totals.with(|t| t.dropped))}</dd>
                    </div>
                </Show>
            </dl>
            <figure class="monitor-spark">
                <svg
                    viewBox="-2 -2 244 44"
                    width="244"
                    height="44"
                    role="img"
                    aria-label=move || format!("Messages per second over the last {SPARK_SECONDS} s, peak {}", peak.get())
                >
                    <polyline points=move || history_points.get() fill="none" stroke="currentColor" stroke-width="1.5"/>
                </svg>
                <figcaption class="muted small">
                    {move || format!("last {SPARK_SECONDS} s · peak {} msgs/s", peak.get())}
                </figcaption>
            </figure>
        </section>

        <section class="card">
            <div class="card-head">
                <h2>"Subjects"</h2>
                <span class="muted">
                    {move || {
                        table.with(|t| match t.subjects {
                            1 => "1 subject".to_owned(),
                            n => format!("{n} subjects"),
                        })
                    }}
                </span>
            </div>
            <Show
                when=move || table.with(|t| t.subjects > 0 || t.other > 0)
                fallback=|| view! { <p class="empty">"No message yet."</p> }
            >
                <div class="table-wrap monitor-subjects">
                    <table class="monitor-table">
                        <thead>
                            <tr>
                                {header(SortKey::Subject, "Subject", false)}
                                {header(SortKey::Count, "Count", true)}
                                {header(SortKey::Rate, "Rate /s", true)}
                                {header(SortKey::LastSeen, "Last seen", true)}
                            </tr>
                        </thead>
                        <tbody>
                            {move || {
                                let current = filter.get();
                                table
                                    .get()
                                    .rows
                                    .into_iter()
                                    .map(|r| {
                                        let active = current.as_deref() == Some(r.subject.as_str());
                                        let subject = r.subject.clone();
                                        let named = without_bidi(&subject);
                                        let label = if active {
                                            format!("Show all subjects instead of {named}")
                                        } else {
                                            format!("Show only {named} in the log")
                                        };
                                        view! {
                                            <tr data-testid="monitor-subject-row" class:selected=active>
                                                <td>
                                                    <button
                                                        class="link-button mono"
                                                        aria-label=label
                                                        aria-pressed=active.to_string()
                                                        on:click=move |_| {
                                                            set_filter((!active).then(|| subject.clone()))
                                                        }
                                                    >
                                                        {shown(&r.subject)}
                                                    </button>
                                                </td>
                                                <td class="num" data-testid="monitor-subject-count">{r.count}</td>
                                                <td class="num">{r.rate}</td>
                                                <td class="num">{time_of_day(r.last_ms, true)}</td>
                                            </tr>
                                        }
                                    })
                                    .collect_view()
                            }}
                            <Show when=move || table.with(|t| t.other > 0)>
                                <tr class="muted">
                                    <td>{format!("other (subjects dropped from the table: it keeps {MAX_SUBJECTS})")}</td>
                                    <td class="num">{move || table.with(|t| t.other)}</td>
                                    <td class="num">{move || table.with(|t| t.other_rate)}</td>
                                    <td></td>
                                </tr>
                            </Show>
                        </tbody>
                    </table>
                </div>
                <Show when=move || table.with(|t| t.subjects > t.rows.len())>
                    <p class="hint">
                        {move || {
                            table.with(|t| {
                                format!(
                                    "The first {} of {} subjects in this order; sort to see others.",
                                    t.rows.len(),
                                    t.subjects,
                                )
                            })
                        }}
                    </p>
                </Show>
            </Show>
        </section>

        <section class="card">
            <div class="card-head">
                <h2>"Log"</h2>
                <span class="muted">
                    {move || {
                        if ui.rows.with(|r| r.len()) == LOG_ROWS_BUSY && totals.with(|t| t.rate_msgs) > 1000 {
                            format!("newest first: the last {LOG_ROWS_BUSY} while messages pour in (Pause to see {LOG_ROWS})")
                        } else {
                            format!("newest first, the last {LOG_ROWS}")
                        }
                    }}
                </span>
            </div>
            <Show when=move || filter.with(Option::is_some)>
                <p class="monitor-filter" data-testid="monitor-filter">
                    "Only " <code>{move || filter.with(|f| f.as_deref().map(shown))}</code> " "
                    <button class="link-button" data-testid="monitor-filter-clear" on:click=move |_| set_filter(None)>
                        "Show all subjects"
                    </button>
                </p>
            </Show>
            <div class="table-wrap monitor-log" on:scroll=move |ev| log_scrolled(&ev, in_page)>
                <table class="monitor-table">
                    <thead>
                        <tr>
                            <th class="col-time">"Time"</th>
                            <th class="col-subject">"Subject"</th>
                            <th class="col-reply">"Reply"</th>
                            <th class="num col-headers">"Headers"</th>
                            <th class="num col-size">"Size"</th>
                            <th>"Payload"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For
                            each=move || ui.rows.with(|r| r[..r.len().min(in_page.get())].to_vec())
                            key=|row| row.seq
                            let:row
                        >
                            <LogRow row/>
                        </For>
                    </tbody>
                </table>
            </div>
            <Show when=move || ui.rows.with(Vec::is_empty)>
                <p class="empty">
                    {move || if running.with(Option::is_some) { "Waiting for messages…" } else { "Start a subscription to see messages." }}
                </p>
            </Show>
        </section>
    }
}

/// The log's box was scrolled: near the end of the rows in the page, [`LOG_MORE`] more; back near
/// the top, the window again.
fn log_scrolled(ev: &web_sys::Event, in_page: RwSignal<usize>) {
    use wasm_bindgen::JsCast;
    let Some(log) = ev
        .target()
        .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
    else {
        return;
    };
    let (top, height, total) = (log.scroll_top(), log.client_height(), log.scroll_height());
    let shown = in_page.get_untracked();
    if top + height + height / 2 >= total && shown < LOG_ROWS {
        in_page.set((shown + LOG_MORE).min(LOG_ROWS));
    } else if top < height / 2 && shown > LOG_WINDOW {
        in_page.set(LOG_WINDOW);
    }
}

#[component]
fn LogRow(row: Arc<Row>) -> impl IntoView {
    let open = RwSignal::new(false);
    let button = NodeRef::<leptos::html::Button>::new();
    // Escape in the row or its expanded part folds it, and the focus goes back to the row's
    // button (the part it may have been in is gone).
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        if ev.key() == "Escape" && open.get_untracked() {
            ev.prevent_default();
            open.set(false);
            if let Some(button) = button.get_untracked() {
                let _ = button.focus();
            }
        }
    };
    let detail = {
        let row = row.clone();
        move || {
            open.get().then(|| {
                // Formatted here, for the rows someone expands: never per message.
                let status = row.status.as_deref().map(|status| {
                    view! {
                        <p class="monitor-status-line">
                            "Status " <span data-testid="monitor-detail-status">{shown(status)}</span>
                        </p>
                    }
                });
                let kept = row.header_map.as_ref().map_or(0, HeaderMap::len);
                let headers = (kept > 0).then(|| {
                    let list = row.header_map.iter().flat_map(HeaderMap::iter).map(|(name, value)| {
                        view! {
                            <div data-testid="monitor-header">
                                <dt>{shown(name)}</dt>
                                <dd>{shown(value)}</dd>
                            </div>
                        }
                    });
                    view! { <dl class="monitor-headers">{list.collect_view()}</dl> }
                });
                let dropped = (row.headers > kept).then(|| {
                    view! {
                        <p class="muted small">
                            {format!(
                                "… and {} more headers, not kept (a row keeps at most {KEEP_HEADERS}, in {} KiB)",
                                row.headers - kept,
                                KEEP_BYTES / 1024,
                            )}
                        </p>
                    }
                });
                let payload = if row.size > 0 {
                    let text = expanded(&row.payload, row.size);
                    // Focusable: it scrolls, and Escape from within it folds the row.
                    view! { <pre tabindex="0">{shown(&text)}</pre> }.into_any()
                } else {
                    view! { <p class="muted small">"No payload."</p> }.into_any()
                };
                view! {
                    <tr class="monitor-detail" on:keydown=on_key>
                        <td colspan="6">{status} {headers} {dropped} {payload}</td>
                    </tr>
                }
            })
        }
    };
    let label = format!(
        "Show message {} on {} in full",
        row.seq,
        without_bidi(&row.subject)
    );
    let expandable = row.size > 0 || row.headers > 0 || row.status.is_some();
    view! {
        <tr data-testid="monitor-row" on:keydown=on_key>
            <td class="mono nowrap">{row.time.clone()}</td>
            <td class="mono">{shown(&row.subject)}</td>
            <td class="mono">{shown(&row.reply)}</td>
            <td class="num">{row.headers}</td>
            <td class="num">{format_bytes(row.size as u64)}</td>
            <td class="monitor-payload">
                <button
                    class="link-button mono"
                    data-testid="monitor-payload"
                    node_ref=button
                    aria-expanded=move || open.get().to_string()
                    title=label
                    disabled=!expandable
                    on:click=move |_| open.update(|o| *o = !*o)
                >
                    {row.status.as_deref().map(|status| {
                        view! { <span class="monitor-status" data-testid="monitor-status">{shown(status)}</span> }
                    })}
                    {shown(&row.preview)}
                </button>
            </td>
        </tr>
        {detail}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(subject: &str, payload: Vec<u8>) -> Message {
        Message {
            subject: subject.into(),
            reply: None,
            headers: None,
            payload: Bytes::from(payload),
        }
    }

    #[test]
    fn a_log_that_is_not_drawn_keeps_at_most_the_beginning_of_each_payload() {
        let mut acc = Acc::default();
        // Nothing of the buffer a message came in is kept. (The client's subjects are slices of
        // it too, copied alike; it offers no way to make one from a buffer here.)
        let frame = Bytes::copy_from_slice(b"MSG big 3\r\nabc\r\n");
        let mut sliced = message("big", Vec::new());
        sliced.payload = frame.slice(11..14);
        acc.on_message(sliced, 0.0);
        let kept = acc.fresh.pop_back().expect("the message");
        assert_eq!(&kept.msg.payload[..], b"abc");
        assert!(frame.is_unique(), "a slice of the frame is still held");
        // A hidden tab: no frame drains what waits, 1 MiB payloads keep coming.
        for i in 0..LOG_ROWS + 10 {
            acc.on_message(message("big", vec![b'a'; 1 << 20]), i as f64);
        }
        assert_eq!(acc.fresh.len(), LOG_ROWS);
        let kept: usize = acc.fresh.iter().map(|r| r.msg.payload.len()).sum();
        assert_eq!(kept, LOG_ROWS * KEEP_BYTES);
        // What it shows of one: its real size, and text (a character cut at the end is not
        // binary).
        let mut text = "é".repeat(KEEP_BYTES);
        text.push('!');
        acc.on_message(message("text", text.clone().into_bytes()), 0.0);
        let raw = acc.fresh.pop_back().expect("the last message");
        assert_eq!(raw.size, text.len());
        assert_eq!(raw.msg.payload.len(), KEEP_BYTES);
        let shown = row_preview(&raw.msg.payload, raw.size);
        assert!(shown.starts_with("éé"), "{shown}");
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn headers_are_moved_into_the_log_and_at_most_their_first_64_kib_kept() {
        let mut acc = Acc::default();
        let mut msg = message("status", Vec::new());
        msg.headers = Some(HeaderMap::parse(b"NATS/1.0 503 No Responders\r\n\r\n").unwrap());
        acc.on_message(msg, 0.0);
        let raw = acc.fresh.pop_back().expect("the message");
        assert_eq!(raw.headers, 0);
        assert_eq!(
            raw.msg.headers.as_ref().and_then(status_of).as_deref(),
            Some("503 No Responders")
        );

        // 100 headers of 1 KiB under a status line: the first 60 (with the bytes each counts for
        // and what it costs held) are kept, and the status.
        let mut block = b"NATS/1.0 100 Idle Heartbeat\r\n".to_vec();
        for i in 0..100 {
            block.extend_from_slice(format!("H-{i:02}: {}\r\n", "v".repeat(1020)).as_bytes());
        }
        block.extend_from_slice(b"\r\n");
        let mut msg = message("big", b"x".to_vec());
        msg.headers = Some(HeaderMap::parse(&block).unwrap());
        acc.on_message(msg, 0.0);
        assert_eq!(acc.stats.bytes, 1 + 100 * 1028, "counted in full");
        let raw = acc.fresh.pop_back().expect("the message");
        assert_eq!(raw.headers, 100);
        let kept = raw.msg.headers.expect("headers");
        assert_eq!(kept.len(), KEEP_BYTES / (1028 + HEADER_OVERHEAD));
        assert_eq!(kept.iter().last().map(|(n, _)| n), Some("H-59"));
        assert_eq!(status_of(&kept).as_deref(), Some("100 Idle Heartbeat"));
        // 5 000 short ones (a:1, 30 KiB on the wire): the first KEEP_HEADERS.
        let mut block = b"NATS/1.0\r\n".to_vec();
        for i in 0..5000 {
            block.extend_from_slice(format!("a{i}:1\r\n").as_bytes());
        }
        block.extend_from_slice(b"\r\n");
        let mut msg = message("many", b"x".to_vec());
        msg.headers = Some(HeaderMap::parse(&block).unwrap());
        acc.on_message(msg, 0.0);
        let raw = acc.fresh.pop_back().expect("the message");
        assert_eq!(raw.headers, 5000);
        assert_eq!(raw.msg.headers.expect("headers").len(), KEEP_HEADERS);
        let status = HeaderMap::parse(b"NATS/1.0 408\r\nA: b\r\n\r\n").unwrap();
        assert_eq!(status_of(&kept_headers(&status)).as_deref(), Some("408"));
        assert_eq!(
            kept_headers(&status),
            status,
            "what fits is kept as it came"
        );
    }
}
