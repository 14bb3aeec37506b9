//! `/streams`: every JetStream stream of the account (all pages of `STREAM.LIST`), refreshed every
//! 2 s while the tab is visible; a stream's configuration, state and consumers; peeking at its
//! messages without consuming them (direct get or `STREAM.MSG.GET`, never a consumer, so work
//! queues can be browsed); a test publish; create, purge and delete (the last two behind the
//! stream's name typed out).
//!
//! JetStream has no change feed for stream state, so the list polls; it never polls while the
//! document is hidden, and stops when the page unmounts.

mod detail;
mod logic;

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_nats::use_nats;
use nats_ws::jetstream::{
    err_codes, ConsumerInfo, JetStream, RetentionPolicy, StorageType, StreamInfo,
};
use nats_ws::Client;

use crate::components::field::clear_if_sent;
use crate::components::visibility::poll_while_visible;
use crate::model::format_bytes;
use detail::StreamDetail;
use logic::{retention_name, sequence_text, storage_name, taken_subject, CreateForm};

/// How often the list (and the open stream) is read again while the page is visible.
const POLL: Duration = Duration::from_secs(2);

#[component]
pub fn StreamsPage() -> impl IntoView {
    let nats = use_nats();
    // Kept across a change of connection: the open stream and what is typed in its forms.
    let draft = Draft::new();
    let new_stream = NewStream::new();
    let selected = super::kept_selection("stream", move || draft.clear());
    view! {
        <section class="page-head">
            <h1>"Streams"</h1>
            <p class="lede">
                "Every JetStream stream of the account, refreshed every 2 s while this tab is visible. "
                "Open one to see its configuration and consumers, and to peek at its messages without "
                "consuming them: work-queue and interest streams too, since no consumer is created."
            </p>
        </section>
        {move || match nats.client.get() {
            Some(client) => view! { <Streams client selected draft new_stream/> }.into_any(),
            None => view! { <p class="muted">"Not connected."</p> }.into_any(),
        }}
    }
}

/// A stream's info and its consumers, as last read.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Detail {
    pub info: StreamInfo,
    pub consumers: Vec<ConsumerInfo>,
    /// Why the consumers could not be listed (a user who may read a stream's info but not list
    /// its consumers): the rest of the detail is shown all the same.
    pub consumers_error: Option<String>,
}

/// What is typed in the open stream's forms: the test publish, the subject to peek at and the
/// name typed to purge or delete it.
#[derive(Clone, Copy)]
pub(crate) struct Draft {
    pub subject: RwSignal<String>,
    pub headers: RwSignal<String>,
    pub payload: RwSignal<String>,
    pub typed: RwSignal<String>,
    pub peek_subject: RwSignal<String>,
}

impl Draft {
    fn new() -> Self {
        Draft {
            subject: RwSignal::new(String::new()),
            headers: RwSignal::new(String::new()),
            payload: RwSignal::new(String::new()),
            typed: RwSignal::new(String::new()),
            peek_subject: RwSignal::new(String::new()),
        }
    }

    fn clear(self) {
        for field in [
            self.subject,
            self.headers,
            self.payload,
            self.typed,
            self.peek_subject,
        ] {
            field.set(String::new());
        }
    }
}

/// What is typed in the form that creates a stream, kept across a change of connection (signing
/// in as admin after a refusal, as the refusal suggests, must not empty it).
#[derive(Clone, Copy)]
struct NewStream {
    name: RwSignal<String>,
    subjects: RwSignal<String>,
    storage: RwSignal<StorageType>,
    retention: RwSignal<RetentionPolicy>,
    max_msgs: RwSignal<String>,
    max_bytes: RwSignal<String>,
    max_age: RwSignal<String>,
}

impl NewStream {
    fn new() -> Self {
        NewStream {
            name: RwSignal::new(String::new()),
            subjects: RwSignal::new(String::new()),
            storage: RwSignal::new(StorageType::File),
            retention: RwSignal::new(RetentionPolicy::Limits),
            max_msgs: RwSignal::new(String::new()),
            max_bytes: RwSignal::new(String::new()),
            max_age: RwSignal::new(String::new()),
        }
    }
}

/// What the page's parts share: the JetStream handle and what was last read.
#[derive(Clone, Copy)]
pub(crate) struct Ctx {
    pub js: StoredValue<JetStream, LocalStorage>,
    /// Sorted by name.
    pub streams: RwSignal<Vec<StreamInfo>>,
    pub loaded: RwSignal<bool>,
    pub error: RwSignal<Option<String>>,
    pub selected: RwSignal<Option<String>>,
    pub detail: RwSignal<Option<Detail>>,
    pub detail_error: RwSignal<Option<String>>,
    /// The open stream was not found at the last read (deleted by another client).
    pub gone: RwSignal<bool>,
    pub draft: Draft,
    /// Restarts the poller, which reads at once.
    wake: Trigger,
}

impl Ctx {
    /// Reads the list and the open stream again, now (after a change made from the page).
    pub fn refresh_now(self) {
        self.wake.notify();
    }

    pub fn select(self, name: Option<String>) {
        // Opening the open stream again keeps what is shown (a peeked message, a half-typed
        // publish). Called by a create or delete whose answer came after the page was left: the
        // signals are gone, nothing to do.
        if self.selected.try_with_untracked(|s| *s == name) != Some(false) {
            return;
        }
        // What was shown of the stream open before goes (`Streams`, which also follows Back).
        self.selected.set(name);
    }

    /// Opens `name` on the answer to a create or delete asked while `asked_with` was open —
    /// unless the user opened another stream meanwhile: that one stays open, with what was typed
    /// for it. The list is read again either way.
    pub fn select_on_answer(self, asked_with: &Option<String>, name: Option<String>) {
        if self.selected.try_with_untracked(|now| now == asked_with) == Some(true) {
            self.select(name);
        }
        self.refresh_now();
    }

    async fn refresh(self) {
        let js = self.js.get_value();
        let selected = self.selected.get_untracked();
        let (list, detail) = futures::join!(js.streams(), async {
            match &selected {
                Some(name) => Some(load_detail(&js, name).await),
                None => None,
            }
        });
        match list {
            Ok(mut streams) => {
                crate::sort::sort_by(&mut streams, |a, b| a.config.name.cmp(&b.config.name));
                self.streams.set(streams);
                self.error.set(None);
                self.loaded.set(true);
            }
            Err(e) => self
                .error
                .set(Some(super::read_failed("could not list the streams", &e))),
        }
        if selected != self.selected.get_untracked() {
            return;
        }
        match detail {
            Some(Ok(d)) => {
                self.detail.set(Some(d));
                self.detail_error.set(None);
                self.gone.set(false);
            }
            Some(Err(DetailError { text, gone })) => {
                self.detail_error.set(Some(text));
                self.gone.set(gone);
            }
            None => self.detail.set(None),
        }
    }
}

/// Why the open stream could not be read.
struct DetailError {
    text: String,
    /// JetStream does not have it.
    gone: bool,
}

async fn load_detail(js: &JetStream, name: &str) -> Result<Detail, DetailError> {
    let (info, consumers) = futures::join!(js.stream_info(name), js.consumers(name));
    let info = info.map_err(|e| match e.api_kind() {
        Some(nats_ws::jetstream::ApiErrorKind::StreamNotFound) => DetailError {
            text: format!("stream {name} no longer exists"),
            gone: true,
        },
        _ => DetailError {
            text: super::read_failed(&format!("could not read stream {name}"), &e),
            gone: false,
        },
    })?;
    let (consumers, consumers_error) = match consumers {
        Ok(consumers) => (consumers, None),
        Err(e) => (
            Vec::new(),
            Some(super::read_failed(
                &format!("could not list the consumers of {name}"),
                &e,
            )),
        ),
    };
    Ok(Detail {
        info,
        consumers,
        consumers_error,
    })
}

#[component]
fn Streams(
    client: Client,
    selected: RwSignal<Option<String>>,
    draft: Draft,
    new_stream: NewStream,
) -> impl IntoView {
    let ctx = Ctx {
        js: StoredValue::new_local(client.jetstream()),
        streams: RwSignal::new(Vec::new()),
        loaded: RwSignal::new(false),
        error: RwSignal::new(None),
        selected,
        detail: RwSignal::new(None),
        detail_error: RwSignal::new(None),
        gone: RwSignal::new(false),
        draft,
        wake: Trigger::new(),
    };

    // A change made here asks for a read now (`wake`): the new loop replaces the old, so no two
    // ever race.
    poll_while_visible(POLL, Some(ctx.wake), move || ctx.refresh());
    // Another stream opened (a click, the address, Back): nothing of the one before is shown, and
    // the new one is read now.
    Effect::new(move |before: Option<Option<String>>| {
        let now = selected.get();
        if before.is_some_and(|b| b != now) {
            ctx.detail.set(None);
            ctx.detail_error.set(None);
            ctx.gone.set(false);
            ctx.refresh_now();
        }
        now
    });

    let names = Memo::new(move |_| {
        ctx.streams
            .with(|s| s.iter().map(|i| i.config.name.clone()).collect::<Vec<_>>())
    });

    view! {
        <div class="streams">
            <section class="card">
                <div class="card-head">
                    <h2>"Streams"</h2>
                    <span class="muted" data-testid="stream-count">
                        {move || match names.with(Vec::len) {
                            1 => "1 stream".to_owned(),
                            n => format!("{n} streams"),
                        }}
                    </span>
                </div>
                <Show when=move || ctx.error.get().is_some()>
                    <p class="error" role="alert" data-testid="stream-list-error">{move || ctx.error.get()}</p>
                </Show>
                <Show
                    when=move || !names.with(Vec::is_empty)
                    fallback=move || {
                        view! {
                            <p class="empty">
                                {move || match (ctx.loaded.get(), ctx.error.with(Option::is_some)) {
                                    (true, _) => "No stream yet: create one below.",
                                    // The error above says why there is no list.
                                    (false, true) => "",
                                    (false, false) => "Loading streams…",
                                }}
                            </p>
                        }
                    }
                >
                    <div class="table-wrap">
                        <table class="proc-table streams-table">
                            <thead>
                                <tr>
                                    <th>"Name"</th>
                                    <th>"Subjects"</th>
                                    <th>"Storage"</th>
                                    <th>"Retention"</th>
                                    <th class="num">"Messages"</th>
                                    <th class="num">"Bytes"</th>
                                    <th class="num">"First seq"</th>
                                    <th class="num">"Last seq"</th>
                                    <th class="num">"Consumers"</th>
                                </tr>
                            </thead>
                            <tbody>
                                <For
                                    each=move || names.get()
                                    key=|name| name.clone()
                                    children=move |name| view! { <StreamRow name ctx/> }
                                />
                            </tbody>
                        </table>
                    </div>
                </Show>
            </section>
            {move || ctx.selected.get().map(|name| view! { <StreamDetail name ctx/> })}
            <CreateStream ctx form=new_stream/>
        </div>
    }
}

#[component]
fn StreamRow(name: String, ctx: Ctx) -> impl IntoView {
    let info = {
        let name = name.clone();
        Memo::new(move |_| {
            ctx.streams.with(|s| {
                s.binary_search_by(|i| i.config.name.as_str().cmp(&name))
                    .ok()
                    .map(|at| s[at].clone())
            })
        })
    };
    let cell = move |f: fn(&StreamInfo) -> String| {
        move || info.with(|i| i.as_ref().map(f).unwrap_or_default())
    };
    let is_selected = {
        let name = name.clone();
        move || ctx.selected.with(|s| s.as_deref() == Some(name.as_str()))
    };
    let open = {
        let name = name.clone();
        move |_| {
            if ctx
                .selected
                .with_untracked(|s| s.as_deref() != Some(name.as_str()))
            {
                crate::components::reveal_next();
                ctx.select(Some(name.clone()));
            }
        }
    };
    view! {
        <tr class="proc-row" class:selected=is_selected data-testid="stream-row">
            <td class="proc-name">
                <button
                    class="link-button name"
                    title="Show its configuration, consumers and messages"
                    data-name=name.clone()
                    on:click=open
                >
                    {name.clone()}
                </button>
            </td>
            <td class="stream-subjects">{cell(|i| i.config.subjects.join(", "))}</td>
            <td>{cell(|i| storage_name(i.config.storage).to_owned())}</td>
            <td>{cell(|i| retention_name(i.config.retention).to_owned())}</td>
            <td class="num" data-testid="stream-row-messages">{cell(|i| i.state.messages.to_string())}</td>
            <td class="num">{cell(|i| format_bytes(i.state.bytes))}</td>
            <td class="num">{cell(|i| sequence_text(&i.state, i.state.first_seq))}</td>
            <td class="num">{cell(|i| sequence_text(&i.state, i.state.last_seq))}</td>
            <td class="num" data-testid="stream-row-consumers">{cell(|i| i.state.consumer_count.to_string())}</td>
        </tr>
    }
}

#[component]
fn CreateStream(ctx: Ctx, form: NewStream) -> impl IntoView {
    let NewStream {
        name,
        subjects,
        storage,
        retention,
        max_msgs,
        max_bytes,
        max_age,
    } = form;
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let form = CreateForm {
            name: name.get_untracked(),
            subjects: subjects.get_untracked(),
            storage: storage.get_untracked(),
            retention: retention.get_untracked(),
            max_msgs: max_msgs.get_untracked(),
            max_bytes: max_bytes.get_untracked(),
            max_age: max_age.get_untracked(),
        };
        let sent = (form.name.clone(), form.subjects.clone());
        let config = match form.to_config() {
            Ok(config) => config,
            Err(e) => {
                error.set(Some(crate::session::explain(e)));
                return;
            }
        };
        error.set(None);
        busy.set(true);
        let js = ctx.js.get_value();
        let open = ctx.selected.get_untracked();
        spawn_local(async move {
            let created = js.create_stream(&config).await;
            busy.set(false);
            match created {
                Ok(info) => {
                    clear_if_sent(name, &sent.0);
                    clear_if_sent(subjects, &sent.1);
                    ctx.select_on_answer(&open, Some(info.config.name));
                }
                Err(e) => {
                    let action = format!("could not create stream {}", config.name);
                    // Refused for a subject another stream stores: the server names neither
                    // stream; the list says which (unless the stream is newer than the list).
                    let overlapping = e.err_code() == Some(err_codes::STREAM_SUBJECT_OVERLAP)
                        || e.to_string().contains("subjects overlap");
                    let taken = match overlapping {
                        true => ctx
                            .streams
                            .try_with_untracked(|streams| {
                                taken_subject(&config.name, &config.subjects, streams)
                            })
                            .flatten(),
                        false => None,
                    };
                    match taken {
                        Some(taken) => error.set(Some(format!("{action}: {taken}"))),
                        None => super::say_failed(error, js.client(), &action, &e),
                    }
                    // What was refused may be about a stream the list does not show yet.
                    ctx.refresh_now();
                }
            }
        });
    };

    view! {
        <section class="card">
            <h2>"Create a stream"</h2>
            <form class="stream-form" on:submit=submit>
                <div class="row">
                    <label>
                        "Name"
                        <input bind:value=name placeholder="ORDERS" data-testid="stream-create-name" autocomplete="off"/>
                    </label>
                    <label>
                        "Subjects (comma or space separated)"
                        <input bind:value=subjects placeholder="orders.>" data-testid="stream-create-subjects" autocomplete="off"/>
                    </label>
                </div>
                <div class="row">
                    <label>
                        "Storage"
                        <select
                            data-testid="stream-create-storage"
                            on:change=move |ev| {
                                storage.set(if event_target_value(&ev) == "memory" { StorageType::Memory } else { StorageType::File })
                            }
                        >
                            <option value="file" selected=move || storage.get() == StorageType::File>"file"</option>
                            <option value="memory" selected=move || storage.get() == StorageType::Memory>"memory"</option>
                        </select>
                    </label>
                    <label>
                        "Retention"
                        <select
                            data-testid="stream-create-retention"
                            on:change=move |ev| {
                                retention.set(match event_target_value(&ev).as_str() {
                                    "interest" => RetentionPolicy::Interest,
                                    "workqueue" => RetentionPolicy::WorkQueue,
                                    _ => RetentionPolicy::Limits,
                                })
                            }
                        >
                            <option value="limits" selected=move || retention.get() == RetentionPolicy::Limits>"limits"</option>
                            <option value="interest" selected=move || retention.get() == RetentionPolicy::Interest>"interest"</option>
                            <option value="workqueue" selected=move || retention.get() == RetentionPolicy::WorkQueue>"work queue"</option>
                        </select>
                    </label>
                    <label>
                        "Max messages"
                        <input bind:value=max_msgs placeholder="empty or 0: unlimited" inputmode="numeric" data-testid="stream-create-max-msgs"/>
                    </label>
                    <label>
                        "Max bytes (e.g. 10M)"
                        <input bind:value=max_bytes placeholder="empty or 0: unlimited" data-testid="stream-create-max-bytes"/>
                    </label>
                    <label>
                        "Max age (e.g. 1h30m)"
                        <input bind:value=max_age placeholder="empty or 0: forever" data-testid="stream-create-max-age"/>
                    </label>
                </div>
                <Show when=move || error.get().is_some()>
                    <p class="error notice-inline" role="alert" data-testid="stream-error">{move || error.get()}</p>
                </Show>
                <div class="actions">
                    <button type="submit" data-testid="stream-create" disabled=move || busy.get()>
                        {move || if busy.get() { "Creating…" } else { "Create stream" }}
                    </button>
                </div>
            </form>
        </section>
    }
}
