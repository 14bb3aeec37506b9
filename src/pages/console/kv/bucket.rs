//! One open bucket: its keys live (a watch, drawn at most once a frame with the last change of
//! each key), the first [`ROW_LIMIT`] keys matching the filter drawn, the open key's
//! value in full and its history, and the editor (put, create, update at the revision loaded,
//! delete, purge). An update that finds the key changed shows both values and writes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use leptos::prelude::*;

use crate::pages::console::bidi::shown;
use leptos::task::spawn_local;
use leptos_nats::spawn_while_mounted;
use nats_ws::jetstream::JetStream;
use nats_ws::kv::{Entry, KvError, Operation, Store, WatchEvent};
use nats_ws::Client;

use super::detail::KeyDetail;
use super::logic::{
    describe_conflict, epoch_ms, full_value, key_count, operation_name, preview_line, visible_keys,
    Current, KeyFilter, PREVIEW_CHARS, ROW_LIMIT,
};
use crate::components::clock::date_and_time;
use crate::components::focus_when_mounted;
use crate::components::pacer::{Paced, Pacer};
use crate::components::toasts::Toasts;

/// How long before a bucket that could not be opened, a watch that ended, or a key's history that
/// could not be read, is tried again.
pub(super) const RETRY: Duration = Duration::from_secs(2);

/// How long a question's Yes is off after the question was asked: the second click of the double
/// click that asked it is not an answer.
const DOUBLE_CLICK: Duration = Duration::from_millis(500);

/// Watch events applied to the page at once, at most: a burst of writes redraws once.
const BATCH: usize = 1000;

/// The watched keys with a value, each in a signal of its own: a key written again changes its
/// row alone, a key added or removed changes the map (and so the list of rows).
pub(super) type Entries = RwSignal<BTreeMap<String, ArcRwSignal<Entry>>>;

/// The entry of `key` in `entries`, tracking both the map and the key's own signal.
pub(super) fn entry_of(entries: Entries, key: &str) -> Option<Entry> {
    entries.with(|map| map.get(key).map(|e| e.get()))
}

/// The entry of `key` in `entries` as it is now, tracking nothing.
fn entry_of_untracked(entries: Entries, key: &str) -> Option<Entry> {
    entries.with_untracked(|map| map.get(key).map(|e| e.get_untracked()))
}

/// What the open bucket's parts share.
#[derive(Clone, Copy)]
pub(super) struct Open {
    pub(super) store: RwSignal<Option<Store>, LocalStorage>,
    /// Every watched key with a value.
    pub(super) entries: Entries,
    /// The initial values are in.
    loaded: RwSignal<bool>,
    /// The bucket does not exist (deleted, or not made again yet): there is nothing to load.
    missing: RwSignal<bool>,
    /// Initial values received so far (a large bucket takes a moment).
    initial: RwSignal<usize>,
    watch_error: RwSignal<Option<String>>,
    /// The filter applied (the box applies it on submit).
    filter: RwSignal<KeyFilter>,
    /// The key whose value and history are shown.
    selected: RwSignal<Option<String>>,
    /// Notified when the selected key changes (a value or a marker: a delete, then a purge,
    /// changes no value shown) or the whole bucket is read again: its history is read again.
    selected_changed: Trigger,
    editor: Editor,
    /// What the outcome of a write is announced through (the app's one live region).
    toasts: Toasts,
}

/// The editor's fields. The page keeps them across a change of connection (⚙ → Apply: signing in
/// as admin after a refusal must not lose what was typed); another bucket starts them over.
#[derive(Clone, Copy)]
pub(super) struct Editor {
    key: RwSignal<String>,
    value: RwSignal<String>,
    /// The key and revision loaded into the editor: what an update expects.
    loaded: RwSignal<Option<(String, u64)>>,
    busy: RwSignal<Option<&'static str>>,
    error: RwSignal<Option<String>>,
    done: RwSignal<Option<String>>,
    conflict: RwSignal<Option<Conflict>>,
    /// The key and value as last loaded or written: anything else in the fields is the user's
    /// draft, which opening another key does not replace.
    pristine: RwSignal<(String, String)>,
    /// A key opened from the list while the fields held a draft: shown, not loaded.
    kept: RwSignal<Option<String>>,
    /// A delete or purge asked for, and the key it is for, until confirmed or cancelled.
    confirm: RwSignal<Option<(Action, String)>>,
    /// The question was answered Cancel: the focus goes back to the button that asked it (and
    /// only then: the question also closes when a key is opened or the bucket made again).
    cancelled: StoredValue<Option<Action>>,
    /// Bumped when it starts over for another bucket: a write of the bucket before reports
    /// nothing here.
    generation: RwSignal<u64>,
}

impl Editor {
    pub(super) fn new() -> Self {
        Editor {
            key: RwSignal::new(String::new()),
            value: RwSignal::new(String::new()),
            loaded: RwSignal::new(None),
            busy: RwSignal::new(None),
            error: RwSignal::new(None),
            done: RwSignal::new(None),
            conflict: RwSignal::new(None),
            pristine: RwSignal::new((String::new(), String::new())),
            kept: RwSignal::new(None),
            confirm: RwSignal::new(None),
            cancelled: StoredValue::new(None),
            generation: RwSignal::new(0),
        }
    }

    /// Whether the fields hold something the user typed since the last load or write.
    fn has_draft(self) -> bool {
        let key = self.key.get_untracked();
        self.value.with_untracked(|value| {
            self.pristine
                .with_untracked(|(k, v)| (k.as_str(), v.as_str()) != (key.trim(), value.as_str()))
        })
    }

    /// Empty, for another bucket.
    pub(super) fn clear(self) {
        self.key.set(String::new());
        self.value.set(String::new());
        self.loaded.set(None);
        self.busy.set(None);
        self.error.set(None);
        self.done.set(None);
        self.conflict.set(None);
        self.pristine.set((String::new(), String::new()));
        self.kept.set(None);
        self.confirm.set(None);
        self.generation.update(|g| *g += 1);
    }
}

/// An update refused because the key changed: what the user wrote and what is there now.
#[derive(Debug, Clone, PartialEq)]
struct Conflict {
    key: String,
    expected: u64,
    mine: String,
    /// The key's latest revision (a delete marker too); `None` if it has none.
    current: Option<Entry>,
}

impl Conflict {
    fn current(&self) -> Current {
        match &self.current {
            Some(e) => Current::At {
                revision: e.revision,
                operation: e.operation,
            },
            None => Current::Gone,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Put,
    Create,
    /// Only if the key is still at this revision.
    Update(u64),
    /// Only if the key is still at this revision, when given (a row's Delete: what it shows;
    /// the editor's: the revision loaded).
    Delete(Option<u64>),
    /// As `Delete`.
    Purge(Option<u64>),
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Put => "put",
            Action::Create => "create",
            Action::Update(_) => "update",
            Action::Delete(_) => "delete",
            Action::Purge(_) => "purge",
        }
    }
}

/// Applies the changes waiting to be drawn.
fn draw(open: Open, changes: &mut BTreeMap<String, Entry>) {
    let selected_changed = open
        .selected
        .with_untracked(|s| s.as_ref().is_some_and(|key| changes.contains_key(key)));
    // A new value of a key already listed goes to its row's signal; the rest changes the map.
    let mut keys_changed = Vec::new();
    open.entries.with_untracked(|map| {
        for (key, entry) in std::mem::take(changes) {
            match map.get(&key) {
                Some(row) if entry.operation == Operation::Put => row.set(entry),
                _ => keys_changed.push(entry),
            }
        }
    });
    if !keys_changed.is_empty() {
        open.entries.update(|map| {
            for entry in keys_changed {
                if entry.operation == Operation::Put {
                    map.insert(entry.key.clone(), ArcRwSignal::new(entry));
                } else {
                    map.remove(&entry.key);
                }
            }
        });
    }
    if selected_changed {
        open.selected_changed.notify();
    }
}

fn apply(map: &mut BTreeMap<String, Entry>, entry: Entry) {
    if entry.operation == Operation::Put {
        map.insert(entry.key.clone(), entry);
    } else {
        map.remove(&entry.key);
    }
}

/// The bucket was deleted (and perhaps made again): a revision loaded from the old one means
/// nothing in the new one, where the same number may hold a value the user never saw (an update
/// at it would write over that). What was typed stays.
fn forget_revisions(editor: Editor) {
    editor.loaded.set(None);
    editor.conflict.set(None);
    editor.confirm.set(None);
}

/// The bucket was deleted: what was shown is gone, and so is the store (its writes would fail).
fn show_gone(open: Open, bucket: &str) {
    open.entries.set(BTreeMap::new());
    open.store.set(None);
    forget_revisions(open.editor);
    open.missing.set(true);
    open.watch_error.set(Some(format!(
        "bucket {bucket} was deleted: its keys are gone (it is shown again if it is made anew)"
    )));
}

/// Binds the bucket (once), then watches `filter`, started over if the watch ends.
async fn watch_bucket(js: JetStream, bucket: String, filter: String, open: Open) {
    loop {
        open.loaded.set(false);
        open.initial.set(0);
        let store = match open.store.get_untracked() {
            Some(store) => store,
            None => match js.key_value(&bucket).await {
                Ok(store) => {
                    open.store.set(Some(store.clone()));
                    open.missing.set(false);
                    store
                }
                // Known to be deleted: what was said of it stays.
                Err(KvError::BucketNotFound { .. }) if open.missing.get_untracked() => {
                    gloo_timers::future::sleep(RETRY).await;
                    continue;
                }
                Err(e) => {
                    open.watch_error.set(Some(match e {
                        KvError::BucketNotFound { .. } => {
                            open.missing.set(true);
                            format!(
                                "bucket {bucket} does not exist (deleted?): it is shown again if it is made anew"
                            )
                        }
                        e => format!("could not open bucket {bucket}: {e}"),
                    }));
                    gloo_timers::future::sleep(RETRY).await;
                    continue;
                }
            },
        };
        let mut watch = match store.watch(&filter) {
            Ok(watch) => watch,
            Err(e) => {
                open.watch_error
                    .set(Some(format!("could not watch {filter}: {e}")));
                return;
            }
        };
        let mut initial = BTreeMap::new();
        let mut live = false;
        // Changes not drawn yet, the last per key: a key written without pause is drawn at most
        // once a frame, and what waits stays as small as the bucket.
        let mut changes = BTreeMap::new();
        let mut pacer = Pacer::default();
        loop {
            let first = match pacer.next(&mut watch, !changes.is_empty()).await {
                Paced::Item(event) => event,
                Paced::Ended => {
                    draw(open, &mut changes);
                    break;
                }
                Paced::Draw => {
                    draw(open, &mut changes);
                    pacer.drawn();
                    continue;
                }
            };
            // Whatever else has already arrived goes in the same redraw.
            let mut batch = vec![first];
            while batch.len() < BATCH {
                match watch.next().now_or_never() {
                    Some(Some(event)) => batch.push(event),
                    _ => break,
                }
            }
            let mut gone = false;
            for event in batch {
                match event {
                    Ok(WatchEvent::Entry(entry)) if live => {
                        changes.insert(entry.key.clone(), entry);
                    }
                    Ok(WatchEvent::Entry(entry)) => apply(&mut initial, entry),
                    Ok(WatchEvent::InitialDone) => {
                        live = true;
                        open.entries.set(
                            std::mem::take(&mut initial)
                                .into_iter()
                                .map(|(key, entry)| (key, ArcRwSignal::new(entry)))
                                .collect(),
                        );
                        open.loaded.set(true);
                        open.selected_changed.notify();
                        pacer.drawn();
                    }
                    // The bucket was recreated: what was shown is gone; its values follow.
                    Ok(WatchEvent::Reset) => {
                        live = false;
                        initial.clear();
                        changes.clear();
                        forget_revisions(open.editor);
                    }
                    Ok(_) => {}
                    // Deleted by someone (unless the bucket list noticed first). Bound again
                    // every few seconds, in case it is made anew.
                    Err(e) if e.is_bucket_gone() => {
                        if !open.missing.get_untracked() {
                            show_gone(open, &bucket);
                        }
                        gone = true;
                        break;
                    }
                    Err(e) => {
                        open.watch_error
                            .set(Some(format!("the watch of {bucket} failed: {e}")));
                        continue;
                    }
                }
                if open.watch_error.with_untracked(Option::is_some) {
                    open.watch_error.set(None);
                }
            }
            if gone {
                break;
            }
            if !changes.is_empty() {
                // At once after a quiet frame; otherwise when the frame is over.
                if pacer.due() {
                    draw(open, &mut changes);
                    pacer.drawn();
                }
            } else if !live {
                open.initial.set(initial.len());
            }
        }
        gloo_timers::future::sleep(RETRY).await;
    }
}

#[component]
pub(super) fn BucketView(
    bucket: String,
    client: Client,
    editor: Editor,
    /// Whether the page's bucket list (read every few seconds) has this bucket; `None` until read.
    listed: Signal<Option<bool>>,
) -> impl IntoView {
    let open = Open {
        store: RwSignal::new_local(None),
        entries: RwSignal::new(BTreeMap::new()),
        loaded: RwSignal::new(false),
        missing: RwSignal::new(false),
        initial: RwSignal::new(0),
        watch_error: RwSignal::new(None),
        filter: RwSignal::new(KeyFilter::All),
        selected: RwSignal::new(None),
        selected_changed: Trigger::new(),
        toasts: expect_context::<Toasts>(),
        editor,
    };

    // One watch per filter: a new pattern replaces the watch (the effect's cleanup aborts the
    // old one); text filters reuse the watch of every key.
    let watch_filter = Memo::new(move |_| open.filter.with(|f| f.watch_filter().to_owned()));
    // Bumped to start the watch over.
    let rebind = RwSignal::new(0_u64);
    {
        let (js, bucket) = (client.jetstream(), bucket.clone());
        Effect::new(move |_| {
            let filter = watch_filter.get();
            rebind.track();
            spawn_while_mounted(watch_bucket(js.clone(), bucket.clone(), filter, open));
        });
    }
    // Deleted by another client: the bucket list says so within its period, where the watch
    // would notice only when its heartbeats stop coming (about 10 s). A list that leaves out a
    // bucket this view has bound is asked about it, at every refresh that does (a list may miss
    // a stream it could not read, and one made a moment ago may not be in it yet); if gone, the
    // watch starts over, binding again until the bucket is made anew. (One never bound is the
    // watch's to say: it does not exist.)
    {
        let (js, bucket) = (client.jetstream(), bucket.clone());
        Effect::new(move |_| {
            if listed.get() != Some(false)
                || open.missing.get_untracked()
                || open.store.with_untracked(Option::is_none)
            {
                return;
            }
            let (js, bucket) = (js.clone(), bucket.clone());
            spawn_while_mounted(async move {
                if let Err(KvError::BucketNotFound { .. }) = js.key_value(&bucket).await {
                    if !open.missing.get_untracked() {
                        show_gone(open, &bucket);
                        rebind.update(|n| *n += 1);
                    }
                }
            });
        });
    }

    let shown = Memo::new(move |_| {
        open.filter.with(|f| {
            open.entries
                .with(|map| visible_keys(map.keys(), f, ROW_LIMIT))
        })
    });

    let filter_text = RwSignal::new(String::new());
    let filter_error = RwSignal::new(None::<String>);
    let apply_filter = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match KeyFilter::parse(&filter_text.get_untracked()) {
            Ok(filter) => {
                filter_error.set(None);
                // A key a pattern leaves out is no longer watched: its panel would say it was
                // deleted. (A text filter keeps the watch of every key.)
                if matches!(filter, KeyFilter::Pattern(_))
                    && open
                        .selected
                        .with_untracked(|s| s.as_ref().is_some_and(|key| !filter.covers(key)))
                {
                    open.selected.set(None);
                }
                open.filter.set(filter);
            }
            Err(e) => filter_error.set(Some(e.to_string())),
        }
    };

    let count = move || {
        let (drawn, total) = shown.with(|(keys, total)| (keys.len(), *total));
        if open.missing.get() {
            return "no bucket".to_owned();
        }
        if !open.loaded.get() {
            return format!("loading keys… {} so far", open.initial.get());
        }
        open.filter.with(|f| key_count(drawn, total, f))
    };

    let heading = NodeRef::new();
    crate::components::reveal_when_mounted(heading);
    view! {
        <section class="card" data-testid="kv-bucket">
            <div class="card-head">
                <h2 tabindex="-1" node_ref=heading>"Bucket " <code>{bucket.clone()}</code></h2>
                <span class="muted small" data-testid="kv-key-count">{count}</span>
            </div>
            <form class="row kv-filter" on:submit=apply_filter>
                <label>
                    "Filter keys: text a key contains, or a pattern (* one token, > the rest) that only those keys are watched for"
                    <input
                        bind:value=filter_text
                        placeholder="theme, or config.*, users.>"
                        autocomplete="off"
                        data-testid="kv-filter-input"
                    />
                </label>
                <button type="submit" class="secondary" data-testid="kv-filter-apply">"Apply"</button>
            </form>
            <Show when=move || filter_error.get().is_some()>
                <p class="error notice-inline" data-testid="kv-filter-error">{move || filter_error.get()}</p>
            </Show>
            <Show when=move || open.watch_error.get().is_some()>
                <p class="error notice-inline" data-testid="kv-watch-error">{move || open.watch_error.get()}</p>
            </Show>
            <Show
                when=move || open.loaded.get() && !shown.with(|(keys, _)| keys.is_empty())
                fallback=move || {
                    view! {
                        <p class="empty">
                            {move || {
                                if open.missing.get() {
                                    "No keys: the bucket does not exist."
                                } else if open.loaded.get() {
                                    "No key here yet."
                                } else {
                                    "Loading keys…"
                                }
                            }}
                        </p>
                    }
                }
            >
                <div class="table-wrap">
                    <table class="proc-table kv-keys stacks">
                        <thead>
                            <tr>
                                <th>"Key"</th>
                                <th>"Value"</th>
                                <th class="num">"Revision"</th>
                                <th>"Operation"</th>
                                <th>"Time"</th>
                                <th class="right">"Actions"</th>
                            </tr>
                        </thead>
                        <tbody>
                            <For
                                each=move || shown.get().0
                                key=|key| key.clone()
                                children=move |key| view! { <KeyRow key open/> }
                            />
                        </tbody>
                    </table>
                </div>
                <Show when=move || shown.with(|(keys, total)| keys.len() < *total)>
                    <p class="hint" data-testid="kv-truncated">
                        {format!("Only the first {ROW_LIMIT} keys are drawn: narrow the filter to see the others.")}
                    </p>
                </Show>
            </Show>
        </section>
        <EditKey open/>
        {move || {
            open.selected
                .get()
                .map(|key| view! { <KeyDetail key entries=open.entries changed=open.selected_changed store=open.store/> })
        }}
    }
}

/// Shows `key`'s value and history; the one shown stays as it is (set again, its panel would be
/// made anew).
fn select_key(open: Open, key: &str) {
    if open
        .selected
        .try_with_untracked(|s| s.as_deref() != Some(key))
        == Some(true)
    {
        open.selected.set(Some(key.to_owned()));
    }
}

/// Loads `entry` into the editor and shows its value and history.
fn open_key(open: Open, entry: &Entry) {
    let editor = open.editor;
    editor.key.set(entry.key.clone());
    editor.loaded.set(Some((entry.key.clone(), entry.revision)));
    editor.conflict.set(None);
    editor.error.set(None);
    editor.kept.set(None);
    editor.confirm.set(None);
    let text = entry.text().unwrap_or_default().to_owned();
    editor.pristine.set((entry.key.clone(), text));
    match entry.text() {
        Some(text) => {
            editor.value.set(text.to_owned());
            editor.done.set(None);
        }
        None => {
            editor.value.set(String::new());
            editor.done.set(Some(format!(
                "The value of {} is binary ({} bytes), shown as hex below: writing replaces it with the text typed.",
                entry.key,
                entry.value.len()
            )));
        }
    }
    select_key(open, &entry.key);
}

#[component]
fn KeyRow(key: String, open: Open) -> impl IntoView {
    let entry = {
        let key = key.clone();
        Memo::new(move |_| entry_of(open.entries, &key))
    };
    let cell = move |f: fn(&Entry) -> String| {
        move || entry.with(|e| e.as_ref().map(f).unwrap_or_default())
    };
    let is_selected = {
        let key = key.clone();
        move || open.selected.with(|s| s.as_deref() == Some(key.as_str()))
    };
    let pick = move |_| {
        if let Some(e) = entry.get_untracked() {
            if open.selected.with_untracked(|s| s.as_ref() != Some(&e.key)) {
                crate::components::reveal_next();
            }
            if open.editor.has_draft() {
                // Shown below, and the draft stays: the editor offers to load it.
                open.editor.kept.set(Some(e.key.clone()));
                select_key(open, &e.key);
            } else {
                open_key(open, &e);
            }
        }
    };
    // A delete is asked, then confirmed on the row of the key it names, at the revision the row
    // showed when asked: a value written since is not deleted unseen, and a row that moved under
    // the pointer (another key added above it) gets a question, not a delete.
    let confirming = RwSignal::new(None::<u64>);
    // Yes is off for a double click's time after the question: the second click of the double
    // click that asked is not an answer (were the buttons to wrap, Yes would be where Delete was).
    let armed = RwSignal::new(false);
    let ask = move |_| {
        armed.set(false);
        set_timeout(
            move || {
                armed.try_set(true);
            },
            DOUBLE_CLICK,
        );
        confirming.set(entry.with_untracked(|e| e.as_ref().map(|e| e.revision)));
    };
    let delete = {
        let key = key.clone();
        move |_| {
            if let Some(revision) = confirming.get_untracked() {
                confirming.set(None);
                write(
                    open,
                    Action::Delete(Some(revision)),
                    key.clone(),
                    String::new(),
                );
            }
        }
    };
    // The question takes the focus on Keep, last in the right-aligned cell: where Delete was (a
    // double click or a repeated Enter keeps the key); answered Keep, the focus goes back to
    // Delete.
    let keep = NodeRef::<leptos::html::Button>::new();
    let ask_again = NodeRef::<leptos::html::Button>::new();
    let refocus = StoredValue::new(false);
    focus_when_mounted(keep);
    Effect::new(move |_| {
        if let Some(button) = ask_again.get() {
            if refocus.get_value() {
                refocus.set_value(false);
                let _ = button.focus();
            }
        }
    });
    let cancel = move || {
        refocus.set_value(true);
        confirming.set(None);
    };
    view! {
        <tr class="proc-row" class:selected=is_selected data-testid="kv-key-row">
            <td class="proc-name">
                <button
                    class="link-button name kv-key"
                    title="Load it into the editor, with its history"
                    data-testid="kv-key"
                    on:click=pick
                >
                    <span class="kv-key-text">{key.clone()}</span>
                </button>
            </td>
            <td class="kv-value" data-label="Value" data-testid="kv-value">
                {move || entry.with(|e| e.as_ref().map(|e| shown(&preview_line(&e.value, PREVIEW_CHARS))))}
            </td>
            <td class="num" data-label="Revision" data-testid="kv-revision">{cell(|e| e.revision.to_string())}</td>
            <td data-label="Operation">{cell(|e| operation_name(e.operation).to_owned())}</td>
            <td class="kv-time" data-label="Time">{cell(|e| epoch_ms(e.created).map(|ms| date_and_time(ms, true)).unwrap_or_default())}</td>
            <td
                class="right actions"
                on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                    if ev.key() == "Escape" && confirming.get_untracked().is_some() {
                        cancel();
                    }
                }
            >
                <Show
                    when=move || confirming.get().is_some()
                    fallback={
                        let key = key.clone();
                        move || view! {
                            <button
                                class="danger kv-row-button"
                                aria-label=format!("Delete key {key}")
                                node_ref=ask_again
                                disabled=move || open.editor.busy.get().is_some()
                                on:click=ask
                            >
                                "Delete"
                            </button>
                        }
                    }
                >
                    <button
                        class="danger kv-row-button"
                        aria-label=format!("Yes, delete key {key}")
                        disabled=move || !armed.get() || open.editor.busy.get().is_some()
                        on:click=delete.clone()
                    >
                        "Yes, delete"
                    </button>
                    <button
                        class="secondary kv-row-button"
                        aria-label=format!("Keep key {key}")
                        node_ref=keep
                        on:click=move |_| cancel()
                    >
                        "Keep"
                    </button>
                </Show>
            </td>
        </tr>
    }
}

/// Shows a failed write in the editor, and has it said.
fn fail(open: Open, text: String) {
    open.toasts.announce(text.clone());
    open.editor.error.set(Some(text));
}

/// Runs one write from the editor (or a row), and reports it there.
fn write(open: Open, action: Action, key: String, value: String) {
    let editor = open.editor;
    let Some(store) = open.store.get_untracked() else {
        let why = open.watch_error.get_untracked();
        fail(
            open,
            why.map_or(
                "the bucket is not open yet: wait a moment".to_owned(),
                |why| format!("nothing written: {why}"),
            ),
        );
        return;
    };
    editor.busy.set(Some(action.verb()));
    editor.error.set(None);
    editor.done.set(None);
    let generation = editor.generation.get_untracked();
    spawn_local(async move {
        let result = match action {
            Action::Put => store.put(&key, value.as_bytes()).await,
            Action::Create => store.create(&key, value.as_bytes()).await,
            Action::Update(revision) => store.update(&key, value.as_bytes(), revision).await,
            Action::Delete(None) => store.delete(&key).await,
            Action::Delete(Some(revision)) => store.delete_expecting(&key, revision).await,
            Action::Purge(None) => store.purge(&key).await,
            Action::Purge(Some(revision)) => store.purge_expecting(&key, revision).await,
        };
        // The editor moved on to another bucket (or the page is gone): not this one's result.
        if editor.generation.try_get_untracked() != Some(generation) {
            return;
        }
        match result {
            Ok(revision) => {
                editor.conflict.set(None);
                let done = format!("{} {key}: revision {revision}", action.verb());
                open.toasts.announce(done.clone());
                editor.done.set(Some(done));
                if matches!(action, Action::Delete(_) | Action::Purge(_)) {
                    // The page may be gone by now: nothing to tidy then.
                    if editor
                        .loaded
                        .try_with_untracked(|l| l.as_ref().is_some_and(|(k, _)| *k == key))
                        == Some(true)
                    {
                        editor.loaded.set(None);
                    }
                } else if editor.key.try_with_untracked(|k| k.trim() == key.trim()) == Some(true) {
                    // Loaded as written, unless the user moved on to another key while the write
                    // was on its way: the key they opened meanwhile stays loaded.
                    editor.loaded.set(Some((key.clone(), revision)));
                    editor.pristine.set((key.trim().to_owned(), value));
                    select_key(open, &key);
                }
            }
            Err(KvError::WrongLastRevision { expected, .. })
                if matches!(action, Action::Delete(Some(_)) | Action::Purge(Some(_))) =>
            {
                let verb = action.verb();
                // Deleted by another client meanwhile: nothing is left to delete, and the
                // editor's text is no longer what is stored.
                let now = store.entry(&key).await;
                // Another bucket opened meanwhile: not its editor's to say.
                if editor.generation.try_get_untracked() != Some(generation) {
                    return;
                }
                let gone = matches!(&now, Ok(None))
                    || matches!(&now, Ok(Some(e)) if e.operation != Operation::Put);
                let text = if gone {
                    if editor
                        .loaded
                        .try_with_untracked(|l| l.as_ref().is_some_and(|(k, _)| *k == key))
                        == Some(true)
                    {
                        editor.loaded.set(None);
                    }
                    format!(
                        "{key} was deleted by another client after revision {expected} was shown: there is no value to {verb}"
                    )
                } else {
                    format!(
                        "{key} changed after revision {expected} was shown: nothing was {verb}d; its new value is in the list"
                    )
                };
                fail(open, text);
            }
            Err(KvError::WrongLastRevision { expected, .. })
                if matches!(action, Action::Update(_)) =>
            {
                // Nothing was written: show what is there now beside what was typed.
                let now = store.entry(&key).await;
                if editor.generation.try_get_untracked() != Some(generation) {
                    return;
                }
                match now {
                    Ok(current) => {
                        let conflict = Conflict {
                            key,
                            expected,
                            mine: value,
                            current,
                        };
                        open.toasts.announce(describe_conflict(
                            &conflict.key,
                            expected,
                            conflict.current(),
                        ));
                        editor.conflict.set(Some(conflict));
                    }
                    Err(e) => fail(
                        open,
                        format!("key {key} changed since revision {expected}, and reading it failed: {e}"),
                    ),
                }
            }
            Err(e) => fail(
                open,
                crate::session::explain(format!("could not {} {key}: {e}", action.verb())),
            ),
        }
        editor.busy.set(None);
    });
}

#[component]
fn EditKey(open: Open) -> impl IntoView {
    let editor = open.editor;
    // The revision an update expects, when the editor holds the key it was loaded for.
    let expected = Memo::new(move |_| {
        let key = editor.key.get();
        editor
            .loaded
            .get()
            .filter(|(k, _)| *k == key.trim())
            .map(|(_, revision)| revision)
    });
    let run = move |action: Action| {
        let key = editor.key.get_untracked().trim().to_owned();
        if key.is_empty() {
            fail(open, "type a key first".to_owned());
            return;
        }
        editor.confirm.set(None);
        write(open, action, key, editor.value.get_untracked());
    };
    // Delete and purge are asked first, for the key typed (at the revision loaded, if it is the
    // key loaded), as the nats CLI asks; confirmed, they write only if it is still there.
    let ask = move |action: fn(Option<u64>) -> Action| {
        let key = editor.key.get_untracked().trim().to_owned();
        if key.is_empty() {
            fail(open, "type a key first".to_owned());
            return;
        }
        editor.error.set(None);
        editor
            .confirm
            .set(Some((action(expected.get_untracked()), key)));
    };
    // The question answered Cancel, the focus goes back to the button that asked it.
    let delete_button = NodeRef::<leptos::html::Button>::new();
    let purge_button = NodeRef::<leptos::html::Button>::new();
    Effect::new(move |_| {
        if editor.confirm.with(Option::is_some) {
            return;
        }
        let Some(Some(action)) = editor.cancelled.try_update_value(Option::take) else {
            return;
        };
        let button = match action {
            Action::Purge(_) => purge_button.get_untracked(),
            _ => delete_button.get_untracked(),
        };
        if let Some(button) = button {
            let _ = button.focus();
        }
    });
    let kept_key = move || editor.kept.get().unwrap_or_default();
    let load_kept = move |_| {
        if let Some(key) = editor.kept.get_untracked() {
            match entry_of_untracked(open.entries, &key) {
                Some(entry) => open_key(open, &entry),
                None => editor.kept.set(None),
            }
        }
    };
    let busy = move || editor.busy.get().is_some();
    // A write made while the connection is down waits for it (the client's publish deadline,
    // 30 s, or half the bucket's duplicate window for a put): said, so "Putting…" is not all the
    // page shows meanwhile.
    let status = leptos_nats::use_nats().status;
    // Not while Offline: the client tries again only when asked (⚙), and the write says so.
    let waiting = move || {
        busy()
            && status.with(|s| {
                matches!(
                    s,
                    nats_ws::Status::Connecting | nats_ws::Status::Reconnecting { .. }
                )
            })
    };
    let label = move |verb: &'static str, text: String, doing: &'static str| {
        if editor.busy.get() == Some(verb) {
            doing.to_owned()
        } else {
            text
        }
    };
    view! {
        <section class="card" data-testid="kv-editor">
            <h2>"Write a key"</h2>
            // Enter in the key box writes nothing: only a button does (Enter once put whatever
            // the value box held, often nothing, over the key typed).
            <form class="kv-form" on:submit=move |ev: leptos::ev::SubmitEvent| ev.prevent_default()>
                <label>
                    "Key"
                    <input bind:value=editor.key placeholder="config.theme" autocomplete="off" data-testid="kv-key-input"/>
                </label>
                <label>
                    "Value (text)"
                    <textarea
                        rows="5"
                        prop:value=move || editor.value.get()
                        on:input=move |ev| editor.value.set(event_target_value(&ev))
                        data-testid="kv-value-input"
                    ></textarea>
                </label>
                <p class="hint" data-testid="kv-loaded">
                    {move || match (editor.loaded.get(), expected.get()) {
                        (Some((key, revision)), Some(_)) => format!("Loaded {key} at revision {revision}: Update writes only if it is still at that revision."),
                        (Some((key, _)), None) => format!("The key typed is not {key}, the one loaded: Update needs a key loaded from the list."),
                        (None, _) => "Put writes whatever is there; Create only if the key has no value; open a key from the list to update it at its revision.".to_owned(),
                    }}
                </p>
                <Show when=move || editor.kept.get().is_some()>
                    <p class="hint" data-testid="kv-draft-kept">
                        {move || format!("What you typed is kept; {} is shown below. ", kept_key())}
                        <button type="button" class="link-button" data-testid="kv-load-kept" on:click=load_kept>
                            {move || format!("Load {} here instead", kept_key())}
                        </button>
                    </p>
                </Show>
                <Show when=move || editor.error.get().is_some()>
                    <p class="error notice-inline" role="alert" data-testid="kv-error">{move || editor.error.get()}</p>
                </Show>
                <Show when=move || editor.done.get().is_some()>
                    <p class="kv-done" role="status" data-testid="kv-result">{move || editor.done.get()}</p>
                </Show>
                <Show when=waiting>
                    <p class="hint" role="status" data-testid="kv-waiting">
                        "No connection to the server: the write goes out as soon as it is back. If it is not back in time (at most 30 s), the page says what became of it."
                    </p>
                </Show>
                <div class="actions kv-actions">
                    <button type="button" data-testid="kv-put" disabled=busy on:click=move |_| run(Action::Put)>
                        {move || label("put", "Put".to_owned(), "Putting…")}
                    </button>
                    <button type="button" class="secondary" data-testid="kv-create" disabled=busy on:click=move |_| run(Action::Create)>
                        {move || label("create", "Create".to_owned(), "Creating…")}
                    </button>
                    <button
                        type="button"
                        class="secondary"
                        data-testid="kv-update"
                        disabled=move || busy() || expected.get().is_none()
                        on:click=move |_| {
                            if let Some(revision) = expected.get_untracked() {
                                run(Action::Update(revision));
                            }
                        }
                    >
                        {move || label(
                            "update",
                            match expected.get() {
                                Some(revision) => format!("Update at revision {revision}"),
                                None => "Update".to_owned(),
                            },
                            "Updating…",
                        )}
                    </button>
                    <button type="button" class="danger" data-testid="kv-delete" node_ref=delete_button disabled=busy on:click=move |_| ask(Action::Delete)>
                        {move || label("delete", "Delete".to_owned(), "Deleting…")}
                    </button>
                    <button type="button" class="danger" data-testid="kv-purge" node_ref=purge_button disabled=busy on:click=move |_| ask(Action::Purge)>
                        {move || label("purge", "Purge with history".to_owned(), "Purging…")}
                    </button>
                </div>
                {move || editor.confirm.get().map(|(action, key)| view! { <ConfirmWrite action key open/> })}
            </form>
            {move || editor.conflict.get().map(|conflict| view! { <ConflictView conflict open/> })}
        </section>
    }
}

/// The question before a delete or purge from the editor.
#[component]
fn ConfirmWrite(action: Action, key: String, open: Open) -> impl IntoView {
    let editor = open.editor;
    let at = match action {
        Action::Delete(Some(revision)) | Action::Purge(Some(revision)) => {
            format!(" (only if it is still at revision {revision})")
        }
        _ => String::new(),
    };
    let question = match action {
        Action::Purge(_) => {
            format!("Purge {key}{at}? Its value and its whole history go for good.")
        }
        _ => format!("Delete {key}{at}? Its history stays, with a delete marker on top."),
    };
    // Cancel takes the focus (Enter pressed twice keeps the key).
    let no = NodeRef::<leptos::html::Button>::new();
    focus_when_mounted(no);
    let confirm = {
        let key = key.clone();
        move |_| {
            editor.confirm.set(None);
            write(open, action, key.clone(), String::new());
        }
    };
    view! {
        <div
            class="kv-confirm"
            role="group"
            aria-label="Confirm"
            aria-describedby="kv-confirm-question"
            data-testid="kv-confirm"
            on:keydown=move |ev: leptos::ev::KeyboardEvent| {
                if ev.key() == "Escape" {
                    editor.cancelled.set_value(Some(action));
                    editor.confirm.set(None);
                }
            }
        >
            <p id="kv-confirm-question">{question}</p>
            <div class="actions">
                <button
                    type="button"
                    class="secondary"
                    data-testid="kv-confirm-no"
                    node_ref=no
                    on:click=move |_| {
                        editor.cancelled.set_value(Some(action));
                        editor.confirm.set(None);
                    }
                >
                    "Cancel"
                </button>
                <button type="button" class="danger" data-testid="kv-confirm-yes" on:click=confirm>
                    {format!("Yes, {}", action.verb())}
                </button>
            </div>
        </div>
    }
}

#[component]
fn ConflictView(conflict: Conflict, open: Open) -> impl IntoView {
    let editor = open.editor;
    let text = describe_conflict(&conflict.key, conflict.expected, conflict.current());
    let (current_title, current_body) = match &conflict.current {
        Some(e) if e.operation == Operation::Put => (
            format!("Current (revision {})", e.revision),
            full_value(&e.value).body().to_owned(),
        ),
        Some(e) => (
            format!("Current (revision {})", e.revision),
            format!("(no value: {})", operation_name(e.operation)),
        ),
        None => ("Current".to_owned(), "(no value)".to_owned()),
    };
    let overwrite = {
        let conflict = conflict.clone();
        move |_| {
            // Written over exactly the revision shown: if it changed again, this conflicts again.
            let action = match &conflict.current {
                Some(e) => Action::Update(e.revision),
                None => Action::Create,
            };
            write(open, action, conflict.key.clone(), conflict.mine.clone());
        }
    };
    let take = {
        let conflict = conflict.clone();
        move |_| {
            match &conflict.current {
                Some(e) => open_key(open, e),
                None => {
                    editor.loaded.set(None);
                    editor.value.set(String::new());
                }
            }
            editor.conflict.set(None);
        }
    };
    view! {
        <div class="kv-conflict" data-testid="kv-conflict">
            <p class="kv-conflict-text">{text}</p>
            <div class="kv-conflict-values">
                <div>
                    <h3>"Yours (not written)"</h3>
                    <pre class="kv-full" data-testid="kv-conflict-mine">{conflict.mine.clone()}</pre>
                </div>
                <div>
                    <h3>{current_title}</h3>
                    <pre class="kv-full" data-testid="kv-conflict-current">{current_body}</pre>
                </div>
            </div>
            <div class="actions">
                <button type="button" class="secondary" data-testid="kv-conflict-take" on:click=take>
                    "Keep the current value"
                </button>
                <button type="button" class="danger" data-testid="kv-conflict-overwrite" on:click=overwrite>
                    "Write yours over it"
                </button>
            </div>
        </div>
    }
}
