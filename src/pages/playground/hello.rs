//! Hello world: a second connection, made by the card, connects, subscribes `hello`, publishes
//! "Hello World!", receives it and closes — each step with its time.

use futures::StreamExt;
use leptos::prelude::*;
use nats_ws::Client;

use super::steps::{within, CardTasks, StepList, StepLog};
use crate::session::Settings;

const SUBJECT: &str = "hello";
const GREETING: &str = "Hello World!";

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
    let options = Settings::load().options().name("playground hello");
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

    let sent_at = log.elapsed();
    if let Err(e) = client.publish(SUBJECT, GREETING) {
        client.close();
        return log.fail("tab → server", format!("PUB {SUBJECT} failed: {e}"));
    }
    log.info(
        "tab → server",
        format!("PUB {SUBJECT} \"{GREETING}\" ({} bytes)", GREETING.len()),
    );
    match within(sub.next()).await {
        Some(Some(Ok(message))) => {
            let text = String::from_utf8_lossy(&message.payload).into_owned();
            log.ok(
                "server → tab",
                format!(
                    "MSG {}: \"{text}\" — {:.1} ms after the PUB",
                    message.subject,
                    log.elapsed() - sent_at
                ),
            );
        }
        Some(Some(Err(e))) => log.fail("server → tab", format!("the subscription failed: {e}")),
        Some(None) => log.fail("server → tab", "the subscription ended"),
        None => log.fail("server → tab", "nothing came back within 5 s"),
    }
    drop(sub);
    let _ = within(client.flush()).await;
    client.close();
    log.ok("tab → server", "closed the connection");
}
