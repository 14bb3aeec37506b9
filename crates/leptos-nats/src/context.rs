//! The connection, provided once through context.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::channel::oneshot;
use futures::future::{AbortHandle, Abortable};
use futures::{FutureExt, StreamExt};
use leptos::prelude::*;
use leptos::task::spawn_local;
use nats_ws::kv::{KvConfig, KvError, Store};
use nats_ws::{Client, Options, Status};

/// By bucket name, what tells each KV hook's watch of it that it is gone.
type GoneWatches = HashMap<String, Vec<oneshot::Sender<()>>>;

/// What [`provide_nats`] puts in context. Cheap to copy.
#[derive(Clone, Copy)]
pub struct NatsContext {
    client: RwSignal<Option<Client>>,
    status: RwSignal<Status>,
    /// Why the last `connect` was refused (invalid url and the like), if it was.
    setup_error: RwSignal<Option<String>>,
    watcher: StoredValue<Option<AbortHandle>>,
    buckets: StoredValue<Arc<Mutex<HashMap<String, Store>>>>,
    /// By (bucket, key), the value a `use_kv_key` `set` is writing: one per key for the whole
    /// app, so that the latest `set` of any page wins and one task writes it.
    pub(crate) writes: StoredValue<Arc<Mutex<crate::hooks::PendingWrites>>>,
    /// The KV hooks' watches of each bucket, told when something finds the bucket gone.
    gone: StoredValue<Arc<Mutex<GoneWatches>>>,
    /// How the hooks put an error into words ([`UseNatsReturn::word_errors_with`]).
    wording: StoredValue<fn(String) -> String>,
}

/// An error's own text, as the hooks say it unless told otherwise.
fn as_it_is(text: String) -> String {
    text
}

/// What [`use_nats`] returns.
#[derive(Clone, Copy)]
pub struct UseNatsReturn {
    /// The client; `None` until the first `connect`, or when the options were invalid.
    pub client: Signal<Option<Client>>,
    /// Connecting, Connected (server, RTT), Reconnecting (attempt), Offline (last error), Closed.
    pub status: Signal<Status>,
    /// Why the options were refused, if they were.
    pub setup_error: Signal<Option<String>>,
    context: NatsContext,
}

impl UseNatsReturn {
    /// Retries at once (after going offline, or while waiting between attempts).
    pub fn reconnect_now(&self) {
        if let Some(client) = self.client.get_untracked() {
            client.reconnect_now();
        }
    }

    /// How the hooks put an error into words in the `error` signals they return: `wording` is
    /// given the error's own text (a permission refusal names the subject the server refused,
    /// say) and returns what the page shows (what that means for the user signed in, and what
    /// to do). Default: the error's own text.
    pub fn word_errors_with(&self, wording: fn(String) -> String) {
        self.context.wording.set_value(wording);
    }

    /// Replaces the connection with one made from `options` (new servers, name or credentials).
    /// Every hook moves over to the new client. Options that cannot make a client (an invalid
    /// url and the like) are refused with the reason, and a current client is kept as it is
    /// (without one, the reason is also in `setup_error`).
    pub fn connect(&self, options: Options) -> Result<(), String> {
        self.context.connect(options)
    }

    /// Runs `write` on KV bucket `bucket` until it succeeds, or fails in a way `retry` does not
    /// take ([`crate::write_failure`]): over the app's connection then current (not a page's: a
    /// task that outlives its page may call this), bound as the KV hooks bind it. It waits for a
    /// connected client, binds (so creates) the bucket again when a try finds it deleted, and
    /// pauses between tries (250 ms, doubling up to 5 s), telling `waiting` why first.
    pub async fn write_until<T, Fut>(
        &self,
        bucket: &str,
        retry: impl Fn(crate::WriteFailure) -> bool,
        waiting: impl FnMut(crate::Waiting<'_>),
        write: impl FnMut(Store) -> Fut,
    ) -> Result<T, KvError>
    where
        Fut: std::future::Future<Output = Result<T, KvError>>,
    {
        self.context
            .write_until(bucket, retry, waiting, write)
            .await
    }

    /// After an operation said bucket `name` is gone (deleted by someone): the next
    /// [`Self::kv_bucket`] binds it again, and so creates it again.
    pub fn forget_kv_bucket(&self, name: &str) {
        self.context.forget_bucket(name);
    }

    /// The KV bucket `name` on `client`, bound as the KV hooks bind it: once per client, and
    /// created (history 5) if it does not exist yet. For work that must outlive the component
    /// that started it, which a hook's store does not.
    pub async fn kv_bucket(&self, client: &Client, name: &str) -> Result<Store, KvError> {
        self.context
            .bucket(client, name, |replicas| bucket_config(name, replicas))
            .await
    }
}

/// Runs `fut` on the browser's event loop for as long as the calling component lives: it is
/// aborted (dropping whatever subscriptions or watchers it holds) on cleanup.
pub fn spawn_while_mounted(fut: impl std::future::Future<Output = ()> + 'static) {
    let task = spawn_abortable(fut);
    on_cleanup(move || task.abort());
}

/// Waits `pause`, or less if `client` connects again meanwhile after a disconnection
/// ([`Client::next_reconnect`]): the pause before trying again what a server refused, which a
/// new connection (maybe to a server restarted with other permissions) ends. A closed client
/// does not end it: a loop pausing here keeps its pace rather than spinning (its task ends with
/// the client's page or hook).
pub async fn pause_until_reconnect(client: &Client, pause: std::time::Duration) {
    let reconnected = async {
        client.next_reconnect().await;
        if matches!(client.status(), Status::Closed) {
            std::future::pending::<()>().await;
        }
    };
    futures::select_biased! {
        _ = gloo_timers::future::sleep(pause).fuse() => {},
        _ = reconnected.fuse() => {},
    }
}

/// Waits until `client` is connected (at once if it is). `false` if it was closed instead (the
/// connection settings changed and another client took over).
pub async fn until_connected(client: &Client) -> bool {
    let mut statuses = client.status_stream();
    while let Some(status) = statuses.next().await {
        match status {
            Status::Connected { .. } => return true,
            Status::Closed => return false,
            _ => {}
        }
    }
    false
}

/// How the KV hooks create a bucket that does not exist yet: history 5, the server's replicas.
pub(crate) fn bucket_config(bucket: &str, replicas: usize) -> KvConfig {
    KvConfig::new(bucket).history(5).replicas(replicas)
}

/// Spawns `fut` on the browser's event loop and returns what stops it.
pub(crate) fn spawn_abortable(fut: impl std::future::Future<Output = ()> + 'static) -> AbortHandle {
    let (handle, registration) = AbortHandle::new_pair();
    spawn_local(async move {
        let _ = Abortable::new(fut, registration).await;
    });
    handle
}

impl NatsContext {
    /// `error` in the app's words ([`UseNatsReturn::word_errors_with`]).
    pub(crate) fn word(&self, error: impl std::fmt::Display) -> String {
        let text = error.to_string();
        match self.wording.try_get_value() {
            Some(wording) => wording(text),
            None => text,
        }
    }

    fn connect(&self, options: Options) -> Result<(), String> {
        // Made first: options refused while a connection works leave that connection alone.
        let made = nats_ws::start(options);
        if let (Err(e), Some(_)) = (&made, self.client.get_untracked()) {
            return Err(e.to_string());
        }
        if let Some(old) = self.client.get_untracked() {
            // Closed once the hooks have moved to the new client (their effects run before the
            // next timer task): the tasks they abort drop their KV watchers, which delete their
            // consumers through this connection — closed first, those would linger on the server
            // until their inactive threshold (5 min). `close` writes them out before closing.
            spawn_local(async move {
                gloo_timers::future::TimeoutFuture::new(0).await;
                old.close();
            });
        }
        if let Some(Some(handle)) = self.watcher.try_get_value() {
            handle.abort();
        }
        // A new map, not the old one emptied: a binding made for the old client that completes
        // after this lands in the old map, which nobody reads any more.
        self.buckets.set_value(Arc::default());
        match made {
            Ok(client) => {
                let status = self.status;
                let mut statuses = client.status_stream();
                let handle = spawn_abortable(async move {
                    while let Some(s) = statuses.next().await {
                        status.set(s);
                    }
                });
                self.watcher.set_value(Some(handle));
                self.setup_error.set(None);
                self.client.set(Some(client));
                Ok(())
            }
            Err(e) => {
                let why = e.to_string();
                self.setup_error.set(Some(why.clone()));
                self.status.set(Status::Offline { last_error: e });
                self.client.set(None);
                Err(why)
            }
        }
    }

    /// Drops the binding of bucket `name`: it was deleted, and binding it again creates it. The
    /// KV hooks watching it are told (see [`Self::on_bucket_gone`]).
    pub(crate) fn forget_bucket(&self, name: &str) {
        if let Some(cache) = self.buckets.try_get_value() {
            cache.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
        }
        let told = self
            .gone
            .try_get_value()
            .and_then(|gone| gone.lock().unwrap_or_else(|e| e.into_inner()).remove(name));
        for watch in told.into_iter().flatten() {
            let _ = watch.send(());
        }
    }

    /// Resolves with `Ok` when something in this tab finds bucket `name` gone
    /// ([`Self::forget_bucket`]): a write that created it again, say. A watch of the deleted
    /// stream would otherwise notice only when its heartbeats stop (10 s). `Err` (cancelled)
    /// when the context is gone.
    pub(crate) fn on_bucket_gone(&self, name: &str) -> oneshot::Receiver<()> {
        let (tell, told) = oneshot::channel();
        if let Some(gone) = self.gone.try_get_value() {
            let mut gone = gone.lock().unwrap_or_else(|e| e.into_inner());
            let watches = gone.entry(name.to_owned()).or_default();
            // Those of watches that ended meanwhile (their component left) go.
            watches.retain(|w| !w.is_canceled());
            watches.push(tell);
        }
        told
    }

    pub(crate) fn client(&self) -> RwSignal<Option<Client>> {
        self.client
    }

    /// The bucket, bound once per client; created with `create(replicas)` if it does not exist
    /// yet, `replicas` being the server's [`nats_ws::jetstream::JetStream::default_replicas`].
    pub async fn bucket(
        &self,
        client: &Client,
        name: &str,
        create: impl FnOnce(usize) -> KvConfig,
    ) -> Result<Store, KvError> {
        // Called from tasks, which may outlive the context by a tick: then bind without caching.
        let cache = self.buckets.try_get_value().unwrap_or_default();
        if let Some(store) = cache.lock().unwrap_or_else(|e| e.into_inner()).get(name) {
            return Ok(store.clone());
        }
        let js = client.jetstream();
        let store = match js.key_value(name).await {
            // The server answered, so the client is connected: the replicas come from its INFO.
            Err(KvError::BucketNotFound { .. }) => match js
                .create_key_value(create(js.default_replicas().await))
                .await
            {
                // Someone else created it meanwhile, perhaps with other settings: use theirs.
                Err(KvError::BucketExists { .. } | KvError::JetStream(_)) => {
                    js.key_value(name).await?
                }
                other => other?,
            },
            other => other?,
        };
        cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), store.clone());
        Ok(store)
    }
}

/// Creates the connection and provides it to every component below. Call once, in the root.
pub fn provide_nats(options: Options) -> NatsContext {
    let context = NatsContext {
        client: RwSignal::new(None),
        status: RwSignal::new(Status::Connecting),
        setup_error: RwSignal::new(None),
        watcher: StoredValue::new(None),
        buckets: StoredValue::new(Arc::default()),
        writes: StoredValue::new(Arc::default()),
        gone: StoredValue::new(Arc::default()),
        wording: StoredValue::new(as_it_is),
    };
    // Refused options leave no client; the status says why.
    let _ = context.connect(options);
    provide_context(context);
    on_cleanup(move || {
        if let Some(Some(client)) = context.client.try_get_untracked() {
            client.close();
        }
        if let Some(Some(handle)) = context.watcher.try_get_value() {
            handle.abort();
        }
    });
    context
}

/// The connection provided by [`provide_nats`].
pub fn use_nats() -> UseNatsReturn {
    let context = expect_context::<NatsContext>();
    UseNatsReturn {
        client: context.client.into(),
        status: context.status.into(),
        setup_error: context.setup_error.into(),
        context,
    }
}
