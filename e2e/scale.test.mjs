// /scale with via-agent: Add Leaf Node starts a leaf that joins the test server (the hub); it
// shows in the table, in the topology and in the service registry, live in a second tab; a
// message crosses hub → leaf and leaf → hub from the page; past the cap the agent's error is
// shown; Remove makes it disappear everywhere.

import assert from "node:assert/strict";
import { test } from "node:test";

import { eventually, hiddenWhenNarrow, pause, screenshot, sel, textOf, useEnv, waitCount, waitFor, waitText } from "./lib.mjs";

const env = useEnv();

const topologyNodes = (page) =>
  page.evaluate((s) => [...document.querySelectorAll(s)].map((n) => n.getAttribute("data-name") ?? "hub"), sel("topology-node"));

test("scale: add a leaf, see it in the topology and the registry, remove it", { timeout: 180_000 }, async () => {
  // One leaf at most: the second Add meets the cap. Both tabs act (add, remove): admin.
  const agent = await env.agent({ maxLeaves: 1 });
  try {
    const [a, b] = await Promise.all([
      env.tab({ identity: "scaler", path: "/scale", admin: true }),
      env.tab({ identity: "watcher", path: "/scale", admin: true }),
    ]);
    for (const page of [a, b]) {
      await waitFor(page, "the hub alone in the topology", (s) => document.querySelectorAll(s).length === 1, sel("topology-node"));
      await waitFor(page, "Add Leaf Node enabled", (s) => !document.querySelector(s)?.disabled, sel("leaf-add"));
    }

    await a.getByTestId("leaf-add").click();
    // The agent answers once the hub lists the leaf (it joined); from then, 2 s at most to show it.
    let joined = 0;
    const added = await eventually(
      "the agent lists a leaf",
      async () => {
        const leaves = JSON.parse((await env.nc.request("via.leaf.list", "{}")).string()).leaves;
        joined = Date.now();
        return leaves.find((l) => l.connected);
      },
      { timeout: 30_000, every: 100 },
    );
    const name = added.name;
    assert.match(name, /^[a-z0-9-]{1,32}$/);
    for (const page of [a, b]) {
      await waitCount(page, "leaf-row", name, 1, { timeout: 2_500 });
      await waitCount(page, "topology-node", name, 1, { timeout: 2_500 });
    }
    console.log(`    ${name} shown in both tabs ${Date.now() - joined} ms after the agent listed it as joined`);
    for (const page of [a, b]) {
      await waitFor(page, `${name}'s topology node connected`, ({ s, name }) => {
        const node = [...document.querySelectorAll(s)].find((n) => n.getAttribute("data-name") === name);
        return node && !node.classList.contains("down");
      }, { s: sel("topology-node"), name });
      assert.deepEqual((await topologyNodes(page)).sort(), ["hub", name].sort());
      // In the registry (heartbeat fresh), as the page shows it and as the bucket holds it.
      await waitText(page, `leaf-registry-${name}`, "registered");
      // The row's buttons are in sight at 1 280 px, not behind the table's scroll (the ports on
      // one line pushed Remove out).
      const cut = await page.evaluate((s) => {
        const button = document.querySelector(s);
        const wrap = button.closest(".table-wrap");
        return button.getBoundingClientRect().right - wrap.getBoundingClientRect().right;
      }, sel(`leaf-remove-${name}`));
      assert.ok(cut <= 0, `Remove ends ${cut} px past the table's edge`);
    }
    // On a phone the row stacks: every value and button in sight, nothing scrolls sideways.
    assert.deepEqual(await hiddenWhenNarrow(a, '[data-testid="leaf-row"] button, [data-testid="leaf-row"] td[data-label]', { shot: "scale-narrow" }), []);
    // …and the topology is drawn upright: its labels at a readable size (the wide drawing in a
    // phone's column shrank them to 5 px), every node inside its box.
    const wide = a.viewportSize();
    await a.setViewportSize({ width: 390, height: 800 });
    try {
      const drawn = await a.evaluate(async (s) => {
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        const svg = document.querySelector(s);
        const box = svg.getBoundingClientRect();
        const label = svg.querySelector(".node.hub text.label");
        const px = parseFloat(getComputedStyle(label).fontSize) * label.getScreenCTM().a;
        const outside = [...svg.querySelectorAll('[data-testid="topology-node"]')]
          .filter((n) => {
            const b = n.getBoundingClientRect();
            return b.left < box.left - 0.5 || b.right > box.right + 0.5 || b.top < box.top - 0.5 || b.bottom > box.bottom + 0.5;
          })
          .map((n) => n.dataset.name ?? "hub");
        return { px, outside };
      }, sel("topology"));
      assert.ok(drawn.px >= 10, `the topology's labels are ${drawn.px.toFixed(1)} px at 390 px`);
      assert.deepEqual(drawn.outside, []);
      await a.evaluate((s) => document.querySelector(s).scrollIntoView({ block: "start" }), sel("topology"));
      await screenshot(a, "scale-topology-narrow");
    } finally {
      await a.setViewportSize(wide);
    }
    const kvm = env.kvm;
    const registry = await kvm.open("services_registry");
    const entry = await registry.get(name);
    assert.ok(entry && entry.operation === "PUT", `services_registry has ${name}`);
    assert.equal(entry.json().kind, "leaf");

    // A second client in the tab connects to the leaf's WebSocket port: a message each way.
    await a.getByTestId(`leaf-try-${name}`).click();
    await waitFor(a, "the trial done", (s) => /done/.test(document.querySelector(s)?.textContent ?? ""), sel("leaf-trial"));
    const steps = await a.evaluate((s) => [...document.querySelectorAll(s)].map((e) => e.textContent), sel("leaf-trial-step"));
    assert.ok(steps.some((t) => new RegExp(`hub → ${name}: "hello from hub #\\d+" arrived`).test(t)), steps.join("\n"));
    assert.ok(steps.some((t) => new RegExp(`${name} → hub: "hello from ${name} #\\d+" arrived`).test(t)), steps.join("\n"));
    assert.ok(steps.some((t) => /closed the client/.test(t)), steps.join("\n"));

    // The cap: the agent's error is shown as it says it.
    await a.getByTestId("leaf-add").click();
    await waitText(a, "leaf-error", /no leaf added: at most 1 leaf node runs at once/);
    console.log(`    at the cap, the page says: ${await textOf(a, "leaf-error")}`);
    await screenshot(a, "scale");
    await a.evaluate(() => document.documentElement.setAttribute("data-theme", "dark"));
    await pause(400); // the theme's colour transition
    await screenshot(a, "scale-dark");
    await a.evaluate(() => document.documentElement.setAttribute("data-theme", "light"));

    // Remove, from the other tab: gone from the table, the topology and the registry, in both.
    await b.getByTestId(`leaf-remove-${name}`).click();
    for (const page of [a, b]) {
      await waitCount(page, "leaf-row", name, 0);
      await waitCount(page, "topology-node", name, 0);
      await waitCount(page, "registry-row", name, 0);
    }
    await eventually(`${name} out of services_registry`, async () => {
      const e = await registry.get(name);
      return !e || e.operation !== "PUT";
    });
  } finally {
    await agent.stop();
  }
});

test("scale: a leaf of an agent killed (-9) shows as its last known state, not as running and reachable", { timeout: 120_000 }, async () => {
  const agent = await env.agent({ maxLeaves: 1 });
  try {
    const page = await env.tab({ identity: "scale-killed", path: "/scale", admin: true });
    await waitFor(page, "Add Leaf Node enabled", (s) => !document.querySelector(s)?.disabled, sel("leaf-add"));
    await page.getByTestId("leaf-add").click();
    const name = (
      await eventually(
        "the agent lists a connected leaf",
        async () => JSON.parse((await env.nc.request("via.leaf.list", "{}")).string()).leaves.find((l) => l.connected),
        { timeout: 30_000, every: 100 },
      )
    ).name;
    await waitFor(page, "Send across enabled", (s) => document.querySelector(s)?.disabled === false, sel(`leaf-try-${name}`));
    assert.equal(await page.getByTestId("leaf-stale").count(), 0);
    // Killed, it writes nothing more: the bucket still says "running". The page says whose word that is.
    await agent.kill();
    await waitFor(page, "the row marked as last known", (s) => !!document.querySelector(s), sel("leaf-stale"), { timeout: 20_000 });
    assert.equal(await page.getByTestId(`leaf-try-${name}`).isDisabled(), true, "Send across disabled");
  } finally {
    await agent.stop();
  }
});
