//! The app: a Leptos single-page app in which every tab stays in sync through NATS.
//!
//! `App` provides the connection (`leptos_nats::provide_nats`), the tab's identity and the
//! notifications, lays out the header and routes to one page per file under `pages/`. Pages speak
//! in hooks and domain types (`model`), never in bytes.

mod components;
pub mod model;
mod pages;
pub mod session;
mod sort;

use leptos::prelude::*;
use leptos_router::components::{Redirect, Route, Router, Routes, A};
use leptos_router::{path, Lazy};

use components::header::Header;
use components::theme::ThemeSync;
use components::toasts::provide_toasts;

/// The tab's identity (`user-xxxx` or the name the user chose), shared by every page.
#[derive(Clone, Copy)]
pub struct Identity(pub RwSignal<String>);

pub fn use_identity() -> RwSignal<String> {
    expect_context::<Identity>().0
}

/// The app's pages, in navigation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Dashboard,
    Chat,
    Counter,
    Config,
    Themes,
    Workers,
    Monitor,
    Streams,
    Kv,
    Services,
    Graph,
    Processes,
    Scale,
    Server,
    Playground,
}

/// The navigation's two groups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Demos,
    Console,
    Playground,
}

impl Group {
    pub const ALL: [Group; 3] = [Group::Demos, Group::Console, Group::Playground];

    pub fn title(self) -> &'static str {
        match self {
            Group::Demos => "Demos",
            Group::Console => "Console",
            Group::Playground => "Playground",
        }
    }
}

impl Page {
    pub const ALL: [Page; 15] = [
        Page::Dashboard,
        Page::Chat,
        Page::Counter,
        Page::Config,
        Page::Themes,
        Page::Workers,
        Page::Monitor,
        Page::Streams,
        Page::Kv,
        Page::Services,
        Page::Graph,
        Page::Processes,
        Page::Scale,
        Page::Server,
        Page::Playground,
    ];

    pub fn group(self) -> Group {
        match self {
            Page::Dashboard
            | Page::Chat
            | Page::Counter
            | Page::Config
            | Page::Themes
            | Page::Workers => Group::Demos,
            Page::Playground => Group::Playground,
            _ => Group::Console,
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Page::Dashboard => "/",
            Page::Chat => "/chat",
            Page::Counter => "/counter",
            Page::Config => "/config",
            Page::Themes => "/themes",
            Page::Workers => "/workers",
            Page::Monitor => "/monitor",
            Page::Streams => "/streams",
            Page::Kv => "/kv",
            Page::Services => "/nats",
            Page::Graph => "/graph",
            Page::Processes => "/processes",
            Page::Scale => "/scale",
            Page::Server => "/server",
            Page::Playground => "/playground",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Page::Dashboard => "Users",
            Page::Chat => "Chat",
            Page::Counter => "Counter",
            Page::Config => "Config",
            Page::Themes => "Themes",
            Page::Workers => "Workers",
            Page::Monitor => "Monitor",
            Page::Streams => "Streams",
            Page::Kv => "KV",
            Page::Services => "Services",
            Page::Graph => "Graph",
            Page::Processes => "Processes",
            Page::Scale => "Scale",
            Page::Server => "Server",
            Page::Playground => "Experiments",
        }
    }
}

/// How long after the start the lazy pages' code (`pages::lazy`) is fetched: after the first page,
/// out of the way of its start.
const PRELOAD_AFTER: std::time::Duration = std::time::Duration::from_secs(2);

/// The user.* notes: a few at once, then at most one a second (a token bucket), so that everyday
/// changes each get their note and a burst (a script creating thousands of users) is one note
/// a second, "n user changes; the last: …", instead of one each.
struct UserNotes {
    /// Notes that may be shown now, up to [`UserNotes::BURST`], refilled one a second.
    tokens: f64,
    /// When `tokens` was last brought up to date (`clock::monotonic_ms`).
    at: f64,
    held: u32,
    latest: String,
    flush_due: bool,
}

impl Default for UserNotes {
    fn default() -> Self {
        UserNotes {
            tokens: Self::BURST,
            at: components::clock::monotonic_ms(),
            held: 0,
            latest: String::new(),
            flush_due: false,
        }
    }
}

impl UserNotes {
    const BURST: f64 = 3.0;
    const EVERY_MS: f64 = 1000.0;

    fn refill(&mut self, now: f64) {
        let gained = (now - self.at).max(0.0) / Self::EVERY_MS;
        self.tokens = (self.tokens + gained).min(Self::BURST);
        self.at = now;
    }

    fn note(
        notes: StoredValue<UserNotes, LocalStorage>,
        toasts: components::toasts::Toasts,
        text: String,
    ) {
        let now = components::clock::monotonic_ms();
        let wait = notes.try_update_value(|n| {
            n.refill(now);
            if n.held == 0 && n.tokens >= 1.0 {
                n.tokens -= 1.0;
                return Err(text);
            }
            n.held += 1;
            n.latest = text;
            let schedule = !std::mem::replace(&mut n.flush_due, true);
            Ok(schedule.then(|| ((1.0 - n.tokens) * Self::EVERY_MS).max(0.0)))
        });
        match wait {
            Some(Err(text)) => toasts.push(text),
            Some(Ok(Some(ms))) => set_timeout(
                move || Self::flush(notes, toasts),
                std::time::Duration::from_millis(ms.ceil() as u64),
            ),
            _ => {}
        }
    }

    fn flush(notes: StoredValue<UserNotes, LocalStorage>, toasts: components::toasts::Toasts) {
        let text = notes.try_update_value(|n| {
            n.flush_due = false;
            n.refill(components::clock::monotonic_ms());
            n.tokens -= 1.0;
            let latest = std::mem::take(&mut n.latest);
            match std::mem::take(&mut n.held) {
                0 => None,
                1 => Some(latest),
                held => Some(format!("{held} user changes; the last: {latest}")),
            }
        });
        if let Some(Some(text)) = text {
            toasts.push(text);
        }
    }
}

/// The skip link moves the keyboard's focus to the page itself (a fragment link would go through
/// the router).
fn skip_to_main(ev: leptos::ev::MouseEvent) {
    use wasm_bindgen::JsCast;
    ev.prevent_default();
    let main = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("main"))
        .and_then(|m| m.dyn_into::<web_sys::HtmlElement>().ok());
    if let Some(main) = main {
        let _ = main.focus();
    }
}

#[component]
pub fn App() -> impl IntoView {
    let (settings, sign_in_as) = session::Settings::load().for_new_tab();
    settings.mark_applied();
    leptos_nats::provide_nats(settings.options());
    // A refusal in a hook's error (a bucket this user may not read, say) in the user's terms.
    leptos_nats::use_nats().word_errors_with(session::explain);
    provide_context(Identity(RwSignal::new(session::load_identity())));
    // Before any page: clicks on /counter outlive the page.
    pages::demos::counter::provide_counter_clicks();
    pages::demos::chat::provide_chat_outbox();
    pages::demos::config::provide_config_steps();
    let toasts = provide_toasts();
    components::busy_focus::keep_focus_through_busy_buttons();
    if let Some(user) = sign_in_as {
        toasts.push(format!(
            "The saved user {user} has no password in this tab (a password stays in the tab it was typed in, unless remembered): this tab connects as the default user. Sign in as {user} in ⚙ to be {user} here."
        ));
        session::set_user_to_sign_in(Some(user));
    }
    // The lazy pages' code, in the background once this page is on screen: opening one is then
    // instant, also when the app's server has gone away meanwhile. Done, `<html>` says so in
    // `data-preloaded` ("all", or "partial" if a module could not be fetched): the tests and the
    // benchmark wait for it before they measure a tab at rest.
    leptos_nats::spawn_while_mounted(async {
        gloo_timers::future::sleep(PRELOAD_AFTER).await;
        let all = pages::lazy::preload_all().await;
        if let Some(html) = document().document_element() {
            let _ = html.set_attribute("data-preloaded", if all { "all" } else { "partial" });
        }
    });
    // Any user.* event, from this app or any other client, once (dedup: 2 s), in a note of its
    // own unless they come faster than a few a second (`UserNotes`).
    let user_notes = StoredValue::new_local(UserNotes::default());
    let events_refused = leptos_nats::use_subscription_with_options(
        "user.*",
        nats_ws::SubscribeOptions::default().dedup(std::time::Duration::from_secs(2)),
        move |m| {
            UserNotes::note(
                user_notes,
                toasts,
                model::describe_user_event(&m.subject, &m.payload),
            )
        },
    );
    // Signed in as a user who may not read them: say so, once per refusal.
    Effect::new(move |_| {
        if let Some(error) = events_refused.get() {
            toasts.push(format!(
                "User notifications are off: {}",
                session::explain(error)
            ));
        }
    });
    // A plain publish the server refused has no request to fail: say so here, once per subject
    // in a minute (something publishing every second would otherwise bury the page in notes).
    let nats = leptos_nats::use_nats();
    Effect::new(move |_| {
        if let Some(client) = nats.client.get() {
            leptos_nats::spawn_while_mounted(async move {
                use futures::StreamExt as _;
                let mut said: std::collections::HashMap<String, f64> = Default::default();
                let mut events = client.events();
                while let Some(event) = events.next().await {
                    let nats_ws::ClientEvent::ServerError(error) = event else {
                        continue;
                    };
                    let nats_ws::ServerError::PublishDenied { subject } = &error else {
                        continue;
                    };
                    let now = components::clock::monotonic_ms();
                    if said.get(subject).is_some_and(|at| now - at < 60_000.0) {
                        continue;
                    }
                    said.retain(|_, at| now - *at < 60_000.0);
                    said.insert(subject.clone(), now);
                    toasts.push(session::explain(&error));
                }
            });
        }
    });

    view! {
        <Router>
            <ThemeSync/>
            <pages::demos::chat::ChatSender/>
            // The first stop of the Tab key: past the header's links, to the page.
            <a class="skip-link" href="#main" data-testid="skip-link" on:click=skip_to_main>
                "Skip to content"
            </a>
            <Header/>
            <main class="page" id="main" tabindex="-1">
                <Routes fallback=|| view! { <NotFound/> }>
                    <Route path=path!("/") view=pages::demos::dashboard::Dashboard/>
                    <Route path=path!("/chat") view={Lazy::<pages::lazy::ChatRoute>::new()}/>
                    <Route path=path!("/counter") view=pages::demos::counter::CounterPage/>
                    <Route path=path!("/config") view=pages::demos::config::ConfigPage/>
                    <Route path=path!("/themes") view=pages::demos::themes::ThemesPage/>
                    <Route path=path!("/workers") view={Lazy::<pages::lazy::WorkersRoute>::new()}/>
                    <Route path=path!("/monitor") view={Lazy::<pages::lazy::MonitorRoute>::new()}/>
                    <Route path=path!("/streams") view={Lazy::<pages::lazy::StreamsRoute>::new()}/>
                    <Route path=path!("/kv") view={Lazy::<pages::lazy::KvRoute>::new()}/>
                    <Route path=path!("/nats") view={Lazy::<pages::lazy::ServicesRoute>::new()}/>
                    // Where a user who reads "Services" in the menu looks for it; in place of
                    // the address typed, so that Back leaves it.
                    <Route
                        path=path!("/services")
                        view=|| {
                            let options = leptos_router::NavigateOptions {
                                replace: true,
                                ..Default::default()
                            };
                            view! { <Redirect path="/nats" options/> }
                        }
                    />
                    <Route path=path!("/graph") view={Lazy::<pages::lazy::GraphRoute>::new()}/>
                    <Route path=path!("/processes") view={Lazy::<pages::lazy::ProcessesRoute>::new()}/>
                    <Route path=path!("/scale") view={Lazy::<pages::lazy::ScaleRoute>::new()}/>
                    <Route path=path!("/server") view={Lazy::<pages::lazy::ServerRoute>::new()}/>
                    <Route path=path!("/playground") view={Lazy::<pages::lazy::PlaygroundRoute>::new()}/>
                </Routes>
            </main>
        </Router>
    }
}

#[component]
fn NotFound() -> impl IntoView {
    view! {
        <section class="card empty">
            <h1>"Nothing here"</h1>
            <p>"This page does not exist. "<A href="/">"Back to the users"</A></p>
        </section>
    }
}
