// /playground's data cards against outside clients. The durable consumer: orders nats-py publishes
// while the tab is offline all arrive once it is back, in order, and the pending count goes N → 0;
// after a reload the durable continues after its ack floor (only new orders arrive) and the tab is
// still online (offline survives a reload too). The feature flag: `site_maintenance` = true put by
// nats-py shows the banner in two tabs at once, false hides it, a value that is not a flag is
// shown as text, the admin switch writes it, and the banner keeps watching across a server
// restart. MQTT ingress: a paho-mqtt publish to `device/temp` shows as the latest reading with its
// exact text; the in-browser sensor (MQTT over WebSocket) reaches NATS and the chart, comes back
// by itself after a server restart, and stops with a DISCONNECT.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { test } from "node:test";

import { consoleTail, eventually, pause, rand, sel, setHidden, textOf, useEnv, waitFor, waitStatus, waitText } from "./lib.mjs";

const env = useEnv();
const T = { timeout: 120_000 };

const STREAM = "playgrnd_stream";
const CONSUMER = "orders-processor";
const BUCKET = "configs_playgrnd";
const KEY = "site_maintenance";

/** Waits until one of the card's steps ([data-testid=testid]) matches `re`. */
async function waitStep(page, testid, re, { timeout = 20_000 } = {}) {
  try {
    await waitFor(
      page,
      `a step [${testid}] matching ${re}`,
      ([s, source, flags]) => [...document.querySelectorAll(s)].some((li) => new RegExp(source, flags).test(li.textContent)),
      [sel(testid), re.source, re.flags],
      { timeout },
    );
  } catch (e) {
    const steps = await page.evaluate((s) => [...document.querySelectorAll(s)].map((li) => li.textContent), sel(testid));
    throw new Error(`${e.message}; the steps: ${JSON.stringify(steps, null, 1)}`);
  }
}

/** The orders the tab shows as received: [{ seq, text }], in the order shown. */
const received = (page) =>
  page.evaluate(
    (s) =>
      [...document.querySelectorAll(s)].map((li) => ({
        seq: Number(li.dataset.seq),
        text: li.querySelector("code").textContent,
      })),
    sel("pg-durable-received"),
  );

/** Turns the tab's consumer online or offline and waits until it is (the pull in flight ended). */
async function setOnline(page, on) {
  const toggle = page.getByTestId("pg-durable-online");
  if ((await toggle.isChecked()) !== on) await toggle.click();
  await waitText(page, "pg-durable-state", on ? /^online/ : /^offline/);
}

/** Publishes orders `ids` with nats-py (JetStream, acknowledged); resolves with their sequences. */
async function publishOrders(ids) {
  const out = await env.py(
    `js = nc.jetstream()\n` +
      `for i in ${JSON.stringify(ids)}:\n` +
      `    ack = await js.publish("orders.new", json.dumps({"id": i, "item": "from nats-py"}).encode())\n` +
      `    print(ack.seq)`,
  );
  return out.trim().split("\n").map(Number);
}

/** Waits until the tab shows the orders `ids` as received, and returns what it shows. */
async function waitReceived(page, ids, { timeout = 20_000 } = {}) {
  let seen = [];
  await eventually(
    `${page.label} receives ${ids.join(", ")}`,
    async () => {
      seen = await received(page);
      return ids.every((id) => seen.some((r) => r.text.includes(`"${id}"`)));
    },
    { timeout, every: 100 },
  ).catch((e) => {
    throw new Error(`${e.message}; shown: ${JSON.stringify(seen)}\n    ${consoleTail(page)}`);
  });
  return seen;
}

test("durable: orders published while offline all arrive once online, in order; a reload continues after the ack floor", T, async () => {
  const page = await env.tab({ identity: "durable", path: "/playground" });
  // Set up (stream and durable exist), online by default: whatever earlier runs left is drained.
  await waitText(page, "pg-durable-state", /^online/);
  await waitText(page, "pg-durable-pending", "0");
  await setOnline(page, false);
  assert.equal(await textOf(page, "pg-durable-state"), "offline: orders wait on the server");

  const run = rand();
  const first = [1, 2, 3, 4, 5].map((n) => `py-${run}-${n}`);
  const seqs = await publishOrders(first);
  await waitText(page, "pg-durable-pending", "5");
  await pause(1500);
  assert.equal((await received(page)).filter((r) => r.text.includes(run)).length, 0, "nothing is pulled while offline");
  assert.equal(await textOf(page, "pg-durable-pending"), "5");

  const back = Date.now();
  await setOnline(page, true);
  const got = (await waitReceived(page, first)).filter((r) => r.text.includes(run));
  const tookMs = Date.now() - back;
  assert.deepEqual(
    got.map((r) => r.seq),
    seqs,
    "each order once, in stream order",
  );
  assert.deepEqual(
    got.map((r) => JSON.parse(r.text).id),
    first,
  );
  await waitText(page, "pg-durable-pending", "0");
  await waitText(page, "pg-durable-ack-floor", String(seqs.at(-1)));
  const info = await env.jsm.consumers.info(STREAM, CONSUMER);
  assert.equal(info.ack_floor.stream_seq, seqs.at(-1), "the server's ack floor is the last order");
  assert.equal(info.num_ack_pending, 0);
  console.log(`# durable: 5 orders waiting offline reached the tab ${tookMs} ms after going online`);

  // A reload: still online (sessionStorage), the list starts empty, the durable continues.
  await page.reload();
  await waitStatus(page, /^Live$/);
  await waitText(page, "pg-durable-state", /^online/);
  assert.equal(await page.getByTestId("pg-durable-online").isChecked(), true, "online survives a reload");
  await waitText(page, "pg-durable-ack-floor", String(seqs.at(-1)));
  const more = [6, 7, 8].map((n) => `py-${run}-${n}`);
  const moreSeqs = await publishOrders(more);
  await waitReceived(page, more);
  await waitText(page, "pg-durable-pending", "0");
  await pause(500);
  const after = await received(page);
  assert.deepEqual(
    after.map((r) => r.seq),
    moreSeqs,
    "after the reload only the new orders arrive, in order",
  );

  // A burst taken online (one pull per order): the figures are read at most every 100 ms (and
  // every second), not once per order.
  const infos = [];
  const watching = env.nc.subscribe(`$JS.API.CONSUMER.INFO.${STREAM}.${CONSUMER}`, { callback: () => infos.push(Date.now()) });
  await env.nc.flush();
  const burst = [...Array(100).keys()].map((n) => `py-${run}-burst-${n}`);
  const burstStarted = Date.now();
  await publishOrders(burst);
  await waitReceived(page, burst.slice(-10));
  await waitText(page, "pg-durable-pending", "0");
  const took = Date.now() - burstStarted;
  watching.unsubscribe();
  const bound = Math.ceil(took / 100) + Math.ceil(took / 1000) + 5;
  console.log(`# durable: ${burst.length} orders in ${took} ms, ${infos.length} CONSUMER.INFO (at most ${bound})`);
  assert.ok(infos.length <= bound, `${infos.length} CONSUMER.INFO for ${burst.length} orders in ${took} ms (at most ${bound})`);

  // Offline survives a reload as well.
  await setOnline(page, false);
  await page.reload();
  await waitStatus(page, /^Live$/);
  await waitText(page, "pg-durable-state", /^offline/);
  assert.equal(await page.getByTestId("pg-durable-online").isChecked(), false, "offline survives a reload");
  await setOnline(page, true);
});

test("flag: site_maintenance true shows the banner in two tabs at once, false hides it, anything else is text", T, async () => {
  const [a, b] = [
    await env.tab({ identity: "flag-a", path: "/playground" }),
    await env.tab({ identity: "flag-b", path: "/playground" }),
  ];
  // The page creates the bucket when it opens.
  for (const page of [a, b]) await waitText(page, "pg-flag-value", /^(true|false|\(not set\)|'.*': not a flag)$/);
  const put = (value) =>
    env.py(`kv = await nc.jetstream().key_value(${JSON.stringify(BUCKET)})\nprint(await kv.put(${JSON.stringify(KEY)}, ${JSON.stringify(value)}.encode()))`);
  const banner = (page) => page.evaluate((s) => !!document.querySelector(s), sel("pg-flag-banner"));
  const bannerIs = (page, shown) =>
    waitFor(
      page,
      shown ? "the maintenance banner is shown" : "the maintenance banner is gone",
      ([s, shown]) => !!document.querySelector(s) === shown,
      [sel("pg-flag-banner"), shown],
      { timeout: 10_000 },
    );

  await put("false");
  await Promise.all([a, b].map((p) => bannerIs(p, false)));

  await put("true");
  let at = Date.now();
  await Promise.all([a, b].map((p) => bannerIs(p, true)));
  console.log(`# flag: the banner showed in both tabs ${Date.now() - at} ms after nats-py's put was acknowledged`);
  for (const page of [a, b]) {
    assert.equal(await page.getByTestId("pg-flag-banner").getAttribute("role"), "status");
    assert.equal(await textOf(page, "pg-flag-value"), "true");
    assert.equal(await page.getByTestId("pg-flag-toggle").isChecked(), true);
  }

  await put("false");
  await Promise.all([a, b].map((p) => bannerIs(p, false)));

  // Not a flag: shown as text, no banner, nothing breaks.
  await put("<b>maybe</b>");
  await waitText(a, "pg-flag-value", "'<b>maybe</b>': not a flag");
  await waitText(b, "pg-flag-invalid", `${KEY} = '<b>maybe</b>': not a flag (true or false); no banner.`);
  assert.equal(await banner(a), false);
  assert.equal(await a.evaluate((s) => document.querySelector(s).children.length, sel("pg-flag-value")), 0, "the value is text");

  // The admin switch writes it; the other tab follows.
  await put("false");
  await waitText(a, "pg-flag-value", "false");
  at = Date.now();
  await a.getByTestId("pg-flag-toggle").click();
  await bannerIs(b, true);
  console.log(`# flag: the banner showed in the other tab ${Date.now() - at} ms after the switch`);
  const stored = await env.py(`kv = await nc.jetstream().key_value(${JSON.stringify(BUCKET)})\nprint((await kv.get(${JSON.stringify(KEY)})).value.decode())`);
  assert.equal(stored.trim(), "true");
  await waitStep(a, "pg-flag-step", /the watch delivered revision \d+ \(true\)/);
  await a.getByTestId("pg-flag-toggle").click();
  await Promise.all([a, b].map((p) => bannerIs(p, false)));

  // The banner keeps watching across a server restart.
  await env.control("stop");
  await env.control("start");
  await Promise.all([a, b].map((p) => waitStatus(p, /^Live$/, { timeout: 30_000 })));
  await eventually("nats-py puts true after the restart", () => put("true").then(() => true), { timeout: 20_000, every: 500 });
  at = Date.now();
  await Promise.all([a, b].map((p) => bannerIs(p, true)));
  console.log(`# flag: after a server restart the banner showed ${Date.now() - at} ms after the put was acknowledged`);
  await put("false");
  await Promise.all([a, b].map((p) => bannerIs(p, false)));
});

/** Runs `code` in python3 with paho-mqtt, `client` connected to the test server's MQTT port. */
function paho(port, code) {
  const body = code
    .trim()
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");
  const script =
    `import json, sys, time\nimport paho.mqtt.client as mqtt\n` +
    `client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-paho-${rand()}")\n` +
    `client.connect("127.0.0.1", ${port})\nclient.loop_start()\ntry:\n${body}\nfinally:\n` +
    `    client.disconnect()\n    client.loop_stop()\n`;
  return new Promise((resolve, reject) => {
    const child = spawn("python3", ["-c", script], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`paho-mqtt peer failed (${code}):\n${err}`));
    });
  });
}

const mqttPublish = (port, payload) =>
  paho(port, `info = client.publish("device/temp", ${JSON.stringify(payload)}, qos=1)\ninfo.wait_for_publish(5)\nassert info.is_published()`);

/** The number of points the chart draws. */
const chartPoints = (page) =>
  page.evaluate((s) => {
    const points = document.querySelector(`${s} polyline`)?.getAttribute("points") ?? "";
    return points.trim() ? points.trim().split(/\s+/).length : 0;
  }, sel("pg-mqtt-chart"));

test("mqtt: a paho-mqtt publish shows with its exact text; the in-browser sensor reaches NATS and the chart", T, async (t) => {
  const ports = JSON.parse(await env.control("ports"));
  assert.ok(
    ports.mqtt,
    `the test server has no MQTT listener (control /ports: ${JSON.stringify(ports)}): scripts/nats_test_control.py must configure one`,
  );
  const page = await env.tab({ identity: "mqtt", path: "/playground" });
  await waitStep(page, "pg-mqtt-step", /SUB device\.temp/);
  // The page loaded directly (its card made before the server said which it is): servers that
  // crash on MQTT over WebSocket without an mqtt block still get the warning.
  const [major, minor] = env.nc.info.version.split(".").map(Number);
  if (major < 2 || (major === 2 && minor < 10)) {
    await waitText(page, "pg-mqtt-old-server", new RegExp(`nats-server ${env.nc.info.version.replaceAll(".", "\\.")}`));
  } else {
    assert.equal(await textOf(page, "pg-mqtt-old-server"), null, "no warning for a current server");
  }

  // The subscription is made as the page mounts: publish until the reading shows.
  await eventually(
    "the paho-mqtt reading 21.37 shows",
    async () => {
      await mqttPublish(ports.mqtt, JSON.stringify({ temp: 21.37 }));
      return (await textOf(page, "pg-mqtt-reading")) === "21.37";
    },
    { timeout: 20_000, every: 300 },
  );
  await mqttPublish(ports.mqtt, '{"temperature": 19.06}');
  const at = Date.now();
  await waitText(page, "pg-mqtt-reading", "19.06");
  console.log(`# mqtt: a paho-mqtt reading showed ${Date.now() - at} ms after its QoS 1 publish was acknowledged`);
  assert.ok((await chartPoints(page)) >= 2, "the readings are on the chart");

  // Not a reading: shown as text, ignored.
  await mqttPublish(ports.mqtt, "<i>warm</i>");
  await waitText(page, "pg-mqtt-unreadable", "Last payload that was not a reading (ignored): <i>warm</i>");
  assert.equal(await textOf(page, "pg-mqtt-reading"), "19.06");

  // The in-browser sensor: MQTT over WebSocket to the server's /mqtt.
  const version = env.nc.info.version;
  const seen = [];
  const sub = env.nc.subscribe("device.temp", {
    callback: (_, m) => seen.push({ text: m.string(), mqtt: m.headers?.has("Nmqtt-Pub") ?? false }),
  });
  try {
    const before = await chartPoints(page);
    await page.getByTestId("pg-mqtt-sensor").click();
    const started = Date.now();
    const outcome = await Promise.race([
      waitText(page, "pg-mqtt-sensor-state", /^In-browser sensor via-tab-[0-9a-f]{6} on: \d+ readings/).then(() => "on"),
      waitText(page, "pg-mqtt-error", /./).then(() => "error"),
    ]);
    if (outcome === "error") {
      // Both server versions serve MQTT over WebSocket with the test server's mqtt listener: a
      // refusal is a regression, not a reason to skip.
      const error = await textOf(page, "pg-mqtt-error");
      assert.fail(`the in-browser sensor failed on nats-server ${version}: ${error}`);
    }
    await waitStep(page, "pg-mqtt-step", /CONNACK: accepted/);
    await waitStep(page, "pg-mqtt-step", /this tab's reading came back over NATS \d+ ms after its MQTT PUBLISH \(from MQTT device\/temp\)/);
    await eventually("3 of the sensor's readings reach NATS, through MQTT", () =>
      seen.filter((m) => m.mqtt && /^\{"temp": \d+\.\d\d, "sensor": "[^"]+"\}$/.test(m.text)).length >= 3,
    );
    await waitFor(
      page,
      "the chart draws the sensor's readings",
      ([s, n]) => (document.querySelector(`${s} polyline`)?.getAttribute("points") ?? "").trim().split(/\s+/).length >= n,
      [sel("pg-mqtt-chart"), before + 3],
    );
    const reading = await textOf(page, "pg-mqtt-reading");
    assert.match(reading, /^\d+\.\d{1,2}$/);
    const value = Number(reading);
    assert.ok(value > 18 && value < 25, `a plausible room temperature: ${reading}`);
    console.log(`# mqtt: in-browser sensor on nats-server ${version}: 3 readings through MQTT over WebSocket in ${Date.now() - started} ms`);

    // Hidden, the tab's timers run less often (Chromium: once a second, then once a minute): the
    // card says so rather than "once a second".
    await setHidden(page, true);
    await waitText(page, "pg-mqtt-sensor-state", /readings published to device\/temp; this tab is hidden, and the browser runs its timers less often: fewer than one a second until it is shown again\.$/);
    await setHidden(page, false);
    await waitText(page, "pg-mqtt-sensor-state", /readings published to device\/temp\.$/);

    // A server restart: the sensor says it is reconnecting and why, comes back by itself with the
    // same client id, and its readings reach NATS and the page again (before: it stopped, with
    // an error, at the first lost connection).
    const id = (await textOf(page, "pg-mqtt-sensor-state")).match(/via-tab-[0-9a-f]{6}/)[0];
    await env.control("stop");
    await waitText(page, "pg-mqtt-sensor-state", new RegExp(`^In-browser sensor ${id} reconnecting \\((the MQTT connection closed|could not open MQTT over WebSocket).+\\); \\d+ readings sent so far`));
    assert.equal(await textOf(page, "pg-mqtt-error"), null, "a lost connection is not the sensor's end");
    await waitStep(page, "pg-mqtt-step", /reconnecting in \d\.\d s \(attempt 1\)/);
    await env.control("start");
    const restarted = Date.now();
    await waitText(page, "pg-mqtt-sensor-state", new RegExp(`^In-browser sensor ${id} on: \\d+ readings`), { timeout: 30_000 });
    const back = Date.now() - restarted;
    const mqttSeen = () => seen.filter((m) => m.mqtt).length;
    const before2 = mqttSeen();
    await eventually("2 more of the sensor's readings reach NATS after the restart", () => mqttSeen() >= before2 + 2, { timeout: 20_000 });
    await waitFor(
      page,
      "a second reading of this tab comes back over NATS, after the restart",
      ([s]) =>
        [...document.querySelectorAll(s)].filter((li) => /this tab's reading came back over NATS/.test(li.textContent)).length >= 2,
      [sel("pg-mqtt-step")],
    );
    console.log(`# mqtt: the in-browser sensor was publishing again ${back} ms after the server restarted`);

    await page.getByTestId("pg-mqtt-sensor").click();
    await waitText(page, "pg-mqtt-sensor-state", "In-browser sensor off.");
    await waitStep(page, "pg-mqtt-step", /DISCONNECT after \d+ readings/);
    const count = seen.length;
    await pause(2500);
    assert.equal(seen.length, count, "no reading after Stop");
    assert.equal(await textOf(page, "pg-mqtt-error"), null);
  } finally {
    sub.unsubscribe();
  }
});

// A click while the server is down gets an answer within seconds, and the button works again
// (before: "Publishing…" until the server came back, the publish then made long after the click).
// device.temp is a shared subject: a publisher without pause (any client may be one) made the card
// redraw its whole chart per reading.
test("mqtt: readings published without pause are drawn at most once a frame, ending at the last", T, async (t) => {
  const page = await env.tab({ identity: "mqtt-flood", path: "/playground" });
  await waitStep(page, "pg-mqtt-step", /SUB device\.temp/);
  await eventually(
    "a first reading shows",
    async () => {
      env.nc.publish("device.temp", JSON.stringify({ temp: 18.5 }));
      await env.nc.flush();
      return (await textOf(page, "pg-mqtt-reading")) === "18.5";
    },
    { timeout: 20_000, every: 300 },
  );
  await page.evaluate((s) => {
    window.chartRedraws = 0;
    new MutationObserver(() => window.chartRedraws++).observe(document.querySelector(s), { subtree: true, childList: true, attributes: true, characterData: true });
  }, sel("pg-mqtt-chart"));
  const readings = 5000;
  const started = Date.now();
  for (let i = 0; i < readings; i++) {
    env.nc.publish("device.temp", `{"temp": ${(19 + (i % 500) / 100).toFixed(2)}}`);
    if (i % 500 === 499) await env.nc.flush();
  }
  env.nc.publish("device.temp", '{"temp": 30.01}');
  await env.nc.flush();
  await waitText(page, "pg-mqtt-reading", "30.01", { timeout: 30_000 });
  const seconds = (Date.now() - started) / 1000;
  const redraws = await page.evaluate(() => window.chartRedraws);
  t.diagnostic(`${redraws} chart redraws for ${readings + 1} readings in ${seconds.toFixed(1)} s`);
  // 60 a second at most, with room for timers that fire late; one per reading before.
  assert.ok(redraws <= 80 * seconds + 10, `${redraws} chart redraws for ${readings + 1} readings in ${seconds.toFixed(1)} s`);
});

test("flag: the switch flipped while the server is away says so at once, and is stored once it is back", T, async (t) => {
  t.after(() => env.control("start"));
  const page = await env.tab({ identity: "flag-away", path: "/playground" });
  await waitText(page, "pg-flag-value", /^(true|false|\(not set\)|'.*': not a flag)$/);
  const put = (value) =>
    env.py(`kv = await nc.jetstream().key_value(${JSON.stringify(BUCKET)})\nprint(await kv.put(${JSON.stringify(KEY)}, ${JSON.stringify(value)}.encode()))`);
  await put("false");
  await waitText(page, "pg-flag-value", "false");

  await env.control("stop");
  await waitStatus(page, /^(Reconnecting|Offline)/);
  const flipped = Date.now();
  await page.getByTestId("pg-flag-toggle").click();
  await waitStep(page, "pg-flag-step", /the server is not reachable: the put is sent again once it is back, for 30 s at most/, { timeout: 3_000 });
  console.log(`# flag: said the server is away ${Date.now() - flipped} ms after the switch`);
  await env.control("start");
  await waitStep(page, "pg-flag-step", /stored as revision \d+/, { timeout: 30_000 });
  await waitText(page, "pg-flag-value", "true");
  await eventually("nats-py puts false after the restart", () => put("false").then(() => true), { timeout: 20_000, every: 500 });
  await waitText(page, "pg-flag-value", "false");
});

test("playground: with the server down, Publish 30 and Publish 3 orders say so instead of waiting", T, async (t) => {
  t.after(() => env.control("start"));
  await env.control("stop");
  // Loaded while the server is away: the durable card could not set up its stream yet.
  const page = await env.tab({ identity: "pg-down", path: "/playground", live: false });
  const started = Date.now();
  await page.getByTestId("pg-queue-run").click();
  await page.getByTestId("pg-durable-publish").click();
  await page.getByTestId("pg-rpc-run").click();
  // Calls wait a while for the connection: the card says so at once, then that none was sent.
  await waitStep(page, "pg-rpc-step", /not connected: waiting up to 2 s for the connection/, { timeout: 1_000 });
  await waitText(page, "pg-rpc-error", /^not connected to the server: "math\.sum" was not sent; retry once connected/, { timeout: 10_000 });
  await waitStep(page, "pg-queue-step", /did not answer within 5 s: is it down\? \(nothing was published\)/, { timeout: 15_000 });
  await waitStep(page, "pg-durable-step", /nothing published: playgrnd_stream is not ready \(not connected\)/, { timeout: 15_000 });
  console.log(`# playground: both clicks answered ${Date.now() - started} ms after them, the server down`);
  assert.equal(await page.getByTestId("pg-queue-run").isEnabled(), true, "Publish 30 works again");
  assert.equal(await page.getByTestId("pg-durable-publish").isEnabled(), true, "Publish 3 orders works again");
  await env.control("start");
  await waitStatus(page, /^Live$/);
});
