//! nats-ws's native driver against async-nats over the same WebSocket port: publish → subscribe
//! rate (publisher and subscriber on two connections, a flush every `batch` messages) and
//! request/reply round trips. Each client is used as its users would: a subscription task counting
//! arrivals, a publishing loop, a responder task.
//!
//! Usage: nats-ws-bench-native --ws ws://127.0.0.1:PORT [--n 1000000] [--size 16] [--batch 0]
//!        [--reps 3] [--rr 2000]
//! Prints one JSON object: {"ours": {...}, "async_nats": {...}} (rates are the median of the reps).

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

/// Messages the running pub→sub measurement has received (for the timeout message).
static PROGRESS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Args {
    ws: String,
    n: u32,
    size: usize,
    batch: u32,
    reps: u32,
    rr: u32,
}

fn args() -> Args {
    let mut a = Args {
        ws: String::new(),
        n: 1_000_000,
        size: 16,
        batch: 0,
        reps: 3,
        rr: 2000,
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

async fn ours_pubsub(url: &str, n: u32, size: usize, batch: u32) -> Res<f64> {
    let sub_client = nats_ws::connect(nats_ws::Options::new(url).name("bench-sub")).await?;
    let pub_client = nats_ws::connect(nats_ws::Options::new(url).name("bench-pub")).await?;
    let subject = subject("bench.native.ours");
    let mut sub = sub_client.subscribe(&subject)?;
    sub_client.flush().await?;
    let payload = vec![b'x'; size];
    let t0 = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut count = 0;
        while count < n {
            match sub.next().await {
                Some(Ok(_)) => count += 1,
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("subscription ended".to_owned()),
            }
            PROGRESS.store(count, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(Instant::now())
    });
    for i in 1..=n {
        pub_client.publish(&subject, &payload)?;
        if batch > 0 && i % batch == 0 {
            pub_client.flush().await?;
        }
    }
    pub_client.flush().await?;
    let t1 = receiver.await??;
    pub_client.close();
    sub_client.close();
    Ok(f64::from(n) / (t1 - t0).as_secs_f64())
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

async fn async_nats_pubsub(url: &str, n: u32, size: usize, batch: u32) -> Res<f64> {
    let sub_client = async_nats::ConnectOptions::new()
        .event_callback(|e| async move {
            use async_nats::Event::{Closed, Connected, Disconnected};
            if !matches!(e, Connected | Disconnected | Closed) {
                eprintln!("async-nats (subscriber): {e}");
            }
        })
        // The default (65536 messages) drops messages ("slow consumer") when the subscribing task
        // falls behind a burst; nats-ws's subscriptions are unbounded, so give async-nats room too.
        .subscription_capacity(n as usize + 1024)
        .name("bench-sub")
        .connect(url)
        .await?;
    let pub_client = async_nats::ConnectOptions::new()
        .name("bench-pub")
        .connect(url)
        .await?;
    let subject = subject("bench.native.async_nats");
    let mut sub = sub_client.subscribe(subject.clone()).await?;
    sub_client.flush().await?;
    let payload = Bytes::from(vec![b'x'; size]);
    let t0 = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut count = 0;
        while count < n {
            match sub.next().await {
                Some(_) => count += 1,
                None => return Err("subscription ended".to_owned()),
            }
            PROGRESS.store(count, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(Instant::now())
    });
    for i in 1..=n {
        pub_client.publish(subject.clone(), payload.clone()).await?;
        if batch > 0 && i % batch == 0 {
            pub_client.flush().await?;
        }
    }
    pub_client.flush().await?;
    let t1 = receiver.await??;
    Ok(f64::from(n) / (t1 - t0).as_secs_f64())
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
    responder.flush().await?;
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
            "{what}: timed out after 120 s ({} messages received)",
            PROGRESS.load(std::sync::atomic::Ordering::Relaxed)
        )
        .into()),
    }
}

#[tokio::main]
async fn main() -> Res<()> {
    let a = args();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    // Alternate which client goes first, so neither always runs on a warmer server.
    for rep in 0..a.reps {
        for first_ours in [rep % 2 == 0, rep % 2 == 1] {
            if first_ours {
                ours.push(
                    within("nats-ws pub→sub", ours_pubsub(&a.ws, a.n, a.size, a.batch)).await?,
                );
            } else {
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
    let ours_rr = within("nats-ws request", ours_rr(&a.ws, a.rr, a.size)).await?;
    let theirs_rr = within("async-nats request", async_nats_rr(&a.ws, a.rr, a.size)).await?;
    let side = |rates: Vec<f64>, rr: Vec<f64>| {
        serde_json::json!({
            "native_pubsub_msgs_per_s": median(rates.clone()),
            "native_pubsub_runs": rates,
            "native_rr_p50_ms": percentile(rr.clone(), 50.0),
            "native_rr_p99_ms": percentile(rr, 99.0),
        })
    };
    let out = serde_json::json!({
        "params": { "n": a.n, "size": a.size, "batch": a.batch, "reps": a.reps, "rr": a.rr },
        "ours": side(ours, ours_rr),
        "async_nats": side(theirs, theirs_rr),
    });
    println!("{out}");
    Ok(())
}
