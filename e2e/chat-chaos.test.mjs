// Chat through a hostile network: 3 tabs send messages while the proxy cuts their connections at
// random (in the middle of messages too; the server's stream arrives in 1–9 byte frames). Once the
// cuts stop, every message is stored exactly once in stream CHAT (read with nats.js, straight from
// the server), shown exactly once in every tab, and none is left "sending…": the app retries by
// itself. Repeated for E2E_CHAOS_SEEDS seeds (default 20) from E2E_CHAOS_SEED (default 1).

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  allLive,
  consoleTail,
  countText,
  eventually,
  liveAfterCuts,
  rand,
  scatter,
  seeded,
  sendChat,
  useEnv,
  waitCount,
  waitFor,
} from "./lib.mjs";

const env = useEnv();

const TABS = 3;
const MESSAGES = 3; // per tab and seed
const CUTS = 4;
const CUT_RATE = 0.03;
const WINDOW = 4000;
const SEEDS = Number(process.env.E2E_CHAOS_SEEDS ?? 20);
const FIRST_SEED = Number(process.env.E2E_CHAOS_SEED ?? 1);
const FLUSH = 15_000;

/** How many times each of `texts` is stored in stream CHAT after sequence `after`. */
async function storedCounts(after, texts) {
  const { state } = await env.jsm.streams.info("CHAT");
  const counts = Object.fromEntries(texts.map((t) => [t, 0]));
  for (let seq = Math.max(after + 1, state.first_seq); seq <= state.last_seq; seq++) {
    const m = await env.jsm.streams.getMessage("CHAT", { seq }).catch(() => null);
    if (!m) continue;
    const text = JSON.parse(m.string()).text;
    if (text in counts) counts[text]++;
  }
  return counts;
}

test(`chat under cuts: ${TABS} tabs × ${MESSAGES} messages, ${SEEDS} seeds, each stored and shown once`, { timeout: 400_000 }, async (t) => {
  t.after(() => env.proxy("reset"));
  const tabs = await Promise.all(
    Array.from({ length: TABS }, (_, i) => env.tab({ identity: `talk-${i + 1}`, path: "/chat", proxy: true })),
  );
  await eventually("stream CHAT exists (a tab on /chat creates it)", () => env.jsm.streams.info("CHAT"));
  const results = [];
  for (let seed = FIRST_SEED; seed < FIRST_SEED + SEEDS; seed++) {
    const began = Date.now();
    const rng = seeded(seed);
    const tag = rand();
    const result = { seed };
    const texts = tabs.flatMap((_, i) => Array.from({ length: MESSAGES }, (_, j) => `seed ${seed} tab ${i + 1} msg ${j + 1} ${tag}`));
    try {
      const before = (await env.jsm.streams.info("CHAT")).state.last_seq;
      await env.proxy("set", { seed, split: 1, cut_rate: CUT_RATE });
      const sends = tabs.flatMap((page, i) =>
        Array.from({ length: MESSAGES }, (_, j) => () => sendChat(page, texts[i * MESSAGES + j])),
      );
      const cuts = Array.from({ length: CUTS }, () => () => env.proxy("cut"));
      await scatter(rng, WINDOW, [...sends, ...cuts]);
      await env.proxy("reset");
      // From here on nobody sends: what is still on its way must go out by itself.
      result.pendingAtReset = (
        await Promise.all(tabs.map((p) => p.evaluate(() => document.querySelectorAll(".message.pending").length)))
      ).reduce((a, b) => a + b, 0);
      result.liveMs = await liveAfterCuts(env, tabs, { timeout: 30_000 });
      const flushed = Date.now();
      for (const page of tabs) {
        await waitFor(page, "no message left sending", () => document.querySelectorAll(".message.pending").length === 0, undefined, {
          timeout: FLUSH,
        });
        for (const text of texts) await waitCount(page, "chat-message", text, 1, { timeout: 5000 });
      }
      result.flushMs = Date.now() - flushed;
      const stored = await storedCounts(before, texts);
      result.stored = stored;
      const wrong = Object.entries(stored).filter(([, n]) => n !== 1);
      assert.deepEqual(wrong, [], "copies in stream CHAT of each message sent");
      // Shown once, also now that the stream has everything.
      for (const page of tabs) for (const text of texts) assert.equal(await countText(page, "chat-message", text), 1);
      result.ok = true;
    } catch (e) {
      result.ok = false;
      result.why = e.message;
      result.stored ??= await storedCounts(0, texts).catch(() => null);
      result.tabs = await Promise.all(
        tabs.map(async (p) => ({
          tab: p.label,
          pending: await p
            .evaluate(() => [...document.querySelectorAll(".message.pending")].map((e) => e.textContent.trim()))
            .catch(() => "?"),
          console: consoleTail(p),
        })),
      );
      await env.proxy("reset");
      await Promise.all(tabs.map((p) => p.reload()));
      await allLive(tabs, { timeout: 30_000 }).catch(() => {});
    }
    result.ms = Date.now() - began;
    results.push(result);
    console.log(
      result.ok
        ? `seed ${seed}: ok in ${result.ms} ms (${result.pendingAtReset} messages pending when the cuts stopped; Live after ${result.liveMs} ms, all shown ${result.flushMs} ms later)`
        : `seed ${seed}: MISS: ${result.why}\n  stored: ${JSON.stringify(result.stored)}\n  ${result.tabs
            .map((x) => `${x.tab}: pending ${JSON.stringify(x.pending)}\n    ${x.console}`)
            .join("\n  ")}`,
    );
  }
  const proxy = await env.proxy("status");
  const misses = results.filter((r) => !r.ok);
  console.log(
    `chat under cuts: ${results.length} seeds, ${misses.length} missed (${misses.map((m) => m.seed).join(", ") || "none"}); proxy: ${proxy.connections} connections, ${proxy.cuts} cuts`,
  );
  assert.deepEqual(misses.map((m) => `seed ${m.seed}: ${m.why}`), [], "every seed: each message stored once, shown once everywhere");
});
