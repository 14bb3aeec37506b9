//! One stream: configuration, state, consumers, peeking at messages, a test publish, and purge /
//! delete behind the stream's name typed out.

use std::time::Duration;

use leptos::prelude::*;

use crate::pages::console::bidi::shown;
use leptos::task::spawn_local;
use nats_ws::jetstream::{JetStream, JetStreamError, PublishOptions, StoredMessage};
use nats_ws::validate_publish_subject;

use super::logic::{
    age, confirmed, consumer_filter, consumer_kind, discard_name, example_subject, limit_age,
    limit_bytes, limit_count, parse_headers, preview, publish_headers, retention_name,
    sequence_text, server_time, storage_name, Preview, ALL_SUBJECTS,
};
use super::{Ctx, Detail};
use crate::model::{clip_text, format_bytes};

/// How long a test publish keeps retrying while the connection is down.
const PUBLISH_DEADLINE: Duration = Duration::from_secs(5);
/// Characters of a subject an error repeats (one can be thousands long).
const SUBJECT_SHOWN: usize = 120;

#[component]
pub(super) fn StreamDetail(name: String, ctx: Ctx) -> impl IntoView {
    let detail = ctx.detail;
    let field = move |f: fn(&Detail) -> String| {
        move || detail.with(|d| d.as_ref().map(f).unwrap_or_else(|| "…".into()))
    };
    let close = move |_| ctx.select(None);
    let heading = NodeRef::new();
    crate::components::reveal_when_mounted(heading);
    let danger = {
        let name = name.clone();
        move || view! { <Danger name=name.clone() ctx/> }
    };
    view! {
        <section
            class="card stream-detail"
            data-testid="stream-detail"
            aria-label=format!("Stream {name}")
            on:keydown={
                let name = name.clone();
                move |ev: leptos::ev::KeyboardEvent| {
                    // Closed, and the keyboard goes back to the stream's row.
                    if crate::pages::console::escape_outside_fields(&ev) {
                        ctx.select(None);
                        crate::pages::console::focus_back("[data-testid=\"stream-row\"] button", &name);
                    }
                }
            }
        >
            <div class="card-head">
                <h2 tabindex="-1" node_ref=heading>"Stream " <code>{name.clone()}</code></h2>
                <button class="secondary" on:click=close aria-label=format!("Close stream {name}")>
                    "Close"
                </button>
            </div>
            <Show when=move || ctx.detail_error.get().is_some()>
                <p class="error notice-inline" role="alert" data-testid="stream-detail-error">{move || ctx.detail_error.get()}</p>
            </Show>
            <div class="stream-facts">
                <div>
                    <h3>"Configuration"</h3>
                    <dl>
                        <dt>"Subjects"</dt><dd>{field(|d| d.info.config.subjects.join(", "))}</dd>
                        <dt>"Description"</dt>
                        <dd>{field(|d| d.info.config.description.clone().unwrap_or_else(|| "—".into()))}</dd>
                        <dt>"Retention"</dt><dd>{field(|d| retention_name(d.info.config.retention).into())}</dd>
                        <dt>"Storage"</dt><dd>{field(|d| storage_name(d.info.config.storage).into())}</dd>
                        <dt>"Replicas"</dt><dd>{field(|d| d.info.config.num_replicas.to_string())}</dd>
                        <dt>"Discard"</dt><dd>{field(|d| discard_name(d.info.config.discard).into())}</dd>
                        <dt>"Max messages"</dt><dd>{field(|d| limit_count(d.info.config.max_msgs))}</dd>
                        <dt>"Max bytes"</dt><dd>{field(|d| limit_bytes(d.info.config.max_bytes))}</dd>
                        <dt>"Max age"</dt><dd>{field(|d| limit_age(d.info.config.max_age))}</dd>
                        <dt>"Max per subject"</dt><dd>{field(|d| limit_count(d.info.config.max_msgs_per_subject))}</dd>
                        <dt>"Max message size"</dt><dd>{field(|d| limit_bytes(d.info.config.max_msg_size))}</dd>
                        <dt>"Max consumers"</dt><dd>{field(|d| limit_count(d.info.config.max_consumers))}</dd>
                        <dt>"Duplicate window"</dt><dd>{field(|d| age(d.info.config.duplicate_window))}</dd>
                        <dt>"Direct get"</dt><dd>{field(|d| yes_no(d.info.config.allow_direct))}</dd>
                        <dt>"Rollup headers"</dt><dd>{field(|d| yes_no(d.info.config.allow_rollup_hdrs))}</dd>
                        <dt>"Deny delete / purge"</dt>
                        <dd>{field(|d| format!("{} / {}", yes_no(d.info.config.deny_delete), yes_no(d.info.config.deny_purge)))}</dd>
                        <dt>"Sealed"</dt><dd>{field(|d| yes_no(d.info.config.sealed))}</dd>
                    </dl>
                </div>
                <div>
                    <h3>"State"</h3>
                    <dl>
                        <dt>"Messages"</dt><dd data-testid="stream-detail-messages">{field(|d| d.info.state.messages.to_string())}</dd>
                        <dt>"Bytes"</dt><dd>{field(|d| format_bytes(d.info.state.bytes))}</dd>
                        <dt>"First sequence"</dt><dd>{field(|d| sequence_text(&d.info.state, d.info.state.first_seq))}</dd>
                        <dt>"First message"</dt><dd>{field(|d| server_time(&d.info.state.first_ts))}</dd>
                        <dt>"Last sequence"</dt><dd>{field(|d| sequence_text(&d.info.state, d.info.state.last_seq))}</dd>
                        <dt>"Last message"</dt><dd>{field(|d| server_time(&d.info.state.last_ts))}</dd>
                        <dt>"Deleted in between"</dt><dd>{field(|d| d.info.state.num_deleted.to_string())}</dd>
                        <dt>"Subjects stored"</dt><dd>{field(|d| d.info.state.num_subjects.to_string())}</dd>
                        <dt>"Consumers"</dt><dd>{field(|d| d.info.state.consumer_count.to_string())}</dd>
                        <dt>"Created"</dt><dd>{field(|d| server_time(&d.info.created))}</dd>
                    </dl>
                </div>
            </div>
            <Consumers ctx/>
            <Peek name=name.clone() ctx/>
            <Publish name=name.clone() ctx/>
            // Nothing to purge or delete; what a refused try said before goes with it.
            <Show when=move || !ctx.gone.get()>{danger.clone()}</Show>
        </section>
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

#[component]
fn Consumers(ctx: Ctx) -> impl IntoView {
    let consumers = Memo::new(move |_| {
        ctx.detail
            .with(|d| d.as_ref().map(|d| d.consumers.clone()).unwrap_or_default())
    });
    let error = Memo::new(move |_| {
        ctx.detail
            .with(|d| d.as_ref().and_then(|d| d.consumers_error.clone()))
    });
    view! {
        <h3>"Consumers"</h3>
        <Show when=move || error.with(Option::is_some)>
            <p class="error notice-inline" data-testid="stream-consumers-error">{move || error.get()}</p>
        </Show>
        <Show
            when=move || !consumers.with(Vec::is_empty)
            fallback=move || {
                view! {
                    <p class="muted small">
                        {move || if error.with(Option::is_some) { "" } else { "No consumer." }}
                    </p>
                }
            }
        >
            <div class="table-wrap">
                <table class="proc-table">
                    <thead>
                        <tr>
                            <th>"Name"</th>
                            <th>"Kind"</th>
                            <th>"Filter"</th>
                            <th class="num">"Pending"</th>
                            <th class="num">"Ack pending"</th>
                            <th class="num">"Redelivered"</th>
                            <th class="num">"Waiting pulls"</th>
                            <th>"Last active"</th>
                            <th>"Created"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For
                            each=move || consumers.get()
                            key=|c| (c.name.clone(), c.num_pending, c.num_ack_pending, c.num_redelivered, c.num_waiting, c.delivered.last_active.clone())
                            children=|c| {
                                view! {
                                    <tr data-testid="stream-consumer">
                                        <td><code>{c.name.clone()}</code></td>
                                        <td>{consumer_kind(&c)}</td>
                                        <td>{consumer_filter(&c)}</td>
                                        <td class="num">{c.num_pending}</td>
                                        <td class="num">{c.num_ack_pending}</td>
                                        <td class="num">{c.num_redelivered}</td>
                                        <td class="num">{c.num_waiting}</td>
                                        <td>{c.delivered.last_active.as_deref().map(server_time).unwrap_or_else(|| "never".into())}</td>
                                        <td>{server_time(&c.created)}</td>
                                    </tr>
                                }
                            }
                        />
                    </tbody>
                </table>
            </div>
        </Show>
    }
}

/// Where a peek goes.
#[derive(Debug, Clone)]
enum Step {
    First,
    Last,
    Before(u64),
    After(u64),
    LastOn(String),
}

impl Step {
    async fn run(
        &self,
        js: &JetStream,
        stream: &str,
    ) -> Result<Option<StoredMessage>, JetStreamError> {
        match self {
            Step::First => js.get_next_message(stream, 1, ALL_SUBJECTS).await,
            Step::Last => {
                let last = js.stream_info(stream).await?.state.last_seq;
                js.get_previous_message(stream, last.saturating_add(1), ALL_SUBJECTS)
                    .await
            }
            Step::Before(seq) => js.get_previous_message(stream, *seq, ALL_SUBJECTS).await,
            Step::After(seq) => {
                js.get_next_message(stream, seq.saturating_add(1), ALL_SUBJECTS)
                    .await
            }
            Step::LastOn(subject) => js.get_last_message(stream, subject).await,
        }
    }

    /// What to say when there is no such message.
    fn none(&self) -> String {
        match self {
            Step::First | Step::Last => "The stream holds no message.".into(),
            Step::Before(seq) => format!("No message before #{seq}."),
            Step::After(seq) => format!("No message after #{seq}."),
            Step::LastOn(subject) => format!("No message on {subject}."),
        }
    }
}

#[component]
fn Peek(name: String, ctx: Ctx) -> impl IntoView {
    let message = RwSignal::new(None::<StoredMessage>);
    let note = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let subject = ctx.draft.peek_subject;
    let at = move || message.with(|m| m.as_ref().map(|m| m.sequence));
    // A stream deleted and made again under the same name (another creation time): what was
    // peeked, and where the steps go from, was the old stream's.
    let created = Memo::new(move |_| {
        ctx.detail
            .with(|d| d.as_ref().map(|d| d.info.created.clone()))
    });
    Effect::new(move |before: Option<Option<String>>| {
        let now = created.get();
        if let (Some(Some(before)), Some(now)) = (&before, &now) {
            if before != now && message.with_untracked(Option::is_some) {
                message.set(None);
                error.set(None);
                note.set(Some(
                    "The stream was deleted and made again: the message shown was the old one's."
                        .into(),
                ));
            }
        }
        now.or(before.flatten())
    });

    // Purged by another client, or dropped by a limit: the stream no longer holds what is shown.
    let held_from = Memo::new(move |_| {
        ctx.detail.with(|d| {
            d.as_ref()
                .map(|d| (d.info.state.messages, d.info.state.first_seq))
        })
    });
    Effect::new(move |_| {
        let Some((messages, first)) = held_from.get() else {
            return;
        };
        let Some(seq) = message.with_untracked(|m| m.as_ref().map(|m| m.sequence)) else {
            return;
        };
        if messages == 0 || seq < first {
            message.set(None);
            error.set(None);
            note.set(Some(format!(
                "Message #{seq} is no longer in the stream (purged, or removed by a limit)."
            )));
        }
    });

    let go = {
        let name = name.clone();
        move |step: Step| {
            if let Step::LastOn(s) = &step {
                if let Err(e) = validate_publish_subject(s) {
                    // The note was the step before's: said beside this error, it reads as this
                    // one's answer.
                    note.set(None);
                    error.set(Some(format!("last on a subject: {e}")));
                    return;
                }
            }
            busy.set(true);
            error.set(None);
            note.set(None);
            let (js, name) = (ctx.js.get_value(), name.clone());
            spawn_local(async move {
                let found = step.run(&js, &name).await;
                busy.set(false);
                match found {
                    Ok(Some(m)) => message.set(Some(m)),
                    Ok(None) => note.set(Some(step.none())),
                    Err(e) => error.set(Some(format!("could not read the message: {e}"))),
                }
            });
        }
    };
    let (first, last, prev, next, on) = (go.clone(), go.clone(), go.clone(), go.clone(), go);
    let on_subject = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        on(Step::LastOn(subject.get_untracked().trim().to_owned()));
    };

    view! {
        <h3>"Messages"</h3>
        <p class="muted small">
            "Read by sequence with direct get where the stream allows it, STREAM.MSG.GET otherwise: "
            "nothing is consumed, no consumer is created."
        </p>
        <div class="row peek-controls">
            <div class="row-actions">
                <button class="secondary" data-testid="stream-peek-first" disabled=move || busy.get()
                    on:click=move |_| first(Step::First)>"First"</button>
                <button class="secondary" data-testid="stream-peek-prev"
                    disabled=move || busy.get() || at().is_none()
                    on:click=move |_| if let Some(seq) = at() { prev(Step::Before(seq)) }>"‹ Previous"</button>
                <button class="secondary" data-testid="stream-peek-next"
                    disabled=move || busy.get() || at().is_none()
                    on:click=move |_| if let Some(seq) = at() { next(Step::After(seq)) }>"Next ›"</button>
                <button class="secondary" data-testid="stream-peek-last" disabled=move || busy.get()
                    on:click=move |_| last(Step::Last)>"Last"</button>
            </div>
            <form class="row peek-subject" on:submit=on_subject>
                <label>
                    "Last message on subject"
                    <input bind:value=subject placeholder="orders.new" data-testid="stream-peek-subject" autocomplete="off"/>
                </label>
                <button class="secondary" type="submit" data-testid="stream-peek-subject-go" disabled=move || busy.get()>
                    "Show"
                </button>
            </form>
        </div>
        <Show when=move || error.get().is_some()>
            <p class="error notice-inline" role="alert" data-testid="stream-peek-error">{move || error.get()}</p>
        </Show>
        <Show when=move || note.get().is_some()>
            <p class="muted" role="status" data-testid="stream-peek-note">{move || note.get()}</p>
        </Show>
        {move || message.get().map(|m| view! { <MessageView m/> })}
    }
}

#[component]
fn MessageView(m: StoredMessage) -> impl IntoView {
    let headers: Vec<(String, String)> = m
        .headers
        .as_ref()
        .map(|h| {
            h.iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let size = m.payload.len();
    let (drawn, omitted) = preview(&m.payload);
    let (kind, body) = match drawn {
        Preview::Empty => ("empty", String::new()),
        Preview::Text(t) => ("text", t),
        Preview::Hex(h) => ("binary, as hex", h),
    };
    view! {
        <div class="stream-message" data-testid="stream-message">
            <dl>
                <dt>"Sequence"</dt><dd data-testid="stream-message-seq">{m.sequence}</dd>
                <dt>"Subject"</dt><dd><code data-testid="stream-message-subject">{shown(&m.subject)}</code></dd>
                <dt>"Time"</dt><dd>{server_time(&m.time)}</dd>
                <dt>"Headers"</dt>
                <dd>
                    {if headers.is_empty() {
                        view! { <span class="muted">"none"</span> }.into_any()
                    } else {
                        view! {
                            <ul class="stream-headers" data-testid="stream-message-headers">
                                {headers.into_iter().map(|(k, v)| view! { <li><code>{shown(&k)}": "{shown(&v)}</code></li> }).collect_view()}
                            </ul>
                        }.into_any()
                    }}
                </dd>
                <dt>"Payload"</dt>
                <dd class="muted small">
                    {format!("{} · {kind}", format_bytes(size as u64))}
                    {(omitted > 0).then(|| format!(" · the last {omitted} bytes not shown"))}
                </dd>
            </dl>
            <pre class="stream-payload" data-testid="stream-message-payload">{shown(&body)}</pre>
        </div>
    }
}

#[component]
fn Publish(name: String, ctx: Ctx) -> impl IntoView {
    let (subject, headers, payload) = (ctx.draft.subject, ctx.draft.headers, ctx.draft.payload);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let ack = RwSignal::new(None::<String>);

    // A subject of the stream to start from, once its configuration is known.
    Effect::new(move |done: Option<bool>| {
        if done == Some(true) {
            return true;
        }
        let example = ctx
            .detail
            .with(|d| d.as_ref().map(|d| example_subject(&d.info.config.subjects)));
        match example {
            Some(example) => {
                if subject.with_untracked(String::is_empty) {
                    subject.set(example);
                }
                true
            }
            None => false,
        }
    });

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let to = subject.get_untracked().trim().to_owned();
        // Refused here, nothing is sent: the acknowledgement of the publish before goes, or it
        // would read as this one's.
        let refuse = move |e: String| {
            ack.set(None);
            error.set(Some(e));
        };
        if let Err(e) = validate_publish_subject(&to) {
            return refuse(crate::session::explain(e));
        }
        let (header_map, msg_id) = match parse_headers(&headers.get_untracked()) {
            Ok(h) => publish_headers(h),
            Err(e) => return refuse(e),
        };
        let mut options = PublishOptions::default().deadline(PUBLISH_DEADLINE);
        options.msg_id = msg_id;
        let body = payload.get_untracked().into_bytes();
        busy.set(true);
        error.set(None);
        ack.set(None);
        let js = ctx.js.get_value();
        spawn_local(async move {
            let result = js
                .publish_with(&to, header_map.as_ref(), &body, &options)
                .await;
            busy.set(false);
            match result {
                Ok(a) => {
                    ack.set(Some(format!(
                        "Stored in {} as #{}{}",
                        a.stream,
                        a.seq,
                        if a.duplicate { " · duplicate: the stream already had this Nats-Msg-Id, nothing new stored" } else { " · not a duplicate" }
                    )));
                    ctx.refresh_now();
                }
                Err(JetStreamError::NotEnabled { .. }) => error.set(Some(format!(
                    "no stream stores {} (no JetStream acknowledgement came back)",
                    clip_text(&to, SUBJECT_SHOWN)
                ))),
                Err(e) => error.set(Some(crate::session::explain(format!(
                    "could not publish to {}: {e}",
                    clip_text(&to, SUBJECT_SHOWN)
                )))),
            }
        });
    };

    view! {
        <h3>"Publish a test message"</h3>
        <form class="stream-form" on:submit=submit aria-label=format!("Publish a test message to stream {name}")>
            <label>
                "Subject"
                <input bind:value=subject data-testid="stream-publish-subject" autocomplete="off"/>
            </label>
            <div class="row">
                <label>
                    "Headers (one Name: value a line)"
                    <textarea
                        rows="3"
                        data-testid="stream-publish-headers"
                        prop:value=move || headers.get()
                        on:input=move |ev| headers.set(event_target_value(&ev))
                    ></textarea>
                </label>
                <label>
                    "Payload"
                    <textarea
                        rows="3"
                        data-testid="stream-publish-payload"
                        prop:value=move || payload.get()
                        on:input=move |ev| payload.set(event_target_value(&ev))
                    ></textarea>
                </label>
            </div>
            <Show when=move || error.get().is_some()>
                <p class="error notice-inline" role="alert" data-testid="stream-publish-error">{move || error.get()}</p>
            </Show>
            <div class="actions">
                <Show when=move || ack.get().is_some()>
                    <span class="stream-ack" data-testid="stream-ack">{move || ack.get()}</span>
                </Show>
                <button type="submit" data-testid="stream-publish" disabled=move || busy.get()>
                    {move || if busy.get() { "Publishing…" } else { "Publish" }}
                </button>
            </div>
        </form>
    }
}

#[component]
fn Danger(name: String, ctx: Ctx) -> impl IntoView {
    let typed = ctx.draft.typed;
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let note = RwSignal::new(None::<String>);
    let ok = {
        let name = name.clone();
        Memo::new(move |_| !busy.get() && typed.with(|t| confirmed(t, &name)))
    };

    let purge = {
        let name = name.clone();
        move |_| {
            let (js, name) = (ctx.js.get_value(), name.clone());
            busy.set(true);
            error.set(None);
            note.set(None);
            spawn_local(async move {
                let result = js.purge_stream(&name).await;
                busy.set(false);
                match result {
                    Ok(n) => {
                        // The confirmation typed for this stream; not what is typed for another
                        // one opened meanwhile (the draft is the page's).
                        if typed.try_with_untracked(|t| confirmed(t, &name)) == Some(true) {
                            typed.set(String::new());
                        }
                        note.set(Some(format!("Purged {n} messages.")));
                        ctx.refresh_now();
                    }
                    Err(e) => error.set(Some(crate::session::explain(format!(
                        "could not purge {name}: {e}"
                    )))),
                }
            });
        }
    };
    let delete = {
        let name = name.clone();
        move |_| {
            let (js, name) = (ctx.js.get_value(), name.clone());
            busy.set(true);
            error.set(None);
            note.set(None);
            spawn_local(async move {
                let result = js.delete_stream(&name).await;
                busy.set(false);
                match result {
                    Ok(()) => ctx.select_on_answer(&Some(name), None),
                    Err(e) => error.set(Some(crate::session::explain(format!(
                        "could not delete {name}: {e}"
                    )))),
                }
            });
        }
    };

    view! {
        <h3>"Purge or delete"</h3>
        <div class="row stream-danger">
            <label>
                {format!("Type {name} to confirm")}
                <input bind:value=typed data-testid="stream-confirm-name" autocomplete="off" spellcheck="false"/>
            </label>
            <div class="row-actions">
                <button class="danger" data-testid="stream-purge" disabled=move || !ok.get()
                    aria-label=format!("Purge stream {name}") on:click=purge>"Purge"</button>
                <button class="danger" data-testid="stream-delete" disabled=move || !ok.get()
                    aria-label=format!("Delete stream {name}") on:click=delete>"Delete"</button>
            </div>
        </div>
        <Show when=move || error.get().is_some()>
            <p class="error notice-inline" role="alert" data-testid="stream-danger-error">{move || error.get()}</p>
        </Show>
        <Show when=move || note.get().is_some()>
            <p class="muted" role="status" data-testid="stream-purged">{move || note.get()}</p>
        </Show>
    }
}
