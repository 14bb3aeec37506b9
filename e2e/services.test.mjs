// /nats against a real server, with outside clients: a nats.js `@nats-io/services` service shows
// with its endpoints and stats, a call from the page gets its reply (and the request count goes up
// on Refresh), an error reply, no responders and a wildcard subject are each shown as such, and a
// stopped service goes; the page creates the registry as via-agent does, an entry written by
// nats-py shows live, turns stale and goes once its heartbeat is older than the TTL, and a delete
// removes its row at once; discovery stops while the document is hidden.

import assert from "node:assert/strict";
import { test } from "node:test";

import { ServiceError, Svcm } from "@nats-io/services";

import { eventually, pause, rand, screenshot, sel, setHidden, useEnv, waitFor } from "./lib.mjs";

const env = useEnv();
const T = { timeout: 60_000 };
const REGISTRY = "services_registry";

const serviceRow = (page, name) => page.locator(`${sel("service-row")}[data-name="${name}"]`);
const endpointRow = (page, service, endpoint) =>
  serviceRow(page, service).locator(`${sel("service-endpoint")}[data-endpoint="${endpoint}"]`);
const registryRow = (page, key) => page.locator(`${sel("registry-row")}[data-key="${key}"]`);

/** Waits until the text of `locator` (trimmed) matches `re`. */
async function waitLocatorText(locator, re, what, timeout = 20_000) {
  await eventually(what, async () => re.test(((await locator.textContent({ timeout: 1000 })) ?? "").trim()), {
    timeout,
    every: 50,
  });
}

/** Calls `endpoint` of `service` from the page with `payload`, to `subject` if given. */
async function call(page, service, endpoint, payload, subject) {
  await page.getByRole("button", { name: `Call endpoint ${endpoint} of ${service}` }).click();
  const form = page.getByTestId("service-call-form");
  await waitLocatorText(form.locator("h2"), new RegExp(`${endpoint}$`), "the call form for the endpoint");
  if (subject !== undefined) await page.getByTestId("service-call-subject").fill(subject);
  await page.getByTestId("service-call-payload").fill(payload);
  await page.getByTestId("service-call-send").click();
}

test("services: a nats.js service shows with endpoints and stats, and answers calls from the page", T, async () => {
  const name = `math_${rand()}`;
  const service = await new Svcm(env.nc).add({
    name,
    version: "1.2.3",
    description: "adds <b>numbers</b>",
    metadata: { deps: "org/db" },
  });
  service.addEndpoint("sum", {
    subject: `${name}.sum`,
    metadata: { example: "[1, 2, 39]" },
    handler: (_err, msg) => {
      try {
        const nums = msg.json();
        msg.respond(JSON.stringify(nums.reduce((a, b) => a + b, 0)));
      } catch {
        msg.respondError(400, "send a JSON array of numbers");
      }
    },
  });
  service.addEndpoint("fail", {
    subject: `${name}.fail`,
    queue: "workers",
    // nats.js counts an error when the handler throws (nats.go on every error reply).
    handler: () => {
      throw new ServiceError(503, "down <i>for</i> maintenance");
    },
  });
  try {
    // Calling a service outside the app's subjects takes admin.
    const page = await env.tab({ identity: "ops", path: "/nats", admin: true });
    await serviceRow(page, name).waitFor({ timeout: 20_000 });
    const row = serviceRow(page, name);
    const text = await row.textContent();
    assert.match(text, /1\.2\.3/);
    assert.ok(text.includes("adds <b>numbers</b>"), `description shown as text: ${text}`);
    assert.ok(text.includes("deps=org/db"), `metadata shown: ${text}`);
    assert.equal(await row.getAttribute("data-id"), service.info().id);
    assert.equal(await row.getByTestId("service-endpoint").count(), 2);
    const sum = endpointRow(page, name, "sum");
    assert.match(await sum.textContent(), new RegExp(`${name}\\.sum`));
    assert.equal((await sum.getByTestId("endpoint-queue").textContent()).trim(), "q");
    assert.equal((await endpointRow(page, name, "fail").getByTestId("endpoint-queue").textContent()).trim(), "workers");
    assert.equal((await sum.getByTestId("endpoint-requests").textContent()).trim(), "0");

    // The form opens with the endpoint's example (its metadata `example`, as this project's
    // services give one); without one, empty.
    const payloadField = page.getByTestId("service-call-payload");
    await page.getByRole("button", { name: `Call endpoint fail of ${name}` }).click();
    await waitLocatorText(page.getByTestId("service-call-form").locator("h2"), /fail$/, "the call form for fail");
    assert.equal(await payloadField.inputValue(), "");
    await page.getByRole("button", { name: `Call endpoint sum of ${name}` }).click();
    await eventually("the example filled in", async () => (await payloadField.inputValue()) === "[1, 2, 39]");

    // A reply, with its latency.
    await call(page, name, "sum", "[1, 2, 39]");
    await waitLocatorText(page.getByTestId("service-call-verdict"), /^reply · 2 bytes$/, "the reply of sum");
    assert.equal((await page.getByTestId("service-call-payload-out").textContent()).trim(), "42");
    assert.match(await page.getByTestId("service-call-latency").textContent(), /\d+(\.\d+)? (ns|µs|ms)/);

    // Refresh asks at once (no 5 s wait): the call is counted.
    const clicked = Date.now();
    await page.getByTestId("services-refresh").click();
    await waitLocatorText(sum.getByTestId("endpoint-requests"), /^1$/, "sum counted one request", 4000);
    assert.ok(Date.now() - clicked < 4000);
    await screenshot(page, "services");

    // An error reply (Nats-Service-Error headers), shown as text, and counted.
    await call(page, name, "fail", "x");
    await waitLocatorText(
      page.getByTestId("service-call-verdict"),
      /^service error 503: down <i>for<\/i> maintenance$/,
      "the error reply of fail",
    );
    await page.getByTestId("services-refresh").click();
    const fail = endpointRow(page, name, "fail");
    await waitLocatorText(fail.getByTestId("endpoint-errors"), /^1$/, "fail counted one error");
    assert.match(await fail.getByTestId("endpoint-last-error").textContent(), /down <i>for<\/i> maintenance/);

    // Nobody on the subject: no responders, at once.
    await call(page, name, "sum", "[]", `nobody.${rand()}`);
    const started = Date.now();
    await waitLocatorText(page.getByTestId("service-call-verdict"), /^no responders/, "no responders");
    assert.ok(Date.now() - started < 3000, "no responders does not wait for the timeout");

    // A wildcard subject is refused before anything is sent, and the call before's outcome goes
    // (beside the refusal, it read as this one's).
    await page.getByTestId("service-call-subject").fill(`${name}.*`);
    await page.getByTestId("service-call-send").click();
    await waitLocatorText(page.getByTestId("service-call-invalid"), /replace the wildcards/, "the wildcards named");
    assert.equal(await page.getByTestId("service-call-result").count(), 0, "no outcome shown for a call not sent");
    await page.getByTestId("service-call-subject").fill("");
    await page.getByTestId("service-call-send").click();
    await waitLocatorText(page.getByTestId("service-call-invalid"), /type the subject/, "an empty subject");

    // Stopped: gone from the list at the next discovery.
    await service.stop();
    await page.getByTestId("services-refresh").click();
    await serviceRow(page, name).waitFor({ state: "detached", timeout: 8000 });
  } finally {
    await service.stop().catch(() => {});
  }
});

test("services: a call made while the server is away clears the reply before it, says it was not sent, and once back that it can be sent", { timeout: 90_000 }, async (t) => {
  const name = `echo_${rand()}`;
  const service = await new Svcm(env.nc).add({ name, version: "1.0.0" });
  service.addEndpoint("ping", { subject: `${name}.ping`, handler: (_err, msg) => msg.respond("pong") });
  t.after(() => service.stop().catch(() => {}));
  const page = await env.tab({ identity: "ops-away", path: "/nats", admin: true });
  await serviceRow(page, name).waitFor({ timeout: 20_000 });
  await call(page, name, "ping", "");
  await waitLocatorText(page.getByTestId("service-call-verdict"), /^reply · 4 bytes$/, "the reply");

  t.after(() => env.control("start"));
  await env.control("stop");
  await waitFor(page, "the tab sees the server gone", (s) => document.querySelector(s)?.textContent.trim() !== "Live", sel("status"));
  await page.getByTestId("service-call-payload").fill("again");
  await page.getByTestId("service-call-send").click();
  // The reply before is not shown beside "Waiting for the reply…" (it read as this call's).
  assert.equal(await page.getByTestId("service-call-result").count(), 0, "the reply before is still shown");
  await waitLocatorText(page.getByTestId("service-call-verdict"), /^not sent: not connected to the server/, "not sent", 15_000);
  await env.control("start");
  // It said "retry once connected" long after "Live".
  await waitLocatorText(
    page.getByTestId("service-call-verdict"),
    /^not sent: nothing was sent while the server was away; connected again, so it can be sent now$/,
    "connected again",
  );
});

test("services: discovery pauses while the document is hidden and resumes when it shows", T, async () => {
  const page = await env.tab({ identity: "ops", path: "/nats" });
  await waitFor(page, "a first discovery", (s) => /asked at/.test(document.querySelector(s)?.textContent ?? ""), sel("services-summary"));
  const asks = [];
  const sub = env.nc.subscribe("$SRV.INFO", { callback: () => asks.push(Date.now()) });
  await env.nc.flush();
  try {
    await setHidden(page, true);
    const hidden = Date.now();
    // Longer than the 5 s period: a discovery under way at the switch may still finish.
    await pause(5600);
    assert.equal(asks.filter((t) => t > hidden + 500).length, 0, `asked while hidden: ${asks.map((t) => t - hidden)}`);
    const shown = Date.now();
    await setHidden(page, false);
    await eventually("a discovery as soon as the document shows", () => asks.some((t) => t >= shown), { timeout: 1500 });
  } finally {
    sub.unsubscribe();
  }
});

test("services: the registry is created as via-agent creates it and followed live", T, async () => {
  const page = await env.tab({ identity: "ops", path: "/nats" });
  // The page made the bucket, with the agent's settings (so the agent's own create succeeds).
  const info = await eventually("the page created the registry", () => env.jsm.streams.info(`KV_${REGISTRY}`));
  assert.equal(info.config.max_age, 15_000_000_000);
  assert.equal(info.config.max_msgs_per_subject, 1);
  const [major, minor] = env.nc.info.version.split(".").map(Number);
  if (major > 2 || minor >= 11) {
    assert.equal(info.config.allow_msg_ttl, true);
    assert.equal(info.config.subject_delete_marker_ttl, 5_000_000_000);
  }
  await page.getByTestId("registry-empty").waitFor();

  const tag = rand();
  const written = Date.now();
  await env.py(`
import time
kv = await nc.jetstream().key_value("${REGISTRY}")
now = int(time.time() * 1000)
def entry(name, heartbeat_at, tags):
    return json.dumps({"name": name, "host": "box-${tag}", "pid": 4242, "registered_at": now - 60000,
                       "heartbeat_at": heartbeat_at, "tags": tags, "kind": "process"}).encode()
await kv.put("api-${tag}", entry("org/api", now, ["service:org/db", "<i>v2</i>"]))
# Its last heartbeat 12 s ago: stale now, past the 15 s TTL in 3 s.
await kv.put("old-${tag}", entry("org/old", now - 12000, []))
await kv.put("gone-${tag}", entry("org/gone", now, []))
await kv.put("junk-${tag}", b"<b>not json</b>")
`);
  const api = registryRow(page, `api-${tag}`);
  await api.waitFor({ timeout: 5000 });
  const text = await api.textContent();
  assert.match(text, /org\/api/);
  assert.match(text, new RegExp(`box-${tag}`));
  assert.match(text, /4242/);
  assert.ok(text.includes("<i>v2</i>"), `tags shown as text: ${text}`);
  assert.equal((await api.getByTestId("registry-health").textContent()).trim(), "healthy");
  await waitLocatorText(registryRow(page, `old-${tag}`).getByTestId("registry-health"), /^stale$/, "old is stale", 2000);
  assert.match(await page.getByTestId("registry-unreadable").textContent(), new RegExp(`junk-${tag}`));

  // Expired by its heartbeat (nothing tells a 2.9 server's watchers): gone within ~3 s.
  await registryRow(page, `old-${tag}`).waitFor({ state: "detached", timeout: 8000 });
  const expiredAfter = Date.now() - written;
  assert.ok(expiredAfter >= 2000 && expiredAfter < 7000, `gone ${expiredAfter} ms after the write`);

  // A delete removes the row at once.
  await env.py(`await (await nc.jetstream().key_value("${REGISTRY}")).delete("gone-${tag}")`);
  const deleted = Date.now();
  await registryRow(page, `gone-${tag}`).waitFor({ state: "detached", timeout: 2000 });
  assert.ok(Date.now() - deleted < 2000);
  assert.equal(await api.count(), 1, "the other entries stay");

  // The registry deleted (an admin, the /kv page) while no agent runs: the page makes it again
  // and says nothing is registered (it said "Opening the registry…" for good).
  await env.jsm.streams.delete(`KV_${REGISTRY}`);
  await eventually("the page made the registry again", () => env.jsm.streams.info(`KV_${REGISTRY}`), { timeout: 30_000 });
  await waitLocatorText(page.getByTestId("registry-empty"), /^Nothing is registered/, "the empty registry said so", 30_000);
});

// A registration's heartbeat is the registrant's clock; the tab's may be off by any amount (a
// laptop looking at a server). Compared with the server's clock, estimated from when the server
// stored the registry's values, a fresh registration is healthy and an 11 s old one stale in a tab
// a minute ahead and in one a minute behind; before, the first showed an empty registry
// (everything "expired") and the second every heartbeat as current (from the future).
test("services: the registry is read on the server's clock, whatever the tab's clock says", T, async () => {
  const tag = rand();
  const beat = () =>
    env.py(`
import time
kv = await nc.jetstream().key_value("${REGISTRY}")
now = int(time.time() * 1000)
def entry(name, heartbeat_at):
    return json.dumps({"name": name, "host": "box-${tag}", "pid": 4343, "registered_at": now,
                       "heartbeat_at": heartbeat_at, "tags": [], "kind": "process"}).encode()
await kv.put("skew-${tag}", entry("org/skew", now))
# A registrant whose own clock says its last heartbeat was 11 s ago: stale (more than two 5 s
# periods), not expired (15 s), whatever the tab's clock.
await kv.put("late-${tag}", entry("org/late", now - 11000))
`);
  const ahead = await env.tab({ identity: "ahead", path: "/nats", clockSkewMs: 60_000 });
  const behind = await env.tab({ identity: "behind", path: "/nats", clockSkewMs: -60_000 });
  assert.ok((await ahead.evaluate(() => Date.now())) - Date.now() > 55_000, "the tab's clock is ahead");
  // The pages make the registry when it is missing.
  await eventually("the registry exists", () => env.jsm.streams.info(`KV_${REGISTRY}`));
  // Heartbeats every 2 s (a registrant's are 5 s apart) while the tabs look.
  let beating = true;
  const beats = (async () => {
    while (beating) {
      await beat();
      await pause(2000);
    }
  })();
  try {
    for (const page of [ahead, behind]) {
      const row = registryRow(page, `skew-${tag}`);
      await row.waitFor({ timeout: 10_000 });
      await waitLocatorText(row.getByTestId("registry-health"), /^healthy$/, `healthy in the ${page.label} tab`, 10_000);
      // The last heartbeat is a few seconds ago, not a minute (or minus a minute).
      await waitLocatorText(row.locator("td").nth(4), /^[0-6]s ago$/, `a recent heartbeat in the ${page.label} tab`, 10_000);
      const late = registryRow(page, `late-${tag}`);
      await late.waitFor({ timeout: 10_000 });
      await waitLocatorText(late.getByTestId("registry-health"), /^stale$/, `stale in the ${page.label} tab`, 10_000);
      await waitLocatorText(late.locator("td").nth(4), /^1[1-4]s ago$/, `a heartbeat 11 s old in the ${page.label} tab`, 10_000);
    }
  } finally {
    beating = false;
    await beats;
  }
});

test("services: /services, where the menu's name leads, opens the services page at /nats, and Back leaves it", T, async () => {
  const page = await env.tab({ identity: "svc-alias", path: "/counter" });
  await page.goto(new URL("/services", page.url()).href);
  await waitFor(page, "the services page", () => location.pathname === "/nats" && document.querySelector("h1")?.textContent === "Services");
  // /nats took the place of the address typed: Back goes to the page before it, not to
  // /services, which would only lead to /nats again.
  await page.goBack();
  await waitFor(page, "the page before", () => location.pathname === "/counter" && !!document.querySelector('[data-testid="counter-value"]'));
});
