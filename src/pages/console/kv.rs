//! `/kv`: the KV buckets of the account (the `KV_` streams, all pages of one filtered
//! `STREAM.LIST`), refreshed every 3 s while the tab is visible; a bucket's keys and values live
//! through a watch (no polling: entries appear, change and disappear as any client writes), a
//! key's history, put / create / update at a revision / delete / purge, with a conflict shown as
//! both values and nothing overwritten; creating and deleting buckets (deleting behind the
//! bucket's name typed out).
//!
//! Bucket sizes have no change feed, so the list polls; never while the document is hidden, and
//! not after the page unmounts. Values are always rendered as text nodes, never as markup.

mod bucket;
mod detail;
mod logic;

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_nats::use_nats;
use nats_ws::jetstream::{JetStream, StorageType};
use nats_ws::kv::KvStatus;
use nats_ws::Client;

use crate::components::field::clear_if_sent;
use crate::components::visibility::poll_while_visible;
use crate::model::format_bytes;
use bucket::{BucketView, Editor};
use logic::{format_ttl, BucketForm};

/// How often the bucket list is read again while the page is visible.
const POLL: Duration = Duration::from_secs(3);

#[component]
pub fn KvPage() -> impl IntoView {
    let nats = use_nats();
    // Kept across a change of connection: the open bucket and what is typed in its editor.
    let editor = Editor::new();
    let forms = Forms::new();
    let selected = super::kept_selection("bucket", move || {
        editor.clear();
        forms.delete_typed.set(String::new());
    });
    view! {
        <section class="page-head">
            <h1>"KV"</h1>
            <p class="lede">
                "Every key-value bucket of the account, refreshed every 3 s while this tab is visible. "
                "Open one to see its keys live: what any client writes shows here at once, without reloading. "
                "Writes that expect a revision never overwrite a newer value: a conflict shows both."
            </p>
        </section>
        {move || match nats.client.get() {
            Some(client) => view! { <Kv client selected editor forms/> }.into_any(),
            None => view! { <p class="muted">"Not connected."</p> }.into_any(),
        }}
    }
}

/// What is typed in the forms that create a bucket and delete the open one, kept across a change
/// of connection (signing in as admin after a refusal, as the refusal suggests, must not empty
/// them).
#[derive(Clone, Copy)]
struct Forms {
    name: RwSignal<String>,
    history: RwSignal<String>,
    ttl: RwSignal<String>,
    storage: RwSignal<StorageType>,
    /// The open bucket's name, typed to delete it.
    delete_typed: RwSignal<String>,
}

impl Forms {
    fn new() -> Self {
        Forms {
            name: RwSignal::new(String::new()),
            history: RwSignal::new(String::from("5")),
            ttl: RwSignal::new(String::new()),
            storage: RwSignal::new(StorageType::File),
            delete_typed: RwSignal::new(String::new()),
        }
    }
}

/// The bucket list and the open bucket, shared by the page's parts.
#[derive(Clone, Copy)]
struct Buckets {
    js: StoredValue<JetStream, LocalStorage>,
    /// Sorted by name.
    list: RwSignal<Vec<KvStatus>>,
    loaded: RwSignal<bool>,
    error: RwSignal<Option<String>>,
    selected: RwSignal<Option<String>>,
    /// Refreshes started and applied: an older answer never overwrites a newer one.
    issued: StoredValue<u64>,
    applied: StoredValue<u64>,
}

impl Buckets {
    fn refresh_now(self) {
        spawn_local(self.refresh());
    }

    /// Opens `next` on the answer to a create or delete asked while `asked_with` was open —
    /// unless the user opened another bucket meanwhile: that one stays open, with what was typed
    /// for it. (The page may be gone by then: nothing to do.)
    fn select_on_answer(self, asked_with: &Option<String>, next: Option<String>) {
        if self.selected.try_with_untracked(|now| now == asked_with) == Some(true) {
            self.selected.set(next);
        }
    }

    /// Reads the list; an answer older than one already shown is dropped. The page may be gone
    /// when an answer comes (a refresh after a write is not tied to it): then nothing happens.
    async fn refresh(self) {
        let (Some(js), Some(ticket)) = (
            self.js.try_get_value(),
            self.issued.try_update_value(|n| {
                *n += 1;
                *n
            }),
        ) else {
            return;
        };
        let list = js.key_value_statuses().await;
        match self.applied.try_get_value() {
            Some(applied) if ticket >= applied => self.applied.set_value(ticket),
            _ => return,
        }
        match list {
            Ok(list) => {
                self.list.set(list);
                self.error.set(None);
                self.loaded.set(true);
            }
            Err(e) => self
                .error
                .set(Some(super::read_failed("could not list the buckets", &e))),
        }
    }
}

#[component]
fn Kv(
    client: Client,
    selected: RwSignal<Option<String>>,
    editor: Editor,
    forms: Forms,
) -> impl IntoView {
    let buckets = Buckets {
        js: StoredValue::new_local(client.jetstream()),
        list: RwSignal::new(Vec::new()),
        loaded: RwSignal::new(false),
        error: RwSignal::new(None),
        selected,
        issued: StoredValue::new(0),
        applied: StoredValue::new(0),
    };

    poll_while_visible(POLL, None, move || buckets.refresh());

    let names = Memo::new(move |_| {
        buckets
            .list
            .with(|l| l.iter().map(|s| s.bucket.clone()).collect::<Vec<_>>())
    });

    view! {
        <div class="kv">
            <section class="card">
                <div class="card-head">
                    <h2>"Buckets"</h2>
                    <span class="muted" data-testid="kv-bucket-count">
                        {move || match names.with(Vec::len) {
                            1 => "1 bucket".to_owned(),
                            n => format!("{n} buckets"),
                        }}
                    </span>
                </div>
                <Show when=move || buckets.error.get().is_some()>
                    <p class="error notice-inline" data-testid="kv-bucket-error">
                        {move || buckets.error.get()}
                    </p>
                </Show>
                <Show
                    when=move || !names.with(Vec::is_empty)
                    fallback=move || {
                        view! {
                            <p class="empty">
                                {move || {
                                    if buckets.loaded.get() {
                                        "No bucket yet: create one below."
                                    } else if buckets.error.with(Option::is_some) {
                                        // The error above says why there is no list.
                                        ""
                                    } else {
                                        "Loading buckets…"
                                    }
                                }}
                            </p>
                        }
                    }
                >
                    <div class="table-wrap">
                        <table class="proc-table">
                            <thead>
                                <tr>
                                    <th>"Bucket"</th>
                                    <th class="num" title="Keys with a stored revision, deleted ones whose marker is kept included">"Keys"</th>
                                    <th class="num" title="Stored revisions: values, history and delete markers">"Values"</th>
                                    <th class="num">"Bytes"</th>
                                    <th class="num">"History"</th>
                                    <th class="num">"TTL"</th>
                                    <th>"Storage"</th>
                                </tr>
                            </thead>
                            <tbody>
                                <For
                                    each=move || names.get()
                                    key=|name| name.clone()
                                    children=move |name| view! { <BucketRow name buckets/> }
                                />
                            </tbody>
                        </table>
                    </div>
                </Show>
            </section>
            {move || {
                buckets
                    .selected
                    .get()
                    .map(|name| {
                        let client = client.clone();
                        // Read again at every refresh of the list (not a memo): a bucket the
                        // list keeps leaving out is asked about each time.
                        let listed = {
                            let name = name.clone();
                            Signal::derive(move || {
                                buckets.loaded.get().then(|| {
                                    buckets.list.with(|l| l.iter().any(|s| s.bucket == name))
                                })
                            })
                        };
                        view! {
                            <BucketView bucket=name.clone() client editor listed/>
                            <DeleteBucket name buckets typed=forms.delete_typed/>
                        }
                    })
            }}
            <CreateBucket buckets forms/>
        </div>
    }
}

#[component]
fn BucketRow(name: String, buckets: Buckets) -> impl IntoView {
    let status = {
        let name = name.clone();
        Memo::new(move |_| {
            buckets.list.with(|l| {
                l.binary_search_by(|s| s.bucket.as_str().cmp(&name))
                    .ok()
                    .map(|at| l[at].clone())
            })
        })
    };
    let cell = move |f: fn(&KvStatus) -> String| {
        move || status.with(|s| s.as_ref().map(f).unwrap_or_default())
    };
    let is_selected = {
        let name = name.clone();
        move || {
            buckets
                .selected
                .with(|s| s.as_deref() == Some(name.as_str()))
        }
    };
    let open = {
        let name = name.clone();
        // Opening the open bucket again keeps its view (what is typed, the filter, the watch).
        move |_| {
            if buckets
                .selected
                .with_untracked(|s| s.as_deref() != Some(name.as_str()))
            {
                crate::components::reveal_next();
                buckets.selected.set(Some(name.clone()));
            }
        }
    };
    view! {
        <tr class="proc-row" class:selected=is_selected data-testid="kv-bucket-row">
            <td class="proc-name">
                <button class="link-button name" title="Show its keys, live" on:click=open>
                    {name.clone()}
                </button>
            </td>
            <td class="num" data-testid="kv-bucket-keys">{cell(|s| s.keys.to_string())}</td>
            <td class="num" data-testid="kv-bucket-values">{cell(|s| s.values.to_string())}</td>
            <td class="num">{cell(|s| format_bytes(s.bytes))}</td>
            <td class="num">{cell(|s| s.history.to_string())}</td>
            <td class="num">{cell(|s| format_ttl(s.ttl))}</td>
            <td>{cell(|s| storage_name(s.storage).to_owned())}</td>
        </tr>
    }
}

fn storage_name(storage: StorageType) -> &'static str {
    match storage {
        StorageType::Memory => "memory",
        _ => "file",
    }
}

#[component]
fn CreateBucket(buckets: Buckets, forms: Forms) -> impl IntoView {
    let Forms {
        name,
        history,
        ttl,
        storage,
        ..
    } = forms;
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let form = BucketForm {
            name: name.get_untracked(),
            history: history.get_untracked(),
            ttl: ttl.get_untracked(),
            storage: storage.get_untracked(),
        };
        let config = match form.to_config() {
            Ok(config) => config,
            Err(e) => {
                error.set(Some(e));
                return;
            }
        };
        error.set(None);
        busy.set(true);
        let js = buckets.js.get_value();
        let open = buckets.selected.get_untracked();
        spawn_local(async move {
            let bucket = config.bucket.clone();
            let created = js.create_key_value(config).await;
            busy.set(false);
            match created {
                Ok(_) => {
                    clear_if_sent(name, &bucket);
                    buckets.select_on_answer(&open, Some(bucket));
                    buckets.refresh_now();
                }
                Err(e) => super::say_failed(
                    error,
                    js.client(),
                    &format!("could not create bucket {bucket}"),
                    &e,
                ),
            }
        });
    };

    view! {
        <section class="card">
            <h2>"Create a bucket"</h2>
            <form class="kv-form" on:submit=submit>
                <div class="row">
                    <label>
                        "Name"
                        <input bind:value=name placeholder="settings" autocomplete="off" data-testid="kv-bucket-name"/>
                    </label>
                    <label>
                        "History (revisions kept per key, 1–64)"
                        <input bind:value=history inputmode="numeric" data-testid="kv-bucket-history"/>
                    </label>
                    <label>
                        "TTL (e.g. 1h, 7d)"
                        <input bind:value=ttl placeholder="never" data-testid="kv-bucket-ttl"/>
                    </label>
                    <label>
                        "Storage"
                        <select
                            data-testid="kv-bucket-storage"
                            on:change=move |ev| {
                                storage.set(if event_target_value(&ev) == "memory" { StorageType::Memory } else { StorageType::File })
                            }
                        >
                            <option value="file" selected=move || storage.get() == StorageType::File>"file"</option>
                            <option value="memory" selected=move || storage.get() == StorageType::Memory>"memory"</option>
                        </select>
                    </label>
                </div>
                <Show when=move || error.get().is_some()>
                    <p class="error notice-inline" role="alert" data-testid="kv-bucket-create-error">{move || error.get()}</p>
                </Show>
                <div class="actions">
                    <button type="submit" data-testid="kv-bucket-create" disabled=move || busy.get()>
                        {move || if busy.get() { "Creating…" } else { "Create bucket" }}
                    </button>
                </div>
            </form>
        </section>
    }
}

/// Deleting the open bucket, once its name is typed out.
#[component]
fn DeleteBucket(name: String, buckets: Buckets, typed: RwSignal<String>) -> impl IntoView {
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let matches = {
        let name = name.clone();
        move || typed.with(|t| t.trim() == name)
    };
    let delete = {
        let name = name.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let (name, js) = (name.clone(), buckets.js.get_value());
            busy.set(true);
            error.set(None);
            spawn_local(async move {
                let deleted = js.delete_key_value(&name).await;
                busy.set(false);
                match deleted {
                    Ok(()) => {
                        buckets.select_on_answer(&Some(name), None);
                        buckets.refresh_now();
                    }
                    Err(e) => error.set(Some(crate::session::explain(format!(
                        "could not delete bucket {name}: {e}"
                    )))),
                }
            });
        }
    };
    view! {
        <section class="card">
            <h2>"Delete bucket " <code>{name.clone()}</code></h2>
            <form class="row kv-danger" on:submit=delete>
                <label>
                    {format!("Type {name} to delete it with every key and revision")}
                    <input bind:value=typed autocomplete="off" data-testid="kv-bucket-delete-confirm"/>
                </label>
                <button
                    type="submit"
                    class="danger"
                    data-testid="kv-bucket-delete"
                    disabled=move || busy.get() || !matches()
                >
                    {move || if busy.get() { "Deleting…" } else { "Delete bucket" }}
                </button>
            </form>
            <Show when=move || error.get().is_some()>
                <p class="error notice-inline">{move || error.get()}</p>
            </Show>
        </section>
    }
}
