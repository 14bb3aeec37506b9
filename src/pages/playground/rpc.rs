//! Request/reply: the NATS service `math` with endpoint `math.sum` (`{"x", "y"}` → `{"sum"}`),
//! hosted natively (`via-math`, which the agent runs) or in this tab (the toggle). Run sends 100
//! random pairs and shows each result and the round-trip times (p50 / p99); with no service
//! running, "no responders" comes at once, not after a timeout; bad JSON gets an error reply.

use std::time::Duration;

use futures::{FutureExt, StreamExt};
use leptos::prelude::*;
use nats_ws::service::{self, EndpointConfig, ServiceConfig, ERROR_CODE_HEADER, ERROR_HEADER};
use nats_ws::{Client, Message, RequestError};
use via_playground::math::{self, SumReply, SumRequest};

use super::steps::{CardTasks, StepList, StepLog};
use crate::components::clock::monotonic_ms;
use crate::model::push_bounded;

const CALLS: usize = 100;
/// Results shown (the newest).
const SHOWN: usize = 8;
const TIMEOUT: Duration = Duration::from_secs(2);

/// The `p`-th percentile (0–100) of `sorted` (ascending), nearest rank.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// A reply in words: the sum, or the service's error (`Nats-Service-Error[-Code]`).
pub fn describe_reply(message: &Message) -> Result<f64, String> {
    if let Some(headers) = &message.headers {
        if let Some(error) = headers.get(ERROR_HEADER) {
            let code = headers.get(ERROR_CODE_HEADER).unwrap_or("?");
            return Err(format!("error reply {code}: {error}"));
        }
    }
    serde_json::from_slice::<SumReply>(&message.payload)
        .map(|r| r.sum)
        .map_err(|e| format!("a reply that is not {{\"sum\": n}}: {e}"))
}

/// A random small integer pair (integers, so that the sums read exactly).
fn random_pair() -> SumRequest {
    let r = || (js_sys::Math::random() * 1000.0).floor() - 100.0;
    SumRequest { x: r(), y: r() }
}

#[component]
pub fn RpcCard(client: Client) -> impl IntoView {
    let log = StepLog::new();
    let tasks = CardTasks::new();
    let running = RwSignal::new(false);
    let hosted = RwSignal::new(false);
    let host_error = RwSignal::new(None::<String>);
    let results = RwSignal::new(Vec::<String>::new());
    let error = RwSignal::new(None::<String>);
    let times = RwSignal::new(None::<(f64, f64, usize)>);
    // Which hosting run is the current one.
    let generation = StoredValue::new(0u64);
    // Dropping it stops the tab's service.
    let stop_service = StoredValue::new(None::<futures::channel::oneshot::Sender<()>>);

    let host = {
        let client = client.clone();
        move |on: bool| {
            host_error.set(None);
            if !on {
                stop_service.update_value(|s| drop(s.take()));
                return;
            }
            // Not hosted after all: the box, ticked by the click, shows it again (a `set`
            // notifies even when the value is the same).
            let failed = move |why: String| {
                host_error.set(Some(why));
                hosted.set(false);
            };
            let config = ServiceConfig::new(math::SERVICE, math::VERSION)
                .description(math::DESCRIPTION)
                .metadata("host", "browser tab");
            let service = match service::add(&client, config) {
                Ok(s) => s,
                Err(e) => return failed(format!("could not start the service: {e}")),
            };
            let sum =
                EndpointConfig::new(math::ENDPOINT).metadata(math::METADATA.0, math::METADATA.1);
            let mut endpoint = match service.group(math::GROUP).endpoint_with(sum) {
                Ok(e) => e,
                Err(e) => return failed(format!("could not add {}: {e}", math::SUBJECT)),
            };
            let (tx, rx) = futures::channel::oneshot::channel::<()>();
            // Replaces (and so stops) a service still stopping; only the newest one's end
            // unticks the box.
            stop_service.set_value(Some(tx));
            let run = generation.get_value() + 1;
            generation.set_value(run);
            hosted.set(true);
            // The calls before were made without this service ("no responders: … host it in
            // this tab"): their error is the old setup's.
            error.set(None);
            tasks.spawn(async move {
                let mut stopped = rx.fuse();
                loop {
                    futures::select! {
                        _ = stopped => break,
                        request = endpoint.next().fuse() => {
                            let Some(request) = request else { break };
                            let _ = match math::answer(request.payload()) {
                                Ok(reply) => request.respond(reply),
                                Err(e) => request.respond_error(e.code(), &e.to_string(), b""),
                            };
                        }
                    }
                }
                // Stopping drains: requests already on their way are still answered.
                service.stop().await;
                drop(endpoint);
                if generation.try_get_value() == Some(run) {
                    hosted.try_set(false);
                }
            });
        }
    };

    let run = {
        let client = client.clone();
        move |_| {
            if running.get_untracked() {
                return;
            }
            running.set(true);
            log.start();
            results.set(Vec::new());
            error.set(None);
            times.set(None);
            let client = client.clone();
            tasks.spawn(async move {
                calls(&client, log, results, error, times).await;
                running.try_set(false);
            });
        }
    };

    let bad = {
        let client = client.clone();
        move |_| {
            let client = client.clone();
            error.set(None);
            tasks.spawn(async move {
                let text = match client
                    .request_with(math::SUBJECT, None, b"{not json", TIMEOUT)
                    .await
                {
                    Ok(reply) => match describe_reply(&reply) {
                        Err(e) => e,
                        Ok(sum) => format!("the service answered bad JSON with a sum ({sum})"),
                    },
                    Err(e) => request_error(&e),
                };
                error.try_set(Some(text));
            });
        }
    };

    view! {
        <section class="card pg-card" aria-labelledby="pg-rpc-title">
            <div class="card-head">
                <h2 id="pg-rpc-title">"3 · Request / reply"</h2>
                <button data-testid="pg-rpc-run" on:click=run disabled=move || running.get()>
                    {move || if running.get() { "Calling…" } else { "Call 100×" }}
                </button>
            </div>
            <p class="muted small">
                "The service " <code>"math"</code> " answers " <code>{math::SUBJECT}</code>
                " with the sum of " <code>"{\"x\", \"y\"}"</code> ". The agent runs it natively ("
                <code>"via-math"</code> "), or host it here."
            </p>
            <div class="pg-controls">
                <label class="check">
                    <input
                        type="checkbox"
                        data-testid="pg-rpc-host"
                        prop:checked=move || hosted.get()
                        on:change=move |ev| host(event_target_checked(&ev))
                    />
                    <span>"Host math.sum in this tab"</span>
                </label>
                <button class="secondary small" data-testid="pg-rpc-bad" on:click=bad>"Send bad JSON"</button>
            </div>
            <Show when=move || host_error.get().is_some()>
                <p class="error" role="alert">{move || host_error.get()}</p>
            </Show>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert" data-testid="pg-rpc-error">{move || error.get()}</p>
            </Show>
            <Show when=move || times.get().is_some()>
                <p class="pg-figures" data-testid="pg-rpc-times">
                    {move || times.get().map(|(p50, p99, n)| format!("{n} calls · p50 {p50:.1} ms · p99 {p99:.1} ms"))}
                </p>
            </Show>
            <ul class="pg-results">
                {move || {
                    results
                        .get()
                        .into_iter()
                        .map(|r| view! { <li data-testid="pg-rpc-result">{r}</li> })
                        .collect_view()
                }}
            </ul>
            <StepList log testid="pg-rpc-step"/>
        </section>
    }
}

/// A failed request in words, "no responders" first-class.
fn request_error(e: &RequestError) -> String {
    match e {
        RequestError::NoResponders { .. } => format!(
            "no responders: nobody serves {} — start via-math (the agent's process \"math\") or host it in this tab",
            math::SUBJECT
        ),
        other => other.to_string(),
    }
}

async fn calls(
    client: &Client,
    log: StepLog,
    results: RwSignal<Vec<String>>,
    error: RwSignal<Option<String>>,
    times: RwSignal<Option<(f64, f64, usize)>>,
) {
    log.info(
        "tab → math.sum",
        format!("{CALLS} requests, one after another"),
    );
    // Said at once: a request waits this long for the connection before it is "not sent".
    if !client.status().is_connected() {
        log.info(
            "tab",
            format!(
                "not connected: waiting up to {} s for the connection",
                TIMEOUT.as_secs()
            ),
        );
    }
    let mut rtts = Vec::with_capacity(CALLS);
    let mut wrong = 0;
    for i in 0..CALLS {
        let pair = random_pair();
        let Ok(body) = serde_json::to_vec(&pair) else {
            return;
        };
        let started = monotonic_ms();
        let reply = client
            .request_with(math::SUBJECT, None, &body, TIMEOUT)
            .await;
        let rtt = monotonic_ms() - started;
        match reply {
            Ok(message) => match describe_reply(&message) {
                Ok(sum) => {
                    rtts.push(rtt);
                    let line = format!("{} + {} = {sum} · {rtt:.1} ms", pair.x, pair.y);
                    if sum != pair.x + pair.y {
                        wrong += 1;
                        log.fail("math.sum → tab", format!("wrong sum: {line}"));
                    }
                    results.try_update(|r| push_bounded(r, [line], SHOWN));
                }
                Err(e) => {
                    log.fail("math.sum → tab", e.clone());
                    error.try_set(Some(e));
                    return;
                }
            },
            Err(e) => {
                let text = request_error(&e);
                log.fail("math.sum → tab", format!("{text} (after {rtt:.1} ms)"));
                error.try_set(Some(text));
                return;
            }
        }
        if i == 0 {
            log.ok("math.sum → tab", format!("first reply after {rtt:.1} ms"));
        }
    }
    crate::sort::sort_by(&mut rtts, f64::total_cmp);
    let (Some(p50), Some(p99)) = (percentile(&rtts, 50.0), percentile(&rtts, 99.0)) else {
        return;
    };
    times.try_set(Some((p50, p99, rtts.len())));
    let figures = format!("p50 {p50:.1} ms · p99 {p99:.1} ms");
    if wrong == 0 {
        log.ok(
            "math.sum → tab",
            format!("{} replies, all sums right · {figures}", rtts.len()),
        );
    } else {
        log.fail(
            "math.sum → tab",
            format!("{} replies, {wrong} sums wrong · {figures}", rtts.len()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&[3.0], 99.0), Some(3.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
