//! The console: pages that show and steer the server and what runs next to it — the message
//! monitor, JetStream streams, KV buckets, NATS services and their dependency graph, the
//! processes via-agent supervises and the leaf nodes it starts. Everything comes from NATS itself
//! (subscriptions, the JetStream API, `$SRV`, KV watches), so every page works with nothing but the
//! browser and nats-server, and all tabs agree. One page per file.

pub mod bidi;
pub mod graph;
pub mod kv;
pub mod monitor;
pub mod processes;
pub mod scale;
pub mod server;
pub mod services;
pub mod streams;
mod subjects;

use leptos::prelude::*;

/// What a page that reads `what` again by itself (every few seconds, and once connected) says of
/// a read that failed with `e`: without a connection, that it waits for one (the client's own
/// "retry once connected" is for callers that must retry themselves); a refusal in the user's
/// terms (which name what was refused); else the error.
fn read_failed(what: &str, e: &impl std::fmt::Display) -> String {
    let text = e.to_string();
    let explained = crate::session::explain(&text);
    if never_sent(&text) {
        format!("{what}: no connection to the server; read again once it is back")
    } else if explained != text {
        explained
    } else {
        format!("{what}: {text}")
    }
}

/// Whether an error's `text` says nothing was sent for want of a connection (a request refused
/// before sending, `RequestError::NotConnected`; a JetStream publish never sent, `NotSent`).
fn never_sent(text: &str) -> bool {
    text.contains("not connected to the server")
        || text.starts_with("not sent: no connection to the server")
}

/// Says in `said` that `action` (`could not create stream DRAFTS`) failed with `e`. When nothing
/// was sent for want of a connection: that, without the API subject it was for, and once
/// connected again that it can be tried now — the client's "… retry once connected" stayed on
/// the form after "Live" (a user's trial). Else the error, explained.
fn say_failed(
    said: RwSignal<Option<String>>,
    client: &nats_ws::Client,
    action: &str,
    e: &impl std::fmt::Display,
) {
    let text = e.to_string();
    if !never_sent(&text) {
        said.set(Some(crate::session::explain(format!("{action}: {text}"))));
        return;
    }
    let away = format!(
        "{action}: not connected to the server, so nothing was sent; try again once connected"
    );
    said.set(Some(away.clone()));
    let back = format!(
        "{action}: nothing was sent while the server was away; connected again, so it can be tried now"
    );
    let client = client.clone();
    leptos_nats::spawn_while_mounted(async move {
        let still =
            || said.try_with_untracked(|s| s.as_deref() == Some(away.as_str())) == Some(true);
        if client.wait_connected().await.is_ok() && still() {
            said.try_set(Some(back));
        }
    });
}

/// The open item of a page (a bucket, a stream), for the page to keep across a change of
/// connection: signing in as admin after a refusal rebuilds what hangs on the client, not this.
/// `clear` empties what was typed for the item whenever another one is opened.
///
/// The item is in the address too (`?<param>=<name>`): a reload opens it again, a link opens it,
/// and Back closes it (or opens the one before).
fn kept_selection(param: &'static str, clear: impl Fn() + 'static) -> RwSignal<Option<String>> {
    use leptos_router::hooks::{use_location, use_navigate, use_query_map};
    use leptos_router::NavigateOptions;
    let query = use_query_map();
    let location = use_location();
    let navigate = use_navigate();
    let named = move |q: &leptos_router::params::ParamsMap| q.get(param).filter(|n| !n.is_empty());
    let selected = RwSignal::new(query.with_untracked(named));
    Effect::new(move |before: Option<Option<String>>| {
        let now = selected.get();
        if before.as_ref().is_some_and(|b| *b != now) {
            clear();
        }
        if query.with_untracked(named) != now {
            let path = location.pathname.get_untracked();
            let address = match &now {
                Some(name) => format!(
                    "{path}?{param}={}",
                    percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
                ),
                None => path,
            };
            navigate(
                &address,
                NavigateOptions {
                    scroll: false,
                    ..Default::default()
                },
            );
        }
        now
    });
    // Back and Forward: the page follows the address.
    Effect::new(move |_| {
        let asked = query.with(named);
        if selected.get_untracked() != asked {
            selected.set(asked);
        }
    });
    selected
}

/// Gives the focus back to the element of `selector` whose `data-name` is `name` (the row or node
/// a closed part was opened from), if it is still there. Compared, not put in the selector: a
/// name may hold any character.
fn focus_back(selector: &str, name: &str) {
    use wasm_bindgen::JsCast;
    let Some(found) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.query_selector_all(selector).ok())
    else {
        return;
    };
    let named = (0..found.length())
        .filter_map(|i| found.item(i)?.dyn_into::<web_sys::Element>().ok())
        .find(|e| e.get_attribute("data-name").as_deref() == Some(name));
    // An HTML button or an SVG node: both focusable, neither the other's type.
    match named.map(|e| e.dyn_into::<web_sys::HtmlElement>()) {
        Some(Ok(html)) => drop(html.focus()),
        Some(Err(other)) => {
            if let Ok(svg) = other.dyn_into::<web_sys::SvgElement>() {
                let _ = svg.focus();
            }
        }
        None => {}
    }
}

/// Whether a key pressed in `ev` is Escape pressed outside a field (where Escape belongs to the
/// field, and closing would empty what was typed for the part).
fn escape_outside_fields(ev: &leptos::ev::KeyboardEvent) -> bool {
    use wasm_bindgen::JsCast;
    ev.key() == "Escape"
        && !ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"))
}
