// The ceiling: what the browser + nats-server pipeline carries when the client does (almost)
// nothing. A bare WebSocket speaking just enough NATS (CONNECT, SUB, PUB, PING) with no parsing:
// the subscriber counts bytes, the publisher sends pre-encoded batches. Not a client anyone would
// use — it is the reference that shows how much of a throughput number is the client and how much
// is Chromium's WebSocket path and the server (which cuts what it sends a browser into 4 KiB frames).
// Same function names, arguments and batching as bench/natsjs.mjs and bench/wasm/src/bench.rs.

const enc = new TextEncoder();
const now = () => performance.now();
const unique = (prefix) => `${prefix}.${((Math.random() * 4294967295) >>> 0).toString(16).padStart(8, "0")}`;
const PONG = enc.encode("PONG\r\n");

/** Counts occurrences of PONG\r\n across frames (frame-boundary safe enough: keeps a 5-byte tail). */
function pongCounter() {
  let tail = new Uint8Array(0);
  return (chunk) => {
    const buf = new Uint8Array(tail.length + chunk.length);
    buf.set(tail);
    buf.set(chunk, tail.length);
    let n = 0;
    for (let i = buf.indexOf(80); i >= 0 && i + PONG.length <= buf.length; i = buf.indexOf(80, i + 1)) {
      let ok = true;
      for (let j = 1; j < PONG.length; j++) if (buf[i + j] !== PONG[j]) { ok = false; break; }
      if (ok) n++;
    }
    tail = buf.slice(Math.max(0, buf.length - (PONG.length - 1)));
    return n;
  };
}

async function open(url) {
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  await new Promise((resolve, reject) => {
    ws.onmessage = () => resolve(); // INFO
    ws.onerror = () => reject(new Error("raw websocket failed"));
  });
  const conn = { ws, pongs: 0, waiters: [], bytes: 0, onBytes: null };
  const count = pongCounter();
  let counting = true;
  ws.onmessage = (e) => {
    const chunk = new Uint8Array(e.data);
    if (conn.onBytes) {
      conn.onBytes(chunk.length);
      return; // a subscriber in its counting phase: no scanning at all
    }
    if (!counting) return;
    conn.pongs += count(chunk);
    while (conn.waiters.length && conn.waiters[0].n <= conn.pongs) conn.waiters.shift().resolve();
  };
  conn.ping = () =>
    new Promise((resolve) => {
      conn.sent = (conn.sent ?? 0) + 1;
      conn.waiters.push({ n: conn.sent, resolve });
      ws.send(enc.encode("PING\r\n"));
    });
  ws.send(enc.encode('CONNECT {"verbose":false,"pedantic":false,"protocol":1,"headers":false,"no_responders":false}\r\n'));
  await conn.ping();
  return conn;
}

function pubBatch(subject, size, count) {
  const one = enc.encode(`PUB ${subject} ${size}\r\n${"x".repeat(size)}\r\n`);
  const buf = new Uint8Array(one.length * count);
  for (let i = 0; i < count; i++) buf.set(one, i * one.length);
  return buf;
}

// Frames of at most 64 KiB, as nats-ws sends: with WebSocket compression nats-server 2.15 closes a
// connection whose frame inflates beyond max_payload (1 MiB), and a batch of 1000 × 1 KiB does.
const FRAME = 64 * 1024;

async function publishAll(conn, subject, n, size, batch) {
  const per = batch > 0 ? batch : n;
  const full = pubBatch(subject, size, Math.min(per, n));
  for (let sent = 0; sent < n; sent += per) {
    const k = Math.min(per, n - sent);
    const bytes = k === per ? full : full.subarray(0, (full.length / per) * k);
    for (let at = 0; at < bytes.length; at += FRAME) conn.ws.send(bytes.subarray(at, at + FRAME));
    await conn.ping();
  }
}

export async function pub_throughput(url, n, size, batch) {
  const conn = await open(url);
  const subject = unique("bench.pub");
  const t0 = now();
  await publishAll(conn, subject, n, size, batch);
  const ms = now() - t0;
  conn.ws.close();
  return (n * 1000) / ms;
}

export async function pubsub_throughput(url, n, size, batch) {
  const sub = await open(url);
  const pub = await open(url);
  const subject = unique("bench.pubsub");
  sub.ws.send(enc.encode(`SUB ${subject} 1\r\n`));
  await sub.ping();
  const perMsg = enc.encode(`MSG ${subject} 1 ${size}\r\n`).length + size + 2;
  const t0 = now();
  const received = new Promise((resolve) => {
    let bytes = 0;
    sub.onBytes = (k) => {
      bytes += k;
      if (bytes >= perMsg * n) resolve(now());
    };
  });
  await publishAll(pub, subject, n, size, batch);
  const t1 = await received;
  pub.ws.close();
  sub.ws.close();
  return (n * 1000) / (t1 - t0);
}

/**
 * Request/reply through the same pipeline with no client at all: the responder answers every frame
 * it receives with one pre-encoded PUB to the requester's inbox; the requester counts a frame as the
 * reply. One request in flight at a time, as in the other two clients.
 */
export async function request_reply(url, n, size, warmup) {
  const responder = await open(url);
  const requester = await open(url);
  const subject = unique("bench.rr");
  const inbox = unique("_INBOX.raw");
  const payload = "x".repeat(size);
  responder.ws.send(enc.encode(`SUB ${subject} 1\r\n`));
  await responder.ping();
  requester.ws.send(enc.encode(`SUB ${inbox} 1\r\n`));
  await requester.ping();
  const answer = enc.encode(`PUB ${inbox} ${size}\r\n${payload}\r\n`);
  responder.onBytes = () => responder.ws.send(answer);
  let replied = null;
  requester.onBytes = () => replied?.();
  const request = enc.encode(`PUB ${subject} ${inbox} ${size}\r\n${payload}\r\n`);
  const latencies = new Float64Array(n);
  for (let i = 0; i < warmup + n; i++) {
    const t0 = now();
    await new Promise((resolve) => {
      replied = resolve;
      requester.ws.send(request);
    });
    if (i >= warmup) latencies[i - warmup] = now() - t0;
  }
  requester.ws.close();
  responder.ws.close();
  return latencies;
}
