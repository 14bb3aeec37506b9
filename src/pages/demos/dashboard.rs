//! `/`: users in KV bucket `users`, live in every tab; each change also announced as a
//! `user.created|updated|deleted` event.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_nats::{until_connected, use_kv_watch, use_nats, UseKvWatchReturn};
use nats_ws::jetstream::JetStreamError;
use nats_ws::kv::{Entry, KvError, Operation, Store};

use crate::components::field::clear_if_sent;
use crate::model::{email_owner, validate_user, User, UserEvent, USERS_BUCKET};
use crate::session::{now_iso, random_hex};
use crate::use_identity;

/// Publishes `user.<action>`; best effort (the KV write is what matters).
fn announce(client: Option<&nats_ws::Client>, action: &str, user: &User, by: &str) {
    let Some(client) = client else { return };
    let event = UserEvent {
        id: user.id.clone(),
        name: user.name.clone(),
        email: user.email.clone(),
        action: action.to_owned(),
        by: by.to_owned(),
        at: now_iso(),
    };
    if let Ok(json) = serde_json::to_vec(&event) {
        let _ = client.publish(&format!("user.{action}"), json);
    }
}

/// The users being edited in this tab: id → the user as it was when the edit began. A row being
/// edited stays while its user is deleted elsewhere, so that what was typed is not lost.
type Editing = RwSignal<BTreeMap<String, User>>;

#[component]
pub fn Dashboard() -> impl IntoView {
    let users = use_kv_watch(USERS_BUCKET, ">");
    let editing: Editing = RwSignal::new(BTreeMap::new());
    // The rows: stored users and the ones being edited here, in creation order; each row follows
    // its own user by id, so a change elsewhere never resets a row that is being edited here.
    // Also counted: the stored users, and the values that are not users (not a JSON object).
    let rows = Memo::new(move |_| {
        let mut list = Vec::new();
        let mut unreadable = 0;
        let mut stored = 0;
        users.entries.with(|entries| {
            for (key, entry) in entries {
                match User::from_entry(key, &entry.value) {
                    Some(user) => list.push(user),
                    None => unreadable += 1,
                }
            }
            stored = list.len();
            // Deleted meanwhile, or written over with a value that is not a user: the row stays
            // with what was typed.
            editing.with(|drafts| {
                let gone: Vec<User> = drafts
                    .values()
                    .filter(|u| !list[..stored].iter().any(|s| s.id == u.id))
                    .cloned()
                    .collect();
                list.extend(gone);
            });
        });
        crate::sort::sort_by(&mut list, |a, b| {
            a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id))
        });
        let ids = list.into_iter().map(|u| u.id).collect::<Vec<_>>();
        (ids, stored, unreadable)
    });
    let total = move || {
        let (_, stored, unreadable) = rows.get();
        match unreadable {
            0 => format!("{stored} in total"),
            1 => format!("{stored} in total (1 other value in the bucket is not a user)"),
            n => format!("{stored} in total ({n} other values in the bucket are not users)"),
        }
    };
    view! {
        <section class="page-head">
            <h1>"Users"</h1>
            <p class="lede">
                "Stored in the KV bucket " <code>"users"</code>
                ". Every change shows up in every open tab, and is announced on "
                <code>"user.*"</code> "."
            </p>
        </section>
        <CreateUser users/>
        <section class="card">
            <div class="card-head">
                <h2>"All users"</h2>
                <span class="muted" data-testid="user-total">{total}</span>
            </div>
            <Show when=move || users.error.get().is_some()>
                <p class="error">{move || users.error.get()}</p>
            </Show>
            <Show
                when=move || users.loaded.get()
                fallback=move || {
                    users.error.with(Option::is_none).then(|| view! { <p class="muted">"Loading users…"</p> })
                }
            >
                <Show
                    when=move || !rows.with(|r| r.0.is_empty())
                    fallback=|| view! { <p class="empty">"No users yet: add the first one above."</p> }
                >
                    <ul class="user-list">
                        <For
                            each=move || rows.get().0
                            key=|id| id.clone()
                            children=move |id| view! { <UserRow id users editing/> }
                        />
                    </ul>
                </Show>
            </Show>
        </section>
    }
}

/// The pause before a user's creation is sent again once connected.
const AGAIN_AFTER: std::time::Duration = std::time::Duration::from_millis(250);

/// How long a user's creation may go on failing while connected (JetStream starting after a
/// restart takes seconds) before it is given up.
const GIVE_UP_CONNECTED_MS: f64 = 30_000.0;

/// Whether a write that failed is sent again: it failed for the connection or a server not
/// answering, not for what it asked.
fn worth_trying_again(e: &KvError) -> bool {
    matches!(e, KvError::JetStream(j) if j.is_transient() || matches!(j, JetStreamError::DeadlineExceeded(_)))
}

/// A write refused after an earlier try whose answer was lost: done, at the revision `stored`
/// finds, if what `key` holds now says that try was stored; else the refusal. A read that fails
/// is returned instead, so that a transient one is tried again.
async fn stored_before(
    store: &Store,
    key: &str,
    refused: KvError,
    stored: impl Fn(Option<&Entry>) -> Option<u64>,
) -> Result<u64, KvError> {
    stored(store.entry(key).await?.as_ref()).ok_or(refused)
}

/// A write of this page (a user added, saved or deleted), sent again while it fails for the
/// connection or a server not answering: the server away longer than the write's own 30 s of
/// tries, it is written once the server is back, however long that takes, as the other pages'
/// writes are (an edit or a delete made in a long outage was dropped, a creation was not).
/// `attempt(tried)` makes one try; `tried` says an earlier one may have been stored (its answer
/// lost), which the caller tells from a refusal ([`stored_before`]). `error` says why it is not
/// done yet, and is cleared when it is over, while the write is `wanted`. It gives up after
/// [`GIVE_UP_CONNECTED_MS`] of failing while connected, when another connection took over (⚙),
/// and when `wanted` says the user gave the write up.
async fn until_written<T, Fut>(
    client: Option<nats_ws::Client>,
    not_done: &'static str,
    error: RwSignal<Option<String>>,
    wanted: impl Fn() -> bool,
    mut attempt: impl FnMut(bool) -> Fut,
) -> Result<T, KvError>
where
    Fut: std::future::Future<Output = Result<T, KvError>>,
{
    // Not on a row whose edit was cancelled meanwhile (a row that is gone takes nothing).
    let say = |why: Option<String>| {
        if wanted() {
            let _ = error.try_set(why);
        }
    };
    if client.as_ref().is_some_and(|c| !c.status().is_connected()) {
        say(Some(format!(
            "{not_done} yet: no connection to the server; sent once it is back"
        )));
    }
    let mut tried = false;
    // Since when the tries fail while connected (ms): a server that answers nothing
    // (JetStream not running, say) is not waited for forever behind a "Live" badge.
    let mut failing_since: Option<f64> = None;
    let outcome = loop {
        match attempt(tried).await {
            Err(e) if worth_trying_again(&e) => {
                tried = true;
                if client.as_ref().is_some_and(|c| c.status().is_connected()) {
                    let now = js_sys::Date::now();
                    if now - *failing_since.get_or_insert(now) >= GIVE_UP_CONNECTED_MS {
                        break Err(e);
                    }
                } else {
                    failing_since = None;
                }
                say(Some(if failing_since.is_some() {
                    format!("{not_done} yet ({e}): trying again")
                } else {
                    format!("{not_done} yet: no connection to the server; sent once it is back")
                }));
                match &client {
                    Some(c) if until_connected(c).await => {}
                    _ => break Err(e),
                }
                gloo_timers::future::sleep(AGAIN_AFTER).await;
                // Given up by the user meanwhile (an edit cancelled): not sent again.
                if !wanted() {
                    break Err(e);
                }
            }
            other => break other,
        }
    };
    say(None);
    outcome
}

/// Why `email` may not be written for user `except` (none for a new one): another user stored
/// with it, as far as this tab has seen.
fn email_taken(users: UseKvWatchReturn, email: &str, except: Option<&str>) -> Option<String> {
    users.entries.with_untracked(|entries| {
        let stored = entries.iter().map(|(key, e)| (key, e.value.as_ref()));
        email_owner(stored, email, except)
            .map(|u| format!("{} is already the email of {}", email, u.display_name()))
    })
}

#[component]
fn CreateUser(users: UseKvWatchReturn) -> impl IntoView {
    let identity = use_identity();
    let nats = use_nats();
    let name = RwSignal::new(String::new());
    let email = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (n, e) = (
            name.get_untracked().trim().to_owned(),
            email.get_untracked().trim().to_owned(),
        );
        if let Err(why) = validate_user(&n, &e) {
            error.set(Some(why.to_owned()));
            return;
        }
        if let Some(why) = email_taken(users, &e, None) {
            error.set(Some(why));
            return;
        }
        let Some(store) = users.store() else {
            error.set(Some("not connected yet: the user was not saved".into()));
            return;
        };
        let now = now_iso();
        let user = User {
            id: random_hex(12),
            name: n,
            email: e,
            created_at: now.clone(),
            updated_at: now,
            ..Default::default()
        };
        let by = identity.get_untracked();
        let client = nats.client.get_untracked();
        busy.set(true);
        // Not tied to the page: a user added just before leaving it is still written.
        spawn_local(async move {
            let json = serde_json::to_vec(&user).unwrap_or_default();
            let outcome = until_written(
                client.clone(),
                "not saved",
                error,
                || true,
                |tried| {
                    let (store, id, json) = (store.clone(), user.id.clone(), json.clone());
                    async move {
                        match store.create(&id, json).await {
                            // An earlier try was stored and its answer lost: the id is this form's
                            // own.
                            Err(KvError::KeyExists { revision, .. }) if tried => Ok(revision),
                            other => other,
                        }
                    }
                },
            )
            .await;
            match outcome {
                Ok(_) => {
                    announce(client.as_ref(), "created", &user, &by);
                    clear_if_sent(name, &user.name);
                    clear_if_sent(email, &user.email);
                    let _ = error.try_set(None);
                }
                // The form keeps what was typed, so nothing is lost.
                Err(e) => {
                    let _ = error.try_set(Some(format!("not saved: {e}")));
                }
            }
            let _ = busy.try_set(false);
        });
    };
    view! {
        <form class="card create-user" on:submit=submit>
            <h2>"Add a user"</h2>
            <div class="row">
                <label>
                    "Name"
                    <input data-testid="user-name-input" bind:value=name placeholder="Ada Lovelace"/>
                </label>
                <label>
                    "Email"
                    <input
                        data-testid="user-email-input"
                        type="email"
                        bind:value=email
                        placeholder="ada@example.com"
                    />
                </label>
                <button data-testid="user-create" type="submit" disabled=move || busy.get()>
                    "Create"
                </button>
            </div>
            <Show when=move || error.get().is_some()>
                <p class="error" data-testid="user-create-error">{move || error.get()}</p>
            </Show>
        </form>
    }
}

#[component]
fn UserRow(id: String, users: UseKvWatchReturn, editing: Editing) -> impl IntoView {
    let identity = use_identity();
    let nats = use_nats();
    let current = {
        let id = id.clone();
        Memo::new(move |_| {
            users.entries.with(|map| {
                map.get(&id)
                    .and_then(|e| User::from_entry(&id, &e.value).map(|u| (u, e.revision)))
            })
        })
    };
    // The user as it was when this tab began editing it, while it does.
    let snapshot = {
        let id = id.clone();
        Memo::new(move |_| editing.with(|m| m.get(&id).cloned()))
    };
    let is_editing = move || snapshot.with(Option::is_some);
    // The key's revision while its value is not a user (another client wrote something else).
    let unreadable = {
        let id = id.clone();
        Memo::new(move |_| {
            users.entries.with(|map| {
                map.get(&id)
                    .filter(|e| User::from_entry(&id, &e.value).is_none())
                    .map(|e| e.revision)
            })
        })
    };
    // Deleted (or written over with something that is not a user) elsewhere while being edited
    // here: the row stays, with what was typed.
    let deleted = move || is_editing() && current.with(Option::is_none);
    let replaced = move || deleted() && unreadable.with(Option::is_some);
    // What the row shows: the stored user, else (deleted meanwhile) the one being edited.
    let shown = move || current.get().map(|(u, _)| u).or_else(|| snapshot.get());
    let draft_name = RwSignal::new(String::new());
    let draft_email = RwSignal::new(String::new());
    // The revision the edit started from: saving against it detects changes made meanwhile.
    let base_revision = RwSignal::new(0u64);
    let error = RwSignal::new(None::<String>);
    let conflict = RwSignal::new(None::<String>);
    // One save at a time: a second click while the first is on its way would write over the same
    // revision, fail, and report the user's own first save as someone else's change.
    let saving = RwSignal::new(false);
    // A delete on its way (perhaps waiting for the server): the row's buttons wait too.
    let deleting = RwSignal::new(false);
    // Edits begun or ended in this row: a save's answer acts on the edit it was made from only
    // (not on one the user cancelled and began again while it was on its way).
    let edits = StoredValue::new(0u64);
    // Keyboard use: the Name field takes the focus when an edit begins, and the row's Edit
    // button takes it back when the edit ends (the button a key pressed is gone with the view it
    // was in; the focus fell back to the page's top).
    let name_field = NodeRef::<leptos::html::Input>::new();
    let edit_button = NodeRef::<leptos::html::Button>::new();
    let row = NodeRef::<leptos::html::Li>::new();
    let refocus = StoredValue::new(false);
    crate::components::focus_when_mounted(name_field);
    Effect::new(move |_| {
        if let Some(button) = edit_button.get() {
            if refocus.try_update_value(std::mem::take) == Some(true)
                && focus_is_lost_or_in(row.get_untracked().as_deref())
            {
                let _ = button.focus();
            }
        }
    });
    let stop_editing = {
        let id = id.clone();
        move || {
            refocus.set_value(true);
            edits.update_value(|n| *n += 1);
            editing.update(|m| {
                m.remove(&id);
            });
            conflict.set(None);
            error.set(None);
        }
    };

    let start_edit = {
        let id = id.clone();
        move |_| {
            if let Some((u, rev)) = current.get_untracked() {
                edits.update_value(|n| *n += 1);
                draft_name.set(u.name.clone());
                draft_email.set(u.email.clone());
                base_revision.set(rev);
                editing.update(|m| {
                    m.insert(id.clone(), u);
                });
            }
        }
    };

    let save = {
        let stop_editing = stop_editing.clone();
        move |overwrite: bool| {
            if saving.get_untracked() {
                return;
            }
            let (n, e) = (
                draft_name.get_untracked().trim().to_owned(),
                draft_email.get_untracked().trim().to_owned(),
            );
            if let Err(why) = validate_user(&n, &e) {
                error.set(Some(why.to_owned()));
                return;
            }
            // A new email may not be another user's (one this user has already is kept).
            let kept = current.with_untracked(|c| {
                c.as_ref()
                    .is_some_and(|(u, _)| u.email.trim().eq_ignore_ascii_case(&e))
            });
            if !kept {
                if let Some(why) = email_taken(users, &e, Some(&id)) {
                    error.set(Some(why));
                    return;
                }
            }
            // Saved over the stored user, or, when it was deleted meanwhile, created again from
            // the one the edit began with.
            let stored = current.get_untracked();
            let (Some(store), Some(mut updated)) = (
                users.store(),
                stored
                    .clone()
                    .map(|(u, _)| u)
                    .or_else(|| snapshot.get_untracked()),
            ) else {
                error.set(Some("not connected: nothing was saved".into()));
                return;
            };
            updated.name = n;
            updated.email = e;
            updated.updated_at = now_iso();
            let by = identity.get_untracked();
            let client = nats.client.get_untracked();
            let expected = base_revision.get_untracked();
            // Written over what is there now when that is not a user, at its revision.
            let over = unreadable.get_untracked().filter(|_| stored.is_none());
            let recreate = stored.is_none() && over.is_none();
            let stop_editing = stop_editing.clone();
            let edit = edits.get_value();
            saving.set(true);
            spawn_local(async move {
                let json = serde_json::to_vec(&updated).unwrap_or_default();
                // Cancelled (or begun again) meanwhile: not sent again, and nothing said of it.
                // The page left is not a cancel: the save goes on (writes outlive their page).
                let same_edit = move || edits.try_get_value() == Some(edit);
                let wanted = move || edits.try_get_value().is_none_or(|e| e == edit);
                let result = until_written(client.clone(), "not saved", error, wanted, |tried| {
                    let (store, id, json) = (store.clone(), updated.id.clone(), json.clone());
                    async move {
                        let result = if overwrite {
                            store.put(&id, json.clone()).await
                        } else if let Some(revision) = over {
                            store.update(&id, json.clone(), revision).await
                        } else if recreate {
                            store.create(&id, json.clone()).await
                        } else {
                            store.update(&id, json.clone(), expected).await
                        };
                        match result {
                            // Refused after a try whose answer was lost: done if what is stored
                            // is this very edit (its time of update is part of it).
                            Err(
                                e @ (KvError::WrongLastRevision { .. } | KvError::KeyExists { .. }),
                            ) if tried => {
                                stored_before(&store, &id, e, |now| {
                                    now.filter(|now| now.value[..] == json[..])
                                        .map(|now| now.revision)
                                })
                                .await
                            }
                            other => other,
                        }
                    }
                })
                .await;
                // The row may be gone meanwhile (the edit cancelled and the user deleted).
                let _ = saving.try_set(false);
                match result {
                    Ok(revision) => {
                        let action = if recreate { "created" } else { "updated" };
                        announce(client.as_ref(), action, &updated, &by);
                        // Typed on while the save was on its way: the row stays open with it,
                        // and the next save goes over the revision just written.
                        let typed_since = |draft: RwSignal<String>, sent: &str| {
                            draft.try_with_untracked(|d| d.trim() != sent) == Some(true)
                        };
                        // Cancelled (and perhaps begun again) meanwhile, or the row is gone: left
                        // as the user left it.
                        let same_edit = edits.try_get_value() == Some(edit);
                        if same_edit
                            && (typed_since(draft_name, &updated.name)
                                || typed_since(draft_email, &updated.email))
                        {
                            base_revision.set(revision);
                            conflict.set(None);
                            error.set(None);
                            editing.update(|m| {
                                if let Some(u) = m.get_mut(&updated.id) {
                                    *u = updated.clone();
                                }
                            });
                        } else if same_edit {
                            stop_editing();
                        }
                    }
                    // The edit was cancelled meanwhile: what became of it is not this row's now.
                    Err(_) if !same_edit() => {}
                    Err(KvError::WrongLastRevision { .. } | KvError::KeyExists { .. }) => {
                        let now = store.get(&updated.id).await.ok().flatten();
                        let theirs = now
                            .and_then(|e| User::from_entry(&updated.id, &e.value))
                            .map(|u| format!("{} <{}>", u.display_name(), u.email));
                        let _ = conflict.try_set(Some(match theirs {
                            Some(t) => format!(
                                "Someone changed this user while you were editing (now: {t}). Your edit was not saved."
                            ),
                            None => "Someone deleted this user while you were editing. Your edit was not saved.".to_owned(),
                        }));
                    }
                    Err(e) => {
                        let _ = error.try_set(Some(format!("not saved: {e}")));
                    }
                }
            });
        }
    };
    let save_mine = save.clone();

    let delete = move |_| {
        if deleting.get_untracked() {
            return;
        }
        let (Some(store), Some((u, revision))) = (users.store(), current.get_untracked()) else {
            return;
        };
        let by = identity.get_untracked();
        let client = nats.client.get_untracked();
        // Where the focus goes once the row is gone: the next row's first button, else the one
        // before's, else the form to add a user.
        let li = row.get_untracked();
        let next_focus = li.as_ref().and_then(neighbour_button);
        deleting.set(true);
        spawn_local(async move {
            // At the revision shown: a change another tab made meanwhile (during a long outage,
            // say) is not deleted unseen.
            let deleted = until_written(
                client.clone(),
                "not deleted",
                error,
                || true,
                |tried| {
                    let (store, id) = (store.clone(), u.id.clone());
                    async move {
                        match store.delete_expecting(&id, revision).await {
                            // Refused after a try whose answer was lost: done if the user is gone.
                            Err(e @ KvError::WrongLastRevision { .. }) if tried => {
                                stored_before(&store, &id, e, |now| match now {
                                    Some(now) => {
                                        (now.operation != Operation::Put).then_some(now.revision)
                                    }
                                    None => Some(revision),
                                })
                                .await
                            }
                            other => other,
                        }
                    }
                },
            )
            .await;
            let _ = deleting.try_set(false);
            match deleted {
                Ok(_) => {
                    announce(client.as_ref(), "deleted", &u, &by);
                    if let Some(target) = next_focus {
                        // Not taken from wherever the user went meanwhile.
                        if focus_is_lost_or_in(li.as_deref()) {
                            let _ = target.focus();
                        }
                    }
                }
                Err(KvError::WrongLastRevision { .. }) => {
                    let _ = error.try_set(Some(
                        "not deleted: someone changed this user since it was shown; it is shown as it is now"
                            .to_owned(),
                    ));
                }
                Err(e) => {
                    let _ = error.try_set(Some(format!("not deleted: {e}")));
                }
            }
        });
    };

    let name = move || {
        shown()
            .map(|u| u.display_name().to_owned())
            .unwrap_or_default()
    };
    let email = move || shown().map(|u| u.email).unwrap_or_default();
    // The first character as written; `.avatar` shows it in capitals (CSS `text-transform`),
    // so the wasm carries no Unicode case tables for one letter.
    let initial = move || name().chars().next().map(String::from).unwrap_or_default();
    view! {
        <li class="user-row" data-testid="user-row" node_ref=row>
            <Show
                when=is_editing
                fallback=move || {
                    view! {
                        <div class="avatar" aria-hidden="true">{initial}</div>
                        <div class="who">
                            <span class="name">{name}</span>
                            <span class="email">{email}</span>
                        </div>
                        <div class="row-actions">
                            <button
                                class="secondary"
                                aria-label=move || format!("Edit {}", name())
                                node_ref=edit_button
                                disabled=move || deleting.get()
                                on:click=start_edit.clone()
                            >
                                "Edit"
                            </button>
                            <button
                                class="danger"
                                aria-label=move || format!("Delete {}", name())
                                disabled=move || deleting.get()
                                on:click=delete
                            >
                                {move || if deleting.get() { "Deleting…" } else { "Delete" }}
                            </button>
                        </div>
                    }
                }
            >
                // Enter saves, Escape cancels.
                // The app checks the fields (validate_user), not the browser's stricter email rule.
                <form
                    class="edit"
                    novalidate
                    on:submit={
                        let save = save.clone();
                        move |ev: leptos::ev::SubmitEvent| {
                            ev.prevent_default();
                            save(false)
                        }
                    }
                    on:keydown={
                        let stop_editing = stop_editing.clone();
                        move |ev: leptos::ev::KeyboardEvent| {
                            if ev.key() == "Escape" {
                                ev.prevent_default();
                                stop_editing()
                            }
                        }
                    }
                >
                    <input bind:value=draft_name aria-label="Name" node_ref=name_field/>
                    <input bind:value=draft_email type="email" aria-label="Email"/>
                    <button
                        type="submit"
                        aria-label=move || format!("Save {}", name())
                        disabled=move || saving.get()
                    >
                        {move || if saving.get() { "Saving…" } else { "Save" }}
                    </button>
                    <button
                        type="button"
                        class="secondary"
                        aria-label=move || format!("Cancel editing {}", name())
                        on:click={
                            let stop_editing = stop_editing.clone();
                            move |_| stop_editing()
                        }
                    >
                        "Cancel"
                    </button>
                </form>
            </Show>
            <Show when=move || deleted() && conflict.with(Option::is_none)>
                <div class="conflict" role="status" data-testid="user-deleted-notice">
                    <span>
                        {move || if replaced() {
                            "Someone replaced this user with a value that is not a user while you were editing. Save writes your changes over it; Cancel lets it go."
                        } else {
                            "Someone deleted this user while you were editing. Save creates it again with your changes; Cancel lets it go."
                        }}
                    </span>
                </div>
            </Show>
            <Show when=move || conflict.get().is_some()>
                <div class="conflict" role="alert">
                    <span>{move || conflict.get()}</span>
                    <button
                        class="secondary"
                        on:click={
                            let save = save_mine.clone();
                            move |_| save(true)
                        }
                    >
                        "Save mine anyway"
                    </button>
                </div>
            </Show>
            <Show when=move || error.get().is_some()>
                <p class="error" data-testid="user-row-error">{move || error.get()}</p>
            </Show>
        </li>
    }
}

/// The first button of the row after `row`, else of the one before it, else the form's name field.
fn neighbour_button(row: &web_sys::HtmlLiElement) -> Option<web_sys::HtmlElement> {
    use wasm_bindgen::JsCast;
    let first_button = |el: Option<web_sys::Element>| {
        el.and_then(|e| e.query_selector("button").ok().flatten())
            .and_then(|b| b.dyn_into::<web_sys::HtmlElement>().ok())
    };
    first_button(row.next_element_sibling())
        .or_else(|| first_button(row.previous_element_sibling()))
        .or_else(|| {
            row.owner_document()?
                .query_selector("[data-testid=user-name-input]")
                .ok()
                .flatten()
                .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        })
}

/// Whether the focus may be moved for the user: it is nowhere (the page's body, as when the
/// element that had it was removed) or still in `row`.
fn focus_is_lost_or_in(row: Option<&web_sys::HtmlElement>) -> bool {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return false;
    };
    match document.active_element() {
        None => true,
        Some(active) => {
            document.body().is_some_and(|body| {
                let body: &web_sys::Element = &body;
                *body == active
            }) || row.is_some_and(|row| row.contains(Some(&active)))
        }
    }
}
