//! The benchmark functions. Each mirrors the function of the same name in bench/natsjs.mjs, line
//! for line where the two APIs allow: same subjects, payloads, batching and order of operations.

use futures::StreamExt;
use nats_ws::kv::KvConfig;
use nats_ws::{Client, Options, Subscriber};
use wasm_bindgen::prelude::*;

fn err(e: impl std::fmt::Display) -> JsValue {
    JsValue::from_str(&e.to_string())
}

/// `performance.now()`, in ms (5 µs resolution when the page is cross-origin isolated, as the bench
/// page is).
fn now() -> f64 {
    thread_local! {
        static PERF: web_sys::Performance = web_sys::window()
            .and_then(|w| w.performance())
            .expect("performance.now");
    }
    PERF.with(|p| p.now())
}

async fn connect(url: &str, name: &str) -> Result<Client, JsValue> {
    nats_ws::connect(Options::new(url).name(name))
        .await
        .map_err(err)
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}.{:08x}",
        (js_sys::Math::random() * 4294967295.0) as u32
    )
}

/// Publishes `n` messages of `size` bytes from a Rust loop; every `batch` messages (0: never) it
/// waits for a flush, as a user publishing a long burst would. Then flushes: done once the server
/// has processed everything. Returns messages per second.
#[wasm_bindgen]
pub async fn pub_throughput(url: String, n: u32, size: u32, batch: u32) -> Result<f64, JsValue> {
    let client = connect(&url, "bench-pub").await?;
    let subject = unique("bench.pub");
    let payload = vec![b'x'; size as usize];
    let t0 = now();
    for i in 1..=n {
        client.publish(&subject, &payload).map_err(err)?;
        if batch > 0 && i % batch == 0 {
            client.flush().await.map_err(err)?;
        }
    }
    client.flush().await.map_err(err)?;
    let ms = now() - t0;
    client.close();
    Ok(f64::from(n) * 1000.0 / ms)
}

/// Publishes `n` messages on one connection and counts them arriving on a subscription of a second
/// connection in the same page; the clock stops at the n-th arrival. Messages per second.
#[wasm_bindgen]
pub async fn pubsub_throughput(url: String, n: u32, size: u32, batch: u32) -> Result<f64, JsValue> {
    let sub_client = connect(&url, "bench-sub").await?;
    let pub_client = connect(&url, "bench-pub").await?;
    let subject = unique("bench.pubsub");
    let mut sub = sub_client.subscribe(&subject).map_err(err)?;
    sub_client.flush().await.map_err(err)?;
    let payload = vec![b'x'; size as usize];
    let ms = pump(&mut sub, &pub_client, &subject, n, &payload, batch).await?;
    pub_client.close();
    sub_client.close();
    Ok(f64::from(n) * 1000.0 / ms)
}

/// Publishes `n` messages from `pub_client` (a flush every `batch`) while counting them arriving
/// on `sub`; the time (ms) from the first publish to the n-th arrival.
async fn pump(
    sub: &mut Subscriber,
    pub_client: &Client,
    subject: &str,
    n: u32,
    payload: &[u8],
    batch: u32,
) -> Result<f64, JsValue> {
    let t0 = now();
    let receive = async {
        let mut count = 0u32;
        while count < n {
            match sub.next().await {
                Some(Ok(_)) => count += 1,
                Some(Err(e)) => return Err(err(e)),
                None => return Err(err("the subscription ended")),
            }
        }
        Ok(now())
    };
    let publish = async {
        for i in 1..=n {
            pub_client.publish(subject, payload).map_err(err)?;
            if batch > 0 && i % batch == 0 {
                pub_client.flush().await.map_err(err)?;
            }
        }
        pub_client.flush().await.map_err(err)
    };
    let (received, published) = futures::join!(receive, publish);
    published?;
    Ok(received? - t0)
}

/// Request/reply round trips, one at a time: the responder is a second connection in the same page
/// (a subscription task answering with the request's payload). `warmup` requests are not counted.
/// Returns every round trip in ms.
#[wasm_bindgen]
pub async fn request_reply(
    url: String,
    n: u32,
    size: u32,
    warmup: u32,
) -> Result<Vec<f64>, JsValue> {
    let responder = connect(&url, "bench-responder").await?;
    let requester = connect(&url, "bench-requester").await?;
    let subject = unique("bench.rr");
    let mut requests = responder.subscribe(&subject).map_err(err)?;
    responder.flush().await.map_err(err)?;
    let answer = responder.clone();
    wasm_bindgen_futures::spawn_local(async move {
        while let Some(Ok(m)) = requests.next().await {
            if let Some(reply) = &m.reply {
                let _ = answer.publish(reply, &m.payload);
            }
        }
    });
    let payload = vec![b'x'; size as usize];
    let mut latencies = Vec::with_capacity(n as usize);
    for i in 0..warmup + n {
        let t0 = now();
        requester.request(&subject, &payload).await.map_err(err)?;
        if i >= warmup {
            latencies.push(now() - t0);
        }
    }
    requester.close();
    responder.close();
    Ok(latencies)
}

/// KV put then get latencies (ms), `n` of each, on a fresh bucket (history 1, file storage), values
/// of `size` bytes over 10 keys. The bucket is deleted afterwards.
#[wasm_bindgen]
pub async fn kv_latencies(
    url: String,
    bucket: String,
    n: u32,
    size: u32,
) -> Result<JsValue, JsValue> {
    let client = connect(&url, "bench-kv").await?;
    let js = client.jetstream();
    let kv = js
        .create_key_value(KvConfig::new(bucket.as_str()).history(1))
        .await
        .map_err(err)?;
    let value = vec![b'x'; size as usize];
    let mut puts = Vec::with_capacity(n as usize);
    for i in 0..n {
        let key = format!("k{}", i % 10);
        let t0 = now();
        kv.put(&key, &value).await.map_err(err)?;
        puts.push(now() - t0);
    }
    let mut gets = Vec::with_capacity(n as usize);
    for i in 0..n {
        let key = format!("k{}", i % 10);
        let t0 = now();
        let entry = kv.get(&key).await.map_err(err)?;
        gets.push(now() - t0);
        if entry.map(|e| e.value.len()) != Some(size as usize) {
            return Err(err(format!("kv get {key}: wrong value")));
        }
    }
    js.delete_key_value(&bucket).await.map_err(err)?;
    client.close();
    let out = js_sys::Object::new();
    js_sys::Reflect::set(&out, &"put".into(), &js_sys::Float64Array::from(&puts[..]))?;
    js_sys::Reflect::set(&out, &"get".into(), &js_sys::Float64Array::from(&gets[..]))?;
    Ok(out.into())
}

/// Memory under a long subscription: `warmup` messages through a subscription, then the wasm memory
/// size (`before`), then `n` more through the same subscription, then the size again (`after`).
/// Paced like `pubsub_throughput`. Returns {before, after, msgs_per_s} (bytes; the rate of the n).
/// The connections stay open until the JS side calls `drain_memory_close` (so the JS heap can be
/// measured with them alive).
#[wasm_bindgen]
pub async fn drain_memory(
    url: String,
    warmup: u32,
    n: u32,
    size: u32,
    batch: u32,
) -> Result<JsValue, JsValue> {
    let sub_client = connect(&url, "bench-sub").await?;
    let pub_client = connect(&url, "bench-pub").await?;
    let subject = unique("bench.drain");
    let mut sub = sub_client.subscribe(&subject).map_err(err)?;
    sub_client.flush().await.map_err(err)?;
    let payload = vec![b'x'; size as usize];
    pump(&mut sub, &pub_client, &subject, warmup, &payload, batch).await?;
    let before = super::wasm_memory_bytes();
    let ms = pump(&mut sub, &pub_client, &subject, n, &payload, batch).await?;
    let after = super::wasm_memory_bytes();
    KEEP.with(|k| k.borrow_mut().push((sub_client, pub_client, sub)));
    let out = js_sys::Object::new();
    js_sys::Reflect::set(&out, &"before".into(), &before.into())?;
    js_sys::Reflect::set(&out, &"after".into(), &after.into())?;
    js_sys::Reflect::set(
        &out,
        &"msgs_per_s".into(),
        &(f64::from(n) * 1000.0 / ms).into(),
    )?;
    Ok(out.into())
}

thread_local! {
    static KEEP: std::cell::RefCell<Vec<(Client, Client, Subscriber)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Closes what `drain_memory` left open.
#[wasm_bindgen]
pub fn drain_memory_close() {
    for (a, b, sub) in KEEP.with(|k| std::mem::take(&mut *k.borrow_mut())) {
        drop(sub);
        a.close();
        b.close();
    }
}
