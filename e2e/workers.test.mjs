// /workers: partitioned workers with KV leases in browser tabs and native processes (via-worker).
// Two tabs join and share the 8 partitions 4 / 4; events published by nats.js and by the page's
// publish control are all processed (every durable drained); the page shows the consumers, the
// status feed, the stream, its recent messages (as text) and each worker's memory. A tab reloaded
// lets its partitions go at once. Then 2 tabs and a native worker, one tab crashed mid-stream: its
// partitions move only once its leases expired, no two workers ever hold one partition at once
// (from the status events), nothing is lost.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";

import { jetstream } from "@nats-io/jetstream";

import {
  applyTheme,
  axeViolations,
  consoleTail,
  eventually,
  hiddenWhenNarrow,
  pause,
  rand,
  screenshot,
  sel,
  signIn,
  startViaWorker,
  textOf,
  useEnv,
  viaWorkerBin,
  waitFor,
  waitStatus,
  waitText,
} from "./lib.mjs";

const env = useEnv();
const T = { timeout: 240_000 };

// via-workers' defaults, which the page and via-worker both use.
const PARTITIONS = 8;
const STREAM = "EVENTS";
const LEASE_TTL = 10_000;
// The status events' times come from different processes' clocks on one machine (each a wall
// clock read at start plus a monotonic elapsed time): they agree to within a few ms.
const CLOCK_SLACK = 50;
const THEMES = ["light", "dark", "ocean", "forest", "sunset"];

/** Joins with the tab and resolves with its worker id. */
async function join(page) {
  await page.getByTestId("worker-join").click();
  await waitText(page, "worker-self-phase", "working");
  await waitText(page, "worker-self-id", /^tab-[0-9a-f]{8}$/);
  return textOf(page, "worker-self-id");
}

/** Leaves with the tab and waits until it is no worker any more. */
async function leave(page) {
  await page.getByTestId("worker-leave").click();
  await waitText(page, "worker-self-phase", "not a worker");
}

/** The consumers table as the page shows it: worker id → partitions held. */
const table = (page) =>
  page.evaluate(() =>
    Object.fromEntries(
      [...document.querySelectorAll('[data-testid^="worker-partitions-"]')].map((td) => [
        td.dataset.testid.slice("worker-partitions-".length),
        (td.textContent.match(/\d+/g) ?? []).map(Number),
      ]),
    ),
  );

/** Waits until the table shows exactly `ids`, every partition held once, with these shares. */
async function waitBalanced(page, ids, shares, { timeout = 45_000 } = {}) {
  let seen;
  try {
    await eventually(
      `the consumers table shows ${ids.join(", ")} holding ${shares.join(" / ")} partitions`,
      async () => {
        seen = await table(page);
        const held = Object.values(seen).flat().sort((a, b) => a - b);
        return (
          Object.keys(seen).sort().join() === [...ids].sort().join() &&
          held.join() === [...Array(PARTITIONS).keys()].join() &&
          Object.values(seen)
            .map((p) => p.length)
            .sort()
            .join() === [...shares].sort().join()
        );
      },
      { timeout, every: 250 },
    );
  } catch (e) {
    throw new Error(`${e.message}; the table shows ${JSON.stringify(seen)}\n    ${consoleTail(page)}`);
  }
  return seen;
}

/** Every partition's durable, once all of them exist. */
const durables = () =>
  Promise.all([...Array(PARTITIONS).keys()].map((p) => env.jsm.consumers.info(STREAM, `p-${p}`)));

/** Waits until every durable has nothing pending and nothing unacknowledged. */
async function waitDrained(what, { timeout = 90_000 } = {}) {
  let last;
  try {
    return await eventually(
      what,
      async () => {
        last = await durables();
        return last.every((c) => c.num_pending === 0 && c.num_ack_pending === 0) && last;
      },
      { timeout, every: 250 },
    );
  } catch (e) {
    const left = (last ?? []).map((c) => `${c.name}: ${c.num_pending} pending, ${c.num_ack_pending} unacked`);
    throw new Error(`${e.message}; ${left.join("; ")}`);
  }
}

/**
 * Publishes `n` events with nats.js (JetStream acks, a message id each) round-robin on the
 * partitions, at most `rate` a second when given; resolves with the count stored.
 */
async function publish(run, n, { rate, key = (i) => `k-${i}` } = {}) {
  const js = jetstream(env.nc);
  const started = Date.now();
  let stored = 0;
  let pending = [];
  for (let i = 0; i < n; i++) {
    if (rate) {
      const due = started + (i * 1000) / rate;
      if (due > Date.now()) {
        await Promise.all(pending.splice(0));
        await pause(due - Date.now());
      }
    }
    const id = `${run}-${i}`;
    const body = JSON.stringify({ id, key: key(i), published_at: Date.now() });
    pending.push(
      js.publish(`poc.events.p.${i % PARTITIONS}`, body, { msgID: id }).then((ack) => {
        if (!ack.duplicate) stored++;
      }),
    );
    if (pending.length >= 100) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending);
  return stored;
}

/** The status events on poc.workers.status, as they come, until `stop()`. */
function collectStatus() {
  const events = [];
  const sub = env.nc.subscribe("poc.workers.status", {
    callback: (err, m) => {
      if (!err) events.push(JSON.parse(m.string()));
    },
  });
  return { events, stop: () => sub.unsubscribe() };
}

/**
 * Per partition, who held it when: from each acquired to the same worker's next released, lost
 * or expired; an interval still open ends at `ends[worker]` (a tab closed: it can no longer
 * consume) or never. Fails when two workers' intervals of one partition overlap.
 */
function assertNoTwoOwners(events, ends = {}) {
  const intervals = new Map();
  const sorted = events.filter((e) => e.partition !== null && e.partition !== undefined).sort((a, b) => a.at - b.at);
  const open = new Map();
  for (const e of sorted) {
    const k = `${e.partition} ${e.worker}`;
    if (e.kind === "acquired") {
      open.set(k, e.at);
    } else if (["released", "lost", "expired"].includes(e.kind) && open.has(k)) {
      if (!intervals.has(e.partition)) intervals.set(e.partition, []);
      intervals.get(e.partition).push({ worker: e.worker, from: open.get(k), to: e.at });
      open.delete(k);
    }
  }
  for (const [k, from] of open) {
    const [p, worker] = k.split(" ");
    const partition = Number(p);
    if (!intervals.has(partition)) intervals.set(partition, []);
    intervals.get(partition).push({ worker, from, to: ends[worker] ?? Infinity });
  }
  const overlaps = [];
  for (const [p, list] of intervals) {
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const [a, b] = [list[i], list[j]];
        if (a.worker !== b.worker && a.from < b.to - CLOCK_SLACK && b.from < a.to - CLOCK_SLACK) {
          overlaps.push(`p${p}: ${JSON.stringify(a)} and ${JSON.stringify(b)}`);
        }
      }
    }
  }
  assert.deepEqual(overlaps, [], "two workers held one partition at once");
  return intervals;
}

test("workers: two tabs share the partitions and process every event; the page shows it all", T, async () => {
  const a = await env.tab({ identity: "worker-a", path: "/workers" });
  // The page sets up the stream and the durables on arrival: an outside publisher can start.
  await eventually("the page created the stream and the 8 durables", durables, { timeout: 20_000 });
  // No agent here: the page says so, and its buttons are off.
  await waitFor(a, "the agent is said missing", (s) => !!document.querySelector(s), sel("agent-missing"));
  assert.equal(await a.getByTestId("worker-add").isDisabled(), true);

  const b = await env.tab({ identity: "worker-b", path: "/workers" });
  const idA = await join(a);
  const idB = await join(b);
  assert.notEqual(idA, idB);
  await waitBalanced(a, [idA, idB], [4, 4]);
  await waitBalanced(b, [idA, idB], [4, 4]);
  await waitText(a, "worker-count", "2 workers");
  // Each tab knows its own share, from its own status events.
  for (const page of [a, b]) await waitText(page, "worker-self-partitions", /^\d+ \d+ \d+ \d+$/);

  // From outside (nats.js).
  const run = `e2e-${rand()}`;
  let stored = await publish(run, 1500);
  assert.equal(stored, 1500);

  // From the page's publish control.
  await a.getByTestId("publish-count").fill("500");
  await a.getByTestId("publish-rate").fill("0");
  await a.getByTestId("publish-events").click();
  await waitText(a, "publish-done", /^published 500 events in [\d.]+ s/, { timeout: 60_000 });
  stored += 500;
  // The last one with markup in its key: the recent messages must show it as text.
  const bold = `bold-${rand()}`;
  const markup = `<img src=x onerror="window.__pwned=1"><b>${bold}</b>`;
  stored += await publish(`${run}-markup`, 1, { key: () => markup });

  const drained = await waitDrained("every durable drained (p-0..p-7: nothing pending, nothing unacknowledged)");
  const delivered = drained.reduce((sum, c) => sum + c.ack_floor.stream_seq, 0);
  assert.ok(delivered > 0, "the durables acknowledged nothing");

  // Every event was processed by one of the two tabs (a redelivery may count twice).
  const processed = await eventually(
    `the tabs' processed counts sum to at least ${stored}`,
    async () => {
      const sum = Number(await textOf(a, "worker-self-processed")) + Number(await textOf(b, "worker-self-processed"));
      return sum >= stored && sum;
    },
    { timeout: 10_000 },
  );
  assert.ok(processed >= stored);

  // The stream's figures and its recent messages, the markup as text.
  await waitFor(a, "the stream count shows every event", (n) => Number(document.querySelector('[data-testid="stream-count"]')?.textContent) >= n, stored);
  await waitFor(
    a,
    "the recent messages list the events",
    () => document.querySelectorAll('[data-testid="stream-messages"] li.recent-message').length === 20,
  );
  const recent = await a.evaluate(() => {
    const list = document.querySelector('[data-testid="stream-messages"]');
    return { text: list.textContent, elements: list.querySelectorAll("img, b").length, pwned: window.__pwned ?? null };
  });
  assert.ok(recent.text.includes(`<b>${bold}</b>`), `the markup is not shown as text: ${recent.text.slice(0, 300)}`);
  assert.equal(recent.elements, 0, "markup in a payload became elements");
  assert.equal(recent.pwned, null);

  // The status feed: joins and acquisitions, newest first.
  await waitFor(
    a,
    "the feed shows both tabs' acquisitions",
    (ids) => {
      const lines = [...document.querySelectorAll('[data-testid="status-event"]')].map((l) => l.textContent);
      return ids.every((id) => lines.some((l) => l.includes(id) && l.includes("acquired")));
    },
    [idA, idB],
  );

  // Each tab's memory, charted from its samples (the live heap and the wasm memory in a tab).
  for (const id of [idA, idB]) {
    await waitFor(a, `the memory chart of ${id}`, (s) => /allocated \d.*wasm \d/.test(document.querySelector(s)?.textContent ?? ""), sel(`worker-memory-${id}`));
  }
  await screenshot(a, "workers");
  // On a phone, each worker's values are in sight: rows stack, nothing scrolls away.
  assert.deepEqual(await hiddenWhenNarrow(a, '[data-testid="worker-row"] td', { shot: "workers-narrow" }), []);

  // Accessible in every theme, with rows, feed lines and charts on the page.
  const problems = [];
  for (const theme of THEMES) {
    await applyTheme(a, theme);
    for (const v of await axeViolations(a)) problems.push(`[${theme}] ${v}`);
  }
  assert.deepEqual(problems, [], `axe-core found:\n  ${problems.join("\n  ")}`);

  // Leave: the tab releases its partitions to the other one.
  await leave(b);
  await waitText(b, "worker-outcome", new RegExp(`^${idB} left after processing \\d+ events`));
  await waitBalanced(a, [idA], [8]);
  // Left cleanly, so that the next test starts with every lease free.
  await leave(a);
});

test("workers: a run of the publish control stops on Stop, and when the page goes", T, async () => {
  const page = await env.tab({ identity: "workers-stop", path: "/workers" });
  const stored = async () => (await env.jsm.streams.info(STREAM)).state.last_seq;
  await page.getByTestId("publish-count").fill("100000");
  await page.getByTestId("publish-rate").fill("20");
  await page.getByTestId("publish-events").click();
  await waitText(page, "publish-progress", /^[1-9]\d* \/ 100000 acknowledged$/, { timeout: 20_000 });
  await page.getByTestId("publish-stop").click();
  const said = await waitText(page, "publish-done", /^stopped: at least \d+ of 100000 events were published$/);
  const atStop = await stored();
  // Nothing more goes out (at 20 a second, a second would show it).
  await pause(1500);
  assert.ok((await stored()) - atStop <= 1, `${said}; the stream grew after Stop`);

  // Again, then away to another page: the run ends with the page.
  await page.getByTestId("publish-events").click();
  await waitText(page, "publish-progress", /^[1-9]\d* \/ 100000 acknowledged$/, { timeout: 20_000 });
  await page.getByRole("link", { name: "Counter" }).first().click();
  await waitFor(page, "the counter page", (s) => !!document.querySelector(s), sel("counter-value"));
  const atLeave = await stored();
  await pause(1500);
  assert.ok((await stored()) - atLeave <= 1, "the run went on after the page was left");
});

test("workers: a stream panel error that lasts is put on the page once, not again every round", T, async (t) => {
  const store = mkdtempSync(path.join(tmpdir(), "via-e2e-workers-"));
  t.after(async () => {
    await fetch(`${env.server.control}/auth-server/stop`);
    rmSync(store, { recursive: true, force: true });
  });
  // A server of its own, whose user may do everything but read a stream's messages.
  const deny = ["$JS.API.STREAM.MSG.GET.>", "$JS.API.DIRECT.GET.>"];
  const config = `jetstream { store_dir: ${JSON.stringify(store)} }
authorization { users = [ { user: nopeek, password: nopeek, permissions: { publish: { deny: ${JSON.stringify(deny)} } } } ] }`;
  const res = await fetch(`${env.server.control}/auth-server?config=${encodeURIComponent(config)}`);
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  const page = await env.tab({ identity: "workers-nopeek", path: "/workers", servers: body.websocket, user: { user: "nopeek", pass: "nopeek" } });
  await page.getByTestId("publish-count").fill("3");
  await page.getByTestId("publish-events").click();
  await waitText(page, "stream-count", "3");
  await waitText(page, "stream-error", /could not read the recent messages: .*permission/i);
  // Counted from here: every time the alert is put on the page again (and said again).
  await page.evaluate(() => {
    window.alertsAdded = 0;
    new MutationObserver((records) => {
      for (const r of records) for (const n of r.addedNodes) if (n.nodeType === 1 && n.matches('[data-testid="stream-error"]')) window.alertsAdded++;
    }).observe(document.body, { childList: true, subtree: true });
  });
  // Three rounds (every 2 s), the failure the same in each.
  await pause(6500);
  assert.equal(await page.evaluate(() => window.alertsAdded), 0, "the alert was put back while the failure lasted");
  assert.match(await textOf(page, "stream-error"), /could not read the recent messages/);
});

/** The partitions `id` holds in the lease bucket, with when it last renewed each. */
async function leasesOf(id) {
  const leases = await env.kvm.open("leases");
  const held = [];
  for (let p = 0; p < PARTITIONS; p++) {
    const e = await leases.get(`p.${p}`);
    if (e && e.operation === "PUT") {
      const v = JSON.parse(e.string());
      if (v.owner === id) held.push({ p, renewedAt: v.renewed_at });
    }
  }
  return held;
}

test("workers: a tab reloaded lets its partitions go at once, not when its leases expire", T, async () => {
  const status = collectStatus();
  try {
    const a = await env.tab({ identity: "reload-a", path: "/workers" });
    const b = await env.tab({ identity: "reload-b", path: "/workers" });
    const idA = await join(a);
    const idB = await join(b);
    await waitBalanced(a, [idA, idB], [4, 4]);
    const heldByB = await leasesOf(idB);
    assert.equal(heldByB.length, 4, "the tab to reload holds its share");

    await b.reload();
    await waitText(b, "worker-self-phase", "not a worker");
    // The other tab takes everything, and the reloaded one is no longer listed.
    await waitBalanced(a, [idA], [8], { timeout: 30_000 });
    status.stop();

    // Each partition was taken over before its lease could have expired: the reloaded tab
    // released it (with its last renewal later than the one read, expiry comes later still).
    for (const { p, renewedAt } of heldByB) {
      const after = (e) => e.partition === p && e.at > renewedAt;
      const released = status.events.find((e) => after(e) && e.worker === idB && e.kind === "released");
      assert.ok(released, `the reloaded tab did not say it released p${p}`);
      const next = status.events.find((e) => after(e) && e.worker === idA && e.kind === "acquired");
      assert.ok(next, `nobody took p${p} over`);
      assert.ok(
        next.at < renewedAt + LEASE_TTL,
        `p${p} was taken over ${next.at - renewedAt} ms after the reloaded tab's renewal: only when the lease expired (TTL ${LEASE_TTL} ms)`,
      );
    }
    assert.ok(status.events.some((e) => e.worker === idB && e.kind === "left"), "the reloaded tab did not say it left");
    assertNoTwoOwners(status.events);
    await leave(a);
  } finally {
    status.stop();
  }
});

test("workers: while the server is away the consumers are shown as last known, not as gone", T, async (t) => {
  const a = await env.tab({ identity: "away-a", path: "/workers" });
  const id = await join(a);
  await waitBalanced(a, [id], [8]);
  t.after(() => env.control("start"));
  await env.control("stop");
  await waitStatus(a, /^Reconnecting/);
  // A publish run started now waits for the server (it said "publishing failed: not connected"
  // a timeout later, and went on saying it once connected).
  await a.getByTestId("publish-count").fill("200");
  await a.getByTestId("publish-rate").fill("0");
  await a.getByTestId("publish-events").click();
  await waitText(a, "publish-progress", "0 / 200 acknowledged · waiting for the connection…");
  // Past the lease TTL, after which a worker not heard from is taken as gone: nothing can be
  // heard now, and the page said "0 workers — No worker yet" beside its own "working".
  await pause(LEASE_TTL + 2_000);
  assert.deepEqual(Object.keys(await table(a)), [id]);
  assert.match(await textOf(a, "worker-count"), /^1 worker$/);
  assert.equal(await a.getByTestId("publish-error").count(), 0, "the waiting run failed");
  await env.control("start");
  await waitText(a, "publish-done", /^published 200 events in [\d.]+ s/, { timeout: 30_000 });
  await waitBalanced(a, [id], [8]);
  // The status feed has no history: it says that what was said meanwhile is not shown (a
  // "released" without its "acquired" read as a mistake).
  await waitFor(
    a,
    "the feed says what it missed",
    (s) => [...document.querySelectorAll(s)].some((li) => /connected again: what was said while it was away is not shown/.test(li.textContent)),
    sel("status-event"),
  );
  await leave(a);
});

test("workers: signing in as another user while working joins again with the new connection", T, async () => {
  const status = collectStatus();
  try {
    const a = await env.tab({ identity: "signin-a", path: "/workers" });
    const before = await join(a);
    await waitBalanced(a, [before], [8]);

    await signIn(a, "admin", env.admin.pass);
    await waitText(a, "worker-outcome", /Joined again on the new connection/);
    await waitText(a, "worker-self-phase", "working");
    const after = await textOf(a, "worker-self-id");
    assert.notEqual(after, before, "a new worker, on the new connection");
    // The one before left (its leases released, not left to expire), the new one holds all.
    await waitBalanced(a, [after], [8], { timeout: 30_000 });
    status.stop();
    assert.ok(status.events.some((e) => e.worker === before && e.kind === "left"), "the worker before did not leave");
    assertNoTwoOwners(status.events);
    await leave(a);
  } finally {
    status.stop();
  }
});

test("workers: 2 tabs and a native worker, one tab crashed mid-stream: its partitions move, nothing is lost, never two owners", T, async () => {
  const status = collectStatus();
  const native = startViaWorker(env);
  try {
    const a = await env.tab({ identity: "churn-a", path: "/workers" });
    const b = await env.tab({ identity: "churn-b", path: "/workers" });
    const idA = await join(a);
    const idB = await join(b);
    const idN = await eventually("the native worker announced itself", async () => {
      const rows = await table(a);
      return Object.keys(rows).find((id) => id.startsWith("proc-"));
    }, { timeout: 30_000 });
    // 8 over 3: shares of 3, 3 and 2.
    await waitBalanced(a, [idA, idB, idN], [3, 3, 2]);
    await waitFor(a, "the native worker's memory chart", (s) => /allocated \d/.test(document.querySelector(s)?.textContent ?? ""), sel(`worker-memory-${idN}`), { timeout: 15_000 });

    const run = `churn-${rand()}`;
    const N = 3000;
    const publishing = publish(run, N, { rate: 250 });
    await pause(3000); // mid-stream: some events are in, most are still to come
    // Which partitions the tab to close holds, and when it last renewed them.
    const heldByB = await leasesOf(idB);
    assert.ok(heldByB.length > 0, "the tab to close holds no partition");
    // A crash, not a close: a tab closed releases its leases (its pagehide, the test above), one
    // that crashed or lost its machine cannot, and the others must wait its leases out.
    const crashed = new Promise((resolve) => b.on("crash", resolve));
    const cdp = await b.context().newCDPSession(b);
    cdp.send("Page.crash").catch(() => {});
    await crashed;
    const closedAt = Date.now();
    await b.context().close();

    assert.equal(await publishing, N);
    await waitDrained("every durable drained after the churn");
    // After the churn: one tab and the native worker, 4 partitions each.
    await waitBalanced(a, [idA, idN], [4, 4]);
    status.stop();

    // The crashed tab's partitions went to the others, each only once its lease could have
    // expired: not before the last renewal seen plus the lease TTL. (One it gave up itself
    // before closing is a hand-over, which the interval check below covers.)
    for (const { p, renewedAt } of heldByB) {
      const next = status.events.find((e) => e.kind === "acquired" && e.partition === p && e.worker !== idB && e.at > renewedAt);
      assert.ok(next, `nobody took p${p} over from the crashed tab`);
      const gaveUp = status.events.some((e) => e.worker === idB && e.partition === p && e.kind !== "acquired" && e.at > renewedAt);
      if (gaveUp) continue;
      assert.ok(
        next.at >= renewedAt + LEASE_TTL - CLOCK_SLACK,
        `p${p} was taken over ${next.at - renewedAt} ms after the crashed tab's renewal (lease TTL ${LEASE_TTL} ms)`,
      );
    }
    // The status feed says so too.
    await waitFor(
      a,
      "the feed shows the crashed tab's partitions acquired by the others",
      ({ ids, parts }) => {
        const lines = [...document.querySelectorAll('[data-testid="status-event"]')].map((l) => l.textContent);
        return parts.every((p) => lines.some((l) => ids.some((id) => l.includes(id)) && l.includes(`acquired p${p} `)));
      },
      { ids: [idA, idN], parts: heldByB.map((h) => h.p) },
    );
    assertNoTwoOwners(status.events, { [idB]: closedAt });

    // The native worker leaves cleanly on SIGTERM; the tab takes everything.
    await native.stop();
    assert.deepEqual(await native.exited, { code: 0, signal: null }, native.log());
    await waitBalanced(a, [idA], [8]);
    await leave(a);
  } finally {
    status.stop();
    await native.kill();
    native.remove();
  }
});

test("workers: Add worker starts a via-worker through the agent; Kill (-9) ends it and its partitions move", T, async () => {
  const bin = viaWorkerBin();
  const processes = [1, 2]
    .map(
      (n) =>
        `[[process]]\nname = "worker-${n}"\ncommand = ${JSON.stringify(bin)}\nargs = ["--id", "worker-${n}"]\n` +
        `autostart = false\nrestart = "never"\n`,
    )
    .join("\n");
  const agent = await env.agent({ processes });
  try {
    // Starting and killing processes takes admin.
    const page = await env.tab({ identity: "ops", path: "/workers", admin: true });
    const id = await join(page);
    await waitBalanced(page, [id], [8]);
    await waitFor(page, "Add worker is on", (s) => document.querySelector(s)?.disabled === false, sel("worker-add"));
    await page.getByTestId("worker-add").click();
    // The agent's worker-1 runs via-worker with id worker-1: a consumer named like its process.
    await waitBalanced(page, [id, "worker-1"], [4, 4], { timeout: 60_000 });
    await waitFor(page, "Kill worker-1 is on", (s) => document.querySelector(s)?.disabled === false, sel("worker-kill-worker-1"));

    const publishing = publish(`kill-${rand()}`, 1000, { rate: 200 });
    await pause(1500);
    await page.getByTestId("worker-kill-worker-1").click();
    await waitFor(page, "worker-1 no longer runs: Kill is off", (s) => document.querySelector(s)?.disabled === true, sel("worker-kill-worker-1"));
    assert.equal(await publishing, 1000);
    // Killed without a word: its leases expire and the tab takes every partition back.
    await waitBalanced(page, [id], [8], { timeout: 60_000 });
    await waitDrained("every durable drained after the kill");

    // The agent killed (-9) takes its processes with it: the row says its state is the last
    // known, and counts no uptime (it said "running" and counted on, beside "via-agent is not
    // running").
    await page.getByTestId("worker-add").click();
    await waitFor(page, "Kill worker-1 is on again", (s) => document.querySelector(s)?.disabled === false, sel("worker-kill-worker-1"));
    await agent.kill();
    await waitFor(
      page,
      "worker-1's row marked as last known",
      (s) => /agent not running · last known/.test(document.querySelector(s)?.closest("tr")?.textContent ?? ""),
      sel("worker-kill-worker-1"),
      { timeout: 30_000 },
    );
    const cells = await page.evaluate(
      (s) => [...document.querySelector(s).closest("tr").querySelectorAll("td")].map((td) => td.textContent.trim()),
      sel("worker-kill-worker-1"),
    );
    assert.equal(cells[3], "—", `uptime of a process of a killed agent: ${cells.join(" | ")}`);
  } finally {
    await agent.stop();
  }
});
