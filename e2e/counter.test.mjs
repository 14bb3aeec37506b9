// The counter under contention: 3 tabs × 20 +1 clicks fired at once lose nothing, and every tab
// and the KV (read by a NATS client outside the app) agree on the result.

import assert from "node:assert/strict";
import { test } from "node:test";

import { counterSettled, counterValue, useEnv, waitText } from "./lib.mjs";

const env = useEnv();

const TABS = 3;
const CLICKS = 20;

test(`counter: ${TABS} tabs × ${CLICKS} concurrent +1 give exactly +${TABS * CLICKS}`, { timeout: 120_000 }, async () => {
  const kv = await env.kv("via_config");
  const tabs = await Promise.all(
    Array.from({ length: TABS }, (_, i) => env.tab({ identity: `clicker-${i + 1}`, path: "/counter" })),
  );
  const start = counterValue(await kv.get("counter"));
  for (const page of tabs) await waitText(page, "counter-value", String(start));

  // Fire every click without waiting for its effect: 20 per tab, the 3 tabs at the same time.
  await Promise.all(
    tabs.flatMap((page) => Array.from({ length: CLICKS }, () => page.getByTestId("counter-inc").click())),
  );

  const want = start + TABS * CLICKS;
  // Every tab has written all of its clicks (nothing "on the way" any more) ...
  for (const page of tabs) await counterSettled(page);
  // ... so the KV holds the final value: exactly +60, no click lost, none counted twice ...
  const stored = await kv.get("counter");
  assert.equal(counterValue(stored), want, `KV via_config/counter: ${stored?.string()}`);
  assert.match(JSON.parse(stored.string()).by, /^clicker-\d$/, "the value names the tab that wrote it last");
  // ... and every tab shows it.
  for (const page of tabs) await waitText(page, "counter-value", String(want));
  for (const page of tabs) await waitText(page, "counter-last-by", /^clicker-\d$/);

  // A bare integer written by another tool is read as the value, live, in every tab; the next
  // click builds on it.
  await kv.put("counter", String(want + 5));
  for (const page of tabs) await waitText(page, "counter-value", String(want + 5));
  for (const page of tabs) await waitText(page, "counter-last-by", "another client");
  await tabs[1].getByTestId("counter-inc").click();
  for (const page of tabs) await waitText(page, "counter-value", String(want + 6));
  assert.equal(counterValue(await kv.get("counter")), want + 6);
});

// A click costs one round trip: the compare-and-set is built on the value the tab's watch already
// has, and the watch (not another read) settles it. A tab that read the key before every write and
// again to settle it would send two reads per click.
test("counter: a click is one compare-and-set, built on the watched value, and no read", { timeout: 60_000 }, async () => {
  const kv = await env.kv("via_config");
  const page = await env.tab({ identity: "one-trip", path: "/counter" });
  const start = counterValue(await kv.get("counter"));
  await waitText(page, "counter-value", String(start));
  // Every frame the tab sends from here on, as text (the client sends binary frames).
  await page.evaluate(() => {
    window.__sent = [];
    const send = WebSocket.prototype.send;
    WebSocket.prototype.send = function (data) {
      window.__sent.push(typeof data === "string" ? data : new TextDecoder().decode(data));
      return send.call(this, data);
    };
  });
  const CLICKS = 5;
  for (let i = 1; i <= CLICKS; i++) {
    await page.getByTestId("counter-inc").click();
    await waitText(page, "counter-value", String(start + i));
    await counterSettled(page);
  }
  const sent = (await page.evaluate(() => window.__sent)).join("");
  const count = (re) => (sent.match(re) ?? []).length;
  const writes = count(/H?PUB \$KV\.via_config\.counter /g);
  const reads = count(/\$JS\.API\.(DIRECT|STREAM\.MSG)\.GET\.KV_via_config/g);
  assert.equal(writes, CLICKS, `one write per click (sent: ${sent.slice(0, 400)})`);
  // One read is allowed for a watch that lagged past its wait on a busy machine.
  assert.ok(reads <= 1, `${reads} reads for ${CLICKS} clicks`);
  assert.equal(counterValue(await kv.get("counter")), start + CLICKS);
});
