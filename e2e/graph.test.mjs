// /graph against a real server, with outside clients: registrations written by nats-py with
// `service:<name>` tags, and a nats.js service with metadata `deps`, form the expected edges; a
// dependency nobody provides is drawn as a ghost node; a stale heartbeat marks its node unhealthy;
// a node opens its details from the keyboard; a registry change redraws within a second; at a
// phone's width, services that depend on nothing wrap into rows that fit the card.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Svcm } from "@nats-io/services";

import { eventually, hiddenWhenNarrow, rand, screenshot, sel, useEnv, waitFor } from "./lib.mjs";

const env = useEnv();
const T = { timeout: 60_000 };
const REGISTRY = "services_registry";

/** The edges drawn, as sorted "from -> to" strings. */
const drawnEdges = (page) =>
  page.evaluate((s) => [...document.querySelectorAll(s)].map((e) => `${e.dataset.from} -> ${e.dataset.to}`).sort(), sel("graph-edge"));

/** Node name → data-state, of every node drawn. */
const drawnNodes = (page) =>
  page.evaluate(
    (s) => Object.fromEntries([...document.querySelectorAll(s)].map((n) => [n.dataset.name, n.dataset.state])),
    sel("graph-node"),
  );

/** Writes registry entries with nats-py: [key, name, tags, heartbeat age in ms]. */
function register(entries) {
  const lines = entries
    .map(
      ([key, name, tags, age = 0]) =>
        `await kv.put(${JSON.stringify(key)}, json.dumps({"name": ${JSON.stringify(name)}, "host": "box", "pid": 7, ` +
        `"registered_at": now, "heartbeat_at": now - ${age}, "tags": ${JSON.stringify(tags)}, "kind": "process"}).encode())`,
    )
    .join("\n");
  return env.py(`
import time
kv = await nc.jetstream().key_value("${REGISTRY}")
now = int(time.time() * 1000)
${lines}
`);
}

test("graph: registrations and a service form the expected edges, a missing dependency is a ghost", T, async () => {
  const t = rand();
  const [api, db, web, gone, ops] = ["api", "db", "web", "gone", "ops"].map((n) => `${t}/${n}`);
  // Running before the page opens: its first discovery finds it.
  const service = await new Svcm(env.nc).add({ name: `calc_${t}`, version: "0.1.0", metadata: { deps: `${db}, ${api}` } });
  service.addEndpoint("add", { handler: (_err, msg) => msg.respond("0") });
  try {
    const page = await env.tab({ identity: "ops", path: "/graph" });
    await page.getByTestId("graph").waitFor();
    // The page creates the registry when it is missing.
    await eventually("the registry exists", () => env.jsm.streams.info(`KV_${REGISTRY}`));
    await register([
      [`api-${t}`, api, [`service:${db}`, "depends:nats", "<b>x</b>"]],
      [`db-${t}`, db, []],
      [`web-${t}`, web, [`service:${api}`, `service:${gone}`]],
      // Missed its heartbeats: stale, and expired 4.5 s from now (the TTL is 15 s).
      [`ops-${t}`, ops, [`service:${web}`], 10_500],
    ]);
    const expected = [
      `${api} -> ${db}`,
      `${ops} -> ${web}`,
      `${web} -> ${api}`,
      `${web} -> ${gone}`,
      `calc_${t} -> ${api}`,
      `calc_${t} -> ${db}`,
    ].sort();
    await eventually(
      "the expected edges",
      async () => JSON.stringify(await drawnEdges(page)) === JSON.stringify(expected),
      { timeout: 10_000 },
    ).catch(async (e) => {
      const summary = await page.getByTestId("graph-summary").textContent();
      throw new Error(`${e.message}; drawn: ${JSON.stringify(await drawnEdges(page))} (${summary})`);
    });
    // Health is judged against the page's clock, which ticks every second: ops turns unhealthy
    // at the first tick after its heartbeat is 10 s old, possibly just after the edges are drawn.
    const states = {
      [api]: "healthy",
      [db]: "healthy",
      [web]: "healthy",
      [gone]: "ghost",
      [ops]: "unhealthy",
      [`calc_${t}`]: "healthy",
    };
    const same = (a, b) => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
    await eventually("the expected node states", async () => same(await drawnNodes(page), states), {
      timeout: 3_000,
    }).catch(async (e) => {
      throw new Error(`${e.message}; drawn: ${JSON.stringify(await drawnNodes(page))}`);
    });
    // The missing dependency's edge is dashed; the others are not.
    const missing = await page.evaluate((s) => [...document.querySelectorAll(`${s}.missing`)].map((e) => e.dataset.to), sel("graph-edge"));
    assert.deepEqual(missing, [gone]);
    // A real layout: dependents above their dependencies.
    const y = (name) =>
      page.evaluate(
        ({ s, name }) => document.querySelector(`${s}[data-name="${name}"]`).getBoundingClientRect().y,
        { s: sel("graph-node"), name },
      );
    assert.ok((await y(web)) < (await y(api)) && (await y(api)) < (await y(db)), "web above api above db");
    await screenshot(page, "graph");

    // The keyboard opens a node's details.
    await page.locator(`${sel("graph-node")}[data-name="${web}"]`).focus();
    await page.keyboard.press("Enter");
    await waitFor(page, "the details of web", (s) => !!document.querySelector(s), sel("graph-details"));
    assert.equal((await page.getByTestId("graph-details-state").textContent()).trim(), "healthy");
    assert.equal((await page.getByTestId("graph-details-deps").textContent()).trim(), `${api}, ${gone}`);

    // Live, within a second of the write: the missing service registers and the ghost becomes a
    // node; a deleted registration turns its node into a ghost (others still depend on it).
    await register([[`gone-${t}`, gone, []]]);
    await waitFor(
      page,
      "gone is no longer a ghost",
      ({ s, name }) => document.querySelector(`${s}[data-name="${name}"]`)?.dataset.state === "healthy",
      { s: sel("graph-node"), name: gone },
      { timeout: 1000 },
    );
    // The boxes are kept across the change, and so is the keyboard focus (every node was drawn
    // anew at each change of the graph, the focus lost).
    assert.equal(await page.evaluate(() => document.activeElement?.dataset?.name ?? null), web, "the focus stays on web");
    await env.py(`await (await nc.jetstream().key_value("${REGISTRY}")).delete("db-${t}")`);
    await waitFor(
      page,
      "db became a ghost",
      ({ s, name }) => document.querySelector(`${s}[data-name="${name}"]`)?.dataset.state === "ghost",
      { s: sel("graph-node"), name: db },
      { timeout: 1000 },
    );

    // Escape closes the details: on the node, and from within the details, where the focus goes
    // back to the node.
    await page.keyboard.press("Escape");
    await waitFor(page, "the details closed by Escape on the node", (s) => !document.querySelector(s), sel("graph-details"));
    await page.keyboard.press("Enter");
    await waitFor(page, "the details open again", (s) => !!document.querySelector(s), sel("graph-details"));
    await page.getByTestId("graph-details").getByRole("button", { name: "Close" }).focus();
    await page.keyboard.press("Escape");
    await waitFor(page, "the details closed by Escape within them", (s) => !document.querySelector(s), sel("graph-details"));
    assert.equal(await page.evaluate(() => document.activeElement?.dataset?.name ?? null), web, "the focus back on web");
  } finally {
    await service.stop();
  }
});

// Services that depend on nothing are parts of their own, which were drawn side by side: on a
// phone, 2 of 4 were seen without scrolling inside the card. They wrap into rows that fit it.
test("graph: at a phone's width, independent services wrap into rows that fit the card", T, async () => {
  const t = rand();
  // Only this test's services: what earlier tests registered is removed.
  await env.jsm.streams.purge(`KV_${REGISTRY}`).catch(() => {});
  const page = await env.tab({ identity: "ops", path: "/graph" });
  await page.getByTestId("graph").waitFor();
  await eventually("the registry exists", () => env.jsm.streams.info(`KV_${REGISTRY}`));
  const names = ["orders", "billing", "search", "mailer"].map((n) => `${n}-${t}`);
  await register(names.map((name) => [name, name, []]));
  await eventually("the four services drawn", async () => {
    const drawn = await drawnNodes(page);
    return names.every((n) => drawn[n] === "healthy");
  });
  const nodes = `${sel("graph-node")}[data-name$="-${t}"]`;
  // The window made narrow with the page open.
  assert.deepEqual(await hiddenWhenNarrow(page, nodes), []);
  // Back at the desktop's width, one row again.
  await waitFor(
    page,
    "one row at 1280 px",
    (s) => new Set([...document.querySelectorAll(s)].map((n) => Math.round(n.getBoundingClientRect().y))).size === 1,
    nodes,
  );
  // Opened at a phone's width: measured when drawn.
  const phone = await env.tab({ identity: "ops", path: "/graph", viewport: { width: 390, height: 800 } });
  await eventually("the four services drawn at 390 px", async () => {
    const drawn = await drawnNodes(phone);
    return names.every((n) => drawn[n] === "healthy");
  });
  assert.deepEqual(await hiddenWhenNarrow(phone, nodes), []);
});
