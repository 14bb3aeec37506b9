// /server: the servers' statistics are the system account's, so the page signs in as `sys` on a
// connection of its own (password typed in, kept for the tab's session) and shows what
// $SYS.REQ.SERVER.PING.VARZ answers, live: the test server's row has its version, counts that
// follow what an outside client does, and rates. A wrong password is said so; the app's own
// connection (the browser user) stays Live throughout.

import assert from "node:assert/strict";
import { test } from "node:test";

import { eventually, screenshot, sel, textOf, useEnv, waitStatus, waitText } from "./lib.mjs";

const env = useEnv();
const T = { timeout: 60_000 };

const number = (text) => Number(/^\d+/.exec(text.trim())?.[0] ?? NaN);

test("server: signed in as sys, the server's row is live; a wrong password is named", T, async () => {
  assert.ok(env.credentials.NATS_SYS_PASSWORD, "the test server has accounts (NATS_TEST_ACCOUNTS=1)");
  const page = await env.tab({ identity: "ops", path: "/server" });

  // A wrong password: the page says the server refused it and asks again (not trying it on and
  // on); the app stays Live.
  await page.getByTestId("server-sys-password").fill("not-the-password");
  await page.getByTestId("server-connect").click();
  await waitText(page, "server-sign-in-error", /refused the credentials/);
  await page.getByTestId("server-sys-password").waitFor();
  assert.equal(await page.getByTestId("server-sign-out").count(), 0);
  await waitStatus(page, /^Live$/);

  await page.getByTestId("server-sys-password").fill(env.credentials.NATS_SYS_PASSWORD);
  await page.getByTestId("server-connect").click();
  await waitText(page, "server-connection", /^connected as sys to /);
  await waitText(page, "server-version", env.nc.info.version);
  assert.ok(number(await textOf(page, "server-connections")) >= 2, "this tab, its sys connection and the test's client");
  assert.match(await textOf(page, "server-uptime"), /\d+(ms|s|m|h|d)/);

  // 2 000 messages from the outside client: the in-messages count moves by at least that, and
  // a rate is shown from the second reading on.
  const before = number(await textOf(page, "server-in-msgs"));
  for (let i = 0; i < 2000; i++) env.nc.publish("server.test.load", "x");
  await env.nc.flush();
  await eventually("the in-messages count moved by 2000", async () => number(await textOf(page, "server-in-msgs")) >= before + 2000, { timeout: 10_000 });
  // The rate apart from the count (read as one number with it before: "6143" and "14/s").
  assert.match(await textOf(page, "server-in-msgs"), /^\d+ \d+(\.\d)? ?[kM]?\/s$/);
  // Every column in sight at 1 280 px, not behind the table's scroll (Routes and Leaf nodes were).
  const cut = await page.evaluate((s) => {
    const cell = document.querySelector(s);
    return cell.getBoundingClientRect().right - cell.closest(".table-wrap").getBoundingClientRect().right;
  }, sel("server-leafnodes"));
  assert.ok(cut <= 0, `Leaf nodes ends ${cut} px past the table's edge`);
  await screenshot(page, "server");

  // The password is kept for the session: a reload signs in again by itself.
  await page.reload();
  await waitText(page, "server-connection", /^connected as sys to /);
  await waitText(page, "server-version", env.nc.info.version);
  await waitStatus(page, /^Live$/);
});

test("server: a tab signed in as sys in ⚙ is not asked for the password again", T, async () => {
  const page = await env.tab({ identity: "ops-sys", path: "/server", user: { user: "sys", pass: env.credentials.NATS_SYS_PASSWORD } });
  await waitText(page, "server-connection", /^connected as sys to /);
  await waitText(page, "server-version", env.nc.info.version);
});
