// The tab worker's memory under load: a Chromium tab joins /workers as the only worker, via-publisher
// feeds the stream `count` events, and the tab's own memory samples (`poc.workers.memory.<id>`, every
// 5 s: the wasm linear memory and Chromium's JS heap) are read until it has processed them all.
// Passes when the wasm memory at the end equals the warmed-up level (the first sample past 10 % of
// the events): linear memory never shrinks, so any leak shows as growth. The JS heap is reported,
// not judged (it follows the garbage collector). Run by bench/workers.sh; see BENCHMARKS.md.
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

const env = {};
let failure = null;
try {
  await startEnv(env);
  const page = await env.tab({ path: "/workers" });
  await page.getByTestId("worker-join").click();
  await waitText(page, "worker-self-phase", "working");
  const id = await textOf(page, "worker-self-id");

  const samples = [];
  let done;
  const finished = new Promise((r) => (done = r));
  const sub = env.nc.subscribe(`poc.workers.memory.${id}`, {
    callback: (err, msg) => {
      if (err) return;
      const s = msg.json();
      samples.push(s);
      if (s.processed >= count) done();
    },
  });
  await env.nc.flush();

  const version = env.nc.info?.version;
  const started = performance.now();
  const report = await new Promise((resolve, reject) => {
    // The throwaway server's passwords (NATS_PUBLISHER_PASSWORD, …): via-publisher looks in the
    // environment before data/credentials.env, which holds the development server's.
    const child = spawn(publisher, ["--url", env.server.nats, "--count", String(count)], {
      stdio: ["ignore", "pipe", "inherit"],
      env: { ...process.env, ...env.credentials },
    });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.once("exit", (code) =>
      code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`via-publisher exited with ${code}`)),
    );
  });

  // A tab is slower than a native worker: up to 20 minutes for a million events.
  const limit = Math.max(120_000, count * 1.2);
  let timer;
  await Promise.race([
    finished,
    new Promise((_, reject) => {
      timer = setTimeout(() => {
        const last = samples.at(-1);
        reject(new Error(`the tab processed ${last?.processed ?? 0} of ${count} events in ${limit / 1000} s`));
      }, limit);
    }),
  ]);
  clearTimeout(timer);
  const elapsed = (performance.now() - started) / 1000;
  sub.unsubscribe();
  env.assertNoProblems();

  if (process.env.BENCH_VERBOSE) for (const s of samples) console.log(JSON.stringify(s));
  const warm = samples.find((s) => s.processed >= count / 10);
  const end = samples.at(-1);
  if (!warm || warm === end || warm.wasm_memory_bytes == null) {
    throw new Error(`not enough samples with a wasm memory size (${samples.length} samples)`);
  }
  const after = samples.slice(samples.indexOf(warm));
  const peakWasm = Math.max(...after.map((s) => s.wasm_memory_bytes));
  const heaps = after.map((s) => s.js_heap_bytes).filter((b) => b != null);

  console.log(
    `nats-server ${version ?? "?"}: ${count} events to one tab worker, published at ` +
      `${Math.round(report.per_second)}/s, all processed in ${elapsed.toFixed(0)} s ` +
      `(${Math.round(count / elapsed)}/s), ${samples.length} samples`,
  );
  console.log("| point | processed | allocated | allocations so far | wasm memory | JS heap |");
  console.log("|---|---|---|---|---|---|");
  for (const [name, s] of [
    ["warmed up", warm],
    ["end", end],
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
    `wasm memory after the warm-up: peak ${mib(peakWasm)}; JS heap after the warm-up: ` +
      (heaps.length ? `${mib(Math.min(...heaps))} – ${mib(Math.max(...heaps))}` : "not reported"),
  );
  if (end.wasm_memory_bytes !== warm.wasm_memory_bytes) {
    throw new Error("FAILED: the tab's wasm memory grew after the warm-up");
  }
  console.log("workers tab bench: passed (wasm memory unchanged after the warm-up)");
} catch (e) {
  failure = e;
} finally {
  await env.close?.();
}
if (failure) {
  console.error(`workers tab bench: ${failure.message ?? failure}`);
  process.exit(1);
}
