//! `/scale`: leaf nodes. The leaves via-agent runs (entries of kind `leaf` in bucket
//! `processes`), Add Leaf Node / Remove (requests to the agent), whether each is in the service
//! registry, and the topology drawn live as SVG: the hub in the middle, the leaves around it.
//!
//! A leaf can be tried from here: a second client in this tab connects to the leaf's WebSocket
//! port, and a message crosses hub → leaf and leaf → hub. That client is closed when the trial
//! ends, and when the page goes away.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_nats::{spawn_while_mounted, use_nats};
use nats_ws::{Client, Options, Subscriber};
use process_control::{
    subjects, LeafAddRequest, LeafInfo, LeafReply, NameRequest, ProcessState, RegistryEntry,
    RemovedReply, PROCESSES_BUCKET, REGISTRY_BUCKET,
};

use crate::components::agent::{
    agent_request, report_row_failure, watch_agent, AgentMissing, AgentPresenceLine, AgentWatch,
    Presence, RowError, ACTION_TIMEOUT,
};
use crate::components::clock::{now_ms, time_of_day, use_now};
use crate::components::live_bucket::{server_time_of, watch_existing_bucket, LiveBucket};
use crate::components::toasts::Toasts;
use crate::model::{format_duration, leaf_positions, parse_json, sort_processes};
use crate::session::random_hex;

#[component]
pub fn ScalePage() -> impl IntoView {
    let nats = use_nats();
    view! {
        <section class="page-head">
            <h1>"Scale"</h1>
            <p class="lede">
                "Leaf nodes: more nats-server processes that join this one (the hub) over its leafnodes port. "
                "Each runs under " <code>"via-agent"</code> ", registers in " <code>"services_registry"</code>
                " and has its own WebSocket port, so a browser can connect to it directly."
            </p>
        </section>
        {move || match nats.client.get() {
            Some(client) => view! { <Scale client/> }.into_any(),
            None => view! { <p class="muted">"Not connected."</p> }.into_any(),
        }}
    }
}

/// A leaf, as the page shows it: its process state and its ports.
#[derive(Debug, Clone, PartialEq)]
struct Leaf {
    process: ProcessState,
    info: LeafInfo,
}

/// A round trip as nats-server writes it (a Go duration: `7.894705ms`, `812µs`, `1.2s`) in a
/// unit and precision a person reads: `7.9 ms`, `812 µs`, `1.20 s`; `—` for nothing or zero (the
/// server says `0s` until it has measured one); anything else as it came.
fn readable_rtt(rtt: &str) -> String {
    let number = |suffix: &str| rtt.strip_suffix(suffix).and_then(|n| n.parse::<f64>().ok());
    let zero = ["ms", "µs", "us", "ns", "s"]
        .into_iter()
        .any(|unit| number(unit) == Some(0.0));
    if rtt.is_empty() || zero {
        "—".to_owned()
    } else if let Some(ms) = number("ms") {
        format!("{ms:.1} ms")
    } else if let Some(us) = number("µs").or_else(|| number("us")) {
        format!("{us:.0} µs")
    } else if let Some(ns) = number("ns") {
        format!("{ns:.0} ns")
    } else if let Some(s) = number("s") {
        format!("{s:.2} s")
    } else {
        rtt.to_owned()
    }
}

/// An agent's error for a leaf that did not join, cut into what happened and the leaf's last
/// output (` | `-separated log lines, after "; its last output: "), one line each; `""` for none.
fn split_output(error: &str) -> (&str, String) {
    match error.split_once("; its last output: ") {
        Some((why, output)) => (why, output.replace(" | ", "\n")),
        None => (error, String::new()),
    }
}

/// The leaves in `processes`, in order.
fn leaves_of(processes: &LiveBucket) -> Vec<Leaf> {
    let mut list: Vec<ProcessState> = processes.entries.with(|map| {
        map.iter()
            .filter_map(|(key, e)| {
                let p = parse_json::<ProcessState>(&e.value)?;
                p.is_leaf().then(|| ProcessState {
                    name: key.clone(),
                    ..p
                })
            })
            .collect()
    });
    sort_processes(&mut list);
    list.into_iter()
        .map(|process| Leaf {
            info: process.leaf.clone().unwrap_or_default(),
            process,
        })
        .collect()
}

/// Registry entries with a fresh heartbeat, by key.
fn fresh_registrations(registry: &LiveBucket, now: f64) -> BTreeMap<String, RegistryEntry> {
    registry.entries.with(|map| {
        map.iter()
            .filter_map(|(key, e)| Some((key.clone(), parse_json::<RegistryEntry>(&e.value)?)))
            .filter(|(_, r)| r.is_alive(now as u64))
            .collect()
    })
}

/// A trial of one leaf: which, on which port, numbered so that trying the same leaf again starts
/// over.
#[derive(Debug, Clone, PartialEq)]
struct Trial {
    run: u64,
    leaf: String,
    ws_port: u16,
}

#[component]
fn Scale(client: Client) -> impl IntoView {
    let toasts = expect_context::<Toasts>();
    let agent = watch_agent(client.clone());
    let processes = watch_existing_bucket(client.clone(), PROCESSES_BUCKET);
    let registry = watch_existing_bucket(client.clone(), REGISTRY_BUCKET);
    // Heartbeats are the registrants' times: compared with the server's clock, not this browser's.
    let now = server_time_of([registry, processes], use_now(Duration::from_secs(1)));

    let leaves = Memo::new(move |_| leaves_of(&processes));
    let registered = Memo::new(move |_| fresh_registrations(&registry, now.get()));
    Effect::new(move |_| {
        processes.entries.track();
        if agent.presence.get_untracked() != Presence::Running {
            agent.check_now();
        }
    });

    let adding = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let add = {
        let client = client.clone();
        move |_| {
            let client = client.clone();
            adding.set(true);
            error.set(None);
            spawn_local(async move {
                let reply = agent_request::<LeafReply>(
                    &client,
                    subjects::LEAF_ADD,
                    &LeafAddRequest::default(),
                    ACTION_TIMEOUT,
                )
                .await;
                adding.set(false);
                match reply {
                    Ok(LeafReply { leaf }) => toasts.push(format!(
                        "{} started: client port {}, WebSocket port {}",
                        leaf.name, leaf.client_port, leaf.ws_port
                    )),
                    Err(e) => {
                        agent.saw(&e);
                        error.set(Some(crate::session::explain(format!("no leaf added: {e}"))));
                    }
                }
            });
        }
    };

    // A refusal of an Add ("another leaf operation is in progress", say) is about the leaves as
    // they were: once one starts, stops or goes, it goes too.
    let states = Memo::new(move |_| {
        leaves.with(|l| {
            l.iter()
                .map(|l| (l.process.name.clone(), l.process.state, l.process.pid))
                .collect::<Vec<_>>()
        })
    });
    crate::components::agent::clear_on_change(error, states);

    // The error, cut once into what happened and the leaf's output.
    let said = Memo::new(move |_| {
        error.with(|e| {
            let (why, output) = split_output(e.as_deref().unwrap_or_default());
            (why.to_owned(), output)
        })
    });

    let trial = RwSignal::new(None::<Trial>);
    let next_run = StoredValue::new(0u64);
    let try_leaf = Callback::new(move |(leaf, ws_port): (String, u16)| {
        let run = next_run.get_value() + 1;
        next_run.set_value(run);
        trial.set(Some(Trial { run, leaf, ws_port }));
    });
    // A removed leaf's trial ends (its client is closed on cleanup).
    Effect::new(move |_| {
        let names: Vec<String> =
            leaves.with(|l| l.iter().map(|l| l.process.name.clone()).collect());
        if trial.with_untracked(|t| t.as_ref().is_some_and(|t| !names.contains(&t.leaf))) {
            trial.set(None);
        }
    });

    let rows = {
        let client = client.clone();
        move || {
            let client = client.clone();
            view! {
                <For
                    each=move || leaves.get()
                    key=|l| l.process.name.clone()
                    children=move |leaf| {
                        let name = leaf.process.name.clone();
                        view! {
                            <LeafRow name client=client.clone() leaves registered agent try_leaf/>
                        }
                    }
                />
            }
        }
    };
    let trial_view = move || {
        trial.get().map(|t| {
            let hub = client.clone();
            view! { <LeafTrial trial=t hub/> }
        })
    };
    view! {
        <AgentPresenceLine agent/>
        <Show when=move || agent.is_missing()>
            <AgentMissing agent/>
        </Show>
        <section class="card">
            <div class="card-head">
                <h2>"Topology"</h2>
                <span class="muted small">
                    {move || match leaves.with(Vec::len) {
                        0 => "the hub alone".to_owned(),
                        1 => "the hub and 1 leaf".to_owned(),
                        n => format!("the hub and {n} leaves"),
                    }}
                </span>
            </div>
            <Topology leaves registered/>
        </section>
        <section class="card">
            <div class="card-head">
                <h2>"Leaf nodes"</h2>
                <button
                    data-testid="leaf-add"
                    disabled=move || adding.get() || agent.is_missing()
                    on:click=add
                >
                    {move || if adding.get() { "Starting a leaf…" } else { "Add Leaf Node" }}
                </button>
            </div>
            <Show when=move || error.get().is_some()>
                // A leaf that did not join: why, then its nats-server's last lines folded away.
                <p class="notice-inline error" role="alert" data-testid="leaf-error">
                    {move || said.with(|(why, _)| why.clone())}
                </p>
                <Show when=move || said.with(|(_, output)| !output.is_empty())>
                    <details class="leaf-output" data-testid="leaf-error-output">
                        <summary>"The leaf's last output"</summary>
                        <pre>{move || said.with(|(_, output)| output.clone())}</pre>
                    </details>
                </Show>
            </Show>
            <Show when=move || processes.error.get().is_some()>
                <p class="error">{move || processes.error.get()}</p>
            </Show>
            <Show
                when=move || !leaves.with(Vec::is_empty)
                fallback=move || {
                    view! {
                        <p class="empty">
                            {move || if processes.loaded.get() {
                                "No leaf nodes: Add Leaf Node starts one."
                            } else if processes.error.with(Option::is_some) {
                                "Not loaded: see the error above."
                            } else {
                                "Loading…"
                            }}
                        </p>
                    }
                }
            >
                <div class="table-wrap">
                    <table class="proc-table leaf-table stacks">
                        <thead>
                            <tr>
                                <th>"Leaf"</th>
                                <th>"Ports"</th>
                                <th>"Link"</th>
                                <th class="num">"RTT"</th>
                                <th class="num">"Msgs in / out"</th>
                                <th>"Registry"</th>
                                <th class="right">"Actions"</th>
                            </tr>
                        </thead>
                        <tbody>
                            {rows.clone()}
                        </tbody>
                    </table>
                </div>
            </Show>
            {trial_view}
        </section>
        <Registry registry registered now/>
    }
}

#[component]
fn LeafRow(
    name: String,
    client: Client,
    leaves: Memo<Vec<Leaf>>,
    registered: Memo<BTreeMap<String, RegistryEntry>>,
    agent: AgentWatch,
    try_leaf: Callback<(String, u16)>,
) -> impl IntoView {
    let toasts = expect_context::<Toasts>();
    let leaf = {
        let name = name.clone();
        Memo::new(move |_| {
            leaves.with(|list| list.iter().find(|l| l.process.name == name).cloned())
        })
    };
    let info = move || leaf.get().map(|l| l.info).unwrap_or_default();
    let in_registry = {
        let name = name.clone();
        Memo::new(move |_| registered.with(|r| r.contains_key(&name)))
    };
    let removing = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    // What a refused Remove said is about the leaf as it was: once it starts or stops, it goes.
    let run =
        Memo::new(move |_| leaf.with(|l| l.as_ref().map(|l| (l.process.state, l.process.pid))));
    crate::components::agent::clear_on_change(error, run);
    // Without the agent, what the bucket says of the leaf is its last word: the leaf may have
    // stopped with it (killed, it could not say so).
    let stale = move || agent.is_missing();
    let remove = {
        let name = name.clone();
        move |_| {
            let (client, name) = (client.clone(), name.clone());
            removing.set(true);
            error.set(None);
            spawn_local(async move {
                let reply = agent_request::<RemovedReply>(
                    &client,
                    subjects::LEAF_REMOVE,
                    &NameRequest { name: name.clone() },
                    ACTION_TIMEOUT,
                )
                .await;
                removing.set(false);
                if let Err(e) = reply {
                    report_row_failure(agent, error, toasts, &e, format!("remove {name}: {e}"));
                }
            });
        }
    };
    let trial_name = name.clone();
    view! {
        <tr class="proc-row" data-testid="leaf-row">
            <td class="proc-name">
                <span class="name">{name.clone()}</span>
                " "
                <span class=move || {
                    format!("state state-{}", leaf.get().map(|l| l.process.state.as_str()).unwrap_or_default())
                }>{move || leaf.get().map(|l| l.process.state.as_str()).unwrap_or_default()}</span>
                <Show when=stale>
                    " "
                    <span class="stale-note" data-testid="leaf-stale">"agent not running · last known"</span>
                </Show>
            </td>
            // Wraps between the ports, not within one: the row's buttons stay in sight at 1 280 px.
            <td class="ports small" data-label="Ports">
                <span>{move || format!("client {}", info().client_port)}</span>
                " · "
                <span>{move || format!("ws {}", info().ws_port)}</span>
                " · "
                <span>{move || format!("http {}", info().http_port)}</span>
            </td>
            <td data-label="Link">
                <span class="link-state" class:up=move || info().connected>
                    {move || if info().connected { "connected" } else { "not connected" }}
                </span>
            </td>
            <td class="num" data-label="RTT">{move || info().rtt.as_deref().map_or_else(|| "—".into(), readable_rtt)}</td>
            <td class="num" data-label="Msgs in / out">
                {move || {
                    let i = info();
                    format!("{} / {}", i.in_msgs, i.out_msgs)
                }}
            </td>
            <td data-label="Registry">
                <span
                    class="registry-state"
                    class:up=move || in_registry.get()
                    data-testid=format!("leaf-registry-{name}")
                >
                    {move || if in_registry.get() { "registered" } else { "not registered" }}
                </span>
            </td>
            <td class="right actions">
                <div class="row-actions proc-actions">
                    <button
                        class="secondary"
                        data-testid=format!("leaf-try-{name}")
                        title="Connect a second client to this leaf and send a message each way"
                        aria-label=format!("Send a message across leaf {name}")
                        disabled=move || !info().connected || info().ws_port == 0 || stale()
                        on:click=move |_| try_leaf.run((trial_name.clone(), info().ws_port))
                    >
                        "Send across"
                    </button>
                    <button
                        class="danger"
                        data-testid=format!("leaf-remove-{name}")
                        aria-label=format!("Remove leaf {name}")
                        disabled=move || removing.get() || agent.is_missing()
                        on:click=remove
                    >
                        {move || if removing.get() { "Removing…" } else { "Remove" }}
                    </button>
                </div>
            </td>
        </tr>
        <RowError columns=7 error/>
    }
}

/// How the topology is drawn: its box (`w` × `h`) and the ellipse the leaves sit on around the
/// hub in its middle.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Frame {
    w: f64,
    h: f64,
    rx: f64,
    ry: f64,
    /// The most characters of a leaf's name its label shows (the rest is cut to "…"; the whole
    /// name is in the node's title): a leaf at the side has about this much room.
    label: usize,
}

/// `name`, cut to `max` characters with "…" in place of the rest.
fn label_of(name: &str, max: usize) -> String {
    match name.char_indices().nth(max) {
        Some(_) => {
            let keep: String = name.chars().take(max.saturating_sub(1)).collect();
            format!("{keep}…")
        }
        None => name.to_owned(),
    }
}

/// Wide, for a window wider than a phone's.
const WIDE: Frame = Frame {
    w: 720.0,
    h: 300.0,
    rx: 270.0,
    ry: 105.0,
    label: 22,
};

/// Upright, for a phone: the wide one in a 340 px column would shrink every label to under half
/// its size (5 px); this one keeps them at about 11 px.
const UPRIGHT: Frame = Frame {
    w: 320.0,
    h: 380.0,
    rx: 115.0,
    ry: 140.0,
    label: 11,
};

/// Whether the window is as narrow as the stylesheet's phones (640 px), following its resizes
/// while the caller lives.
fn use_narrow() -> ReadSignal<bool> {
    let narrow_now = || {
        window()
            .inner_width()
            .ok()
            .and_then(|w| w.as_f64())
            .is_some_and(|w| w <= 640.0)
    };
    let (narrow, set_narrow) = signal(narrow_now());
    let handle = window_event_listener_untyped("resize", move |_| {
        let now = narrow_now();
        if narrow.get_untracked() != now {
            set_narrow.set(now);
        }
    });
    on_cleanup(move || handle.remove());
    narrow
}

/// The SVG: the hub in the middle, the leaves on an ellipse around it; a solid line to a leaf the
/// hub sees connected, a dashed one otherwise. Wide, or upright on a phone ([`Frame`]).
#[component]
fn Topology(
    leaves: Memo<Vec<Leaf>>,
    registered: Memo<BTreeMap<String, RegistryEntry>>,
) -> impl IntoView {
    let narrow = use_narrow();
    let frame = Memo::new(move |_| if narrow.get() { UPRIGHT } else { WIDE });
    // Each leaf with its place and the hub's, keyed by name and what it shows, so a change redraws
    // that node.
    let placed = Memo::new(move |_| {
        let Frame {
            w,
            h,
            rx,
            ry,
            label,
        } = frame.get();
        let (cx, cy) = (w / 2.0, h / 2.0);
        let list = leaves.get();
        let spots = leaf_positions(list.len(), 0.0, 0.0, 1.0);
        list.into_iter()
            .zip(spots)
            .map(|(leaf, (x, y))| {
                let registered = registered.with(|r| r.contains_key(&leaf.process.name));
                (
                    label_of(&leaf.process.name, label),
                    leaf.process.name,
                    (cx, cy),
                    (cx + x * rx, cy + y * ry),
                    leaf.info.connected,
                    leaf.info.ws_port,
                    registered,
                )
            })
            .collect::<Vec<_>>()
    });
    let middle = move || frame.with(|f| (f.w / 2.0, f.h / 2.0));
    view! {
        <svg
            class="topology"
            data-testid="topology"
            viewBox=move || frame.with(|f| format!("0 0 {} {}", f.w, f.h))
            role="img"
            aria-label="The hub and its leaf nodes"
        >
            <For
                each=move || placed.get()
                key=|p| format!("{p:?}")
                children=move |(_, _, (cx, cy), (x, y), connected, _, _)| {
                    view! {
                        <line
                            class="edge"
                            class:connected=connected
                            x1=cx
                            y1=cy
                            x2=x
                            y2=y
                        />
                    }
                }
            />
            <g
                class="node hub"
                data-testid="topology-node"
                transform=move || {
                    let (cx, cy) = middle();
                    format!("translate({cx} {cy})")
                }
            >
                <circle r="38"/>
                <text class="label" y="-2">"hub"</text>
                <text class="sub" y="14">"nats-server"</text>
            </g>
            <For
                each=move || placed.get()
                key=|p| format!("{p:?}")
                children=move |(label, name, _, (x, y), connected, ws_port, registered)| {
                    view! {
                        <g
                            class="node leaf"
                            class:down=!connected
                            data-testid="topology-node"
                            data-name=name.clone()
                            transform=format!("translate({x:.1} {y:.1})")
                        >
                            <title>
                                {format!(
                                    "{name}: {}, {}, WebSocket port {ws_port}",
                                    if connected { "connected to the hub" } else { "not connected" },
                                    if registered { "registered" } else { "not in the registry" },
                                )}
                            </title>
                            <circle r="28"/>
                            <circle class="registered-dot" class:up=registered cx="20" cy="-20" r="5"/>
                            <text class="label" y="-1">{label}</text>
                            <text class="sub" y="13">{format!("ws {ws_port}")}</text>
                        </g>
                    }
                }
            />
            <Show when=move || placed.with(Vec::is_empty)>
                <text class="topology-empty" x=move || middle().0 y=move || middle().1 + 70.0>
                    "No leaf nodes yet"
                </text>
            </Show>
        </svg>
        <p class="legend small muted">
            <span class="legend-line connected"></span>" connected to the hub "
            <span class="legend-line"></span>" not connected "
            <span class="legend-dot up"></span>" in the service registry"
        </p>
    }
}

/// What the trial shows, one line per step.
#[derive(Debug, Clone, PartialEq)]
struct Step {
    at: f64,
    text: String,
    ok: bool,
}

/// Connects a second client to the leaf's WebSocket port, sends a message hub → leaf and one
/// leaf → hub, each until it arrives (interest takes a moment to cross the leaf connection), and
/// closes that client.
#[component]
fn LeafTrial(trial: Trial, hub: Client) -> impl IntoView {
    let steps = RwSignal::new(Vec::<Step>::new());
    let done = RwSignal::new(false);
    let leaf_client = StoredValue::new(None::<Client>);
    on_cleanup(move || {
        if let Some(Some(c)) = leaf_client.try_get_value() {
            c.close();
        }
    });
    let say = move |text: String, ok: bool| {
        steps.update(|s| {
            s.push(Step {
                at: now_ms(),
                text,
                ok,
            })
        })
    };
    let Trial { leaf, ws_port, .. } = trial.clone();
    {
        let leaf = leaf.clone();
        spawn_while_mounted(async move {
            let url = format!("ws://127.0.0.1:{ws_port}");
            say(format!("connecting to {leaf} at {url}…"), true);
            let options = Options::new(url.clone())
                .name(format!("via scale trial {leaf}"))
                .connect_timeout(Duration::from_secs(3));
            let client = match nats_ws::connect(options).await {
                Ok(client) => client,
                Err(e) => {
                    say(format!("could not connect to {leaf}: {e}"), false);
                    done.set(true);
                    return;
                }
            };
            leaf_client.set_value(Some(client.clone()));
            say(format!("connected to {leaf}"), true);
            let token = random_hex(8);
            let down = format!("via.scale.trial.{token}.down");
            let up = format!("via.scale.trial.{token}.up");
            cross(&hub, &client, &down, "hub", &leaf, say).await;
            cross(&client, &hub, &up, &leaf, "hub", say).await;
            client.close();
            leaf_client.set_value(None);
            say(format!("closed the client of {leaf}"), true);
            done.set(true);
        });
    }
    let numbered = move || steps.get().into_iter().enumerate().collect::<Vec<_>>();
    view! {
        <div class="trial" data-testid="leaf-trial">
            <div class="card-head">
                <h2>"Across " <code>{leaf.clone()}</code></h2>
                <span class="muted small">
                    {move || if done.get() { "done" } else { "running…" }}
                </span>
            </div>
            <ol class="trial-steps">
                <For
                    each=numbered
                    key=|(i, _)| *i
                    children=|(_, step)| {
                        view! {
                            <li class:failed=!step.ok data-testid="leaf-trial-step">
                                <time>{time_of_day(step.at, true)}</time>
                                <span>{step.text}</span>
                            </li>
                        }
                    }
                />
            </ol>
        </div>
    }
}

/// Subscribes on `to`, publishes on `from` until the message arrives (at most 20 tries, 250 ms
/// apart), and says how long it took.
async fn cross(
    from: &Client,
    to: &Client,
    subject: &str,
    from_name: &str,
    to_name: &str,
    say: impl Fn(String, bool),
) {
    let mut sub: Subscriber = match to.subscribe(subject) {
        Ok(sub) => sub,
        Err(e) => return say(format!("{to_name} could not subscribe: {e}"), false),
    };
    // The subscription is on `to`'s server before the first publish.
    if let Err(e) = to.flush().await {
        return say(format!("{to_name}: {e}"), false);
    }
    for attempt in 1..=20u32 {
        let sent = now_ms();
        let text = format!("hello from {from_name} #{attempt}");
        if let Err(e) = from.publish(subject, text.as_bytes()) {
            return say(format!("{from_name} could not publish: {e}"), false);
        }
        let arrival = futures::select! {
            m = sub.next().fuse() => m,
            _ = gloo_timers::future::sleep(Duration::from_millis(250)).fuse() => continue,
        };
        let Some(Ok(message)) = arrival else {
            return say(format!("{to_name}'s subscription ended"), false);
        };
        let received = message.text().unwrap_or("(binary)").to_owned();
        return say(
            format!(
                "{from_name} → {to_name}: \"{received}\" arrived in {} ms",
                (now_ms() - sent).round()
            ),
            true,
        );
    }
    say(
        format!("{from_name} → {to_name}: nothing arrived in 5 s"),
        false,
    );
}

/// Every service with a fresh heartbeat.
#[component]
fn Registry(
    registry: LiveBucket,
    registered: Memo<BTreeMap<String, RegistryEntry>>,
    now: Signal<f64>,
) -> impl IntoView {
    let rows = move || registered.get().into_iter().collect::<Vec<_>>();
    view! {
        <section class="card">
            <div class="card-head">
                <h2>"Service registry"</h2>
                <span class="muted small">
                    <code>"services_registry"</code> " · gone after 15 s without a heartbeat"
                </span>
            </div>
            <Show when=move || registry.error.get().is_some()>
                <p class="error">{move || registry.error.get()}</p>
            </Show>
            <Show
                when=move || !registered.with(BTreeMap::is_empty)
                fallback=move || {
                    view! {
                        <p class="empty">
                            {move || if registry.missing.get() {
                                "No registry yet: via-agent creates it when it starts."
                            } else {
                                "Nothing registered."
                            }}
                        </p>
                    }
                }
            >
                <ul class="registry">
                    <For
                        each=rows
                        key=|(key, r)| (key.clone(), r.registered_at)
                        children=move |(key, _)| {
                            let entry = {
                                let key = key.clone();
                                move || registered.with(|r| r.get(&key).cloned()).unwrap_or_default()
                            };
                            let e = entry.clone();
                            view! {
                                <li class="registry-row" data-testid="registry-row">
                                    <span class="tag">{move || entry().kind}</span>
                                    <span class="name">{key.clone()}</span>
                                    <span class="muted small">
                                        {move || {
                                            let r = e();
                                            let pid = if r.pid == 0 { String::new() } else { format!(" · pid {}", r.pid) };
                                            format!(
                                                "{}{pid} · heartbeat {} ago · {}",
                                                r.host,
                                                format_duration(now.get() - r.heartbeat_at as f64),
                                                r.tags.join(", "),
                                            )
                                        }}
                                    </span>
                                </li>
                            }
                        }
                    />
                </ul>
            </Show>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::readable_rtt;

    #[test]
    fn long_leaf_names_are_cut_in_the_drawing() {
        use super::label_of;
        assert_eq!(label_of("leaf-1", 11), "leaf-1");
        assert_eq!(label_of("abcdefghijk", 11), "abcdefghijk");
        assert_eq!(label_of("abcdefghijkl", 11), "abcdefghij…");
        assert_eq!(label_of("ééééééééééééé", 11).chars().count(), 11);
        assert_eq!(label_of("", 11), "");
    }

    #[test]
    fn round_trips_read_in_a_unit_with_few_digits() {
        assert_eq!(readable_rtt("7.894705ms"), "7.9 ms");
        assert_eq!(readable_rtt("812.4µs"), "812 µs");
        assert_eq!(readable_rtt("1.2s"), "1.20 s");
        assert_eq!(readable_rtt("900ns"), "900 ns");
        assert_eq!(readable_rtt("1m2.5s"), "1m2.5s");
        assert_eq!(readable_rtt(""), "—");
        let (why, output) = super::split_output(
            "no leaf added: leaf leaf-1 did not join the hub within 8 s (refused); its last output: [1] a | [1] b",
        );
        assert_eq!(
            why,
            "no leaf added: leaf leaf-1 did not join the hub within 8 s (refused)"
        );
        assert_eq!(output, "[1] a\n[1] b");
        assert_eq!(
            super::split_output("no leaf added: at most 1"),
            ("no leaf added: at most 1", String::new())
        );
        assert_eq!(readable_rtt("0s"), "—");
        assert_eq!(readable_rtt("0.000ms"), "—");
    }
}
