//! `/processes`: the processes via-agent runs, from KV bucket `processes` (live in every tab),
//! with Start / Stop / Restart (requests to the agent) and a live log tail per process (the last
//! lines from the agent's `logs` endpoint, then `proc.logs.<name>`).
//!
//! The page never pretends: without the agent, the last known states stay greyed out under a
//! notice that says how to start it, and the buttons are off.

use std::time::Duration;

use futures::StreamExt;
use leptos::html;
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_nats::{spawn_while_mounted, use_nats};
use nats_ws::Client;
use process_control::{
    log_subject, subjects, LogLine, LogsReply, LogsRequest, NameRequest, ProcessReply,
    ProcessState, RegistryEntry, Stream, PROCESSES_BUCKET, REGISTRY_BUCKET,
};

use crate::components::agent::{
    agent_request, report_row_failure, watch_agent, AgentMissing, AgentPresenceLine, AgentWatch,
    RowError, ACTION_TIMEOUT,
};
use crate::components::clock::{time_of_day, use_now};
use crate::components::live_bucket::{server_time_of, watch_existing_bucket, LiveBucket};
use crate::components::toasts::Toasts;
use crate::model::{
    already_shown, format_bytes, format_duration, parse_json, push_bounded, sort_processes,
    LOG_TAIL,
};

/// Lines asked from the agent's ring when a log opens.
const INITIAL_LINES: usize = 200;

#[component]
pub fn ProcessesPage() -> impl IntoView {
    let nats = use_nats();
    view! {
        <section class="page-head">
            <h1>"Processes"</h1>
            <p class="lede">
                "What " <code>"via-agent"</code> " runs, from the KV bucket " <code>"processes"</code>
                ": every tab sees the same state live. Start, stop and restart are requests to the agent's "
                <code>"process-control"</code> " service; logs stream on " <code>"proc.logs.<name>"</code> "."
            </p>
        </section>
        {move || match nats.client.get() {
            Some(client) => view! { <Processes client/> }.into_any(),
            None => view! { <p class="muted">"Not connected."</p> }.into_any(),
        }}
    }
}

/// The agent ids with a fresh registry entry; `None` until the registry is loaded.
fn live_agents(registry: LiveBucket, now: f64) -> Option<Vec<String>> {
    if !registry.loaded.get() {
        return None;
    }
    Some(registry.entries.with(|map| {
        map.values()
            .filter_map(|e| parse_json::<RegistryEntry>(&e.value))
            .filter(|r| r.is_agent() && r.is_alive(now as u64) && !r.agent.is_empty())
            .map(|r| r.agent)
            .collect()
    }))
}

#[component]
fn Processes(client: Client) -> impl IntoView {
    let agent = watch_agent(client.clone());
    let processes = watch_existing_bucket(client.clone(), PROCESSES_BUCKET);
    let registry = watch_existing_bucket(client.clone(), REGISTRY_BUCKET);
    // The agent's times (heartbeats, starts) are compared with the server's clock: the
    // registry's heartbeats tell how far this browser's is off.
    let now = server_time_of([registry, processes], use_now(Duration::from_secs(1)));

    // Rows by name, in display order; each row follows its own entry.
    let names = Memo::new(move |_| {
        let mut list: Vec<ProcessState> = processes.entries.with(|map| {
            map.iter()
                .filter_map(|(key, e)| {
                    parse_json::<ProcessState>(&e.value).map(|p| ProcessState {
                        name: key.clone(),
                        ..p
                    })
                })
                .collect()
        });
        sort_processes(&mut list);
        list.into_iter().map(|p| p.name).collect::<Vec<_>>()
    });
    let empty = Memo::new(move |_| names.with(Vec::is_empty));
    let agents = Memo::new(move |_| live_agents(registry, now.get()));

    // The agent writes its states when it starts: a change while it seemed missing is worth a look.
    Effect::new(move |_| {
        processes.entries.track();
        if agent.presence.get_untracked() != crate::components::agent::Presence::Running {
            agent.check_now();
        }
    });

    let selected = RwSignal::new(None::<String>);
    let rows = {
        let client = client.clone();
        move || {
            let client = client.clone();
            view! {
                <For
                    each=move || names.get()
                    key=|name| name.clone()
                    children=move |name| {
                        view! {
                            <ProcRow name client=client.clone() processes agent agents now selected/>
                        }
                    }
                />
            }
        }
    };
    // The first process's log is open until another is picked; a removed process's log closes.
    Effect::new(move |_| {
        let list = names.get();
        let keep = selected.with_untracked(|s| s.as_ref().is_some_and(|n| list.contains(n)));
        if !keep {
            selected.set(list.first().cloned());
        }
    });

    view! {
        <AgentPresenceLine agent/>
        <Show when=move || agent.is_missing()>
            <AgentMissing agent/>
        </Show>
        <section class="card">
            <div class="card-head">
                <h2>"Processes"</h2>
                <span class="muted">
                    {move || match names.get().len() {
                        1 => "1 process".to_owned(),
                        n => format!("{n} processes"),
                    }}
                </span>
            </div>
            <Show when=move || processes.error.get().is_some()>
                <p class="error">{move || processes.error.get()}</p>
            </Show>
            <Show
                when=move || processes.loaded.get() && !empty.get()
                fallback=move || {
                    let text = move || {
                        if !processes.loaded.get() && processes.error.with(Option::is_some) {
                            "Not loaded: see the error above."
                        } else if !processes.loaded.get() {
                            "Loading processes…"
                        } else if processes.missing.get() {
                            "No process state yet: via-agent creates the bucket when it first starts."
                        } else {
                            "via-agent runs no process."
                        }
                    };
                    view! { <p class="empty">{text}</p> }
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
                                    <th class="num">"Restarts"</th>
                                    <th class="num">"Exit"</th>
                                    <th class="num">"CPU"</th>
                                    <th class="num">"Memory"</th>
                                    <th class="right">"Actions"</th>
                                </tr>
                            </thead>
                            <tbody>
                                {rows.clone()}
                            </tbody>
                        </table>
                    </div>
            </Show>
        </section>
        {move || {
            selected
                .get()
                .map(|name| {
                    let client = client.clone();
                    view! { <LogTail name client/> }
                })
        }}
    }
}

#[component]
fn ProcRow(
    name: String,
    client: Client,
    processes: LiveBucket,
    agent: AgentWatch,
    agents: Memo<Option<Vec<String>>>,
    now: Signal<f64>,
    selected: RwSignal<Option<String>>,
) -> impl IntoView {
    let toasts = expect_context::<Toasts>();
    let state = {
        let name = name.clone();
        Memo::new(move |_| {
            processes.entries.with(|map| {
                map.get(&name)
                    .and_then(|e| parse_json::<ProcessState>(&e.value))
                    .unwrap_or_default()
            })
        })
    };
    let stale =
        Memo::new(move |_| state.with(|p| p.is_stale(agent.is_missing(), agents.get().as_deref())));
    let busy = RwSignal::new(None::<&'static str>);
    let error = RwSignal::new(None::<String>);
    // What a refused or failed action said is about the process as it was: once it starts,
    // stops or restarts (another tab, the agent), it goes. Not on its figures (CPU, memory),
    // which the agent writes every few seconds.
    let run = Memo::new(move |_| state.with(|p| (p.state, p.pid, p.restarts)));
    crate::components::agent::clear_on_change(error, run);

    let act = {
        let name = name.clone();
        move |verb: &'static str, subject: &'static str| {
            let (name, client) = (name.clone(), client.clone());
            busy.set(Some(verb));
            error.set(None);
            spawn_local(async move {
                let reply = agent_request::<ProcessReply>(
                    &client,
                    subject,
                    &NameRequest { name: name.clone() },
                    ACTION_TIMEOUT,
                )
                .await;
                busy.set(None);
                if let Err(e) = reply {
                    report_row_failure(agent, error, toasts, &e, format!("{verb} {name}: {e}"));
                }
            });
        }
    };
    // Off while a request is in flight, without the agent, for a process the config does not let
    // the page control, and where the action makes no sense.
    let off = move |allowed: fn(&ProcessState) -> bool| {
        busy.get().is_some() || stale.get() || state.with(|p| !p.controllable || !allowed(p))
    };
    let label = move |verb: &'static str, text: &'static str, doing: &'static str| {
        if busy.get() == Some(verb) {
            doing
        } else {
            text
        }
    };

    let n = name.clone();
    let is_selected = move || selected.with(|s| s.as_deref() == Some(n.as_str()));
    let pick = {
        let name = name.clone();
        move |_| selected.set(Some(name.clone()))
    };
    let (start, stop, restart) = (act.clone(), act.clone(), act);
    view! {
        <tr
            class="proc-row"
            class:stale=move || stale.get()
            class:selected=is_selected
            data-testid="proc-row"
        >
            <td class="proc-name">
                <button class="link-button name" title="Show its log" on:click=pick>
                    {name.clone()}
                </button>
                <Show when=move || state.with(ProcessState::is_leaf)>
                    <span class="tag">"leaf"</span>
                </Show>
                <Show when=move || state.with(|p| !p.controllable)>
                    <span
                        class="tag tag-muted"
                        title="via-agent.toml sets control = false: requests may not start, stop or restart it"
                    >
                        "fixed"
                    </span>
                </Show>
                <span class="muted small command">
                    {move || state.with(|p| {
                        std::iter::once(p.command.as_str())
                            .chain(p.args.iter().map(String::as_str))
                            .collect::<Vec<_>>()
                            .join(" ")
                    })}
                </span>
            </td>
            <td data-label="State">
                <span
                    class=move || format!("state state-{}", state.with(|p| p.state))
                    data-testid=format!("proc-state-{name}")
                >
                    {move || state.with(|p| p.state.as_str())}
                </span>
                <Show when=move || stale.get()>
                    <span class="stale-note">"agent not running · last known"</span>
                </Show>
            </td>
            <td class="num" data-label="PID" data-testid=format!("proc-pid-{name}")>
                {move || state.with(|p| p.pid.map(|pid| pid.to_string()).unwrap_or_else(|| "—".into()))}
            </td>
            <td class="num" data-label="Uptime">
                {move || {
                    if stale.get() {
                        return "—".to_owned();
                    }
                    state.with(|p| {
                        p.uptime_ms(now.get() as u64)
                            .map(|ms| format_duration(ms as f64))
                            .unwrap_or_else(|| "—".into())
                    })
                }}
            </td>
            <td class="num" data-label="Restarts" data-testid=format!("proc-restarts-{name}")>
                {move || state.with(|p| p.restarts.to_string())}
            </td>
            <td class="num" data-label="Exit">{move || state.with(ProcessState::exit_text)}</td>
            <td class="num" data-label="CPU">
                {move || state.with(|p| if p.pid.is_some() { format!("{:.1} %", p.cpu_percent) } else { "—".into() })}
            </td>
            <td class="num" data-label="Memory">
                {move || state.with(|p| if p.pid.is_some() { format_bytes(p.rss_bytes) } else { "—".into() })}
            </td>
            <td class="right actions">
                <div class="row-actions proc-actions">
                    <button
                        class="secondary"
                        data-testid=format!("proc-start-{name}")
                        aria-label=format!("Start {name}")
                        disabled=move || off(ProcessState::can_start)
                        on:click=move |_| start("start", subjects::START)
                    >
                        {move || label("start", "Start", "Starting…")}
                    </button>
                    <button
                        class="danger"
                        data-testid=format!("proc-stop-{name}")
                        aria-label=format!("Stop {name}")
                        disabled=move || off(ProcessState::can_stop)
                        on:click=move |_| stop("stop", subjects::STOP)
                    >
                        {move || label("stop", "Stop", "Stopping…")}
                    </button>
                    <button
                        data-testid=format!("proc-restart-{name}")
                        aria-label=format!("Restart {name}")
                        disabled=move || off(ProcessState::can_restart)
                        on:click=move |_| restart("restart", subjects::RESTART)
                    >
                        {move || label("restart", "Restart", "Restarting…")}
                    </button>
                </div>
            </td>
        </tr>
        <RowError columns=9 error/>
    }
}

/// The last lines of one process's output, live. Lines are text nodes, never markup.
#[component]
fn LogTail(name: String, client: Client) -> impl IntoView {
    let lines = RwSignal::new(Vec::<(u64, LogLine)>::new());
    let loaded = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let follow = RwSignal::new(true);
    let pane = NodeRef::<html::Div>::new();

    {
        let name = name.clone();
        spawn_while_mounted(async move {
            // Subscribed before asking for the ring, so nothing falls between the two; what both
            // carry is shown once.
            let mut live = match client.subscribe(&log_subject(&name)) {
                Ok(sub) => Some(sub),
                Err(e) => {
                    error.set(Some(format!("no live log: {e}")));
                    None
                }
            };
            let initial = match agent_request::<LogsReply>(
                &client,
                subjects::LOGS,
                &LogsRequest {
                    name: name.clone(),
                    lines: Some(INITIAL_LINES),
                },
                ACTION_TIMEOUT,
            )
            .await
            {
                Ok(reply) => reply.lines,
                Err(e) => {
                    error.set(Some(format!("earlier lines unavailable: {e}")));
                    Vec::new()
                }
            };
            let mut seq = 0u64;
            let mut number = |line: LogLine| {
                seq += 1;
                (seq, line)
            };
            let first: Vec<(u64, LogLine)> = initial.iter().cloned().map(&mut number).collect();
            lines.update(|l| push_bounded(l, first, LOG_TAIL));
            loaded.set(true);
            let Some(live) = live.as_mut() else { return };
            while let Some(message) = live.next().await {
                let message = match message {
                    Ok(message) => message,
                    // The server refused the subscription (it has ended): say so.
                    Err(e) => {
                        error.set(Some(format!(
                            "no live log: {}",
                            crate::session::explain(&e)
                        )));
                        continue;
                    }
                };
                // A live line shows the agent answers again: an earlier "unavailable" is old news.
                if error.with_untracked(Option::is_some) {
                    error.set(None);
                }
                let Ok(line) = serde_json::from_slice::<LogLine>(&message.payload) else {
                    continue;
                };
                if already_shown(&initial, &line) {
                    continue;
                }
                let line = number(line);
                lines.update(|l| push_bounded(l, [line], LOG_TAIL));
            }
        });
    }

    // Stays at the bottom while following; scrolling up stops following.
    Effect::new(move |_| {
        lines.track();
        if let (Some(pane), true) = (pane.get(), follow.get_untracked()) {
            pane.set_scroll_top(pane.scroll_height());
        }
    });
    let on_scroll = move |_| {
        if let Some(pane) = pane.get_untracked() {
            let bottom = pane.scroll_top() + pane.client_height() >= pane.scroll_height() - 8;
            follow.set(bottom);
        }
    };

    view! {
        <section class="card log-card">
            <div class="card-head">
                <h2>"Log of " <code>{name.clone()}</code></h2>
                <span class="muted small">
                    {move || format!("last {} lines · live on proc.logs.{}", lines.with(Vec::len), name)}
                </span>
            </div>
            <Show when=move || error.get().is_some()>
                <p class="error">{move || error.get()}</p>
            </Show>
            <div class="log" data-testid="proc-log" node_ref=pane on:scroll=on_scroll aria-live="off">
                <Show when=move || loaded.get() && lines.with(Vec::is_empty)>
                    <p class="log-empty">"No output yet."</p>
                </Show>
                <For
                    each=move || lines.get()
                    key=|(seq, _)| *seq
                    children=|(_, line)| {
                        view! {
                            <div class="log-line" class:stderr=line.stream == Stream::Stderr>
                                <time>{time_of_day(line.ts as f64, false)}</time>
                                <span class="log-text">{line.line}</span>
                            </div>
                        }
                    }
                />
            </div>
        </section>
    }
}
