//! `/server`: the servers themselves, live. Their statistics are the system account's, so the
//! page opens its own connection as the user `sys` (its password from `bash nats.sh status`,
//! typed here and kept for this tab's session only) and asks `$SYS.REQ.SERVER.PING.VARZ` every
//! 2 s while the tab is visible; every server of a cluster answers, one row each: version, uptime,
//! connections, subscriptions, messages and bytes in and out with their rates, JetStream use,
//! routes and leaf nodes. The app's own connection is not touched.

use std::collections::HashMap;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use leptos::prelude::*;
use leptos_nats::spawn_while_mounted;
use nats_ws::{Client, Status};

use crate::components::clock::{now_ms, time_of_day};
use crate::components::visibility::poll_while_visible;
use crate::model::{format_bytes, format_rate, parse_varz_reply, rate_per_second, Varz};
use crate::session::{self, Settings};

const PING: &str = "$SYS.REQ.SERVER.PING.VARZ";
/// How long the answers of all the servers are collected.
const COLLECT: Duration = Duration::from_millis(500);
const EVERY: Duration = Duration::from_secs(2);
const SYS_USER: &str = "sys";

/// One server's last reading, the one before (for the rates) and when each came.
#[derive(Clone, PartialEq)]
#[cfg_attr(test, derive(Debug))]
struct Row {
    now: Varz,
    before: Option<(Varz, f64)>,
    at: f64,
    /// Since when (ms) the server has not answered: its row stays, as it last was, for
    /// [`SILENT_KEPT_MS`] (a node of a cluster that died does not just vanish from the table).
    silent_since: Option<f64>,
}

/// How long a server that stopped answering keeps its row.
const SILENT_KEPT_MS: f64 = 10.0 * 60_000.0;

/// The rows after a round of answers (`found`, at `at`): each server that answered with its
/// reading before (for its rates), those that did not as they were, marked silent, by name.
fn merge_rows(previous: Vec<Row>, found: Vec<Varz>, at: f64) -> Vec<Row> {
    let mut previous: HashMap<String, Row> = previous
        .into_iter()
        .map(|r| (r.now.server_id.clone(), r))
        .collect();
    let mut next: Vec<Row> = found
        .into_iter()
        .map(|now| {
            let before = previous.remove(&now.server_id).map(|p| (p.now, p.at));
            Row {
                now,
                before,
                at,
                silent_since: None,
            }
        })
        .collect();
    // A server started again answers under a new id, with the same name: its old row goes.
    let answered: std::collections::HashSet<String> =
        next.iter().map(|r| r.now.server_name.clone()).collect();
    next.extend(previous.into_values().filter_map(|mut row| {
        let since = *row.silent_since.get_or_insert(at);
        let restarted = !row.now.server_name.is_empty() && answered.contains(&row.now.server_name);
        (at - since < SILENT_KEPT_MS && !restarted).then_some(row)
    }));
    crate::sort::sort_by(&mut next, |a, b| a.now.server_name.cmp(&b.now.server_name));
    next
}

impl Row {
    fn rate(&self, field: impl Fn(&Varz) -> u64) -> Option<f64> {
        if self.silent_since.is_some() {
            return None;
        }
        let (before, then) = self.before.as_ref()?;
        rate_per_second(field(before), field(&self.now), self.at - then)
    }

    /// A count's rate, "12/s"; "…" until there are two readings.
    fn count_rate(&self, field: impl Fn(&Varz) -> u64) -> String {
        self.rate(field)
            .map(format_rate)
            .unwrap_or_else(|| "…".to_owned())
    }

    /// A byte count's rate, "1.2 KiB/s" (as /monitor writes it); "…" until two readings.
    fn byte_rate(&self, field: impl Fn(&Varz) -> u64) -> String {
        self.rate(field)
            .map(|r| format!("{}/s", format_bytes(r.round() as u64)))
            .unwrap_or_else(|| "…".to_owned())
    }
}

#[component]
pub fn ServerPage() -> impl IntoView {
    // The tab signed in as sys in ⚙ already: its password, not asked again.
    let password = RwSignal::new({
        let saved = session::load_sys_password();
        let applied = Settings::applied();
        match saved.is_empty() && applied.user == SYS_USER && applied.token.is_empty() {
            true => applied.password,
            false => saved,
        }
    });
    // The sys connection, made from the app's servers when a password is given.
    let client: RwSignal<Option<Client>, LocalStorage> = RwSignal::new_local(None);
    let status = RwSignal::new(String::new());
    let typed = RwSignal::new(String::new());
    // The server refused the password: the form comes back, with why.
    let refused = RwSignal::new(None::<String>);
    let app = leptos_nats::use_nats().client;
    Effect::new(move |_| {
        let pw = password.get();
        // Made again when the app's connection is (⚙ applied: perhaps other servers).
        app.track();
        if let Some(old) = client.get_untracked() {
            old.close();
        }
        client.set(None);
        if pw.is_empty() {
            return;
        }
        let options = Settings::applied()
            .options()
            .name("via /server")
            .user_password(SYS_USER, pw);
        match nats_ws::start(options) {
            Ok(c) => client.set(Some(c)),
            Err(e) => status.set(e.to_string()),
        }
    });
    on_cleanup(move || {
        if let Some(Some(c)) = client.try_get_untracked() {
            c.close();
        }
    });
    // The connection's state, in words.
    Effect::new(move |_| {
        if let Some(c) = client.get() {
            spawn_while_mounted(async move {
                let mut statuses = c.status_stream();
                let mut signed_in = false;
                while let Some(s) = statuses.next().await {
                    signed_in |= s.is_connected();
                    // A password refused at once would only be refused again. (One that worked
                    // and is refused on a reconnect may be refused for a while: an auth callout
                    // timing out, a reload. That one is tried on, the reason shown.)
                    let refused_now = match &s {
                        Status::Offline { last_error: e }
                        | Status::Reconnecting {
                            last_error: Some(e),
                            ..
                        } if !signed_in => {
                            matches!(e, nats_ws::ConnectionError::AuthorizationViolation)
                        }
                        _ => false,
                    };
                    if refused_now {
                        refused.set(Some(format!(
                            "sys was not signed in: {}",
                            nats_ws::ConnectionError::AuthorizationViolation
                        )));
                        session::save_sys_password("");
                        password.set(String::new());
                        return;
                    }
                    status.set(match s {
                        Status::Connected { server_name, .. } => {
                            format!("connected as sys to {server_name}")
                        }
                        Status::Offline { last_error } => format!("not connected: {last_error}"),
                        Status::Reconnecting {
                            last_error: Some(e),
                            ..
                        } => format!("reconnecting: {e}"),
                        Status::Reconnecting { .. } | Status::Connecting => {
                            "connecting…".to_owned()
                        }
                        _ => "closed".to_owned(),
                    });
                }
            });
        }
    });
    let sign_in = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let pw = typed.get_untracked();
        refused.set(None);
        session::save_sys_password(&pw);
        password.set(pw);
    };
    let sign_out = move |_| {
        session::save_sys_password("");
        password.set(String::new());
        typed.set(String::new());
    };
    view! {
        <section class="page-head">
            <h1>"Server"</h1>
            <p class="lede">
                "Every server, live: what " <code>"$SYS.REQ.SERVER.PING.VARZ"</code>
                " answers, asked every 2 s while this tab is visible. The system account's, so this page signs in as "
                <code>"sys"</code> " on its own connection (the password: " <code>"bash nats.sh status"</code>
                "; kept for this tab's session only)."
            </p>
        </section>
        <section class="card">
            <Show
                when=move || !password.get().is_empty()
                fallback=move || view! {
                    <form class="kv-form" on:submit=sign_in>
                        <div class="row">
                        <label>
                            "sys password "
                            <input
                                type="password"
                                autocomplete="off"
                                data-testid="server-sys-password"
                                prop:value=move || typed.get()
                                on:input=move |ev| typed.set(event_target_value(&ev))
                            />
                        </label>
                        </div>
                        <div class="actions">
                            <button type="submit" data-testid="server-connect">"Connect"</button>
                        </div>
                        <Show when=move || refused.get().is_some()>
                            <p class="error" role="alert" data-testid="server-sign-in-error">{move || refused.get()}</p>
                        </Show>
                    </form>
                }
            >
                <p>
                    <span data-testid="server-connection">{move || status.get()}</span>
                    " "
                    <button class="link-button" on:click=sign_out data-testid="server-sign-out">"Sign out"</button>
                </p>
            </Show>
        </section>
        {move || client.get().map(|c| view! { <Servers client=c/> })}
    }
}

/// An error of this page's connection, which is sys's whoever the app's settings sign in as.
fn explain(e: &dyn std::fmt::Display) -> String {
    crate::model::explain(&e.to_string(), SYS_USER)
}

/// Asks every server for its VARZ, collecting answers for [`COLLECT`].
async fn ping_all(client: &Client) -> Result<Vec<Varz>, String> {
    // A connection lost while the answers come leaves some of them: not "this server is gone",
    // nor "no server answered" (which suggests the wrong user).
    let mut events = client.events();
    if !client.status().is_connected() {
        return Err("not connected: asking again once the connection is back".to_owned());
    }
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(&inbox).map_err(|e| explain(&e))?;
    client
        .publish_message(PING, Some(&inbox), None, b"")
        .map_err(|e| explain(&e))?;
    let mut found = Vec::new();
    let mut deadline = gloo_timers::future::sleep(COLLECT).fuse();
    loop {
        futures::select! {
            event = events.next().fuse() => match event {
                Some(nats_ws::ClientEvent::Status(status)) if !status.is_connected() => {
                    return Err("the connection was lost while the servers answered: asking again once it is back".to_owned());
                }
                Some(_) => {}
                None => return Ok(found),
            },
            m = replies.next().fuse() => match m {
                Some(Ok(m)) => found.extend(parse_varz_reply(&m.payload)),
                Some(Err(e)) => return Err(explain(&e)),
                None => break,
            },
            _ = deadline => break,
        }
    }
    Ok(found)
}

#[component]
fn Servers(client: Client) -> impl IntoView {
    let rows: RwSignal<Vec<Row>> = RwSignal::new(Vec::new());
    let error = RwSignal::new(None::<String>);
    let client = StoredValue::new_local(client);
    poll_while_visible(EVERY, None, move || {
        let client = client.get_value();
        async move {
            if !leptos_nats::until_connected(&client).await {
                return;
            }
            match ping_all(&client).await {
                Ok(found) if found.is_empty() => {
                    error.try_set(Some(
                        "no server answered: is this the sys user of the system account?"
                            .to_owned(),
                    ));
                }
                Ok(found) => {
                    let at = now_ms();
                    rows.try_update(|rows| *rows = merge_rows(std::mem::take(rows), found, at));
                    error.try_set(None);
                }
                Err(e) => {
                    error.try_set(Some(e));
                }
            }
        }
    });
    view! {
        <p class="error" role="alert" data-testid="server-error">{move || error.get()}</p>
        // On a card, as every table of the console: its scroll hint is drawn in the card's colour.
        <section class="card">
        <div class="table-wrap">
            <table class="proc-table server-table" data-testid="server-table">
                <thead>
                    <tr>
                        <th scope="col">"Server"</th>
                        <th scope="col">"Version"</th>
                        <th scope="col">"Uptime"</th>
                        <th scope="col" class="num">"Connections"</th>
                        <th scope="col" class="num">"Subscriptions"</th>
                        <th scope="col" class="num">"Messages in"</th>
                        <th scope="col" class="num">"Messages out"</th>
                        <th scope="col" class="num">"Bytes in"</th>
                        <th scope="col" class="num">"Bytes out"</th>
                        <th scope="col" class="num">"JetStream memory / file"</th>
                        <th scope="col" class="num">"Routes"</th>
                        <th scope="col" class="num">"Leaf nodes"</th>
                    </tr>
                </thead>
                <tbody>
                    <For each=move || rows.get() key=|r| (r.now.server_id.clone(), r.at.to_bits(), r.silent_since.is_some()) let:row>
                        <tr data-testid="server-row" class:stale=row.silent_since.is_some()>
                            <th scope="row" data-testid="server-name">
                                {row.now.server_name.clone()}
                                {row.silent_since.map(|since| view! {
                                    <span class="muted small" data-testid="server-silent">
                                        {format!(" not answering since {} (as it last was)", time_of_day(since, false))}
                                    </span>
                                })}
                            </th>
                            <td data-testid="server-version">{row.now.version.clone()}</td>
                            <td data-testid="server-uptime">{row.now.uptime.clone()}</td>
                            <td class="num" data-testid="server-connections">{row.now.connections}</td>
                            <td class="num" data-testid="server-subscriptions">{row.now.subscriptions}</td>
                            <td class="num" data-testid="server-in-msgs">
                                {row.now.in_msgs} " " <span class="muted small rate-under">{row.count_rate(|v| v.in_msgs)}</span>
                            </td>
                            <td class="num" data-testid="server-out-msgs">
                                {row.now.out_msgs} " " <span class="muted small rate-under">{row.count_rate(|v| v.out_msgs)}</span>
                            </td>
                            <td class="num" data-testid="server-in-bytes">
                                {format_bytes(row.now.in_bytes)} " " <span class="muted small rate-under">{row.byte_rate(|v| v.in_bytes)}</span>
                            </td>
                            <td class="num" data-testid="server-out-bytes">
                                {format_bytes(row.now.out_bytes)} " " <span class="muted small rate-under">{row.byte_rate(|v| v.out_bytes)}</span>
                            </td>
                            <td class="num" data-testid="server-jetstream">
                                {format!(
                                    "{} / {}",
                                    format_bytes(row.now.jetstream.stats.memory),
                                    format_bytes(row.now.jetstream.stats.storage),
                                )}
                            </td>
                            <td class="num" data-testid="server-routes">{row.now.routes}</td>
                            <td class="num" data-testid="server-leafnodes">{row.now.leafnodes}</td>
                        </tr>
                    </For>
                </tbody>
            </table>
        </div>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varz(id: &str, name: &str, in_msgs: u64) -> Varz {
        Varz {
            server_id: id.to_owned(),
            server_name: name.to_owned(),
            in_msgs,
            ..Varz::default()
        }
    }

    #[test]
    fn a_server_that_stops_answering_keeps_its_row_marked_for_a_while() {
        let rows = merge_rows(
            Vec::new(),
            vec![varz("B", "n2", 5), varz("A", "n1", 1)],
            0.0,
        );
        assert_eq!(
            rows.iter()
                .map(|r| r.now.server_name.as_str())
                .collect::<Vec<_>>(),
            ["n1", "n2"]
        );
        let rows = merge_rows(rows, vec![varz("A", "n1", 11), varz("B", "n2", 5)], 1000.0);
        assert_eq!(rows[0].rate(|v| v.in_msgs), Some(10.0));
        // n2 stops answering: its row stays, as it last was, without rates.
        let rows = merge_rows(rows, vec![varz("A", "n1", 21)], 2000.0);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].silent_since, Some(2000.0));
        assert_eq!(rows[1].now.in_msgs, 5);
        assert_eq!(rows[1].rate(|v| v.in_msgs), None);
        let rows = merge_rows(rows, vec![varz("A", "n1", 31)], 3000.0);
        assert_eq!(
            rows[1].silent_since,
            Some(2000.0),
            "silent since the first round without it"
        );
        // Back: a row as before, its rate from the reading it last gave.
        let rows = merge_rows(rows, vec![varz("A", "n1", 41), varz("B", "n2", 25)], 4000.0);
        assert_eq!(rows[1].silent_since, None);
        assert_eq!(rows[1].rate(|v| v.in_msgs), Some(20.0 / 3.0));
        // Started again: a new id under the same name, and the old row goes at once.
        let restarted = merge_rows(
            rows.clone(),
            vec![varz("A", "n1", 45), varz("B2", "n2", 0)],
            4500.0,
        );
        assert_eq!(restarted.len(), 2);
        assert_eq!(restarted[1].now.server_id, "B2");
        // Gone for longer than it is kept: dropped.
        let rows = merge_rows(rows, vec![varz("A", "n1", 51)], 5000.0);
        let rows = merge_rows(rows, vec![varz("A", "n1", 61)], 5000.0 + SILENT_KEPT_MS);
        assert_eq!(rows.len(), 1);
    }
}
