//! `/chat`: rooms on `chat.room.<room>`, kept in stream `CHAT`. History and live messages come
//! through one ordered consumer per room, so reconnects and server restarts lose and repeat
//! nothing; sends are acknowledged by the stream and deduplicated by message id.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::future::{AbortHandle, Abortable};
use futures::StreamExt;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_nats::{spawn_while_mounted, until_connected, use_nats};
use nats_ws::jetstream::{
    ApiErrorKind, DeliverPolicy, JetStream, JetStreamError, JsMessage, OrderedItem, OrderedOptions,
    PublishOptions, StreamConfig,
};
use nats_ws::Client;

use crate::components::pacer::{Paced, Pacer};
use crate::components::toasts::Toasts;
use crate::model::{
    room_subject, valid_room, ChatMessage, CHAT_STREAM, CHAT_SUBJECTS, DEFAULT_ROOMS,
};
use crate::session::{now_iso, outbox, random_hex};
use crate::use_identity;

/// Messages kept on screen per room.
const SHOWN: usize = 200;
/// How long one try of a send waits (retrying while the server is unreachable) before the
/// message shows why it is not sent yet; the next try follows.
const SEND_DEADLINE: Duration = Duration::from_secs(30);
/// Pause between tries of a send, doubling up to the maximum.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(5);

/// Makes sure stream `CHAT` exists (file storage, 1000 messages, 24 h), trying again every few
/// seconds while the server is unreachable, every 10 s while the user's permissions refuse it
/// (a stream this user may not create may be made by another), and at once after a new
/// connection; `error` shows why it is not ready yet.
async fn ensure_stream_until_ready(js: &JetStream, error: RwSignal<Option<String>>) {
    loop {
        let pause = match ensure_stream(js).await {
            Ok(()) => return error.set(None),
            Err(e) if e.is_permission_denied() => {
                error.set(Some(format!(
                    "chat history unavailable: {}",
                    crate::session::explain(&e)
                )));
                Duration::from_secs(10)
            }
            Err(e) => {
                error.set(Some(format!(
                    "chat history unavailable, retrying: {}",
                    crate::session::explain(&e)
                )));
                Duration::from_secs(2)
            }
        };
        leptos_nats::pause_until_reconnect(js.client(), pause).await;
    }
}

/// One attempt at [`ensure_stream_until_ready`]. A stream that exists with other settings is used
/// as it is; tabs racing to create it all succeed (see [`JetStream::ensure_stream`]).
async fn ensure_stream(js: &JetStream) -> Result<(), JetStreamError> {
    let config = StreamConfig {
        max_msgs: 1000,
        max_age: Duration::from_secs(24 * 3600),
        duplicate_window: Duration::from_secs(120),
        num_replicas: js.default_replicas().await,
        ..StreamConfig::new(CHAT_STREAM, [CHAT_SUBJECTS])
    };
    js.ensure_stream(&config).await
}

/// `HH:MM` in the viewer's time zone, from an RFC 3339 timestamp.
fn local_time(at: &str) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_str(at));
    if date.get_time().is_nan() {
        return String::new();
    }
    format!("{:02}:{:02}", date.get_hours(), date.get_minutes())
}

/// Who wrote a message in a room's subject that is not the app's JSON.
const ANOTHER_CLIENT: &str = "another client";

/// A message stored in `room`'s subject that is not the app's JSON: its text as it came (UTF-8,
/// at most 2 000 characters), from [`ANOTHER_CLIENT`], at the time the stream stored it.
fn foreign_message(m: &JsMessage, room: &str) -> ChatMessage {
    let info = m.info();
    let at = info.as_ref().map(|i| {
        let ms = (i.timestamp_ns / 1_000_000) as f64;
        String::from(js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms)).to_iso_string())
    });
    ChatMessage {
        // The stream's sequence: one message, one id, however often it is read.
        id: info.map_or_else(
            || random_hex(12),
            |i| format!("stored-{}", i.stream_sequence),
        ),
        room: room.to_owned(),
        user: ANOTHER_CLIENT.to_owned(),
        text: crate::model::clip_payload(&m.message.payload, TEXT_AT_MOST),
        at: at.unwrap_or_default(),
    }
}

/// How near its end the message list counts as read at its end, in pixels.
const AT_END_PX: i32 = 48;

/// The characters of a message's text shown (the composer takes as many), and of its author's
/// name: what another client stores may be longer.
const TEXT_AT_MOST: usize = 2000;
const NAME_AT_MOST: usize = 64;

/// A draft's length in characters when it is longer than a message may be.
fn too_long(draft: &str) -> Option<usize> {
    let n = draft.trim_end().chars().count();
    (n > TEXT_AT_MOST).then_some(n)
}

/// A message in the app's own shape, as another client may have written it: its text and name
/// cut as a foreign one's are (a 10 000-character text was drawn whole).
fn clipped(mut message: ChatMessage) -> ChatMessage {
    if message.text.len() > TEXT_AT_MOST {
        message.text = crate::model::clip_text(&message.text, TEXT_AT_MOST);
    }
    if message.user.len() > NAME_AT_MOST {
        message.user = crate::model::clip_text(&message.user, NAME_AT_MOST);
    }
    message
}

/// What a screen reader says of a new message from someone else in `room` (the room it was read
/// from, not the one its payload names): who, where, and the text's first 200 characters.
fn announcement(room: &str, message: &ChatMessage) -> String {
    let text = crate::model::clip_text(&message.text, 200);
    format!("{} in #{room}: {text}", message.user)
}

/// Whether a feed's error says stream `CHAT` is gone (deleted by an admin, say): the page
/// creates it again, as it does when it finds none.
fn stream_gone(error: &JetStreamError) -> bool {
    error.api_kind() == Some(ApiErrorKind::StreamNotFound)
}

/// Stores a message in its room with acknowledgement; its id is the `Nats-Msg-Id`, so a retry
/// (after a disconnect, or a reload that resends the outbox) is stored once.
async fn publish(js: &JetStream, message: &ChatMessage) -> Result<(), JetStreamError> {
    let json = serde_json::to_vec(message).unwrap_or_default();
    let options = PublishOptions::default()
        .msg_id(message.id.clone())
        .deadline(SEND_DEADLINE);
    js.publish_with(&room_subject(&message.room), None, &json, &options)
        .await
        .map(drop)
}

#[component]
pub fn Chat() -> impl IntoView {
    let nats = use_nats();
    // The tab's, above the client and the page: a change of connection (⚙ Apply, signing in)
    // and a visit to another page keep the room on screen and what was typed in each room.
    let ChatOutbox {
        room: current,
        drafts,
        ..
    } = expect_context::<ChatOutbox>();
    view! {
        <section class="page-head">
            <h1>"Chat"</h1>
            <p class="lede">
                "Rooms on " <code>"chat.room.<room>"</code> ", kept in stream " <code>"CHAT"</code>
                ": history loads when a room opens, and a message sent while reconnecting arrives once, when the server is back."
            </p>
        </section>
        {move || match nats.client.get() {
            Some(client) => view! { <ChatWith client current drafts/> }.into_any(),
            None => view! { <p class="muted">"Not connected."</p> }.into_any(),
        }}
    }
}

/// Messages this tab sent that the stream has not shown back yet, for the whole app: each is
/// sent until the stream has stored it from whichever page the tab is on, not only while its
/// room is open, and again after a reload (they wait in the tab's storage, `session::outbox`).
/// Provided by [`provide_chat_outbox`]; [`ChatSender`] sends them.
#[derive(Clone, Copy)]
pub struct ChatOutbox {
    outgoing: RwSignal<Vec<Outgoing>>,
    /// The room on screen and what is typed in each room, kept for the tab: leaving /chat and
    /// coming back opens the room left, with its draft (it opened #general, the drafts gone).
    room: RwSignal<String>,
    drafts: StoredValue<std::collections::HashMap<String, String>>,
}

impl ChatOutbox {
    /// Keeps `message` (in the tab's storage too) until the stream has it; [`ChatSender`] sends it.
    fn send(&self, message: ChatMessage) {
        outbox::add(&message);
        self.outgoing.update(|o| o.push(Outgoing::new(message)));
    }

    /// Drops message `id` unsent, as its sender asked. A try already on its way may still store
    /// it; no other is made.
    fn discard(&self, id: &str) {
        self.outgoing.update(|o| o.retain(|p| p.message.id != id));
        outbox::remove(id);
    }

    /// Sends message `id` again after it was refused.
    fn retry(&self, id: &str) {
        self.outgoing.update(|o| {
            if let Some(p) = o.iter_mut().find(|p| p.message.id == id) {
                p.refused = false;
            }
        });
    }

    /// The stream showed message `id`: it is stored, nothing of it is left to send. Whether this
    /// tab sent it.
    fn seen(&self, id: &str) -> bool {
        let ours = self
            .outgoing
            .with_untracked(|o| o.iter().any(|p| p.message.id == id));
        if ours {
            self.outgoing.update(|o| o.retain(|p| p.message.id != id));
            outbox::remove(id);
        }
        ours
    }
}

/// Provides [`ChatOutbox`], holding what a previous load of this tab left unsent. Call in the root.
pub fn provide_chat_outbox() {
    let unsent = outbox::all().into_iter().map(Outgoing::new).collect();
    provide_context(ChatOutbox {
        outgoing: RwSignal::new(unsent),
        room: RwSignal::new(DEFAULT_ROOMS[0].to_owned()),
        drafts: StoredValue::new(std::collections::HashMap::new()),
    });
}

/// Sends the chat outbox over the current connection; renders nothing. In the root, below
/// [`provide_chat_outbox`].
#[component]
pub fn ChatSender() -> impl IntoView {
    let nats = use_nats();
    move || nats.client.get().map(|client| view! { <SendOver client/> })
}

/// One sender over `client`, made again for a new client (new settings), the old one's aborted
/// with it. It sends the outbox in its order, one message at a time: the next only once the one
/// before is stored (or refused, or dropped by its sender), so that messages written during an
/// outage are stored, and shown everywhere, in the order they were written. (One delivery per
/// message, each retrying on its own, stored them in whatever order their retries met the
/// server again: after an outage longer than a try, the newest first.)
#[component]
fn SendOver(client: Client) -> impl IntoView {
    let outbox = expect_context::<ChatOutbox>();
    let js = client.jetstream();
    let sending = StoredValue::new(false);
    // The sender running now, stopped with the component (not with this effect, which runs
    // again at every send; and one handle, not a cleanup per burst of sends).
    let task = StoredValue::new_local(None::<AbortHandle>);
    on_cleanup(move || {
        if let Some(Some(handle)) = task.try_update_value(Option::take) {
            handle.abort();
        }
    });
    Effect::new(move |_| {
        let waiting = outbox.outgoing.with(|o| o.iter().any(Outgoing::to_send));
        if !waiting || sending.get_value() {
            return;
        }
        sending.set_value(true);
        let sender = send_in_order(js.clone(), outbox.outgoing, sending);
        let (handle, registration) = AbortHandle::new_pair();
        task.set_value(Some(handle));
        spawn_local(async move {
            let _ = Abortable::new(sender, registration).await;
        });
    });
}

/// Delivers the outbox's messages in order until none is left to send, then says so in
/// `sending` (the next send starts it again).
async fn send_in_order(
    js: JetStream,
    outgoing: RwSignal<Vec<Outgoing>>,
    sending: StoredValue<bool>,
) {
    loop {
        let next = outgoing
            .try_with_untracked(|o| o.iter().find(|p| p.to_send()).map(|p| p.message.clone()))
            .flatten();
        let Some(message) = next else {
            let _ = sending.try_set_value(false);
            return;
        };
        deliver(&js, message, outgoing).await;
    }
}

/// Sends `message` until the stream has stored it — once: its id is the `Nats-Msg-Id` — waiting
/// for the connection between tries. The last try's error is shown with the message meanwhile.
/// A refusal that another try would meet again (permission, size) ends the delivery: the message
/// says why and waits for its sender's Retry or Discard.
async fn deliver(js: &JetStream, message: ChatMessage, outgoing: RwSignal<Vec<Outgoing>>) {
    let mut pause = RETRY_PAUSE;
    loop {
        // Its room's feed may have shown it stored while the answer was lost: sending it again
        // after the stream's duplicate window (2 min) would store it twice.
        let still_unseen = outgoing
            .try_with_untracked(|o| o.iter().any(|p| p.message.id == message.id))
            .unwrap_or(false);
        if !still_unseen {
            return;
        }
        match publish(js, &message).await {
            Ok(()) => {
                outbox::remove(&message.id);
                // Shown as sending until its room's feed shows it stored (no gap on screen).
                return outgoing.update(|o| {
                    if let Some(p) = o.iter_mut().find(|p| p.message.id == message.id) {
                        p.sent = true;
                        // An earlier try's error no longer holds: it is stored.
                        p.error = None;
                        p.refused = false;
                    }
                });
            }
            Err(e) => {
                let refused =
                    !e.is_transient() && !matches!(e, JetStreamError::DeadlineExceeded(_));
                outgoing.update(|o| {
                    if let Some(p) = o.iter_mut().find(|p| p.message.id == message.id) {
                        p.error = Some(crate::session::explain(&e));
                        p.refused = refused;
                    }
                });
                if refused {
                    return;
                }
            }
        }
        until_connected(js.client()).await;
        gloo_timers::future::sleep(pause).await;
        pause = (pause * 2).min(MAX_RETRY_PAUSE);
        // No stream answering (deleted by an admin, say): made again, as when a page finds none.
        let _ = ensure_stream(js).await;
    }
}

/// The page over one client: `current` (the room on screen) and `drafts` (what is typed in
/// each room) are the page's, and outlive it.
#[component]
fn ChatWith(
    client: Client,
    current: RwSignal<String>,
    drafts: StoredValue<std::collections::HashMap<String, String>>,
) -> impl IntoView {
    let js = client.jetstream();
    let stream_error = RwSignal::new(None::<String>);
    let outbox = expect_context::<ChatOutbox>();
    // The rooms listed whatever the stream holds: the defaults, the one on screen, and those with
    // messages still on their way (one added while the server was down, say).
    let rooms_without_history = move || {
        let mut rooms: BTreeSet<String> = DEFAULT_ROOMS.iter().map(|r| (*r).to_owned()).collect();
        rooms.insert(current.get_untracked());
        outbox
            .outgoing
            .with_untracked(|o| rooms.extend(o.iter().map(|p| p.message.room.clone())));
        rooms
    };
    let rooms = RwSignal::new(rooms_without_history());

    // Rooms with messages, live: the last message per room subject, headers only.
    {
        let js = js.clone();
        spawn_while_mounted(async move {
            ensure_stream_until_ready(&js, stream_error).await;
            let options = OrderedOptions {
                filter_subject: Some("chat.room.*".into()),
                deliver_policy: DeliverPolicy::LastPerSubject,
                headers_only: true,
                ..Default::default()
            };
            let mut found = js.ordered_items(CHAT_STREAM, options);
            // Errors come and go (the ordered consumer keeps trying): the list stays live after
            // them; a stream that is gone is made again.
            while let Some(next) = found.next().await {
                let m = match next {
                    Ok(OrderedItem::Message(m)) => m,
                    // CHAT was deleted and made again: the rooms only it had are gone, as from a
                    // page opened now; the one on screen and those with messages on their way
                    // stay.
                    Ok(OrderedItem::Reset) => {
                        rooms.set(rooms_without_history());
                        continue;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        if stream_gone(&e) {
                            ensure_stream_until_ready(&js, stream_error).await;
                        }
                        continue;
                    }
                };
                if let Some(room) = m.message.subject.strip_prefix("chat.room.") {
                    if valid_room(room) {
                        rooms.update(|r| {
                            r.insert(room.to_owned());
                        });
                    }
                }
            }
        });
    }

    let identity = use_identity();
    let new_room = RwSignal::new(String::new());
    let room_error = RwSignal::new(None::<String>);
    let add_room = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let name = new_room.get_untracked().trim().to_ascii_lowercase();
        if !valid_room(&name) {
            room_error.set(Some(
                "room names are letters, digits, '-' and '_' (32 at most)".into(),
            ));
            return;
        }
        room_error.set(None);
        let known = rooms.with_untracked(|r| r.contains(&name));
        rooms.update(|r| {
            r.insert(name.clone());
        });
        current.set(name.clone());
        new_room.set(String::new());
        if !known {
            // A first message stores the room in the stream, so every tab (and every later one)
            // lists it.
            outbox.send(ChatMessage {
                id: random_hex(16),
                room: name.clone(),
                user: identity.get_untracked(),
                text: format!("created #{name}"),
                at: now_iso(),
            });
        }
    };

    view! {
        <div class="chat">
            <aside class="card rooms">
                <h2>"Rooms"</h2>
                <ul>
                    <For
                        each=move || {
                            let mut list: Vec<String> = rooms.get().into_iter().collect();
                            crate::sort::sort_by(&mut list, |a, b| {
                                (a != "general", a).cmp(&(b != "general", b))
                            });
                            list
                        }
                        key=|r| r.clone()
                        children=move |room| {
                            let (r, shown) = (room.clone(), room.clone());
                            view! {
                                <li>
                                    <button
                                        class="room"
                                        class:active=move || current.get() == r
                                        // The room shown, for screen readers too.
                                        aria-current=move || (current.get() == shown).then_some("true")
                                        data-testid=format!("chat-room-{room}")
                                        on:click={
                                            let room = room.clone();
                                            move |_| current.set(room.clone())
                                        }
                                    >
                                        "# "
                                        {room.clone()}
                                    </button>
                                </li>
                            }
                        }
                    />
                </ul>
                <form class="new-room" on:submit=add_room>
                    <input bind:value=new_room placeholder="new-room" aria-label="New room name"/>
                    <button type="submit" class="secondary">"Add"</button>
                </form>
                <Show when=move || room_error.get().is_some()>
                    <p class="error" data-testid="chat-room-error">{move || room_error.get()}</p>
                </Show>
            </aside>
            <section class="card room-view">
                <Show when=move || stream_error.get().is_some()>
                    <p class="error">{move || stream_error.get()}</p>
                </Show>
                {
                    let js = js.clone();
                    move || {
                        let room = current.get();
                        let js = js.clone();
                        view! { <Room room js drafts stream_error/> }
                    }
                }
            </section>
        </div>
    }
}

/// A message this tab sent that the stream has not shown back yet.
#[derive(Clone, PartialEq, Eq)]
struct Outgoing {
    message: ChatMessage,
    error: Option<String>,
    /// Acknowledged by the stream; its room's feed has not shown it yet.
    sent: bool,
    /// Refused for what it is (`error` says why): not tried again until its sender says Retry.
    refused: bool,
}

impl Outgoing {
    /// Not sent yet, nor tried.
    fn new(message: ChatMessage) -> Self {
        Outgoing {
            message,
            error: None,
            sent: false,
            refused: false,
        }
    }

    /// Still to be sent: not stored yet, and not refused (waiting for its sender's Retry).
    fn to_send(&self) -> bool {
        !self.sent && !self.refused
    }
}

#[component]
fn Room(
    room: String,
    js: JetStream,
    drafts: StoredValue<std::collections::HashMap<String, String>>,
    /// What the page says above the room about stream CHAT: not said again in the room.
    stream_error: RwSignal<Option<String>>,
) -> impl IntoView {
    let identity = use_identity();
    let messages = RwSignal::new(Vec::<ChatMessage>::new());
    let loaded = RwSignal::new(false);
    let toasts = expect_context::<Toasts>();
    let outbox = expect_context::<ChatOutbox>();
    let outgoing = {
        let room = room.clone();
        Memo::new(move |_| {
            outbox.outgoing.with(|o| {
                o.iter()
                    .filter(|p| p.message.room == room)
                    .cloned()
                    .collect::<Vec<_>>()
            })
        })
    };
    // What was typed in this room before (another room opened meanwhile, a new connection).
    let draft = RwSignal::new(
        drafts
            .with_value(|d| d.get(&room).cloned())
            .unwrap_or_default(),
    );
    // The draft's length when it is too long to send: counted once a keystroke for the composer's
    // note, its Send and its field.
    let over = Memo::new(move |_| draft.with(|d| too_long(d)));
    {
        let room = room.clone();
        Effect::new(move |_| {
            let text = draft.get();
            drafts.update_value(|d| {
                if text.is_empty() {
                    d.remove(&room);
                } else {
                    d.insert(room.clone(), text);
                }
            });
        });
    }
    let feed_error = RwSignal::new(None::<String>);

    {
        let js = js.clone();
        let room = room.clone();
        let subject = room_subject(&room);
        spawn_while_mounted(async move {
            ensure_stream_until_ready(&js, feed_error).await;
            let options = OrderedOptions {
                filter_subject: Some(subject),
                deliver_policy: DeliverPolicy::All,
                ..Default::default()
            };
            let mut feed = js.ordered_items(CHAT_STREAM, options);
            // Whether the room's history is in: a screen reader hears the messages others send
            // from then on, not the history as it loads.
            let mut caught_up = false;
            // Arrived and not drawn yet (the last SHOWN of them at most), and what is to be said
            // of them: a busy room is drawn and announced once a frame (components/pacer.rs).
            let mut arrived: Vec<ChatMessage> = Vec::new();
            let mut to_say: Vec<String> = Vec::new();
            let mut pacer = Pacer::default();
            let draw = move |arrived: &mut Vec<ChatMessage>, to_say: &mut Vec<String>| {
                messages.update(|list| {
                    list.append(arrived);
                    let excess = list.len().saturating_sub(SHOWN);
                    list.drain(..excess);
                });
                for text in to_say.drain(..) {
                    toasts.announce(text);
                }
            };
            loop {
                let next = match pacer.next(&mut feed, !arrived.is_empty()).await {
                    Paced::Item(next) => next,
                    Paced::Ended => {
                        draw(&mut arrived, &mut to_say);
                        break;
                    }
                    Paced::Draw => {
                        draw(&mut arrived, &mut to_say);
                        pacer.drawn();
                        continue;
                    }
                };
                let m = match next {
                    Ok(OrderedItem::Message(m)) => m,
                    // The history is in: drawn at once, and only now may an empty room say so.
                    Ok(OrderedItem::CaughtUp) => {
                        caught_up = true;
                        draw(&mut arrived, &mut to_say);
                        pacer.drawn();
                        loaded.set(true);
                        continue;
                    }
                    // CHAT was deleted and made again: what the page shows is gone from it, as
                    // from every page opened since (what was still to be drawn or said of it
                    // too); the room's history starts over.
                    Ok(OrderedItem::Reset) => {
                        feed_error.set(None);
                        messages.set(Vec::new());
                        arrived.clear();
                        to_say.clear();
                        caught_up = false;
                        loaded.set(false);
                        continue;
                    }
                    // The consumer is made again after the error shown: it is over.
                    Ok(OrderedItem::Resumed) => {
                        feed_error.set(None);
                        continue;
                    }
                    Ok(_) => continue,
                    // Shown until the next message or the consumer is made again; it keeps
                    // trying, and a stream that is gone is made again.
                    Err(e) => {
                        feed_error.set(Some(format!(
                            "history unavailable, retrying: {}",
                            crate::session::explain(&e)
                        )));
                        if stream_gone(&e) {
                            // What arrived is drawn first: this may take a while.
                            draw(&mut arrived, &mut to_say);
                            pacer.drawn();
                            ensure_stream_until_ready(&js, feed_error).await;
                        }
                        continue;
                    }
                };
                // Cleared by the next message, without a notification for every one.
                if feed_error.with_untracked(Option::is_some) {
                    feed_error.set(None);
                }
                let message = match serde_json::from_slice::<ChatMessage>(&m.message.payload) {
                    Ok(message) => clipped(message),
                    // Another client's plain text, say: shown as it came, not left out.
                    Err(_) => foreign_message(&m, &room),
                };
                let ours = outbox.seen(&message.id);
                // Another client may store the same message twice (no msg id, or after the
                // duplicate window): show it once.
                let shown = |list: &[ChatMessage]| list.iter().any(|m| m.id == message.id);
                if shown(&arrived) || messages.with_untracked(|l| shown(l)) {
                    continue;
                }
                if caught_up && !ours && message.user != identity.get_untracked() {
                    to_say.push(announcement(&room, &message));
                }
                arrived.push(message);
                let excess = arrived.len().saturating_sub(SHOWN);
                arrived.drain(..excess);
                // One's own message is drawn at once: it has just left the list of those on
                // their way.
                if ours || pacer.due() {
                    draw(&mut arrived, &mut to_say);
                    pacer.drawn();
                }
            }
        });
    }

    let send = {
        let room = room.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let text = draft.get_untracked();
            // Too long: kept in the box, as the composer says, for its writer to shorten.
            if text.trim().is_empty() || over.get_untracked().is_some() {
                return;
            }
            let message = ChatMessage {
                id: random_hex(16),
                room: room.clone(),
                user: identity.get_untracked(),
                text: text.trim_end().to_owned(),
                at: now_iso(),
            };
            draft.set(String::new());
            outbox.send(message);
        }
    };

    // The list follows the newest message while it is read at its end (as it is when the room
    // opens, and after one's own message); scrolled up to read, it stays where it is.
    let list = NodeRef::<leptos::html::Ol>::new();
    let at_end = StoredValue::new(true);
    // Where the page last scrolled the list to: only a scroll away from there (the reader's) ends
    // the following. A scroll event comes a frame late, when messages drawn meanwhile already
    // put the end further down: measured from the end then, it read as the reader's.
    let scrolled_to = StoredValue::new(0);
    // Messages came below while the reader was scrolled up: a button says so and takes them there.
    let below = RwSignal::new(false);
    // The list at its end, where the page put it. The room may be gone by then (another room or
    // page opened).
    let scroll_to_end = move || {
        let list = list.try_get_untracked().flatten();
        if let Some(list) = &list {
            list.set_scroll_top(list.scroll_height());
            let _ = scrolled_to.try_set_value(list.scroll_top());
        }
        list
    };
    let to_end = move || {
        at_end.set_value(true);
        below.set(false);
        // The button is gone: the keyboard goes on from the list, not the top of the page.
        if let Some(list) = scroll_to_end() {
            let _ = list.focus();
        }
    };
    Effect::new(move |before: Option<(usize, Option<String>)>| {
        let newest = messages.with(|l| l.last().map(|m| m.id.clone()));
        let sending = outgoing.with(Vec::len);
        // One's own message just sent: shown wherever the list was.
        if before.as_ref().is_some_and(|(before, _)| sending > *before) {
            at_end.set_value(true);
            below.set(false);
        }
        let came = newest.is_some()
            && before.is_some_and(|(_, before)| before.is_some() && before != newest);
        if came && !at_end.get_value() {
            below.set(true);
        }
        if at_end.get_value() {
            // After the lists are drawn (their own effects run too).
            request_animation_frame(move || {
                scroll_to_end();
            });
        }
        (sending, newest)
    });
    let scrolled = move |_| {
        let Some(Some(list)) = list.try_get_untracked() else {
            return;
        };
        let top = list.scroll_top();
        let gap = list.scroll_height() - top - list.client_height();
        if gap <= AT_END_PX {
            at_end.set_value(true);
            if below.get_untracked() {
                below.set(false);
            }
        } else if top + AT_END_PX < scrolled_to.get_value() {
            at_end.set_value(false);
        }
    };

    let me = move || identity.get();
    view! {
        <div class="room-head">
            <h2>"# " {room.clone()}</h2>
            <span class="muted">
                {move || match messages.get().len() {
                    1 => "1 message".to_owned(),
                    n => format!("{n} messages"),
                }}
            </span>
        </div>
        <Show when=move || {
            feed_error.with(|f| f.is_some() && stream_error.with(|s| s != f))
        }>
            <p class="error" data-testid="chat-feed-error">{move || feed_error.get()}</p>
        </Show>
        // Focusable: a keyboard user scrolls a long history with the arrow keys. Not a live
        // region: new messages from others are announced through the app's one
        // (components/toasts.rs), once the history is in.
        <div class="messages-box">
        <ol class="messages" aria-label="Messages" tabindex="0" node_ref=list on:scroll=scrolled>
            <Show when=move || loaded.get() && messages.get().is_empty() && outgoing.get().is_empty()>
                <li class="empty">"No messages yet. Say hello!"</li>
            </Show>
            <For
                each=move || messages.get()
                key=|m| m.id.clone()
                children=move |m| {
                    let mine = m.user == me();
                    let time = local_time(&m.at);
                    view! {
                        <li class="message" class:mine=mine data-testid="chat-message">
                            <div class="meta">
                                <span class="author">{m.user}</span>
                                <time>{time}</time>
                            </div>
                            <p class="text">{m.text}</p>
                        </li>
                    }
                }
            />
            <For
                each=move || outgoing.get()
                key=|p| (p.message.id.clone(), p.error.clone(), p.refused, p.sent)
                children=move |p| {
                    let id = p.message.id.clone();
                    let state = match (&p.error, p.refused, p.sent) {
                        (_, true, _) => "not sent",
                        (Some(_), false, _) => "not sent yet, retrying…",
                        (None, false, true) => "sent",
                        (None, false, false) => "sending…",
                    };
                    // Stuck or refused: its sender may drop it, and send a refused one again.
                    let actions = p.error.is_some().then(|| {
                        let retry = p.refused.then(|| {
                            let id = id.clone();
                            view! {
                                <button class="secondary" on:click=move |_| outbox.retry(&id)>"Retry"</button>
                            }
                        });
                        view! {
                            <div class="row-actions">
                                {retry}
                                <button class="secondary" data-testid="chat-discard" on:click=move |_| outbox.discard(&id)>
                                    "Discard"
                                </button>
                            </div>
                        }
                    });
                    view! {
                        <li class="message mine pending" data-testid="chat-pending">
                            <div class="meta">
                                <span class="author">{p.message.user}</span>
                                <span class="muted">{state}</span>
                            </div>
                            <p class="text">{p.message.text}</p>
                            {p.error.map(|e| view! { <p class="error">{e}</p> })}
                            {actions}
                        </li>
                    }
                }
            />
        </ol>
        <Show when=move || below.get()>
            <button class="new-below" data-testid="chat-new-below" on:click=move |_| to_end()>
                "New messages ↓"
            </button>
        </Show>
        </div>
        <form class="composer" on:submit=send>
            // No `maxlength`: it would cut a long paste without a word. Too long, the text stays
            // in the box and the composer says by how much.
            <input
                data-testid="chat-input"
                bind:value=draft
                placeholder=format!("Message #{room}")
                autocomplete="off"
                aria-invalid=move || over.with(Option::is_some).to_string()
                aria-describedby="chat-too-long"
            />
            <button
                data-testid="chat-send"
                type="submit"
                disabled=move || over.with(Option::is_some)
            >
                "Send"
            </button>
        </form>
        <p class="error composer-note" id="chat-too-long" data-testid="chat-too-long" role="status">
            {move || over.get().map(|n| {
                format!("{n} characters: {} over the {TEXT_AT_MOST} a message takes.", n - TEXT_AT_MOST)
            })}
        </p>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(room: &str, text: &str) -> ChatMessage {
        ChatMessage {
            id: "m1".into(),
            room: room.into(),
            user: "ada".into(),
            text: text.into(),
            at: "2026-12-05T00:00:00Z".into(),
        }
    }

    #[test]
    fn an_announcement_names_the_room_read_from_and_cuts_long_texts_at_a_character() {
        // The room is the one the page read the message from, whatever the payload says.
        assert_eq!(
            announcement("general", &message("elsewhere", "hi")),
            "ada in #general: hi"
        );
        let exactly = "é".repeat(200);
        assert_eq!(
            announcement("general", &message("general", &exactly)),
            format!("ada in #general: {exactly}")
        );
        let longer = format!("{exactly}and more");
        assert_eq!(
            announcement("general", &message("general", &longer)),
            format!("ada in #general: {exactly}…")
        );
    }
}
