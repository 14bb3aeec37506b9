//! Queue group: three workers of this tab in queue group `log_workers` on `logs.process` (and
//! those of every other tab on the page); Run publishes 30 log messages and the bars show how many
//! each worker got — the sum is exactly 30, no message twice. Stop a worker and run again: the
//! others take all of it.
//!
//! Each worker says what it got on `logs.process.seen` (`{"worker", "text"}`), so every tab
//! counts every worker, its own and the others'; and every tab counts from the latest run on,
//! whichever tab made it (a message names its run: `log 7 of run 1a2b3c4d`).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use leptos::prelude::*;
use leptos_nats::spawn_while_mounted;
use nats_ws::Client;
use serde::{Deserialize, Serialize};

use super::steps::{refused_publish, within, CardTasks, StepList, StepLog, STEP_TIMEOUT};
use crate::components::pacer::{Paced, Pacer};
use crate::model::parse_json;
use crate::session::random_hex;

pub const SUBJECT: &str = "logs.process";
pub const QUEUE: &str = "log_workers";
pub const SEEN: &str = "logs.process.seen";
const MESSAGES: usize = 30;
const WORKERS: usize = 3;
/// How long Run waits for every message to be reported.
const SETTLE: Duration = Duration::from_secs(3);

/// What a worker reports for each message it got.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seen {
    pub worker: String,
    pub text: String,
}

/// Any client may report on [`SEEN`]: what a tally keeps of them is bounded. Other tabs' workers
/// beyond this many are not counted, nor are names longer than [`MAX_NAME`]; this tab's own
/// workers always are.
pub const MAX_WORKERS: usize = 32;
pub const MAX_NAME: usize = 64;
/// Messages told apart (to find the ones that came twice); later ones are counted, not compared,
/// nor are texts longer than [`MAX_TEXT`].
pub const MAX_TEXTS: usize = 4096;
pub const MAX_TEXT: usize = 256;

/// Runs remembered as over: a late report of one is not counted into the run after it.
const EARLIER_RUNS: usize = 16;

/// The reports since the last run: per worker how many, and which messages came more than once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub per_worker: BTreeMap<String, usize>,
    pub per_text: BTreeMap<String, usize>,
    /// This tab's workers: counted even when others' names came first and filled the places.
    pub own: Vec<String>,
    /// The run counted, once one was seen.
    pub run: Option<String>,
    /// The runs before it, newest last.
    earlier: Vec<String>,
}

/// The run a message of one names (`log 7 of run 1a2b3c4d`).
fn run_of(text: &str) -> Option<&str> {
    let (_, run) = text.rsplit_once(" of run ")?;
    (run.len() == 8 && run.bytes().all(|b| b.is_ascii_hexdigit())).then_some(run)
}

impl Tally {
    /// An empty tally for a tab whose workers are `own`.
    pub fn of(own: Vec<String>) -> Tally {
        Tally {
            own,
            ..Tally::default()
        }
    }

    /// Counting starts over, for `run`: a new run, this tab's or another's.
    pub fn start_run(&mut self, run: String) {
        let mut earlier = std::mem::take(&mut self.earlier);
        earlier.extend(self.run.take());
        if earlier.len() > EARLIER_RUNS {
            earlier.remove(0);
        }
        *self = Tally {
            own: std::mem::take(&mut self.own),
            run: Some(run),
            earlier,
            ..Tally::default()
        };
    }

    /// Counts a report, unless it is from a worker beyond the bounds or of a run before the one
    /// counted; one of a run not seen before starts the count over (messages of no run, from
    /// another publisher, count into the current one).
    pub fn add(&mut self, seen: Seen) {
        if let Some(run) = run_of(&seen.text) {
            if self.run.as_deref() != Some(run) {
                if self.earlier.iter().any(|r| r == run) {
                    return;
                }
                self.start_run(run.to_owned());
            }
        }
        let own = self.own.contains(&seen.worker);
        let known = own || self.per_worker.contains_key(&seen.worker);
        if seen.worker.len() > MAX_NAME || (!known && self.others() >= MAX_WORKERS) {
            return;
        }
        *self.per_worker.entry(seen.worker).or_default() += 1;
        if seen.text.len() <= MAX_TEXT
            && (self.per_text.len() < MAX_TEXTS || self.per_text.contains_key(&seen.text))
        {
            *self.per_text.entry(seen.text).or_default() += 1;
        }
    }

    /// How many workers of other tabs are counted.
    fn others(&self) -> usize {
        self.per_worker
            .keys()
            .filter(|w| !self.own.contains(w))
            .count()
    }

    pub fn total(&self) -> usize {
        self.per_worker.values().sum()
    }

    /// Messages that reached more than one worker.
    pub fn twice(&self) -> usize {
        self.per_text.values().filter(|n| **n > 1).count()
    }

    /// `11 · 9 · 10`-style summary: `worker got n`, by worker.
    pub fn summary(&self) -> String {
        self.per_worker
            .iter()
            .map(|(w, n)| format!("{w} got {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One of this tab's workers.
#[derive(Clone, Copy)]
struct Worker {
    id: StoredValue<String>,
    running: RwSignal<bool>,
    /// Dropping it stops the worker's task (and its subscription).
    stop: StoredValue<Option<futures::channel::oneshot::Sender<()>>>,
    tasks: CardTasks,
}

impl Worker {
    fn start(self, client: Client, error: RwSignal<Option<String>>) {
        if self.running.get_untracked() {
            return;
        }
        let id = self.id.get_value();
        let mut sub = match client.queue_subscribe(SUBJECT, QUEUE) {
            Ok(sub) => sub,
            Err(e) => {
                error.set(Some(format!("worker {id} could not join {QUEUE}: {e}")));
                return;
            }
        };
        let (tx, rx) = futures::channel::oneshot::channel::<()>();
        self.stop.set_value(Some(tx));
        self.running.set(true);
        let running = self.running;
        self.tasks.spawn(async move {
            let mut stopped = rx.fuse();
            loop {
                futures::select! {
                    _ = stopped => break,
                    message = sub.next().fuse() => match message {
                        Some(Ok(message)) => {
                            let seen = Seen {
                                worker: id.clone(),
                                text: String::from_utf8_lossy(&message.payload).into_owned(),
                            };
                            if let Ok(body) = serde_json::to_vec(&seen) {
                                let _ = client.publish(SEEN, body);
                            }
                        }
                        Some(Err(e)) => {
                            error.try_set(Some(format!("worker {id}: {e}")));
                            break;
                        }
                        None => break,
                    },
                }
            }
            drop(sub);
            running.try_set(false);
        });
    }

    fn stop(self) {
        self.stop.update_value(|s| drop(s.take()));
    }
}

#[component]
pub fn QueueCard(client: Client) -> impl IntoView {
    let log = StepLog::new();
    let tasks = CardTasks::new();
    let error = RwSignal::new(None::<String>);
    let running = RwSignal::new(false);
    let tab = random_hex(4);
    let workers: Vec<Worker> = (1..=WORKERS)
        .map(|n| Worker {
            id: StoredValue::new(format!("{tab}-{n}")),
            running: RwSignal::new(false),
            stop: StoredValue::new(None),
            tasks,
        })
        .collect();
    let mine: Vec<String> = workers.iter().map(|w| w.id.get_value()).collect();
    let tally = RwSignal::new(Tally::of(mine.clone()));

    // Every worker's reports, this tab's and the others'.
    {
        let client = client.clone();
        spawn_while_mounted(async move {
            let mut sub = match client.subscribe(SEEN) {
                Ok(sub) => sub,
                Err(e) => {
                    error.set(Some(format!("cannot count the workers' messages: {e}")));
                    return;
                }
            };
            // Counted at most once a frame: `logs.process` is a shared subject, and a busy one
            // (every report its own frame) would otherwise redraw the card for each message.
            let mut waiting = Vec::new();
            let mut pacer = Pacer::default();
            let count = |waiting: &mut Vec<Seen>| {
                tally.try_update(|t| waiting.drain(..).for_each(|seen| t.add(seen)));
            };
            loop {
                match pacer.next(&mut sub, !waiting.is_empty()).await {
                    Paced::Item(Ok(message)) => {
                        waiting.extend(parse_json::<Seen>(&message.payload));
                        if pacer.due() {
                            count(&mut waiting);
                            pacer.drawn();
                        }
                    }
                    Paced::Item(Err(_)) => {}
                    Paced::Draw => {
                        count(&mut waiting);
                        pacer.drawn();
                    }
                    Paced::Ended => break count(&mut waiting),
                }
            }
        });
    }
    for w in &workers {
        w.start(client.clone(), error);
    }

    let run = {
        let client = client.clone();
        move |_| {
            if running.get_untracked() {
                return;
            }
            running.set(true);
            // What went wrong before is not this run's.
            error.set(None);
            log.start();
            let own = tally.with_untracked(|t| t.own.clone());
            let run = random_hex(8);
            tally.update(|t| t.start_run(run.clone()));
            let client = client.clone();
            tasks.spawn(async move {
                publish_and_count(&client, log, own, run).await;
                running.try_set(false);
            });
        }
    };

    // One row per worker, kept while reports come in (a click on a row's button is never on a
    // row being replaced): only the counts change.
    let names = Memo::new(move |_| {
        tally.with(|t| {
            let mut names = mine.clone();
            names.extend(t.per_worker.keys().filter(|k| !mine.contains(k)).cloned());
            names
        })
    });
    let max = Memo::new(move |_| {
        tally.with(|t| t.per_worker.values().copied().max().unwrap_or(0).max(1))
    });
    let bar = move |name: String| {
        let n = {
            let name = name.clone();
            Memo::new(move |_| tally.with(|t| t.per_worker.get(&name).copied().unwrap_or(0)))
        };
        let own = workers.iter().find(|w| w.id.get_value() == name).copied();
        view! { <Bar name n max own client=client.clone() error/> }
    };

    view! {
        <section class="card pg-card" aria-labelledby="pg-queue-title">
            <div class="card-head">
                <h2 id="pg-queue-title">"2 · Queue group"</h2>
                <button data-testid="pg-queue-run" on:click=run disabled=move || running.get()>
                    {move || if running.get() { "Publishing…" } else { "Publish 30" }}
                </button>
            </div>
            <p class="muted small">
                "Workers in queue group " <code>{QUEUE}</code> " on " <code>{SUBJECT}</code>
                ": the server gives each message to one of them. Three run in this tab; other tabs on this page add theirs."
            </p>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert">{move || error.get()}</p>
            </Show>
            <ul class="pg-bars">
                <For each=move || names.get() key=|name| name.clone() children=bar/>
            </ul>
            <p class="pg-total" data-testid="pg-queue-total">
                {move || {
                    tally.with(|t| {
                        format!("{} received by {} workers · {} twice", t.total(), t.per_worker.len(), t.twice())
                    })
                }}
            </p>
            <StepList log testid="pg-queue-step"/>
        </section>
    }
}

#[component]
fn Bar(
    name: String,
    n: Memo<usize>,
    max: Memo<usize>,
    own: Option<Worker>,
    client: Client,
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let width = move || format!("width: {:.1}%", n.get() as f64 * 100.0 / max.get() as f64);
    let toggle = own.map(|w| {
        let client = client.clone();
        let name = name.clone();
        // Named by its worker for a screen reader, which hears the buttons out of their rows.
        let label = {
            let name = name.clone();
            move || format!("{} {name}", if w.running.get() { "Stop" } else { "Start" })
        };
        view! {
            <button
                class="secondary small"
                aria-label=label
                data-testid=format!("pg-queue-toggle-{name}")
                on:click=move |_| if w.running.get_untracked() { w.stop() } else { w.start(client.clone(), error) }
            >
                {move || if w.running.get() { "Stop" } else { "Start" }}
            </button>
        }
    });
    let whose = if own.is_some() {
        "this tab"
    } else {
        "another tab"
    };
    let stopped = move || own.is_some_and(|w| !w.running.get());
    view! {
        <li class="pg-bar-row" class:stopped=stopped>
            <span class="pg-bar-name">{name.clone()} <span class="muted small">" · " {whose}</span></span>
            <span class="pg-bar-track">
                <span class="pg-bar" style=width data-testid=format!("pg-queue-bar-{name}")>{move || n.get()}</span>
            </span>
            {toggle}
        </li>
    }
}

/// Publishes 30 messages and counts the workers' reports on a subscription of its own, until all
/// 30 are in (or [`SETTLE`] passes); this tab's workers, `own`, are counted whatever else reports.
async fn publish_and_count(client: &Client, log: StepLog, own: Vec<String>, run: String) {
    let mut reports = match client.subscribe(SEEN) {
        Ok(sub) => sub,
        Err(e) => return log.fail("tab → server", format!("SUB {SEEN} refused: {e}")),
    };
    match within(client.flush()).await {
        Some(Ok(())) => {}
        Some(Err(e)) => return log.fail("tab → server", format!("not connected: {e}")),
        None => {
            return log.fail(
                "tab → server",
                format!(
                    "the server did not answer within {} s: is it down? (nothing was published)",
                    STEP_TIMEOUT.as_secs()
                ),
            )
        }
    }
    // A refused publish (the run's, or a worker's report) has no answer: the server says so in
    // an -ERR, told among the events.
    let refused = refused_publish(client.events(), &[SUBJECT, SEEN]).fuse();
    futures::pin_mut!(refused);
    for i in 1..=MESSAGES {
        if let Err(e) = client.publish(SUBJECT, format!("log {i} of run {run}")) {
            return log.fail("tab → server", format!("PUB {SUBJECT} #{i} failed: {e}"));
        }
    }
    log.info(
        "tab → server",
        format!("PUB {SUBJECT} × {MESSAGES} (run {run})"),
    );
    let mut tally = Tally::of(own);
    let mut deadline = gloo_timers::future::sleep(SETTLE).fuse();
    while tally.total() < MESSAGES {
        futures::select! {
            report = reports.next().fuse() => match report {
                Some(Ok(message)) => {
                    if let Some(seen) = parse_json::<Seen>(&message.payload) {
                        if seen.text.ends_with(&format!("of run {run}")) {
                            tally.add(seen);
                        }
                    }
                }
                Some(Err(e)) => return log.fail("server → tab", format!("{SEEN}: {e}")),
                None => break,
            },
            // Announced by the card even though the app's note may say it too: that note is said
            // once a minute per subject, and a second run's refusal would go unsaid.
            why = refused => {
                return log.fail("server → tab", format!("-ERR: {why}"));
            }
            _ = deadline => break,
        }
    }
    if tally.total() == 0 {
        return log.fail(
            "server → workers",
            "no worker got anything within 3 s: start a worker",
        );
    }
    log.ok("server → workers", tally.summary());
    let text = format!(
        "{} of {MESSAGES} received by {} workers, {} twice",
        tally.total(),
        tally.per_worker.len(),
        tally.twice()
    );
    if tally.total() == MESSAGES && tally.twice() == 0 {
        log.ok("workers", text);
    } else {
        log.fail("workers", text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(worker: &str, text: &str) -> Seen {
        Seen {
            worker: worker.into(),
            text: text.into(),
        }
    }

    /// Every tab counts the latest run, whichever tab made it: a tab that did not make it showed a
    /// running total beside the other's 30.
    #[test]
    fn a_new_run_starts_the_count_over_and_a_late_report_of_the_last_one_is_not_counted() {
        let mut t = Tally::of(vec!["mine-1".into()]);
        t.add(seen("other-1", "log 1 of run 0000000a"));
        t.add(seen("mine-1", "log 2 of run 0000000a"));
        assert_eq!((t.total(), t.run.as_deref()), (2, Some("0000000a")));
        t.add(seen("other-1", "log 1 of run 0000000b"));
        assert_eq!((t.total(), t.run.as_deref()), (1, Some("0000000b")));
        assert_eq!(t.own, ["mine-1"]);
        t.add(seen("mine-1", "log 3 of run 0000000a"));
        assert_eq!(t.total(), 1, "a late report of the run before");
        // Another publisher's messages name no run: counted into the current one.
        t.add(seen("mine-1", "nats-py log 4"));
        t.add(seen("mine-1", "log 5 of run not-a-run"));
        assert_eq!((t.total(), t.run.as_deref()), (3, Some("0000000b")));
        // This tab's own run, started before its first report.
        t.start_run("0000000c".into());
        t.add(seen("mine-1", "log 1 of run 0000000c"));
        assert_eq!((t.total(), t.run.as_deref()), (1, Some("0000000c")));
        // What is remembered of earlier runs is bounded.
        for i in 0..100 {
            t.start_run(format!("{i:08x}"));
        }
        assert_eq!(t.earlier.len(), EARLIER_RUNS);
    }

    #[test]
    fn counts_per_worker_and_finds_repeats() {
        let mut t = Tally::default();
        t.add(seen("a-1", "log 1"));
        t.add(seen("a-2", "log 2"));
        t.add(seen("a-1", "log 3"));
        assert_eq!(t.total(), 3);
        assert_eq!(t.twice(), 0);
        assert_eq!(t.summary(), "a-1 got 2, a-2 got 1");
        t.add(seen("b-1", "log 3"));
        assert_eq!(t.twice(), 1);
    }

    /// Anyone may report: a flood of names and texts stays bounded, and the known workers are
    /// still counted.
    #[test]
    fn what_a_tally_keeps_is_bounded() {
        let mut t = Tally::default();
        t.add(seen("a-1", "log 1"));
        for i in 0..10_000 {
            t.add(seen(&format!("flood-{i}"), &format!("text {i}")));
        }
        t.add(seen(&"x".repeat(MAX_NAME + 1), "long name"));
        t.add(seen("a-1", &"y".repeat(MAX_TEXT + 1)));
        t.add(seen("a-1", "log 1"));
        assert_eq!(t.per_worker.len(), MAX_WORKERS);
        assert_eq!(t.per_worker["a-1"], 3);
        assert!(t.per_text.len() <= MAX_TEXTS);
        assert_eq!(t.per_text["log 1"], 2, "a known text is still compared");
        assert_eq!(t.total(), MAX_WORKERS - 1 + 3);
    }

    /// Others' names fill the places first: this tab's workers are still counted.
    #[test]
    fn this_tabs_workers_are_counted_whatever_came_first() {
        let mut t = Tally::of(vec!["mine-1".into(), "mine-2".into()]);
        for i in 0..100 {
            t.add(seen(&format!("other-{i}"), &format!("text {i}")));
        }
        assert_eq!(t.per_worker.len(), MAX_WORKERS);
        t.add(seen("mine-1", "log 1"));
        t.add(seen("mine-2", "log 2"));
        t.add(seen("mine-2", "log 3"));
        t.add(seen("other-99", "log 4"));
        assert_eq!(t.per_worker.len(), MAX_WORKERS + 2);
        assert_eq!((t.per_worker["mine-1"], t.per_worker["mine-2"]), (1, 2));
        assert!(!t.per_worker.contains_key("other-99"));
    }
}
