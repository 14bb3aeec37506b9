//! The async client: a cheap, clonable handle over the shared [`Connection`], and the driver loop
//! that connects it to a socket.
//!
//! Operations lock the connection, encode straight into its outgoing buffer and wake the loop, so
//! `publish` and `subscribe` return at once with a typed error if something is wrong, and a burst of
//! publishes leaves as one WebSocket frame.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{ready, Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures::channel::oneshot;
use futures::task::AtomicWaker;
use futures::{FutureExt, Stream, StreamExt};
use web_time::Instant;

use crate::driver::{Driver, Socket};
use crate::error::{ConnectionError, PublishError, RequestError, ServerError, SubscribeError};
use crate::header::HeaderMap;
use crate::message::Message;
use crate::options::Options;
use crate::proto::id_map::IdMap;
use crate::proto::{Connection, Event, ServerInfo, Status, SubscribeOptions, Transmit};

/// Something that happened to the connection, for [`Client::events`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    Status(Status),
    /// A non-fatal error from the server, such as a publish the user was not permitted.
    ServerError(ServerError),
    /// The server announced it is shutting down; the client will reconnect when it does.
    LameDuck,
    /// A server of the cluster left it (the `INFO` of the server this client is on no longer
    /// lists it): a crash, a restart, a lost route or lame-duck mode. What it alone hosted, such
    /// as an ordered consumer's (one replica), may be gone; the ordered consumers check theirs
    /// at once rather than wait for missed heartbeats.
    ServerLeft,
    /// A subscription's reader fell behind: it holds its limit of unread messages (or bytes), and
    /// messages beyond it are being dropped. Reported once each time it starts dropping;
    /// [`Subscriber::dropped`] counts them all.
    SlowConsumer {
        sid: u64,
        subject: String,
        dropped: u64,
    },
    /// Publishes buffered while disconnected were too old when the connection came back, and were
    /// dropped (see [`crate::Options::reconnect_buffer_max_age`]).
    BufferedExpired {
        messages: usize,
        bytes: usize,
    },
}

/// What one [`Subscriber`] (or one status or event stream) has been handed and not read yet. The
/// dispatcher adds a whole frame's messages, then wakes the reader once (a channel would wake it
/// once per message); the reader takes them one by one without waking anything.
struct Mailbox<T>(Mutex<MailboxState<T>>);

struct MailboxState<T> {
    items: VecDeque<T>,
    /// Nothing more will come (the stream ends once `items` is empty), or, for a watcher, nobody
    /// reads any more.
    closed: bool,
    waker: Option<Waker>,
}

impl<T> Mailbox<T> {
    fn new() -> Self {
        Mailbox(Mutex::new(MailboxState {
            items: VecDeque::new(),
            closed: false,
            waker: None,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, MailboxState<T>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, item: T) {
        self.lock().items.push_back(item);
    }

    /// Wakes the reader (outside the lock).
    fn wake(&self) {
        let waker = self.lock().waker.take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.wake();
    }

    /// The reader's side: the next item, the end, or `Pending` with the reader's waker kept.
    fn poll_take(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        let mut state = self.lock();
        if let Some(item) = state.items.pop_front() {
            return Poll::Ready(Some(item));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        if !state
            .waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// The client's end of a status or event stream: each change is added and the reader woken. Dropped
/// with the client, it ends the stream (after what is left is read).
struct Watcher<T>(Arc<Mailbox<T>>);

impl<T> Watcher<T> {
    fn new() -> (Self, Watch<T>) {
        let mailbox = Arc::new(Mailbox::new());
        (Watcher(mailbox.clone()), Watch(mailbox))
    }

    /// `false` once the stream was dropped: the watcher can go.
    fn send(&self, item: T) -> bool {
        let mut state = self.0.lock();
        if state.closed {
            return false;
        }
        state.items.push_back(item);
        let waker = state.waker.take();
        drop(state);
        if let Some(waker) = waker {
            waker.wake();
        }
        true
    }

    fn is_closed(&self) -> bool {
        self.0.lock().closed
    }
}

impl<T> Drop for Watcher<T> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The application's end of a status or event stream ([`Client::status_stream`], [`Client::events`]).
struct Watch<T>(Arc<Mailbox<T>>);

impl<T> Stream for Watch<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.0.poll_take(cx)
    }
}

impl<T> Drop for Watch<T> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.closed = true;
        state.items.clear();
        state.waker = None;
    }
}

/// Unread messages of one subscription, shared by the dispatcher (adds) and the [`Subscriber`]
/// (takes away as it reads).
#[derive(Default)]
struct Pending {
    messages: AtomicUsize,
    bytes: AtomicUsize,
    dropped: AtomicU64,
}

struct SubSlot {
    mailbox: Arc<Mailbox<Result<Message, SubscribeError>>>,
    /// Messages were added since the reader was last woken.
    unwoken: bool,
    /// The reader had not taken the messages of earlier frames when this frame's first came:
    /// what it is given from this frame gets bytes of its own (see `Inner::deliver`).
    behind: bool,
    pending: Arc<Pending>,
    subject: String,
    max_messages: usize,
    max_bytes: usize,
    /// Dropping now; reported when it started.
    slow: bool,
    /// [`Subscriber::drain`]s waiting for the end: told how it ended, or (dropped with the slot)
    /// that it was unsubscribed.
    drains: Vec<oneshot::Sender<Result<(), ConnectionError>>>,
}

/// However a slot goes (ended by the server or the connection, unsubscribed, the client gone), its
/// reader reads what is left and then sees the end.
impl Drop for SubSlot {
    fn drop(&mut self) {
        self.mailbox.close();
    }
}

struct Inner {
    conn: Connection,
    subs: IdMap<SubSlot>,
    requests: IdMap<oneshot::Sender<Result<Message, RequestError>>>,
    flushes: IdMap<oneshot::Sender<Result<(), ConnectionError>>>,
    status_watchers: Vec<Watcher<Status>>,
    event_watchers: Vec<Watcher<ClientEvent>>,
    request_timeout: Duration,
    /// Subscriptions given messages in this dispatch, to wake once it is done.
    to_wake: Vec<u64>,
}

impl Inner {
    /// Routes everything the connection has to say to the channels waiting for it.
    fn dispatch(&mut self) {
        while let Some(event) = self.conn.poll_event() {
            match event {
                Event::Message { sid, message } => self.deliver(sid, message),
                Event::SubscriptionClosed { sid, error } => {
                    let Some(mut slot) = self.subs.remove(sid) else {
                        continue;
                    };
                    let drained = match error {
                        Some(SubscribeError::Closed) => Err(ConnectionError::Closed),
                        _ => Ok(()),
                    };
                    for drain in std::mem::take(&mut slot.drains) {
                        let _ = drain.send(drained.clone());
                    }
                    if let Some(error) = error {
                        slot.mailbox.push(Err(error));
                    }
                    // Dropping the slot closes its mailbox and wakes the reader.
                }
                Event::Response { id, result } => {
                    if let Some(tx) = self.requests.remove(id) {
                        let _ = tx.send(result);
                    }
                }
                Event::Flushed { id, result } => {
                    if let Some(tx) = self.flushes.remove(id) {
                        let _ = tx.send(result);
                    }
                }
                Event::Status(status) => {
                    self.status_watchers.retain(|w| w.send(status.clone()));
                    self.broadcast(ClientEvent::Status(status));
                }
                Event::ServerError(e) => self.broadcast(ClientEvent::ServerError(e)),
                Event::LameDuck => self.broadcast(ClientEvent::LameDuck),
                Event::ServerLeft => self.broadcast(ClientEvent::ServerLeft),
                Event::BufferedExpired { messages, bytes } => {
                    self.broadcast(ClientEvent::BufferedExpired { messages, bytes })
                }
            }
        }
        // One wake per subscription for everything this dispatch (one frame) delivered to it.
        let mut to_wake = std::mem::take(&mut self.to_wake);
        for sid in to_wake.drain(..) {
            if let Some(slot) = self.subs.get_mut(sid) {
                slot.unwoken = false;
                slot.mailbox.wake();
            }
        }
        self.to_wake = to_wake;
    }

    /// Hands a message to its subscription, or drops and counts it when the reader is too far
    /// behind (bounded memory, as nats.go's pending limits).
    fn deliver(&mut self, sid: u64, message: Message) {
        let Some(slot) = self.subs.get_mut(sid) else {
            return;
        };
        let size = message.payload.len();
        let p = &slot.pending;
        let full = p.messages.load(Ordering::Acquire) >= slot.max_messages
            || p.bytes.load(Ordering::Acquire).saturating_add(size) > slot.max_bytes;
        if full {
            let dropped = p.dropped.fetch_add(1, Ordering::AcqRel) + 1;
            if !std::mem::replace(&mut slot.slow, true) {
                let event = ClientEvent::SlowConsumer {
                    sid,
                    subject: slot.subject.clone(),
                    dropped,
                };
                self.broadcast(event);
            }
            return;
        }
        if Arc::strong_count(&slot.mailbox) == 1 {
            // The subscriber is gone; stop the server from sending more.
            self.subs.remove(sid);
            self.conn.unsubscribe(sid);
            return;
        }
        slot.slow = false;
        if !slot.unwoken {
            // This frame's first message for it. A message shares its frame's buffer, and a
            // reader that keeps up lets go of it before the next frame comes. One that has not
            // taken the earlier frames' messages yet may not for long: what it is given now is
            // copied out, so that what it holds is bounded by its own limits and not by the
            // frames its messages came in (as nats.go copies every message out of its buffer).
            slot.behind = p.messages.load(Ordering::Acquire) > 0;
        }
        let message = if slot.behind {
            message.detached()
        } else {
            message
        };
        p.messages.fetch_add(1, Ordering::AcqRel);
        p.bytes.fetch_add(size, Ordering::AcqRel);
        slot.mailbox.push(Ok(message));
        if !std::mem::replace(&mut slot.unwoken, true) {
            self.to_wake.push(sid);
        }
    }

    fn broadcast(&mut self, event: ClientEvent) {
        self.event_watchers.retain(|w| w.send(event.clone()));
    }
}

/// Wakes the driver loop after the application changed the connection.
#[derive(Default)]
struct Kick {
    pending: AtomicBool,
    waker: AtomicWaker,
}

impl Kick {
    fn notify(&self) {
        self.pending.store(true, Ordering::Release);
        self.waker.wake();
    }

    fn poll(&self, cx: &mut Context<'_>) -> Poll<()> {
        if self.pending.swap(false, Ordering::AcqRel) {
            return Poll::Ready(());
        }
        self.waker.register(cx.waker());
        if self.pending.swap(false, Ordering::AcqRel) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

pub(crate) struct Shared {
    inner: Mutex<Inner>,
    kick: Kick,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the connection, then wakes the driver loop to send what it wrote.
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let out = f(&mut self.lock());
        self.kick.notify();
        out
    }
}

/// Closes the connection when the last [`Client`] clone is dropped.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.with(|inner| inner.conn.close());
    }
}

/// A connection to a NATS server over WebSocket. Cheap to clone; the connection closes when the last
/// clone is dropped, or on [`Client::close`].
#[derive(Clone)]
pub struct Client {
    owner: Arc<Owner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("status", &self.status())
            .finish()
    }
}

impl Client {
    /// Creates the client; `spawn` must start the driver loop ([`run`]) on the caller's executor.
    pub(crate) fn start(
        options: Options,
        spawn: impl FnOnce(Arc<Shared>),
    ) -> Result<Client, ConnectionError> {
        let seed = getrandom::u64().unwrap_or(0x9e37_79b9_7f4a_7c15);
        let request_timeout = options.request_timeout;
        let conn = Connection::new(options, Instant::now(), seed)?;
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                conn,
                subs: IdMap::new(),
                requests: IdMap::new(),
                flushes: IdMap::new(),
                status_watchers: Vec::new(),
                event_watchers: Vec::new(),
                request_timeout,
                to_wake: Vec::new(),
            }),
            kick: Kick::default(),
        });
        spawn(shared.clone());
        Ok(Client {
            owner: Arc::new(Owner(shared)),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.owner.0
    }

    /// Waits until the connection is up. Fails if the client goes offline (every attempt failed)
    /// or is closed first.
    pub async fn wait_connected(&self) -> Result<(), ConnectionError> {
        let mut statuses = self.status_stream();
        while let Some(status) = statuses.next().await {
            match status {
                Status::Connected { .. } => return Ok(()),
                Status::Offline { last_error } => return Err(last_error),
                Status::Closed => return Err(ConnectionError::Closed),
                Status::Connecting | Status::Reconnecting { .. } => {}
            }
        }
        Err(ConnectionError::Closed)
    }

    /// The outcome of the first connection attempt: the client once connected, or that attempt's
    /// error (the client is then closed). What `connect` in each driver returns.
    pub(crate) async fn first_attempt(self) -> Result<Client, ConnectionError> {
        let mut statuses = self.status_stream();
        while let Some(status) = statuses.next().await {
            match status {
                Status::Connected { .. } => return Ok(self),
                Status::Reconnecting {
                    last_error: Some(e),
                    ..
                }
                | Status::Offline { last_error: e } => {
                    self.close();
                    return Err(e);
                }
                Status::Closed => return Err(ConnectionError::Closed),
                Status::Connecting
                | Status::Reconnecting {
                    last_error: None, ..
                } => {}
            }
        }
        Err(ConnectionError::Closed)
    }

    /// The current status.
    pub fn status(&self) -> Status {
        self.shared().lock().conn.status().clone()
    }

    /// Resolves once the client is connected again after being disconnected (not at once when it
    /// is connected now), or closed: a new connection, maybe to another server, or to one
    /// restarted with another configuration. For a pause before trying again what that server
    /// refused (the user's permissions, say) to end early when such a try may work.
    pub fn next_reconnect(&self) -> impl std::future::Future<Output = ()> + 'static {
        let mut statuses = self.status_stream();
        async move {
            let mut down = false;
            while let Some(status) = statuses.next().await {
                match status {
                    Status::Closed => return,
                    s if s.is_connected() => {
                        if down {
                            return;
                        }
                    }
                    _ => down = true,
                }
            }
        }
    }

    /// The current status, then every change.
    pub fn status_stream(&self) -> impl Stream<Item = Status> + Unpin + 'static {
        let (tx, rx) = Watcher::new();
        let mut inner = self.shared().lock();
        // Hand out what is queued first, so that no older status can follow the current one.
        inner.dispatch();
        tx.send(inner.conn.status().clone());
        // Streams dropped since the last change are let go here too, not only at the next change:
        // a steady connection may see none for days while waits come and go by the thousand.
        inner.status_watchers.retain(|w| !w.is_closed());
        inner.status_watchers.push(tx);
        rx
    }

    /// Status changes, non-fatal server errors, lame-duck notices, slow consumers, expired
    /// buffered publishes and servers that left the cluster, from now on.
    pub fn events(&self) -> impl Stream<Item = ClientEvent> + Unpin + 'static {
        let (tx, rx) = Watcher::new();
        let mut inner = self.shared().lock();
        inner.event_watchers.retain(|w| !w.is_closed());
        inner.event_watchers.push(tx);
        rx
    }

    /// What the server said about itself in its last `INFO`.
    pub fn server_info(&self) -> Option<ServerInfo> {
        self.shared().lock().conn.server_info().cloned()
    }

    /// The largest headers + payload the server accepts.
    pub fn max_payload(&self) -> usize {
        self.shared().lock().conn.max_payload()
    }

    /// Publishes `payload` to `subject`. Refused at once with a typed error, never blocking: an
    /// invalid subject, more than `max_payload`, a full reconnect buffer while disconnected, or
    /// 64 MiB already waiting to be written, for a server that is not reading or from a burst
    /// faster than the connection ([`PublishError::BacklogFull`]).
    pub fn publish(&self, subject: &str, payload: impl AsRef<[u8]>) -> Result<(), PublishError> {
        self.publish_message(subject, None, None, payload.as_ref())
    }

    /// Publishes with headers.
    pub fn publish_with_headers(
        &self,
        subject: &str,
        headers: &HeaderMap,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), PublishError> {
        self.publish_message(subject, None, Some(headers), payload.as_ref())
    }

    /// Publishes with a reply subject (and optionally headers).
    pub fn publish_message(
        &self,
        subject: &str,
        reply: Option<&str>,
        headers: Option<&HeaderMap>,
        payload: &[u8],
    ) -> Result<(), PublishError> {
        self.shared().with(|inner| {
            inner
                .conn
                .publish(&Instant::now, subject, reply, headers, payload)
        })
    }

    /// Subscribes to `subject` (wildcards allowed).
    pub fn subscribe(&self, subject: &str) -> Result<Subscriber, SubscribeError> {
        self.subscribe_with_options(subject, SubscribeOptions::default())
    }

    /// Subscribes as a member of a queue group: each message goes to one member.
    pub fn queue_subscribe(
        &self,
        subject: &str,
        queue_group: &str,
    ) -> Result<Subscriber, SubscribeError> {
        self.subscribe_with_options(
            subject,
            SubscribeOptions::default().queue_group(queue_group),
        )
    }

    pub fn subscribe_with_options(
        &self,
        subject: &str,
        options: SubscribeOptions,
    ) -> Result<Subscriber, SubscribeError> {
        let mailbox = Arc::new(Mailbox::new());
        let pending = Arc::new(Pending::default());
        let sid = self.shared().with(|inner| {
            let defaults = inner.conn.options();
            let slot = SubSlot {
                mailbox: mailbox.clone(),
                unwoken: false,
                behind: false,
                pending: pending.clone(),
                subject: subject.to_owned(),
                max_messages: options
                    .pending_msgs_limit
                    .unwrap_or(defaults.pending_msgs_limit)
                    .max(1),
                // 0 means no limit, as in nats.go.
                max_bytes: Some(
                    options
                        .pending_bytes_limit
                        .unwrap_or(defaults.pending_bytes_limit),
                )
                .filter(|&b| b > 0)
                .unwrap_or(usize::MAX),
                slow: false,
                drains: Vec::new(),
            };
            let sid = inner.conn.subscribe(subject, options)?;
            inner.subs.insert(sid, slot);
            Ok::<_, SubscribeError>(sid)
        })?;
        Ok(Subscriber {
            sid,
            mailbox,
            pending,
            shared: self.shared().clone(),
            active: true,
        })
    }

    /// Sends a request and waits for the first reply, up to the default request timeout.
    pub async fn request(
        &self,
        subject: &str,
        payload: impl AsRef<[u8]>,
    ) -> Result<Message, RequestError> {
        let timeout = self.shared().lock().request_timeout;
        self.request_with(subject, None, payload.as_ref(), timeout)
            .await
    }

    /// Sends a request with optional headers and an explicit timeout.
    pub async fn request_with(
        &self,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Message, RequestError> {
        let started = Instant::now();
        let (tx, rx) = oneshot::channel();
        let mut tx = Some(tx);
        let id = loop {
            let sent = self.shared().with(|inner| {
                let now = Instant::now();
                let left = timeout.saturating_sub(now.saturating_duration_since(started));
                let id = inner.conn.request(now, subject, headers, payload, left)?;
                if let Some(tx) = tx.take() {
                    inner.requests.insert(id, tx);
                }
                Ok::<_, RequestError>(id)
            });
            match sent {
                // Requests are not buffered while disconnected: wait (within the timeout) for the
                // connection, then send.
                Err(e @ RequestError::NotConnected { .. }) => {
                    let left = timeout.saturating_sub(started.elapsed());
                    if self.await_connected(left).await {
                        continue;
                    }
                    // Never sent: NotConnected (not TimedOut, which means sent and unanswered),
                    // or Closed.
                    return Err(match self.status() {
                        Status::Closed => RequestError::Closed,
                        _ => e,
                    });
                }
                other => break other?,
            }
        };
        let guard = CancelRequest {
            shared: self.shared(),
            id: Some(id),
        };
        let result = rx.await.unwrap_or(Err(RequestError::Closed));
        guard.disarm();
        result
    }

    /// Sends a request whose answer nobody waits for: its reply, a refusal of the publish and its
    /// timeout all end with the request, not as [`ClientEvent`]s (the clean-up nats-ws does of
    /// its own, which the application did not ask for). `false` if it could not be sent (not
    /// connected, or closed).
    #[cfg(feature = "jetstream")]
    pub(crate) fn request_detached(
        &self,
        subject: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> bool {
        self.shared().with(|inner| {
            inner
                .conn
                .request(Instant::now(), subject, None, payload, timeout)
                .is_ok()
        })
    }

    /// Waits until the server has processed everything sent so far. While disconnected it waits for
    /// the connection to come back (and the buffered publishes to go out); it fails if the client
    /// goes offline or is closed, and if the connection is lost while it waits for the server's
    /// answer (what was sent before may not have arrived: publish again, then flush again).
    pub async fn flush(&self) -> Result<(), ConnectionError> {
        let (tx, rx) = oneshot::channel();
        self.shared().with(|inner| {
            let id = inner.conn.flush().map_err(|_| ConnectionError::Closed)?;
            inner.flushes.insert(id, tx);
            Ok::<_, ConnectionError>(())
        })?;
        rx.await.unwrap_or(Err(ConnectionError::Closed))
    }

    /// Waits until connected, at most `at_most`; `false` if that did not happen (timed out, offline,
    /// closed).
    async fn await_connected(&self, at_most: Duration) -> bool {
        futures::select_biased! {
            connected = self.wait_connected().fuse() => connected.is_ok(),
            _ = crate::rt::sleep(at_most).fuse() => false,
        }
    }

    /// Unsubscribes everything on the server, keeps delivering the messages already on their way
    /// until the server has processed all that was sent (a flush), then closes. Every
    /// [`Subscriber`] can read what reached it; its stream then ends without an error.
    ///
    /// While disconnected with publishes buffered, it waits for the connection to come back and
    /// sends them first; disconnected with nothing buffered, nothing is on its way and it closes
    /// at once. It gives up waiting after [`DRAIN_TIMEOUT`] (30 s, as nats.go), closes, and says
    /// so. It fails, and closes, when the client goes offline meanwhile (what was buffered is lost
    /// then) and when the connection is lost before the server confirmed (what was sent before
    /// may not have arrived; see [`Client::flush`]).
    pub async fn drain(&self) -> Result<(), ConnectionError> {
        let waits = self.shared().with(|inner| {
            inner.conn.drain_subscriptions();
            inner.conn.status().is_connected() || inner.conn.buffered() > 0
        });
        let flushed = match waits {
            false => Ok(()),
            true => futures::select_biased! {
                r = self.flush().fuse() => r,
                _ = crate::rt::sleep(DRAIN_TIMEOUT).fuse() => Err(ConnectionError::DrainTimeout(DRAIN_TIMEOUT)),
            },
        };
        self.shared().with(|inner| {
            inner.conn.finish_drain();
            inner.dispatch();
        });
        flushed
    }

    /// Closes the connection: publishes already accepted are sent first; in-flight requests fail,
    /// subscriptions end. Returns at once: the driver task writes those last publishes, so a
    /// program about to exit should `flush().await` (or `drain().await`) before closing.
    pub fn close(&self) {
        self.shared().with(|inner| inner.conn.close());
    }

    /// From offline, starts the reconnect schedule over; while waiting between attempts, tries now.
    pub fn reconnect_now(&self) {
        self.shared()
            .with(|inner| inner.conn.reconnect_now(Instant::now()));
    }

    /// Tells the client that now is a good moment to check the connection (the browser driver calls
    /// this on `online` and when the tab becomes visible).
    pub fn wake(&self) {
        self.shared()
            .with(|inner| inner.conn.handle_wake(Instant::now()));
    }

    /// Bytes of publishes waiting for the connection to come back.
    pub fn buffered(&self) -> usize {
        self.shared().lock().conn.buffered()
    }

    /// The last measured round trip to the server (handshake or keepalive PING).
    pub fn rtt(&self) -> Option<Duration> {
        self.shared().lock().conn.rtt()
    }

    /// A fresh, unique inbox subject (`_INBOX.<random>`).
    pub fn new_inbox(&self) -> String {
        self.shared().lock().conn.new_inbox()
    }

    /// A fresh random token, as the last one of [`Client::new_inbox`]'s subjects.
    #[cfg(feature = "jetstream")]
    pub(crate) fn new_token(&self) -> String {
        self.shared().lock().conn.new_token()
    }
}

/// Forgets a request whose future was dropped before its reply came.
struct CancelRequest<'a> {
    shared: &'a Arc<Shared>,
    id: Option<u64>,
}

impl CancelRequest<'_> {
    fn disarm(mut self) {
        self.id = None;
    }
}

impl Drop for CancelRequest<'_> {
    fn drop(&mut self) {
        if let Some(id) = self.id {
            let mut inner = self.shared.lock();
            inner.conn.cancel_request(id);
            inner.requests.remove(id);
        }
    }
}

/// The messages of one subscription, as a [`Stream`]. Dropping it unsubscribes.
///
/// Yields `Err` once if the server refused the subscription (permission denied) or the client was
/// closed; the stream ends after that, and also when a message limit is reached.
pub struct Subscriber {
    sid: u64,
    mailbox: Arc<Mailbox<Result<Message, SubscribeError>>>,
    pending: Arc<Pending>,
    shared: Arc<Shared>,
    active: bool,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("sid", &self.sid)
            .finish()
    }
}

impl Subscriber {
    /// The subscription id on the wire.
    pub fn sid(&self) -> u64 {
        self.sid
    }

    /// Messages dropped because this subscriber held its limit of unread ones (see
    /// [`crate::Options::pending_msgs_limit`]).
    pub fn dropped(&self) -> u64 {
        self.pending.dropped.load(Ordering::Acquire)
    }

    /// Messages received and not read yet.
    pub fn pending(&self) -> usize {
        self.pending.messages.load(Ordering::Acquire)
    }

    /// Unsubscribes now; messages already received stay readable.
    pub fn unsubscribe(&mut self) {
        if std::mem::take(&mut self.active) {
            let sid = self.sid;
            self.shared.with(|inner| {
                inner.conn.unsubscribe(sid);
                inner.subs.remove(sid);
            });
        }
    }

    /// Unsubscribes, but keeps delivering the messages already on their way until the server has
    /// processed the unsubscription (a PING's PONG); then the stream ends without an error. Every
    /// message the server routed to this subscription before it unsubscribed is delivered.
    ///
    /// The UNSUB goes out when this is called; the future only waits for the end, and resolves
    /// `Ok` once the subscription has ended (at once if it had ended already, or if the client is
    /// disconnected: nothing is on its way then). If the connection is lost during the drain,
    /// the subscription ends then and is not subscribed again. After [`DRAIN_TIMEOUT`] without an
    /// answer it ends anyway, with `Err(ConnectionError::DrainTimeout)` (the client stays open);
    /// `Err(ConnectionError::Closed)` if the client is or gets closed. Dropping the future does
    /// not stop the drain; dropping the `Subscriber` ends it at once.
    pub fn drain(
        &mut self,
    ) -> impl std::future::Future<Output = Result<(), ConnectionError>> + 'static {
        let sid = self.sid;
        let shared = self.shared.clone();
        let (tx, rx) = oneshot::channel();
        let started = self.shared.with(|inner| {
            if matches!(inner.conn.status(), Status::Closed) {
                return Err(ConnectionError::Closed);
            }
            let Some(slot) = inner.subs.get_mut(sid) else {
                return Ok(false);
            };
            slot.drains.push(tx);
            let draining = inner.conn.drain_subscription(sid);
            inner.dispatch();
            Ok(draining)
        });
        async move {
            if !started? {
                return Ok(());
            }
            futures::select_biased! {
                // Cancelled: the slot went without a word (unsubscribed, or the subscriber dropped).
                ended = rx.fuse() => ended.unwrap_or(Ok(())),
                _ = crate::rt::sleep(DRAIN_TIMEOUT).fuse() => {
                    shared.with(|inner| {
                        inner.conn.finish_subscription_drain(sid);
                        inner.dispatch();
                    });
                    Err(ConnectionError::DrainTimeout(DRAIN_TIMEOUT))
                }
            }
        }
    }

    /// Ends the subscription once it has received `max` messages in all.
    pub fn unsubscribe_after(&mut self, max: u64) {
        let sid = self.sid;
        self.shared.with(|inner| {
            inner.conn.unsubscribe_after(sid, max);
            inner.dispatch();
        });
    }
}

impl Stream for Subscriber {
    type Item = Result<Message, SubscribeError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let item = ready!(self.mailbox.poll_take(cx));
        if let Some(Ok(message)) = &item {
            self.pending.messages.fetch_sub(1, Ordering::AcqRel);
            self.pending
                .bytes
                .fetch_sub(message.payload.len(), Ordering::AcqRel);
        }
        Poll::Ready(item)
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.unsubscribe();
    }
}

enum Wake<S, E> {
    Opened(Result<S, String>),
    Frame(Result<E, String>),
    SendFailed(String),
    Timer,
    Kick,
    Environment,
    #[cfg(feature = "nkeys")]
    Signed(u64, Result<crate::proto::Signed, String>),
}

/// The driver loop: hands transmits to the socket, input and timeouts to the connection, events to
/// the application, until the client is closed.
///
/// Writing never stops reading: frames wait in `outgoing` and are written as the socket accepts
/// them, in the same wait that reads. (Awaiting a large write before reading again let the server's
/// output to us pile up until it cut the connection as a slow consumer.)
pub(crate) async fn run<D: Driver>(shared: Arc<Shared>, mut driver: D) {
    let mut socket: Option<D::Socket> = None;
    let mut connecting = None;
    let mut timer: Option<(Instant, D::Sleep)> = None;
    let mut transmits = Vec::new();
    let mut outgoing = Outgoing::default();
    let mut unflushed = false;
    #[cfg(feature = "nkeys")]
    let mut signing = None;
    loop {
        let (deadline, closed) = {
            let mut inner = shared.lock();
            inner.dispatch();
            inner.conn.set_unwritten(outgoing.bytes);
            while let Some(t) = inner.conn.poll_transmit() {
                transmits.push(t);
            }
            (
                inner.conn.poll_timeout(),
                matches!(inner.conn.status(), Status::Closed),
            )
        };
        let acted = !transmits.is_empty();
        let last = transmits.len().saturating_sub(1);
        for (i, t) in transmits.drain(..).enumerate() {
            match t {
                Transmit::Connect { url } => {
                    socket = None;
                    outgoing.clear();
                    connecting = Some(Box::pin(driver.connect(&url)));
                    #[cfg(feature = "nkeys")]
                    {
                        signing = None;
                    }
                }
                #[cfg(feature = "nkeys")]
                Transmit::Sign(request) => {
                    let handshake = request.handshake;
                    signing = Some((handshake, Box::pin(driver.sign(request))));
                }
                Transmit::Data(bytes) => {
                    if socket.is_some() {
                        outgoing.push(bytes);
                    }
                }
                Transmit::Close => {
                    if closed && i == last {
                        // Closed by the application: what it published goes out first (bounded).
                        if let Some(s) = socket.as_mut() {
                            let written =
                                poll_fn(|cx| write_out(s, &mut outgoing, &mut unflushed, cx));
                            let limit = driver.sleep(CLOSE_FLUSH_LIMIT);
                            futures::pin_mut!(written);
                            let _ = futures::future::select(written, limit).await;
                        }
                    }
                    socket = None;
                    connecting = None;
                    outgoing.clear();
                    unflushed = false;
                    #[cfg(feature = "nkeys")]
                    {
                        signing = None;
                    }
                }
            }
        }
        if closed {
            return;
        }
        if acted {
            continue;
        }
        match deadline {
            Some(d) if timer.as_ref().map(|(at, _)| *at) != Some(d) => {
                timer = Some((d, driver.sleep(d.saturating_duration_since(Instant::now()))));
            }
            Some(_) => {}
            None => timer = None,
        }
        let wake = poll_fn(|cx| {
            if let Some(c) = connecting.as_mut() {
                if let Poll::Ready(result) = c.poll_unpin(cx) {
                    connecting = None;
                    return Poll::Ready(Wake::Opened(result));
                }
            }
            #[cfg(feature = "nkeys")]
            if let Some((handshake, sign)) = signing.as_mut() {
                if let Poll::Ready(result) = sign.poll_unpin(cx) {
                    let handshake = *handshake;
                    signing = None;
                    return Poll::Ready(Wake::Signed(handshake, result));
                }
            }
            if let Some(s) = socket.as_mut() {
                let before = outgoing.bytes;
                let written = write_out(s, &mut outgoing, &mut unflushed, cx);
                if outgoing.bytes != before {
                    // At once, not at the next turn of the loop: a publish made meanwhile is
                    // measured against what still waits.
                    shared.lock().conn.set_unwritten(outgoing.bytes);
                }
                if let Poll::Ready(Err(detail)) = written {
                    return Poll::Ready(Wake::SendFailed(detail));
                }
                if let Poll::Ready(frame) = s.poll_recv(cx) {
                    return Poll::Ready(Wake::Frame(frame));
                }
            }
            if shared.kick.poll(cx).is_ready() {
                return Poll::Ready(Wake::Kick);
            }
            if let Some((_, sleep)) = timer.as_mut() {
                if sleep.poll_unpin(cx).is_ready() {
                    return Poll::Ready(Wake::Timer);
                }
            }
            if driver.poll_wake(cx).is_ready() {
                return Poll::Ready(Wake::Environment);
            }
            Poll::Pending
        })
        .await;
        let now = Instant::now();
        match wake {
            Wake::Opened(Ok(s)) => socket = Some(s),
            Wake::Opened(Err(detail)) => shared.lock().conn.handle_disconnected(now, &detail),
            Wake::Frame(Ok(frame)) => shared.lock().conn.handle_input_owned(now, frame.into()),
            Wake::Frame(Err(detail)) | Wake::SendFailed(detail) => {
                socket = None;
                outgoing.clear();
                unflushed = false;
                shared.lock().conn.handle_disconnected(now, &detail);
            }
            Wake::Timer => {
                timer = None;
                shared.lock().conn.handle_timeout(now);
            }
            Wake::Kick => {}
            Wake::Environment => shared.lock().conn.handle_wake(now),
            #[cfg(feature = "nkeys")]
            Wake::Signed(handshake, result) => {
                shared.lock().conn.handle_signed(now, handshake, result)
            }
        }
    }
}

/// How long [`Client::drain`] waits for the server before closing anyway, and
/// [`Subscriber::drain`] before ending the subscription anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a closing client waits for its last publishes to be written.
const CLOSE_FLUSH_LIMIT: Duration = Duration::from_secs(5);

/// Frames waiting for the socket, and how many bytes they hold.
#[derive(Default)]
struct Outgoing {
    frames: VecDeque<Bytes>,
    bytes: usize,
}

impl Outgoing {
    fn push(&mut self, frame: Bytes) {
        self.bytes += frame.len();
        self.frames.push_back(frame);
    }

    fn pop(&mut self) -> Option<Bytes> {
        let frame = self.frames.pop_front()?;
        self.bytes -= frame.len();
        Some(frame)
    }

    fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    fn clear(&mut self) {
        self.frames.clear();
        self.bytes = 0;
    }
}

/// Hands queued frames to the socket as far as it accepts them, then flushes. `Ready(Ok)` once
/// everything is written, `Pending` while the socket is busy, `Ready(Err)` if it failed.
fn write_out<S: Socket>(
    socket: &mut S,
    outgoing: &mut Outgoing,
    unflushed: &mut bool,
    cx: &mut Context<'_>,
) -> Poll<Result<(), String>> {
    while !outgoing.is_empty() {
        match socket.poll_ready(cx) {
            Poll::Ready(Ok(())) => {
                let frame = outgoing.pop().expect("not empty");
                socket.start_send(frame)?;
                *unflushed = true;
            }
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
    }
    if *unflushed {
        match socket.poll_flush(cx) {
            Poll::Ready(Ok(())) => *unflushed = false,
            other => return other,
        }
    }
    Poll::Ready(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client whose driver never runs: it stays `Connecting`, no status ever changes.
    fn idle_client() -> Client {
        Client::start(Options::new("ws://127.0.0.1:9"), |_| {}).expect("client")
    }

    struct CountWakes(AtomicUsize);

    impl futures::task::ArcWake for CountWakes {
        fn wake_by_ref(arc: &Arc<Self>) {
            arc.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Hands `bytes` to the connection as one frame and routes what it produced, as the driver
    /// loop does.
    fn frame(client: &Client, bytes: &[u8]) {
        let mut inner = client.shared().lock();
        while inner.conn.poll_transmit().is_some() {}
        inner.conn.handle_input(Instant::now(), bytes);
        inner.dispatch();
    }

    #[test]
    fn a_frame_of_messages_wakes_its_subscriber_once() {
        let client = idle_client();
        let mut sub = client.subscribe("s").expect("subscribe");
        let mut other = client.subscribe("t").expect("subscribe");
        frame(
            &client,
            b"INFO {\"max_payload\":1048576,\"headers\":true}\r\n",
        );
        frame(&client, b"PONG\r\n");
        assert!(client.status().is_connected());

        let wakes = Arc::new(CountWakes(AtomicUsize::new(0)));
        let waker = futures::task::waker(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(sub.poll_next_unpin(&mut cx).is_pending());
        assert!(other.poll_next_unpin(&mut cx).is_pending());

        let sid = sub.sid();
        let messages = |from: usize| -> String {
            (from..from + 50)
                .map(|i| format!("MSG s {sid} {}\r\n{i}\r\n", i.to_string().len()))
                .collect()
        };
        frame(&client, messages(0).as_bytes());
        // One wake for 50 messages, none for the subscription that got nothing.
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
        for i in 0..50 {
            match sub.poll_next_unpin(&mut cx) {
                Poll::Ready(Some(Ok(m))) => assert_eq!(m.payload, i.to_string()),
                other => panic!("message {i}: {other:?}"),
            }
        }
        assert_eq!(sub.pending(), 0);
        assert!(sub.poll_next_unpin(&mut cx).is_pending());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 1, "reading woke nothing");

        // The next frame wakes again; after unsubscribing, what arrived is still read, then the end.
        frame(&client, messages(50).as_bytes());
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
        sub.unsubscribe();
        let mut read = 0;
        while let Poll::Ready(Some(Ok(_))) = sub.poll_next_unpin(&mut cx) {
            read += 1;
        }
        assert_eq!(read, 50);
        assert!(matches!(sub.poll_next_unpin(&mut cx), Poll::Ready(None)));

        // Closing wakes a waiting reader and ends its stream.
        client.close();
        frame(&client, b"");
        assert_eq!(wakes.0.load(Ordering::SeqCst), 3);
        assert!(matches!(
            other.poll_next_unpin(&mut cx),
            Poll::Ready(Some(Err(SubscribeError::Closed)))
        ));
        assert!(matches!(other.poll_next_unpin(&mut cx), Poll::Ready(None)));
    }

    #[test]
    fn dropped_status_streams_are_let_go_without_a_status_change() {
        let client = idle_client();
        let kept = client.status_stream();
        for _ in 0..1000 {
            drop(client.status_stream());
            drop(client.events());
        }
        let inner = client.shared().lock();
        // The one kept, plus the last one dropped (let go by the next call).
        assert!(
            inner.status_watchers.len() <= 2,
            "{}",
            inner.status_watchers.len()
        );
        assert!(
            inner.event_watchers.len() <= 1,
            "{}",
            inner.event_watchers.len()
        );
        drop(inner);
        drop(kept);
    }
}
