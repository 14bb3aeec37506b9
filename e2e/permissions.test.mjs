// Least privilege (nats-accounts.conf): a tab without credentials is the `browser` user. As
// browser, a stream delete, a request to a subject outside the app's and a $SYS request are
// refused by the server, and the page says what was refused and what to do ("sign in as admin
// in ⚙"); the connection stays Live and the page keeps working. Signed in as admin (the settings'
// user and password), the same delete and request work; $SYS requests are the sys user's.

import assert from "node:assert/strict";
import { test } from "node:test";

import { connect } from "@nats-io/transport-node";
import { Svcm } from "@nats-io/services";

import { eventually, openStreamDetail, rand, sel, signIn, textOf, useEnv, waitFor, waitStatus, waitText } from "./lib.mjs";

const env = useEnv();
const T = { timeout: 60_000 };

const openStream = (name, admin) =>
  openStreamDetail(env, name, { identity: admin ? "admin" : "visitor", admin });

/** Opens the call form of `endpoint` of `service` on /nats and sends `payload` to `subject`. */
async function call(page, service, endpoint, subject, payload = "{}") {
  await page.getByRole("button", { name: `Call endpoint ${endpoint} of ${service}` }).click();
  await waitFor(
    page,
    "the call form",
    ({ s, endpoint }) => document.querySelector(s)?.querySelector("h2")?.textContent.trim().endsWith(endpoint),
    { s: sel("service-call-form"), endpoint },
  );
  await page.getByTestId("service-call-subject").fill(subject);
  await page.getByTestId("service-call-payload").fill(payload);
  await page.getByTestId("service-call-send").click();
}

test("permissions: the test server has the accounts (else this file proves nothing)", T, async () => {
  assert.ok(env.admin.user, "the test server runs without accounts: start it with NATS_TEST_ACCOUNTS=1");
});

test("permissions: as browser a stream delete is refused with what to do, as admin it works", T, async () => {
  const name = `PERM_${rand()}`;
  await env.jsm.streams.add({ name, subjects: [`perm_${name}.>`], storage: "memory" });

  const visitor = await openStream(name, false);
  await visitor.getByTestId("stream-confirm-name").fill(name);
  await visitor.getByTestId("stream-delete").click();
  await waitText(
    visitor,
    "stream-danger-error",
    `the browser user may not delete streams (here ${name}): sign in as admin in ⚙`,
  );
  // Nothing else broke: still Live, the stream still there and still listed.
  await waitStatus(visitor, /^Live$/);
  assert.equal((await env.jsm.streams.info(name)).config.name, name);
  await waitFor(visitor, "the row still listed", ({ s, name }) => [...document.querySelectorAll(s)].some((r) => r.textContent.includes(name)), { s: sel("stream-row"), name });

  const admin = await openStream(name, true);
  await admin.getByTestId("stream-confirm-name").fill(name);
  await admin.getByTestId("stream-delete").click();
  await waitFor(admin, "the detail closed", (s) => !document.querySelector(s), sel("stream-detail"));
  await assert.rejects(env.jsm.streams.info(name), /stream not found/);
  // The visitor's tab, still on the stream, says it is gone, and no longer what its own try was
  // told: there is nothing left to delete (both were shown side by side).
  await waitText(visitor, "stream-detail-error", `stream ${name} no longer exists`, { timeout: 10_000 });
  assert.equal(await visitor.getByTestId("stream-danger-error").count(), 0, "the refusal of the delete is gone");
  assert.equal(await visitor.getByTestId("stream-delete").count(), 0, "no delete button for a stream that is gone");
});

// What the refusal says to do, done in the same tab: signing in replaces the connection, and the
// open stream and the name typed to confirm stay (before, the page was rebuilt empty).
test("permissions: signing in as admin in the tab after a refused delete keeps the stream open and what was typed", T, async () => {
  const name = `KEEP_${rand()}`;
  await env.jsm.streams.add({ name, subjects: [`keep_${name}.>`], storage: "memory" });
  const page = await openStream(name, false);
  await page.getByTestId("stream-confirm-name").fill(name);
  await page.getByTestId("stream-delete").click();
  await waitText(page, "stream-danger-error", /sign in as admin in ⚙/);

  await signIn(page, "admin", env.admin.pass);
  // Delete again until it is the new connection's (the first click may still reach the old one),
  // and until the delete's answer closed the detail (an outside client can see the stream gone
  // before the page has its answer: that is no reason to stop).
  await eventually(
    "the delete, as admin, with the name typed before",
    async () => {
      if ((await page.getByTestId("stream-detail").count()) === 0) return true;
      // Short waits: the detail may close, or Delete be busy, between two of these steps.
      assert.equal(await page.getByTestId("stream-confirm-name").inputValue({ timeout: 1000 }), name, "the name typed is kept");
      await page.getByTestId("stream-delete").click({ timeout: 1000 });
      return false;
    },
    { every: 500 },
  );
  await assert.rejects(env.jsm.streams.info(name), /stream not found/);
});

test("permissions: as browser a request outside the app's subjects and a $SYS request are refused, as admin the request is answered", T, async () => {
  const name = `perm_${rand()}`;
  const subject = `${name}.secret`;
  const service = await new Svcm(env.nc).add({ name, version: "1.0.0" });
  service.addEndpoint("secret", { subject, handler: (err, msg) => msg?.respond("classified") });
  try {
    const visitor = await env.tab({ identity: "visitor", path: "/nats" });
    await call(visitor, name, "secret", subject);
    await waitText(visitor, "service-call-verdict", new RegExp(`the browser user may not publish to ${name}\\.secret: sign in as admin in ⚙`));
    await call(visitor, name, "secret", "$SYS.REQ.SERVER.PING");
    await waitText(visitor, "service-call-verdict", /the browser user may not make system requests \(\$SYS\): the system user's statistics are on \/server \(sign in as sys there\)/);
    await waitStatus(visitor, /^Live$/);
    // The page keeps working after the refusals: a call it may make is answered.
    assert.match(await textOf(visitor, "status"), /^Live$/);

    const admin = await env.tab({ identity: "admin", path: "/nats", admin: true });
    await call(admin, name, "secret", subject);
    await waitText(admin, "service-call-verdict", /^reply · 10 bytes$/);
    assert.equal((await textOf(admin, "service-call-payload-out")).trim(), "classified");
  } finally {
    await service.stop();
  }

  // $SYS requests are the system account's: its user gets the servers' answers.
  const sys = await connect({ servers: env.server.nats, user: "sys", pass: env.credentials.NATS_SYS_PASSWORD });
  try {
    const reply = await sys.request("$SYS.REQ.SERVER.PING", "", { timeout: 2000 });
    assert.ok(JSON.parse(reply.string()).server.name, reply.string());
  } finally {
    await sys.close();
  }
});

test("permissions: signing in as admin in the tab after a refused call keeps the form and what was typed", T, async () => {
  const name = `permcall_${rand()}`;
  const subject = `${name}.echo`;
  const service = await new Svcm(env.nc).add({ name, version: "1.0.0" });
  service.addEndpoint("echo", { subject, handler: (err, msg) => msg?.respond(msg.data) });
  try {
    const page = await env.tab({ identity: "visitor", path: "/nats" });
    const payload = `{"typed": "${rand()}"}`;
    await call(page, name, "echo", subject, payload);
    await waitText(page, "service-call-verdict", /sign in as admin in ⚙/);

    await signIn(page, "admin", env.admin.pass);
    await page.getByTestId("service-call-form").waitFor();
    assert.equal(await page.getByTestId("service-call-subject").inputValue(), subject, "the subject is kept");
    assert.equal(await page.getByTestId("service-call-payload").inputValue(), payload, "the payload is kept");
    // Send again until it is the new connection's (the first click may still reach the old one).
    await eventually(
      "the call answered, as admin",
      async () => {
        await page.getByTestId("service-call-send").click();
        return /^reply · /.test(await textOf(page, "service-call-verdict").catch(() => ""));
      },
      { every: 500 },
    );
    assert.equal((await textOf(page, "service-call-payload-out")).trim(), payload);
  } finally {
    await service.stop();
  }
});

// The app listens to user.* on every page for its notifications. Signed in as a user who may not
// read them, it says so instead of going quiet (before: no word at all), and keeps working.
test("permissions: a user who may not read user.* is told that user notifications are off", T, async () => {
  const pass = env.credentials.NATS_PUBLISHER_PASSWORD;
  assert.ok(pass, "the test server's credentials name the publisher user");
  const page = await env.tab({ identity: "publisher", path: "/counter", user: { user: "publisher", pass } });
  await waitFor(
    page,
    "a notification that user notifications are off, naming the user and the subject",
    (s) =>
      [...document.querySelectorAll(s)].some(
        (t) => /User notifications are off/.test(t.textContent) && /publisher user may not/.test(t.textContent) && t.textContent.includes("user.*"),
      ),
    sel("toast"),
  );
  await waitStatus(page, "Live");
});

/** Counts the WebSocket frames `page` sends whose text includes `needle`, from now on. */
async function countSent(page, needle) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Network.enable");
  const counted = { n: 0 };
  cdp.on("Network.webSocketFrameSent", ({ response }) => {
    if (response.payloadData.includes(needle)) counted.n++;
  });
  return counted;
}

// A theme picked by a user who may not use the bucket (here `publisher`, who may not read or
// create via_config) is refused once, says so, and is given up: nothing more is sent for it.
// Before, the refusal came before any write was tried, so the pick was never cleared and the tab
// asked JetStream again at the speed of a round trip, for as long as it ran.
test("permissions: a theme the user may not store is refused once, said, and not tried again", T, async () => {
  const pass = env.credentials.NATS_PUBLISHER_PASSWORD;
  assert.ok(pass, "the test server's credentials name the publisher user");
  const page = await env.tab({ identity: "publisher-theme", path: "/themes", user: { user: "publisher", pass } });
  await waitStatus(page, "Live");
  const sent = await countSent(page, ""); // every frame
  await page.getByTestId("theme-option-dark").click();
  await waitText(page, "theme-error", /permission|not allowed|may not/i);
  const after = sent.n;
  await new Promise((r) => setTimeout(r, 3000)); // the window in which a retry loop would show
  assert.ok(sent.n - after < 10, `${sent.n - after} frames sent in 3 s after the refusal`);
  await waitStatus(page, "Live");
});

test("permissions: a user who may not read the app's buckets is told so in its terms, and its tries come 30 s apart", T, async () => {
  const pass = env.credentials.NATS_WORKER_PASSWORD;
  assert.ok(pass, "the test server's credentials name the worker user");
  await env.kv("via_config"); // there, as the app's other users would have made it
  const page = await env.tab({ identity: "worker-counter", path: "/counter", user: { user: "worker", pass } });
  await waitStatus(page, "Live");
  const creates = await countSent(page, "$JS.API.CONSUMER.CREATE.KV_via_config");
  // The bucket it may not watch, named as the user knows it: not the consumer's random name.
  await waitText(page, "counter-error", "the worker user may not read bucket via_config: sign in as admin in ⚙");
  // Nothing on screen says it is on its way or that nobody wrote the counter.
  assert.equal(await textOf(page, "counter-value"), "–");
  assert.notEqual(await textOf(page, "counter-last-by"), "nobody yet");
  const after = creates.n;
  await new Promise((r) => setTimeout(r, 8000)); // the window in which quicker tries would show
  // The page's watch and the theme's (the app's, on every page): each at most once more. At
  // the pace of other failures (1, 2, 4, 5 s) each would have tried three or four times.
  assert.ok(creates.n - after <= 2, `${creates.n - after} consumers asked for in 8 s after the refusal`);
  await waitStatus(page, "Live");
});

test("permissions: a user who may not receive replies is told so once on /chat, in its terms", T, async () => {
  const pass = env.credentials.NATS_SENSOR_PASSWORD;
  assert.ok(pass, "the test server's credentials name the sensor user");
  const page = await env.tab({ identity: "sensor-chat", path: "/chat", user: { user: "sensor", pass } });
  await waitStatus(page, "Live");
  const refused = "the sensor user may not receive replies (subscribe to _INBOX.>)";
  await waitFor(
    page,
    "the refusal said",
    (refused) => [...document.querySelectorAll(".room-view .error")].some((e) => e.textContent.includes(refused)),
    refused,
  );
  // Said once (the stream's and the room's feed meet the same refusal), without the inbox's name.
  const said = await page.evaluate(() => [...document.querySelectorAll(".room-view .error")].map((e) => e.textContent));
  assert.equal(said.filter((t) => t.includes("may not")).length, 1, said.join(" | "));
  assert.ok(!said.some((t) => /_INBOX\.[A-Za-z0-9]{8,}/.test(t)), said.join(" | "));
});
