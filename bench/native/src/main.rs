//! nats-ws's native driver against async-nats over the same WebSocket port: publish → subscribe
//! rate (publisher and subscriber on two connections, a flush every `batch` messages) and
//! request/reply round trips. Each client is used as its users would: a subscription task counting
//! arrivals, a publishing loop, a responder task.
//!
//! Usage: nats-ws-bench-native --ws ws://127.0.0.1:PORT [--n 1000000] [--size 16] [--batch 0]
//!        [--reps 3] [--rr 2000] [--only ours|async-nats]
//! Prints one JSON object: {"ours": {...}, "async_nats": {...}} (rates are the median of the reps).
//!
//! A pub→sub measurement waits for all `n` messages only while it can still get them: whatever a
//! client reports while it runs (a disconnect, a slow consumer, a server error: see [`incident`])
//! is printed to stderr, and once something was reported and no message has arrived for
//! [`GIVE_UP_AFTER`] the measurement fails at once with what was received and what was reported,
//! instead of waiting out the 120 s timeout for messages that were lost. A stall with nothing
//! reported still fails after 120 s, saying whether the publisher had finished and what each
//! connection's status was.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

/// Messages the running pub→sub measurement has received (for the timeout message).
static PROGRESS: AtomicU32 = AtomicU32::new(0);
/// Messages the running pub→sub measurement has published and flushed.
static PUBLISHED: AtomicU32 = AtomicU32::new(0);
/// What the clients of the running measurement reported (disconnects, slow consumers, errors).
static INCIDENTS: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// The connections' statuses, for the timeout message: `(who, status)`.
static STATUSES: Mutex<Vec<(&'static str, String)>> = Mutex::new(Vec::new());
/// Once a client has reported an incident, how long without a new message before the measurement
/// stops waiting for the rest.
const GIVE_UP_AFTER: Duration = Duration::from_secs(5);

/// Records (and prints at once) something a client reported during a measurement.
fn incident(who: &str, what: String) {
    let line = format!(
        "{who}: {what} (after {} received, {} published)",
        PROGRESS.load(Relaxed),
        PUBLISHED.load(Relaxed)
    );
    eprintln!("bench native: {line}");
    INCIDENTS.lock().unwrap().push(line);
}

fn set_status(who: &'static str, status: String) {
    let mut statuses = STATUSES.lock().unwrap();
    match statuses.iter_mut().find(|(w, _)| *w == who) {
        Some(entry) => entry.1 = status,
        None => statuses.push((who, status)),
    }
}

/// Clears what the previous measurement left.
fn reset_progress() {
    PROGRESS.store(0, Relaxed);
    PUBLISHED.store(0, Relaxed);
    INCIDENTS.lock().unwrap().clear();
    STATUSES.lock().unwrap().clear();
}

fn incidents_text() -> String {
    let incidents = INCIDENTS.lock().unwrap();
    if incidents.is_empty() {
        "no client reported a disconnect, slow consumer or error".to_owned()
    } else {
        format!("reported: {}", incidents.join("; "))
    }
}

fn statuses_text() -> String {
    let statuses = STATUSES.lock().unwrap();
    statuses
        .iter()
        .map(|(who, s)| format!("{who}: {s}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Waits for the receiving task once everything is published: returns when it has all `n`
/// messages, fails early once a client reported an incident and nothing arrived for
/// [`GIVE_UP_AFTER`] (those messages are lost, the count cannot come).
async fn await_receiver(
    receiver: &mut tokio::task::JoinHandle<Result<Instant, String>>,
    n: u32,
) -> Res<Instant> {
    let mut last = (PROGRESS.load(Relaxed), Instant::now());
    loop {
        match tokio::time::timeout(Duration::from_millis(250), &mut *receiver).await {
            Ok(joined) => return Ok(joined??),
            Err(_) => {
                let now = PROGRESS.load(Relaxed);
                if now != last.0 {
                    last = (now, Instant::now());
                } else if !INCIDENTS.lock().unwrap().is_empty() && last.1.elapsed() >= GIVE_UP_AFTER
                {
                    receiver.abort();
                    return Err(format!(
                        "lost {} of {n} messages: {now} received, then nothing for {} s after a \
                         client {}",
                        n - now,
                        GIVE_UP_AFTER.as_secs(),
                        incidents_text()
                    )
                    .into());
                }
            }
        }
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Args {
    ws: String,
    n: u32,
    size: usize,
    batch: u32,
    reps: u32,
    rr: u32,
    /// Measure only this client ("ours" or "async-nats"), e.g. to repeat one case.
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        ws: String::new(),
        n: 1_000_000,
        size: 16,
        batch: 0,
        reps: 3,
        rr: 2000,
        only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().unwrap_or_else(|| panic!("{flag} needs a value"));
        match flag.as_str() {
            "--ws" => a.ws = value,
            "--n" => a.n = value.parse().expect("--n"),
            "--size" => a.size = value.parse().expect("--size"),
            "--batch" => a.batch = value.parse().expect("--batch"),
            "--reps" => a.reps = value.parse().expect("--reps"),
            "--rr" => a.rr = value.parse().expect("--rr"),
            "--only" => {
                assert!(
                    ["ours", "async-nats"].contains(&value.as_str()),
                    "--only ours|async-nats"
                );
                a.only = Some(value);
            }
            other => panic!("unknown flag {other}"),
        }
    }
    assert!(!a.ws.is_empty(), "--ws <websocket url> is required");
    a
}

fn subject(prefix: &str) -> String {
    format!(
        "{prefix}.{}",
        std::time::SystemTime::UNIX_EPOCH
            .elapsed()
            .unwrap_or_default()
            .as_nanos()
    )
}

// ---- nats-ws (ours) ---------------------------------------------------------------------------

/// Follows a nats-ws client's events during a measurement: status for the timeout message, and
/// anything but being connected (a disconnect, a slow consumer, a server error) as an incident.
fn watch_ours(who: &'static str, client: &nats_ws::Client) -> tokio::task::JoinHandle<()> {
    set_status(who, ours_status(&client.status()));
    let mut events = client.events();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            match event {
                nats_ws::ClientEvent::Status(status) => {
                    set_status(who, ours_status(&status));
                    if !matches!(
                        status,
                        nats_ws::Status::Connected { .. } | nats_ws::Status::Closed
                    ) {
                        incident(who, ours_status(&status));
                    }
                }
                other => incident(who, format!("{other:?}")),
            }
        }
    })
}

fn ours_status(status: &nats_ws::Status) -> String {
    use nats_ws::Status;
    match status {
        Status::Connected { url, .. } => format!("connected to {url}"),
        Status::Reconnecting {
            attempt,
            last_error: Some(e),
            ..
        } => format!("disconnected, reconnecting (attempt {attempt}): {e}"),
        Status::Reconnecting { attempt, .. } => format!("reconnecting (attempt {attempt})"),
        Status::Offline { last_error } => format!("offline: {last_error}"),
        other => format!("{other:?}"),
    }
}

async fn ours_pubsub(url: &str, n: u32, size: usize, batch: u32) -> Res<f64> {
    reset_progress();
    // The same room as async-nats's subscription channel below (n + 1024 messages, no byte
    // limit): the default (65 536 messages) drops, and reports a slow consumer, when the counting
    // task falls behind a burst.
    let sub_options = nats_ws::Options::new(url)
        .name("bench-sub")
        .pending_limits(n as usize + 1024, usize::MAX);
    let sub_client = nats_ws::connect(sub_options).await?;
    let pub_client = nats_ws::connect(nats_ws::Options::new(url).name("bench-pub")).await?;
    let watchers = [
        watch_ours("nats-ws subscriber", &sub_client),
        watch_ours("nats-ws publisher", &pub_client),
    ];
    let subject = subject("bench.native.ours");
    let mut sub = sub_client.subscribe(&subject)?;
    // A PING/PONG round trip: the server has processed the SUB before the first publish.
    sub_client.flush().await?;
    let payload = vec![b'x'; size];
    let t0 = Instant::now();
    let mut receiver = tokio::spawn(async move {
        let mut count = 0;
        while count < n {
            match sub.next().await {
                Some(Ok(_)) => count += 1,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("subscription ended".to_owned()),
            }
            PROGRESS.store(count, Relaxed);
        }
        Ok(Instant::now())
    });
    for i in 1..=n {
        pub_client.publish(&subject, &payload)?;
        if batch > 0 && i % batch == 0 {
            pub_client.flush().await?;
            PUBLISHED.store(i, Relaxed);
        }
    }
    pub_client.flush().await?;
    PUBLISHED.store(n, Relaxed);
    let t1 = await_receiver(&mut receiver, n).await;
    watchers.iter().for_each(|w| w.abort());
    pub_client.close();
    sub_client.close();
    Ok(f64::from(n) / (t1? - t0).as_secs_f64())
}

async fn ours_rr(url: &str, n: u32, size: usize) -> Res<Vec<f64>> {
    let responder = nats_ws::connect(nats_ws::Options::new(url).name("bench-responder")).await?;
    let requester = nats_ws::connect(nats_ws::Options::new(url).name("bench-requester")).await?;
    let subject = subject("bench.native.ours.rr");
    let mut requests = responder.subscribe(&subject)?;
    responder.flush().await?;
    let answer = responder.clone();
    tokio::spawn(async move {
        while let Some(Ok(m)) = requests.next().await {
            if let Some(reply) = &m.reply {
                let _ = answer.publish(reply, &m.payload);
            }
        }
    });
    let payload = vec![b'x'; size];
    let mut latencies = Vec::with_capacity(n as usize);
    for i in 0..n + n / 10 {
        let t0 = Instant::now();
        requester.request(&subject, &payload).await?;
        if i >= n / 10 {
            latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
    requester.close();
    responder.close();
    Ok(latencies)
}

// ---- async-nats ----------------------------------------------------------------------------

/// Records an async-nats event: status for the timeout message, and anything but connecting or
/// closing (a disconnect, a slow consumer, a server or client error) as an incident.
fn async_nats_event(who: &'static str, event: async_nats::Event) {
    use async_nats::Event;
    match event {
        Event::Connected => set_status(who, "connected".to_owned()),
        Event::Closed => set_status(who, "closed".to_owned()),
        Event::Disconnected => {
            set_status(who, "disconnected".to_owned());
            incident(who, "disconnected".to_owned());
        }
        other => incident(who, other.to_string()),
    }
}

async fn async_nats_pubsub(url: &str, n: u32, size: usize, batch: u32) -> Res<f64> {
    reset_progress();
    let sub_client = async_nats::ConnectOptions::new()
        .event_callback(|e| async move { async_nats_event("async-nats subscriber", e) })
        // The default (65536 messages) drops messages ("slow consumer") when the subscribing task
        // falls behind a burst; both clients get room for the whole run (see ours_pubsub).
        .subscription_capacity(n as usize + 1024)
        .name("bench-sub")
        .connect(url)
        .await?;
    set_status("async-nats subscriber", "connected".to_owned());
    let pub_client = async_nats::ConnectOptions::new()
        .event_callback(|e| async move { async_nats_event("async-nats publisher", e) })
        .name("bench-pub")
        .connect(url)
        .await?;
    set_status("async-nats publisher", "connected".to_owned());
    let subject = subject("bench.native.async_nats");
    let mut sub = sub_client.subscribe(subject.clone()).await?;
    // async-nats's flush() only writes its buffer to the socket (no PING/PONG), so the first
    // batches could reach the server before it has processed this SUB: published to no one, lost
    // (seen: 992 000 of 1 000 000 received, the server's in_msgs - out_msgs = 8 000, no slow
    // consumer). A request on the subscriber's own connection is a round trip: its no-responders
    // answer comes after the server processed the SUB.
    async_nats_round_trip(&sub_client).await?;
    let payload = Bytes::from(vec![b'x'; size]);
    let t0 = Instant::now();
    let mut receiver = tokio::spawn(async move {
        let mut count = 0;
        while count < n {
            match sub.next().await {
                Some(_) => count += 1,
                None => return Err("subscription ended".to_owned()),
            }
            PROGRESS.store(count, Relaxed);
        }
        Ok(Instant::now())
    });
    for i in 1..=n {
        pub_client.publish(subject.clone(), payload.clone()).await?;
        if batch > 0 && i % batch == 0 {
            pub_client.flush().await?;
            PUBLISHED.store(i, Relaxed);
        }
    }
    pub_client.flush().await?;
    PUBLISHED.store(n, Relaxed);
    let t1 = await_receiver(&mut receiver, n).await?;
    Ok(f64::from(n) / (t1 - t0).as_secs_f64())
}

/// A round trip on an async-nats connection (its `flush` does not wait for the server): a request
/// to a fresh inbox, whose no-responders answer comes after the server processed what was sent.
async fn async_nats_round_trip(client: &async_nats::Client) -> Res<()> {
    match client.request(client.new_inbox(), Bytes::new()).await {
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
        Err(e) => Err(format!("round trip after SUB: {e}").into()),
        Ok(_) => Err("round trip after SUB: a reply from no one".into()),
    }
}

async fn async_nats_rr(url: &str, n: u32, size: usize) -> Res<Vec<f64>> {
    let responder = async_nats::ConnectOptions::new()
        .name("bench-responder")
        .connect(url)
        .await?;
    let requester = async_nats::ConnectOptions::new()
        .name("bench-requester")
        .connect(url)
        .await?;
    let subject = subject("bench.native.async_nats.rr");
    let mut requests = responder.subscribe(subject.clone()).await?;
    // The same race as for the subscriber above: the first request found no responder.
    async_nats_round_trip(&responder).await?;
    let answer = responder.clone();
    tokio::spawn(async move {
        while let Some(m) = requests.next().await {
            if let Some(reply) = m.reply {
                let _ = answer.publish(reply, m.payload).await;
            }
        }
    });
    let payload = Bytes::from(vec![b'x'; size]);
    let mut latencies = Vec::with_capacity(n as usize);
    for i in 0..n + n / 10 {
        let t0 = Instant::now();
        requester.request(subject.clone(), payload.clone()).await?;
        if i >= n / 10 {
            latencies.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
    Ok(latencies)
}

// ---- run -------------------------------------------------------------------------------------

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[i.clamp(1, v.len()) - 1]
}

async fn within<T>(what: &str, fut: impl std::future::Future<Output = Res<T>>) -> Res<T> {
    match tokio::time::timeout(Duration::from_secs(120), fut).await {
        Ok(r) => r.map_err(|e| format!("{what}: {e}").into()),
        Err(_) => Err(format!(
            "{what}: timed out after 120 s ({} messages received, {} published and flushed; {}; {})",
            PROGRESS.load(Relaxed),
            PUBLISHED.load(Relaxed),
            statuses_text(),
            incidents_text(),
        )
        .into()),
    }
}

#[tokio::main]
async fn main() -> Res<()> {
    let a = args();
    let run_ours = a.only.as_deref() != Some("async-nats");
    let run_theirs = a.only.as_deref() != Some("ours");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    // Alternate which client goes first, so neither always runs on a warmer server.
    for rep in 0..a.reps {
        for first_ours in [rep % 2 == 0, rep % 2 == 1] {
            if first_ours && run_ours {
                ours.push(
                    within("nats-ws pub→sub", ours_pubsub(&a.ws, a.n, a.size, a.batch)).await?,
                );
            } else if !first_ours && run_theirs {
                theirs.push(
                    within(
                        "async-nats pub→sub",
                        async_nats_pubsub(&a.ws, a.n, a.size, a.batch),
                    )
                    .await?,
                );
            }
        }
    }
    let (mut ours_latencies, mut theirs_latencies) = (Vec::new(), Vec::new());
    if run_ours && a.rr > 0 {
        ours_latencies = within("nats-ws request", ours_rr(&a.ws, a.rr, a.size)).await?;
    }
    if run_theirs && a.rr > 0 {
        theirs_latencies = within("async-nats request", async_nats_rr(&a.ws, a.rr, a.size)).await?;
    }
    let side = |rates: Vec<f64>, rr: Vec<f64>| {
        if rates.is_empty() {
            return serde_json::Value::Null;
        }
        let (p50, p99) = if rr.is_empty() {
            (None, None)
        } else {
            (
                Some(percentile(rr.clone(), 50.0)),
                Some(percentile(rr, 99.0)),
            )
        };
        serde_json::json!({
            "native_pubsub_msgs_per_s": median(rates.clone()),
            "native_pubsub_runs": rates,
            "native_rr_p50_ms": p50,
            "native_rr_p99_ms": p99,
        })
    };
    let out = serde_json::json!({
        "params": { "n": a.n, "size": a.size, "batch": a.batch, "reps": a.reps, "rr": a.rr },
        "ours": side(ours, ours_latencies),
        "async_nats": side(theirs, theirs_latencies),
    });
    println!("{out}");
    Ok(())
}
