//! Endpoints and the requests they hand out, with the per-endpoint counters STATS reports.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use web_time::Instant;

use super::error::RespondError;
use super::types::{EndpointInfo, EndpointStats, Metadata};
use super::{error_headers, ServiceShared};
use crate::error::Quoted;
use crate::error::{PublishError, SubjectError, SubscribeError};
use crate::{Client, HeaderMap, Message, Subscriber};

/// A subscription the service can end while a task or the application reads it.
#[derive(Clone)]
pub(crate) struct SharedSub(Arc<Mutex<Subscriber>>);

impl SharedSub {
    pub(crate) fn new(sub: Subscriber) -> Self {
        SharedSub(Arc::new(Mutex::new(sub)))
    }

    fn lock(&self) -> MutexGuard<'_, Subscriber> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn poll_message(
        &self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, SubscribeError>>> {
        self.lock().poll_next_unpin(cx)
    }

    /// Messages dropped so far because the reader held its limit of unread ones.
    fn dropped(&self) -> u64 {
        self.lock().dropped()
    }

    /// Unsubscribes; what was received stays readable, then the stream ends.
    pub(crate) fn unsubscribe(&self) {
        self.lock().unsubscribe();
    }

    /// Starts a drain ([`Subscriber::drain`]): the UNSUB goes out now, what is on its way is
    /// still delivered, then the stream ends. The future waits for that end.
    pub(crate) fn drain(
        &self,
    ) -> impl std::future::Future<Output = Result<(), crate::ConnectionError>> + 'static {
        self.lock().drain()
    }
}

impl Stream for SharedSub {
    type Item = Result<Message, SubscribeError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_message(cx)
    }
}

#[derive(Default)]
struct Counters {
    num_requests: u64,
    num_errors: u64,
    last_error: String,
    processing_time: Duration,
}

pub(crate) struct EndpointShared {
    name: String,
    subject: String,
    queue_group: String,
    metadata: Metadata,
    pub(crate) sub: SharedSub,
    counters: Mutex<Counters>,
    /// Slow-consumer drops already counted as an error.
    dropped_seen: AtomicU64,
}

impl EndpointShared {
    pub(crate) fn new(
        name: String,
        subject: String,
        queue_group: String,
        metadata: Metadata,
        sub: SharedSub,
    ) -> Self {
        EndpointShared {
            name,
            subject,
            queue_group,
            metadata,
            sub,
            counters: Mutex::new(Counters::default()),
            dropped_seen: AtomicU64::new(0),
        }
    }

    fn counters(&self) -> MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn info(&self) -> EndpointInfo {
        EndpointInfo {
            name: self.name.clone(),
            subject: self.subject.clone(),
            queue_group: self.queue_group.clone(),
            metadata: self.metadata.clone(),
        }
    }

    pub(crate) fn stats(&self) -> EndpointStats {
        // Requests dropped while nobody read the endpoint count when STATS is asked, too.
        self.note_drops();
        let c = self.counters();
        let average = match u32::try_from(c.num_requests) {
            Ok(0) => Duration::ZERO,
            Ok(n) => c.processing_time / n,
            Err(_) => Duration::from_nanos(
                u64::try_from(c.processing_time.as_nanos() / u128::from(c.num_requests))
                    .unwrap_or(u64::MAX),
            ),
        };
        EndpointStats {
            name: self.name.clone(),
            subject: self.subject.clone(),
            queue_group: self.queue_group.clone(),
            num_requests: c.num_requests,
            num_errors: c.num_errors,
            last_error: c.last_error.clone(),
            processing_time: c.processing_time,
            average_processing_time: average,
            data: None,
        }
    }

    pub(crate) fn reset(&self) {
        *self.counters() = Counters::default();
    }

    fn count_error(&self, error: String) {
        let mut c = self.counters();
        c.num_errors += 1;
        c.last_error = error;
    }

    /// Counts new slow-consumer drops as one error, as nats.go's async error handler does.
    fn note_drops(&self) {
        let dropped = self.sub.dropped();
        // The highest count seen wins: STATS (another thread) and the reader may race here, and
        // a stale count swapped back in would have the same drops counted again.
        if self.dropped_seen.fetch_max(dropped, Ordering::AcqRel) < dropped {
            self.count_error(SLOW_CONSUMER.to_owned());
        }
    }

    /// The error text nats.go would give (`err.Error()`), which it puts in `last_error`.
    fn nats_go_error(&self, error: &SubscribeError) -> String {
        match error {
            SubscribeError::PermissionDenied { subject } => {
                let queue = match self.queue_group.as_str() {
                    "" => String::new(),
                    q => format!(" using queue {}", Quoted(q)),
                };
                format!(
                    "nats: permissions violation: Permissions Violation for Subscription to \
                     {}{queue}",
                    Quoted(subject)
                )
            }
            SubscribeError::Closed => "nats: connection closed".to_owned(),
            other => other.to_string(),
        }
    }
}

/// nats.go's `ErrSlowConsumer`.
const SLOW_CONSUMER: &str = "nats: slow consumer, messages dropped";

/// The requests of one endpoint, as a [`Stream`]. It ends when the service stops (after handing
/// out every request routed to it before) or when its subscription fails: the server refused it
/// (permissions) or the client closed. A failure is counted in STATS (`num_errors`, and
/// `last_error` in nats.go's words, e.g. `nats: permissions violation: Permissions Violation for
/// Subscription to "x" using queue "q"`) and stops the whole service (drained), as nats.js stops
/// on any subscription error and nats.go on those it can tie to a subscription (its permission
/// errors carry none; a closed connection stops it without an entry). Requests dropped because
/// this stream was not read fast enough ([`crate::Subscriber::dropped`]) are counted as an error
/// too (`nats: slow consumer, messages dropped`), but the service goes on — nats.go stops there
/// too; here an overload does not become an outage. A failure is noticed as the stream is read;
/// drops also when STATS is asked.
///
/// Dropping it unsubscribes the endpoint and removes it from INFO and STATS, while the service
/// goes on answering discovery: keep serving after one request's error (a `?` on
/// [`Request::respond`] in the serving loop would end it on a request published without a reply
/// subject). Dropped by a panic (the serving loop's task unwinding; natively: in wasm32 a panic
/// aborts the module), it stops the whole service instead: an instance that lost an endpoint to a bug is not left discoverable without it (with
/// nats.go the panic ends the process; nats.js stops a service whose endpoint's subscription ends).
#[must_use = "an endpoint serves only while it is kept: dropping it unsubscribes"]
pub struct Endpoint {
    shared: Arc<EndpointShared>,
    service: Arc<ServiceShared>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("name", &self.shared.name)
            .field("subject", &self.shared.subject)
            .field("queue_group", &self.shared.queue_group)
            .finish()
    }
}

impl Endpoint {
    pub(crate) fn new(shared: Arc<EndpointShared>, service: Arc<ServiceShared>) -> Self {
        Endpoint { shared, service }
    }

    pub fn name(&self) -> &str {
        &self.shared.name
    }

    /// The subject it serves (with its group's prefix).
    pub fn subject(&self) -> &str {
        &self.shared.subject
    }

    /// The queue group it joined; empty for none.
    pub fn queue_group(&self) -> &str {
        &self.shared.queue_group
    }

    /// This endpoint's entry in STATS.
    pub fn stats(&self) -> EndpointStats {
        self.shared.stats()
    }
}

impl Stream for Endpoint {
    type Item = Request;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Request>> {
        let this = self.get_mut();
        let next = this.shared.sub.poll_message(cx);
        this.shared.note_drops();
        match next {
            Poll::Ready(Some(Ok(message))) => Poll::Ready(Some(Request {
                message,
                endpoint: this.shared.clone(),
                client: this.service.client.clone(),
                received: Instant::now(),
                counted: AtomicBool::new(false),
                send_failed: AtomicBool::new(false),
            })),
            // The server refused the subscription (permissions), or the client closed: the
            // endpoint cannot serve, and the service stops.
            Poll::Ready(Some(Err(e))) => {
                this.shared.count_error(this.shared.nats_go_error(&e));
                this.service.stop_in_background();
                Poll::Ready(None)
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.service.stop_in_background();
        }
        self.shared.sub.unsubscribe();
        self.service.remove_endpoint(&self.shared);
    }
}

/// One request to an endpoint. Answer it with [`Request::respond`] or [`Request::respond_error`];
/// it is counted in STATS at its first answer, or when dropped unanswered (as nats.go counts a
/// handler that returns without responding).
pub struct Request {
    message: Message,
    endpoint: Arc<EndpointShared>,
    client: Client,
    received: Instant,
    counted: AtomicBool,
    /// An answer was tried and could not be sent: a later error reply still sets `last_error`.
    send_failed: AtomicBool,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("endpoint", &self.endpoint.name)
            .field("message", &self.message)
            .finish()
    }
}

impl Request {
    /// The request message as received.
    pub fn message(&self) -> &Message {
        &self.message
    }

    pub fn payload(&self) -> &Bytes {
        &self.message.payload
    }

    /// The payload as text, if it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        self.message.text()
    }

    /// The subject it was sent to (useful for an endpoint with wildcards).
    pub fn subject(&self) -> &str {
        &self.message.subject
    }

    pub fn headers(&self) -> Option<&HeaderMap> {
        self.message.headers.as_ref()
    }

    /// Where the answer goes; `None` if it was published without one (then nothing can answer it).
    pub fn reply(&self) -> Option<&str> {
        self.message.reply.as_deref()
    }

    /// Answers with `payload`.
    pub fn respond(&self, payload: impl AsRef<[u8]>) -> Result<(), RespondError> {
        self.send(None, payload.as_ref(), None)
    }

    /// Answers with headers and `payload`.
    pub fn respond_with_headers(
        &self,
        headers: &HeaderMap,
        payload: impl AsRef<[u8]>,
    ) -> Result<(), RespondError> {
        self.send(Some(headers), payload.as_ref(), None)
    }

    /// Answers with an error: headers `Nats-Service-Error: <description>` and
    /// `Nats-Service-Error-Code: <code>`, and `body` as the payload. Counted as an error in STATS
    /// (`last_error` = `"<code>:<description>"`). Line breaks in `description` become spaces
    /// (a header value cannot hold them). An empty description is refused
    /// ([`RespondError::DescriptionRequired`], as nats.go refuses it): nothing is sent or counted,
    /// and the request can still be answered.
    pub fn respond_error(
        &self,
        code: u16,
        description: &str,
        body: impl AsRef<[u8]>,
    ) -> Result<(), RespondError> {
        if description.is_empty() {
            return Err(RespondError::DescriptionRequired);
        }
        let (headers, description) = error_headers(code, description);
        let error = format!("{code}:{description}");
        self.send(Some(&headers), body.as_ref(), Some(error))
    }

    fn send(
        &self,
        headers: Option<&HeaderMap>,
        payload: &[u8],
        error: Option<String>,
    ) -> Result<(), RespondError> {
        let result = match self.message.reply.as_deref() {
            Some(reply) => self.client.publish_message(reply, None, headers, payload),
            None => Err(PublishError::InvalidSubject(SubjectError {
                subject: String::new(),
                reason: "the request has no reply subject: it was published, not sent as a request",
            })),
        };
        let error = match &result {
            Err(e) => {
                self.send_failed.store(true, Ordering::Release);
                Some(e.to_string())
            }
            Ok(()) => error,
        };
        match error {
            // The error reply a handler sends after its answer could not be sent: what the
            // requester was told is the error to keep (nats.go's `request.Error` overwrites the
            // one it records); the request was counted by the failed send.
            Some(error) if result.is_ok() && self.send_failed.load(Ordering::Acquire) => {
                self.endpoint.counters().last_error = error;
            }
            error => self.count(error),
        }
        Ok(result?)
    }

    /// Counts the request once: its processing time up to now, and the error, if any.
    fn count(&self, error: Option<String>) {
        if self.counted.swap(true, Ordering::AcqRel) {
            return;
        }
        let elapsed = self.received.elapsed();
        let mut c = self.endpoint.counters();
        c.num_requests += 1;
        c.processing_time += elapsed;
        if let Some(error) = error {
            c.num_errors += 1;
            c.last_error = error;
        }
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        // Dropped while its handler panics (a task of its own dies, the process goes on): the
        // requester is told at once instead of waiting out its timeout, and STATS counts an
        // error, as nats.js answers a handler that throws with a 500. (With panic = "abort", as
        // in the browser, this never runs.)
        if std::thread::panicking() && !self.counted.load(Ordering::Acquire) {
            let _ = self.respond_error(500, "the handler panicked", b"");
        }
        self.count(None);
    }
}
