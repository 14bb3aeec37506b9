// The tab worker's memory under load: a Chromium tab joins /workers as the only worker, via-publisher
// feeds the stream `count` events in two halves, and the tab's own memory samples
// (`poc.workers.memory.<id>`, every 5 s: its live heap from the counting allocator, the wasm linear
// memory and Chromium's JS heap) are read until it has processed them all.
// Passes when the live heap, idle after the second half, is at most LEAK_ALLOWANCE above where it
// was idle after the first. What a leak-free tab may still add in that time is bounded: the page's
// memory chart filling (120 samples, about 80 bytes a second while it fills) and queue capacity
// kept from a deeper backlog than before (up to ~52 KB measured); a leak of 8 bytes per
// event adds 8 × 150 000 = 1.2 MB at the smallest size bench/workers.sh runs. The
// wasm memory is reported, not judged: it is a high-water mark that rises with the deepest backlog.
// The JS heap follows the garbage collector. Run by bench/workers.sh; see BENCHMARKS.md.
//
//   E2E_DIST=<trunk-built app> node bench/workers-tab.mjs <via-publisher> <count>
// BENCH_VERBOSE=1 prints every sample.

import { spawn } from "node:child_process";

import { startEnv, waitText, textOf } from "../e2e/lib.mjs";

const [publisher, countArg] = process.argv.slice(2);
const count = Number(countArg);
if (!publisher || !Number.isSafeInteger(count) || count < 10) {
  console.error("usage: node bench/workers-tab.mjs <via-publisher binary> <count ≥ 10>");
  process.exit(2);
}

const mib = (b) => `${(b / 1048576).toFixed(2)} MiB`;
const fmt = (b) => (b == null ? "–" : mib(b));
const LEAK_ALLOWANCE = 128 * 1024;

const env = {};
let failure = null;
try {
  await startEnv(env);
  const page = await env.tab({ path: "/workers" });
  await page.getByTestId("worker-join").click();
  await waitText(page, "worker-self-phase", "working");
  const id = await textOf(page, "worker-self-id");

  // Every sample, and a way to wait for the first one that satisfies `pred`.
  const samples = [];
  const waiters = [];
  const sub = env.nc.subscribe(`poc.workers.memory.${id}`, {
    callback: (err, msg) => {
      if (err) return;
      samples.push(msg.json());
      for (const w of waiters.splice(0)) if (!w.check()) waiters.push(w);
    },
  });
  await env.nc.flush();
  const sampleWhere = (pred, limit, what) =>
    new Promise((resolve, reject) => {
      const w = {
        check() {
          const i = samples.findIndex(pred);
          if (i < 0) return false;
          clearTimeout(w.timer);
          resolve(i);
          return true;
        },
      };
      if (w.check()) return;
      w.timer = setTimeout(() => {
        waiters.splice(waiters.indexOf(w), 1);
        const last = samples.at(-1);
        reject(new Error(`${what}: not within ${limit / 1000} s (last sample: ${JSON.stringify(last)})`));
      }, limit);
      waiters.push(w);
    });

  const publish = (n, run) =>
    new Promise((resolve, reject) => {
      // The throwaway server's passwords (NATS_PUBLISHER_PASSWORD, …): via-publisher looks in the
      // environment before data/credentials.env, which holds the development server's.
      const child = spawn(
        publisher,
        ["--url", env.server.nats, "--count", String(n), "--run", run],
        { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...env.credentials } },
      );
      let out = "";
      child.stdout.on("data", (d) => (out += d));
      child.once("exit", (code) =>
        code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`via-publisher exited with ${code}`)),
      );
    });

  // Two halves. After each, the idle point: the second sample that has counted every event of the
  // half, so it was taken after at least one whole sampling interval with nothing to do (no batch
  // in flight, acknowledgements sent).
  const version = env.nc.info?.version;
  const half = Math.floor(count / 2);
  const started = performance.now();
  const idle = [];
  const rates = [];
  for (const [n, target] of [
    [half, half],
    [count - half, count],
  ]) {
    rates.push((await publish(n, `tab-bench-${idle.length + 1}`)).per_second);
    // A tab is slower than a native worker: up to 20 minutes for a million events.
    const limit = Math.max(120_000, n * 2.4);
    const first = await sampleWhere((s) => s.processed >= target, limit, `${target} events processed`);
    idle.push(samples[await sampleWhere((s, i) => i > first, 30_000, "an idle sample")]);
  }
  const elapsed = (performance.now() - started) / 1000;
  sub.unsubscribe();
  env.assertNoProblems();

  if (process.env.BENCH_VERBOSE) for (const s of samples) console.log(JSON.stringify(s));
  const [mid, end] = idle;
  if (mid.allocated_bytes == null || mid.wasm_memory_bytes == null) {
    throw new Error("the tab's samples have no live heap or wasm memory size");
  }
  const peakWasm = Math.max(...samples.map((s) => s.wasm_memory_bytes));
  const heaps = samples.map((s) => s.js_heap_bytes).filter((b) => b != null);

  console.log(
    `nats-server ${version ?? "?"}: ${count} events to one tab worker in two halves, published at ` +
      `${rates.map((r) => Math.round(r)).join(" and ")}/s, all processed in ${elapsed.toFixed(0)} s ` +
      `with the idle waits, ${samples.length} samples`,
  );
  console.log("| idle after | processed | allocated | allocations so far | wasm memory | JS heap |");
  console.log("|---|---|---|---|---|---|");
  for (const [name, s] of [
    ["the first half", mid],
    ["the second half", end],
  ]) {
    console.log(
      `| ${name} | ${s.processed} | ${fmt(s.allocated_bytes)} | ${s.allocations ?? "–"} | ` +
        `${fmt(s.wasm_memory_bytes)} | ${fmt(s.js_heap_bytes)} |`,
    );
  }
  if (end.processed > count) {
    console.log(`${end.processed - count} events processed more than once (redelivered: at least once)`);
  }
  console.log(
    `wasm memory: peak ${mib(peakWasm)}; JS heap: ` +
      (heaps.length ? `${mib(Math.min(...heaps))} – ${mib(Math.max(...heaps))}` : "not reported"),
  );
  const grown = end.allocated_bytes - mid.allocated_bytes;
  const perEvent = grown / (end.processed - mid.processed);
  console.log(`live heap, idle after the second half − after the first: ${grown} bytes (${perEvent.toFixed(3)} per event)`);
  if (grown > LEAK_ALLOWANCE) {
    throw new Error(`FAILED: the tab's live heap grew by more than ${LEAK_ALLOWANCE / 1024} KiB in the second half`);
  }
  console.log(`workers tab bench: passed (the live heap grew by less than ${LEAK_ALLOWANCE / 1024} KiB)`);
} catch (e) {
  failure = e;
} finally {
  await env.close?.();
}
if (failure) {
  console.error(`workers tab bench: ${failure.message ?? failure}`);
  process.exit(1);
}
