//! Hello world: a second connection, made by the card, connects, subscribes `hello`, publishes
//! "Hello World!", receives it and closes — each step with its time. Anyone may publish on
//! `hello` (another tab running the card, an outside client): the card's own message carries a
//! header with an id of this run, and only that one is timed as its own.

use futures::{FutureExt, StreamExt};
use leptos::prelude::*;
use nats_ws::{Client, HeaderMap, Message};

use super::steps::{refused_publish, within, CardTasks, StepList, StepLog};
use crate::session::{random_hex, Settings};

const SUBJECT: &str = "hello";
const GREETING: &str = "Hello World!";
/// The header that marks the card's own message, with an id of the run.
const RUN_HEADER: &str = "Via-Hello-Run";

#[component]
pub fn HelloCard(client: Client) -> impl IntoView {
    // The page's own connection is not used: the experiment is a client of its own.
    let _ = client;
    let log = StepLog::new();
    let tasks = CardTasks::new();
    let running = RwSignal::new(false);
    let run = move |_| {
        if running.get_untracked() {
            return;
        }
        running.set(true);
        log.start();
        tasks.spawn(async move {
            hello(log).await;
            running.try_set(false);
        });
    };
    view! {
        <section class="card pg-card" aria-labelledby="pg-hello-title">
            <div class="card-head">
                <h2 id="pg-hello-title">"1 · Hello world"</h2>
                <button data-testid="pg-hello-run" on:click=run disabled=move || running.get()>
                    {move || if running.get() { "Running…" } else { "Run" }}
                </button>
            </div>
            <p class="muted small">
                "A new connection subscribes to " <code>{SUBJECT}</code> ", publishes " <code>"\"Hello World!\""</code>
                ", gets it back from the server and closes."
            </p>
            <StepList log testid="pg-hello-step"/>
        </section>
    }
}

async fn hello(log: StepLog) {
    let options = Settings::applied().options().name("playground hello");
    let servers = options.servers.join(", ");
    log.info(
        "tab → server",
        format!("open a WebSocket to {servers}, send CONNECT"),
    );
    let client = match within(nats_ws::connect(options)).await {
        Some(Ok(client)) => client,
        Some(Err(e)) => return log.fail("server → tab", format!("could not connect: {e}")),
        None => return log.fail("server → tab", "no answer within 5 s"),
    };
    let server = client
        .server_info()
        .map(|i| format!("{} (nats-server {})", i.server_name, i.version))
        .unwrap_or_else(|| "the server".into());
    log.ok(
        "server → tab",
        format!("INFO, then PONG: connected to {server}"),
    );

    let mut sub = match client.subscribe(SUBJECT) {
        Ok(sub) => sub,
        Err(e) => {
            client.close();
            return log.fail("tab → server", format!("SUB {SUBJECT} refused: {e}"));
        }
    };
    match within(client.flush()).await {
        Some(Ok(())) => log.ok(
            "tab → server",
            format!("SUB {SUBJECT} (the PONG after it says the server has it)"),
        ),
        _ => {
            client.close();
            return log.fail("tab → server", format!("SUB {SUBJECT}: no PONG within 5 s"));
        }
    }

    let run_id = random_hex(8);
    let mut headers = HeaderMap::new();
    headers.insert(RUN_HEADER, run_id.as_str());
    let sent_at = log.elapsed();
    let events = client.events();
    if let Err(e) = client.publish_with_headers(SUBJECT, &headers, GREETING) {
        client.close();
        return log.fail("tab → server", format!("PUB {SUBJECT} failed: {e}"));
    }
    log.info(
        "tab → server",
        format!(
            "PUB {SUBJECT} \"{GREETING}\" ({} bytes, header {RUN_HEADER}: {run_id})",
            GREETING.len()
        ),
    );
    let mut others = 0u64;
    let coming_back = async {
        while let Some(message) = sub.next().await {
            let message = message.map_err(|e| format!("the subscription failed: {e}"))?;
            if is_own(&message, &run_id) {
                return Ok(message);
            }
            others += 1;
            if others == 1 {
                log.info(
                    "server → tab",
                    format!(
                        "MSG {}: \"{}\" from another client (no {RUN_HEADER}: {run_id}): not this card's, still waiting",
                        message.subject,
                        crate::model::clip_payload(&message.payload, 80)
                    ),
                );
            }
        }
        Err("the subscription ended".to_owned())
    };
    // A refused publish has no answer: the server says so in an -ERR, told among the events.
    let refused = refused_publish(events, &[SUBJECT]);
    let own = within(async {
        futures::pin_mut!(coming_back, refused);
        futures::select! {
            own = coming_back.fuse() => own,
            why = refused.fuse() => Err(format!("-ERR: PUB {SUBJECT} refused: {why}")),
        }
    })
    .await;
    match own {
        Some(Ok(message)) => {
            let text = String::from_utf8_lossy(&message.payload).into_owned();
            let before = match others {
                0 => String::new(),
                n => format!(" ({n} from other clients came before it)"),
            };
            log.ok(
                "server → tab",
                format!(
                    "MSG {}: \"{text}\" — {:.1} ms after the PUB{before}",
                    message.subject,
                    log.elapsed() - sent_at
                ),
            );
        }
        Some(Err(e)) => log.fail("server → tab", e),
        None => log.fail(
            "server → tab",
            format!("this card's message did not come back within 5 s ({others} from other clients did)"),
        ),
    }
    drop(sub);
    let _ = within(client.flush()).await;
    client.close();
    log.ok("tab → server", "closed the connection");
}

/// Whether `message` is the one this run published: it carries the run's id.
fn is_own(message: &Message, run_id: &str) -> bool {
    message
        .headers
        .as_ref()
        .is_some_and(|h| h.get(RUN_HEADER) == Some(run_id))
}
