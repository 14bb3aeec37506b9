// Garbage, tiny frames and stalls between the tabs and nats-server: no panic, no uncaught error
// (the afterEach of useEnv fails the test on either), every tab back to "Live", and the app works
// afterwards. Leaving /counter while its write is stuck in a stalled connection must not panic
// once the write completes.

import assert from "node:assert/strict";
import { test } from "node:test";

import { counterValue, eventually, pause, rand, textOf, useEnv, waitCount, waitStatus, waitText } from "./lib.mjs";

const env = useEnv();
const T = { timeout: 150_000 };

async function send(page, text) {
  await page.getByTestId("chat-input").fill(text);
  await page.getByTestId("chat-send").click();
}

/** One +1 from `page`, seen in the KV and in every tab of `tabs`. */
async function counterWorks(page, tabs) {
  const kv = await env.kv("via_config");
  const before = counterValue(await kv.get("counter"));
  for (const p of tabs) await waitText(p, "counter-value", String(before));
  await page.getByTestId("counter-inc").click();
  await eventually(`KV counter ${before} → ${before + 1}`, async () => counterValue(await kv.get("counter")) === before + 1);
  for (const p of tabs) await waitText(p, "counter-value", String(before + 1));
}

test("the server's stream in 1–9 byte messages: everything works", T, async (t) => {
  t.after(() => env.proxy("reset"));
  await env.proxy("set", { seed: 11, split: 1 });
  const [a, b] = await Promise.all([
    env.tab({ identity: "tiny-a", path: "/counter", proxy: true }),
    env.tab({ identity: "tiny-b", path: "/counter", proxy: true }),
  ]);
  await counterWorks(a, [a, b]);
  const chat = await env.tab({ identity: "tiny-c", path: "/chat", proxy: true });
  const text = `in tiny frames ${rand()}`;
  await send(chat, text);
  await waitCount(chat, "chat-message", text, 1);
  assert.ok((await env.proxy("status")).split_frames > 100, "the proxy did split the stream");
});

test("garbage from the network: every tab reconnects, back to Live, and works", T, async (t) => {
  t.after(() => env.proxy("reset"));
  const tabs = await Promise.all([
    env.tab({ identity: "junk-a", path: "/counter", proxy: true }),
    env.tab({ identity: "junk-b", path: "/chat", proxy: true }),
    env.tab({ identity: "junk-c", path: "/config", proxy: true }),
  ]);
  const before = (await env.proxy("status")).connections;
  for (let round = 0; round < 3; round++) {
    await env.proxy("garbage");
    // The garbage breaks the connection (a protocol error): each tab makes a new one.
    for (const page of tabs) await waitStatus(page, /^Live$/, { timeout: 30_000 });
  }
  // Garbage now and then, in random places of the stream, with tiny frames, while the counter tab
  // makes traffic (an idle tab gets a frame every 30 s or so).
  const injected = (await env.proxy("status")).garbage;
  await env.proxy("set", { seed: 12, split: 1, garbage_rate: 0.05 });
  const counter = tabs[0];
  await eventually(
    "the proxy injected garbage 10 more times",
    async () => {
      await counter.evaluate(() => document.querySelector('[data-testid="counter-inc"]').click());
      return (await env.proxy("status")).garbage >= injected + 10;
    },
    { timeout: 60_000, every: 200 },
  );
  await env.proxy("reset");
  for (const page of tabs) await waitStatus(page, /^Live$/, { timeout: 45_000 });
  // The clicks made meanwhile go out by themselves.
  await waitText(counter, "counter-pending", "", { timeout: 30_000 });
  assert.ok((await env.proxy("status")).connections > before, "the tabs reconnected through the proxy");
  await counterWorks(counter, [counter]);
  const text = `after the garbage ${rand()}`;
  await send(tabs[1], text);
  await waitCount(tabs[1], "chat-message", text, 1);
});

test("a stall (nothing forwarded, nothing closed): back to Live once it flows, and works", T, async (t) => {
  t.after(() => env.proxy("reset"));
  const tabs = await Promise.all([
    env.tab({ identity: "stall-a", path: "/counter", proxy: true }),
    env.tab({ identity: "stall-b", path: "/counter", proxy: true }),
  ]);
  const kv = await env.kv("via_config");
  const start = counterValue(await kv.get("counter"));
  for (const p of tabs) await waitText(p, "counter-value", String(start));
  await env.proxy("stall");
  await tabs[0].getByTestId("counter-inc").click();
  await waitText(tabs[0], "counter-pending", /on the way/);
  // Ten seconds of silence, then it flows again.
  await pause(10_000);
  await env.proxy("resume");
  for (const page of tabs) await waitStatus(page, /^Live$/, { timeout: 45_000 });
  await waitText(tabs[0], "counter-pending", "", { timeout: 30_000 });
  for (const p of tabs) await waitText(p, "counter-value", String(start + 1));
  assert.equal(counterValue(await kv.get("counter")), start + 1);
  await counterWorks(tabs[1], tabs);
});

test("leaving /counter while its write is stuck: no panic when the write completes", T, async (t) => {
  t.after(() => env.proxy("reset"));
  const page = await env.tab({ identity: "leaver", path: "/counter", proxy: true });
  await waitText(page, "counter-value", /^-?\d+$/);
  await env.proxy("stall");
  await page.getByTestId("counter-inc").click();
  await page.getByTestId("counter-inc").click();
  await waitText(page, "counter-pending", /^2 change/);
  await page.getByRole("link", { name: "Chat" }).click();
  await page.getByTestId("chat-input").waitFor();
  await env.proxy("resume");
  // Whatever the stuck write does now, it does it with the page gone; then the tab carries on.
  await waitStatus(page, /^Live$/, { timeout: 45_000 });
  const text = `after leaving the counter ${rand()}`;
  await send(page, text);
  await waitCount(page, "chat-message", text, 1);
  await page.getByRole("link", { name: "Counter" }).click();
  await waitText(page, "counter-value", /^-?\d+$/);
  assert.equal(await textOf(page, "counter-pending"), "");
});
