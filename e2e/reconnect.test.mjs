// A server restart: every tab shows "Reconnecting (N)" while the server is down and "Live" once it
// is back, and everything works again without a reload. A chat message sent while the server is
// down is delivered once, when it is back.

import assert from "node:assert/strict";
import { test } from "node:test";

import { countText, counterValue, eventually, rand, textOf, useEnv, waitCount, waitFor, waitStatus, waitText } from "./lib.mjs";

const env = useEnv();

async function send(page, text) {
  await page.getByTestId("chat-input").fill(text);
  await page.getByTestId("chat-send").click();
}

test("server stopped → Reconnecting (N) → started → Live, and everything works again", { timeout: 150_000 }, async (t) => {
  const [chatA, chatB, countA, countB] = await Promise.all([
    env.tab({ identity: "rc-ada", path: "/chat" }),
    env.tab({ identity: "rc-grace", path: "/chat" }),
    env.tab({ identity: "rc-linus", path: "/counter" }),
    env.tab({ identity: "rc-barbara", path: "/counter" }),
  ]);
  const tabs = [chatA, chatB, countA, countB];
  const before = `before the restart ${rand()}`;
  await send(chatA, before);
  await waitCount(chatB, "chat-message", before, 1);
  await waitText(countB, "counter-value", /^-?\d+$/);

  // Whatever happens below, the server runs again afterwards.
  t.after(() => env.control("start"));
  await env.control("stop");
  for (const page of tabs) await waitStatus(page, /^Reconnecting \(\d+\)$/);

  // Sent while the server is down: shown as pending, delivered once it is back.
  const down = `sent while down ${rand()}`;
  await send(chatA, down);
  await chatA.locator(".message.pending", { hasText: down }).waitFor();
  assert.equal(await countText(chatB, "chat-message", down), 0);
  // Down long enough for the attempts to count up, and for the send's first try to time out
  // (5 s) and be retried: the retry must not store the message a second time.
  await waitStatus(chatA, /^Reconnecting \(([3-9]|\d\d+)\)$/, { timeout: 30_000 });
  assert.equal(await countText(chatB, "chat-message", down), 0);

  await env.control("start");
  // The next attempt comes within the backoff (1 s × 1.5^n, at most 5 s).
  for (const page of tabs) await waitStatus(page, "Live", { timeout: 45_000 });

  await waitCount(chatB, "chat-message", down, 1);
  await waitCount(chatA, "chat-message", down, 1);
  // Messages after the restart, both ways; once they are there, anything sent before them is too,
  // so the counts below are final: the message sent while down is stored and shown once.
  const afterA = `after the restart from ada ${rand()}`;
  const afterB = `after the restart from grace ${rand()}`;
  await send(chatA, afterA);
  await waitCount(chatB, "chat-message", afterA, 1);
  await send(chatB, afterB);
  await waitCount(chatA, "chat-message", afterB, 1);
  for (const page of [chatA, chatB]) {
    assert.equal(await countText(page, "chat-message", down), 1, `${page.label}: the message sent while down, once`);
    assert.equal(await countText(page, "chat-message", before), 1, `${page.label}: history not repeated`);
  }
  // No message is left "sending…" in the sender's tab.
  assert.equal(await chatA.locator(".message.pending").count(), 0, "nothing left pending in the sender's tab");
  // In the stream, too: exactly one copy.
  const stored = await storedCount(down);
  assert.equal(stored, 1, `copies of the message in stream CHAT: ${stored}`);

  // The counter works again, in both directions, without a reload.
  const start = Number(await textOf(countB, "counter-value"));
  await countA.getByTestId("counter-inc").click();
  await waitText(countB, "counter-value", String(start + 1));
  await countB.getByTestId("counter-add10").click();
  await waitText(countA, "counter-value", String(start + 11));
  const kv = await env.kv("via_config");
  await eventually("the KV holding the counter", async () => counterValue(await kv.get("counter")) === start + 11);

  // Client-side navigation after the restart: a page mounted now subscribes on the new connection.
  await chatA.getByRole("link", { name: "Counter" }).click();
  await waitText(chatA, "counter-value", String(start + 11));
  await countB.getByTestId("counter-inc").click();
  await waitText(chatA, "counter-value", String(start + 12));
});

/** How many messages in stream CHAT contain `text` (read from node, outside the app). */
async function storedCount(text) {
  const { state } = await env.jsm.streams.info("CHAT");
  let n = 0;
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const m = await env.jsm.streams.getMessage("CHAT", { seq }).catch(() => null);
    if (m?.string().includes(text)) n++;
  }
  return n;
}

// Clicks on /config and /themes while the server is down are written when it is back: in a page
// that had bound its bucket, and in one opened while the server was down (which could not bind
// it). The theme is the last one picked. Before, a click whose read or write failed for the
// connection was dropped ("not connected yet"), and the message then went away by itself. A
// /themes page opened while a pick waits says so.
test("config and themes: clicks made while the server is down are written when it is back", { timeout: 120_000 }, async (t) => {
  const kv = await env.kv("via_config");
  await kv.put("theme", "light");
  const value = async (key) => (await kv.get(key))?.string();
  const [config, themes] = await Promise.all([
    env.tab({ identity: "rc-config", path: "/config" }),
    env.tab({ identity: "rc-themes", path: "/themes" }),
  ]);
  await config.getByTestId("config-toggle-app.debug").waitFor();
  await waitText(themes, "theme-stored", "light");
  // Every key has its value (the page gives missing ones their default): the steps are known.
  await eventually("config.app.debug and config.feature.flag2 set", async () => (await value("config.app.debug")) && (await value("config.feature.flag2")));
  const [debug, flag2] = [await value("config.app.debug"), await value("config.feature.flag2")];
  const step = { false: "true", true: "false", off: "on", on: "off" };

  t.after(() => env.control("start"));
  await env.control("stop");
  await waitStatus(config, /Reconnecting/);
  const late = await env.tab({ identity: "rc-config-late", path: "/config", live: false });
  await config.getByTestId("config-toggle-app.debug").click();
  await late.getByTestId("config-toggle-feature.flag2").click();
  await themes.getByTestId("theme-option-ocean").click();
  await themes.getByTestId("theme-option-forest").click();
  // Longer than a read's timeout (5 s): before, the bound page's click failed and was dropped.
  await new Promise((r) => setTimeout(r, 7_000));
  // /themes left and opened again: the new page says that the pick waits (it once said nothing:
  // only the page that asked was told).
  await themes.locator('a[href="/counter"]').click();
  await themes.waitForURL(/\/counter$/);
  await themes.locator('a[href="/themes"]').click();
  await themes.waitForURL(/\/themes$/);
  await waitText(themes, "theme-error", /written once the server is (back|reachable)/);
  // And the page is left before the server is back: the click's task outlives it (it once read
  // the page's own signal of the client, gone with the page: a panic that ended the app).
  await config.locator('a[href="/counter"]').click();
  await config.waitForURL(/\/counter$/);
  // Opened again, /config says on the key's row that its click waits (it said nothing: only the
  // page that made the click was told, and it was gone).
  await config.locator('a[href="/config"]').click();
  await config.waitForURL(/\/config$/);
  await waitText(config, "config-step-app.debug", /not changed yet/);
  await env.control("start");

  await eventually(
    "every click written",
    async () =>
      (await value("config.app.debug")) === step[debug] &&
      (await value("config.feature.flag2")) === step[flag2] &&
      (await value("theme")) === "forest",
    { timeout: 30_000 },
  );
  for (const page of [config, late, themes]) {
    await waitStatus(page, "Live");
    await waitFor(page, "no error left once the clicks are in", () => !document.querySelector(".card .error"), null, { timeout: 10_000 });
  }
  await config.locator('a[href="/config"]').click();
  await waitText(config, "config-value-app.debug", step[debug]);
  await waitText(late, "config-value-feature.flag2", step[flag2]);
  await waitText(themes, "theme-stored", "forest");
});
