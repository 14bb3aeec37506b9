// The benchmark driver: nats-ws (bench/wasm) against nats.js (bench/natsjs.mjs), and the
// bare-WebSocket ceiling (bench/raw.mjs), in one headless Chromium against one nats-server in one
// run; plus the app's own numbers (fan-out across tabs, time back to "Live"), shipped sizes, and
// the native numbers bench/run.sh measured before (bench/build/native.json, criterion's files).
//
//   node bench/bench.mjs --ws <ws_url> --control <control_url> [--quick] [--profile]
//        [--only pub_16b,pubsub_16b,pub_1k,pubsub_1k,pubsub_16b_1m,rr,kv,memory,fanout,reconnect,idle,monitor,size]
//        [--monitor-rates 20000,40000] [--monitor-paused]
//        [--batch 1000] [--n N] [--reps R] [--criterion-dir target/criterion] [--build bench/build]
//        [--out bench/results.json]            (CHROMIUM=<path> overrides /usr/bin/chromium)
//
// bench/run.sh builds everything first and starts the server; see BENCHMARKS.md. Prints a markdown
// table and writes results.json as {"ours": {...}, "natsjs": {...}, "ratios": {...}, ...}.
// Exits non-zero if the harness breaks (a metric fails, times out, or is not a positive number).

import { createServer } from "node:http";
import { readFile, readdir, writeFile, mkdir } from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { execFileSync } from "node:child_process";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CHROMIUM_ARGS as E2E_CHROMIUM_ARGS, launchChromium } from "../e2e/chromium.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));

// ---- arguments --------------------------------------------------------------------------------

const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};
// `--settings-summary <out.json> <name>=<results.json>…` (bench/run.sh --settings): one table of
// the publish → subscribe rows measured against each server setting.
if (flag("--settings-summary")) {
  const [out, ...pairs] = argv.slice(argv.indexOf("--settings-summary") + 1);
  const settings = {};
  const lines = [
    "| server setting | payload | nats-ws (msgs/s) | nats.js | bare WebSocket (ceiling) | ours / ceiling | ours / nats.js |",
    "|---|---|---:|---:|---:|---:|---:|",
  ];
  for (const pair of pairs) {
    const [name, file] = pair.split("=");
    const r = JSON.parse(await readFile(file, "utf8"));
    settings[name] = { nats_server: r.machine.nats_server, ours: {}, natsjs: {}, ceiling: {}, ours_vs_ceiling: {} };
    for (const [key, payload] of [["pubsub_16b_msgs_per_s", "16 B"], ["pubsub_1k_msgs_per_s", "1 KiB"]]) {
      const [o, n, c] = [r.ours[key], r.natsjs[key], r.ceiling[key]];
      Object.assign(settings[name].ours, { [key]: o });
      Object.assign(settings[name].natsjs, { [key]: n });
      Object.assign(settings[name].ceiling, { [key]: c });
      settings[name].ours_vs_ceiling[key] = o / c;
      const k = (v) => (v === undefined ? "failed" : `${(v / 1000).toFixed(1)} k`);
      lines.push(`| ${name} (${r.machine.nats_server}) | ${payload} | ${k(o)} | ${k(n)} | ${k(c)} | ${(o / c).toFixed(2)} | ${(o / n).toFixed(2)} |`);
    }
  }
  await writeFile(out, JSON.stringify({ date: new Date().toISOString(), settings }, null, 2) + "\n");
  console.log(lines.join("\n"));
  process.exit(0);
}
const wsUrl = option("--ws");
const controlUrl = option("--control");
if (!wsUrl || !controlUrl) {
  console.error("usage: node bench/bench.mjs --ws <ws_url> --control <control_url> [--quick] [--profile]");
  process.exit(2);
}
const quick = flag("--quick");
const profiling = flag("--profile");
const buildDir = path.resolve(option("--build", path.join(here, "build")));
const criterionDir = option("--criterion-dir", null);
const outFile = path.resolve(option("--out", path.join(here, quick ? "build/results-quick.json" : "results.json")));
const only = option("--only", "")
  .split(",")
  .filter(Boolean);
const wanted = (name) => only.length === 0 || only.includes(name);

// What is measured, and how much of it. The issue fixes 200k messages, 2000 requests, 1M messages
// for memory, 10 other tabs; the rest are our choices, the same for both clients.
const P = quick
  ? { reps: 1, reps16: 1, n: 5000, rr: 100, rrWarmup: 10, kv: 20, kvWarmup: 20, memWarmup: 1000, mem: 10000, fanTabs: 2, fanRounds: 3, reconnectRounds: 1, downtimeMs: 200 }
  : { reps: 3, reps16: 5, n: 200000, rr: 2000, rrWarmup: 200, kv: 500, kvWarmup: 300, memWarmup: 100000, mem: 1000000, fanTabs: 10, fanRounds: 100, reconnectRounds: 3, downtimeMs: 1000 };
// Publishers wait for a flush every `batch` messages (0: never), the same on both sides. A flush
// is one round trip; it keeps the subscriber (in the same page, so starved while the publishing
// loop runs) within one batch of the publisher, so that neither nats-server nor a client ever
// drops messages as a slow consumer.
P.batch = Number(option("--batch", "1000"));
if (option("--n")) P.n = Number(option("--n"));
if (option("--reps")) P.reps = P.reps16 = Number(option("--reps"));
P.size16 = 16;
P.size1k = 1024;
P.kvSize = 64;
P.rrSize = 16;

// The tests' flags, with precise memory figures and a gc() to call.
const CHROMIUM_ARGS = [...E2E_CHROMIUM_ARGS, "--enable-precise-memory-info", "--js-flags=--expose-gc"];

const log = (...a) => console.error("bench:", ...a);

// ---- small helpers ----------------------------------------------------------------------------

function percentile(values, p) {
  const v = Array.from(values).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * v.length);
  return v[Math.min(Math.max(rank, 1), v.length) - 1];
}
const median = (values) => percentile(values, 50);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function control(action) {
  const res = await fetch(`${controlUrl}/${action}`);
  if (!res.ok) throw new Error(`control ${action}: HTTP ${res.status}`);
  await res.text();
}

// ---- static servers ---------------------------------------------------------------------------

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".mjs": "text/javascript",
  ".wasm": "application/wasm",
  ".css": "text/css",
  ".json": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
};

/**
 * Serves `root` on 127.0.0.1. `isolated`: cross-origin isolation headers, so performance.now() has
 * 5 µs resolution instead of 100 µs. `spa`: unknown paths without an extension get index.html.
 */
function serve(root, { isolated = false, spa = false, cache = false } = {}) {
  const server = createServer(async (req, res) => {
    const headers = { "Cache-Control": "no-store" };
    if (isolated) {
      headers["Cross-Origin-Opener-Policy"] = "same-origin";
      headers["Cross-Origin-Embedder-Policy"] = "require-corp";
    }
    let rel = decodeURIComponent(new URL(req.url, "http://x").pathname);
    if (rel.endsWith("/")) rel += "index.html";
    let file = path.join(root, path.normalize(rel));
    if (!file.startsWith(root)) {
      res.writeHead(403, headers).end();
      return;
    }
    if (spa && !existsSync(file) && !path.extname(rel)) file = path.join(root, "index.html");
    try {
      const body = await readFile(file);
      headers["Content-Type"] = TYPES[path.extname(file)] ?? "application/octet-stream";
      // `cache`: what a static host does for the startup runs — pages revalidated, the rest
      // (trunk's names carry a hash) kept for an hour.
      if (cache) headers["Cache-Control"] = path.extname(file) === ".html" ? "no-cache" : "max-age=3600";
      res.writeHead(200, headers).end(body);
    } catch {
      res.writeHead(404, headers).end("not found");
    }
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve({ server, url: `http://127.0.0.1:${server.address().port}` }));
  });
}

// ---- CPU profiles (--profile) -----------------------------------------------------------------

/** Rust's legacy mangling (`_ZN…E`) as V8 shows wasm names, made readable. */
function demangle(name) {
  const m = /^_?_ZN(.*)E$/.exec(name);
  if (!m) return name;
  let rest = m[1];
  const parts = [];
  while (rest.length) {
    const len = /^(\d+)/.exec(rest);
    if (!len) break;
    const n = Number(len[1]);
    parts.push(rest.slice(len[1].length, len[1].length + n));
    rest = rest.slice(len[1].length + n);
  }
  if (parts.length && /^h[0-9a-f]{16}$/.test(parts[parts.length - 1])) parts.pop();
  const map = { $LT$: "<", $GT$: ">", $RF$: "&", $BP$: "*", $C$: ",", $u20$: " ", $u27$: "'", $u5b$: "[", $u5d$: "]", $u7b$: "{", $u7d$: "}", $u7e$: "~", $SP$: "@" };
  return parts
    .join("::")
    .replace(/\$[A-Za-z0-9]+\$/g, (s) => map[s] ?? s)
    .replace(/\.\./g, "::");
}

/** Self time per function (top `limit`), in % of the profile's samples. */
function summarizeProfile(profile, limit = 25) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const deltas = profile.timeDeltas ?? [];
  let total = 0;
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const dt = deltas[i + 1] ?? deltas[i] ?? 0;
    const cf = node.callFrame;
    const file = cf.url ? cf.url.split("/").pop() : "";
    const key = `${demangle(cf.functionName || "(anonymous)")}${file ? ` [${file}]` : ""}`;
    self.set(key, (self.get(key) ?? 0) + dt);
    total += dt;
  });
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, t]) => ({ name, pct: +((100 * t) / total).toFixed(1), ms: +(t / 1000).toFixed(1) }));
}

// ---- browser metrics --------------------------------------------------------------------------

let browser;
let benchUrl;

/** Opens a fresh page with only `client` loaded and calls its `fn(...args)`. */
async function inPage(client, fn, args, { timeoutMs = 180000, profileAs = null, warm = null, onWarm = null } = {}) {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  try {
    await page.goto(`${benchUrl}/index.html?clients=${client}`);
    await page.waitForFunction(() => window.benchReady || window.benchError, null, { timeout: 30000 });
    const err = await page.evaluate(() => window.benchError);
    if (err) throw new Error(`loading ${client}: ${err}`);
    let warmed;
    if (warm) {
      // The same call on a smaller scale first, so both measure warmed-up code (V8 tiers up hot
      // JS and wasm functions while they run) rather than a fresh page's first second.
      warmed = await withTimeout(
        page.evaluate(
          async ([client, fn, args]) => {
            const r = await (await window.loadClient(client))[fn](...args);
            // Kept (as plain arrays) only where a metric reads the warm-up itself.
            return r && typeof r === "object" && !ArrayBuffer.isView(r)
              ? Object.fromEntries(Object.entries(r).map(([k, x]) => [k, ArrayBuffer.isView(x) ? Array.from(x) : x]))
              : null;
          },
          [client, fn, warm],
        ),
        timeoutMs,
        `${client} ${fn} (warm-up)`,
      );
      if (onWarm) onWarm(warmed);
    }
    let cdp;
    if (profileAs) {
      cdp = await page.context().newCDPSession(page);
      await cdp.send("Profiler.enable");
      await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
      await cdp.send("Profiler.start");
    }
    const result = await withTimeout(
      page.evaluate(
        async ([client, fn, args]) => {
          const m = await window.loadClient(client);
          const plain = (v) =>
            ArrayBuffer.isView(v)
              ? Array.from(v)
              : v && typeof v === "object"
                ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]))
                : v;
          return plain(await m[fn](...args));
        },
        [client, fn, args],
      ),
      timeoutMs,
      `${client} ${fn}`,
    );
    if (cdp) {
      const { profile } = await cdp.send("Profiler.stop");
      await mkdir(path.join(buildDir, "profiles"), { recursive: true });
      const file = path.join(buildDir, "profiles", `${profileAs}.cpuprofile`);
      await writeFile(file, JSON.stringify(profile));
      profiles[profileAs] = summarizeProfile(profile);
    }
    return result;
  } catch (e) {
    throw new Error(`${e.message}${errors.length ? `\npage errors: ${errors.join("\n")}` : ""}`);
  } finally {
    await page.close();
  }
}

const profiles = {};
const ours = {};
const natsjs = {};
const ceiling = {};
const side = { ours, natsjs, raw: ceiling };
const runs = { ours: {}, natsjs: {}, raw: {} };

/**
 * Runs `fn` for both clients `P.reps` times, alternating which goes first; with `raw`, also for the
 * bare-WebSocket ceiling (bench/raw.mjs), last.
 */
async function both(name, fn, argsFor, collect, { raw = false, warmFor = null, reps = P.reps, collectWarm = null } = {}) {
  const warms = { ours: [], natsjs: [], raw: [] };
  for (let rep = 0; rep < reps; rep++) {
    const order = rep % 2 === 0 ? ["ours", "natsjs"] : ["natsjs", "ours"];
    if (raw) order.push("raw");
    for (const client of order) {
      const profileAs = profiling && rep === 0 ? `${client}-${name}` : null;
      const t = Date.now();
      const onWarm = collectWarm ? (w) => warms[client].push(w) : null;
      const r = await inPage(client, fn, argsFor(client, rep), { profileAs, warm: warmFor?.(client, rep), onWarm });
      (runs[client][name] ??= []).push(r);
      log(`${name} ${client}: ${JSON.stringify(r).slice(0, 120)} (${Date.now() - t} ms)`);
    }
  }
  for (const client of raw ? ["ours", "natsjs", "raw"] : ["ours", "natsjs"]) {
    collect(side[client], runs[client][name]);
    if (collectWarm) collectWarm(side[client], warms[client]);
    // Keep results.json small: a summary per repetition instead of every latency.
    const summary = (v) => ({ n: v.length, p50: percentile(v, 50), p99: percentile(v, 99), max: Math.max(...v) });
    runs[client][name] = runs[client][name].map((r) =>
      Array.isArray(r) ? summary(r) : r && typeof r === "object" ? Object.fromEntries(Object.entries(r).map(([k, v]) => [k, summary(v)])) : r,
    );
  }
}

async function browserMetrics() {
  const { n, batch } = P;
  const warmN = Math.max(1000, Math.round(n / 10));
  for (const [size, tag] of [
    [P.size16, "16b"],
    [P.size1k, "1k"],
  ]) {
    if (wanted(`pub_${tag}`)) {
      await both(`pub_${tag}`, "pub_throughput", () => [wsUrl, n, size, batch], (s, r) => {
        s[`pub_${tag}_msgs_per_s`] = median(r);
      }, { raw: true, warmFor: () => [wsUrl, warmN, size, batch], reps: tag === "16b" ? P.reps16 : P.reps });
    }
    if (wanted(`pubsub_${tag}`)) {
      await both(`pubsub_${tag}`, "pubsub_throughput", () => [wsUrl, n, size, batch], (s, r) => {
        s[`pubsub_${tag}_msgs_per_s`] = median(r);
      }, { raw: true, warmFor: () => [wsUrl, warmN, size, batch], reps: tag === "16b" ? P.reps16 : P.reps });
    }
  }
  if (wanted("pubsub_16b_1m")) {
    // The same as pubsub_16b, five times longer: past the first fraction of a second, when socket
    // and server buffers are still growing, closer to a steady state.
    const long = P.mem;
    await both("pubsub_16b_1m", "pubsub_throughput", () => [wsUrl, long, P.size16, batch], (s, r) => {
      s.pubsub_16b_1m_msgs_per_s = median(r);
    }, { raw: true, warmFor: () => [wsUrl, warmN, P.size16, batch] });
  }
  if (wanted("rr")) {
    await both("rr", "request_reply", () => [wsUrl, P.rr, P.rrSize, P.rrWarmup], (s, r) => {
      const all = r.flat();
      s.rr_p50_ms = percentile(all, 50);
      s.rr_p99_ms = percentile(all, 99);
    }, { raw: true, warmFor: () => [wsUrl, P.rrWarmup, P.rrSize, 0] });
  }
  if (wanted("kv")) {
    await both("kv", "kv_latencies", (client, rep) => [wsUrl, `bench_${client}_${rep}`, P.kv, P.kvSize], (s, r) => {
      const put = r.flatMap((x) => x.put);
      const get = r.flatMap((x) => x.get);
      s.kv_put_p50_ms = percentile(put, 50);
      s.kv_put_p99_ms = percentile(put, 99);
      s.kv_get_p50_ms = percentile(get, 50);
      s.kv_get_p99_ms = percentile(get, 99);
    }, {
      // Each repetition is a fresh page, and a page's first few hundred operations are slower at
      // the tail than the rest (with 20 warm-up operations nats-ws's put p99 was 3.6–4.8 ms, with
      // 300 1.6; see BENCHMARKS.md "KV p99: a fresh page"). The kv_* rows are measured after
      // `kvWarmup` operations in a bucket of their own; the warm-up's own latencies are the
      // kv_*_fresh rows, what a tab that just opened sees.
      warmFor: (client, rep) => [wsUrl, `bench_${client}_${rep}_warm`, P.kvWarmup, P.kvSize],
      collectWarm: (s, w) => {
        const put = w.flatMap((x) => x?.put ?? []);
        const get = w.flatMap((x) => x?.get ?? []);
        s.kv_put_p99_fresh_ms = percentile(put, 99);
        s.kv_get_p99_fresh_ms = percentile(get, 99);
      },
    });
  }
}

/**
 * Memory: in a fresh page with nothing loaded, gc and read the JS heap; load one client, push
 * memWarmup then mem messages through one subscription (the wasm memory is read between the two
 * and after), gc with the connections still open, read the JS heap again.
 */
async function memoryMetrics() {
  if (!wanted("memory")) return;
  const MB = 1024 * 1024;
  for (const client of ["ours", "natsjs"]) {
    const page = await browser.newPage();
    try {
      await page.goto(`${benchUrl}/index.html?clients=`);
      await page.waitForFunction(() => window.benchReady, null, { timeout: 30000 });
      const heap = () =>
        page.evaluate(async () => {
          for (let i = 0; i < 3; i++) {
            window.gc();
            await new Promise((r) => setTimeout(r, 50));
          }
          return performance.memory.usedJSHeapSize;
        });
      const base = await heap();
      const r = await withTimeout(
        page.evaluate(
          async ([client, args]) => {
            const m = await window.loadClient(client);
            const atLoad = m.wasm_memory_bytes ? m.wasm_memory_bytes() : null;
            const r = await m.drain_memory(...args);
            return { ...r, atLoad };
          },
          [client, [wsUrl, P.memWarmup, P.mem, P.size16, P.batch]],
        ),
        600000,
        `${client} drain_memory`,
      );
      const after = await heap();
      await page.evaluate(async (client) => (await window.loadClient(client)).drain_memory_close(), client);
      const s = side[client];
      s.js_heap_mb = (after - base) / MB;
      s.drain_1m_msgs_per_s = r.msgs_per_s;
      if (client === "ours") {
        s.wasm_mem_at_load_mb = r.atLoad / MB;
        s.wasm_mem_before_1m_mb = r.before / MB;
        s.wasm_mem_after_1m_mb = r.after / MB;
      }
      log(`memory ${client}: JS heap +${s.js_heap_mb.toFixed(2)} MB ${JSON.stringify(r)}`);
    } finally {
      await page.close();
    }
  }
}

// ---- the app: fan-out and reconnect -----------------------------------------------------------

/**
 * A fresh browser context whose pages open the app signed in as `name` against the bench's
 * server (its settings written to localStorage before any page script runs).
 */
async function appContext(name, options = {}) {
  const context = await browser.newContext(options);
  const settings = JSON.stringify({ servers: wsUrl, name, user: "", password: "", token: "" });
  await context.addInitScript((s) => localStorage.setItem("via.settings", s), settings);
  return context;
}

async function appMetrics(appUrl) {
  if (!wanted("fanout") && !wanted("reconnect")) return idleMetrics(appUrl);
  const context = await appContext("bench");
  const tabs = [];
  try {
    for (let i = 0; i < (wanted("fanout") ? P.fanTabs + 1 : 1); i++) {
      const page = await context.newPage();
      await page.goto(`${appUrl}/counter`);
      tabs.push(page);
    }
    for (const page of tabs) {
      await page.waitForFunction(
        () => {
          const s = document.querySelector('[data-testid="status"]');
          const v = document.querySelector('[data-testid="counter-value"]');
          // …and the lazy pages' modules, which the app fetches 2 s after its start, are in: the
          // fan-out measures tabs at rest, not instantiating modules.
          const preloaded = document.documentElement.dataset.preloaded;
          return s && s.textContent.trim() === "Live" && v && /^-?\d+$/.test(v.textContent.trim()) && preloaded;
        },
        null,
        { timeout: 60000 },
      );
    }
    if (wanted("fanout")) await fanout(tabs);
    if (wanted("reconnect")) await reconnect(tabs[0]);
  } finally {
    await context.close();
  }
  await idleMetrics(appUrl);
}

// A connected tab doing nothing, measured once the Live badge's pulses after connecting are over.
const IDLE = quick ? { settleMs: 8000, ms: 5000 } : { settleMs: 8000, ms: 15000 };

/**
 * The cost of an idle tab on /counter: main-thread busy time (% of a core) and style
 * recalculations per second, from CDP Performance.getMetrics over IDLE.ms.
 */
async function idleMetrics(appUrl) {
  if (!wanted("idle")) return;
  const context = await appContext("bench-idle");
  try {
    const page = await context.newPage();
    await page.goto(`${appUrl}/counter`);
    await page.waitForFunction(
      () => document.querySelector('[data-testid="status"]')?.textContent.trim() === "Live",
      null,
      { timeout: 60000 },
    );
    await sleep(IDLE.settleMs);
    const cdp = await context.newCDPSession(page);
    await cdp.send("Performance.enable");
    const read = async () =>
      Object.fromEntries((await cdp.send("Performance.getMetrics")).metrics.map((m) => [m.name, m.value]));
    const before = await read();
    const started = Date.now();
    await sleep(IDLE.ms);
    const after = await read();
    const seconds = (Date.now() - started) / 1000;
    ours.app_idle_busy_pct = (100 * (after.TaskDuration - before.TaskDuration)) / seconds;
    ours.app_idle_style_recalcs_per_s = (after.RecalcStyleCount - before.RecalcStyleCount) / seconds;
    runs.ours.idle = { seconds, before, after };
    log(`idle tab: ${ours.app_idle_busy_pct.toFixed(2)} % of a core, ${ours.app_idle_style_recalcs_per_s.toFixed(1)} style recalculations/s`);
  } finally {
    await context.close();
  }
}

const counterValue = (page) =>
  page.evaluate(() => Number(document.querySelector('[data-testid="counter-value"]').textContent.trim()));

/** Arms a MutationObserver that resolves window.__seen with Date.now() once the value is `target`. */
const armSeen = (page, target) =>
  page.evaluate((target) => {
    const el = document.querySelector('[data-testid="counter-value"]');
    window.__seen = new Promise((resolve) => {
      const check = () => {
        if (el.textContent.trim() === String(target)) {
          observer.disconnect();
          resolve(Date.now());
        }
      };
      const observer = new MutationObserver(check);
      observer.observe(el, { childList: true, characterData: true, subtree: true });
      check();
    });
  }, target);

async function fanout(tabs) {
  const [clicker, ...others] = tabs;
  const latencies = [];
  const perTab = [];
  for (let round = 0; round < P.fanRounds; round++) {
    const before = await counterValue(clicker);
    for (const page of others) {
      const v = await counterValue(page);
      if (v !== before) throw new Error(`fan-out: tabs disagree before round ${round} (${v} vs ${before})`);
    }
    await Promise.all([clicker, ...others].map((page) => armSeen(page, before + 1)));
    // Each tab's wait is in before the click: a page runs its CDP calls in order, so once the
    // call sent after the wait returns, the wait is in. No harness call reaches a tab during the
    // round (it used to send all ten waits right after the click, into the window it measures).
    const waits = others.map((page) => page.evaluate(() => window.__seen));
    await Promise.all(others.map((page) => page.evaluate(() => 0)));
    const t0 = await clicker.evaluate(() => {
      const t = Date.now();
      document.querySelector('[data-testid="counter-inc"]').click();
      return t;
    });
    const seen = await withTimeout(Promise.all(waits), 30000, `fan-out round ${round}`);
    await clicker.evaluate(() => window.__seen);
    const times = seen.map((t) => t - t0);
    perTab.push(...times);
    latencies.push(Math.max(...times));
    await sleep(100);
  }
  ours.fanout_p50_ms = percentile(latencies, 50);
  ours.fanout_p99_ms = percentile(latencies, 99);
  ours.fanout_per_tab_p50_ms = percentile(perTab, 50);
  runs.ours.fanout = latencies;
  log(`fan-out (until visible in all ${others.length} tabs), ms: ${latencies.join(" ")}`);
}

async function reconnect(page) {
  const statusText = () => page.evaluate(() => document.querySelector('[data-testid="status"]').textContent.trim());
  const times = [];
  for (let round = 0; round < P.reconnectRounds; round++) {
    await control("stop");
    await page.waitForFunction(
      () => document.querySelector('[data-testid="status"]').textContent.trim() !== "Live",
      null,
      { timeout: 30000 },
    );
    const down = await statusText();
    await page.evaluate(() => {
      const el = document.querySelector('[data-testid="status"]');
      window.__live = new Promise((resolve) => {
        const check = () => {
          if (el.textContent.trim() === "Live") {
            observer.disconnect();
            resolve(Date.now());
          }
        };
        const observer = new MutationObserver(check);
        observer.observe(el, { childList: true, characterData: true, subtree: true });
      });
    });
    await sleep(P.downtimeMs);
    await control("start");
    const back = Date.now();
    const live = await withTimeout(page.evaluate(() => window.__live), 60000, `reconnect round ${round}`);
    times.push(live - back);
    log(`reconnect: status "${down}", Live ${live - back} ms after the server was back`);
  }
  ours.reconnect_to_live_p50_ms = percentile(times, 50);
  ours.reconnect_to_live_max_ms = Math.max(...times);
  runs.ours.reconnect = times;
}

// ---- the app: /monitor under load -------------------------------------------------------------

// The /monitor page subscribed to `>` while an outside client (a plain TCP connection, so the
// publisher costs next to nothing) publishes at a fixed rate: is every message counted, and does
// the tab stay responsive (long tasks, frame times)? Then higher rates, until the count is not
// exact any more (the client dropped as a slow consumer, or the server cut the tab off).
const MONITOR = quick
  ? { rates: [5000], seconds: 2 }
  : { rates: [20000, 40000, 80000, 160000], seconds: 10 };
if (option("--monitor-rates")) MONITOR.rates = option("--monitor-rates").split(",").map(Number);
// --monitor-paused: the log paused (counting only), to tell the cost of drawing it from the rest.
MONITOR.paused = flag("--monitor-paused");
MONITOR.subjects = 50;
MONITOR.payload = "x".repeat(64);

/** Run in a page: records its frame times (requestAnimationFrame) and long tasks until
 *  `window.__frameWatch.stop()`, which returns them as { frames, long } (ms). */
function watchFrames() {
  const m = { frames: [], long: [], last: performance.now(), on: true };
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) m.long.push(e.duration);
  });
  observer.observe({ type: "longtask" });
  const loop = (t) => {
    if (!m.on) return;
    m.frames.push(t - m.last);
    m.last = t;
    requestAnimationFrame(loop);
  };
  requestAnimationFrame(loop);
  window.__frameWatch = {
    stop() {
      m.on = false;
      observer.disconnect();
      return { frames: m.frames, long: m.long };
    },
  };
}

/** A bare NATS client over TCP: PUBs written in batches, PING/PONG to flush, and requests
 *  whose replies are one line (JetStream's JSON answers). */
async function tcpPublisher(port) {
  const sock = net.connect(port, "127.0.0.1");
  await new Promise((resolve, reject) => {
    sock.once("connect", resolve);
    sock.once("error", reject);
  });
  sock.setNoDelay(true);
  const pongs = [];
  const replies = new Map();
  let nextReply = 0;
  let payloadFor = null;
  let buf = "";
  let error = null;
  sock.on("data", (d) => {
    buf += d.toString("latin1");
    for (let i; (i = buf.indexOf("\r\n")) >= 0; ) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (payloadFor !== null) {
        replies.get(payloadFor)?.(line);
        replies.delete(payloadFor);
        payloadFor = null;
      } else if (line.startsWith("MSG ")) payloadFor = line.split(" ")[1];
      else if (line === "PONG") pongs.shift()?.();
      else if (line === "PING") sock.write("PONG\r\n");
      else if (line.startsWith("-ERR")) error = line;
    }
  });
  sock.on("error", (e) => (error = String(e)));
  const write = (s) => (sock.write(s) ? null : new Promise((r) => sock.once("drain", r)));
  const flush = () => {
    if (error) throw new Error(`monitor publisher: ${error}`);
    const pong = new Promise((r) => pongs.push(r));
    sock.write("PING\r\n");
    return withTimeout(pong, 30000, "monitor publisher flush");
  };
  const request = (subject, payload) => {
    if (error) throw new Error(`bench client: ${error}`);
    const inbox = `_INBOX.bench.${nextReply++}`;
    const reply = new Promise((r) => replies.set(inbox, r));
    const body = Buffer.from(payload);
    sock.write(`PUB ${subject} ${inbox} ${body.length}\r\n${payload}\r\n`);
    return withTimeout(reply, 10000, `a reply on ${subject}`);
  };
  sock.write('CONNECT {"verbose":false,"pedantic":false,"name":"bench publisher"}\r\nSUB _INBOX.bench.* 1\r\n');
  await flush();
  return { write, flush, request, close: () => sock.destroy() };
}

/** Publishes `rate` msgs/s for `seconds`, paced every 10 ms; resolves with what it sent and when. */
async function publishAt(pub, rate, seconds) {
  const frames = [];
  for (let k = 0; k < MONITOR.subjects; k++) frames.push(`PUB bench.monitor.${k} ${MONITOR.payload.length}\r\n${MONITOR.payload}\r\n`);
  const total = rate * seconds;
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor((rate * (performance.now() - t0)) / 1000));
    if (due > sent) {
      let batch = "";
      for (; sent < due; sent++) batch += frames[sent % frames.length];
      const drained = pub.write(batch);
      if (drained) await drained;
    }
    await sleep(10);
  }
  await pub.flush();
  return { sent, seconds: (performance.now() - t0) / 1000 };
}

async function monitorMetrics(appUrl) {
  if (!wanted("monitor")) return;
  const ports = await (await fetch(`${controlUrl}/ports`)).json();
  const context = await appContext("bench monitor", { viewport: { width: 1280, height: 800 } });
  const pub = await tcpPublisher(ports.client);
  const steps = [];
  /** nats-server's count of clients it cut off as slow consumers. */
  const slowConsumers = async () => (await (await fetch(`http://127.0.0.1:${ports.http}/varz`)).json()).slow_consumers;
  try {
    const page = await context.newPage();
    await page.goto(`${appUrl}/monitor`);
    await page.waitForFunction(() => document.querySelector('[data-testid="status"]')?.textContent.trim() === "Live", null, {
      timeout: 60000,
    });
    await page.click('[data-testid="monitor-preset-all"]');
    if (MONITOR.paused) await page.click('[data-testid="monitor-pause"]');
    const count = () => page.evaluate(() => Number(document.querySelector('[data-testid="monitor-count"]').textContent.trim()));
    // The subscription has reached the server once a probe is counted.
    for (let i = 0; (await count()) === 0; i++) {
      if (i === 100) throw new Error("monitor: the page never counted a probe");
      await pub.write("PUB bench.probe 0\r\n\r\n");
      await pub.flush();
      await sleep(100);
    }
    for (const rate of MONITOR.rates) {
      await page.click('[data-testid="monitor-clear"]');
      await page.evaluate(watchFrames);
      const slowBefore = await slowConsumers();
      let cdp;
      if (profiling && rate === MONITOR.rates[0]) {
        cdp = await context.newCDPSession(page);
        await cdp.send("Profiler.enable");
        await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
        await cdp.send("Profiler.start");
      }
      const { sent, seconds } = await publishAt(pub, rate, MONITOR.seconds);
      // Wait until the page has counted them all, or its count has stood still for 3 s.
      const seen = async () =>
        page.evaluate(() => {
          let n = 0;
          for (const tr of document.querySelectorAll('[data-testid="monitor-subject-row"]')) {
            const td = tr.querySelectorAll("td");
            if (td[0].textContent.trim().startsWith("bench.monitor.")) n += Number(td[1].textContent.trim());
          }
          return n;
        });
      let last = -1;
      let still = Date.now();
      const waitStart = Date.now();
      for (;;) {
        const n = await seen();
        if (n >= sent) break;
        if (n !== last) (last = n), (still = Date.now());
        if (Date.now() - still > 3000 || Date.now() - waitStart > 60000) break;
        await sleep(250);
      }
      const counted = await seen();
      const caughtUpMs = Date.now() - waitStart;
      if (cdp) {
        const { profile } = await cdp.send("Profiler.stop");
        await mkdir(path.join(buildDir, "profiles"), { recursive: true });
        await writeFile(path.join(buildDir, "profiles", `monitor_${rate}.cpuprofile`), JSON.stringify(profile));
        profiles[`monitor_${rate}`] = summarizeProfile(profile);
        await cdp.detach();
      }
      const m = await page.evaluate(() => {
        const m = window.__frameWatch.stop();
        const dropped = document.querySelector('[data-testid="monitor-dropped"]');
        return {
          frames: m.frames,
          long: m.long,
          dropped: dropped ? Number(dropped.textContent.trim()) : 0,
          interrupted: document.querySelector('[data-testid="monitor-interrupted"]')?.textContent.trim() ?? null,
          status: document.querySelector('[data-testid="status"]').textContent.trim(),
        };
      });
      const step = {
        rate,
        sent,
        achieved_msgs_per_s: Math.round(sent / seconds),
        counted,
        exact: counted === sent,
        dropped: m.dropped,
        server_slow_consumers: (await slowConsumers()) - slowBefore,
        interrupted: m.interrupted,
        status_after: m.status,
        caught_up_ms: caughtUpMs,
        long_tasks: m.long.length,
        long_task_ms: Math.round(m.long.reduce((a, b) => a + b, 0)),
        long_task_max_ms: Math.round(Math.max(0, ...m.long)),
        frame_p50_ms: +percentile(m.frames, 50).toFixed(1),
        frame_p99_ms: +percentile(m.frames, 99).toFixed(1),
      };
      steps.push(step);
      log(`monitor at ${rate} msgs/s: ${JSON.stringify(step)}`);
      if (!step.exact) break;
    }
  } finally {
    pub.close();
    await context.close();
  }
  runs.ours.monitor = steps;
  const first = steps[0];
  const tag = `monitor_${first.rate / 1000}k`;
  ours[`${tag}_counted_pct`] = (100 * first.counted) / first.sent;
  ours[`${tag}_long_tasks`] = first.long_tasks;
  ours[`${tag}_long_task_ms`] = first.long_task_ms;
  ours[`${tag}_frame_p99_ms`] = first.frame_p99_ms;
  const exact = steps.filter((s) => s.exact).map((s) => s.rate);
  if (exact.length) ours.monitor_exact_up_to_msgs_per_s = Math.max(...exact);
  const inexact = steps.find((s) => !s.exact);
  if (inexact) ours.monitor_first_inexact_msgs_per_s = inexact.rate;
}

// ---- an open KV bucket under a hot key -------------------------------------------------------

/** A bucket of FLOOD.keys keys open on /kv while an outside client writes one of them as fast as
 *  its acks come back (each write its own frame to the page). */
const FLOOD = { keys: 200, seconds: quick ? 3 : 10 };

async function kvFloodMetrics(appUrl) {
  if (!wanted("kv_flood")) return;
  const ports = await (await fetch(`${controlUrl}/ports`)).json();
  const nc = await tcpPublisher(ports.client);
  const bucket = `bench_flood_${Date.now()}`;
  const stream = `KV_${bucket}`;
  const context = await appContext("bench kv flood", { viewport: { width: 1280, height: 800 } });
  const put = async (key, value) => {
    const ack = JSON.parse(await nc.request(`$KV.${bucket}.${key}`, value));
    if (ack.error) throw new Error(`kv flood: put ${key}: ${ack.error.description}`);
    return ack.seq;
  };
  try {
    // A bucket as `nats kv add` makes it (history 1).
    const config = {
      name: stream,
      subjects: [`$KV.${bucket}.>`],
      max_msgs_per_subject: 1,
      discard: "new",
      allow_rollup_hdrs: true,
      deny_delete: true,
      allow_direct: true,
      num_replicas: 1,
      duplicate_window: 120e9,
    };
    const created = JSON.parse(await nc.request(`$JS.API.STREAM.CREATE.${stream}`, JSON.stringify(config)));
    if (created.error) throw new Error(`kv flood: ${created.error.description}`);
    for (let i = 0; i < FLOOD.keys; i++) await put(`k${String(i).padStart(3, "0")}`, `value ${i}`);
    await put("hot", "0");

    const page = await context.newPage();
    await page.goto(`${appUrl}/kv`);
    await page.getByTestId("kv-bucket-row").filter({ hasText: bucket }).getByRole("button", { name: bucket, exact: true }).click();
    await page.waitForFunction((n) => document.querySelector('[data-testid="kv-key-count"]')?.textContent.trim() === `${n} keys`, FLOOD.keys + 1, {
      timeout: 60000,
    });
    // The hot key's value cell: redraws counted by a MutationObserver (one call per task that
    // changed it), frames by requestAnimationFrame, long tasks by their observer.
    await page.evaluate(() => {
      const row = [...document.querySelectorAll('[data-testid="kv-key-row"]')].find(
        (r) => r.querySelector('[data-testid="kv-key"]')?.textContent.trim() === "hot",
      );
      const cell = row.querySelector('[data-testid="kv-value"]');
      const m = (window.__floodBench = { cell, redraws: 0 });
      m.mutations = new MutationObserver(() => m.redraws++);
      m.mutations.observe(cell, { subtree: true, childList: true, characterData: true });
    });
    await page.evaluate(watchFrames);
    const cdp = await context.newCDPSession(page);
    await cdp.send("Performance.enable");
    const taskSeconds = async () => (await cdp.send("Performance.getMetrics")).metrics.find((x) => x.name === "TaskDuration").value;
    if (profiling) {
      await cdp.send("Profiler.enable");
      await cdp.send("Profiler.setSamplingInterval", { interval: 100 });
      await cdp.send("Profiler.start");
    }
    const busyBefore = await taskSeconds();
    const t0 = performance.now();
    let writes = 0;
    let flooding = true;
    const writer = (async () => {
      while (performance.now() - t0 < FLOOD.seconds * 1000) await put("hot", String(++writes));
      flooding = false;
    })();
    // Meanwhile: how long a call into the page waits (what a click waits for), twice a second.
    const responses = [];
    while (flooding) {
      const s = performance.now();
      await page.evaluate(() => 0);
      responses.push(performance.now() - s);
      await sleep(500);
    }
    await writer;
    const floodSeconds = (performance.now() - t0) / 1000;
    const stopped = performance.now();
    await page.waitForFunction((v) => window.__floodBench.cell.textContent.trim() === v, String(writes), { timeout: 60000 });
    const lastShownMs = performance.now() - stopped;
    const busy = (await taskSeconds()) - busyBefore;
    if (profiling) {
      const { profile } = await cdp.send("Profiler.stop");
      await mkdir(path.join(buildDir, "profiles"), { recursive: true });
      await writeFile(path.join(buildDir, "profiles", "kv_flood.cpuprofile"), JSON.stringify(profile));
      profiles.kv_flood = summarizeProfile(profile);
    }
    const m = await page.evaluate(() => {
      window.__floodBench.mutations.disconnect();
      return { redraws: window.__floodBench.redraws, ...window.__frameWatch.stop() };
    });
    const seconds = (performance.now() - t0) / 1000;
    const run = {
      keys: FLOOD.keys + 1,
      writes,
      writes_per_s: Math.round(writes / floodSeconds),
      busy_pct: +((100 * busy) / seconds).toFixed(1),
      redraws: m.redraws,
      redraws_per_s: +(m.redraws / seconds).toFixed(1),
      response_p50_ms: +percentile(responses, 50).toFixed(1),
      response_max_ms: +Math.max(...responses).toFixed(1),
      frame_p99_ms: +percentile(m.frames, 99).toFixed(1),
      long_tasks: m.long.length,
      last_value_shown_ms: +lastShownMs.toFixed(1),
    };
    log(`kv flood: ${JSON.stringify(run)}`);
    runs.ours.kv_flood = run;
    ours.kv_flood_writes_per_s = run.writes_per_s;
    ours.kv_flood_busy_pct = run.busy_pct;
    ours.kv_flood_redraws_per_s = run.redraws_per_s;
    ours.kv_flood_response_max_ms = run.response_max_ms;
    ours.kv_flood_frame_p99_ms = run.frame_p99_ms;
    ours.kv_flood_last_value_shown_ms = run.last_value_shown_ms;
    await cdp.detach();
  } finally {
    await context.close();
    await nc.request(`$JS.API.STREAM.DELETE.${stream}`, "").catch(() => {});
    nc.close();
  }
}

// ---- startup ----------------------------------------------------------------------------------

const STARTUP_LOADS = quick ? 3 : 20;

/** In every page of the context: window.__shown resolves with performance.now() (ms since the
 *  navigation started) once the status reads "Live" and the counter shows a number. */
function armShown() {
  window.__shown = new Promise((resolve) => {
    const check = () => {
      const s = document.querySelector('[data-testid="status"]');
      const v = document.querySelector('[data-testid="counter-value"]');
      if (s?.textContent.trim() === "Live" && /^-?\d+$/.test(v?.textContent.trim() ?? "")) {
        observer.disconnect();
        resolve(performance.now());
      }
    };
    const observer = new MutationObserver(check);
    observer.observe(document, { childList: true, subtree: true, characterData: true });
  });
}

async function startupContext(client) {
  const context = client === "ours" ? await appContext("bench-startup") : await browser.newContext();
  await context.addInitScript(armShown);
  return context;
}

async function shownAfter(page, url) {
  await page.goto(url, { waitUntil: "commit" });
  return withTimeout(page.evaluate(() => window.__shown), 30000, `startup of ${url}`);
}

/**
 * Navigation → "Live" and the counter's value on screen: the app's /counter (release build)
 * against bench/startup.html (nats.js: connect, open the bucket, get the key), both served with
 * caching headers from 127.0.0.1. Cold: a fresh browser context (empty HTTP and code caches) per
 * load. Warm: one context, loaded once, then STARTUP_LOADS navigations. Clients alternate.
 */
async function startupMetrics(appDir) {
  if (!wanted("startup")) return;
  const app = await serve(appDir, { spa: true, cache: true });
  const page = await serve(here, { cache: true });
  const urls = {
    ours: `${app.url}/counter`,
    natsjs: `${page.url}/startup.html?ws=${encodeURIComponent(wsUrl)}`,
  };
  const times = { ours: { cold: [], warm: [] }, natsjs: { cold: [], warm: [] } };
  try {
    for (let i = 0; i < STARTUP_LOADS; i++) {
      for (const client of i % 2 ? ["natsjs", "ours"] : ["ours", "natsjs"]) {
        const context = await startupContext(client);
        try {
          const tab = await context.newPage();
          times[client].cold.push(await shownAfter(tab, urls[client]));
          // What the app's page fetched to get there (the release app loads a page's modules
          // when it opens it, the other pages' 2 s later), gzipped.
          if (client === "ours" && i === 0 && !quick) {
            const fetched = await tab.evaluate(() =>
              performance.getEntriesByType("resource").map((e) => new URL(e.name).pathname),
            );
            const files = fetched.filter((f) => /\.(wasm|js)$/.test(f)).map((f) => path.join(appDir, f));
            ours.app_first_page_gz_kb = await gzSize(files.filter((f) => existsSync(f)));
            log(`the app's /counter fetched ${files.length} files (wasm + js), ${ours.app_first_page_gz_kb.toFixed(0)} KiB gzipped`);
          }
        } finally {
          await context.close();
        }
      }
    }
    const warm = {};
    for (const client of ["ours", "natsjs"]) {
      const context = await startupContext(client);
      warm[client] = { context, page: await context.newPage() };
      await shownAfter(warm[client].page, urls[client]);
    }
    try {
      for (let i = 0; i < STARTUP_LOADS; i++) {
        for (const client of i % 2 ? ["natsjs", "ours"] : ["ours", "natsjs"]) {
          times[client].warm.push(await shownAfter(warm[client].page, urls[client]));
        }
      }
    } finally {
      for (const { context } of Object.values(warm)) await context.close();
    }
  } finally {
    app.server.close();
    page.server.close();
  }
  for (const [client, into] of [["ours", ours], ["natsjs", natsjs]]) {
    into.startup_cold_p50_ms = median(times[client].cold);
    into.startup_warm_p50_ms = median(times[client].warm);
  }
  runs.ours.startup = times.ours;
  runs.natsjs.startup = times.natsjs;
  log(
    `startup p50, cold: ours ${ours.startup_cold_p50_ms.toFixed(0)} ms, nats.js ${natsjs.startup_cold_p50_ms.toFixed(0)} ms; ` +
      `warm: ours ${ours.startup_warm_p50_ms.toFixed(0)} ms, nats.js ${natsjs.startup_warm_p50_ms.toFixed(0)} ms`,
  );
}

// ---- sizes ------------------------------------------------------------------------------------

async function gzSize(files) {
  let total = 0;
  for (const f of files) total += gzipSync(await readFile(f), { level: 9 }).length;
  return total / 1024;
}

async function filesIn(dir, exts) {
  return (await readdir(dir)).filter((f) => exts.includes(path.extname(f))).map((f) => path.join(dir, f));
}

async function sizes() {
  if (!wanted("size")) return;
  const s = path.join(buildDir, "size");
  const appDir = path.join(buildDir, "app");
  // --quick builds the app in debug (unless BENCH_APP_DIST names a build): its size means
  // nothing then.
  if (existsSync(appDir) && !quick) ours.app_gz_kb = await gzSize(await filesIn(appDir, [".wasm", ".js"]));
  ours.client_pubsub_gz_kb = await gzSize(await filesIn(path.join(s, "ours-pubsub"), [".wasm", ".js"]));
  natsjs.client_pubsub_gz_kb = await gzSize([path.join(s, "natsjs-pubsub.js")]);
  ours.client_core_gz_kb = await gzSize(await filesIn(path.join(s, "ours-core"), [".wasm", ".js"]));
  ours.client_kv_gz_kb = await gzSize(await filesIn(path.join(s, "ours-kv"), [".wasm", ".js"]));
  natsjs.client_kv_gz_kb = await gzSize([path.join(s, "natsjs-kv.js")]);
}

// ---- native numbers (measured by run.sh before this) ------------------------------------------

const asyncNats = {};

async function nativeResults() {
  const nativeFile = path.join(buildDir, "native.json");
  if (existsSync(nativeFile)) {
    const r = JSON.parse(await readFile(nativeFile, "utf8"));
    ours.native_pubsub_16b_msgs_per_s = r.ours.native_pubsub_msgs_per_s;
    ours.native_rr_p50_ms = r.ours.native_rr_p50_ms;
    asyncNats.native_pubsub_16b_msgs_per_s = r.async_nats.native_pubsub_msgs_per_s;
    asyncNats.native_rr_p50_ms = r.async_nats.native_rr_p50_ms;
    asyncNats.native_params = r.params;
  }
  if (criterionDir) {
    // criterion's own files: new/estimates.json (ns per iteration), new/benchmark.json (throughput).
    const read = async (id) => {
      const dir = path.join(criterionDir, id, "new");
      const est = JSON.parse(await readFile(path.join(dir, "estimates.json"), "utf8"));
      const info = JSON.parse(await readFile(path.join(dir, "benchmark.json"), "utf8"));
      const perSecond = 1e9 / est.mean.point_estimate;
      return info.throughput.Bytes !== undefined
        ? (info.throughput.Bytes * perSecond) / 1e6
        : info.throughput.Elements * perSecond;
    };
    ours.parser_16b_mb_per_s = await read("parser/msg_16b");
    ours.parser_1k_mb_per_s = await read("parser/msg_1k");
    ours.connection_input_16b_mb_per_s = await read("connection_input/msg_16b");
    ours.native_publish_encode_16b_msgs_per_s = await read("publish/16b");
  }
}

// ---- report -----------------------------------------------------------------------------------

const ROWS = [
  // key, label, unit, better ("higher" | "lower"), target ratio (ours / nats.js) or null
  ["pubsub_16b_msgs_per_s", "publish → subscribe, 16 B", "msgs/s", "higher", 2.5],
  ["pubsub_16b_1m_msgs_per_s", "publish → subscribe, 16 B, 1M messages", "msgs/s", "higher", null],
  ["pubsub_1k_msgs_per_s", "publish → subscribe, 1 KiB", "msgs/s", "higher", null],
  ["pub_16b_msgs_per_s", "publish, 16 B", "msgs/s", "higher", 1.5],
  ["pub_1k_msgs_per_s", "publish, 1 KiB", "msgs/s", "higher", null],
  ["rr_p50_ms", "request/reply p50", "ms", "lower", 0.6],
  ["rr_p99_ms", "request/reply p99", "ms", "lower", null],
  ["kv_put_p50_ms", "KV put p50", "ms", "lower", null],
  ["kv_put_p99_ms", "KV put p99", "ms", "lower", 1.0],
  ["kv_get_p50_ms", "KV get p50", "ms", "lower", null],
  ["kv_get_p99_ms", "KV get p99", "ms", "lower", 1.0],
  ["kv_put_p99_fresh_ms", "KV put p99, a fresh page's first operations (the warm-up)", "ms", "lower", null],
  ["kv_get_p99_fresh_ms", "KV get p99, a fresh page's first operations (the warm-up)", "ms", "lower", null],
  ["drain_1m_msgs_per_s", "1M-message drain (memory run)", "msgs/s", "higher", null],
  ["js_heap_mb", "JS heap after 1M messages (after gc, over an empty page)", "MB", "lower", null],
  ["startup_cold_p50_ms", "startup: navigation → Live + counter value, cold cache, p50", "ms", "lower", 1.0],
  ["startup_warm_p50_ms", "startup: the same, warm cache, p50", "ms", "lower", 1.0],
  ["client_pubsub_gz_kb", "client alone, pub/sub, gzipped", "KiB", "lower", 1.0],
  ["client_kv_gz_kb", "client alone, pub/sub + KV, gzipped", "KiB", "lower", 1.0],
];
const OURS_ONLY = [
  ["wasm_mem_at_load_mb", "wasm memory at load", "MB"],
  ["wasm_mem_before_1m_mb", "wasm memory before the 1M messages (after warm-up)", "MB"],
  ["wasm_mem_after_1m_mb", "wasm memory after the 1M messages", "MB"],
  ["fanout_p50_ms", "app fan-out: +1 until visible in all other tabs, p50", "ms"],
  ["fanout_p99_ms", "app fan-out, p99 (target ≤ 15)", "ms"],
  ["fanout_per_tab_p50_ms", "app fan-out, per tab p50", "ms"],
  ["reconnect_to_live_p50_ms", "app: server back → \"Live\", p50", "ms"],
  ["reconnect_to_live_max_ms", "app: server back → \"Live\", max", "ms"],
  ["app_idle_busy_pct", "app: an idle connected tab, main thread busy (target ≤ 0.5)", "% of a core"],
  ["app_idle_style_recalcs_per_s", "app: an idle connected tab, style recalculations", "per s"],
  ["monitor_20k_counted_pct", "app /monitor on `>`, outside client at 20 000 msgs/s for 10 s: counted", "%"],
  ["monitor_20k_long_tasks", "app /monitor at 20 000 msgs/s: main-thread long tasks (> 50 ms)", "count"],
  ["monitor_20k_long_task_ms", "app /monitor at 20 000 msgs/s: time in long tasks", "ms"],
  ["monitor_20k_frame_p99_ms", "app /monitor at 20 000 msgs/s: frame time p99", "ms"],
  ["monitor_5k_counted_pct", "app /monitor (--quick) at 5 000 msgs/s: counted", "%"],
  ["monitor_5k_frame_p99_ms", "app /monitor (--quick) at 5 000 msgs/s: frame time p99", "ms"],
  ["kv_flood_writes_per_s", "app /kv, a 201-key bucket open, one key written by an outside client without pause: writes", "per s"],
  ["kv_flood_busy_pct", "app /kv under that flood: main thread busy", "% of a core"],
  ["kv_flood_redraws_per_s", "app /kv under that flood: redraws of the hot key's value", "per s"],
  ["kv_flood_response_max_ms", "app /kv under that flood: a call into the page (what a click waits for), max", "ms"],
  ["kv_flood_frame_p99_ms", "app /kv under that flood: frame time p99", "ms"],
  ["kv_flood_last_value_shown_ms", "app /kv: the last write's ack → its value on screen", "ms"],
  ["monitor_exact_up_to_msgs_per_s", "app /monitor: highest rate tried with the count exact", "msgs/s"],
  ["monitor_first_inexact_msgs_per_s", "app /monitor: first rate where the count was not exact", "msgs/s"],
  ["app_gz_kb", "app release dist (wasm + js), gzipped (target ≤ 400)", "KiB"],
  ["app_first_page_gz_kb", "app: what /counter fetches before its value is shown (wasm + js), gzipped", "KiB"],
  ["client_core_gz_kb", "client alone, pub/sub without NKey/JWT auth (`default-features = false`), gzipped", "KiB"],
  ["parser_16b_mb_per_s", "native parser, 16 B MSG frames (criterion)", "MB/s"],
  ["parser_1k_mb_per_s", "native parser, 1 KiB MSG frames (criterion)", "MB/s"],
  ["connection_input_16b_mb_per_s", "native Connection::handle_input, 16 B MSG frames (criterion)", "MB/s"],
  ["native_publish_encode_16b_msgs_per_s", "native Connection::publish, 16 B (criterion)", "msgs/s"],
  ["native_pubsub_16b_msgs_per_s", "native publish → subscribe, 16 B", "msgs/s"],
  ["native_rr_p50_ms", "native request/reply p50", "ms"],
];

function fmt(v, unit) {
  if (v === undefined || v === null || Number.isNaN(v)) return "—";
  if (unit === "msgs/s") return v >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : `${(v / 1e3).toFixed(1)} k`;
  if (unit === "MB/s") return v.toFixed(0);
  if (Math.abs(v) >= 100) return v.toFixed(0);
  if (Math.abs(v) >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

function report(ratios) {
  const lines = [];
  lines.push("| metric | unit | nats-ws (ours) | nats.js | ours / nats.js | target | bare WebSocket (ceiling) | ceiling / nats.js |");
  lines.push("|---|---|---:|---:|---:|---|---:|---:|");
  for (const [key, label, unit, better, target] of ROWS) {
    if (!(key in ours) && !(key in natsjs)) continue;
    const r = ratios[key];
    let t = "";
    if (target !== null && r !== undefined) {
      const ok = better === "higher" ? r >= target : r <= target;
      t = `${better === "higher" ? "≥" : "≤"} ${target} ${ok ? "✅" : "❌ missed"}`;
    }
    const c = ceiling[key];
    const cr = c !== undefined && natsjs[key] > 0 ? (c / natsjs[key]).toFixed(2) : "";
    lines.push(`| ${label} | ${unit} | ${fmt(ours[key], unit)} | ${fmt(natsjs[key], unit)} | ${r === undefined ? "—" : r.toFixed(2)} | ${t} | ${c === undefined ? "" : fmt(c, unit)} | ${cr} |`);
  }
  lines.push("");
  lines.push("| nats-ws only | unit | value | reference |");
  lines.push("|---|---|---:|---|");
  for (const [key, label, unit] of OURS_ONLY) {
    if (!(key in ours)) continue;
    let ref = "";
    if (key === "native_pubsub_16b_msgs_per_s" && asyncNats.native_pubsub_16b_msgs_per_s) {
      const r = ratios.native_pubsub_16b_vs_async_nats;
      ref = `async-nats ${fmt(asyncNats.native_pubsub_16b_msgs_per_s, unit)}: ratio ${r.toFixed(2)}, target ≥ 0.5 ${r >= 0.5 ? "✅" : "❌ missed"}`;
    }
    if (key === "native_rr_p50_ms" && asyncNats.native_rr_p50_ms) ref = `async-nats ${fmt(asyncNats.native_rr_p50_ms, unit)}`;
    // bench/run.sh --quick builds the native benchmark unoptimized.
    if (quick && key.startsWith("native_") && ref) ref += " (debug builds, --quick)";
    if (key === "wasm_mem_after_1m_mb") {
      const grew = ours.wasm_mem_after_1m_mb - ours.wasm_mem_before_1m_mb;
      ref = grew <= 0 ? "flat ✅" : `grew by ${grew.toFixed(2)} MB ❌`;
    }
    lines.push(`| ${label} | ${unit} | ${fmt(ours[key], unit)} | ${ref} |`);
  }
  return lines.join("\n");
}

/** How busy the machine's CPUs are over one second, in % (from /proc/stat; null elsewhere). */
async function cpuBusy() {
  const read = () => {
    try {
      const f = readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1, 8).map(Number);
      return { total: f.reduce((a, b) => a + b, 0), idle: f[3] + f[4] };
    } catch {
      return null;
    }
  };
  const a = read();
  await sleep(1000);
  const b = read();
  if (!a || !b || b.total === a.total) return null;
  return Math.round((100 * (b.total - a.total - (b.idle - a.idle))) / (b.total - a.total));
}

function machine() {
  const cpu = (readFileSync("/proc/cpuinfo", "utf8").match(/^model name\s*:\s*(.*)$/m) ?? [])[1] ?? os.cpus()[0]?.model;
  let natsServer = "";
  try {
    natsServer = execFileSync(process.env.NATS_SERVER_BIN || "nats-server", ["--version"], { encoding: "utf8" }).trim();
    if (process.env.NATS_WS_COMPRESSION === "1") natsServer += ", websocket compression";
  } catch {
    natsServer = "unknown";
  }
  const git = (...args) => {
    try {
      return execFileSync("git", args, { encoding: "utf8", cwd: here }).trim();
    } catch {
      return null;
    }
  };
  return {
    commit: git("rev-parse", "--short", "HEAD"),
    client_sources_modified: git("status", "--porcelain", "--", "../crates/nats-ws/src") ? true : false,
    nproc: os.availableParallelism?.() ?? os.cpus().length,
    memory_gib: +(os.totalmem() / 2 ** 30).toFixed(1),
    cpu,
    chromium: browser.version(),
    nats_server: natsServer,
    node: process.version,
  };
}

// ---- main -------------------------------------------------------------------------------------

async function main() {
  const t0 = Date.now();
  const busyAtStart = await cpuBusy();
  if (busyAtStart > 20) log(`warning: the CPUs were ${busyAtStart}% busy before the run: something else is running, numbers will be noisy`);
  const bench = await serve(here, { isolated: true });
  benchUrl = bench.url;
  const appDir = path.join(buildDir, "app");
  const app = existsSync(appDir) ? await serve(appDir, { spa: true }) : null;
  browser = await launchChromium(CHROMIUM_ARGS, { headless: true });
  try {
    const page = await browser.newPage();
    await page.goto(`${benchUrl}/index.html?clients=`);
    const isolated = await page.evaluate(() => window.crossOriginIsolated);
    await page.close();
    if (!isolated) log("warning: the bench page is not cross-origin isolated (timer resolution 100 µs)");

    await browserMetrics();
    await memoryMetrics();
    if (app) {
      await appMetrics(app.url);
      await monitorMetrics(app.url);
      await kvFloodMetrics(app.url);
      await startupMetrics(appDir);
    } else if (wanted("fanout") || wanted("reconnect") || wanted("idle") || wanted("monitor") || wanted("kv_flood") || wanted("startup")) throw new Error(`no app build in ${appDir}`);
    await sizes();
    await nativeResults();

    const ratios = {};
    for (const key of Object.keys(ours)) {
      if (key in natsjs && natsjs[key] > 0) ratios[key] = ours[key] / natsjs[key];
    }
    if (asyncNats.native_pubsub_16b_msgs_per_s) {
      ratios.native_pubsub_16b_vs_async_nats = ours.native_pubsub_16b_msgs_per_s / asyncNats.native_pubsub_16b_msgs_per_s;
    }
    const results = {
      ours,
      natsjs,
      ratios,
      async_nats: asyncNats,
      ceiling,
      notes: {
        ceiling:
          "a bare WebSocket in the same page speaking just enough NATS, with no parsing (bench/raw.mjs): what Chromium's WebSocket path and nats-server carry on this machine when the client costs nothing",
        ours_only:
          "app_*, fanout_*, reconnect_*, monitor_*, kv_flood_*, wasm_mem_*, parser_*, native_* are nats-ws / app-only metrics; native_* compare with async_nats (same WebSocket port)",
        idle: "app_idle_*: one tab on /counter, connected and untouched, 8 s after Live, over 15 s (5 s with --quick): CDP Performance.getMetrics TaskDuration and RecalcStyleCount",
        kv_flood:
          "kv_flood_*: the app's /kv page with a 201-key bucket open while a plain TCP client writes one key, each put awaiting its ack, for 10 s (3 s with --quick); busy: CDP TaskDuration over the flood and until the last value is shown; redraws: MutationObserver calls on the key's value cell; response: a CDP evaluate twice a second",
        monitor:
          "the app's /monitor page subscribed to `>` while a plain TCP client publishes 64 B messages on 50 subjects at a paced rate; counted = what the page's subjects table counts of them; runs.ours.monitor has every rate tried (stops at the first inexact one)",
        ratios: "ours / nats.js: above 1 is better for msgs/s, below 1 is better for ms, MB and KiB",
        js_heap_mb: "usedJSHeapSize after gc with the connections open after the 1M-message run, minus that of the empty page; nats-ws's Rust heap is in wasm memory (wasm_mem_*), not in the JS heap",
      },
      params: P,
      mode: quick ? "quick" : "full",
      machine: { ...machine(), cpu_busy_before_pct: busyAtStart },
      runs,
      profiles,
      duration_s: (Date.now() - t0) / 1000,
      date: new Date().toISOString(),
    };
    const bad = [...Object.entries(ours), ...Object.entries(natsjs)].filter(
      ([, v]) => typeof v !== "number" || !Number.isFinite(v) || v < 0,
    );
    await mkdir(path.dirname(outFile), { recursive: true });
    await writeFile(outFile, JSON.stringify(results, null, 2) + "\n");
    console.log(report(ratios));
    if (profiling) {
      for (const [name, top] of Object.entries(profiles)) {
        console.log(`\nprofile ${name} (self time):`);
        for (const f of top) console.log(`  ${String(f.pct).padStart(5)}%  ${f.name}`);
      }
    }
    log(`wrote ${path.relative(process.cwd(), outFile)} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
    if (bad.length) throw new Error(`not a valid number: ${bad.map(([k, v]) => `${k}=${v}`).join(", ")}`);
  } finally {
    await browser.close();
    bench.server.close();
    app?.server.close();
  }
}

main().catch((e) => {
  console.error(`bench: FAILED: ${e.stack ?? e}`);
  process.exit(1);
});
