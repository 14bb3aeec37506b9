// Chat: the history is there after a reload and in a tab opened later; markup in a message is
// shown as text, never as HTML.

import assert from "node:assert/strict";
import { test } from "node:test";

import { jetstream } from "@nats-io/jetstream";

import { countText, eventually, rand, sel, textOf, useEnv, waitCount, waitFor, waitStatus, waitText } from "./lib.mjs";

const env = useEnv();
const T = { timeout: 90_000 };

async function send(page, text) {
  await page.getByTestId("chat-input").fill(text);
  await page.getByTestId("chat-send").click();
}

test("chat history: after a reload, and in a tab opened later", T, async () => {
  const [a, b] = await Promise.all([
    env.tab({ identity: "chat-ada", path: "/chat" }),
    env.tab({ identity: "chat-grace", path: "/chat" }),
  ]);
  const first = `history one ${rand()}`;
  const second = `history two ${rand()}`;
  await send(a, first);
  await waitCount(b, "chat-message", first, 1);
  await send(b, second);
  await waitCount(a, "chat-message", second, 1);

  await b.reload();
  await waitStatus(b, "Live");
  await waitCount(b, "chat-message", first, 1);
  await waitCount(b, "chat-message", second, 1);
  // In the order they were sent.
  const texts = await b.getByTestId("chat-message").allTextContents();
  const [i, j] = [texts.findIndex((t) => t.includes(first)), texts.findIndex((t) => t.includes(second))];
  assert.ok(i >= 0 && i < j, `history in order: ${JSON.stringify(texts.slice(-4))}`);

  // A deep link opened in a new tab loads the page (the static server falls back to index.html)
  // and the room's history.
  const c = await env.tab({ identity: "chat-linus", path: "/chat" });
  await waitCount(c, "chat-message", first, 1);
  await waitCount(c, "chat-message", second, 1);

  // Still live after the reload: a new message from A reaches the reloaded B once.
  const third = `after reload ${rand()}`;
  await send(a, third);
  await waitCount(b, "chat-message", third, 1);
  await waitCount(c, "chat-message", third, 1);
  assert.equal(await countText(b, "chat-message", first), 1, "the history is not repeated");
});

test("chat markup is shown as text", T, async () => {
  const [a, b] = await Promise.all([
    env.tab({ identity: "chat-ada", path: "/chat" }),
    env.tab({ identity: "chat-grace", path: "/chat" }),
  ]);
  const r = rand();
  const markup = `<b>bold</b><script>window.__xss = 1</script><img src="x" onerror="window.__xss = 2"> ${r}`;
  await send(a, markup);
  for (const page of [b, a]) {
    await waitCount(page, "chat-message", markup, 1);
    const message = page.getByTestId("chat-message").filter({ hasText: r });
    const inside = await message.evaluate((m) => ({
      text: m.textContent,
      elements: [...m.querySelectorAll("b, script, img")].map((e) => e.outerHTML),
    }));
    assert.ok(inside.text.includes(markup), `the markup appears literally: ${inside.text}`);
    assert.deepEqual(inside.elements, [], "no <b>, <script> or <img> element inside the message");
    assert.equal(await page.evaluate(() => window.__xss), undefined, "nothing in the message ran");
  }
  // Still text after a reload (the history path renders it too).
  await b.reload();
  await waitStatus(b, "Live");
  await waitCount(b, "chat-message", markup, 1);
  const message = b.getByTestId("chat-message").filter({ hasText: r });
  assert.equal(await message.locator("b, script, img").count(), 0);
  assert.equal(await b.evaluate(() => window.__xss), undefined);
});

// What another client stores in a room's subject without the app's JSON (plain text) is shown, as
// text, from "another client". Before, the room left it out without a word (its count said 7 where
// the stream held 10).
test("chat: another client's plain text in a room is shown, as text", T, async () => {
  const room = `plain-${rand()}`;
  const js = jetstream(env.nc);
  const text = `plain <b>text</b> from outside ${rand()}`;
  // The page makes CHAT if it is not there yet.
  const page = await env.tab({ identity: "chat-plain", path: "/chat" });
  await eventually("stream CHAT", async () => !!(await env.jsm.streams.info("CHAT").catch(() => null)));
  await js.publish(`chat.room.${room}`, text);
  await js.publish(`chat.room.${room}`, JSON.stringify({ id: `j${rand()}`, room, user: "json-user", text: "the app's own kind", at: new Date().toISOString() }));
  await page.getByTestId(`chat-room-${room}`).click();
  await waitCount(page, "chat-message", "the app's own kind", 1);
  await waitCount(page, "chat-message", text, 1);
  const shown = page.getByTestId("chat-message").filter({ hasText: text });
  assert.equal(await shown.locator(".author").textContent(), "another client");
  assert.equal(await shown.locator("b").count(), 0, "shown as text");
  assert.match(await shown.locator("time").textContent(), /^\d\d:\d\d$/, "with the time it was stored");
});

// A room longer than its box is read at its end: when it opens, for whoever sends, and for a
// reader there when others' messages come; one who scrolled up to read is left there. (The list
// stayed at its top: the newest messages arrived out of sight.) A message in the app's own shape
// from another client is cut as a foreign one is (a 10 000-character text was drawn whole).
test("chat: the list follows the newest message while read at its end; a long one from outside is cut", T, async () => {
  const room = `long-${rand()}`;
  const js = jetstream(env.nc);
  const publish = (i, text = `history ${i}`) =>
    js.publish(`chat.room.${room}`, JSON.stringify({ id: `h${i}-${rand()}`, room, user: "cli", text, at: new Date().toISOString() }));
  // The page makes CHAT if it is not there yet.
  const [a, b] = await Promise.all([
    env.tab({ identity: "follow-ada", path: "/chat" }),
    env.tab({ identity: "follow-grace", path: "/chat" }),
  ]);
  await eventually("stream CHAT", async () => !!(await env.jsm.streams.info("CHAT").catch(() => null)));
  for (let i = 0; i < 40; i++) await publish(i);
  await publish(40, "J".repeat(10_000));
  const atEnd = (page) =>
    page.evaluate(() => {
      const list = document.querySelector("ol.messages");
      return list.scrollHeight > list.clientHeight * 1.5 && list.scrollHeight - list.scrollTop - list.clientHeight < 4;
    });
  for (const page of [a, b]) {
    await page.getByTestId(`chat-room-${room}`).click();
    await waitCount(page, "chat-message", "JJJJ", 1);
    await waitFor(page, "the room opened at its newest message", () => {
      const list = document.querySelector("ol.messages");
      return list.scrollHeight - list.scrollTop - list.clientHeight < 4;
    });
  }
  const long = await a.getByTestId("chat-message").filter({ hasText: "JJJJ" }).locator(".text").textContent();
  assert.equal(long, `${"J".repeat(2000)}…`);

  // B scrolls up to read; A sends: A follows its message, B stays where it was.
  // (Then two frames: the page hears of a scroll at the next one.)
  await b.evaluate(async () => {
    document.querySelector("ol.messages").scrollTop = 0;
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  });
  const mine = `from ada ${rand()}`;
  await send(a, mine);
  await waitCount(b, "chat-message", mine, 1);
  await waitFor(a, "the sender at the newest message", () => {
    const list = document.querySelector("ol.messages");
    return list.scrollHeight - list.scrollTop - list.clientHeight < 4;
  });
  assert.ok(await atEnd(a));
  assert.equal(await b.evaluate(() => document.querySelector("ol.messages").scrollTop), 0, "the reader scrolled up stays");
  // B is told that messages came below; A, at the end, is not.
  await b.getByTestId("chat-new-below").waitFor();
  assert.equal(await a.getByTestId("chat-new-below").count(), 0);

  // The button takes B to the end, and goes.
  await b.getByTestId("chat-new-below").click();
  await waitFor(b, "the reader taken to the newest message", () => {
    const list = document.querySelector("ol.messages");
    return list.scrollHeight - list.scrollTop - list.clientHeight < 4;
  });
  await b.getByTestId("chat-new-below").waitFor({ state: "detached" });
  assert.equal(await b.evaluate(() => document.activeElement?.getAttribute("aria-label")), "Messages", "the focus on the list");
  await publish(41, "from outside, last");
  await waitCount(b, "chat-message", "from outside, last", 1);
  await waitFor(b, "the reader at the end follows", () => {
    const list = document.querySelector("ol.messages");
    return list.scrollHeight - list.scrollTop - list.clientHeight < 4;
  });
});

// Two messages with the same id in the stream (another client publishing a message twice, or a
// resend after the 2 min duplicate window) are shown once, and later messages still appear. A
// separate room keeps the duplicate away from the other tests.
test(
  "chat: a message stored twice with the same id is shown once, and later messages still appear",
  T,
  async () => {
    const room = `dup-${rand()}`;
    const js = jetstream(env.nc);
    const text = `stored twice ${rand()}`;
    const message = JSON.stringify({ id: `dup${rand()}`, room, user: "cli", text, at: new Date().toISOString() });
    await js.publish(`chat.room.${room}`, message); // no Nats-Msg-Id: the stream keeps both copies
    await js.publish(`chat.room.${room}`, message);

    const a = await env.tab({ identity: "chat-ada", path: "/chat" });
    await a.getByTestId(`chat-room-${room}`).click();
    await a.getByPlaceholder(`Message #${room}`).waitFor();
    const after = `after the repeated one ${rand()}`;
    await send(a, after);
    await waitCount(a, "chat-message", after, 1, { timeout: 5_000 });
    await waitCount(a, "chat-message", text, 1, { timeout: 5_000 });
  },
);

// A room with a history says "No messages yet" at no moment while that history loads (it said
// so from the moment its feed was made until the first messages came, and for a whole outage
// if the connection dropped in between).
test("chat: a room with a history never says it has none while it loads", T, async () => {
  const room = `long-${rand()}`;
  await env.py(
    `js = nc.jetstream()\n` +
      `for i in range(1, 501):\n` +
      `    await js.publish("chat.room.${room}", json.dumps({"id": f"l{i}", "room": "${room}", "user": "bot", "text": f"long {i} end", "at": "2026-12-05T00:00:00Z"}).encode())`,
  );
  const page = await env.tab({ identity: "chat-long", path: "/chat" });
  await page.evaluate(() => {
    window.saidEmpty = false;
    const list = document.querySelector("ol.messages");
    new MutationObserver(() => {
      if (list.querySelector("li.empty")) window.saidEmpty = true;
    }).observe(list, { subtree: true, childList: true });
  });
  await page.getByTestId(`chat-room-${room}`).click();
  await waitCount(page, "chat-message", "long 500 end", 1);
  assert.equal(await page.evaluate(() => window.saidEmpty), false, 'it said "No messages yet" while loading');
  // Which room is shown is said to screen readers too, not by its colour alone.
  assert.equal(await page.getByTestId(`chat-room-${room}`).getAttribute("aria-current"), "true");
  assert.equal(await page.getByTestId("chat-room-general").getAttribute("aria-current"), null);
  // An empty room still says so, once its (empty) history is in.
  await env.jsm.streams.purge("CHAT", { filter: "chat.room.general" });
  await page.getByTestId("chat-room-general").click();
  await waitFor(page, '"No messages yet" in an empty room', () => !!document.querySelector("ol.messages li.empty"));
});

// The list is not a live region (a screen reader would read out the whole history as it loads):
// the app's announcer says each message another user sends once the room's history is in.
test("chat: a screen reader hears what others send, not the history or one's own", T, async () => {
  const room = `heard-${rand()}`;
  const js = jetstream(env.nc);
  const subject = `chat.room.${room}`;
  const chat = (user, text) => JSON.stringify({ id: `h${rand()}`, room, user, text, at: new Date().toISOString() });
  const stored = (user, text) => js.publish(subject, chat(user, text));
  // The page makes stream CHAT if the server has none yet.
  const page = await env.tab({ identity: "chat-heard", path: "/chat" });
  await eventually("stream CHAT", () => env.jsm.streams.info("CHAT"));
  const history = [];
  for (let i = 0; i < 12; i++) {
    history.push(`old news ${i} ${rand()}`);
    await stored("cli", history[i]);
  }
  await page.evaluate(() => {
    window.said = [];
    const announcer = document.querySelector('[data-testid="announcer"]');
    new MutationObserver(() => window.said.push(announcer.textContent)).observe(announcer, {
      childList: true,
      subtree: true,
      characterData: true,
    });
  });
  await page.getByTestId(`chat-room-${room}`).click();
  for (const text of history) await waitCount(page, "chat-message", text, 1);

  const mine = `my own ${rand()}`;
  await send(page, mine);
  await waitCount(page, "chat-message", mine, 1);
  const theirs = `news from cli ${rand()}`;
  await stored("cli", theirs);
  await waitFor(page, "the announcer says the new message", (t) => window.said.some((s) => s.includes(t)), theirs);
  const said = await page.evaluate(() => window.said);
  assert.ok(said.includes(`cli in #${room}: ${theirs}`), JSON.stringify(said));
  for (const text of [...history, mine]) {
    assert.ok(!said.some((s) => s.includes(text)), `"${text}" was announced: ${JSON.stringify(said)}`);
  }
  // A burst (two messages sent together, which reach the tab together): both are said.
  const burst = [`first of two ${rand()}`, `second of two ${rand()}`];
  for (const text of burst) {
    env.nc.publish(subject, chat("cli", text)); // not awaited: the two go out together
  }
  for (const text of burst) {
    await waitFor(page, `the announcer said "${text}"`, (t) => window.said.some((s) => s.includes(t)), text);
  }
  assert.equal(await page.locator("ol.messages[aria-live]").count(), 0, "the list is not a live region");
});

// A room another client floods, each message its own frame to the page: drawn (and announced) at
// most once a frame, not once per message, and it ends with the last message shown.
test("chat: a flooded room is drawn at most once a frame, and shows the last message", T, async (t) => {
  const room = `flood-${rand()}`;
  const page = await env.tab({ identity: "chat-flood", path: "/chat" });
  await page.getByLabel("New room name").fill(room);
  await page.getByRole("button", { name: "Add" }).click();
  await page.getByPlaceholder(`Message #${room}`).waitFor();
  await page.evaluate(() => {
    window.redraws = 0;
    new MutationObserver(() => window.redraws++).observe(document.querySelector("ol.messages"), { subtree: true, childList: true, characterData: true });
  });
  const count = 2000;
  const started = Date.now();
  await env.py(
    `js = nc.jetstream()\n` +
      `for i in range(1, ${count + 1}):\n` +
      `    await js.publish("chat.room.${room}", json.dumps({"id": f"f{i}", "room": "${room}", "user": "bot", "text": f"flood {i} end", "at": "2026-12-05T00:00:00Z"}).encode())`,
  );
  await waitCount(page, "chat-message", `flood ${count} end`, 1, { timeout: 30_000 });
  const seconds = (Date.now() - started) / 1000;
  const redraws = await page.evaluate(() => window.redraws);
  t.diagnostic(`${redraws} redraws for ${count} messages in ${seconds.toFixed(1)} s`);
  assert.ok(redraws <= 80 * seconds + 10, `${redraws} redraws for ${count} messages in ${seconds.toFixed(1)} s`);
  // The last SHOWN (200) are kept, in order.
  const texts = await page.evaluate((s) => [...document.querySelectorAll(s)].map((e) => e.textContent), sel("chat-message"));
  assert.equal(texts.length, 200);
  assert.ok(texts[0].includes(`flood ${count - 199} end`) && texts[199].includes(`flood ${count} end`), `${texts[0]} … ${texts[199]}`);
});

test("chat: a room created in one tab is listed in the others, with its first message", T, async () => {
  const [a, b] = await Promise.all([
    env.tab({ identity: "room-ada", path: "/chat" }),
    env.tab({ identity: "room-grace", path: "/chat" }),
  ]);
  const room = `room-${rand()}`;
  // Typed in capitals: room names are lower case (the subject is `chat.room.<name>`).
  await a.getByLabel("New room name").fill(room.toUpperCase());
  await a.getByRole("button", { name: "Add" }).click();
  await waitFor(b, `room ${room} in the list`, (r) => !!document.querySelector(`[data-testid="chat-room-${r}"]`), room);
  await b.getByTestId(`chat-room-${room}`).click();
  await waitCount(b, "chat-message", `created #${room}`, 1);
});

// Sent while the server is down, then the tab moved on to another page: the message is stored once
// the server is back, without its room being opened again. So is a room added meanwhile (its
// first message is what lists it for every tab).
test("chat: what was sent while the server was down reaches the stream from any page", T, async (t) => {
  const page = await env.tab({ identity: "chat-away", path: "/chat" });
  await page.getByPlaceholder("Message #general").waitFor();
  const text = `while down ${rand()}`;
  const room = `away-${rand()}`.toLowerCase();
  t.after(() => env.control("start"));
  await env.control("stop");
  await send(page, text);
  await page.getByLabel("New room name").fill(room);
  await page.getByRole("button", { name: "Add" }).click();
  await page.getByPlaceholder(`Message #${room}`).waitFor();
  await page.locator('a[href="/counter"]').click();
  await page.waitForURL(/\/counter$/);
  await env.control("start");

  const last = async (subject) => (await env.jsm.streams.getMessage("CHAT", { last_by_subj: subject })).json().text;
  await eventually(
    "the message and the room in CHAT",
    async () => (await last("chat.room.general")) === text && (await last(`chat.room.${room}`)) === `created #${room}`,
    { timeout: 30_000 },
  );
  // Back on the chat, in the room left: listed, its first message shown once, as stored; and the
  // message sent in #general.
  await page.locator('a[href="/chat"]').click();
  await page.getByPlaceholder(`Message #${room}`).waitFor();
  await waitCount(page, "chat-message", `created #${room}`, 1);
  await page.getByTestId("chat-room-general").click();
  await waitCount(page, "chat-message", text, 1);
});

// A message the stream refuses for what it is (here: larger than the stream's limit an admin
// set) is not retried forever: it says why, and its sender can discard it or try again; the
// messages after it are not held up. Before, it showed "retrying…" for good, with no way out, and
// came back at every reload.
test("chat: a message the stream refuses says why and can be discarded; the next ones go", T, async (t) => {
  const page = await env.tab({ identity: "chat-refused", path: "/chat" });
  await page.getByPlaceholder("Message #general").waitFor();
  await eventually("stream CHAT exists (the page creates it)", () => env.jsm.streams.info("CHAT"));
  const { config } = await env.jsm.streams.info("CHAT");
  t.after(() => env.jsm.streams.update("CHAT", { ...config, max_msg_size: -1 }));
  await env.jsm.streams.update("CHAT", { ...config, max_msg_size: 300 });

  const long = `too long ${rand()} ${"x".repeat(400)}`;
  const short = `short ${rand()}`;
  await send(page, long);
  await send(page, short);
  await waitCount(page, "chat-message", short, 1);
  const pending = page.getByTestId("chat-pending").filter({ hasText: long.slice(0, 20) });
  await waitFor(
    page,
    "the long message marked as refused, with the reason",
    ({ start }) =>
      [...document.querySelectorAll('[data-testid="chat-pending"]')].some(
        (p) => p.textContent.includes(start) && /not sent/.test(p.textContent) && /maximum/i.test(p.textContent) && !/retrying/.test(p.textContent),
      ),
    { start: long.slice(0, 20) },
  );
  await pending.getByTestId("chat-discard").click();
  await waitCount(page, "chat-pending", long.slice(0, 20), 0);
  // Gone for good: not in the tab's outbox after a reload, never stored.
  await page.reload();
  await waitCount(page, "chat-message", short, 1);
  assert.equal(await countText(page, "chat-pending", long.slice(0, 20)), 0);
  const last = (await env.jsm.streams.getMessage("CHAT", { last_by_subj: "chat.room.general" })).json().text;
  assert.equal(last, short);
});

// An admin may delete stream CHAT (/streams): the open page makes it again, what is sent next is
// stored, and the room list stays live. Before, sends were retried forever against no stream and
// the room list stopped at the first error.
test("chat: after stream CHAT is deleted, the page makes it again and keeps working", T, async () => {
  const [a, b] = await Promise.all([
    env.tab({ identity: "chat-del-a", path: "/chat" }),
    env.tab({ identity: "chat-del-b", path: "/chat" }),
  ]);
  for (const page of [a, b]) await page.getByPlaceholder("Message #general").waitFor();
  await eventually("stream CHAT exists (the page creates it)", () => env.jsm.streams.info("CHAT"));
  const before = `before delete ${rand()}`;
  await send(a, before);
  await waitCount(b, "chat-message", before, 1);
  // A room only the old stream has, from another client.
  const gone = `gone-${rand()}`.toLowerCase();
  await jetstream(env.nc).publish(
    `chat.room.${gone}`,
    JSON.stringify({ id: `g${rand()}`, room: gone, user: "cli", text: "soon gone", at: new Date().toISOString() }),
  );
  for (const page of [a, b]) await page.getByTestId(`chat-room-${gone}`).waitFor();
  await env.jsm.streams.delete("CHAT");

  const text = `after delete ${rand()}`;
  await send(a, text);
  await waitCount(b, "chat-message", text, 1, { timeout: 45_000 });
  // What the deleted stream held is gone from the open pages too, as from one opened now.
  const c = await env.tab({ identity: "chat-del-c", path: "/chat" });
  await waitCount(c, "chat-message", text, 1);
  for (const page of [a, b, c]) {
    await waitCount(page, "chat-message", before, 0);
    await waitFor(page, "the old stream's room is no longer listed", (s) => !document.querySelector(s), sel(`chat-room-${gone}`));
  }
  const room = `del-${rand()}`.toLowerCase();
  await b.getByLabel("New room name").fill(room);
  await b.getByRole("button", { name: "Add" }).click();
  await a.getByTestId(`chat-room-${room}`).waitFor({ timeout: 45_000 });
  const last = (await env.jsm.streams.getMessage("CHAT", { last_by_subj: "chat.room.general" })).json().text;
  assert.equal(last, text);
});

// What is typed in a room stays there: when another room is opened and this one again, and when
// the connection changes (⚙ Apply reconnects, and the page over the old client is rebuilt), which
// also keeps the room on screen. Before, Apply emptied the box and went back to #general.
test("chat: a draft stays in its room through a room change, a new connection and a visit to another page", T, async () => {
  const page = await env.tab({ identity: "chat-draft", path: "/chat" });
  await page.getByPlaceholder("Message #general").waitFor();
  const [inGeneral, inRandom] = [`general draft ${rand()}`, `random draft ${rand()}`];
  await page.getByTestId("chat-input").fill(inGeneral);
  await page.getByTestId("chat-room-random").click();
  await page.getByPlaceholder("Message #random").waitFor();
  assert.equal(await page.getByTestId("chat-input").inputValue(), "", "a room of its own has its own box");
  await page.getByTestId("chat-input").fill(inRandom);
  await page.getByTestId("chat-room-general").click();
  await page.getByPlaceholder("Message #general").waitFor();
  assert.equal(await page.getByTestId("chat-input").inputValue(), inGeneral);

  await page.getByTestId("chat-room-random").click();
  await page.getByRole("button", { name: "Connection settings" }).click();
  await page.getByRole("button", { name: "Apply" }).click();
  await waitStatus(page, "Live");
  await page.getByPlaceholder("Message #random").waitFor();
  assert.equal(await page.getByTestId("chat-input").inputValue(), inRandom);
  // And it is sent from there as usual; the box is then empty, in this room only.
  await page.getByTestId("chat-send").click();
  await waitCount(page, "chat-message", inRandom, 1);
  assert.equal(await page.getByTestId("chat-input").inputValue(), "");
  await page.getByTestId("chat-room-general").click();
  await page.getByPlaceholder("Message #general").waitFor();
  assert.equal(await page.getByTestId("chat-input").inputValue(), inGeneral);

  // Another page and back (by the header's links, as a user goes): the room left is open, with
  // what was typed in it. (It opened #general, every draft gone.)
  await page.getByTestId("chat-room-random").click();
  await page.getByPlaceholder("Message #random").waitFor();
  const later = `random again ${rand()}`;
  await page.getByTestId("chat-input").fill(later);
  await page.getByRole("link", { name: "Counter", exact: true }).click();
  await page.getByTestId("counter-value").waitFor();
  await page.getByRole("link", { name: "Chat", exact: true }).click();
  await page.getByPlaceholder("Message #random").waitFor();
  assert.equal(await page.getByTestId("chat-input").inputValue(), later);
  await page.getByTestId("chat-room-general").click();
  await page.getByPlaceholder("Message #general").waitFor();
  assert.equal(await page.getByTestId("chat-input").inputValue(), inGeneral);
});

test("chat: a draft longer than a message may be is kept whole, says by how much, and is sent once shortened", T, async () => {
  const room = `toolong-${rand()}`;
  const page = await env.tab({ identity: "long-ada", path: "/chat" });
  // A pasted room name over the 32 characters a name takes is kept, and refused with why.
  await page.getByLabel("New room name").fill(`${room}-${"x".repeat(40)}`);
  await page.getByRole("button", { name: "Add" }).click();
  await waitText(page, "chat-room-error", /32 at most/);
  assert.equal(await page.getByLabel("New room name").inputValue(), `${room}-${"x".repeat(40)}`);
  await page.getByLabel("New room name").fill(room);
  await page.getByRole("button", { name: "Add" }).click();
  await waitFor(page, "the room open", (r) => document.querySelector(".room-head h2")?.textContent.includes(r), room);

  // As a paste does: the whole text lands in the box, none of it cut.
  const pasted = "p".repeat(2_345);
  await page.getByTestId("chat-input").fill(pasted);
  assert.equal((await page.getByTestId("chat-input").inputValue()).length, 2_345);
  await waitFor(page, "the composer saying by how much", () =>
    document.querySelector('[data-testid="chat-too-long"]')?.textContent.includes("2345 characters: 345 over"),
  );
  assert.ok(await page.getByTestId("chat-send").isDisabled());
  assert.equal(await page.getByTestId("chat-input").getAttribute("aria-invalid"), "true");
  // Enter sends nothing, and keeps the text.
  await page.getByTestId("chat-input").press("Enter");
  assert.equal(await page.getByTestId("chat-pending").count(), 0);
  assert.equal((await page.getByTestId("chat-input").inputValue()).length, 2_345);

  // Shortened to what a message takes, it goes whole.
  await page.getByTestId("chat-input").fill("p".repeat(2_000));
  assert.equal(await textOf(page, "chat-too-long"), "");
  await page.getByTestId("chat-send").click();
  await waitCount(page, "chat-message", "pppp", 1);
  const shown = await page.getByTestId("chat-message").filter({ hasText: "pppp" }).locator(".text").textContent();
  assert.equal(shown, "p".repeat(2_000));
});
