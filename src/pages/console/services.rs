//! `/nats`: the services on the bus. The KV registry `services_registry` (live: an entry shows
//! when written and goes when deleted or expired) and every NATS service (micro v1) that answers
//! `$SRV`, whatever its language: endpoints and stats, refreshed every 5 s while the page is in
//! view and on demand, and a form that calls an endpoint and shows the reply or the error, with
//! the latency. Both lists come from [`crate::components::directory`], shared with `/graph`.

use std::time::Duration;

use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_nats::use_nats;
use nats_ws::service::{ERROR_CODE_HEADER, ERROR_HEADER};
use nats_ws::{
    validate_publish_subject, validate_subscribe_subject, Client, Message, RequestError,
};
use process_control::{REGISTRY_BUCKET, REGISTRY_TTL_MS};

use crate::components::clock::{monotonic_ms, time_of_day, use_now};
use crate::components::directory::{
    use_directory, Directory, EndpointView, RegistrySetup, ServiceInstance, STALE_AFTER_MS,
};
use crate::model::format_duration;

/// How long a call from the page waits for its reply.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of a reply is shown.
const PREVIEW_BYTES: usize = 4096;

#[component]
pub fn ServicesPage() -> impl IntoView {
    let nats = use_nats();
    // Kept when the connection changes (signing in as admin after a refused call).
    let call = Call {
        target: RwSignal::new(None),
        subject: RwSignal::new(String::new()),
        payload: RwSignal::new(String::new()),
    };
    view! {
        <section class="page-head">
            <h1>"Services"</h1>
            <p class="lede">
                "The registry in the KV bucket " <code>{REGISTRY_BUCKET}</code>
                " (watched live) and every NATS service that answers " <code>"$SRV.INFO"</code>
                " and " <code>"$SRV.STATS"</code> ", in any language. Call an endpoint to see its reply."
            </p>
        </section>
        {move || match nats.client.get() {
            Some(client) => view! { <Services client call/> }.into_any(),
            None => view! { <p class="muted">"Not connected."</p> }.into_any(),
        }}
    }
}

/// The endpoint the call form is aimed at.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CallTarget {
    service: String,
    endpoint: String,
    subject: String,
}

/// The call form: the endpoint it is open for and what is typed in it.
#[derive(Clone, Copy)]
struct Call {
    target: RwSignal<Option<CallTarget>>,
    subject: RwSignal<String>,
    payload: RwSignal<String>,
}

impl Call {
    /// Opens the form for `t` with the payload the endpoint gives as an example (its metadata's
    /// `example`, as this project's services give one), else empty; the form open for `t`
    /// already stays as it is (a typed payload, the last reply).
    fn open(self, t: CallTarget, example: Option<String>) {
        if self.target.with_untracked(|open| open.as_ref() != Some(&t)) {
            self.subject.set(t.subject.clone());
            self.payload.set(example.unwrap_or_default());
            self.target.set(Some(t));
        }
    }
}

#[component]
fn Services(client: Client, call: Call) -> impl IntoView {
    let directory = use_directory(client.clone());
    view! {
        <Registry directory/>
        <ServiceList directory call/>
        {move || call.target.get().map(|t| {
            let client = client.clone();
            view! { <CallForm target=t call client/> }
        })}
    }
}

#[component]
fn Registry(directory: Directory) -> impl IntoView {
    // Heartbeats are the registrants' times: compared with the server's clock, not this browser's.
    let now = directory
        .registry
        .server_time(use_now(Duration::from_secs(1)));
    let view_now = Memo::new(move |_| directory.registrations(now.get()));
    let registry = directory.registry;
    let status = move || {
        if let RegistrySetup::Failed(why) = directory.setup.get() {
            return Some(why);
        }
        registry.error.get()
    };
    view! {
        <section class="card">
            <div class="card-head">
                <h2>"Registry"</h2>
                <span class="muted small">
                    <code>{REGISTRY_BUCKET}</code>
                    {format!(
                        " · stale after {} s without a heartbeat, gone after {} s",
                        STALE_AFTER_MS / 1000,
                        REGISTRY_TTL_MS / 1000,
                    )}
                </span>
            </div>
            <Show when=move || status().is_some()>
                <p class="error" role="alert" data-testid="registry-error">{status}</p>
            </Show>
            <Show
                when=move || registry.loaded.get() && !view_now.with(|v| v.rows.is_empty())
                fallback=move || {
                    let text = move || {
                        if !registry.loaded.get() && status().is_some() {
                            "Not loaded: see the error above."
                        } else if !registry.loaded.get() || registry.missing.get() {
                            "Opening the registry…"
                        } else {
                            "Nothing is registered: via-agent registers what it runs."
                        }
                    };
                    view! { <p class="empty" data-testid="registry-empty">{text}</p> }
                }
            >
                <div class="table-wrap">
                    <table class="proc-table">
                        <thead>
                            <tr>
                                <th>"Name"</th>
                                <th>"Host"</th>
                                <th class="num">"PID"</th>
                                <th>"Registered"</th>
                                <th class="num">"Last heartbeat"</th>
                                <th>"Health"</th>
                                <th>"Tags"</th>
                            </tr>
                        </thead>
                        <tbody>
                            <For
                                each=move || view_now.get().rows
                                key=|r| (r.key.clone(), r.revision, r.health)
                                children=move |r| {
                                    let heartbeat_at = r.entry.heartbeat_at as f64;
                                    let health = r.health.as_str();
                                    view! {
                                        <tr
                                            class="registry-entry"
                                            class:stale=r.health != crate::components::directory::Health::Healthy
                                            data-testid="registry-row"
                                            data-key=r.key.clone()
                                        >
                                            <td class="proc-name"><span class="name">{r.name}</span></td>
                                            <td>{r.entry.host}</td>
                                            <td class="num">{r.entry.pid.to_string()}</td>
                                            <td>{time_of_day(r.entry.registered_at as f64, false)}</td>
                                            <td class="num">
                                                {move || format!("{} ago", format_duration(now.get() - heartbeat_at))}
                                            </td>
                                            <td>
                                                <span
                                                    class=format!("state health-{health}")
                                                    data-testid="registry-health"
                                                >
                                                    {health}
                                                </span>
                                            </td>
                                            <td>
                                                {r.entry.tags.into_iter().map(|t| view! { <span class="tag service-tag">{t}</span>" " }).collect_view()}
                                            </td>
                                        </tr>
                                    }
                                }
                            />
                        </tbody>
                    </table>
                </div>
            </Show>
            <Show when=move || view_now.with(|v| !v.unreadable.is_empty())>
                <p class="muted small" data-testid="registry-unreadable">
                    {move || view_now.with(|v| format!(
                        "Not registry entries (left out): {}",
                        v.unreadable.join(", "),
                    ))}
                </p>
            </Show>
        </section>
    }
}

#[component]
fn ServiceList(directory: Directory, call: Call) -> impl IntoView {
    let keys = Memo::new(move |_| {
        directory.services.with(|list| {
            list.iter()
                .map(|s| (s.name.clone(), s.id.clone()))
                .collect::<Vec<_>>()
        })
    });
    let summary = move || {
        let when = directory
            .refreshed_at
            .get()
            .map(|t| format!(" · asked at {}", time_of_day(t, false)))
            .unwrap_or_default();
        match keys.with(Vec::len) {
            1 => format!("1 instance{when}"),
            n => format!("{n} instances{when}"),
        }
    };
    view! {
        <section class="card">
            <div class="card-head">
                <h2>"NATS services"</h2>
                <div class="row services-refresh">
                    <span class="muted small" data-testid="services-summary">{summary}</span>
                    <button
                        class="secondary"
                        data-testid="services-refresh"
                        disabled=move || directory.refreshing.get()
                        on:click=move |_| directory.refresh()
                    >
                        {move || if directory.refreshing.get() { "Asking…" } else { "Refresh" }}
                    </button>
                </div>
            </div>
            <Show when=move || directory.services_error.get().is_some()>
                <p class="error" role="alert" data-testid="services-error">
                    {move || directory.services_error.get()}
                </p>
            </Show>
            <Show
                when=move || !keys.with(Vec::is_empty)
                fallback=move || {
                    let text = move || {
                        if directory.services_loaded.get() {
                            "No service answers $SRV.INFO."
                        } else {
                            "Asking the services…"
                        }
                    };
                    view! { <p class="empty" data-testid="services-empty">{text}</p> }
                }
            >
                <For
                    each=move || keys.get()
                    key=|k| k.clone()
                    children=move |(name, id)| view! { <ServiceCard name id directory call/> }
                />
            </Show>
        </section>
    }
}

#[component]
fn ServiceCard(name: String, id: String, directory: Directory, call: Call) -> impl IntoView {
    let instance = {
        let (name, id) = (name.clone(), id.clone());
        Memo::new(move |_| {
            directory
                .services
                .with(|list| list.iter().find(|s| s.name == name && s.id == id).cloned())
        })
    };
    let field = move |f: fn(&ServiceInstance) -> String| {
        move || instance.with(|i| i.as_ref().map(f).unwrap_or_default())
    };
    let endpoint_keys = Memo::new(move |_| {
        instance.with(|i| {
            i.iter()
                .flat_map(|i| &i.endpoints)
                .map(|e| (e.name.clone(), e.subject.clone()))
                .collect::<Vec<_>>()
        })
    });
    let errors = move || instance.with(|i| i.as_ref().is_some_and(|i| i.totals().1 > 0));
    let heading = format!("service-{id}");
    let service_name = name.clone();
    view! {
        <article
            class="service"
            class:has-errors=errors
            data-testid="service-row"
            data-name=name.clone()
            data-id=id.clone()
            aria-labelledby=heading.clone()
        >
            <div class="service-head">
                <h3 id=heading.clone()>{name.clone()}</h3>
                <span class="tag">{field(|i| i.version.clone())}</span>
                <code class="small" title="instance id">{id.clone()}</code>
            </div>
            <p class="muted small service-facts">
                {field(|i| {
                    let mut facts = Vec::new();
                    if !i.description.is_empty() {
                        facts.push(i.description.clone());
                    }
                    if let Some(started) = &i.started {
                        facts.push(format!("started {started}"));
                    }
                    if !i.metadata.is_empty() {
                        facts.push(i.metadata.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" "));
                    }
                    facts.join(" · ")
                })}
            </p>
            <div class="table-wrap">
                <table class="proc-table">
                    <thead>
                        <tr>
                            <th>"Endpoint"</th>
                            <th>"Subject"</th>
                            <th>"Queue group"</th>
                            <th class="num">"Requests"</th>
                            <th class="num">"Errors"</th>
                            <th class="num">"Average time"</th>
                            <th>"Last error"</th>
                            <th class="right">"Call"</th>
                        </tr>
                    </thead>
                    <tbody>
                        <For
                            each=move || endpoint_keys.get()
                            key=|k| k.clone()
                            children=move |(endpoint, subject)| {
                                let service = service_name.clone();
                                let ep = {
                                    let (endpoint, subject) = (endpoint.clone(), subject.clone());
                                    Memo::new(move |_| instance.with(|i| {
                                        i.as_ref().and_then(|i| {
                                            i.endpoints.iter().find(|e| e.name == endpoint && e.subject == subject).cloned()
                                        })
                                    }))
                                };
                                let stat = move |f: fn(&EndpointView) -> String| {
                                    move || ep.with(|e| e.as_ref().map(f).unwrap_or_default())
                                };
                                let open_call = {
                                    let (service, endpoint, subject) = (service.clone(), endpoint.clone(), subject.clone());
                                    move |_| {
                                        let example = ep.with_untracked(|e| {
                                            e.as_ref()?.metadata.get(process_control::EXAMPLE_METADATA).cloned()
                                        });
                                        call.open(
                                            CallTarget {
                                                service: service.clone(),
                                                endpoint: endpoint.clone(),
                                                subject: subject.clone(),
                                            },
                                            example,
                                        )
                                    }
                                };
                                view! {
                                    <tr data-testid="service-endpoint" data-endpoint=endpoint.clone()>
                                        <td class="proc-name"><span class="name">{endpoint.clone()}</span></td>
                                        <td><code>{subject.clone()}</code></td>
                                        <td data-testid="endpoint-queue">
                                            {stat(|e| if e.queue_group.is_empty() { "none".into() } else { e.queue_group.clone() })}
                                        </td>
                                        <td class="num" data-testid="endpoint-requests">
                                            {stat(|e| e.stats.as_ref().map_or("—".into(), |s| s.num_requests.to_string()))}
                                        </td>
                                        <td class="num" data-testid="endpoint-errors">
                                            {stat(|e| e.stats.as_ref().map_or("—".into(), |s| s.num_errors.to_string()))}
                                        </td>
                                        <td class="num">
                                            {stat(|e| e.stats.as_ref().map_or("—".into(), |s| format_nanos(s.average_processing_time)))}
                                        </td>
                                        <td class="last-error" data-testid="endpoint-last-error">
                                            {stat(|e| e.stats.as_ref().map(|s| s.last_error.clone()).unwrap_or_default())}
                                        </td>
                                        <td class="right">
                                            <button
                                                class="secondary"
                                                data-testid="service-call"
                                                aria-label=format!("Call endpoint {endpoint} of {service}")
                                                on:click=open_call
                                            >
                                                "Call"
                                            </button>
                                        </td>
                                    </tr>
                                }
                            }
                        />
                    </tbody>
                </table>
            </div>
        </article>
    }
}

/// What a call from the form came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CallOutcome {
    /// An ordinary reply: its payload (as text, or hex when binary) and headers.
    Reply {
        preview: Preview,
        headers: Vec<(String, String)>,
    },
    /// The service answered with `Nats-Service-Error` (and `-Code`).
    ServiceError {
        code: String,
        description: String,
        preview: Preview,
    },
    /// Nobody serves the subject.
    NoResponders,
    /// No reply in time.
    TimedOut(Duration),
    /// Refused before it was sent (too large, not connected): why.
    NotSent(String),
    /// Sent, then lost on the way or refused by the server: why.
    Failed(String),
}

/// A payload as it is shown: text, or hex when it is not UTF-8; cut after [`PREVIEW_BYTES`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Preview {
    text: String,
    binary: bool,
    size: usize,
    cut: bool,
}

fn preview(payload: &[u8]) -> Preview {
    let shown = &payload[..payload.len().min(PREVIEW_BYTES)];
    let cut = shown.len() < payload.len();
    let text = match std::str::from_utf8(shown) {
        Ok(text) => Some(text.to_owned()),
        // Cut in the middle of a character: still text.
        Err(e) if cut && e.error_len().is_none() => {
            Some(String::from_utf8_lossy(&shown[..e.valid_up_to()]).into_owned())
        }
        Err(_) => None,
    };
    match text {
        Some(text) => Preview {
            text,
            binary: false,
            size: payload.len(),
            cut,
        },
        None => Preview {
            text: shown
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" "),
            binary: true,
            size: payload.len(),
            cut,
        },
    }
}

/// Reads the result of a request the way a micro client does: `Nats-Service-Error` on the reply
/// makes it an error, whatever the payload.
fn call_outcome(result: Result<Message, RequestError>) -> CallOutcome {
    match result {
        Ok(reply) => {
            let headers = reply.headers.as_ref();
            match headers.and_then(|h| h.get(ERROR_HEADER)) {
                Some(description) => CallOutcome::ServiceError {
                    code: headers
                        .and_then(|h| h.get(ERROR_CODE_HEADER))
                        .unwrap_or("")
                        .trim()
                        .to_owned(),
                    description: description.to_owned(),
                    preview: preview(&reply.payload),
                },
                None => CallOutcome::Reply {
                    preview: preview(&reply.payload),
                    headers: headers
                        .map(|h| {
                            h.iter()
                                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                                .collect()
                        })
                        .unwrap_or_default(),
                },
            }
        }
        Err(RequestError::NoResponders { .. }) => CallOutcome::NoResponders,
        Err(RequestError::TimedOut { after, .. }) => CallOutcome::TimedOut(after),
        Err(e @ (RequestError::Publish(_) | RequestError::NotConnected { .. })) => {
            CallOutcome::NotSent(crate::session::explain(e))
        }
        Err(e) => CallOutcome::Failed(crate::session::explain(e)),
    }
}

impl CallOutcome {
    /// The one-line verdict shown above the payload.
    fn verdict(&self) -> String {
        match self {
            CallOutcome::Reply { preview, .. } => format!("reply · {} bytes", preview.size),
            CallOutcome::ServiceError {
                code, description, ..
            } if code.is_empty() => format!("service error: {description}"),
            CallOutcome::ServiceError {
                code, description, ..
            } => format!("service error {code}: {description}"),
            CallOutcome::NoResponders => {
                "no responders: nobody serves this subject (the service stopped?)".into()
            }
            CallOutcome::TimedOut(after) => {
                format!("timed out: no reply within {}", format_nanos(*after))
            }
            CallOutcome::NotSent(why) => format!("not sent: {why}"),
            CallOutcome::Failed(why) => format!("failed: {why}"),
        }
    }

    fn is_error(&self) -> bool {
        !matches!(self, CallOutcome::Reply { .. })
    }

    fn preview(&self) -> Option<&Preview> {
        match self {
            CallOutcome::Reply { preview, .. } | CallOutcome::ServiceError { preview, .. } => {
                Some(preview)
            }
            _ => None,
        }
    }
}

/// `0 ns`, `850 ns`, `12.3 µs`, `4.56 ms`, `1.20 s`.
fn format_nanos(d: Duration) -> String {
    let ns = d.as_nanos();
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

#[component]
fn CallForm(target: CallTarget, call: Call, client: Client) -> impl IntoView {
    let Call {
        subject, payload, ..
    } = call;
    let calling = RwSignal::new(false);
    let outcome = RwSignal::new(None::<(CallOutcome, Duration)>);
    let invalid = RwSignal::new(None::<String>);
    // Opened from a row's Call button: the payload is what to type next.
    let payload_field = NodeRef::<html::Textarea>::new();
    Effect::new(move |_| {
        if let Some(field) = payload_field.get() {
            let _ = field.focus();
        }
    });

    let send = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let to = subject.get_untracked().trim().to_owned();
        if let Err(e) = validate_publish_subject(&to) {
            // Nothing is sent: the outcome of the call before would read as this one's.
            outcome.set(None);
            let hint = if to.is_empty() {
                "type the subject to send the request to"
            } else if validate_subscribe_subject(&to).is_ok() {
                // Fine to subscribe to: its only fault is a wildcard.
                "a request goes to one concrete subject (replace the wildcards)"
            } else {
                "a request goes to one concrete subject"
            };
            invalid.set(Some(format!("{e}: {hint}")));
            return;
        }
        invalid.set(None);
        // The reply before is not this call's: it read as the answer to a call still waiting.
        outcome.set(None);
        calling.set(true);
        let client = client.clone();
        let body = payload.get_untracked();
        spawn_local(async move {
            let started = monotonic_ms();
            let result = client
                .request_with(&to, None, body.as_bytes(), CALL_TIMEOUT)
                .await;
            let took = Duration::from_secs_f64((monotonic_ms() - started).max(0.0) / 1000.0);
            let away = matches!(result, Err(RequestError::NotConnected { .. }));
            let said = call_outcome(result);
            outcome.try_set(Some((said.clone(), took)));
            calling.try_set(false);
            // Its "retry once connected" stayed after "Live": once connected, it says so.
            if away
                && client.wait_connected().await.is_ok()
                && outcome.try_with_untracked(|o| o.as_ref().is_some_and(|(o, _)| *o == said))
                    == Some(true)
            {
                outcome.try_set(Some((
                    CallOutcome::NotSent(
                        "nothing was sent while the server was away; connected again, so it can be sent now"
                            .to_owned(),
                    ),
                    took,
                )));
            }
        });
    };

    let title = format!("Call {} · {}", target.service, target.endpoint);
    view! {
        <section class="card call-card" data-testid="service-call-form">
            <div class="card-head">
                <h2>{title}</h2>
                <button class="secondary" on:click=move |_| call.target.set(None) aria-label="Close the call form">
                    "Close"
                </button>
            </div>
            <form class="call-form" on:submit=send>
                <label>
                    "Subject"
                    <input
                        bind:value=subject
                        autocomplete="off"
                        spellcheck="false"
                        data-testid="service-call-subject"
                    />
                </label>
                <label>
                    "Payload"
                    <textarea
                        rows="3"
                        spellcheck="false"
                        data-testid="service-call-payload"
                        node_ref=payload_field
                        prop:value=move || payload.get()
                        on:input=move |ev| payload.set(event_target_value(&ev))
                    ></textarea>
                </label>
                <Show when=move || invalid.get().is_some()>
                    <p class="error" role="alert" data-testid="service-call-invalid">{move || invalid.get()}</p>
                </Show>
                <div class="row">
                    <button type="submit" data-testid="service-call-send" disabled=move || calling.get()>
                        {move || if calling.get() { "Waiting for the reply…" } else { "Send request" }}
                    </button>
                    <span class="muted small">{format!("times out after {} s", CALL_TIMEOUT.as_secs())}</span>
                </div>
            </form>
            {move || outcome.get().map(|(outcome, took)| {
                let preview = outcome.preview().cloned();
                let headers = match &outcome {
                    CallOutcome::Reply { headers, .. } => headers.clone(),
                    _ => Vec::new(),
                };
                view! {
                    <div class="call-result" class:failed=outcome.is_error() data-testid="service-call-result">
                        <p class="call-verdict" role="status">
                            <strong data-testid="service-call-verdict">{outcome.verdict()}</strong>
                            // A request refused before it left took no time worth showing.
                            {(!matches!(outcome, CallOutcome::NotSent(_))).then(|| view! {
                                <span class="muted small" data-testid="service-call-latency">
                                    {format!(" · {}", format_nanos(took))}
                                </span>
                            })}
                        </p>
                        {(!headers.is_empty()).then(|| view! {
                            <ul class="call-headers">
                                {headers.into_iter().map(|(k, v)| view! { <li><code>{k}</code>": "{v}</li> }).collect_view()}
                            </ul>
                        })}
                        {preview.map(|p| view! {
                            <pre class="call-payload" data-testid="service-call-payload-out">{p.text}</pre>
                            {(p.binary || p.cut).then(|| view! {
                                <p class="muted small">
                                    {match (p.binary, p.cut) {
                                        (true, true) => format!("binary, as hex; first {PREVIEW_BYTES} of {} bytes", p.size),
                                        (true, false) => "binary, as hex".to_owned(),
                                        _ => format!("first {PREVIEW_BYTES} of {} bytes", p.size),
                                    }}
                                </p>
                            })}
                        })}
                    </div>
                }
            })}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nats_ws::HeaderMap;

    fn reply(headers: Option<HeaderMap>, payload: &[u8]) -> Result<Message, RequestError> {
        Ok(Message {
            subject: "_INBOX.x".into(),
            reply: None,
            headers,
            payload: bytes::Bytes::copy_from_slice(payload),
        })
    }

    #[test]
    fn a_reply_is_text_with_its_headers() {
        let mut h = HeaderMap::new();
        h.insert("X-Trace", "1");
        let CallOutcome::Reply { preview, headers } = call_outcome(reply(Some(h), b"<b>42</b>"))
        else {
            panic!("not a reply");
        };
        assert_eq!(preview.text, "<b>42</b>");
        assert!(!preview.binary && !preview.cut);
        assert_eq!(headers, [("X-Trace".to_owned(), "1".to_owned())]);
    }

    #[test]
    fn service_error_headers_make_an_error() {
        let mut h = HeaderMap::new();
        h.insert(ERROR_HEADER, "bad input");
        h.insert(ERROR_CODE_HEADER, " 400");
        let outcome = call_outcome(reply(Some(h), b""));
        assert_eq!(outcome.verdict(), "service error 400: bad input");
        assert!(outcome.is_error());
        let mut h = HeaderMap::new();
        h.insert(ERROR_HEADER, "no code");
        assert_eq!(
            call_outcome(reply(Some(h), b"")).verdict(),
            "service error: no code"
        );
    }

    #[test]
    fn request_failures_are_named() {
        let none = call_outcome(Err(RequestError::NoResponders {
            subject: "a".into(),
        }));
        assert_eq!(none, CallOutcome::NoResponders);
        assert!(none.verdict().starts_with("no responders"));
        let late = call_outcome(Err(RequestError::TimedOut {
            subject: "a".into(),
            after: Duration::from_secs(5),
        }));
        assert_eq!(late.verdict(), "timed out: no reply within 5.00 s");
        assert!(matches!(
            call_outcome(Err(RequestError::Closed)),
            CallOutcome::Failed(_)
        ));
        let offline = call_outcome(Err(RequestError::NotConnected {
            subject: "a".into(),
        }));
        assert!(offline.verdict().starts_with("not sent: "), "{offline:?}");
    }

    #[test]
    fn binary_and_long_payloads_are_cut_and_shown_as_hex() {
        let p = preview(&[0xff, 0x00, 0x41]);
        assert_eq!(p.text, "ff 00 41");
        assert!(p.binary && !p.cut);
        let long = "é".repeat(PREVIEW_BYTES);
        let p = preview(long.as_bytes());
        assert!(!p.binary && p.cut);
        assert_eq!(p.size, 2 * PREVIEW_BYTES);
        assert_eq!(p.text.chars().count(), PREVIEW_BYTES / 2);
        let p = preview(&vec![0xfe; PREVIEW_BYTES + 1]);
        assert!(p.binary && p.cut);
        assert_eq!(p.text.len(), PREVIEW_BYTES * 3 - 1);
    }

    #[test]
    fn durations_read_at_their_scale() {
        assert_eq!(format_nanos(Duration::ZERO), "0 ns");
        assert_eq!(format_nanos(Duration::from_nanos(850)), "850 ns");
        assert_eq!(format_nanos(Duration::from_nanos(12_340)), "12.3 µs");
        assert_eq!(format_nanos(Duration::from_micros(4_560)), "4.56 ms");
        assert_eq!(format_nanos(Duration::from_millis(1_200)), "1.20 s");
    }
}
