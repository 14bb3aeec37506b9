// nats.js (v3: @nats-io/nats-core wsconnect, @nats-io/kv) used as its users would: plain JS loops.
// Each function mirrors the one of the same name in bench/wasm/src/bench.rs: same subjects, payloads,
// batching and order of operations. bench/run.sh bundles this file with esbuild (minified, ESM) into
// bench/build/natsjs.js, which bench/index.html loads.

import { wsconnect } from "@nats-io/nats-core";
import { Kvm } from "@nats-io/kv";

const now = () => performance.now();
const connect = (url, name) => wsconnect({ servers: url, name });
const unique = (prefix) => `${prefix}.${((Math.random() * 4294967295) >>> 0).toString(16).padStart(8, "0")}`;

/** N messages of `size` bytes from a JS loop, a flush every `batch` (0: never), then a flush. Msgs/s. */
export async function pub_throughput(url, n, size, batch) {
  const nc = await connect(url, "bench-pub");
  const subject = unique("bench.pub");
  const payload = new Uint8Array(size).fill(120);
  const t0 = now();
  for (let i = 1; i <= n; i++) {
    nc.publish(subject, payload);
    if (batch > 0 && i % batch === 0) await nc.flush();
  }
  await nc.flush();
  const ms = now() - t0;
  await nc.close();
  return (n * 1000) / ms;
}

/**
 * Publishes `n` messages from `pub` while counting them on `messages` (the subscription's async
 * iterator: what `for await` runs on, kept across calls because leaving a `for await` loop ends a
 * nats.js subscription); ms from the first publish to the n-th arrival.
 */
async function pump(messages, pub, subject, n, payload, batch) {
  const t0 = now();
  const receive = (async () => {
    for (let count = 0; count < n; count++) {
      const { done } = await messages.next();
      if (done) throw new Error("the subscription ended");
    }
    return now();
  })();
  const publish = (async () => {
    for (let i = 1; i <= n; i++) {
      pub.publish(subject, payload);
      if (batch > 0 && i % batch === 0) await pub.flush();
    }
    await pub.flush();
  })();
  const [received] = await Promise.all([receive, publish]);
  return received - t0;
}

/** Publish on one connection, count arrivals on a subscription of a second one. Msgs/s. */
export async function pubsub_throughput(url, n, size, batch) {
  const subNc = await connect(url, "bench-sub");
  const pubNc = await connect(url, "bench-pub");
  const subject = unique("bench.pubsub");
  const sub = subNc.subscribe(subject);
  await subNc.flush();
  const payload = new Uint8Array(size).fill(120);
  const ms = await pump(sub[Symbol.asyncIterator](), pubNc, subject, n, payload, batch);
  await pubNc.close();
  await subNc.close();
  return (n * 1000) / ms;
}

/** Request/reply round trips one at a time; the responder is a second connection. ms each. */
export async function request_reply(url, n, size, warmup) {
  const responder = await connect(url, "bench-responder");
  const requester = await connect(url, "bench-requester");
  const subject = unique("bench.rr");
  const requests = responder.subscribe(subject);
  await responder.flush();
  (async () => {
    for await (const m of requests) m.respond(m.data);
  })();
  const payload = new Uint8Array(size).fill(120);
  const latencies = new Float64Array(n);
  for (let i = 0; i < warmup + n; i++) {
    const t0 = now();
    await requester.request(subject, payload);
    if (i >= warmup) latencies[i - warmup] = now() - t0;
  }
  await requester.close();
  await responder.close();
  return latencies;
}

/** KV put then get latencies (ms), `n` of each, fresh bucket (history 1, file storage), 10 keys. */
export async function kv_latencies(url, bucket, n, size) {
  const nc = await connect(url, "bench-kv");
  const kvm = new Kvm(nc);
  const kv = await kvm.create(bucket, { history: 1 });
  const value = new Uint8Array(size).fill(120);
  const puts = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const key = `k${i % 10}`;
    const t0 = now();
    await kv.put(key, value);
    puts[i] = now() - t0;
  }
  const gets = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const key = `k${i % 10}`;
    const t0 = now();
    const entry = await kv.get(key);
    gets[i] = now() - t0;
    if (!entry || entry.value.length !== size) throw new Error(`kv get ${key}: wrong value`);
  }
  await kv.destroy();
  await nc.close();
  return { put: puts, get: gets };
}

let kept = [];

/** `warmup` then `n` messages through one subscription; the connections stay open (see drain_memory_close). */
export async function drain_memory(url, warmup, n, size, batch) {
  const subNc = await connect(url, "bench-sub");
  const pubNc = await connect(url, "bench-pub");
  const subject = unique("bench.drain");
  const sub = subNc.subscribe(subject);
  await subNc.flush();
  const payload = new Uint8Array(size).fill(120);
  const messages = sub[Symbol.asyncIterator]();
  await pump(messages, pubNc, subject, warmup, payload, batch);
  const ms = await pump(messages, pubNc, subject, n, payload, batch);
  kept.push(subNc, pubNc);
  return { msgs_per_s: (n * 1000) / ms };
}

export async function drain_memory_close() {
  const all = kept;
  kept = [];
  for (const nc of all) await nc.close();
}
