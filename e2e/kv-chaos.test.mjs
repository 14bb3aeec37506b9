// A KV watcher through a hostile network: 3 tabs on /config watch `config.>` while nats.js (straight
// to the server) keeps writing one key and the proxy cuts the tabs' connections at random (in the
// middle of messages too; the server's stream arrives in 1–9 byte frames). Once the cuts stop, every
// tab shows the last value written within 2 s of being Live again: no watcher misses the tail.
// Repeated for E2E_CHAOS_SEEDS seeds (default 20) from E2E_CHAOS_SEED (default 1).

import assert from "node:assert/strict";
import { test } from "node:test";

import { consoleTail, liveAfterCuts, pause, rand, scatter, seeded, textOf, useEnv, waitStatus, waitText } from "./lib.mjs";

const env = useEnv();

const TABS = 3;
const WRITES = 12; // per seed, by nats.js
const CUTS = 4;
const CUT_RATE = 0.02;
const WINDOW = 4000;
const CONVERGE = 2000; // ms after Live (or after the last write, if later)
const SEEDS = Number(process.env.E2E_CHAOS_SEEDS ?? 20);
const FIRST_SEED = Number(process.env.E2E_CHAOS_SEED ?? 1);

test(`KV watcher under cuts: ${TABS} tabs converge to the last write within ${CONVERGE} ms of Live, ${SEEDS} seeds`, { timeout: 400_000 }, async (t) => {
  t.after(() => env.proxy("reset"));
  const kv = await env.kv("via_config");
  const short = `chaos.${rand()}`;
  const key = `config.${short}`;
  await kv.put(key, "initial");
  const tabs = await Promise.all(
    Array.from({ length: TABS }, (_, i) => env.tab({ identity: `watch-${i + 1}`, path: "/config", proxy: true })),
  );
  for (const page of tabs) await waitText(page, `config-value-${short}`, "initial");
  const results = [];
  for (let seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed++) {
    const began = Date.now();
    const rng = seeded(seed);
    const tag = rand();
    const result = { seed };
    let last = null;
    let lastWritten = 0;
    try {
      await env.proxy("set", { seed, split: 1, cut_rate: CUT_RATE });
      // The writes go one after another (each waits for its ack), spread over the window.
      const writes = (async () => {
        for (let i = 1; i <= WRITES; i++) {
          await pause(Math.floor((rng() * WINDOW) / WRITES));
          const value = `seed ${seed} write ${i} ${tag}`;
          await kv.put(key, value);
          last = value;
          lastWritten = Date.now();
        }
      })();
      const cuts = scatter(rng, WINDOW, Array.from({ length: CUTS }, () => () => env.proxy("cut")));
      await Promise.all([writes, cuts]);
      await env.proxy("reset");
      // Live on a connection made since the last cut (one cut just before the reset can leave a
      // tab saying "Live" on a dropped connection for a moment, its reconnect delay still ahead).
      await liveAfterCuts(env, tabs, { timeout: 30_000 });
      result.convergeMs = await Promise.all(
        tabs.map(async (page) => {
          const from = Math.max(Date.now(), lastWritten);
          await waitText(page, `config-value-${short}`, last, { timeout: from + CONVERGE - Date.now() });
          return Date.now() - from;
        }),
      );
      result.ok = true;
    } catch (e) {
      result.ok = false;
      result.why = e.message;
      result.tabs = await Promise.all(
        tabs.map(async (p) => ({
          tab: p.label,
          status: await textOf(p, "status").catch(() => "?"),
          shows: await textOf(p, `config-value-${short}`).catch(() => "?"),
          console: consoleTail(p),
        })),
      );
      // Did it converge later, or never? (For the report; the seed is a miss either way.)
      result.later = await Promise.all(
        tabs.map((p) =>
          waitText(p, `config-value-${short}`, last ?? "", { timeout: 10_000 }).then(
            () => "converged later",
            () => "still stale 10 s later",
          ),
        ),
      );
      await env.proxy("reset");
      await Promise.all(tabs.map((p) => p.reload()));
      await Promise.all(tabs.map((p) => waitStatus(p, /^Live$/, { timeout: 30_000 }).catch(() => {})));
    }
    result.ms = Date.now() - began;
    results.push(result);
    console.log(
      result.ok
        ? `seed ${seed}: ok in ${result.ms} ms (converged ${result.convergeMs.join("/")} ms after Live)`
        : `seed ${seed}: MISS (last written ${JSON.stringify(last)}): ${result.why}\n  ${result.tabs
            .map((x, i) => `${x.tab}: ${x.status}, shows ${JSON.stringify(x.shows)}, ${result.later[i]}\n    ${x.console}`)
            .join("\n  ")}`,
    );
  }
  const misses = results.filter((r) => !r.ok);
  console.log(`KV watcher under cuts: ${results.length} seeds, ${misses.length} missed (${misses.map((m) => m.seed).join(", ") || "none"})`);
  assert.deepEqual(misses.map((m) => `seed ${m.seed}: ${m.why}`), [], "every tab converges to the last value within 2 s of Live");
});
