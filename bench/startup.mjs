// The nats.js side of the startup benchmark (bench.mjs `startup`): what the app's /counter shows
// first — "Live" once connected, then the counter's value from the KV bucket `via_config` — done
// with nats.js as its users would. bench/run.sh bundles this file with esbuild (minified, ESM)
// into bench/build/natsjs-startup.js, which bench/startup.html loads.

import { wsconnect } from "@nats-io/nats-core";
import { Kvm } from "@nats-io/kv";

const servers = new URLSearchParams(location.search).get("ws");
const status = document.querySelector('[data-testid="status"]');
const value = document.querySelector('[data-testid="counter-value"]');

try {
  const nc = await wsconnect({ servers, name: "bench-startup" });
  status.textContent = "Live";
  const kv = await new Kvm(nc).open("via_config");
  const entry = await kv.get("counter");
  // The app stores {"value": n, …} (and reads a bare number too).
  const text = entry ? entry.string() : "0";
  let n;
  try {
    n = JSON.parse(text).value ?? Number(text);
  } catch {
    n = Number(text);
  }
  value.textContent = String(n);
} catch (e) {
  status.textContent = `error: ${e}`;
}
