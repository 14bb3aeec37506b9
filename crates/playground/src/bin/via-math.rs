//! `via-math`: hosts the NATS service `math` (endpoint `sum` in group `math`, subject `math.sum`,
//! queue group `q`) on nats-ws over TCP, answering each request with
//! `via_playground::math::answer`: the sum's JSON, or a service error reply
//! (`Nats-Service-Error-Code: 400`) for what is not a pair of numbers. Waits for a server that is
//! not there yet and follows it across restarts (the client reconnects and resubscribes). On
//! SIGINT or SIGTERM it drains the service (requests already routed to it are still answered)
//! and exits 0.
//!
//! Stdout: nothing. Stderr: the connection as it comes and goes — `via-math: serving math.sum on
//! <url> …` each time the server routes requests here (again after a reconnect) — and what goes
//! wrong.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use futures::StreamExt;
use lexopt::ValueExt;
use nats_ws::service::{self, Endpoint, EndpointConfig, ServiceConfig};
use nats_ws::Status;
use tokio::signal::unix::{signal, SignalKind};
use via_playground::math;

const USAGE: &str = "usage: via-math [--url URL]
  serves math.sum (service math); the url defaults to $VIA_NATS_URL, then nats://127.0.0.1:4222 (several: comma-separated)";

/// Where the server is when neither `--url` nor `VIA_NATS_URL` says.
const DEFAULT_URL: &str = "nats://127.0.0.1:4222";

fn parse() -> Result<Option<String>, lexopt::Error> {
    let mut url = std::env::var("VIA_NATS_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_URL.to_owned());
    let mut parser = lexopt::Parser::from_env();
    while let Some(arg) = parser.next()? {
        match arg {
            lexopt::Arg::Long("help") | lexopt::Arg::Short('h') => return Ok(None),
            lexopt::Arg::Long("url") => url = parser.value()?.string()?,
            other => return Err(other.unexpected()),
        }
    }
    Ok(Some(url))
}

fn main() -> ExitCode {
    let url = match parse() {
        Ok(Some(url)) => url,
        Ok(None) => {
            say_out(USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => return fail(&format!("{e}\n{USAGE}")),
    };
    // One thread: one endpoint, answered in order; the client's driver shares it.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(run(url)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&e),
    }
}

async fn run(url: String) -> Result<(), String> {
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let options = nats_ws::Options::new(url.clone())
        .name("via-math")
        .reconnect(nats_ws::ReconnectPolicy {
            initial_delay: Duration::from_millis(100),
            factor: 1.5,
            max_delay: Duration::from_secs(1),
            max_attempts: None,
            jitter: Duration::from_millis(100),
        });
    let options = via_credentials::sign_in(options, "math")?;
    // Started, not awaited: the subscriptions are sent once a server answers.
    let client = nats_ws::start(options).map_err(|e| format!("{url}: {e}"))?;
    tokio::spawn(tell_status(client.clone(), url.clone()));
    let service = service::add(
        &client,
        ServiceConfig::new(math::SERVICE, math::VERSION).description(math::DESCRIPTION),
    )
    .map_err(|e| format!("cannot add service {}: {e}", math::SERVICE))?;
    let mut sum = service
        .group(math::GROUP)
        .endpoint_with(
            EndpointConfig::new(math::ENDPOINT).metadata(math::METADATA.0, math::METADATA.1),
        )
        .map_err(|e| format!("cannot add endpoint {}: {e}", math::SUBJECT))?;
    say_err(&format!(
        "via-math: service {} {} ({}) on {url}",
        math::SERVICE,
        math::VERSION,
        service.id()
    ));

    let stopping = tokio::select! {
        _ = sigint.recv() => true,
        _ = sigterm.recv() => true,
        _ = serve(&mut sum) => false,
    };
    if !stopping {
        // The endpoint ended by itself: its subscription failed (see the service's last_error).
        let last_error = sum.stats().last_error;
        client.close();
        return Err(format!(
            "the endpoint {} stopped: {last_error}",
            math::SUBJECT
        ));
    }
    // Drained, not dropped: what the server routed here before the UNSUB is still answered.
    // Bounded: stop gives up after 5 s, and the endpoint's stream ends with its drain.
    let (_, _) = tokio::join!(
        service.stop(),
        tokio::time::timeout(Duration::from_secs(6), serve(&mut sum))
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), client.flush()).await;
    client.close();
    say_err("via-math: stopped");
    Ok(())
}

/// Answers requests until the endpoint's stream ends (drained, or its subscription failed).
async fn serve(endpoint: &mut Endpoint) {
    while let Some(request) = endpoint.next().await {
        // Published without a reply subject: nobody to answer (and nothing worth a line each).
        if request.reply().is_none() {
            continue;
        }
        let sent = match math::answer(request.payload()) {
            Ok(reply) => request.respond(reply),
            Err(e) => request.respond_error(e.code(), &e.to_string(), b""),
        };
        // The connection is gone (the requester will time out) or the reply is too big.
        if let Err(e) = sent {
            say_err(&format!("via-math: cannot answer a request: {e}"));
        }
    }
}

/// Says on stderr when the connection comes and goes (once per change, not per attempt). Once
/// connected it flushes first: the subscriptions go out right after the handshake, so when the
/// flush returns the server routes `math.sum` here — `serving …` is the line to wait for.
async fn tell_status(client: nats_ws::Client, url: String) {
    let mut statuses = client.status_stream();
    let mut was_connected = false;
    let mut said_waiting = false;
    while let Some(status) = statuses.next().await {
        match status {
            Status::Connected { version, .. } => {
                was_connected = true;
                said_waiting = false;
                if client.flush().await.is_ok() {
                    say_err(&format!(
                        "via-math: serving {} on {url} (nats-server {version})",
                        math::SUBJECT
                    ));
                }
            }
            Status::Reconnecting { last_error, .. } if !said_waiting => {
                // The error names the url and, for a refused connection, what to check.
                match (last_error, was_connected) {
                    (Some(e), _) => say_err(&format!("via-math: {e}; reconnecting")),
                    (None, true) => say_err(&format!("via-math: lost {url}; reconnecting")),
                    (None, false) => say_err(&format!("via-math: waiting for {url}")),
                }
                said_waiting = true;
            }
            _ => {}
        }
    }
}

fn say_out(line: &str) {
    // Not println!: it panics when stdout is closed.
    let _ = writeln!(std::io::stdout(), "{line}");
}

fn say_err(line: &str) {
    // Not eprintln!: it panics when stderr is closed.
    let _ = writeln!(std::io::stderr(), "{line}");
}

fn fail(message: &str) -> ExitCode {
    say_err(&format!("via-math: {message}"));
    ExitCode::FAILURE
}
