// /playground, the messaging experiments: hello world on a second connection (its own message told
// apart from other clients' on the same subject); a queue group of
// three workers per tab splitting 30 messages with none twice (two tabs: six workers; one stopped:
// the others take all); the `math.sum` service hosted in the tab answering nats-py (sums, an error
// reply to bad JSON), "no responders" at once when nobody serves it, and the native via-math.
// Also: a server restart that loses the durable's memory stream, and the orders waiting in it, is
// said on the card; the page at a phone's width; a sensor's error code (99999) on device.temp is
// not charted, and the chart's value labels are never cut; on nats-server 2.9 the MQTT card tells
// whether the server is known to have an mqtt block.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";

import { REPO, consoleTail, eventually, hiddenWhenNarrow, pause, rand, screenshot, sel, textOf, useEnv, waitCount, waitFor, waitStatus, waitText } from "./lib.mjs";

const env = useEnv();
const T = { timeout: 120_000 };

/** The texts of the steps [data-testid=testid] of a card, and how many of them failed. */
const steps = (page, testid) =>
  page.evaluate(
    (s) =>
      [...document.querySelectorAll(s)].map((li) => ({
        text: li.textContent.trim(),
        failed: li.classList.contains("failed"),
        at: li.querySelector(".pg-step-at")?.textContent ?? "",
      })),
    sel(testid),
  );

/** The queue card's bars of this page: worker → count. */
const bars = (page) =>
  page.evaluate(() =>
    Object.fromEntries(
      [...document.querySelectorAll('[data-testid^="pg-queue-bar-"]')].map((b) => [
        b.dataset.testid.slice("pg-queue-bar-".length),
        Number(b.textContent.trim()),
      ]),
    ),
  );

test("hello: a second connection connects, subscribes, publishes, receives its message and closes", T, async () => {
  const page = await env.tab({ path: "/playground" });
  // The card's own socket, the one made after the page's.
  const socketClosed = new Promise((resolve) => page.once("websocket", (ws) => ws.once("close", resolve)));
  await page.getByTestId("pg-hello-run").click();
  await waitCount(page, "pg-hello-step", "closed the connection", 1);
  // Closed cleanly: with a status code (without one, nats-server's answer is a close Chromium
  // calls broken). A call into the page after the close brings every console line before it.
  await socketClosed;
  await page.evaluate(() => 0);
  assert.deepEqual(page.brokenCloses, [], "the card's close");
  const seen = await steps(page, "pg-hello-step");
  assert.deepEqual(
    seen.filter((s) => s.failed),
    [],
    `no step failed: ${JSON.stringify(seen)}`,
  );
  assert.equal(seen.length, 6, JSON.stringify(seen));
  assert.match(seen[3].text, /PUB hello "Hello World!"/);
  assert.match(seen[4].text, /MSG hello: "Hello World!" — [\d.]+ ms after the PUB/);
  // Times only go forward.
  const ms = seen.map((s) => (s.at.endsWith(" s") ? parseFloat(s.at.slice(1)) * 1000 : parseFloat(s.at.slice(1))));
  assert.deepEqual([...ms].sort((a, b) => a - b), ms, `step times: ${seen.map((s) => s.at).join(", ")}`);
  await screenshot(page, "playground-hello");
});

test("hello: messages of other clients on `hello` are told apart from the card's own", T, async () => {
  const page = await env.tab({ path: "/playground" });
  // An outside client publishes the same greeting on `hello` while the card runs: 10 every 2 ms,
  // enough for some to come between the card's SUB and its own message, not so many that the
  // machine is busy with them. Its stream has gaps (the test's event loop is shared), so the card
  // runs until one of its runs had foreign messages come first: at most 5 runs.
  let flooding = true;
  let published = 0;
  const flood = (async () => {
    while (flooding) {
      for (let i = 0; i < 10; i++) env.nc.publish("hello", "Hello World!");
      published += 10;
      await Promise.all([env.nc.flush(), pause(2)]);
    }
  })();
  let seen = [];
  let runs = 0;
  try {
    await eventually("the outside client is publishing", () => published >= 200);
    while (runs < 5 && !seen.some((s) => /from another client/.test(s.text))) {
      runs += 1;
      await page.getByTestId("pg-hello-run").click();
      await waitCount(page, "pg-hello-step", "closed the connection", 1);
      seen = await steps(page, "pg-hello-step");
      assert.deepEqual(seen.filter((s) => s.failed), [], JSON.stringify(seen));
    }
  } finally {
    flooding = false;
    await flood;
  }
  const [, id] = seen[3].text.match(/PUB hello "Hello World!" \(12 bytes, header Via-Hello-Run: ([0-9a-f]{8})\)/) ?? [];
  assert.ok(id, `the PUB step names its run id: ${seen[3].text}`);
  assert.match(
    seen[4]?.text ?? "",
    new RegExp(`MSG hello: "Hello World!" from another client \\(no Via-Hello-Run: ${id}\\): not this card's, still waiting`),
    `in ${runs} runs the card never said a message was another client's: ${JSON.stringify(seen)}`,
  );
  const [, others] = seen[5].text.match(/MSG hello: "Hello World!" — [\d.]+ ms after the PUB \((\d+) from other clients came before it\)/) ?? [];
  assert.ok(Number(others) >= 1, seen[5].text);
  assert.equal(seen.length, 7, JSON.stringify(seen));
  console.log(`# hello: run ${runs} had ${others} messages of another client before its own`);
});

test("queue group: 30 messages split over the workers of two tabs, none twice; a stopped worker gets none", T, async () => {
  const a = await env.tab({ path: "/playground" });
  const b = await env.tab({ path: "/playground" });
  // Each tab's three workers show up as bars (their own, before any message).
  for (const page of [a, b]) {
    await waitFor(page, "three workers of this tab", () => document.querySelectorAll('[data-testid^="pg-queue-toggle-"]').length === 3);
  }
  // Tab b's subscriptions may still be on their way to the server: the first run counts 3 to 6
  // workers; the sum is 30 either way.
  await a.getByTestId("pg-queue-run").click();
  await waitCount(a, "pg-queue-step", "received by", 1);
  await waitText(a, "pg-queue-total", /^30 received by \d workers · 0 twice$/);
  let counts = await bars(a);
  let sum = Object.values(counts).reduce((x, y) => x + y, 0);
  assert.equal(sum, 30, JSON.stringify(counts));
  // Tab b counts the same 30 (every worker reports on logs.process.seen).
  await waitText(b, "pg-queue-total", /^30 received by \d workers · 0 twice$/);
  const seen = await steps(a, "pg-queue-step");
  assert.ok(seen.every((s) => !s.failed), JSON.stringify(seen));
  // With 6 workers and 30 messages, the queue group spreads them: more than one worker got some.
  assert.ok(Object.values(counts).filter((n) => n > 0).length > 1, JSON.stringify(counts));

  // Stop one of a's workers: the next 30 all go to the other five.
  const stopped = await a.evaluate(() => document.querySelector('[data-testid^="pg-queue-toggle-"]').dataset.testid.slice("pg-queue-toggle-".length));
  // Named by its worker: a screen reader lists the buttons out of their rows.
  assert.equal(await a.getByRole("button", { name: `Stop ${stopped}`, exact: true }).count(), 1);
  await a.getByTestId(`pg-queue-toggle-${stopped}`).click();
  await waitText(a, `pg-queue-toggle-${stopped}`, "Start");
  await a.getByTestId("pg-queue-run").click();
  await waitText(a, "pg-queue-total", /^30 received by \d workers · 0 twice$/);
  counts = await bars(a);
  sum = Object.values(counts).reduce((x, y) => x + y, 0);
  assert.equal(sum, 30, JSON.stringify(counts));
  assert.equal(counts[stopped], 0, `the stopped worker got ${counts[stopped]}: ${JSON.stringify(counts)}`);
  // b counts a's new run from its start too (it showed a running total, 60, beside a's 30).
  const nonZero = (c) => JSON.stringify(Object.entries(c).filter(([, n]) => n > 0).sort());
  await eventually("b's bars are a's second run", async () => nonZero(await bars(b)) === nonZero(counts));
  await waitText(b, "pg-queue-total", /^30 received by \d workers · 0 twice$/);
  // b's workers took part (30 messages over 5 workers: some reach b's three).
  const ofB = await b.evaluate(() => [...document.querySelectorAll('[data-testid^="pg-queue-toggle-"]')].map((t) => t.dataset.testid.slice("pg-queue-toggle-".length)));
  assert.ok(ofB.some((w) => counts[w] > 0), `b's workers ${ofB} got none: ${JSON.stringify(counts)}`);

  // An outside publisher's messages are shared the same way (nats-py, 30 plain publishes).
  await a.getByTestId(`pg-queue-toggle-${stopped}`).click();
  await waitText(a, `pg-queue-toggle-${stopped}`, "Stop");
  await env.py(`
for i in range(30):
    await nc.publish("logs.process", f"nats-py log {i}".encode())
await nc.flush()
`);
  await waitFor(
    a,
    "the 30 messages of nats-py counted (60 since the last run)",
    () => /^60 received by \d workers · 0 twice$/.test(document.querySelector('[data-testid="pg-queue-total"]').textContent.trim()),
  );
  await screenshot(a, "playground-queue");
});

test("hello and queue group: a publish the server refuses is said as such, not blamed on a timeout or on missing workers", T, async (t) => {
  t.after(() => fetch(`${env.server.control}/auth-server/stop`));
  // A server of its own, whose user may subscribe to anything but not publish the two subjects.
  const config = `authorization { users = [ { user: quiet, password: quiet, permissions: { publish: { deny: ["hello", "logs.process"] } } } ] }`;
  const res = await fetch(`${env.server.control}/auth-server?config=${encodeURIComponent(config)}`);
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  const page = await env.tab({ path: "/playground", servers: body.websocket, user: { user: "quiet", pass: "quiet" } });

  await page.getByTestId("pg-hello-run").click();
  await waitCount(page, "pg-hello-step", "closed the connection", 1);
  let seen = await steps(page, "pg-hello-step");
  const hello = seen.filter((s) => s.failed);
  assert.equal(hello.length, 1, JSON.stringify(seen));
  assert.match(hello[0].text, /PUB hello refused: .*may not publish to hello:/);
  // Said by the app's one announcer; the step lists are not live regions.
  await waitFor(page, "the announcer says the failure", () => /^Failed: -ERR: PUB hello refused/.test(document.querySelector('[data-testid="announcer"]').textContent.trim()));
  const live = await page.evaluate(() => [...document.querySelectorAll('[aria-live]:not([aria-live="off"])')].map((e) => e.dataset.testid ?? e.className));
  assert.deepEqual(live, ["announcer"]);

  await waitFor(page, "three workers of this tab", () => document.querySelectorAll('[data-testid^="pg-queue-toggle-"]').length === 3);
  await page.getByTestId("pg-queue-run").click();
  await waitCount(page, "pg-queue-step", "-ERR", 1);
  seen = await steps(page, "pg-queue-step");
  assert.ok(!seen.some((s) => /start a worker/.test(s.text)), JSON.stringify(seen));
  assert.match(seen.at(-1).text, /-ERR: .*may not publish to logs\.process:/);
  assert.ok(seen.at(-1).failed, JSON.stringify(seen));
});

test("request/reply: no responders at once; the tab's math.sum answers 100 calls and nats-py; bad JSON gets an error reply", T, async () => {
  const page = await env.tab({ path: "/playground" });
  // Nobody serves math.sum yet: "no responders", well before the 2 s timeout.
  await page.getByTestId("pg-rpc-run").click();
  await waitText(page, "pg-rpc-error", /^no responders: nobody serves math\.sum/);
  const failed = (await steps(page, "pg-rpc-step")).find((s) => s.failed);
  const after = Number(failed.text.match(/after ([\d.]+) ms/)[1]);
  assert.ok(after < 1000, `no responders came after ${after} ms`);

  // Host it here; 100 calls, every sum right.
  await page.getByTestId("pg-rpc-host").check();
  // The box is ticked by the click itself: the evidence is the service answering discovery.
  const pingAnswered = () => env.nc.request("$SRV.PING.math", "", { timeout: 500 }).then(
    () => true,
    () => false,
  );
  await eventually("the tab's service answers $SRV.PING.math", pingAnswered);
  // The "no responders" of the calls before (which says to host it here) went with the hosting.
  assert.equal(await page.getByTestId("pg-rpc-error").count(), 0, "no error left from before the hosting");
  await page.getByTestId("pg-rpc-run").click();
  await waitText(page, "pg-rpc-times", /^100 calls · p50 [\d.]+ ms · p99 [\d.]+ ms$/, { timeout: 30_000 });
  const results = await page.evaluate((s) => [...document.querySelectorAll(s)].map((e) => e.textContent), sel("pg-rpc-result"));
  assert.ok(results.length > 0);
  for (const r of results) {
    const [, x, y, sum] = r.match(/^(-?\d+) \+ (-?\d+) = (-?\d+) · [\d.]+ ms$/) ?? [];
    assert.equal(Number(x) + Number(y), Number(sum), r);
  }
  // At a phone's width each result stays on one line (two columns broke them mid-item).
  const size = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 800 });
  const broken = await page.evaluate(
    (s) =>
      [...document.querySelectorAll(s)]
        .filter((e) => e.getClientRects().length !== 1 || e.getBoundingClientRect().height > 1.8 * parseFloat(getComputedStyle(e).fontSize))
        .map((e) => e.textContent),
    sel("pg-rpc-result"),
  );
  assert.deepEqual(broken, [], "results broken across lines at 390 px");
  await page.setViewportSize(size);

  // nats-py: a sum from the tab's service, its $SRV.INFO, and an error reply to bad JSON.
  const out = JSON.parse(
    await env.py(`
r = await nc.request("math.sum", b'{"x": 19.5, "y": 22.5}', timeout=5)
bad = await nc.request("math.sum", b"{not json", timeout=5)
info = await nc.request("$SRV.INFO.math", b"", timeout=5)
print(json.dumps({"sum": json.loads(r.data), "bad": dict(bad.headers or {}), "info": json.loads(info.data)}))
`),
  );
  assert.deepEqual(out.sum, { sum: 42 });
  assert.equal(out.bad["Nats-Service-Error-Code"], "400");
  assert.match(out.bad["Nats-Service-Error"], /^bad request/);
  assert.equal(out.info.name, "math");
  assert.deepEqual(
    out.info.endpoints.map((e) => e.subject),
    ["math.sum"],
  );

  await page.getByTestId("pg-rpc-bad").click();
  await waitText(page, "pg-rpc-error", /^error reply 400: bad request/);

  // Off again: no responders again.
  await page.getByTestId("pg-rpc-host").uncheck();
  await eventually("the tab's service is gone", async () => !(await pingAnswered()));
  await page.getByTestId("pg-rpc-run").click();
  await waitText(page, "pg-rpc-error", /^no responders/);
  assert.equal(await textOf(page, "pg-rpc-times"), null, consoleTail(page));
  await screenshot(page, "playground-rpc");
});

test("request/reply: the native via-math answers the card; stopped, no responders again", T, async () => {
  const bin = path.join(REPO, "target", "debug", "via-math");
  assert.ok(existsSync(bin), "no target/debug/via-math: cargo build -p via-playground");
  const child = spawn(bin, ["--url", env.server.nats], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, ...env.credentials }, // it signs in as user math
  });
  const exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
  let err = "";
  try {
    // It says so once the server routes math.sum to it.
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`via-math did not start: ${err}`)), 20_000);
      child.stderr.on("data", (d) => {
        err += d;
        if (err.includes("serving math.sum")) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("exit", (code) => reject(new Error(`via-math exited (${code}): ${err}`)));
    });
    const page = await env.tab({ path: "/playground" });
    await page.getByTestId("pg-rpc-run").click();
    await waitText(page, "pg-rpc-times", /^100 calls · p50 [\d.]+ ms · p99 [\d.]+ ms$/, { timeout: 30_000 });
    assert.equal(await page.getByTestId("pg-rpc-host").isChecked(), false, "the tab hosts nothing");
    await page.getByTestId("pg-rpc-bad").click();
    await waitText(page, "pg-rpc-error", /^error reply 400: bad request/);

    child.kill("SIGTERM");
    assert.deepEqual(await exited, { code: 0, signal: null }, err);
    await page.getByTestId("pg-rpc-run").click();
    await waitText(page, "pg-rpc-error", /^no responders/);
  } finally {
    child.kill("SIGKILL");
    await exited;
  }
});

/** Waits until the durable card of `page` is set up and online or offline as asked. */
async function durableOnline(page, on) {
  await waitText(page, "pg-durable-state", /^(online|offline)/);
  const toggle = page.getByTestId("pg-durable-online");
  if ((await toggle.isChecked()) !== on) await toggle.click();
  await waitText(page, "pg-durable-state", on ? /^online/ : /^offline/);
}

test("durable: a server restart loses the memory stream and the orders waiting in it, and the card says so", T, async (t) => {
  t.after(() => env.control("start"));
  const a = await env.tab({ identity: "lost-a", path: "/playground" });
  const b = await env.tab({ identity: "lost-b", path: "/playground" });
  // Whatever earlier runs left is taken first (a is online), then both go offline.
  await durableOnline(a, true);
  await waitText(a, "pg-durable-pending", "0");
  for (const page of [a, b]) await durableOnline(page, false);

  await a.getByTestId("pg-durable-publish").click();
  await waitCount(a, "pg-durable-step", "stored as #", 3);
  // Both tabs read the 3 waiting (b its own way, every second).
  for (const page of [a, b]) await waitText(page, "pg-durable-pending", "3");

  await env.control("stop");
  await env.control("start");
  for (const page of [a, b]) await waitStatus(page, /^Live$/, { timeout: 30_000 });
  // Whichever tab set it up again, each says what it lost: its own setup, or a durable another
  // tab made anew.
  const said = "playgrnd_stream was gone (a memory stream does not outlive a server restart): the 3 orders that were waiting are lost; set up again.";
  for (const page of [a, b]) await waitText(page, "pg-durable-lost", said, { timeout: 30_000 });
  await waitText(a, "pg-durable-pending", "0");

  // Back online: nothing arrives (they are gone), and the card still says why.
  await durableOnline(a, true);
  await pause(1500);
  assert.equal(await a.getByTestId("pg-durable-received").count(), 0, "the lost orders do not come");
  assert.equal(await textOf(a, "pg-durable-lost"), said, "still said once back online");
  assert.equal(await textOf(a, "pg-durable-error"), null);

  // Set up again for good: new orders arrive, and the note goes with the next click.
  await a.getByTestId("pg-durable-publish").click();
  await waitFor(a, "3 new orders received", (s) => document.querySelectorAll(s).length === 3, sel("pg-durable-received"));
  assert.equal(await textOf(a, "pg-durable-lost"), null, "the note went with the next Publish");
  await waitText(a, "pg-durable-pending", "0");
  await durableOnline(b, true);
  // What the card promises is what happened.
  const text = await durableCardText(a);
  assert.match(text, /nothing is lost while the server runs/, "the card's promise holds as stated");
  assert.match(text, /a server restart loses it and the orders waiting in it/);
});

/** The whole text of the durable card. */
const durableCardText = (page) => page.evaluate(() => document.querySelector('section[aria-labelledby="pg-durable-title"]').textContent);

test("playground at a phone's width (390 px): nothing scrolls sideways, every button in sight", T, async () => {
  const page = await env.tab({ path: "/playground" });
  await waitFor(page, "three workers of this tab", () => document.querySelectorAll('[data-testid^="pg-queue-toggle-"]').length === 3);
  // Steps in the lists too, with their long lines.
  await page.getByTestId("pg-hello-run").click();
  await waitCount(page, "pg-hello-step", "closed the connection", 1);
  const hidden = await hiddenWhenNarrow(page, "main button, main [role=switch], main input[type=checkbox]");
  assert.deepEqual(hidden, [], `out of sight at 390 px: ${hidden.join(", ")}`);
});

/** Publishes `payloads` on device.temp as an outside NATS client. */
async function publishTemps(...payloads) {
  for (const p of payloads) env.nc.publish("device.temp", p);
  await env.nc.flush();
}

/** The chart's value labels that do not show whole: cut, or past the card's edge. */
const cutLabels = (page) =>
  page.evaluate(() =>
    [...document.querySelectorAll(".pg-mqtt-axis")]
      .filter((el) => {
        const card = el.closest("section").getBoundingClientRect();
        const box = el.getBoundingClientRect();
        return el.scrollWidth > el.clientWidth || box.left < card.left || box.right > card.right;
      })
      .map((el) => el.textContent),
  );

test("mqtt: a sensor's error code (99999) shows as sent but is not charted; the value labels are never cut", T, async () => {
  const page = await env.tab({ path: "/playground" });
  await waitCount(page, "pg-mqtt-step", "SUB device.temp", 1);
  await eventually(
    "a first reading shows",
    async () => {
      await publishTemps('{"temp": 21.5}');
      return (await textOf(page, "pg-mqtt-reading")) === "21.5";
    },
    { timeout: 20_000, every: 300 },
  );
  const points = () => page.evaluate((s) => document.querySelector(`${s} polyline`).getAttribute("points").trim().split(/\s+/).length, sel("pg-mqtt-chart"));
  await waitFor(page, "the reading is charted", (s) => document.querySelector(`${s} polyline`).getAttribute("points").trim() !== "", sel("pg-mqtt-chart"));
  const before = await points();

  // Wide but plausible: charted, and the labels (−313.3, 1062.5) show whole.
  await publishTemps('{"temp": -250.75}', '{"temp": 999.99}');
  await waitText(page, "pg-mqtt-reading", "999.99");
  assert.equal(await textOf(page, "pg-mqtt-implausible"), null);
  await waitFor(page, "both are charted", ([s, n]) => document.querySelector(`${s} polyline`).getAttribute("points").trim().split(/\s+/).length === n, [sel("pg-mqtt-chart"), before + 2]);
  const labels = await page.evaluate(() => [...document.querySelectorAll(".pg-mqtt-axis")].map((e) => e.textContent));
  assert.deepEqual(labels, ["1062.5", "-313.3"]);
  assert.deepEqual(await cutLabels(page), [], "labels cut at 1280 px");
  const hidden = await hiddenWhenNarrow(page, ".pg-mqtt-axis");
  assert.deepEqual(hidden, [], "labels out of sight at 390 px");

  // An error code: the latest reading as sent, marked, and not on the chart (whose labels stay).
  await publishTemps("99999");
  await waitText(page, "pg-mqtt-reading", "99999");
  await waitText(page, "pg-mqtt-implausible", "not a plausible temperature: not charted");
  await waitCount(page, "pg-mqtt-step", "99999 (from a NATS publisher): not a plausible temperature, not charted", 1);
  assert.equal(await points(), before + 2, "99999 is not on the chart");
  assert.deepEqual(await page.evaluate(() => [...document.querySelectorAll(".pg-mqtt-axis")].map((e) => e.textContent)), labels);
  await page.setViewportSize({ width: 390, height: 800 });
  assert.deepEqual(await cutLabels(page), [], "labels cut at 390 px");
});

/** Publishes `payload` to the MQTT topic device/temp with paho-mqtt (MQTT over TCP, QoS 1). */
function mqttPublish(port, payload) {
  const script =
    `import paho.mqtt.client as mqtt\n` +
    `client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-paho-${rand()}")\n` +
    `client.connect("127.0.0.1", ${port})\nclient.loop_start()\n` +
    `info = client.publish("device/temp", ${JSON.stringify(payload)}, qos=1)\ninfo.wait_for_publish(5)\n` +
    `assert info.is_published()\nclient.disconnect()\nclient.loop_stop()\n`;
  return new Promise((resolve, reject) => {
    const child = spawn("python3", ["-c", script], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d) => (err += d));
    const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
    child.once("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`paho-mqtt peer failed (${code}):\n${err}`));
    });
  });
}

test("mqtt: on nats-server 2.9 the card says whether the server is known to have an mqtt block", T, async (t) => {
  const version = env.nc.info.version;
  const [major, minor] = version.split(".").map(Number);
  const page = await env.tab({ path: "/playground" });
  await waitCount(page, "pg-mqtt-step", "SUB device.temp", 1);
  if (major > 2 || (major === 2 && minor >= 10)) {
    // 2.10 and later refuse MQTT over WebSocket without an mqtt block: nothing to say.
    assert.equal(await textOf(page, "pg-mqtt-old-server"), null, `no note on nats-server ${version}`);
    t.diagnostic(`nats-server ${version}: no note, nothing more to test`);
    return;
  }
  // Before any MQTT: the page cannot tell, and says so (and how to know).
  await waitText(page, "pg-mqtt-old-server", new RegExp(`^This server is nats-server ${version.replaceAll(".", "\\.")}: if its configuration has no mqtt block, the sensor makes it stop \\(a crash.*A page cannot tell`));
  // A plain NATS reading (no Nmqtt-Pub) tells nothing.
  await publishTemps('{"temp": 20.5}');
  await waitText(page, "pg-mqtt-reading", "20.5");
  assert.match(await textOf(page, "pg-mqtt-old-server"), /cannot tell/);
  // Nor does one through an MQTT listener: it may have been another server's (a leaf node's hub).
  const ports = JSON.parse(await env.control("ports"));
  await mqttPublish(ports.mqtt, '{"temp": 20.75}');
  await waitText(page, "pg-mqtt-reading", "20.75");
  assert.match(await textOf(page, "pg-mqtt-old-server"), /cannot tell/);

  // Another page knows nothing yet; its own sensor connecting tells it.
  const other = await env.tab({ path: "/playground" });
  await waitText(other, "pg-mqtt-old-server", /cannot tell/);
  await other.getByTestId("pg-mqtt-sensor").click();
  await waitText(other, "pg-mqtt-sensor-state", /^In-browser sensor via-tab-[0-9a-f]{6} on: \d+ readings/);
  await waitText(other, "pg-mqtt-old-server", /has an mqtt block/);
  await other.getByTestId("pg-mqtt-sensor").click();
  await waitText(other, "pg-mqtt-sensor-state", "In-browser sensor off.");
});
