//! The header on every page: navigation, connection status, identity, settings.

use leptos::prelude::*;
use leptos_nats::use_nats;
use leptos_router::components::A;
use nats_ws::{ConnectionError, Status};

use crate::components::toasts::{ToastHost, Toasts};
use crate::session::{save_identity, Settings};
use crate::{use_identity, Group, Page};

#[component]
pub fn Header() -> impl IntoView {
    let settings_open = RwSignal::new(false);
    let gear = NodeRef::<leptos::html::Button>::new();
    let was_live = was_live();
    // Closing gives the focus back to the button that opened the dialog.
    let close_settings = move || {
        settings_open.set(false);
        if let Some(button) = gear.get_untracked() {
            let _ = button.focus();
        }
    };
    view! {
        <header class="topbar">
            <div class="brand">
                <span class="logo" aria-hidden="true">"◆"</span>
                <span class="brand-name">"VIA"</span>
                <span class="brand-sub">"live over NATS"</span>
            </div>
            <nav class="nav" aria-label="Pages">
                {Group::ALL
                    .into_iter()
                    .map(|group| {
                        view! {
                            <div class="nav-group" role="group" aria-label=group.title()>
                                <span class="nav-group-title" aria-hidden="true">
                                    {group.title()}
                                </span>
                                {Page::ALL
                                    .into_iter()
                                    .filter(|p| p.group() == group)
                                    .map(|p| view! { <A href=p.path() exact=true>{p.title()}</A> })
                                    .collect_view()}
                            </div>
                        }
                    })
                    .collect_view()}
            </nav>
            <div class="session">
                <StatusBadge was_live/>
                <IdentityField/>
                <button
                    class="icon-button"
                    title="Connection settings"
                    aria-label="Connection settings"
                    aria-haspopup="dialog"
                    aria-expanded=move || settings_open.get().to_string()
                    node_ref=gear
                    on:click=move |_| settings_open.update(|o| *o = !*o)
                >
                    "⚙"
                </button>
            </div>
            <StatusWhy was_live/>
            // Hung from the bottom of the sticky bar, however many rows its navigation wraps to:
            // never over a link, and in view wherever the page is scrolled.
            <ToastHost/>
        </header>
        <Show when=move || settings_open.get()>
            <SettingsPanel close=close_settings/>
        </Show>
    }
}

/// The client's error, plus what it means for this app's own development server (the library does
/// not know our ports and scripts).
fn with_hint(e: &ConnectionError) -> String {
    match e {
        ConnectionError::Transport { .. } | ConnectionError::Timeout { .. } => format!(
            "{e} — the development server: bash nats.sh start (a cluster: bash nats.sh cluster start), WebSocket port 8080 (⚙ to change)"
        ),
        ConnectionError::NotNats { .. } => {
            format!("{e} — this app's server speaks WebSocket on port 8080, not 4222 (⚙ to change)")
        }
        // Said for what this tab signed in with, rather than every kind of credentials there is.
        ConnectionError::AuthorizationViolation => {
            let applied = crate::session::Settings::applied();
            let refused = if !applied.token.is_empty() {
                "this token".to_owned()
            } else if !applied.user.is_empty() {
                format!("user {} with this password", applied.user)
            } else {
                "the default user (no user, no token)".to_owned()
            };
            format!(
                "the server refused {refused}: check them in ⚙ (admin's password is printed by \
                 bash nats.sh status; with no user and no token the tab is the browser user)"
            )
        }
        _ => e.to_string(),
    }
}

/// A duration in milliseconds with one decimal, rounded: `0.4`, `12.0`. Integer arithmetic: `{:.1}`
/// of an `f64` would bring `core`'s float printing (about 10 KB) into the main module for this
/// one text.
fn millis_to_tenths(d: std::time::Duration) -> String {
    let tenths = d.as_micros().saturating_add(50) / 100;
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// Whether the tab's client has been connected: until then its tries are not "Reconnecting". A
/// client made anew (settings applied) starts over.
fn was_live() -> Signal<bool> {
    let nats = use_nats();
    let was_live = RwSignal::new(false);
    Effect::new(move |_| {
        nats.client.track();
        was_live.set(false);
    });
    Effect::new(move |_| {
        if matches!(nats.status.get(), Status::Connected { .. }) {
            was_live.set(true);
        }
    });
    was_live.into()
}

/// What the tries of a client are called: "Reconnecting" once it has been connected.
fn trying(was_live: bool) -> &'static str {
    if was_live {
        "Reconnecting"
    } else {
        "Connecting"
    }
}

/// Why there is no connection, as text anyone can read (not only on hover): once the client has
/// given up (Offline), or a reconnection has failed a few times (a server restart takes one or
/// two attempts, and says nothing).
#[component]
fn StatusWhy(was_live: Signal<bool>) -> impl IntoView {
    let nats = use_nats();
    let why = move || match nats.status.get() {
        Status::Offline { last_error } => Some(format!("Offline: {}", with_hint(&last_error))),
        Status::Reconnecting {
            attempt,
            last_error: Some(e),
            ..
        } if attempt >= 3 => Some(format!("{}: {}", trying(was_live.get()), with_hint(&e))),
        _ => None,
    };
    view! {
        <p class="status-why" role="status" data-testid="status-why" hidden=move || why().is_none()>
            {why}
        </p>
    }
}

/// Live / Reconnecting (N) / Offline, with the details on hover.
#[component]
fn StatusBadge(was_live: Signal<bool>) -> impl IntoView {
    let nats = use_nats();
    let label = move || match nats.status.get() {
        Status::Connected { .. } => "Live".to_owned(),
        Status::Reconnecting { attempt, .. } => format!("{} ({attempt})", trying(was_live.get())),
        Status::Offline { .. } => "Offline".to_owned(),
        Status::Connecting => "Connecting…".to_owned(),
        _ => "Closed".to_owned(),
    };
    let class = move || match nats.status.get() {
        Status::Connected { .. } => "badge live",
        Status::Reconnecting { .. } | Status::Connecting => "badge reconnecting",
        _ => "badge offline",
    };
    let detail = move || match nats.status.get() {
        Status::Connected {
            server_name,
            version,
            rtt,
            url,
        } => {
            format!(
                "{server_name} (nats-server {version}) at {url} · RTT {} ms",
                millis_to_tenths(rtt)
            )
        }
        Status::Reconnecting {
            last_error: Some(e),
            ..
        } => with_hint(&e),
        Status::Reconnecting { .. } if was_live.get() => "reconnecting".to_owned(),
        Status::Reconnecting { .. } => "connecting".to_owned(),
        Status::Offline { last_error } => with_hint(&last_error),
        Status::Connecting => "connecting".to_owned(),
        _ => "closed".to_owned(),
    };
    let offline = move || matches!(nats.status.get(), Status::Offline { .. });
    // Announced when the state changes, not at every reconnect attempt or RTT update.
    let state = Memo::new(move |_| match nats.status.get() {
        Status::Connected { .. } => "live",
        Status::Reconnecting { .. } if was_live.get() => "reconnecting",
        Status::Reconnecting { .. } | Status::Connecting => "connecting",
        Status::Offline { .. } => "offline",
        _ => "closed",
    });
    let toasts = expect_context::<Toasts>();
    Effect::new(move |previous: Option<&'static str>| {
        let now = state.get();
        if previous.is_some_and(|p| p != now) {
            toasts.announce(format!("Connection {now}"));
        }
        now
    });
    view! {
        <div class="status">
            <span class=class data-testid="status" title=detail>
                <span class="dot" aria-hidden="true"></span>
                {label}
            </span>
            // Not when the settings made no client at all (refused at the start): ⚙ is the way.
            <Show when=move || offline() && nats.client.with(Option::is_some)>
                <button class="link-button" on:click=move |_| nats.reconnect_now()>
                    "Reconnect now"
                </button>
            </Show>
        </div>
    }
}

/// The tab's name, editable; kept per tab.
#[component]
fn IdentityField() -> impl IntoView {
    let identity = use_identity();
    view! {
        <label class="identity" title="Your name in this tab">
            <span class="sr-only">"Your name"</span>
            <input
                data-testid="identity"
                maxlength="40"
                prop:value=move || identity.get()
                on:change=move |ev| {
                    let name = event_target_value(&ev).trim().to_owned();
                    if !name.is_empty() {
                        save_identity(&name);
                        identity.set(name);
                    }
                }
            />
        </label>
    }
}

#[component]
fn SettingsPanel(close: impl Fn() + Clone + Send + Sync + 'static) -> impl IntoView {
    let nats = use_nats();
    let current = Settings::applied();
    let servers = RwSignal::new(current.servers.clone());
    let name = RwSignal::new(current.name.clone());
    // A user this tab did not connect as, for want of the password: offered here, and not
    // applied without one (the server would refuse it, and the tab go Offline).
    let left_out = match current.user.is_empty() {
        true => crate::session::user_to_sign_in(),
        false => None,
    };
    let user = RwSignal::new(left_out.clone().unwrap_or_else(|| current.user.clone()));
    let password = RwSignal::new(current.password.clone());
    let token = RwSignal::new(current.token.clone());
    let remember = RwSignal::new(current.remember);
    // Why the last Apply was refused; the connection stays as it was.
    let refused = RwSignal::new(None::<String>);
    let apply = {
        let close = close.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let settings = Settings {
                servers: servers.get_untracked(),
                name: name.get_untracked(),
                user: user.get_untracked(),
                password: password.get_untracked(),
                token: token.get_untracked(),
                remember: remember.get_untracked(),
            };
            if left_out.as_deref() == Some(settings.user.as_str())
                && settings.password.is_empty()
                && settings.token.is_empty()
            {
                let who = &settings.user;
                refused.set(Some(format!(
                    "Type {who}'s password to sign in as {who}, or clear the user to stay the default user."
                )));
                return;
            }
            // Options that cannot make a connection keep the dialog open with the reason (shown
            // below) and the current connection as it is; nothing is saved.
            match nats.connect(settings.options()) {
                Ok(()) => {
                    settings.mark_applied();
                    settings.save();
                    close();
                }
                Err(why) => refused.set(Some(why)),
            }
        }
    };
    let reset = move |_| {
        let d = Settings::defaults();
        servers.set(d.servers);
        name.set(d.name);
        user.set(String::new());
        password.set(String::new());
        token.set(String::new());
        remember.set(false);
    };
    // A dialog: the focus moves into it when it opens, stays in it (Tab from its last button
    // goes to its first field, Shift+Tab from there to the last button), and Esc closes it.
    let first = NodeRef::<leptos::html::Input>::new();
    let last = NodeRef::<leptos::html::Button>::new();
    super::focus_when_mounted(first);
    let on_key = {
        let close = close.clone();
        move |ev: leptos::ev::KeyboardEvent| {
            if ev.key() == "Escape" {
                ev.prevent_default();
                close();
            } else if ev.key() == "Tab" {
                let (Some(first), Some(last)) = (first.get_untracked(), last.get_untracked())
                else {
                    return;
                };
                let active = document().active_element();
                let (from, to): (&web_sys::Element, &web_sys::HtmlElement) = match ev.shift_key() {
                    true => (&first, &last),
                    false => (&last, &first),
                };
                if active.as_ref() == Some(from) {
                    ev.prevent_default();
                    let _ = to.focus();
                }
            }
        }
    };
    view! {
        <form
            class="settings card"
            role="dialog"
            aria-modal="true"
            aria-labelledby="settings-title"
            on:submit=apply
            on:keydown=on_key
        >
            <h2 id="settings-title">"Connection"</h2>
            <label>
                "Server URLs (WebSocket, comma-separated)"
                <input bind:value=servers placeholder="ws://127.0.0.1:8080" node_ref=first/>
            </label>
            <label>"Connection name" <input bind:value=name/></label>
            <div class="row">
                <label>"User" <input bind:value=user autocomplete="username"/></label>
                <label>
                    "Password" <input type="password" bind:value=password autocomplete="current-password"/>
                </label>
            </div>
            <label>"Token" <input type="password" bind:value=token/></label>
            <label class="check">
                <input type="checkbox" data-testid="settings-remember" bind:checked=remember/>
                "Remember the password and token on this device"
            </label>
            <Show when=move || refused.get().or(nats.setup_error.get()).is_some()>
                <p class="error" role="alert" data-testid="settings-error">
                    {move || refused.get().or(nats.setup_error.get())}
                </p>
            </Show>
            <p class="hint">"Servers, name and user are saved in this browser; the password and token only for this tab's session, unless remembered. Applying reconnects every page of this tab."</p>
            <div class="actions">
                <button type="button" class="secondary" on:click=reset>"Defaults"</button>
                <button type="button" class="secondary" on:click=move |_| close()>"Cancel"</button>
                <button type="submit" node_ref=last>"Apply"</button>
            </div>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::millis_to_tenths;
    use std::time::Duration;

    #[test]
    fn round_trip_times_read_in_tenths_of_a_millisecond() {
        for (micros, text) in [
            (0, "0.0"),
            (49, "0.0"),
            (50, "0.1"),
            (412, "0.4"),
            (1_950, "2.0"),
            (12_345, "12.3"),
            (999_960, "1000.0"),
        ] {
            assert_eq!(
                millis_to_tenths(Duration::from_micros(micros)),
                text,
                "{micros} µs"
            );
        }
        // The longest duration there is does not overflow.
        assert_eq!(
            millis_to_tenths(Duration::from_secs(u64::MAX)),
            format!("{}.0", u128::from(u64::MAX) * 1000)
        );
    }
}
