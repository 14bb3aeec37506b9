// A screenshot of each page (1280×800) with representative content, saved to
// e2e/screenshots/<page>.png for the README. Starts from a clean slate (users bucket and chat
// stream emptied) so the pictures do not depend on what the other tests left behind.

import assert from "node:assert/strict";
import { test } from "node:test";

import { jetstream } from "@nats-io/jetstream";

import { configLoaded, screenshot, sel, useEnv, waitCount, waitFor, waitText } from "./lib.mjs";

const env = useEnv();
const T = { timeout: 90_000 };

const theme = (page, name) =>
  waitFor(page, `<html data-theme="${name}">`, (n) => document.documentElement.dataset.theme === n, name);

async function clean() {
  const users = await env.kv("users");
  for await (const key of await users.keys()) await users.purge(key);
  await env.jsm.streams.purge("CHAT").catch(() => {}); // not there yet: nothing to purge
  const config = await env.kv("via_config");
  await config.put("theme", "light");
}

test("screenshot: dashboard", T, async () => {
  await clean();
  const users = await env.kv("users");
  const people = [
    ["Ada Lovelace", "ada@analytical.engine"],
    ["Grace Hopper", "grace@cobol.dev"],
    ["Alan Turing", "alan@bletchley.uk"],
  ];
  const t0 = Date.now() - 3_600_000;
  for (const [i, [name, email]] of people.entries()) {
    const id = `demo${i}${Math.random().toString(16).slice(2, 10)}`;
    const at = new Date(t0 + i * 600_000).toISOString();
    await users.put(id, JSON.stringify({ id, name, email, created_at: at, updated_at: at }));
  }
  const [ada, grace] = await Promise.all([
    env.tab({ identity: "ada", path: "/" }),
    env.tab({ identity: "grace", path: "/" }),
  ]);
  await waitCount(ada, "user-row", "Alan Turing", 1);
  // Grace adds someone: Ada's list grows and she is told.
  await grace.getByTestId("user-name-input").fill("Linus Torvalds");
  await grace.getByTestId("user-email-input").fill("linus@kernel.org");
  await grace.getByTestId("user-create").click();
  await waitCount(ada, "user-row", "Linus Torvalds", 1);
  await waitCount(ada, "toast", "Linus Torvalds", 1);
  // Ada starts typing the next one.
  await ada.getByTestId("user-name-input").fill("Margaret Hamilton");
  await ada.getByTestId("user-email-input").fill("margaret@apollo.space");
  await screenshot(ada, "dashboard");
  assert.equal(await ada.getByTestId("user-row").count(), 4);
});

test("screenshot: chat", T, async () => {
  const [ada, grace] = await Promise.all([
    env.tab({ identity: "ada", path: "/chat" }),
    env.tab({ identity: "grace", path: "/chat" }),
  ]);
  // A room someone else made (the open page has created stream CHAT by now), so the list shows
  // more than the defaults.
  await ada.getByTestId("chat-input").waitFor();
  const note = { id: `demo-release-${Date.now()}`, room: "releases", user: "linus", text: "v1.0 is tagged.", at: new Date().toISOString() };
  await jetstream(env.nc).publish("chat.room.releases", JSON.stringify(note), { msgID: note.id });
  await ada.getByTestId("chat-room-releases").waitFor();
  const lines = [
    [grace, "Morning! Is the new build live?"],
    [ada, "It is. Open it in two windows and change something in one."],
    [grace, "The counter moved in both at once. What carries it?"],
    [ada, "NATS, over WebSocket: KV for the state, a stream for this chat."],
    [grace, "And <b>markup</b> stays plain text. Nice."],
    [ada, "Restart the server too: it says Reconnecting, then Live again."],
  ];
  for (const [page, text] of lines) {
    await page.getByTestId("chat-input").fill(text);
    await page.getByTestId("chat-send").click();
    const other = page === ada ? grace : ada;
    await waitCount(other, "chat-message", text, 1);
    await waitCount(page, "chat-message", text, 1);
  }
  await ada.getByTestId("chat-input").fill("Let me try that now");
  await screenshot(ada, "chat");
});

test("screenshot: counter", T, async () => {
  const config = await env.kv("via_config");
  await config.put("counter", JSON.stringify({ value: 41, by: "grace", at: new Date().toISOString() }));
  const ada = await env.tab({ identity: "ada", path: "/counter" });
  await waitText(ada, "counter-value", "41");
  await ada.getByTestId("counter-inc").click();
  await waitText(ada, "counter-value", "42");
  await waitText(ada, "counter-last-by", "ada");
  await screenshot(ada, "counter");
});

test("screenshot: config", T, async () => {
  const ada = await env.tab({ identity: "ada", path: "/config" });
  await configLoaded(ada);
  const config = await env.kv("via_config");
  const values = {
    "config.app.name": "VIA Console",
    "config.app.debug": "false",
    "config.app.log_level": "info",
    "config.feature.flag1": "off",
    "config.feature.flag2": "on",
    "config.service.timeout": "30s",
    "config.service.retry_count": "3",
  };
  for (const [key, value] of Object.entries(values)) await config.put(key, value);
  for (const [key, value] of Object.entries(values)) await waitText(ada, `config-value-${key.slice(7)}`, value);
  await ada.getByTestId("config-toggle-feature.flag1").click();
  await waitText(ada, "config-value-feature.flag1", "on");
  await waitText(ada, "config-last-change", /config\.feature\.flag1.*ada/);
  await screenshot(ada, "config");
});

test("screenshot: themes", T, async () => {
  const [ada, grace] = await Promise.all([
    env.tab({ identity: "ada", path: "/themes" }),
    env.tab({ identity: "grace", path: "/themes" }),
  ]);
  await grace.getByTestId("theme-option-dark").click();
  await theme(ada, "dark");
  await waitText(ada, "theme-stored", "dark");
  await waitFor(ada, "the dark option selected", (s) => document.querySelector(s)?.getAttribute("aria-pressed") === "true", sel("theme-option-dark"));
  await screenshot(ada, "themes");
  // Leave the server as it was.
  await (await env.kv("via_config")).put("theme", "light");
  await theme(ada, "light");
});
