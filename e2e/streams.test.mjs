// /streams against a real server, with outside clients: a work-queue stream written by nats-py is
// browsed message by message (first, next × 9, previous × 9) and is left as it was — 10 messages,
// no consumer; a stream is created, published to and deleted from the page (the delete only with
// the stream's name typed out); the server's refusals are shown (a subject another stream stores
// with that stream named, a name in use as its text) and the page keeps working; the list is only polled while the tab is visible
// and the page is open. Browsing is the anonymous browser user's; creating and deleting streams
// takes admin (signed in as in ⚙; the permissions test checks what browser is told).

import assert from "node:assert/strict";
import { test } from "node:test";

import { jetstream } from "@nats-io/jetstream";
import { headers } from "@nats-io/transport-node";

import { eventually, openStreamDetail, pause, rand, sel, setHidden, signIn, textOf, useEnv, waitFor, waitText } from "./lib.mjs";

const env = useEnv();
const T = { timeout: 60_000 };

const row = (page, name) => page.getByTestId("stream-row").filter({ hasText: name });
const openStream = (name) => openStreamDetail(env, name, { identity: "ops" });

async function consumerNames(stream) {
  const names = [];
  for await (const c of env.jsm.consumers.list(stream)) names.push(c.name);
  return names;
}

test("streams: a work queue is browsed both ways without consuming it", T, async () => {
  const name = `WQ_${rand()}`;
  const prefix = name.toLowerCase();
  // Message 5 is binary; the others are text with markup in it.
  const out = await env.py(`
from nats.js.api import RetentionPolicy
js = nc.jetstream()
await js.add_stream(name="${name}", subjects=["${prefix}.>"], retention=RetentionPolicy.WORK_QUEUE)
for i in range(1, 11):
    payload = bytes([0, 159, 146, 150]) if i == 5 else f"<b>job {i}</b>".encode()
    ack = await js.publish(f"${prefix}.job.{i}", payload, headers={"X-Job": str(i)})
    assert ack.seq == i, ack
print("stored")
`);
  assert.equal(out.trim(), "stored");

  const page = await openStream(name);
  await waitText(page, "stream-detail-messages", "10");
  await page.getByTestId("stream-peek-first").click();
  await waitText(page, "stream-message-seq", "1");
  const check = async (i) => {
    await waitText(page, "stream-message-seq", String(i));
    assert.equal(await textOf(page, "stream-message-subject"), `${prefix}.job.${i}`);
    assert.match(await textOf(page, "stream-message-headers"), new RegExp(`X-Job: ${i}$`));
    const payload = await textOf(page, "stream-message-payload");
    assert.equal(payload, i === 5 ? "00 9f 92 96" : `<b>job ${i}</b>`, `payload of #${i}`);
  };
  await check(1);
  for (let i = 2; i <= 10; i++) {
    await page.getByTestId("stream-peek-next").click();
    await check(i);
  }
  await page.getByTestId("stream-peek-next").click();
  await waitText(page, "stream-peek-note", "No message after #10.");
  for (let i = 9; i >= 1; i--) {
    await page.getByTestId("stream-peek-prev").click();
    await check(i);
  }
  await page.getByTestId("stream-peek-prev").click();
  await waitText(page, "stream-peek-note", "No message before #1.");
  // A subject refused before anything is asked: the note before goes with it.
  await page.getByTestId("stream-peek-subject").fill(`${prefix}.*`);
  await page.getByTestId("stream-peek-subject-go").click();
  await waitText(page, "stream-peek-error", /^last on a subject: /);
  assert.equal(await page.getByTestId("stream-peek-note").count(), 0, "the step before's note is gone");
  // Markup in a payload stays text.
  assert.equal(
    await page.evaluate((s) => document.querySelector(s).querySelector("b"), sel("stream-message-payload")),
    null,
  );
  await page.getByTestId("stream-peek-subject").fill(`${prefix}.job.7`);
  await page.getByTestId("stream-peek-subject-go").click();
  await waitText(page, "stream-message-seq", "7");

  // Nothing was consumed and no consumer was made, as an outside client sees it.
  const info = await env.jsm.streams.info(name);
  assert.equal(info.state.messages, 10);
  assert.equal(info.state.consumer_count, 0);
  assert.deepEqual(await consumerNames(name), []);
  await waitText(page, "stream-detail-messages", "10");

  // A gap of deleted messages is stepped over, both ways.
  for (const seq of [4, 5, 6]) await env.jsm.streams.deleteMessage(name, seq);
  await page.getByTestId("stream-peek-first").click();
  await waitText(page, "stream-message-seq", "1");
  for (const expected of [2, 3, 7]) {
    await page.getByTestId("stream-peek-next").click();
    await waitText(page, "stream-message-seq", String(expected));
  }
  await page.getByTestId("stream-peek-prev").click();
  await waitText(page, "stream-message-seq", "3");
  await page.getByTestId("stream-peek-last").click();
  await waitText(page, "stream-message-seq", "10");
  // The list follows what outside clients do, without a reload.
  await waitText(page, "stream-detail-messages", "7");
  await eventually("the row shows 7 messages", async () =>
    /^7$/.test((await row(page, name).getByTestId("stream-row-messages").textContent()).trim()),
  );
  await env.jsm.streams.delete(name);
});

test("streams: a peeked message is forgotten when its stream is deleted and made again", T, async () => {
  const name = `AGAIN_${rand()}`;
  const config = { name, subjects: [`${name.toLowerCase()}.>`] };
  await env.jsm.streams.add(config);
  const js = jetstream(env.nc);
  await js.publish(`${name.toLowerCase()}.a`, "old");
  const page = await openStream(name);
  await waitText(page, "stream-detail-messages", "1");
  await page.getByTestId("stream-peek-first").click();
  await waitText(page, "stream-message-payload", "old");

  await env.jsm.streams.delete(name);
  await env.jsm.streams.add(config);
  await waitText(page, "stream-peek-note", /deleted and made again: the message shown was the old one's/, { timeout: 15_000 });
  assert.equal(await page.getByTestId("stream-message-seq").count(), 0, "the old stream's message is no longer shown");
  await env.jsm.streams.delete(name);
});

test("streams: create, publish and delete from the page", T, async () => {
  const name = `E2E_${rand()}`;
  const prefix = name.toLowerCase();
  const page = await env.tab({ identity: "ops", path: "/streams", admin: true });
  await page.getByTestId("stream-create-name").fill(name);
  await page.getByTestId("stream-create-subjects").fill(`${prefix}.>`);
  await page.getByTestId("stream-create-storage").selectOption("memory");
  await page.getByTestId("stream-create-max-msgs").fill("100");
  await page.getByTestId("stream-create-max-age").fill("1h");
  await page.getByTestId("stream-create").click();
  await waitFor(page, `a row for ${name}`, ({ s, name }) => [...document.querySelectorAll(s)].some((r) => r.textContent.includes(name)), { s: sel("stream-row"), name });
  await waitText(page, "stream-detail-messages", "0");
  const created = await env.jsm.streams.info(name);
  assert.deepEqual(created.config.subjects, [`${prefix}.>`]);
  assert.equal(created.config.storage, "memory");
  assert.equal(created.config.max_msgs, 100);
  assert.equal(created.config.max_age, 3600 * 1e9);

  // Publish with headers and a message id: the ack says where it went, a repeat is a duplicate.
  assert.equal(await page.getByTestId("stream-publish-subject").inputValue(), `${prefix}.test`);
  await page.getByTestId("stream-publish-headers").fill("X-From: the page\nNats-Msg-Id: once");
  await page.getByTestId("stream-publish-payload").fill("hello <i>stream</i>");
  await page.getByTestId("stream-publish").click();
  await waitText(page, "stream-ack", `Stored in ${name} as #1 · not a duplicate`);
  await page.getByTestId("stream-publish").click();
  await waitText(page, "stream-ack", /^Stored in .* as #1 · duplicate/);
  // A header line refused before anything is sent: the acknowledgement before goes.
  await page.getByTestId("stream-publish-headers").fill("no colon here");
  await page.getByTestId("stream-publish").click();
  await waitText(page, "stream-publish-error", "header line 1: write it as Name: value");
  assert.equal(await page.getByTestId("stream-ack").count(), 0, "no acknowledgement shown for a message not sent");
  await page.getByTestId("stream-publish-headers").fill("X-From: the page\nNats-Msg-Id: once");
  const stored = await env.jsm.streams.getMessage(name, { seq: 1 });
  assert.equal(stored.subject, `${prefix}.test`);
  assert.equal(stored.string(), "hello <i>stream</i>");
  assert.equal(stored.header.get("X-From"), "the page");
  assert.equal((await env.jsm.streams.info(name)).state.messages, 1);
  await page.getByTestId("stream-peek-last").click();
  await waitText(page, "stream-message-payload", "hello <i>stream</i>");

  // A consumer made by an outside client shows with its kind, filter and counts.
  await env.jsm.consumers.add(name, { durable_name: "worker", ack_policy: "explicit", filter_subject: `${prefix}.test` });
  await waitText(page, "stream-consumer", new RegExp(`^worker\\s*durable\\s*${prefix}\\.test\\s*1\\s*0\\s*0\\s*0\\s*never`));

  // A subject no stream stores: the page says so.
  await page.getByTestId("stream-publish-subject").fill(`nowhere_${rand()}.x`);
  await page.getByTestId("stream-publish").click();
  await waitText(page, "stream-publish-error", /no stream stores nowhere_/);

  // Delete only with the name typed out.
  const del = page.getByTestId("stream-delete");
  assert.equal(await del.isDisabled(), true);
  await page.getByTestId("stream-confirm-name").fill(name.toLowerCase());
  assert.equal(await del.isDisabled(), true, "a wrong name keeps delete off");
  assert.equal(await page.getByTestId("stream-purge").isDisabled(), true);
  await page.getByTestId("stream-confirm-name").fill(name);
  await del.click();
  await waitFor(page, "the detail closed", (s) => !document.querySelector(s), sel("stream-detail"));
  await waitFor(page, `the row of ${name} gone`, ({ s, name }) => ![...document.querySelectorAll(s)].some((r) => r.textContent.includes(name)), { s: sel("stream-row"), name });
  await assert.rejects(env.jsm.streams.info(name), /stream not found/);
});

test("streams: the server's refusals are shown and the page keeps working", T, async () => {
  const taken = `TAKEN_${rand()}`;
  const prefix = taken.toLowerCase();
  await env.jsm.streams.add({ name: taken, subjects: [`${prefix}.>`] });
  const page = await env.tab({ identity: "ops", path: "/streams", admin: true });
  await row(page, taken).waitFor();

  const create = async (name, subjects) => {
    await page.getByTestId("stream-create-name").fill(name);
    await page.getByTestId("stream-create-subjects").fill(subjects);
    await page.getByTestId("stream-create").click();
  };
  // Checked before anything is sent.
  await create("bad.name", "x");
  await waitText(page, "stream-error", /stream name: names cannot contain/);
  // A subject another stream stores: refused by the server, which names neither stream; the page
  // names it.
  const other = `OTHER_${rand()}`;
  await create(other, `elsewhere.> ${prefix}.orders`);
  await waitText(
    page,
    "stream-error",
    `could not create stream ${other}: ${prefix}.orders overlaps ${prefix}.>, which stream ${taken} stores: two streams cannot store the same subject, so pick subjects no other stream takes`,
  );
  // Refused by the server: its words are shown.
  await create(taken, "elsewhere.>");
  await waitText(page, "stream-error", /stream name already in use/);
  await assert.rejects(env.jsm.streams.info(other), /stream not found/);

  // Still usable: a valid stream is created, and a new outside stream shows up by itself.
  await create(other, `${other.toLowerCase()}.>`);
  await waitFor(page, "the create error cleared", (s) => !document.querySelector(s), sel("stream-error"));
  await row(page, other).waitFor();
  const outside = `OUTSIDE_${rand()}`;
  await env.jsm.streams.add({ name: outside, subjects: [`${outside.toLowerCase()}.>`] });
  await row(page, outside).waitFor();
  for (const s of [taken, other, outside]) await env.jsm.streams.delete(s);
  await waitFor(
    page,
    "the deleted streams gone from the list",
    ({ s, names }) => ![...document.querySelectorAll(s)].some((r) => names.some((n) => r.textContent.includes(n))),
    { s: sel("stream-row"), names: [taken, other, outside] },
  );
});

// A create refused to the browser user says to sign in as admin; doing so (a new connection)
// keeps every field of the form, the two choices included. It was emptied, the choices back to
// file and limits.
test("streams: signing in as admin after a refused create keeps the form", T, async () => {
  const name = `KEPT_${rand()}`;
  const page = await env.tab({ identity: "streams-keep", path: "/streams" });
  await page.getByTestId("stream-create-name").fill(name);
  await page.getByTestId("stream-create-subjects").fill(`${name.toLowerCase()}.>`);
  await page.getByTestId("stream-create-storage").selectOption("memory");
  await page.getByTestId("stream-create-retention").selectOption("workqueue");
  await page.getByTestId("stream-create-max-age").fill("1h");
  await page.getByTestId("stream-create").click();
  await waitText(page, "stream-error", /sign in as admin in ⚙/);

  await signIn(page, "admin", env.admin.pass);
  const kept = {
    name: await page.getByTestId("stream-create-name").inputValue(),
    storage: await page.getByTestId("stream-create-storage").inputValue(),
    retention: await page.getByTestId("stream-create-retention").inputValue(),
    age: await page.getByTestId("stream-create-max-age").inputValue(),
  };
  assert.deepEqual(kept, { name, storage: "memory", retention: "workqueue", age: "1h" });
  // Created once the click is the new connection's (the first may still reach the old one).
  await eventually(
    "the stream created as admin, from the form as typed",
    async () => {
      if (await env.jsm.streams.info(name).then(() => true, () => false)) return true;
      if (!(await page.getByTestId("stream-create").isDisabled())) await page.getByTestId("stream-create").click();
      return false;
    },
    { every: 500 },
  );
  const info = await env.jsm.streams.info(name);
  assert.deepEqual(
    [info.config.storage, info.config.retention, info.config.max_age],
    ["memory", "workqueue", 3600 * 1e9],
  );
  await env.jsm.streams.delete(name);
});

test("streams: the list is read every 2 s only while the tab is visible, and not after leaving", T, async () => {
  // Every STREAM.LIST request the page makes, as an outside subscriber sees it.
  const lists = [];
  const sub = env.nc.subscribe("$JS.API.STREAM.LIST", { callback: () => lists.push(Date.now()) });
  try {
    await env.nc.flush();
    const page = await env.tab({ identity: "ops", path: "/streams" });
    await eventually("two list requests", () => lists.length >= 2, { timeout: 6000 });
    const gaps = lists.slice(1).map((t, i) => t - lists[i]);
    assert.ok(gaps.every((g) => g >= 1500), `requests ${gaps.join(", ")} ms apart`);

    // Hidden: no request for longer than two periods. (An absence has no event to wait for.)
    await setHidden(page, true);
    await pause(300); // a request already on its way
    const whileHidden = lists.length;
    await pause(4500);
    assert.equal(lists.length, whileHidden, "requests while hidden");

    // Visible again: read at once, not at the next period.
    const shown = Date.now();
    await setHidden(page, false);
    await eventually("a request once visible", () => lists.at(-1) >= shown, { timeout: 1500, every: 20 });

    // Another page: the poller is gone with this one.
    await page.getByRole("link", { name: "Users", exact: true }).click();
    await waitFor(page, "the users page", () => location.pathname === "/", undefined);
    await pause(300);
    const afterLeaving = lists.length;
    await pause(4500);
    assert.equal(lists.length, afterLeaving, "requests after leaving /streams");
  } finally {
    sub.unsubscribe();
  }
});

// A stream made elsewhere can have a subject of thousands of characters (nats-server takes it):
// its row, its detail and the publish form's error wrap or cut it, and the page stays as wide as
// the window (a 10 004-character subject made it 92 096 px wide).
test("streams: a stream with a very long subject keeps the page as wide as the window", T, async () => {
  const name = `LONG_${rand()}`;
  const subject = `long.${"a".repeat(3000)}`;
  await env.jsm.streams.add({ name, subjects: [subject], storage: "memory" });
  try {
    const page = await openStreamDetail(env, name, { identity: "ops-long", admin: true });
    await page.getByTestId("stream-publish-subject").fill(`${subject}.x`);
    await page.getByTestId("stream-publish").click();
    await waitFor(page, "the publish's error", (s) => !!document.querySelector(s), sel("stream-publish-error"));
    const { scrollWidth, width } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth }));
    assert.ok(scrollWidth <= width, `the page is ${scrollWidth} px wide in a ${width} px window`);
  } finally {
    await env.jsm.streams.delete(name);
  }
});

// Another client purges the stream while a tab shows one of its messages: the tab says it is
// gone rather than go on showing it as the stream's.
test("streams: a peeked message purged by another client is said to be gone", T, async () => {
  const name = `PURGED_${rand()}`;
  const subject = `purged.${rand()}`;
  await env.jsm.streams.add({ name, subjects: [subject], storage: "memory" });
  try {
    await jetstream(env.nc).publish(subject, "soon gone");
    const page = await openStream(name);
    await page.getByTestId("stream-peek-last").click();
    await waitFor(page, "the message shown", (s) => !!document.querySelector(s), sel("stream-message"));
    await env.jsm.streams.purge(name);
    await waitText(page, "stream-peek-note", /^Message #1 is no longer in the stream/);
    assert.equal(await page.evaluate((s) => !!document.querySelector(s), sel("stream-message")), false);
  } finally {
    await env.jsm.streams.delete(name);
  }
});

// Opened from a row far down a long list, a stream's detail used to open below the fold with
// nothing in sight changing: it comes into sight with the focus on its heading, its name is in
// the address (a reload or a link opens it), and Back closes it.
test("streams: a stream opened far down the list comes into sight with the focus, in the address; Back closes it", T, async () => {
  const r = rand();
  const names = Array.from({ length: 14 }, (_, i) => `FAR_${r}_${String(i).padStart(2, "0")}`);
  for (const name of names) await env.jsm.streams.add({ name, subjects: [`far.${r}.${name}`], storage: "memory" });
  try {
    const page = await env.tab({ identity: "far", path: "/streams" });
    const last = names.at(-1);
    await row(page, last).getByRole("button", { name: last, exact: true }).click();
    const revealed = (name) =>
      waitFor(page, `the detail of ${name} in sight, its heading focused`, (n) => {
        const detail = document.querySelector('[data-testid="stream-detail"]');
        const h2 = detail?.querySelector("h2");
        if (!h2?.textContent.includes(n) || document.activeElement !== h2) return false;
        const top = detail.getBoundingClientRect().top;
        return top >= 0 && top < innerHeight / 2;
      }, name);
    await revealed(last);
    assert.equal(new URL(page.url()).searchParams.get("stream"), last);
    // Escape closes it, the keyboard back on its row; opened again.
    await page.keyboard.press("Escape");
    await waitFor(page, "Escape closed it, the focus back on its row", (n) =>
      !document.querySelector('[data-testid="stream-detail"]') && document.activeElement?.textContent.trim() === n, last);
    await row(page, last).getByRole("button", { name: last, exact: true }).click();
    await revealed(last);

    await page.reload();
    await waitFor(page, "the stream open after a reload", (n) => document.querySelector('[data-testid="stream-detail"] h2')?.textContent.includes(n), last);
    await page.goBack();
    await waitFor(page, "the detail closed by Back", () => !document.querySelector('[data-testid="stream-detail"]'));
    assert.equal(new URL(page.url()).searchParams.get("stream"), null);
    // Forward opens it again (where it is: only a click brings it into sight).
    await page.goForward();
    await waitFor(page, "the stream open again by Forward", (n) => document.querySelector('[data-testid="stream-detail"] h2')?.textContent.includes(n), last);
  } finally {
    for (const name of names) await env.jsm.streams.delete(name).catch(() => {});
  }
});

// A character that reorders text (U+202E) in a payload or a header value is written out, not
// applied: "🎉 \u202Eevil" read "🎉 live".
test("streams: a peeked message's bidi controls are written out, not applied", T, async () => {
  const name = `BIDI_${rand()}`;
  const subject = `bidi.${rand()}`;
  await env.jsm.streams.add({ name, subjects: [subject], storage: "memory" });
  try {
    const h = headers();
    h.set("X-Dir", "a\u2067b");
    await jetstream(env.nc).publish(subject, "party 🎉 \u202Eevil", { headers: h });
    const page = await openStream(name);
    await page.getByTestId("stream-peek-last").click();
    await waitFor(page, "the message shown", (s) => !!document.querySelector(s), sel("stream-message-payload"));
    const text = await page.evaluate((s) => document.querySelector(s).textContent, sel("stream-message"));
    assert.ok(!/[\u202a-\u202e\u2066-\u2069]/.test(text), `no raw control in ${JSON.stringify(text)}`);
    assert.match(await textOf(page, "stream-message-payload"), /^party 🎉 \\u\{202E\}evil$/);
    assert.match(await textOf(page, "stream-message-headers"), /X-Dir: a\\u\{2067\}b/);
  } finally {
    await env.jsm.streams.delete(name);
  }
});
