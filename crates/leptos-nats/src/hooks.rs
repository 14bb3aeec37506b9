//! Hooks that turn subscriptions and KV keys into signals.

use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures::future::AbortHandle;
use futures::{FutureExt, StreamExt};
use leptos::prelude::*;
use nats_ws::kv::{Entry, KvError, Operation, Store, WatchEvent};
use nats_ws::{Client, Message, Status, SubscribeError, SubscribeOptions};

use crate::context::{bucket_config, spawn_abortable, until_connected, NatsContext};

/// Runs `start(client)` for as long as the calling component lives, started over whenever the
/// client is replaced; stopped (dropping its subscriptions and watchers) on cleanup.
fn follow_client<F, Fut>(start: F)
where
    F: Fn(Client) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let context = expect_context::<NatsContext>();
    let running = StoredValue::new(None::<AbortHandle>);
    Effect::new(move |_| {
        let client = context.client().get();
        if let Some(Some(old)) = running.try_get_value() {
            old.abort();
        }
        running.set_value(client.map(|c| spawn_abortable(start(c))));
    });
    on_cleanup(move || {
        if let Some(Some(task)) = running.try_get_value() {
            task.abort();
        }
    });
}

/// Calls `on_message` for every message on `subject`, with subscription options (queue group,
/// dedup window, …). Unsubscribes on cleanup.
///
/// Returns why the subscription is not running (an invalid subject, or the server refused it: a
/// user without permission to subscribe there), `None` while it runs. A refused subscription is
/// tried again after the next reconnect (the server's permissions may have changed) and with a
/// new client.
pub fn use_subscription_with_options(
    subject: impl Into<String>,
    options: SubscribeOptions,
    on_message: impl Fn(Message) + 'static,
) -> Signal<Option<String>> {
    let subject: Rc<str> = subject.into().into();
    let on_message = Rc::new(on_message);
    let error = RwSignal::new(None::<String>);
    follow_client(move |client| {
        let subject = subject.clone();
        let options = options.clone();
        let on_message = on_message.clone();
        async move {
            loop {
                let failure = match client.subscribe_with_options(&subject, options.clone()) {
                    Ok(mut sub) => {
                        error.set(None);
                        loop {
                            match sub.next().await {
                                Some(Ok(message)) => on_message(message),
                                Some(Err(e)) => break e,
                                // Ended by the client (closed, or unsubscribed on cleanup).
                                None => return,
                            }
                        }
                    }
                    Err(e) => e,
                };
                error.set(Some(failure.to_string()));
                if !matches!(failure, SubscribeError::PermissionDenied { .. })
                    || !next_connection(&client).await
                {
                    return;
                }
            }
        }
    });
    error.into()
}

/// Waits until `client` has lost its connection and made a new one; false once it is closed.
async fn next_connection(client: &Client) -> bool {
    let mut statuses = client.status_stream();
    let mut lost = false;
    while let Some(status) = statuses.next().await {
        match status {
            Status::Closed => return false,
            s if s.is_connected() => {
                if lost {
                    return true;
                }
            }
            _ => lost = true,
        }
    }
    false
}

/// The latest message on `subject` (wildcards allowed); `None` until one arrives.
pub fn use_subscription(subject: impl Into<String>) -> ReadSignal<Option<Message>> {
    let (latest, set_latest) = signal(None);
    use_subscription_with_options(subject, SubscribeOptions::default(), move |m| {
        set_latest.set(Some(m))
    });
    latest
}

/// What [`use_subscription_list`] returns.
#[derive(Clone, Copy)]
pub struct UseSubscriptionListReturn {
    /// The most recent messages, oldest first, at most `capacity`.
    pub messages: Signal<Vec<Message>>,
    pub clear: Callback<()>,
    /// Why the subscription is not running, `None` while it runs (see
    /// [`use_subscription_with_options`]).
    pub error: Signal<Option<String>>,
}

/// The last `capacity` messages on `subject`, oldest first.
pub fn use_subscription_list(
    subject: impl Into<String>,
    capacity: usize,
) -> UseSubscriptionListReturn {
    let messages = RwSignal::new(Vec::<Message>::new());
    let error = use_subscription_with_options(subject, SubscribeOptions::default(), move |m| {
        messages.update(|list| {
            list.push(m);
            let excess = list.len().saturating_sub(capacity.max(1));
            list.drain(..excess);
        })
    });
    UseSubscriptionListReturn {
        messages: messages.into(),
        clear: Callback::new(move |()| messages.set(Vec::new())),
        error,
    }
}

/// What [`use_kv_key`] returns.
#[derive(Clone, Copy)]
pub struct UseKvKeyReturn {
    /// The key's current entry; `None` if it has no value (never written, or deleted).
    pub entry: Signal<Option<Entry>>,
    /// True once the current value (or its absence) is known.
    pub loaded: Signal<bool>,
    /// For display: why a write of this key waits, or why the last one was refused (asked from
    /// this page or another of the app), else the watch's last error.
    pub error: Signal<Option<String>>,
    store: RwSignal<Option<Store>>,
    bucket: StoredValue<String>,
    key: StoredValue<String>,
    context: NatsContext,
}

impl UseKvKeyReturn {
    /// The bucket, once bound.
    pub fn store(&self) -> Option<Store> {
        self.store.get_untracked()
    }

    /// [`UseKvKeyReturn::store`] for code that may run after the component is gone (a task):
    /// `None` then, `Some(store)` otherwise.
    pub fn try_store(&self) -> Option<Option<Store>> {
        self.store.try_get_untracked()
    }

    /// Writes `value` (last writer wins). The signal updates when the write comes back through
    /// the watch, in this tab as in every other. Asked before the bucket is bound or while the
    /// server is unreachable (or the connection is being replaced), it is written once it can
    /// be, over the connection then current, and `error` says so meanwhile; a newer `set` of the
    /// same key, from this page or another, replaces it. Only a write refused for what it is
    /// (permission, size) is given up, and says why. The write goes on after the component is
    /// unmounted; every page of the key, opened before or after, shows how it goes in `error`.
    pub fn set(&self, value: impl Into<Bytes>) {
        let (Some(bucket), Some(key)) = (self.bucket.try_get_value(), self.key.try_get_value())
        else {
            return;
        };
        let Some(outgoing) = outgoing(&self.context, &bucket, &key) else {
            return;
        };
        let start = {
            let mut o = outgoing.lock().unwrap_or_else(PoisonError::into_inner);
            o.value = Some(value.into());
            !std::mem::replace(&mut o.sending, true)
        };
        if start {
            let write = write_latest(outgoing, self.context, bucket, key);
            leptos::task::spawn_local(write);
        }
    }
}

/// The value a [`UseKvKeyReturn::set`] is writing, by (bucket, key).
pub(crate) type PendingWrites = std::collections::HashMap<(String, String), Arc<Mutex<Outgoing>>>;

/// How a page's KV write that failed should go on ([`write_failure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteFailure {
    /// The connection: down or not answering, nothing stored. Worth trying again once
    /// connected, over the connection then current.
    Connection,
    /// The write may have been stored: its retries ran out (an outage longer than its
    /// deadline), or its client was closed (the settings changed) while it was on its way.
    /// Writing the same value again is harmless; a change made from what is stored (a step, an
    /// increment) could be applied twice.
    Unknown,
    /// Lost to other writers of the key, again and again: worth trying again after a pause.
    Contention,
    /// Refused for what it is (permission, size, a bucket that cannot be made): trying again
    /// would not help.
    Refused,
}

/// What `e`, a failed write's error, says about trying again.
pub fn write_failure(e: &KvError) -> WriteFailure {
    use nats_ws::jetstream::JetStreamError;
    use nats_ws::{PublishError, RequestError};
    match e {
        KvError::JetStream(
            JetStreamError::DeadlineExceeded(_)
            | JetStreamError::Request(
                RequestError::Closed | RequestError::Publish(PublishError::Closed),
            )
            | JetStreamError::Subscribe(SubscribeError::Closed),
        )
        | KvError::OutcomeUnknown { .. } => WriteFailure::Unknown,
        KvError::JetStream(e) if e.is_transient() => WriteFailure::Connection,
        KvError::TooManyConflicts { .. }
        | KvError::WrongLastRevision { .. }
        | KvError::KeyExists { .. } => WriteFailure::Contention,
        _ => WriteFailure::Refused,
    }
}

/// A [`UseKvKeyReturn::set`] waiting to be written: only the latest value asked for (last
/// writer wins, in a tab as across tabs), whether a task is writing it, and what that task says
/// (why it waits, or why the last value was refused), which every page showing the key shows.
#[derive(Default)]
pub(crate) struct Outgoing {
    value: Option<Bytes>,
    sending: bool,
    status: ArcRwSignal<Option<String>>,
}

/// The app's [`Outgoing`] of `bucket` / `key`, made on first use.
fn outgoing(context: &NatsContext, bucket: &str, key: &str) -> Option<Arc<Mutex<Outgoing>>> {
    let writes = context.writes.try_get_value()?;
    let mut writes = writes.lock().unwrap_or_else(PoisonError::into_inner);
    let entry = writes.entry((bucket.to_owned(), key.to_owned()));
    Some(entry.or_default().clone())
}

/// The first pause after a failed write of a page, doubling up to the max.
const WRITE_PAUSE: std::time::Duration = std::time::Duration::from_millis(250);
const MAX_WRITE_PAUSE: std::time::Duration = std::time::Duration::from_secs(5);

/// Why a page's write waits before its next try ([`UseNatsReturn::write_until`]).
///
/// [`UseNatsReturn::write_until`]: crate::UseNatsReturn::write_until
#[derive(Debug, Clone, Copy)]
pub enum Waiting<'a> {
    /// No connected client (none yet, the server out of reach, or a closed one being
    /// replaced): nothing is sent until there is one.
    NotConnected,
    /// This try failed so; the bucket was deleted meanwhile when [`bucket_gone`] says so (it is
    /// bound, so created, again at the next try).
    Failed(&'a KvError),
}

impl NatsContext {
    /// See [`crate::UseNatsReturn::write_until`].
    pub(crate) async fn write_until<T, Fut>(
        &self,
        bucket: &str,
        retry: impl Fn(WriteFailure) -> bool,
        mut waiting: impl FnMut(Waiting<'_>),
        mut write: impl FnMut(Store) -> Fut,
    ) -> Result<T, KvError>
    where
        Fut: Future<Output = Result<T, KvError>>,
    {
        let mut pause = WRITE_PAUSE;
        loop {
            let client = self.client().get_untracked();
            // Said before waiting for the connection: a change asked for while the server is
            // down says at once that it waits, not once a try's 30 s have run out.
            if client.as_ref().is_some_and(|c| !c.status().is_connected()) {
                waiting(Waiting::NotConnected);
            }
            let client = match client {
                Some(client) if until_connected(&client).await => client,
                _ => {
                    waiting(Waiting::NotConnected);
                    gloo_timers::future::sleep(pause).await;
                    pause = (pause * 2).min(MAX_WRITE_PAUSE);
                    continue;
                }
            };
            let bound = self
                .bucket(&client, bucket, |replicas| bucket_config(bucket, replicas))
                .await;
            // Not bound: one that cannot be made (a user who may not create it) is a refusal.
            let e = match bound {
                Ok(store) => match write(store).await {
                    Ok(done) => return Ok(done),
                    Err(e) if bucket_gone(&e) => {
                        self.forget_bucket(bucket);
                        e
                    }
                    Err(e) if !retry(write_failure(&e)) => return Err(e),
                    Err(e) => e,
                },
                Err(e) if !retry(write_failure(&e)) => return Err(e),
                Err(e) => e,
            };
            waiting(Waiting::Failed(&e));
            gloo_timers::future::sleep(pause).await;
            pause = (pause * 2).min(MAX_WRITE_PAUSE);
        }
    }
}

/// Writes what [`UseKvKeyReturn::set`] asked for last of `bucket` / `key` until nothing is left
/// to write, over the app's connection (not a component's: it goes on when the page is left).
/// Each try writes the value asked for last; one that may have been stored is written again
/// (the same value: harmless). Says how it goes in the key's app-wide status, which outlives
/// the page that asked (a page opened later shows it).
async fn write_latest(
    outgoing: Arc<Mutex<Outgoing>>,
    context: NatsContext,
    bucket: String,
    key: String,
) {
    let lock = || outgoing.lock().unwrap_or_else(PoisonError::into_inner);
    let error = lock().status.clone();
    loop {
        // Not `while let`: its guard would be held for the whole round.
        let Some(asked) = lock().value.clone() else {
            break;
        };
        // What this round wrote last; the value asked for when it was given up before any
        // write (the bucket could not be bound: a user who may not use it).
        let tried = std::cell::RefCell::new(asked);
        let written = context
            .write_until(
                &bucket,
                |failure| failure != WriteFailure::Refused,
                |why| {
                    error.set(Some(match why {
                        Waiting::NotConnected => "not connected yet: the change is written \
                                                  once the server is reachable"
                            .to_owned(),
                        Waiting::Failed(e) if bucket_gone(e) => context.word(e),
                        Waiting::Failed(e) => format!(
                            "{}; the change is written once the server is back",
                            context.word(e)
                        ),
                    }))
                },
                |store| {
                    let value = lock().value.clone().unwrap_or_default();
                    *tried.borrow_mut() = value.clone();
                    let key = key.clone();
                    async move { store.put(&key, value).await }
                },
            )
            .await;
        error.set(written.err().map(|e| context.word(e)));
        let value = tried.into_inner();
        let mut o = lock();
        // Written (or refused, also before any write was tried): done, unless a newer value was
        // asked for meanwhile. Never left set after a refusal, or this would ask again at once,
        // for good.
        if o.value.as_ref() == Some(&value) {
            o.value = None;
        }
    }
    lock().sending = false;
}

/// Whether `e` says the bucket is gone (its stream deleted): binding it again creates it.
pub fn bucket_gone(e: &KvError) -> bool {
    e.is_bucket_gone()
}

/// Pause before binding a bucket again after it went away, so that one deleted again and again
/// is not recreated at the speed of a round trip.
const REBIND_PAUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// Binds (or creates, with history 5, replicated on a cluster) the bucket, trying again every few
/// seconds while that fails (server unreachable or restarting), every 10 s while the user's
/// permissions refuse it (a bucket this user may not create may be made by another; signing in
/// as another user makes another client), or at once after a new connection; `error` says why
/// meanwhile.
async fn bind_until_ready(
    context: &NatsContext,
    client: &Client,
    bucket: &str,
    error: RwSignal<Option<String>>,
) -> Store {
    loop {
        let mut pause = std::time::Duration::from_secs(2);
        match context
            .bucket(client, bucket, |replicas| bucket_config(bucket, replicas))
            .await
        {
            Ok(store) => {
                error.set(None);
                return store;
            }
            // While disconnected the cause is the connection, which the status badge already shows.
            Err(_) if !client.status().is_connected() => {
                error.set(Some("waiting for the connection to the server".to_owned()))
            }
            Err(e) => {
                if e.is_permission_denied() {
                    pause = std::time::Duration::from_secs(10);
                }
                error.set(Some(context.word(e)))
            }
        }
        crate::context::pause_until_reconnect(client, pause).await;
    }
}

/// Binds `bucket`, watches `filter` in it and hands every event to `on_event`, until the watch
/// ends (the client closed). A bucket found gone (deleted by someone) is bound, so created, again
/// after [`REBIND_PAUSE`], and the new watch starts with a `WatchEvent::Reset`: what it replays is
/// the bucket as it is now. The watch finds that out itself when its heartbeats stop, or at once
/// when anything else in the tab finds the bucket gone (a write, which binds it again: no pause).
async fn watch_bucket(
    context: NatsContext,
    client: Client,
    bucket: Rc<str>,
    filter: Rc<str>,
    error: RwSignal<Option<String>>,
    store: RwSignal<Option<Store>>,
    mut on_event: impl FnMut(WatchEvent),
) {
    let mut again = false;
    loop {
        // Asked before binding: a bucket found gone while the binding is on its way is told too.
        let mut told = context.on_bucket_gone(&bucket);
        let s = bind_until_ready(&context, &client, &bucket, error).await;
        store.set(Some(s.clone()));
        let mut watch = match s.watch(&filter) {
            Ok(w) => w,
            Err(e) => return error.set(Some(context.word(e))),
        };
        if std::mem::replace(&mut again, true) {
            on_event(WatchEvent::Reset);
        }
        let gone = loop {
            let event = futures::select_biased! {
                event = watch.next().fuse() => event,
                // Cancelled (the context is gone): the watch goes on alone.
                found = told => match found {
                    Ok(()) => break Gone::Told,
                    Err(_) => continue,
                },
            };
            match event {
                Some(Ok(event)) => {
                    // The watch delivers again: whatever failed on its way is over.
                    if error.try_with_untracked(Option::is_some) == Some(true) {
                        error.try_set(None);
                    }
                    on_event(event)
                }
                Some(Err(e)) if bucket_gone(&e) => break Gone::Found,
                Some(Err(e)) => error.set(Some(context.word(e))),
                None => return,
            }
        };
        drop((watch, told));
        if gone == Gone::Found {
            context.forget_bucket(&bucket);
            gloo_timers::future::sleep(REBIND_PAUSE).await;
        }
    }
}

/// How a watch learnt that its bucket is gone.
#[derive(PartialEq)]
enum Gone {
    /// Its own stream said so: the others watching the bucket are told.
    Found,
    /// Something else in the tab found it and told the watches.
    Told,
}

/// One KV key as a signal, live: every write, from any tab or any client, shows up. The bucket is
/// created (history 5) if it does not exist, and again if it is deleted while watched.
pub fn use_kv_key(bucket: impl Into<String>, key: impl Into<String>) -> UseKvKeyReturn {
    let (bucket, key) = (bucket.into(), key.into());
    let entry = RwSignal::new(None::<Entry>);
    let loaded = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let store = RwSignal::new(None::<Store>);
    let context = expect_context::<NatsContext>();
    // What a write of this key says, whichever page asked for it: shown before the watch's own.
    let writing = outgoing(&context, &bucket, &key).map(|o| {
        let o = o.lock().unwrap_or_else(PoisonError::into_inner);
        o.status.clone()
    });
    let shown = Signal::derive(move || {
        let written = writing.as_ref().and_then(|w| w.get());
        written.or_else(|| error.get())
    });
    let (bucket_c, key_c) = (
        Rc::<str>::from(bucket.as_str()),
        Rc::<str>::from(key.as_str()),
    );
    follow_client(move |client| {
        // Whether this watch has said anything of the key: a new client (other servers) or a
        // recreated bucket may have no value for it, which only the end of the initial values
        // tells; until then the last value shown stays.
        let mut told = false;
        let on_event = move |event| match event {
            WatchEvent::Entry(e) => {
                told = true;
                entry.set((e.operation == Operation::Put).then_some(e))
            }
            WatchEvent::InitialDone => {
                if !std::mem::replace(&mut told, true) {
                    entry.set(None);
                }
                loaded.set(true);
            }
            // The bucket was recreated: the new value follows (or, at the end of the initial
            // values, its absence); until then the last one stays.
            WatchEvent::Reset => told = false,
            _ => {}
        };
        let (bucket, key) = (bucket_c.clone(), key_c.clone());
        watch_bucket(context, client, bucket, key, error, store, on_event)
    });
    UseKvKeyReturn {
        entry: entry.into(),
        loaded: loaded.into(),
        error: shown,
        store,
        bucket: StoredValue::new(bucket),
        key: StoredValue::new(key),
        context,
    }
}

/// A live change seen by [`use_kv_watch`]: the key, its previous entry and its new one (`None`
/// for a delete or purge).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvChange {
    pub key: String,
    pub old: Option<Entry>,
    pub new: Option<Entry>,
}

/// What [`use_kv_watch`] returns.
#[derive(Clone, Copy)]
pub struct UseKvWatchReturn {
    /// Every key matching the filter that has a value, by key.
    pub entries: Signal<BTreeMap<String, Entry>>,
    /// True once the initial values are in.
    pub loaded: Signal<bool>,
    pub error: Signal<Option<String>>,
    /// The last change made after the initial values.
    pub last_change: Signal<Option<KvChange>>,
    store: RwSignal<Option<Store>>,
}

impl UseKvWatchReturn {
    /// The bucket, once bound.
    pub fn store(&self) -> Option<Store> {
        self.store.get_untracked()
    }
}

/// Every key of `bucket` matching `filter` (`*`, `>` wildcards) as a live map. The bucket is
/// created (history 5) if it does not exist, and again if it is deleted while watched.
pub fn use_kv_watch(bucket: impl Into<String>, filter: impl Into<String>) -> UseKvWatchReturn {
    let entries = RwSignal::new(BTreeMap::<String, Entry>::new());
    let loaded = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let last_change = RwSignal::new(None::<KvChange>);
    let store = RwSignal::new(None::<Store>);
    let context = expect_context::<NatsContext>();
    let (bucket, filter): (Rc<str>, Rc<str>) = (bucket.into().into(), filter.into().into());
    follow_client(move |client| {
        // A new client replays the initial values: the map starts over with the first of them.
        let mut fresh = true;
        let mut initial = true;
        let on_event = move |event| match event {
            WatchEvent::Entry(e) => {
                let key = e.key.clone();
                let new = (e.operation == Operation::Put).then_some(e);
                let mut old = None;
                entries.update(|map| {
                    if std::mem::take(&mut fresh) {
                        map.clear();
                    }
                    old = match &new {
                        Some(n) => map.insert(key.clone(), n.clone()),
                        None => map.remove(&key),
                    };
                });
                if !initial {
                    last_change.set(Some(KvChange { key, old, new }));
                }
            }
            WatchEvent::InitialDone => {
                if std::mem::take(&mut fresh) {
                    entries.set(BTreeMap::new());
                }
                initial = false;
                loaded.set(true);
            }
            // The bucket was recreated: the map starts over with the new initial values, which
            // are not changes.
            WatchEvent::Reset => {
                fresh = true;
                initial = true;
            }
            _ => {}
        };
        watch_bucket(
            context,
            client,
            bucket.clone(),
            filter.clone(),
            error,
            store,
            on_event,
        )
    });
    UseKvWatchReturn {
        entries: entries.into(),
        loaded: loaded.into(),
        error: error.into(),
        last_change: last_change.into(),
        store,
    }
}
