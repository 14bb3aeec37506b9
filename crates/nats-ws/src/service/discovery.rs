//! Asking the services on the bus about themselves: a request to `$SRV.<VERB>[.<name>[.<id>]]`
//! that every matching instance answers, collected until the replies stop coming.

use std::time::Duration;

use futures::{FutureExt, StreamExt};
use serde::de::DeserializeOwned;
use web_time::Instant;

use super::types::{
    InfoResponse, PingResponse, StatsResponse, INFO_RESPONSE_TYPE, PING_RESPONSE_TYPE,
    STATS_RESPONSE_TYPE,
};
use super::{check_name, ServiceError, API_PREFIX};
use crate::header::status;
use crate::{Client, ClientEvent, ServerError};

/// The three questions every service answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Ping,
    Info,
    Stats,
}

impl Verb {
    /// The subject token: `PING`, `INFO`, `STATS`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Ping => "PING",
            Verb::Info => "INFO",
            Verb::Stats => "STATS",
        }
    }

    /// The `type` of the replies: `io.nats.micro.v1.<verb>_response`.
    pub fn response_type(self) -> &'static str {
        match self {
            Verb::Ping => PING_RESPONSE_TYPE,
            Verb::Info => INFO_RESPONSE_TYPE,
            Verb::Stats => STATS_RESPONSE_TYPE,
        }
    }
}

/// `$SRV.<VERB>`, `$SRV.<VERB>.<name>` or `$SRV.<VERB>.<name>.<id>`.
pub fn control_subject(
    verb: Verb,
    name: Option<&str>,
    id: Option<&str>,
) -> Result<String, ServiceError> {
    let verb = verb.as_str();
    match (name, id) {
        (None, None) => Ok(format!("{API_PREFIX}.{verb}")),
        (None, Some(_)) => Err(ServiceError::IdWithoutName),
        (Some(name), None) => {
            check_name("service", name)?;
            Ok(format!("{API_PREFIX}.{verb}.{name}"))
        }
        (Some(name), Some(id)) => {
            check_name("service", name)?;
            check_name("service id", id)?;
            Ok(format!("{API_PREFIX}.{verb}.{name}.{id}"))
        }
    }
}

/// Pings every service (or every instance of `name`); see [`discover`] for the timing.
pub async fn ping(
    client: &Client,
    name: Option<&str>,
    quiet: Duration,
    max_wait: Duration,
) -> Result<Vec<PingResponse>, ServiceError> {
    discover(client, Verb::Ping, name, None, quiet, max_wait).await
}

/// Asks every service (or every instance of `name`) for its description and endpoints.
pub async fn info(
    client: &Client,
    name: Option<&str>,
    quiet: Duration,
    max_wait: Duration,
) -> Result<Vec<InfoResponse>, ServiceError> {
    discover(client, Verb::Info, name, None, quiet, max_wait).await
}

/// Asks every service (or every instance of `name`) for its request counts and timings.
pub async fn stats(
    client: &Client,
    name: Option<&str>,
    quiet: Duration,
    max_wait: Duration,
) -> Result<Vec<StatsResponse>, ServiceError> {
    discover(client, Verb::Stats, name, None, quiet, max_wait).await
}

/// Sends `verb` to all services, the instances of `name`, or the one instance `name`/`id`, and
/// collects the replies: the first may take up to `max_wait`, then it returns once `quiet` passes
/// without another (as natscli's and nats.js's discovery: a slow link or a busy service is not
/// "no service"), once `max_wait` has passed in all, or at once when the server says nobody listens
/// (no responders). Replies that are not `T` (wrong `type`, malformed JSON) are
/// skipped. The order is the order of arrival.
///
/// Not connected when asked ([`ServiceError::NotConnected`]), the connection lost before the
/// end ([`ServiceError::ConnectionLost`]) and the question refused by the server
/// ([`ServiceError::PermissionDenied`]) are errors, not an empty or partial list.
pub async fn discover<T: DeserializeOwned>(
    client: &Client,
    verb: Verb,
    name: Option<&str>,
    id: Option<&str>,
    quiet: Duration,
    max_wait: Duration,
) -> Result<Vec<T>, ServiceError> {
    let subject = control_subject(verb, name, id)?;
    // A discovery follows its connection, as a request does: asked while disconnected, the
    // question would wait in the reconnect buffer and the answer be "no service"; a connection
    // lost while the answers come leaves a part of them. Both are errors. So is a question the
    // server refuses (a user who may not publish to $SRV), which is otherwise silence.
    let mut events = client.events();
    if !client.status().is_connected() {
        return Err(ServiceError::NotConnected);
    }
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(&inbox)?;
    client.publish_message(&subject, Some(&inbox), None, b"")?;
    // `None`: beyond what the clock can name (`Duration::MAX` for "no limit"): no deadline.
    let deadline = Instant::now().checked_add(max_wait);
    // After the first answer, the end comes once `quiet` passes without another.
    let mut quiet_until: Option<Instant> = None;
    let mut found = Vec::new();
    loop {
        let now = Instant::now();
        let until =
            |at: Option<Instant>| at.map_or(Duration::MAX, |d| d.saturating_duration_since(now));
        let wait = until(deadline).min(until(quiet_until));
        if wait.is_zero() {
            break;
        }
        let next = futures::select_biased! {
            event = events.next().fuse() => {
                match event {
                    Some(ClientEvent::Status(status)) if !status.is_connected() => {
                        return Err(ServiceError::ConnectionLost);
                    }
                    Some(ClientEvent::ServerError(ServerError::PublishDenied { subject: denied }))
                        if denied == subject =>
                    {
                        return Err(ServiceError::PermissionDenied { subject });
                    }
                    Some(_) => continue,
                    None => return Err(ServiceError::ConnectionLost),
                }
            }
            m = replies.next().fuse() => m,
            _ = crate::rt::sleep(wait).fuse() => break,
        };
        quiet_until = Instant::now().checked_add(quiet);
        let message = match next {
            Some(Ok(m)) => m,
            Some(Err(e)) => return Err(e.into()),
            None => break,
        };
        if message.status() == Some(status::NO_RESPONDERS) {
            break;
        }
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(&message.payload) else {
            continue;
        };
        if value.get("type").and_then(|t| t.as_str()) != Some(verb.response_type()) {
            continue;
        }
        if let Ok(reply) = serde_json::from_value(value) {
            found.push(reply);
        }
    }
    Ok(found)
}
