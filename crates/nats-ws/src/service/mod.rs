//! NATS services, the micro v1 protocol of nats.go `micro`, async-nats `service` and nats.js
//! `@nats-io/services`: a named, versioned service whose endpoints answer requests, and that
//! every client on the bus can discover and monitor.
//!
//! - [`add`] starts a [`Service`]: it answers `$SRV.PING|INFO|STATS` (also `.<name>` and
//!   `.<name>.<id>`) with [`PingResponse`], [`InfoResponse`] and [`StatsResponse`] from a task
//!   of its own (tokio natively, `spawn_local` in the browser), on plain subscriptions so every
//!   instance answers.
//! - [`Service::endpoint`] / [`Service::endpoint_with`] / [`Group::endpoint`] subscribe an
//!   [`Endpoint`], in queue group `q` unless configured otherwise, so instances share the load.
//!   An endpoint is a `Stream` of [`Request`]s; [`Request::respond`] and
//!   [`Request::respond_error`] answer (errors travel as the `Nats-Service-Error` and
//!   `Nats-Service-Error-Code` headers) and count the request in STATS: processing time runs from
//!   the moment the endpoint hands the request out to its first answer. An endpoint whose
//!   subscription fails (the server refuses it, the client closes) records the error in its
//!   `last_error` and stops the service; so does one dropped by a panic of the task serving it.
//! - [`ping`], [`info`], [`stats`] and [`discover`] ask the bus and collect every answer.
//!
//! ```no_run
//! # async fn demo(client: nats_ws::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use futures::StreamExt;
//! use nats_ws::service::{self, ServiceConfig};
//! let service = service::add(&client, ServiceConfig::new("greeter", "1.0.0"))?;
//! let mut hello = service.endpoint("hello")?;
//! while let Some(request) = hello.next().await {
//!     let answered = match request.text() {
//!         Some(name) if !name.is_empty() => request.respond(format!("hello, {name}")),
//!         _ => request.respond_error(400, "send a name", b""),
//!     };
//!     // One request's trouble (published without a reply subject, say) is counted in STATS;
//!     // it must not end the loop: a dropped `Endpoint` stops serving while the service goes on.
//!     if let Err(e) = answered {
//!         eprintln!("greeter: {e}");
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! Re-subscription after a reconnect is the client's: every subscription here is an ordinary one.
//! What this module must never do: panic on anything a request carries, or keep answering after
//! [`Service::stop`] (or the drop of the [`Service`]).

mod discovery;
mod endpoint;
mod error;
mod types;

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::{FutureExt, StreamExt};

pub use discovery::{control_subject, discover, info, ping, stats, Verb};
pub use endpoint::{Endpoint, Request};
pub use error::{RespondError, ServiceError};
pub use types::{
    EndpointInfo, EndpointStats, InfoResponse, Metadata, PingResponse, StatsResponse,
    INFO_RESPONSE_TYPE, PING_RESPONSE_TYPE, STATS_RESPONSE_TYPE,
};

use crate::{validate_queue_group, validate_subscribe_subject, Client, SubscribeOptions};
use endpoint::{EndpointShared, SharedSub};

/// The root token of the control subjects.
pub const API_PREFIX: &str = "$SRV";
/// The queue group endpoints join unless configured otherwise.
pub const DEFAULT_QUEUE_GROUP: &str = "q";
/// The header that carries an error reply's description.
pub const ERROR_HEADER: &str = "Nats-Service-Error";
/// The header that carries an error reply's code.
pub const ERROR_CODE_HEADER: &str = "Nats-Service-Error-Code";

/// How long [`Service::stop`] waits for the server to confirm the unsubscriptions.
const STOP_LIMIT: Duration = Duration::from_secs(5);

/// Computes the `data` of an endpoint in STATS, given the endpoint's INFO entry.
pub type StatsHandler = Arc<dyn Fn(&EndpointInfo) -> serde_json::Value + Send + Sync>;

/// Which queue group a service, group or endpoint subscribes in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
enum Queue {
    /// The parent's (the service's default is [`DEFAULT_QUEUE_GROUP`]).
    #[default]
    Inherit,
    Named(String),
    /// No queue group: every instance gets every request.
    Disabled,
}

impl Queue {
    /// The queue group in effect, given the parent's (`None`: no queue group), as nats.go resolves it.
    fn resolve(&self, parent: Option<&str>) -> Option<String> {
        match self {
            Queue::Inherit => parent.map(str::to_owned),
            Queue::Named(q) => Some(q.clone()),
            Queue::Disabled => None,
        }
    }
}

/// What a service is: name (`[A-Za-z0-9_-]+`), semantic version, description, metadata, and the
/// queue group its endpoints join by default.
#[derive(Clone)]
pub struct ServiceConfig {
    name: String,
    version: String,
    description: String,
    metadata: Metadata,
    queue: Queue,
    stats_handler: Option<StatsHandler>,
}

impl std::fmt::Debug for ServiceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceConfig")
            .field("name", &self.name)
            .field("version", &self.version)
            .field("description", &self.description)
            .field("metadata", &self.metadata)
            .field("queue", &self.queue)
            .field("stats_handler", &self.stats_handler.is_some())
            .finish()
    }
}

impl ServiceConfig {
    pub fn new(name: impl Into<String>, version: impl Into<String>) -> Self {
        ServiceConfig {
            name: name.into(),
            version: version.into(),
            description: String::new(),
            metadata: Metadata::new(),
            queue: Queue::Inherit,
            stats_handler: None,
        }
    }

    pub fn description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    /// Adds a metadata entry (replacing an earlier one of the same key).
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The queue group endpoints join unless they or their group say otherwise (default `q`).
    pub fn queue_group(mut self, queue_group: impl Into<String>) -> Self {
        self.queue = Queue::Named(queue_group.into());
        self
    }

    /// Endpoints subscribe without a queue group unless they or their group name one.
    pub fn no_queue_group(mut self) -> Self {
        self.queue = Queue::Disabled;
        self
    }

    /// Fills each endpoint's `data` in STATS. Natively, a handler that panics has that STATS
    /// answered with a 500 error (`the stats handler panicked`) and the service goes on; in the
    /// browser a panic ends the module, as any panic there does.
    pub fn stats_handler(
        mut self,
        handler: impl Fn(&EndpointInfo) -> serde_json::Value + Send + Sync + 'static,
    ) -> Self {
        self.stats_handler = Some(Arc::new(handler));
        self
    }
}

/// An endpoint: name (`[A-Za-z0-9_-]+`), subject (default: the name; wildcards allowed),
/// queue group and metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    name: String,
    subject: Option<String>,
    queue: Queue,
    metadata: Metadata,
}

impl EndpointConfig {
    pub fn new(name: impl Into<String>) -> Self {
        EndpointConfig {
            name: name.into(),
            subject: None,
            queue: Queue::Inherit,
            metadata: Metadata::new(),
        }
    }

    /// The subject to serve (prefixed by the group's, if any); default the endpoint's name.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    pub fn queue_group(mut self, queue_group: impl Into<String>) -> Self {
        self.queue = Queue::Named(queue_group.into());
        self
    }

    /// Every instance of the service gets every request of this endpoint.
    pub fn no_queue_group(mut self) -> Self {
        self.queue = Queue::Disabled;
        self
    }

    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// Checks a service or endpoint name (also a service id): `[A-Za-z0-9_-]+`.
pub(crate) fn check_name(what: &'static str, name: &str) -> Result<(), ServiceError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ServiceError::InvalidName {
            what,
            name: name.to_owned(),
        })
    }
}

/// Whether `version` is a semantic version (semver.org 2.0.0, the grammar nats.go checks).
pub fn is_semver(version: &str) -> bool {
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numeric = |s: &str| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
    };
    let ident =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| numeric(p))
        && pre.is_none_or(|pre| {
            pre.split('.')
                .all(|id| ident(id) && (numeric(id) || !id.bytes().all(|b| b.is_ascii_digit())))
        })
        && build.is_none_or(|b| b.split('.').all(ident))
}

/// Starts a service on `client`: validates the config, subscribes the `$SRV` control subjects and
/// starts the task that answers them. Natively this must run within a tokio runtime.
pub fn add(client: &Client, config: ServiceConfig) -> Result<Service, ServiceError> {
    check_name("service", &config.name)?;
    if !is_semver(&config.version) {
        return Err(ServiceError::InvalidVersion(config.version));
    }
    if let Queue::Named(q) = &config.queue {
        validate_queue_group(q).map_err(ServiceError::InvalidQueueGroup)?;
    }
    let id = new_id();
    let mut verbs = Vec::new();
    for verb in [Verb::Ping, Verb::Info, Verb::Stats] {
        for (name, id) in [
            (None, None),
            (Some(config.name.as_str()), None),
            (Some(config.name.as_str()), Some(id.as_str())),
        ] {
            let subject = control_subject(verb, name, id)?;
            verbs.push((verb, SharedSub::new(client.subscribe(&subject)?)));
        }
    }
    let queue = config.queue.resolve(Some(DEFAULT_QUEUE_GROUP));
    let shared = Arc::new(ServiceShared {
        client: client.clone(),
        id,
        config,
        queue,
        state: Mutex::new(State {
            started: crate::time::now_rfc3339(),
            endpoints: Vec::new(),
            verbs: verbs.iter().map(|(_, s)| s.clone()).collect(),
            stopped: false,
        }),
    });
    spawn(answer_verbs(shared.clone(), verbs))?;
    Ok(Service { shared })
}

/// 22 characters of `[A-Za-z0-9]` (the shape of a nuid, as the other implementations use).
fn new_id() -> String {
    let mut rng = fastrand::Rng::with_seed(getrandom::u64().unwrap_or_else(|_| fastrand::u64(..)));
    (0..22).map(|_| rng.alphanumeric()).collect()
}

#[cfg(not(target_arch = "wasm32"))]
fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) -> Result<(), ServiceError> {
    let runtime = tokio::runtime::Handle::try_current().map_err(|_| ServiceError::NoRuntime)?;
    runtime.spawn(task);
    Ok(())
}

#[cfg(target_arch = "wasm32")]
fn spawn(task: impl std::future::Future<Output = ()> + 'static) -> Result<(), ServiceError> {
    wasm_bindgen_futures::spawn_local(task);
    Ok(())
}

/// The headers of an error answer (`Nats-Service-Error: <description>`,
/// `Nats-Service-Error-Code: <code>`), and the description as sent: line breaks become spaces (a
/// header value cannot hold them).
fn error_headers(code: u16, description: &str) -> (crate::HeaderMap, String) {
    let description = description.replace(['\r', '\n'], " ");
    let mut headers = crate::HeaderMap::new();
    headers
        .insert(ERROR_HEADER, description.as_str())
        .insert(ERROR_CODE_HEADER, code.to_string());
    (headers, description)
}

/// Answers PING, INFO and STATS until the control subscriptions end (stop, drop, client closed).
async fn answer_verbs(shared: Arc<ServiceShared>, verbs: Vec<(Verb, SharedSub)>) {
    let mut requests = futures::stream::select_all(
        verbs
            .into_iter()
            .map(|(verb, sub)| sub.map(move |m| (verb, m))),
    );
    while let Some((verb, message)) = requests.next().await {
        // A refused subscription (permissions) ends that stream after its error; the rest go on
        // (unlike a refused endpoint: a user may be allowed only its own service's subjects).
        let Ok(message) = message else { continue };
        let Some(reply) = message.reply else { continue };
        let body = match verb {
            Verb::Ping => Ok(serde_json::to_vec(&shared.ping()).unwrap_or_default()),
            Verb::Info => Ok(serde_json::to_vec(&shared.info()).unwrap_or_default()),
            // The stats handler is the application's code: if it panics, this STATS is answered
            // with the error and the service goes on answering (the panic would otherwise end
            // this task, and with it every PING, INFO and STATS answer, silently).
            Verb::Stats => {
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| shared.stats()))
                    .map(|stats| serde_json::to_vec(&stats).unwrap_or_default())
                    .map_err(|_| "the stats handler panicked".to_owned())
            }
        };
        // An answer that cannot go (more than the server's max_payload: much metadata, a large
        // stats `data`) is said as an error, as nats.go does, instead of leaving the asker to
        // time out. Nothing to tell anyone if that fails too (client closed, subject refused).
        let why = match body {
            Ok(body) => match shared.client.publish(&reply, body) {
                Ok(()) => continue,
                Err(e) => e.to_string(),
            },
            Err(why) => why,
        };
        let description = format!("Error handling {} request: {why}", verb.as_str());
        let (headers, _) = error_headers(500, &description);
        let _ = shared.client.publish_with_headers(&reply, &headers, b"");
    }
}

pub(crate) struct ServiceShared {
    client: Client,
    id: String,
    config: ServiceConfig,
    /// The service-level queue group in effect (`None`: none).
    queue: Option<String>,
    state: Mutex<State>,
}

struct State {
    started: String,
    endpoints: Vec<Arc<EndpointShared>>,
    verbs: Vec<SharedSub>,
    stopped: bool,
}

impl ServiceShared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn ping(&self) -> PingResponse {
        PingResponse {
            name: self.config.name.clone(),
            id: self.id.clone(),
            version: self.config.version.clone(),
            metadata: self.config.metadata.clone(),
            kind: PING_RESPONSE_TYPE.to_owned(),
        }
    }

    fn info(&self) -> InfoResponse {
        let endpoints = self.lock().endpoints.iter().map(|e| e.info()).collect();
        InfoResponse {
            name: self.config.name.clone(),
            id: self.id.clone(),
            version: self.config.version.clone(),
            metadata: self.config.metadata.clone(),
            kind: INFO_RESPONSE_TYPE.to_owned(),
            description: self.config.description.clone(),
            endpoints,
        }
    }

    fn stats(&self) -> StatsResponse {
        let (started, endpoints) = {
            let state = self.lock();
            (state.started.clone(), state.endpoints.clone())
        };
        // The handler runs without the service's lock: it may take its time.
        let endpoints = endpoints
            .iter()
            .map(|e| {
                let mut stats = e.stats();
                if let Some(handler) = &self.config.stats_handler {
                    stats.data = Some(handler(&e.info()));
                }
                stats
            })
            .collect();
        StatsResponse {
            name: self.config.name.clone(),
            id: self.id.clone(),
            version: self.config.version.clone(),
            metadata: self.config.metadata.clone(),
            kind: STATS_RESPONSE_TYPE.to_owned(),
            started,
            endpoints,
        }
    }

    /// Subscribes an endpoint under `prefix` (a group's subject, or empty) with the parent's
    /// queue group `parent_queue`.
    fn add_endpoint(
        self: &Arc<Self>,
        prefix: &str,
        parent_queue: Option<&str>,
        config: EndpointConfig,
    ) -> Result<Endpoint, ServiceError> {
        check_name("endpoint", &config.name)?;
        let subject = config.subject.as_deref().unwrap_or(&config.name);
        let subject = match prefix {
            "" => subject.to_owned(),
            prefix => format!("{prefix}.{subject}"),
        };
        validate_subscribe_subject(&subject).map_err(ServiceError::InvalidSubject)?;
        let queue_group = config.queue.resolve(parent_queue);
        let mut options = SubscribeOptions::default();
        if let Some(q) = &queue_group {
            validate_queue_group(q).map_err(ServiceError::InvalidQueueGroup)?;
            options = options.queue_group(q.clone());
        }
        // Under the lock, so a concurrent stop() either sees this endpoint or refuses it.
        let mut state = self.lock();
        if state.stopped {
            return Err(ServiceError::Stopped);
        }
        let sub = self.client.subscribe_with_options(&subject, options)?;
        let shared = Arc::new(EndpointShared::new(
            config.name,
            subject,
            queue_group.unwrap_or_default(),
            config.metadata,
            SharedSub::new(sub),
        ));
        state.endpoints.push(shared.clone());
        Ok(Endpoint::new(shared, self.clone()))
    }

    /// Forgets an endpoint whose [`Endpoint`] was dropped.
    pub(crate) fn remove_endpoint(&self, endpoint: &Arc<EndpointShared>) {
        self.lock().endpoints.retain(|e| !Arc::ptr_eq(e, endpoint));
    }

    /// Marks the service stopped and hands out its subscriptions (control subjects and
    /// endpoints) to end. Stopped already, the same: a drain asked for again waits for the one
    /// under way (or is over at once), so [`Service::stop`] after a stop in the background
    /// still returns only once the server has processed it.
    fn stop_subs(&self) -> Vec<SharedSub> {
        self.stop_subs_if(true)
    }

    /// As [`ServiceShared::stop_subs`]; with `again` false, nothing if it was stopped already
    /// (a drop must not cut the drains a stop started).
    fn stop_subs_if(&self, again: bool) -> Vec<SharedSub> {
        let mut state = self.lock();
        if std::mem::replace(&mut state.stopped, true) && !again {
            return Vec::new();
        }
        let endpoints = state.endpoints.iter().map(|e| e.sub.clone());
        state.verbs.iter().cloned().chain(endpoints).collect()
    }

    /// Stops from where nothing can wait (an endpoint's stream): the drains start, and end by
    /// themselves once the server has answered (or the connection is lost).
    pub(crate) fn stop_in_background(&self) {
        for sub in self.stop_subs() {
            drop(sub.drain());
        }
    }
}

/// A running service. [`Service::stop`] stops it; dropping it stops it too, at once (see there).
#[must_use = "a service answers only while it is kept: dropping it stops it"]
pub struct Service {
    shared: Arc<ServiceShared>,
}

impl std::fmt::Debug for Service {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Service")
            .field("name", &self.shared.config.name)
            .field("id", &self.shared.id)
            .finish()
    }
}

impl Service {
    /// This instance's id: 22 random characters of `[A-Za-z0-9]`.
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    pub fn name(&self) -> &str {
        &self.shared.config.name
    }

    pub fn version(&self) -> &str {
        &self.shared.config.version
    }

    /// What PING answers.
    pub fn ping(&self) -> PingResponse {
        self.shared.ping()
    }

    /// What INFO answers.
    pub fn info(&self) -> InfoResponse {
        self.shared.info()
    }

    /// What STATS answers.
    pub fn stats(&self) -> StatsResponse {
        self.shared.stats()
    }

    /// Zeroes every endpoint's counters and sets `started` to now (as nats.go does).
    pub fn reset(&self) {
        let endpoints = {
            let mut state = self.shared.lock();
            state.started = crate::time::now_rfc3339();
            state.endpoints.clone()
        };
        for e in endpoints {
            e.reset();
        }
    }

    /// Adds an endpoint on subject `name`, in the service's queue group.
    pub fn endpoint(&self, name: &str) -> Result<Endpoint, ServiceError> {
        self.endpoint_with(EndpointConfig::new(name))
    }

    pub fn endpoint_with(&self, config: EndpointConfig) -> Result<Endpoint, ServiceError> {
        self.shared
            .add_endpoint("", self.shared.queue.as_deref(), config)
    }

    /// A group: its endpoints' subjects are prefixed with `prefix` and a dot.
    pub fn group(&self, prefix: &str) -> Group {
        Group {
            service: self.shared.clone(),
            prefix: prefix.to_owned(),
            queue: self.shared.queue.clone(),
        }
    }

    /// Whether the service has stopped: [`Service::stop`] ran (or the service was dropped), an
    /// endpoint's subscription failed, or the client was closed (as nats.go's service stops with
    /// its connection). A stopped service stays stopped.
    pub fn stopped(&self) -> bool {
        self.shared.lock().stopped || matches!(self.shared.client.status(), crate::Status::Closed)
    }

    /// Stops answering, as nats.go's `Stop`: drains the control subjects and every endpoint
    /// ([`crate::Subscriber::drain`], all at once), and waits (at most 5 s) until the server has
    /// processed the unsubscriptions, so no request sent after this returns reaches this
    /// instance. Every request the server routed here before — even one still on the wire when
    /// this is called — is handed out by its endpoint's stream, which then ends, and can still be
    /// answered; `$SRV` requests likewise still get their answer. While disconnected it returns
    /// at once (nothing is on its way).
    pub async fn stop(&self) {
        let drains = self.shared.stop_subs().into_iter().map(|sub| sub.drain());
        futures::select_biased! {
            _ = futures::future::join_all(drains).fuse() => {},
            _ = crate::rt::sleep(STOP_LIMIT).fuse() => {},
        }
    }
}

/// Dropping stops at once: it cannot wait for the server, so it unsubscribes rather than drains
/// (requests still on their way are lost, and the endpoints' streams end after what they
/// received). Call [`Service::stop`] first for a graceful end.
impl Drop for Service {
    fn drop(&mut self) {
        // Stopped already, its drains go on: they end by themselves.
        for sub in self.shared.stop_subs_if(false) {
            sub.unsubscribe();
        }
    }
}

/// Endpoints under a common subject prefix, optionally with their own queue group.
#[derive(Clone)]
pub struct Group {
    service: Arc<ServiceShared>,
    prefix: String,
    queue: Option<String>,
}

impl std::fmt::Debug for Group {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Group")
            .field("prefix", &self.prefix)
            .field("queue", &self.queue)
            .finish()
    }
}

impl Group {
    /// The subject prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// This group's endpoints (and subgroups) join `queue_group` unless they name their own.
    pub fn queue_group(mut self, queue_group: impl Into<String>) -> Self {
        self.queue = Some(queue_group.into());
        self
    }

    /// This group's endpoints (and subgroups) subscribe without a queue group unless they name one.
    pub fn no_queue_group(mut self) -> Self {
        self.queue = None;
        self
    }

    /// A subgroup: prefix `<this prefix>.<name>`.
    pub fn group(&self, name: &str) -> Group {
        let prefix = match (self.prefix.as_str(), name) {
            ("", name) => name.to_owned(),
            (prefix, "") => prefix.to_owned(),
            (prefix, name) => format!("{prefix}.{name}"),
        };
        Group {
            prefix,
            ..self.clone()
        }
    }

    /// Adds an endpoint on subject `<prefix>.<name>`.
    pub fn endpoint(&self, name: &str) -> Result<Endpoint, ServiceError> {
        self.endpoint_with(EndpointConfig::new(name))
    }

    /// Adds an endpoint on subject `<prefix>.<subject>` (subject defaults to the name).
    pub fn endpoint_with(&self, config: EndpointConfig) -> Result<Endpoint, ServiceError> {
        self.service
            .add_endpoint(&self.prefix, self.queue.as_deref(), config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent and other programs move these into tokio tasks.
    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn handles_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Service>();
        check::<Group>();
        check::<Endpoint>();
        check::<Request>();
        check::<ServiceError>();
        check::<RespondError>();
    }

    #[test]
    fn semver() {
        for ok in [
            "0.0.0",
            "1.2.3",
            "10.20.30",
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-0.3.7",
            "1.0.0-x.7.z.92",
            "1.0.0-x-y-z.--",
            "1.0.0+20130313144700",
            "1.0.0-beta+exp.sha.5114f85",
            "1.0.0-rc.1+build.1",
            "1.0.0-0a",
        ] {
            assert!(is_semver(ok), "{ok}");
        }
        for bad in [
            "",
            "1",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.02.3",
            "1.2.03",
            "v1.2.3",
            "1.2.3-",
            "1.2.3+",
            "1.2.3-01",
            "1.2.3-a..b",
            "1.2.3+a..b",
            "1.2.3-a_b",
            " 1.2.3",
            "1.2.x",
            "-1.2.3",
        ] {
            assert!(!is_semver(bad), "{bad:?}");
        }
    }

    #[test]
    fn names() {
        for ok in ["a", "process-control", "A_b-9"] {
            assert!(check_name("service", ok).is_ok());
        }
        for bad in ["", "a.b", "a b", "a*", ">", "ü"] {
            assert!(check_name("service", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ids_look_like_nuids() {
        let a = new_id();
        assert_eq!(a.len(), 22);
        assert!(a.bytes().all(|b| b.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, new_id());
    }

    #[test]
    fn queue_groups_resolve_like_nats_go() {
        assert_eq!(Queue::Inherit.resolve(Some("q")), Some("q".into()));
        assert_eq!(Queue::Inherit.resolve(None), None);
        assert_eq!(Queue::Named("x".into()).resolve(None), Some("x".into()));
        assert_eq!(Queue::Disabled.resolve(Some("q")), None);
    }

    #[test]
    fn control_subjects() {
        assert_eq!(
            control_subject(Verb::Ping, None, None).unwrap(),
            "$SRV.PING"
        );
        assert_eq!(
            control_subject(Verb::Info, Some("a"), None).unwrap(),
            "$SRV.INFO.a"
        );
        assert_eq!(
            control_subject(Verb::Stats, Some("a"), Some("b")).unwrap(),
            "$SRV.STATS.a.b"
        );
        assert_eq!(
            control_subject(Verb::Ping, None, Some("b")),
            Err(ServiceError::IdWithoutName)
        );
        assert!(control_subject(Verb::Ping, Some("a.>"), None).is_err());
    }
}
