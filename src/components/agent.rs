//! Talking to via-agent, the native companion that runs processes and leaf nodes: its JSON
//! endpoints with typed errors, whether it is there at all, and the notice that says how to start
//! it when it is not.
//!
//! A browser cannot start processes; every action here is a request the agent answers. Nothing in
//! this module waits for a timeout to learn that the agent is missing: the server answers "no
//! responders" at once.

use std::time::Duration;

use futures::channel::mpsc;
use futures::{FutureExt, StreamExt};
use leptos::prelude::*;
use leptos_nats::{spawn_while_mounted, until_connected};
use nats_ws::{Client, RequestError, Status};
use serde::de::DeserializeOwned;
use serde::Serialize;

use process_control::{subjects, EmptyRequest};

use crate::components::toasts::Toasts;
use crate::model::{parse_agent_reply, AgentError};

/// How long an action may take: a restart waits for the old process to exit, a new leaf for
/// the hub to confirm it joined.
pub const ACTION_TIMEOUT: Duration = Duration::from_secs(20);
/// How long the presence check waits for the agent's answer.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// Checks while the agent is missing, and while it is there.
const CHECK_MISSING_EVERY: Duration = Duration::from_secs(3);
const CHECK_RUNNING_EVERY: Duration = Duration::from_secs(10);

/// Sends `body` as JSON to one of the agent's endpoints and reads the reply as `T`. An error reply
/// (`Nats-Service-Error` headers or a `{"error"}` body) is [`AgentError::Refused`]; no responders
/// is [`AgentError::NotRunning`].
pub async fn agent_request<T: DeserializeOwned>(
    client: &Client,
    subject: &str,
    body: &impl Serialize,
    timeout: Duration,
) -> Result<T, AgentError> {
    let payload = serde_json::to_vec(body).map_err(|e| AgentError::Request(e.to_string()))?;
    match client.request_with(subject, None, &payload, timeout).await {
        Ok(reply) => {
            let header = |name| reply.headers.as_ref().and_then(|h| h.get(name));
            parse_agent_reply(
                header("Nats-Service-Error"),
                header("Nats-Service-Error-Code"),
                &reply.payload,
            )
        }
        Err(RequestError::NoResponders { .. }) => Err(AgentError::NotRunning),
        Err(e) => Err(AgentError::Request(crate::session::explain(e))),
    }
}

/// Whether the agent answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// Not known yet (first check under way, or not connected).
    Checking,
    Running,
    /// No responders on its subjects.
    Missing,
    /// The check failed for another reason (timeout, connection lost): the message says why.
    Unknown(String),
}

/// What [`watch_agent`] returns. `Copy`.
#[derive(Clone, Copy)]
pub struct AgentWatch {
    pub presence: RwSignal<Presence>,
    wake: StoredValue<mpsc::UnboundedSender<()>>,
}

impl AgentWatch {
    /// Checks again now (after an action failed, or when something suggests the agent is back).
    pub fn check_now(&self) {
        if let Some(wake) = self.wake.try_get_value() {
            let _ = wake.unbounded_send(());
        }
    }

    /// An action learnt that the agent is gone: say so at once, and keep checking.
    pub fn saw(&self, error: &AgentError) {
        if *error == AgentError::NotRunning {
            self.presence.set(Presence::Missing);
            self.check_now();
        }
    }

    pub fn is_missing(&self) -> bool {
        self.presence.get() == Presence::Missing
    }
}

/// Asks the agent's `list` endpoint whether it is there, for as long as the calling component
/// lives: at once, every few seconds (more often while it is missing), on [`AgentWatch::check_now`],
/// and whenever the connection comes back.
pub fn watch_agent(client: Client) -> AgentWatch {
    let presence = RwSignal::new(Presence::Checking);
    let (wake, mut woken) = mpsc::unbounded::<()>();
    spawn_while_mounted(async move {
        loop {
            if !until_connected(&client).await {
                return; // closed: the settings changed, another client takes over
            }
            let answer = agent_request::<serde_json::Value>(
                &client,
                subjects::LIST,
                &EmptyRequest {},
                CHECK_TIMEOUT,
            )
            .await;
            let now = match answer {
                // An error reply still means somebody answers.
                Ok(_) | Err(AgentError::Refused { .. } | AgentError::BadReply(_)) => {
                    Presence::Running
                }
                Err(AgentError::NotRunning) => Presence::Missing,
                Err(AgentError::Request(why)) => Presence::Unknown(why),
            };
            let every = if now == Presence::Running {
                CHECK_RUNNING_EVERY
            } else {
                CHECK_MISSING_EVERY
            };
            if presence.try_get_untracked().as_ref() != Some(&now) {
                presence.set(now);
            }
            // Whichever comes first: the period, a wake, or the connection dropping (the next
            // round then waits for it to come back and checks at once).
            let mut statuses = client.status_stream();
            let dropped = async move {
                while let Some(status) = statuses.next().await {
                    if !matches!(status, Status::Connected { .. }) {
                        return;
                    }
                }
            };
            futures::select! {
                _ = gloo_timers::future::sleep(every).fuse() => {}
                _ = woken.next() => {}
                _ = Box::pin(dropped).fuse() => presence.set(Presence::Checking),
            }
        }
    });
    AgentWatch {
        presence,
        wake: StoredValue::new(wake),
    }
}

/// Shown instead of the controls while nobody answers on the agent's subjects.
#[component]
pub fn AgentMissing(agent: AgentWatch) -> impl IntoView {
    view! {
        <section class="card notice agent-missing" data-testid="agent-missing" role="status">
            <div class="notice-icon" aria-hidden="true">"!"</div>
            <div class="notice-body">
                <h2>"via-agent is not running"</h2>
                <p>
                    "Processes and leaf nodes are run by " <code>"via-agent"</code>
                    ", a native program next to nats-server: a browser cannot start processes. Nobody answers on "
                    <code>{subjects::LIST}</code> "."
                </p>
                <p>
                    "Start everything with " <code>"./run.sh"</code>
                    " (nats-server, the agent and this app), or only the agent with "
                    <code>"cargo run -p via-agent"</code> "."
                </p>
                <p class="hint">
                    "This page checks again every few seconds and when the connection comes back. "
                    <button class="link-button" on:click=move |_| agent.check_now()>
                        "Check now"
                    </button>
                </p>
            </div>
        </section>
    }
}

/// A line under the heading while the agent's presence is not settled or not known.
#[component]
pub fn AgentPresenceLine(agent: AgentWatch) -> impl IntoView {
    move || match agent.presence.get() {
        Presence::Checking => {
            Some(view! { <p class="hint">"Looking for via-agent…"</p> }.into_any())
        }
        Presence::Unknown(why) => Some(
            view! { <p class="error">{format!("could not reach via-agent: {why}")}</p> }.into_any(),
        ),
        Presence::Running | Presence::Missing => None,
    }
}

/// Clears `error` whenever `what` changes from the value it had (not when it is first read):
/// what a refused or failed action said is about the thing as it was.
pub fn clear_on_change<T: PartialEq + Clone + Send + Sync + 'static>(
    error: RwSignal<Option<String>>,
    what: Memo<T>,
) {
    Effect::new(move |first: Option<()>| {
        // Read, not only tracked: a memo computes (and so follows its sources) when read.
        let _ = what.get();
        if first.is_some() && error.with_untracked(Option::is_some) {
            error.set(None);
        }
    });
}

/// A table row's action that failed: the agent watch learns from it (no responders means the
/// agent is gone), and `text` shows under the row and as a toast.
pub fn report_row_failure(
    agent: AgentWatch,
    error: RwSignal<Option<String>>,
    toasts: Toasts,
    cause: &AgentError,
    text: String,
) {
    agent.saw(cause);
    error.set(Some(text.clone()));
    toasts.push(text);
}

/// The row under a table row that shows its last failed action, spanning `columns`.
#[component]
pub fn RowError(columns: u32, error: RwSignal<Option<String>>) -> impl IntoView {
    view! {
        <Show when=move || error.get().is_some()>
            <tr class="proc-error">
                <td colspan=columns>
                    <p class="error" role="alert">{move || error.get()}</p>
                </td>
            </tr>
        </Show>
    }
}
