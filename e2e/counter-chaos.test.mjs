// The counter through a hostile network: 3 tabs click +1 concurrently while the proxy between them
// and nats-server cuts their connections at random (in the middle of messages too; the server's
// stream arrives in 1–9 byte frames). Once the cuts stop, with no further click, every tab's pending
// clicks go out by themselves and the KV (read with nats.js, straight from the server) and every tab
// show the exact total: no click lost, none counted twice. Repeated for E2E_CHAOS_SEEDS seeds
// (default 20) from E2E_CHAOS_SEED (default 1); a failing seed replays its proxy decisions and its
// click/cut schedule.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  allLive,
  consoleTail,
  counterValue,
  liveAfterCuts,
  scatter,
  seeded,
  textOf,
  useEnv,
  waitFor,
  waitText,
} from "./lib.mjs";

const env = useEnv();

const TABS = 3;
const CLICKS = 8; // per tab and seed
const CUTS = 4; // explicit cuts per seed, on top of the proxy's random ones
const CUT_RATE = 0.03; // per frame
const WINDOW = 4000; // ms over which clicks and cuts are spread
const SEEDS = Number(process.env.E2E_CHAOS_SEEDS ?? 20);
const FIRST_SEED = Number(process.env.E2E_CHAOS_SEED ?? 1);
/** After "Live", how long pending clicks may take to go out. */
const FLUSH = 10_000;

const click = (page) =>
  page.evaluate(() => document.querySelector('[data-testid="counter-inc"]').click());

test(`counter under cuts: ${TABS} tabs × ${CLICKS} clicks, ${SEEDS} seeds, exact total each time`, { timeout: 400_000 }, async (t) => {
  t.after(() => env.proxy("reset"));
  const kv = await env.kv("via_config");
  const tabs = await Promise.all(
    Array.from({ length: TABS }, (_, i) => env.tab({ identity: `cut-${i + 1}`, path: "/counter", proxy: true })),
  );
  const results = [];
  for (let seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed++) {
    const began = Date.now();
    const start = counterValue(await kv.get("counter"));
    const want = start + TABS * CLICKS;
    const rng = seeded(seed);
    const result = { seed, start, want };
    try {
      for (const page of tabs) await waitText(page, "counter-value", String(start));
      await env.proxy("set", { seed, split: 1, cut_rate: CUT_RATE });
      const clicks = tabs.flatMap((page) => Array.from({ length: CLICKS }, () => () => click(page)));
      const cuts = Array.from({ length: CUTS }, () => () => env.proxy("cut"));
      await scatter(rng, WINDOW, [...clicks, ...cuts]);
      await env.proxy("reset");
      // From here on nobody clicks: what is pending must go out by itself.
      result.pendingAtReset = (await Promise.all(tabs.map((p) => textOf(p, "counter-pending"))))
        .map((text) => Number.parseInt(text, 10) || 0)
        .reduce((a, b) => a + b, 0);
      result.liveMs = await liveAfterCuts(env, tabs, { timeout: 30_000 });
      const flushed = Date.now();
      for (const page of tabs) await waitText(page, "counter-pending", "", { timeout: FLUSH });
      result.flushMs = Date.now() - flushed;
      const stored = counterValue(await kv.get("counter"));
      result.stored = stored;
      assert.equal(stored, want, `KV counter after every tab's clicks went out (${stored - start} of ${want - start} applied)`);
      for (const page of tabs) await waitText(page, "counter-value", String(want), { timeout: 2000 });
      // Every click is in: no tab says its clicks are still to be sent (a try that failed during
      // the cuts left its error up until a write of that tab succeeded, even when a read or the
      // watch had settled its last clicks).
      for (const page of tabs) {
        await waitFor(page, "no error once every click is in", () => !document.querySelector(".counter .error"), null, { timeout: 5000 });
      }
      result.ok = true;
    } catch (e) {
      result.ok = false;
      result.why = e.message;
      result.stored ??= counterValue(await kv.get("counter").catch(() => null));
      result.tabs = await Promise.all(
        tabs.map(async (p) => ({
          tab: p.label,
          status: await textOf(p, "status").catch(() => "?"),
          value: await textOf(p, "counter-value").catch(() => "?"),
          pending: await textOf(p, "counter-pending").catch(() => "?"),
          error: await p.evaluate(() => document.querySelector(".counter .error")?.textContent ?? "").catch(() => "?"),
          console: consoleTail(p),
        })),
      );
      // Start the next seed from a clean slate: what a tab still has queued is dropped (a reload
      // alone would keep it, in the tab's storage).
      await env.proxy("reset");
      await Promise.all(tabs.map((p) => p.evaluate(() => sessionStorage.removeItem("via.counter"))));
      await Promise.all(tabs.map((p) => p.reload()));
      await allLive(tabs, { timeout: 30_000 }).catch(() => {});
    }
    result.ms = Date.now() - began;
    results.push(result);
    const line = result.ok
      ? `seed ${seed}: ok, +${want - start} in ${result.ms} ms (${result.pendingAtReset} clicks pending when the cuts stopped; Live after ${result.liveMs} ms, pending out ${result.flushMs} ms later)`
      : `seed ${seed}: MISS, KV +${result.stored - start} of +${want - start}: ${result.why}\n  ${result.tabs
          .map((x) => `${x.tab}: ${x.status}, shows ${x.value}, pending ${JSON.stringify(x.pending)}, error ${JSON.stringify(x.error)}\n    ${x.console}`)
          .join("\n  ")}`;
    console.log(line);
  }
  const proxy = await env.proxy("status");
  const misses = results.filter((r) => !r.ok);
  console.log(
    `counter under cuts: ${results.length} seeds, ${misses.length} missed (${misses.map((m) => m.seed).join(", ") || "none"}); proxy: ${proxy.connections} connections, ${proxy.cuts} cuts`,
  );
  assert.deepEqual(
    misses.map((m) => `seed ${m.seed}: ${m.why}`),
    [],
    "every seed ends with the exact total in the KV and in every tab",
  );
});
