// Writes through an outage longer than a write's own retries (30 s), against one server only
// (about 55 s, see test.sh).
//
// Chat: what was written is stored, and shown everywhere, in the order it was written. Before,
// each message was sent by a delivery of its own; the first, whose try had run out, waited a
// pause and a round trip after the server came back, and the second, still in its first try,
// went out at once: stored first, and shown first in every tab for good.
//
// /themes: a theme picked on a page that had bound its bucket is written once the server is
// back. Before, the write gave up when its 30 s ran out, and the pick was dropped.
//
// Users: a user added during the outage is stored once the server is back, once. Before, it said
// "not saved" when its 30 s ran out, and still said so once the tab was Live again. An edit saved
// and a user deleted during the outage are written too: before, they gave up at 30 s ("not
// saved: not sent…", "not deleted: not sent…") while a creation waited.
//
// /counter: the outage lasts past a tab's eleventh reconnect try (the client's default policy
// gives up after ten and leaves the tab Offline, its clicks waiting for a server it no longer
// looks for): the tab is still trying then, and its two clicks are written once the server is
// back.

import assert from "node:assert/strict";
import { test } from "node:test";

import { addUser, counterValue, eventually, rand, sel, useEnv, waitCount, waitFor, waitStatus, waitText } from "./lib.mjs";

const env = useEnv();

async function send(page, text) {
  await page.getByTestId("chat-input").fill(text);
  await page.getByTestId("chat-send").click();
}

test("a long outage: chat messages stored in the order written, a theme picked and clicks made written, still trying past ten tries", { timeout: 150_000 }, async (t) => {
  const kv = await env.kv("via_config");
  await kv.put("theme", "light");
  const [page, themes, users, counter] = await Promise.all([
    env.tab({ identity: "chat-order", path: "/chat" }),
    env.tab({ identity: "outage-themes", path: "/themes" }),
    env.tab({ identity: "outage-users", path: "/" }),
    env.tab({ identity: "outage-counter", path: "/counter" }),
  ]);
  await page.getByPlaceholder("Message #general").waitFor();
  await waitText(themes, "theme-stored", "light");
  await waitText(counter, "counter-value", /^-?\d+$/);
  const before = counterValue(await kv.get("counter"));
  const tag = rand();
  const [edited, doomed] = [`Edited ${tag}`, `Doomed ${tag}`];
  for (const n of [edited, doomed]) {
    await addUser(users, n, `${n.split(" ")[0].toLowerCase()}-${tag}@example.com`);
  }
  const userRow = (n) => users.getByTestId("user-row").filter({ hasText: n });
  const [first, second] = [`first ${tag}`, `second ${tag}`];
  t.after(() => env.control("start"));
  await env.control("stop");
  // The theme first: its write's own retries (30 s, as the chat's first try) have run out by the
  // time the chat's have.
  await themes.getByTestId("theme-option-sunset").click();
  await counter.getByTestId("counter-inc").click();
  await counter.getByTestId("counter-inc").click();
  const newcomer = `Outage ${tag}`;
  await users.getByTestId("user-name-input").fill(newcomer);
  await users.getByTestId("user-email-input").fill(`outage-${tag}@example.com`);
  await users.getByTestId("user-create").click();
  // An edit saved and a user deleted now: each row says it waits for the server.
  await userRow(edited).getByRole("button", { name: `Edit ${edited}`, exact: true }).click();
  const editing = users
    .locator('[data-testid="user-row"]:has(input[aria-label="Name"])')
    .filter({ has: users.getByRole("button", { name: `Save ${edited}`, exact: true }) });
  await editing.getByLabel("Name").fill(`${edited} typed`);
  await editing.getByRole("button", { name: `Save ${edited}`, exact: true }).click();
  await userRow(doomed).getByRole("button", { name: `Delete ${doomed}`, exact: true }).click();
  await waitFor(
    users,
    "both rows say they wait",
    (s) =>
      [...document.querySelectorAll(s)].filter((e) => /^not (saved|deleted) yet: no connection to the server; sent once it is back$/.test(e.textContent))
        .length === 2,
    sel("user-row-error"),
  );
  await send(page, first);
  // Its first try has run out (30 s): it waits for the server to come back.
  await waitFor(
    page,
    "the first message to say it is not sent yet",
    ({ first }) =>
      [...document.querySelectorAll('[data-testid="chat-pending"]')].some(
        (p) => p.textContent.includes(first) && /not sent yet, retrying/.test(p.textContent),
      ),
    { first },
    { timeout: 60_000 },
  );
  await send(page, second);
  // The user's write ran out of its 30 s too: it says so, and waits.
  await waitText(users, "user-create-error", /^not saved yet: no connection to the server; sent once it is back$/, { timeout: 30_000 });
  // Past ten tries (about 40 s of them: 1 s, then × 1.5 up to 5 s apart) and still trying.
  await waitStatus(counter, /^Reconnecting \((1[1-9]|[2-9]\d|\d{3,})\)$/, { timeout: 60_000 });
  await env.control("start");

  const stored = async () => (await env.jsm.streams.getMessage("CHAT", { last_by_subj: "chat.room.general" })).json().text;
  // Both stored once the page shows both (it shows what its room's feed read back); the last one
  // of the room must then be the second.
  await waitFor(page, "both messages shown", ({ first, second }) => {
    const texts = [...document.querySelectorAll('[data-testid="chat-message"]')].map((m) => m.textContent);
    return texts.some((x) => x.includes(first)) && texts.some((x) => x.includes(second));
  }, { first, second }, { timeout: 30_000 });
  assert.equal(await stored(), second, "the message written first was stored last");
  const order = await page.evaluate(({ first, second }) => {
    const texts = [...document.querySelectorAll('[data-testid="chat-message"]')].map((m) => m.textContent);
    return [texts.findIndex((x) => x.includes(first)), texts.findIndex((x) => x.includes(second))];
  }, { first, second });
  assert.ok(order[0] < order[1], `shown in the order ${order}`);
  // And so in a tab opened now.
  const later = await env.tab({ identity: "chat-order-later", path: "/chat" });
  await waitFor(later, "the history", ({ first, second }) => {
    const texts = [...document.querySelectorAll('[data-testid="chat-message"]')].map((m) => m.textContent);
    const [a, b] = [texts.findIndex((x) => x.includes(first)), texts.findIndex((x) => x.includes(second))];
    return a >= 0 && b > a;
  }, { first, second });
  // The theme picked during the outage.
  await eventually("the theme written", async () => (await kv.get("theme"))?.string() === "sunset", { timeout: 30_000 });
  await waitText(themes, "theme-stored", "sunset");
  await waitFor(themes, "no error left", () => !document.querySelector(".card .error"), null, { timeout: 10_000 });
  // The user added during the outage: listed once, stored once, the form emptied, nothing said.
  await waitCount(users, "user-row", newcomer, 1, { timeout: 30_000 });
  await waitFor(users, "the form's error gone", (s) => !document.querySelector(s), sel("user-create-error"), { timeout: 10_000 });
  assert.equal(await users.getByTestId("user-name-input").inputValue(), "");
  const storedAs = [];
  const usersKv = await env.kv("users");
  for await (const key of await usersKv.keys()) {
    const entry = await usersKv.get(key);
    if (entry?.operation === "PUT" && entry.json().name === newcomer) storedAs.push(key);
  }
  assert.equal(storedAs.length, 1, `stored as ${storedAs}`);
  // The edit and the delete made during the outage, written; nothing left said in their rows.
  await waitCount(users, "user-row", `${edited} typed`, 1, { timeout: 30_000 });
  await waitCount(users, "user-row", doomed, 0, { timeout: 30_000 });
  await waitFor(users, "the rows' errors gone", (s) => !document.querySelector(s), sel("user-row-error"), { timeout: 10_000 });
  const names = [];
  for await (const key of await usersKv.keys()) {
    const entry = await usersKv.get(key);
    if (entry?.operation === "PUT") names.push(entry.json().name);
  }
  assert.ok(names.includes(`${edited} typed`), "the edit stored");
  assert.ok(!names.includes(edited), "the name before the edit gone");
  assert.ok(!names.includes(doomed), "the user deleted");
  // The two clicks of the outage, written once.
  await waitText(counter, "counter-value", String(before + 2), { timeout: 30_000 });
  assert.equal(counterValue(await kv.get("counter")), before + 2);
});
