//! The agent's worker processes (`worker-1` … in via-agent.toml, bucket `processes`): "Add
//! worker" starts the first one that is not running, Kill ends one with SIGKILL (its leases
//! expire and move). Without the agent the page says so and the buttons are off.

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use nats_ws::Client;
use process_control::{subjects, NameRequest, ProcessReply, ProcessState, PROCESSES_BUCKET};

use crate::components::agent::{
    agent_request, report_row_failure, watch_agent, AgentPresenceLine, AgentWatch, Presence,
    RowError, ACTION_TIMEOUT,
};
use crate::components::clock::use_now;
use crate::components::live_bucket::watch_existing_bucket;
use crate::components::toasts::Toasts;
use crate::model::{format_bytes, format_duration, parse_json};

/// The processes this page controls.
const PREFIX: &str = "worker-";

#[component]
pub(super) fn WorkerProcesses(client: Client) -> impl IntoView {
    let toasts = expect_context::<Toasts>();
    let agent = watch_agent(client.clone());
    let processes = watch_existing_bucket(client.clone(), PROCESSES_BUCKET);
    // Start times are the agent's: uptimes are counted on the server's clock.
    let now = processes.server_time(use_now(Duration::from_secs(1)));
    let list = Memo::new(move |_| {
        let mut list: Vec<ProcessState> = processes.entries.with(|map| {
            map.iter()
                .filter(|(key, _)| key.starts_with(PREFIX))
                .filter_map(|(key, e)| {
                    parse_json::<ProcessState>(&e.value).map(|p| ProcessState {
                        name: key.clone(),
                        ..p
                    })
                })
                .collect()
        });
        // worker-2 before worker-10.
        crate::sort::sort_by_key(&mut list, |p| {
            (
                p.name[PREFIX.len()..].parse::<u64>().unwrap_or(u64::MAX),
                p.name.clone(),
            )
        });
        list
    });
    let names =
        Memo::new(move |_| list.with(|l| l.iter().map(|p| p.name.clone()).collect::<Vec<_>>()));
    // The first worker process that could be started.
    let next = Memo::new(move |_| {
        list.with(|l| {
            l.iter()
                .find(|p| p.controllable && p.can_start())
                .map(|p| p.name.clone())
        })
    });
    let adding = RwSignal::new(false);
    let add_error = RwSignal::new(None::<String>);
    let running = move || agent.presence.get() == Presence::Running;

    let add = {
        let client = client.clone();
        move |_| {
            let Some(name) = next.get_untracked() else {
                return;
            };
            let client = client.clone();
            adding.set(true);
            add_error.set(None);
            spawn_local(async move {
                let reply = agent_request::<ProcessReply>(
                    &client,
                    subjects::START,
                    &NameRequest { name: name.clone() },
                    ACTION_TIMEOUT,
                )
                .await;
                adding.try_set(false);
                if let Err(e) = reply {
                    report_row_failure(agent, add_error, toasts, &e, format!("start {name}: {e}"));
                }
            });
        }
    };

    view! {
        <section class="card" aria-labelledby="worker-processes-title">
            <div class="card-head">
                <h2 id="worker-processes-title">"Worker processes"</h2>
                <button
                    data-testid="worker-add"
                    disabled=move || !running() || adding.get() || next.get().is_none()
                    title=move || match next.get() {
                        Some(name) => format!("Start {name} through via-agent"),
                        None => "Every worker process of via-agent.toml runs already".into(),
                    }
                    on:click=add
                >
                    {move || if adding.get() { "Adding…" } else { "Add worker" }}
                </button>
            </div>
            <AgentPresenceLine agent/>
            <Show when=move || agent.is_missing()>
                <p class="hint" data-testid="agent-missing">
                    "via-agent is not running: adding and killing worker processes needs it. Start it with "
                    <code>"./run.sh"</code> " or " <code>"cargo run -p via-agent"</code>
                    "; a worker can also be started by hand: " <code>"cargo run -p via-worker"</code> "."
                </p>
            </Show>
            <Show when=move || add_error.get().is_some()>
                <p class="error" role="alert">{move || add_error.get()}</p>
            </Show>
            <Show
                when=move || !names.with(Vec::is_empty)
                fallback=move || {
                    view! {
                        <p class="empty">
                            {move || if processes.loaded.get() {
                                "via-agent runs no worker-* process (see via-agent.toml)."
                            } else if processes.error.with(Option::is_some) {
                                "Not loaded: see the error above."
                            } else {
                                "Loading processes…"
                            }}
                        </p>
                    }
                }
            >
                <div class="table-wrap">
                    <table class="proc-table stacks">
                        <thead>
                            <tr>
                                <th>"Name"</th>
                                <th>"State"</th>
                                <th class="num">"PID"</th>
                                <th class="num">"Uptime"</th>
                                <th class="num">"Memory"</th>
                                <th class="right">"Actions"</th>
                            </tr>
                        </thead>
                        <tbody>
                            <For
                                each=move || names.get()
                                key=|n| n.clone()
                                children={
                                    let client = client.clone();
                                    move |name| view! { <ProcessRow name client=client.clone() list agent now/> }
                                }
                            />
                        </tbody>
                    </table>
                </div>
            </Show>
        </section>
    }
}

#[component]
fn ProcessRow(
    name: String,
    client: Client,
    list: Memo<Vec<ProcessState>>,
    agent: AgentWatch,
    now: Signal<f64>,
) -> impl IntoView {
    let toasts = expect_context::<Toasts>();
    let state = {
        let name = name.clone();
        Memo::new(move |_| {
            list.with(|l| {
                l.iter()
                    .find(|p| p.name == name)
                    .cloned()
                    .unwrap_or_default()
            })
        })
    };
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let kill = {
        let name = name.clone();
        move |_| {
            let (name, client) = (name.clone(), client.clone());
            busy.set(true);
            error.set(None);
            spawn_local(async move {
                let reply = agent_request::<ProcessReply>(
                    &client,
                    subjects::KILL,
                    &NameRequest { name: name.clone() },
                    ACTION_TIMEOUT,
                )
                .await;
                busy.try_set(false);
                if let Err(e) = reply {
                    report_row_failure(agent, error, toasts, &e, format!("kill {name}: {e}"));
                }
            });
        }
    };
    let off = move || {
        busy.get()
            || agent.presence.get() != Presence::Running
            || state.with(|p| !p.controllable || !p.can_kill())
    };
    view! {
        <tr class="proc-row" class:stale=move || agent.is_missing()>
            <td><code>{name.clone()}</code></td>
            <td data-label="State">
                <span class=move || format!("state state-{}", state.with(|p| p.state))>
                    {move || state.with(|p| p.state.as_str())}
                </span>
                // Its children end with the agent: what the bucket last said is not what runs.
                <Show when=move || agent.is_missing()>
                    <span class="stale-note">"agent not running · last known"</span>
                </Show>
            </td>
            <td class="num" data-label="PID">{move || state.with(|p| p.pid.map(|pid| pid.to_string()).unwrap_or_else(|| "—".into()))}</td>
            <td class="num" data-label="Uptime">
                {move || {
                    if agent.is_missing() {
                        return "—".to_owned();
                    }
                    state.with(|p| p.uptime_ms(now.get() as u64).map(|ms| format_duration(ms as f64)).unwrap_or_else(|| "—".into()))
                }}
            </td>
            <td class="num" data-label="Memory">
                {move || state.with(|p| if p.pid.is_some() { format_bytes(p.rss_bytes) } else { "—".into() })}
            </td>
            <td class="right actions">
                <button
                    class="danger"
                    data-testid=format!("worker-kill-{name}")
                    aria-label=format!("Kill {name}")
                    title="kill -9: no clean leave, its leases expire and move"
                    disabled=off
                    on:click=kill
                >
                    {move || if busy.get() { "Killing…" } else { "Kill" }}
                </button>
            </td>
        </tr>
        <RowError columns=6 error/>
    }
}
