//! `/graph`: which service depends on which, drawn live as SVG. Nodes are the services of the
//! registry `services_registry` and of `$SRV` (one node per name); each `service:<name>` tag of a
//! registration, and each name in a micro service's metadata `deps` (comma-separated), is an edge
//! to the service of that name, or to a dashed ghost node when no such service is there. Stale
//! heartbeats and endpoint errors of the last minute (not a 4xx: the caller's) mark a node unhealthy. The layout is layered (Sugiyama, the
//! `rust-sugiyama` crate): dependents above what they depend on.
//!
//! The data comes from [`crate::components::directory`], shared with `/nats`: a registry change
//! redraws at once, services are asked every 5 s while the page is in view.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use leptos::ev::KeyboardEvent;
use leptos::prelude::*;
use leptos_nats::use_nats;
use process_control::REGISTRY_BUCKET;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;

use crate::components::clock::use_now;
use crate::components::directory::{
    use_directory, Health, Registration, RegistrySetup, ServiceInstance,
};
use crate::model::format_duration;

/// The tag prefix that names a dependency of a registration.
const DEP_TAG: &str = "service:";
/// More nodes than this are not drawn (the first ones by name are).
const MAX_NODES: usize = 150;
/// A label longer than this is cut (the details show it whole).
const LABEL_CHARS: usize = 28;
/// How long errors count against a node's health after this page saw its error count go up.
const ERRORS_RECENT_MS: f64 = 60_000.0;

/// When each instance's error count last went up, as this page saw it. An instance's counts
/// live as long as it does: one bad request an hour ago is no reason to call it unhealthy now,
/// and a count already there when the page first sees it is of unknown age.
#[derive(Debug, Default)]
pub struct ErrorTrend {
    /// (Service name, instance id) → its errors, and when they last went up (ms, page clock).
    seen: BTreeMap<(String, String), (u64, Option<f64>)>,
}

impl ErrorTrend {
    /// Takes the counts of `services` as they are at `now_ms`; instances gone are forgotten. An
    /// instance whose stats did not come this round (its INFO did) keeps what it had: its count
    /// is unknown, not zero.
    pub fn observe(&mut self, services: &[ServiceInstance], now_ms: f64) {
        self.seen
            .retain(|(name, id), _| services.iter().any(|s| &s.name == name && &s.id == id));
        for s in services {
            if s.endpoints.iter().all(|e| e.stats.is_none()) {
                continue;
            }
            let errors = s.totals().1;
            let key = (s.name.clone(), s.id.clone());
            match self.seen.get_mut(&key) {
                Some((was, rose)) => {
                    if errors > *was {
                        *rose = Some(now_ms);
                    }
                    *was = errors;
                }
                None => {
                    self.seen.insert(key, (errors, None));
                }
            }
        }
    }

    /// Whether the instance `id` of `name` had errors in the [`ERRORS_RECENT_MS`] before
    /// `now_ms`.
    pub fn recent(&self, name: &str, id: &str, now_ms: f64) -> bool {
        self.seen
            .get(&(name.to_owned(), id.to_owned()))
            .and_then(|(_, rose)| *rose)
            .is_some_and(|at| now_ms - at < ERRORS_RECENT_MS)
    }
}
const NODE_HEIGHT: f64 = 46.0;
/// Space around each node, sideways and between layers.
const GAP_X: f64 = 36.0;
const GAP_Y: f64 = 64.0;
const MARGIN: f64 = 16.0;

/// One micro service instance, as the graph tells about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceSummary {
    pub id: String,
    pub version: String,
    pub requests: u64,
    pub errors: u64,
    /// The last error of an endpoint with errors.
    pub last_error: String,
}

/// A service: what the registry and `$SRV` say of one name. A ghost has neither: only others
/// name it as a dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub registrations: Vec<Registration>,
    pub instances: Vec<InstanceSummary>,
    /// The names it depends on, sorted.
    pub deps: Vec<String>,
    /// Why it is unhealthy; empty when it is not.
    pub problems: Vec<String>,
}

impl Node {
    pub fn is_ghost(&self) -> bool {
        self.registrations.is_empty() && self.instances.is_empty()
    }

    /// `healthy`, `unhealthy` or `ghost`.
    pub fn state(&self) -> &'static str {
        if self.is_ghost() {
            "ghost"
        } else if self.problems.is_empty() {
            "healthy"
        } else {
            "unhealthy"
        }
    }

    /// The line under its name in the drawing.
    pub fn caption(&self) -> String {
        if self.is_ghost() {
            "missing".to_owned()
        } else if self.problems.is_empty() {
            self.origin()
        } else {
            format!("unhealthy · {}", self.origin())
        }
    }

    /// Where it comes from, in a few words.
    pub fn origin(&self) -> String {
        let mut parts = Vec::new();
        match self.registrations.len() {
            0 => {}
            1 => parts.push("registry".to_owned()),
            n => parts.push(format!("registry ×{n}")),
        }
        match self.instances.len() {
            0 => {}
            1 => parts.push("1 instance".to_owned()),
            n => parts.push(format!("{n} instances")),
        }
        if parts.is_empty() {
            "missing".to_owned()
        } else {
            parts.join(" · ")
        }
    }
}

/// A dependency: `from` depends on `to`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Edge {
    pub from: String,
    pub to: String,
}

/// The graph: nodes sorted by name (ghosts included), edges sorted, each once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Model {
    pub nodes: Vec<Node>,
    pub edges: Vec<Edge>,
    /// Nodes left out beyond [`MAX_NODES`].
    pub left_out: usize,
}

impl Model {
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.nodes[i])
    }

    /// The names that depend on `name`.
    pub fn dependents(&self, name: &str) -> Vec<String> {
        self.edges
            .iter()
            .filter(|e| e.to == name)
            .map(|e| e.from.clone())
            .collect()
    }
}

/// `"a, b,,c "` → `["a", "b", "c"]`.
pub fn split_deps(deps: &str) -> impl Iterator<Item = &str> {
    deps.split(',').map(str::trim).filter(|d| !d.is_empty())
}

/// Whether an endpoint's last error (`400:bad request: …`, as `$SRV.STATS` gives it) is the
/// caller's fault, a 4xx: a service that answers a malformed request with 400 is working. (The
/// stats keep only the last error's text: a 4xx after a 5xx in the same minute hides the 5xx.)
fn by_the_caller(last_error: &str) -> bool {
    matches!(last_error.as_bytes(), [b'4', a, b, b':', ..] if a.is_ascii_digit() && b.is_ascii_digit())
}

/// Builds the graph from the live registrations and the discovered service instances. A
/// dependency of a service on itself is left out.
/// The graph of `registrations` and `services`; `recent_errors` says whether an instance (by
/// service name and id) had errors lately ([`ErrorTrend::recent`]): only those make its node
/// unhealthy.
pub fn build_model(
    registrations: &[Registration],
    services: &[ServiceInstance],
    recent_errors: impl Fn(&str, &str) -> bool,
) -> Model {
    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let node = |nodes: &mut BTreeMap<String, Node>, name: &str| {
        nodes.entry(name.to_owned()).or_insert_with(|| Node {
            name: name.to_owned(),
            registrations: Vec::new(),
            instances: Vec::new(),
            deps: Vec::new(),
            problems: Vec::new(),
        });
    };
    for r in registrations {
        node(&mut nodes, &r.name);
        let named = r
            .entry
            .tags
            .iter()
            .filter_map(|t| t.strip_prefix(DEP_TAG))
            .map(str::trim)
            .filter(|d| !d.is_empty());
        deps.entry(r.name.clone())
            .or_default()
            .extend(named.map(str::to_owned));
        if let Some(n) = nodes.get_mut(&r.name) {
            if r.health == Health::Stale {
                n.problems.push(format!(
                    "stale heartbeat: {} on {} missed its renewal",
                    r.key, r.entry.host
                ));
            }
            n.registrations.push(r.clone());
        }
    }
    for s in services {
        node(&mut nodes, &s.name);
        let named = s
            .metadata
            .get("deps")
            .map(|d| split_deps(d).map(str::to_owned).collect::<Vec<_>>())
            .unwrap_or_default();
        deps.entry(s.name.clone()).or_default().extend(named);
        let (requests, errors) = s.totals();
        let last_error = s
            .endpoints
            .iter()
            .filter_map(|e| e.stats.as_ref())
            .filter(|st| st.num_errors > 0 && !st.last_error.is_empty())
            .map(|st| st.last_error.clone())
            .next_back()
            .unwrap_or_default();
        if let Some(n) = nodes.get_mut(&s.name) {
            if errors > 0 && recent_errors(&s.name, &s.id) && !by_the_caller(&last_error) {
                n.problems.push(if last_error.is_empty() {
                    format!("instance {}: errors in the last minute ({errors} in all)", s.id)
                } else {
                    format!(
                        "instance {}: errors in the last minute ({errors} in all), last: {last_error}",
                        s.id
                    )
                });
            }
            n.instances.push(InstanceSummary {
                id: s.id.clone(),
                version: s.version.clone(),
                requests,
                errors,
                last_error,
            });
        }
    }
    let mut edges = Vec::new();
    for (from, to) in deps {
        for to in to {
            if to != from {
                edges.push(Edge {
                    from: from.clone(),
                    to,
                });
            }
        }
    }
    for e in &edges {
        node(&mut nodes, &e.to);
    }
    for e in &edges {
        if let Some(n) = nodes.get_mut(&e.from) {
            n.deps.push(e.to.clone());
        }
    }
    let mut nodes: Vec<Node> = nodes.into_values().collect();
    let left_out = nodes.len().saturating_sub(MAX_NODES);
    nodes.truncate(MAX_NODES);
    // Inserted one by one: collecting would sort them first (a sort compiled for this type only).
    let mut kept = BTreeSet::new();
    kept.extend(nodes.iter().map(|n| n.name.as_str()));
    edges.retain(|e| kept.contains(e.from.as_str()) && kept.contains(e.to.as_str()));
    crate::sort::sort_by(&mut edges, Ord::cmp);
    Model {
        nodes,
        edges,
        left_out,
    }
}

/// A node's label: its name, cut after [`LABEL_CHARS`] characters.
pub fn label(name: &str) -> String {
    if name.chars().count() <= LABEL_CHARS {
        name.to_owned()
    } else {
        let cut: String = name.chars().take(LABEL_CHARS - 1).collect();
        format!("{cut}…")
    }
}

/// The width of a node's box for its label and caption.
fn node_width(node: &Node) -> f64 {
    let label = label(&node.name).chars().count() as f64 * 7.6;
    let caption = node.caption().chars().count() as f64 * 6.2;
    (label.max(caption) + 28.0).clamp(96.0, 300.0)
}

/// Where a node's box is: centre and size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placed {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// The drawing: every node placed, and the size of the picture.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Layout {
    pub nodes: BTreeMap<String, Placed>,
    pub width: f64,
    pub height: f64,
}

/// The edges the layout crate gets: acyclic (an edge that closes a cycle is turned around, as
/// the Sugiyama method does — the crate itself does not finish on some cyclic graphs), each
/// pair once, no loops.
pub fn acyclic_edges(n: usize, edges: &[(usize, usize)]) -> Vec<(u32, u32)> {
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        if a < n && b < n && a != b {
            out[a].push(b);
        }
    }
    // Iterative DFS: 0 unvisited, 1 on the stack, 2 done. An edge to a node on the stack is a
    // back edge.
    let mut state = vec![0u8; n];
    let mut kept = BTreeSet::new();
    for root in 0..n {
        if state[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        while let Some((v, i)) = stack.pop() {
            if let Some(&w) = out[v].get(i) {
                stack.push((v, i + 1));
                match state[w] {
                    0 => {
                        kept.insert((v, w));
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => {
                        kept.insert((w, v));
                    }
                    _ => {
                        kept.insert((v, w));
                    }
                }
            } else {
                state[v] = 2;
            }
        }
    }
    kept.into_iter()
        .filter_map(|(a, b)| Some((u32::try_from(a).ok()?, u32::try_from(b).ok()?)))
        .collect()
}

/// A size observer and the callback it calls, kept together: dropped after a disconnect.
type Observer = (web_sys::ResizeObserver, Closure<dyn FnMut(js_sys::Array)>);

/// One connected part of the graph, laid out in layers: its nodes' places from its top left
/// corner, and its size.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Part {
    pub nodes: Vec<(String, Placed)>,
    pub width: f64,
    pub height: f64,
}

/// Lays each connected part of the graph out in layers, dependents above their dependencies
/// (the costly step: done again only when the nodes or edges change, not when the room does).
pub fn parts(model: &Model) -> Vec<Part> {
    let index: BTreeMap<&str, usize> = model
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let edges: Vec<(usize, usize)> = model
        .edges
        .iter()
        .filter_map(|e| Some((*index.get(e.from.as_str())?, *index.get(e.to.as_str())?)))
        .collect();
    let sizes: Vec<f64> = model.nodes.iter().map(node_width).collect();
    let Ok(count) = u32::try_from(model.nodes.len()) else {
        return Vec::new();
    };
    let vertices: Vec<(u32, (f64, f64))> = (0..count)
        .zip(&sizes)
        .map(|(i, w)| (i, (w + GAP_X, NODE_HEIGHT + GAP_Y)))
        .collect();
    let edges = acyclic_edges(model.nodes.len(), &edges);
    let laid_out = rust_sugiyama::from_vertices_and_edges(
        &vertices,
        &edges,
        &rust_sugiyama::configure::Config::default(),
    );
    let mut parts = Vec::new();
    for (part, _, _) in laid_out {
        let bounds = part.iter().fold(
            (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY),
            |(x0, y0, x1), &(i, (x, y))| {
                let half = sizes.get(i).copied().unwrap_or(0.0) / 2.0;
                (x0.min(x - half), y0.min(y), x1.max(x + half))
            },
        );
        if !bounds.0.is_finite() {
            continue;
        }
        let mut placed = Part {
            width: bounds.2 - bounds.0,
            ..Part::default()
        };
        for (i, (x, y)) in part {
            let (Some(node), Some(&width)) = (model.nodes.get(i), sizes.get(i)) else {
                continue;
            };
            let p = Placed {
                x: x - bounds.0,
                y: NODE_HEIGHT / 2.0 + y - bounds.1,
                width,
                height: NODE_HEIGHT,
            };
            placed.height = placed.height.max(p.y + NODE_HEIGHT / 2.0);
            placed.nodes.push((node.name.clone(), p));
        }
        parts.push(placed);
    }
    parts
}

/// Places the parts side by side, starting a new row where the next would pass `room` (the
/// width there is to draw in: a phone's is under 400 px), so that a graph of several parts is
/// seen without scrolling sideways. A part wider than the room has a row of its own.
pub fn pack(parts: &[Part], room: f64) -> Layout {
    let mut layout = Layout::default();
    let (mut left, mut top, mut row_height) = (MARGIN, MARGIN, 0.0f64);
    for part in parts {
        if left > MARGIN && left + part.width + MARGIN > room {
            top += row_height + GAP_Y;
            (left, row_height) = (MARGIN, 0.0);
        }
        for (name, p) in &part.nodes {
            let p = Placed {
                x: left + p.x,
                y: top + p.y,
                ..*p
            };
            layout.nodes.insert(name.clone(), p);
        }
        layout.width = layout.width.max(left + part.width + MARGIN);
        layout.height = layout.height.max(top + part.height + MARGIN);
        row_height = row_height.max(part.height);
        left += part.width + GAP_X;
    }
    layout
}

/// The SVG path of an edge: from the bottom of `from` to the top of `to` (or top to bottom when
/// `to` sits higher), a vertical S-curve.
pub fn edge_path(from: Placed, to: Placed) -> String {
    let down = to.y >= from.y;
    let (y1, y2) = if down {
        (from.y + from.height / 2.0, to.y - to.height / 2.0)
    } else {
        (from.y - from.height / 2.0, to.y + to.height / 2.0)
    };
    let mid = (y1 + y2) / 2.0;
    format!(
        "M {:.1} {y1:.1} C {:.1} {mid:.1}, {:.1} {mid:.1}, {:.1} {y2:.1}",
        from.x, from.x, to.x, to.x
    )
}

#[component]
pub fn GraphPage() -> impl IntoView {
    let nats = use_nats();
    view! {
        <section class="page-head">
            <h1>"Graph"</h1>
            <p class="lede">
                "Which service depends on which: the registrations of " <code>{REGISTRY_BUCKET}</code>
                " (each " <code>"service:<name>"</code> " tag names a dependency) and the NATS services of "
                <code>"$SRV"</code> " (metadata " <code>"deps"</code> "). Live; click a service for its details."
            </p>
        </section>
        {move || match nats.client.get() {
            Some(client) => view! { <Graph client/> }.into_any(),
            None => view! { <p class="muted">"Not connected."</p> }.into_any(),
        }}
    }
}

#[component]
fn Graph(client: nats_ws::Client) -> impl IntoView {
    let directory = use_directory(client);
    // Heartbeats are the registrants' times: compared with the server's clock, not this browser's.
    let now = directory
        .registry
        .server_time(use_now(Duration::from_secs(1)));
    // Read again every second with the clock, so errors stop counting once they are old.
    let trend = StoredValue::new(ErrorTrend::default());
    let model = Memo::new(move |_| {
        let registry = directory.registrations(now.get());
        let at = crate::components::clock::monotonic_ms();
        directory.services.with(|services| {
            trend.update_value(|t| t.observe(services, at));
            trend.with_value(|t| {
                build_model(&registry.rows, services, |name, id| t.recent(name, id, at))
            })
        })
    });
    // Laid out again only when the nodes, their captions or the edges change, not the details.
    let shape = Memo::new(move |_| {
        model.with(|m| {
            (
                m.nodes
                    .iter()
                    .map(|n| (n.name.clone(), n.caption()))
                    .collect::<Vec<_>>(),
                m.edges.clone(),
            )
        })
    });
    let laid_out = Memo::new(move |_| {
        // Read (not just tracked), so that the shape is computed and follows the model.
        shape.with(|_| ());
        model.with_untracked(parts)
    });
    // The width the drawing has (the card's), followed as it changes (the window resized, the
    // page's own scrollbar come, a scrollbar of the card's): the parts are packed into rows that
    // fit it. Unmeasured (or hidden), one row.
    let wrap = NodeRef::<leptos::html::Div>::new();
    let room = RwSignal::new(f64::INFINITY);
    let observer = StoredValue::new_local(None::<Observer>);
    Effect::new(move |_| {
        let Some(el) = wrap.get() else {
            return;
        };
        let measured = el.clone();
        let measure = move || {
            let width = f64::from(measured.client_width());
            if width > 0.0 && room.try_get_untracked().is_some_and(|r| r != width) {
                room.try_set(width);
            }
        };
        measure();
        let on_resize = Closure::<dyn FnMut(js_sys::Array)>::new(move |_| measure());
        let Ok(watching) = web_sys::ResizeObserver::new(on_resize.as_ref().unchecked_ref()) else {
            return;
        };
        watching.observe(&el);
        let before = observer.try_update_value(|o| o.replace((watching, on_resize)));
        if let Some((old, _)) = before.flatten() {
            old.disconnect();
        }
    });
    on_cleanup(move || {
        if let Some((watching, _)) = observer.try_update_value(Option::take).flatten() {
            watching.disconnect();
        }
    });
    let placed = Memo::new(move |_| laid_out.with(|p| pack(p, room.get())));
    let selected = RwSignal::new(None::<String>);
    let error = move || {
        let setup = match directory.setup.get() {
            RegistrySetup::Failed(why) => Some(why),
            _ => None,
        };
        setup
            .or_else(|| directory.registry.error.get())
            .or_else(|| directory.services_error.get())
    };

    view! {
        <section class="card">
            <div class="card-head">
                <h2>"Dependencies"</h2>
                <span class="muted small" data-testid="graph-summary">
                    {move || model.with(|m| {
                        let ghosts = m.nodes.iter().filter(|n| n.is_ghost()).count();
                        format!("{} services · {} dependencies · {} missing", m.nodes.len() - ghosts, m.edges.len(), ghosts)
                    })}
                </span>
            </div>
            <Show when=move || error().is_some()>
                <p class="error" role="alert">{error}</p>
            </Show>
            <Show when=move || model.with(|m| m.left_out > 0)>
                <p class="muted small">
                    {move || model.with(|m| format!("{} more services are not drawn (the first {MAX_NODES} by name are).", m.left_out))}
                </p>
            </Show>
            <div class="graph-wrap" node_ref=wrap>
                <svg
                    class="graph"
                    data-testid="graph"
                    role="group"
                    aria-labelledby="graph-title"
                    viewBox=move || placed.with(|l| format!("0 0 {:.0} {:.0}", l.width.max(1.0), l.height.max(1.0)))
                    width=move || placed.with(|l| format!("{:.0}", l.width.max(1.0)))
                    height=move || placed.with(|l| format!("{:.0}", l.height.max(1.0)))
                >
                    <title id="graph-title">"Service dependency graph"</title>
                    <defs>
                        <marker
                            id="graph-arrow"
                            viewBox="0 0 10 10"
                            refX="10"
                            refY="5"
                            markerWidth="7"
                            markerHeight="7"
                            orient="auto-start-reverse"
                        >
                            <path class="graph-arrow" d="M 0 0 L 10 5 L 0 10 z"></path>
                        </marker>
                    </defs>
                    {move || {
                        let layout = placed.get();
                        model.with(|m| {
                            m.edges
                                .iter()
                                .filter_map(|e| {
                                    let (from, to) = (layout.nodes.get(&e.from)?, layout.nodes.get(&e.to)?);
                                    let missing = m.node(&e.to).is_some_and(Node::is_ghost);
                                    Some(view! {
                                        <path
                                            class="graph-edge"
                                            class:missing=missing
                                            data-testid="graph-edge"
                                            data-from=e.from.clone()
                                            data-to=e.to.clone()
                                            d=edge_path(*from, *to)
                                            marker-end="url(#graph-arrow)"
                                        ></path>
                                    })
                                })
                                .collect_view()
                        })
                    }}
                    // Keyed by name, each box following its node: a redraw of the model (every
                    // discovery) keeps the boxes, and the keyboard focus on one of them.
                    <For
                        each=move || placed.with(|l| l.nodes.keys().cloned().collect::<Vec<_>>())
                        key=|name| name.clone()
                        let:name
                    >
                        <GraphNode name model placed selected/>
                    </For>
                </svg>
                <Show when=move || model.with(|m| m.nodes.is_empty())>
                    <p class="empty" data-testid="graph-empty">
                        "No services: nothing is registered and no service answers $SRV."
                    </p>
                </Show>
            </div>
            <p class="legend small muted">
                <span class="legend-item"><span class="graph-key healthy"></span>"healthy"</span>
                <span class="legend-item">
                    <span class="graph-key unhealthy"></span>
                    "unhealthy (stale heartbeat, server errors in the last minute)"
                </span>
                <span class="legend-item"><span class="graph-key ghost"></span>"missing dependency"</span>
                <span class="legend-item"><span class="graph-key-arrow">"→"</span>"depends on"</span>
            </p>
        </section>
        {move || selected.get().map(|name| view! { <NodeDetails name model now selected/> })}
    }
}

#[component]
fn GraphNode(
    name: String,
    model: Memo<Model>,
    placed: Memo<Layout>,
    selected: RwSignal<Option<String>>,
) -> impl IntoView {
    let shown = {
        let name = name.clone();
        Memo::new(move |_| {
            let at = placed.with(|l| l.nodes.get(&name).copied())?;
            model
                .with(|m| m.node(&name).cloned())
                .map(|node| (node, at))
        })
    };
    let state = move || shown.with(|s| s.as_ref().map_or("ghost", |(n, _)| n.state()));
    let at = move || {
        shown.with(|s| {
            s.as_ref().map_or(
                Placed {
                    x: 0.0,
                    y: 0.0,
                    width: 0.0,
                    height: 0.0,
                },
                |(_, at)| *at,
            )
        })
    };
    let is_selected = {
        let name = name.clone();
        move || selected.with(|s| s.as_deref() == Some(name.as_str()))
    };
    let pick = {
        let name = name.clone();
        move || {
            selected.update(|s| {
                *s = if s.as_deref() == Some(name.as_str()) {
                    None
                } else {
                    Some(name.clone())
                }
            })
        }
    };
    let on_key = {
        let pick = pick.clone();
        let is_selected = is_selected.clone();
        move |ev: KeyboardEvent| {
            if ev.key() == "Enter" || ev.key() == " " {
                ev.prevent_default();
                pick();
            } else if ev.key() == "Escape" && is_selected() {
                selected.set(None);
            }
        }
    };
    let sub = move || shown.with(|s| s.as_ref().map(|(n, _)| n.caption()).unwrap_or_default());
    let aria = move || {
        shown.with(|s| {
            s.as_ref()
                .map(|(node, _)| {
                    format!(
                        "{}: {}, {} dependencies. Show details",
                        node.name,
                        if node.is_ghost() {
                            "missing"
                        } else {
                            node.state()
                        },
                        node.deps.len()
                    )
                })
                .unwrap_or_default()
        })
    };
    view! {
        <g
            class="graph-node"
            class:healthy=move || state() == "healthy"
            class:unhealthy=move || state() == "unhealthy"
            class:ghost=move || state() == "ghost"
            class:selected=is_selected.clone()
            data-testid="graph-node"
            data-name=name.clone()
            data-state=state
            transform=move || {
                let at = at();
                format!("translate({:.1} {:.1})", at.x - at.width / 2.0, at.y - at.height / 2.0)
            }
            tabindex="0"
            role="button"
            aria-label=aria
            aria-pressed=move || if is_selected() { "true" } else { "false" }
            on:click=move |_| pick()
            on:keydown=on_key
        >
            <rect width=move || format!("{:.1}", at().width) height=move || format!("{:.1}", at().height) rx="9"></rect>
            <text class="graph-label" x=move || format!("{:.1}", at().width / 2.0) y="19">{label(&name)}</text>
            <text class="graph-sub" x=move || format!("{:.1}", at().width / 2.0) y="36">{sub}</text>
        </g>
    }
}

#[component]
fn NodeDetails(
    name: String,
    model: Memo<Model>,
    now: Signal<f64>,
    selected: RwSignal<Option<String>>,
) -> impl IntoView {
    let node = {
        let name = name.clone();
        Memo::new(move |_| model.with(|m| m.node(&name).cloned()))
    };
    let dependents = {
        let name = name.clone();
        Memo::new(move |_| model.with(|m| m.dependents(&name)))
    };
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }
    };
    view! {
        <section
            class="card graph-details"
            data-testid="graph-details"
            on:keydown={
                let name = name.clone();
                move |ev: KeyboardEvent| {
                    // Closed, and the keyboard goes back to the service it was opened from.
                    if super::escape_outside_fields(&ev) {
                        selected.set(None);
                        super::focus_back(".graph-node", &name);
                    }
                }
            }
        >
            <div class="card-head">
                <h2>{name.clone()}</h2>
                <button class="secondary" on:click=move |_| selected.set(None)>"Close"</button>
            </div>
            {move || match node.get() {
                None => view! { <p class="muted">"No longer in the graph."</p> }.into_any(),
                Some(n) => {
                    let state = n.state();
                    view! {
                        <dl class="facts">
                            <dt>"State"</dt>
                            <dd data-testid="graph-details-state">{state}</dd>
                            <dt>"Depends on"</dt>
                            <dd data-testid="graph-details-deps">{list(n.deps.clone())}</dd>
                            <dt>"Depended on by"</dt>
                            <dd>{move || list(dependents.get())}</dd>
                        </dl>
                        {(!n.problems.is_empty()).then(|| view! {
                            <ul class="graph-problems">
                                {n.problems.iter().map(|p| view! { <li>{p.clone()}</li> }).collect_view()}
                            </ul>
                        })}
                        {n.is_ghost().then(|| view! {
                            <p class="muted">"Named as a dependency, but neither registered nor answering $SRV."</p>
                        })}
                        {(!n.registrations.is_empty()).then(|| view! {
                            <h3>"Registrations"</h3>
                            <ul class="graph-facts">
                                {n.registrations.iter().map(|r| {
                                    let heartbeat = r.entry.heartbeat_at as f64;
                                    let text = format!("{} on {} (pid {}) · {}", r.key, r.entry.host, r.entry.pid, r.health.as_str());
                                    view! {
                                        <li>
                                            {text}
                                            {move || format!(" · last heartbeat {} ago", format_duration(now.get() - heartbeat))}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        })}
                        {(!n.instances.is_empty()).then(|| view! {
                            <h3>"Instances"</h3>
                            <ul class="graph-facts">
                                {n.instances.iter().map(|i| view! {
                                    <li>
                                        <code>{i.id.clone()}</code>
                                        {format!(" · {} · {} requests · {} errors", i.version, i.requests, i.errors)}
                                    </li>
                                }).collect_view()}
                            </ul>
                        })}
                    }
                    .into_any()
                }
            }}
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::components::directory::EndpointView;

    /// [`parts`] and [`pack`] at once.
    fn layout(model: &Model, room: f64) -> Layout {
        pack(&parts(model), room)
    }
    use nats_ws::service::{EndpointStats, Metadata};
    use process_control::RegistryEntry;

    fn reg(name: &str, tags: &[&str], health: Health) -> Registration {
        Registration {
            key: name.replace('/', "-"),
            revision: 1,
            name: name.into(),
            entry: RegistryEntry {
                name: name.into(),
                host: "box".into(),
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                ..Default::default()
            },
            health,
        }
    }

    fn service(name: &str, deps: Option<&str>, errors: u64) -> ServiceInstance {
        let mut metadata = Metadata::new();
        if let Some(d) = deps {
            metadata.insert("deps".into(), d.into());
        }
        ServiceInstance {
            name: name.into(),
            id: format!("{name}-1"),
            version: "1.0.0".into(),
            description: String::new(),
            metadata,
            started: None,
            endpoints: vec![EndpointView {
                name: "e".into(),
                subject: "e".into(),
                queue_group: "q".into(),
                metadata: Metadata::new(),
                stats: Some(EndpointStats {
                    name: "e".into(),
                    subject: "e".into(),
                    queue_group: "q".into(),
                    num_requests: 5,
                    num_errors: errors,
                    last_error: if errors > 0 {
                        "500:boom".into()
                    } else {
                        String::new()
                    },
                    processing_time: Duration::ZERO,
                    average_processing_time: Duration::ZERO,
                    data: None,
                }),
            }],
        }
    }

    fn edges(m: &Model) -> Vec<(&str, &str)> {
        m.edges
            .iter()
            .map(|e| (e.from.as_str(), e.to.as_str()))
            .collect()
    }

    fn states(m: &Model) -> Vec<(&str, &str)> {
        m.nodes
            .iter()
            .map(|n| (n.name.as_str(), n.state()))
            .collect()
    }

    #[test]
    fn tags_and_metadata_make_edges_and_missing_ones_ghosts() {
        let m = build_model(
            &[
                reg(
                    "org/api",
                    &["service:org/db", "service:org/cache", "depends:nats", "x"],
                    Health::Healthy,
                ),
                reg("org/db", &[], Health::Healthy),
                reg(
                    "org/cache",
                    &["service:org/db", "service: org/db "],
                    Health::Healthy,
                ),
                reg(
                    "org/web",
                    &["service:org/api", "service:org/gone"],
                    Health::Healthy,
                ),
            ],
            &[service("math", Some("org/db, , org/api,org/db"), 0)],
            |_, _| false,
        );
        assert_eq!(
            edges(&m),
            [
                ("math", "org/api"),
                ("math", "org/db"),
                ("org/api", "org/cache"),
                ("org/api", "org/db"),
                ("org/cache", "org/db"),
                ("org/web", "org/api"),
                ("org/web", "org/gone"),
            ]
        );
        assert_eq!(m.node("org/gone").map(Node::state), Some("ghost"));
        assert_eq!(m.node("org/gone").unwrap().caption(), "missing");
        assert_eq!(m.node("org/db").map(Node::state), Some("healthy"));
        assert_eq!(m.node("org/api").unwrap().deps, ["org/cache", "org/db"]);
        assert_eq!(m.dependents("org/db"), ["math", "org/api", "org/cache"]);
        assert_eq!(m.nodes.len(), 6);
        assert_eq!(m.left_out, 0);
    }

    #[test]
    fn stale_heartbeats_and_errors_are_unhealthy() {
        let m = build_model(
            &[
                reg("a", &[], Health::Stale),
                reg("b", &[], Health::Healthy),
                reg("b", &[], Health::Healthy),
            ],
            &[service("b", None, 0), service("c", None, 2)],
            |name, id| (name, id) == ("c", "c-1"),
        );
        assert_eq!(
            states(&m),
            [("a", "unhealthy"), ("b", "healthy"), ("c", "unhealthy")]
        );
        assert!(m.node("a").unwrap().problems[0].contains("stale heartbeat"));
        assert!(m.node("c").unwrap().problems[0]
            .contains("errors in the last minute (2 in all), last: 500:boom"));
        let b = m.node("b").unwrap();
        assert_eq!(b.caption(), "registry ×2 · 1 instance");
        assert_eq!(m.node("a").unwrap().caption(), "unhealthy · registry");
    }

    /// A user's call with the wrong fields (`{"a": 2}` to math.sum) got a 400, and /graph called
    /// math unhealthy for a minute.
    #[test]
    fn errors_of_the_callers_making_leave_a_node_healthy() {
        let mut bad_request = service("math", None, 5);
        for e in &mut bad_request.endpoints {
            if let Some(st) = e.stats.as_mut() {
                st.last_error = "400:bad request: missing field `x`".to_owned();
            }
        }
        let m = build_model(&[], &[bad_request], |_, _| true);
        assert_eq!(states(&m), [("math", "healthy")]);
        assert_eq!(m.node("math").unwrap().instances[0].errors, 5);
        assert!(by_the_caller("404:no such key"));
        for not in [
            "500:boom", "503:busy", "4:x", "40:x", "4000:x", "", "timeout",
        ] {
            assert!(!by_the_caller(not), "{not}");
        }
    }

    #[test]
    fn errors_count_for_a_minute_after_the_count_goes_up() {
        let mut trend = ErrorTrend::default();
        // Errors already there at first sight are of unknown age: not counted.
        trend.observe(&[service("c", None, 2)], 1_000.0);
        assert!(!trend.recent("c", "c-1", 1_000.0));
        trend.observe(&[service("c", None, 2)], 6_000.0);
        assert!(!trend.recent("c", "c-1", 6_000.0));
        // One more: counted from then, for a minute.
        trend.observe(&[service("c", None, 3)], 11_000.0);
        assert!(trend.recent("c", "c-1", 11_000.0));
        trend.observe(&[service("c", None, 3)], 70_000.0);
        assert!(trend.recent("c", "c-1", 70_999.0));
        assert!(!trend.recent("c", "c-1", 71_000.0));
        let m = build_model(&[], &[service("c", None, 3)], |name, id| {
            trend.recent(name, id, 71_000.0)
        });
        assert_eq!(states(&m), [("c", "healthy")]);
        assert_eq!(m.node("c").unwrap().instances[0].errors, 3);
        // A round without its stats is not a drop to zero (and the next a rise).
        let mut no_stats = service("c", None, 0);
        no_stats.endpoints[0].stats = None;
        trend.observe(&[no_stats], 72_000.0);
        trend.observe(&[service("c", None, 3)], 73_000.0);
        assert!(!trend.recent("c", "c-1", 73_000.0));
        // Another service with the same instance id is another instance.
        let mut d = service("d", None, 1);
        d.id = "c-1".into();
        trend.observe(&[service("c", None, 3), d.clone()], 74_000.0);
        trend.observe(&[service("c", None, 3), d], 75_000.0);
        assert!(!trend.recent("c", "c-1", 75_000.0));
        assert!(!trend.recent("d", "c-1", 75_000.0));
        // An instance gone is forgotten; one seen again is new.
        trend.observe(&[], 76_000.0);
        trend.observe(&[service("c", None, 5)], 77_000.0);
        assert!(!trend.recent("c", "c-1", 77_000.0));
    }

    #[test]
    fn a_service_depending_on_itself_has_no_edge() {
        let m = build_model(&[reg("a", &["service:a"], Health::Healthy)], &[], |_, _| {
            false
        });
        assert!(m.edges.is_empty());
        assert_eq!(states(&m), [("a", "healthy")]);
    }

    #[test]
    fn labels_are_cut() {
        assert_eq!(label("org/api"), "org/api");
        let long = "x".repeat(40);
        assert_eq!(label(&long).chars().count(), LABEL_CHARS);
        assert!(label(&long).ends_with('…'));
    }

    #[test]
    fn cycles_are_broken_for_the_layout() {
        let e = acyclic_edges(3, &[(0, 1), (1, 2), (2, 0), (1, 0), (0, 0), (0, 9)]);
        // Every pair once, no loop, and a topological order exists.
        let mut order = Vec::new();
        let mut indegree = [0; 3];
        for &(_, b) in &e {
            indegree[b as usize] += 1;
        }
        let mut ready: Vec<u32> = (0..3).filter(|&v| indegree[v as usize] == 0).collect();
        while let Some(v) = ready.pop() {
            order.push(v);
            for &(a, b) in &e {
                if a == v {
                    indegree[b as usize] -= 1;
                    if indegree[b as usize] == 0 {
                        ready.push(b);
                    }
                }
            }
        }
        assert_eq!(order.len(), 3, "acyclic: {e:?}");
        assert!(e.iter().all(|(a, b)| a != b));
    }

    /// A small xorshift, so the generated graphs are the same on every run.
    fn rng(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        }
    }

    #[test]
    fn any_graph_is_laid_out_with_every_node_apart() {
        let mut next = rng(0x5eed);
        for _ in 0..300 {
            let n = 1 + next(30) as usize;
            let names: Vec<String> = (0..n).map(|i| format!("svc-{i}")).collect();
            let registrations: Vec<Registration> = names
                .iter()
                .map(|name| {
                    let tags: Vec<String> = (0..next(4))
                        .map(|_| format!("service:svc-{}", next(n as u64 + 3)))
                        .collect();
                    let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
                    reg(name, &tags, Health::Healthy)
                })
                .collect();
            let m = build_model(&registrations, &[], |_, _| false);
            let parts = parts(&m);
            let widest = parts.iter().map(|p| p.width).fold(0.0, f64::max);
            for room in [f64::INFINITY, 360.0, 900.0] {
                let l = pack(&parts, room);
                assert_eq!(l.nodes.len(), m.nodes.len());
                assert!(
                    l.width <= room.max(widest + 2.0 * MARGIN) + 0.5,
                    "{} in {room}",
                    l.width
                );
                let boxes: Vec<&Placed> = l.nodes.values().collect();
                for (i, a) in boxes.iter().enumerate() {
                    assert!(a.x - a.width / 2.0 >= 0.0 && a.x + a.width / 2.0 <= l.width + 0.5);
                    assert!(a.y - a.height / 2.0 >= 0.0 && a.y + a.height / 2.0 <= l.height + 0.5);
                    for b in &boxes[i + 1..] {
                        let apart = (a.x - b.x).abs() >= (a.width + b.width) / 2.0
                            || (a.y - b.y).abs() >= (a.height + b.height) / 2.0;
                        assert!(apart, "overlap: {a:?} {b:?}");
                    }
                }
            }
        }
    }

    /// Four services that depend on nothing were drawn side by side: 2 of them seen at 390 px.
    /// In a narrow room the parts wrap into rows that fit it; in a wide one they stay a row.
    #[test]
    fn parts_wrap_into_rows_that_fit_the_room() {
        let names = ["math", "process-control", "sensor", "greeter"];
        let registrations: Vec<Registration> = names
            .iter()
            .map(|name| reg(name, &[], Health::Healthy))
            .collect();
        let m = build_model(&registrations, &[], |_, _| false);
        let wide = layout(&m, f64::INFINITY);
        let ys: BTreeSet<i64> = wide.nodes.values().map(|p| p.y as i64).collect();
        assert_eq!(ys.len(), 1, "one row: {wide:?}");
        assert!(wide.width > 390.0);
        let narrow = layout(&m, 358.0);
        assert!(narrow.width <= 358.0, "{narrow:?}");
        let rows: BTreeSet<i64> = narrow.nodes.values().map(|p| p.y as i64).collect();
        assert!(rows.len() >= 2, "{narrow:?}");
        assert_eq!(narrow.nodes.len(), 4);
    }

    #[test]
    fn dependencies_sit_below_their_dependents() {
        let m = build_model(
            &[
                reg("a", &["service:b"], Health::Healthy),
                reg("b", &["service:c"], Health::Healthy),
                reg("c", &[], Health::Healthy),
            ],
            &[],
            |_, _| false,
        );
        let l = layout(&m, f64::INFINITY);
        let y = |n: &str| l.nodes[n].y;
        assert!(y("a") < y("b") && y("b") < y("c"));
        assert!(edge_path(l.nodes["a"], l.nodes["b"]).starts_with("M "));
    }

    #[test]
    fn too_many_nodes_are_left_out_with_their_edges() {
        let registrations: Vec<Registration> = (0..MAX_NODES + 5)
            .map(|i| reg(&format!("s{i:04}"), &["service:s0000"], Health::Healthy))
            .collect();
        let m = build_model(&registrations, &[], |_, _| false);
        assert_eq!(m.nodes.len(), MAX_NODES);
        assert_eq!(m.left_out, 5);
        assert_eq!(m.edges.len(), MAX_NODES - 1);
    }
}
