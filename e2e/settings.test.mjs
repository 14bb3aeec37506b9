// Connection settings: servers, name and user are remembered by the browser (localStorage); the
// password and the token only by the tab's session (sessionStorage), unless "remember on this
// device" is ticked. The test server has the development server's accounts: admin's password
// signs in; credentials it refuses leave the tab Offline with the reason.

import assert from "node:assert/strict";
import { test } from "node:test";

import { textOf, useEnv, waitStatus, waitText } from "./lib.mjs";

const env = useEnv();

const stored = (page) =>
  page.evaluate(() => ({
    local: JSON.parse(localStorage.getItem("via.settings") ?? "{}"),
    session: JSON.parse(sessionStorage.getItem("via.secrets") ?? "null"),
  }));

/** Fills and applies the settings panel; waits for `status` (Live by default). */
async function apply(page, { user = "admin", password, token = "", remember, status = /^Live$/ }) {
  await page.getByRole("button", { name: "Connection settings" }).click();
  await page.getByLabel("User", { exact: true }).fill(user);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByLabel("Token", { exact: true }).fill(token);
  await page.getByTestId("settings-remember").setChecked(remember);
  await page.getByRole("button", { name: "Apply" }).click();
  await waitStatus(page, status);
}

test("admin's password stays in the session unless remembered", { timeout: 60_000 }, async () => {
  assert.ok(env.admin.user, "the test server has accounts (NATS_TEST_ACCOUNTS=1)");
  const page = await env.tab({ identity: "settings-ada", path: "/counter" });
  await apply(page, { password: env.admin.pass, remember: false });
  let s = await stored(page);
  assert.equal(s.local.user, "admin", "the user name is remembered by the browser");
  assert.equal(s.local.password, "", "no password in localStorage");
  assert.equal(s.local.remember, false);
  assert.deepEqual(s.session, { password: env.admin.pass, token: "" });
  // A reload keeps it for the session: signed in again, the panel shows it.
  await page.reload();
  await waitStatus(page, /^Live$/);
  await page.getByRole("button", { name: "Connection settings" }).click();
  assert.equal(await page.getByLabel("Password", { exact: true }).inputValue(), env.admin.pass);
  await page.getByRole("button", { name: "Cancel" }).click();

  // Ticked: kept in localStorage, and nothing left in the session.
  await apply(page, { password: env.admin.pass, remember: true });
  s = await stored(page);
  assert.equal(s.local.password, env.admin.pass);
  assert.equal(s.local.remember, true);
  assert.equal(s.session, null);
});

test("a new tab, signed in as admin elsewhere without remember, connects as the default user, says so and offers admin in ⚙", { timeout: 60_000 }, async () => {
  assert.ok(env.admin.user, "the test server has accounts (NATS_TEST_ACCOUNTS=1)");
  // What another tab left: the user in localStorage, its password in that tab's session.
  const page = await env.tab({ identity: "settings-new", path: "/counter", live: false, saved: { user: "admin", remember: false } });
  await waitStatus(page, /^Live$/);
  await waitText(page, "toast", /The saved user admin has no password in this tab.*Sign in as admin in ⚙/);
  await page.getByRole("button", { name: "Connection settings" }).click();
  assert.equal(await page.getByLabel("User", { exact: true }).inputValue(), "admin", "the user is offered");
  assert.equal(await page.getByLabel("Password", { exact: true }).inputValue(), "");
  // Not applied without its password: the server would refuse it and the tab go Offline.
  await page.getByRole("button", { name: "Apply" }).click();
  await waitText(page, "settings-error", /Type admin's password to sign in as admin, or clear the user/);
  await waitStatus(page, /^Live$/);
  await page.getByRole("button", { name: "Cancel" }).click();
  assert.equal((await stored(page)).local.user, "admin", "what the other tab saved is left as it was");
  // Signed in here too: admin, and kept for the session.
  await apply(page, { password: env.admin.pass, remember: false });
  assert.deepEqual((await stored(page)).session, { password: env.admin.pass, token: "" });
});

test("refused credentials: Offline with the reason, not a retry loop; the token stays in the session", { timeout: 60_000 }, async () => {
  const page = await env.tab({ identity: "settings-wrong", path: "/counter" });
  await apply(page, { password: "", token: "tok-secret", remember: false, status: /^Offline/ });
  // What was refused: what this tab signed in with, not every kind of credentials there is.
  assert.match(await page.getByTestId("status").getAttribute("title"), /^the server refused this token: check them in ⚙.*bash nats\.sh status/);
  // Said as text too, not only on hover (a keyboard or touch user never saw it).
  assert.ok(await page.getByTestId("status-why").isVisible(), "the reason is visible");
  assert.match(await page.getByTestId("status-why").textContent(), /^Offline: the server refused this token: check them in ⚙/);
  const s = await stored(page);
  assert.equal(s.local.token, "", "no token in localStorage");
  assert.deepEqual(s.session, { password: "", token: "tok-secret" });
  await apply(page, { password: "not-the-password", remember: false, status: /^Offline/ });
  assert.match(await page.getByTestId("status-why").textContent(), /^Offline: the server refused user admin with this password: check them in ⚙/);
  // The right password: Live again, and the reason is gone.
  await apply(page, { password: env.admin.pass, remember: false });
  assert.equal(await page.getByTestId("status-why").isVisible(), false);
});

test("secrets saved in localStorage by the previous version move to the session", { timeout: 60_000 }, async () => {
  // (The token signs in as nobody: the tab goes Offline.)
  const saved = { password: "old-pw", token: "old-tok" };
  const page = await env.tab({ identity: "settings-old", path: "/counter", saved, live: false });
  await waitStatus(page, /^Offline/);
  await page.getByRole("button", { name: "Connection settings" }).click();
  assert.equal(await page.getByLabel("Token", { exact: true }).inputValue(), "old-tok");
  const s = await stored(page);
  assert.equal(s.local.token, "", "moved out of localStorage");
  assert.equal(s.local.password, "");
  assert.deepEqual(s.session, { password: "old-pw", token: "old-tok" });
});

test("credentials in a server url saved by an older version move to the fields and out of localStorage", { timeout: 60_000 }, async () => {
  assert.ok(env.admin.user, "the test server has accounts (NATS_TEST_ACCOUNTS=1)");
  // Saved before nats-ws refused credentials in a url: such a tab would not connect now. (The
  // tab's settings are written before every load of its pages, as an older version left them.)
  const servers = env.server.ws.replace("://", `://admin:${encodeURIComponent(env.admin.pass)}@`);
  const page = await env.tab({ identity: "settings-url", path: "/counter", servers });
  const s = await stored(page);
  assert.doesNotMatch(s.local.servers, /@/, "the url lost its credentials");
  assert.doesNotMatch(JSON.stringify(s.local), new RegExp(env.admin.pass), "no password in localStorage");
  assert.equal(s.local.user, "admin");
  assert.deepEqual(s.session, { password: env.admin.pass, token: "" });
  await page.getByRole("button", { name: "Connection settings" }).click();
  assert.equal(await page.getByLabel("User", { exact: true }).inputValue(), "admin");
  assert.equal(await page.getByLabel("Password", { exact: true }).inputValue(), env.admin.pass);
});

test("a tab's settings are the ones it connected with, not those another tab saved since", { timeout: 60_000 }, async () => {
  assert.ok(env.admin.user, "the test server has accounts (NATS_TEST_ACCOUNTS=1)");
  const first = await env.tab({ identity: "settings-first", path: "/counter" });
  // A second tab of the same browser (localStorage shared) signs in as admin and saves it.
  const second = await first.context().newPage();
  await second.goto(first.url());
  await waitStatus(second, /^Live$/);
  await apply(second, { password: env.admin.pass, remember: false });
  assert.equal((await stored(first)).local.user, "admin", "saved for the browser");
  // The first tab is still the anonymous user: its panel (and what its refusals advise) says so.
  await first.getByRole("button", { name: "Connection settings" }).click();
  assert.equal(await first.getByLabel("User", { exact: true }).inputValue(), "");
});

test("settings that cannot make a connection are refused in the dialog; the connection stays Live", { timeout: 60_000 }, async () => {
  const page = await env.tab({ identity: "settings-typo", path: "/counter" });
  const before = await stored(page);
  await page.getByRole("button", { name: "Connection settings" }).click();
  await page.getByLabel(/Server URLs/).fill("nats://127.0.0.1:4222");
  await page.getByRole("button", { name: "Apply" }).click();
  await waitText(page, "settings-error", /a browser can only open WebSockets: use ws:\/\//);
  assert.ok(await page.getByRole("dialog").isVisible(), "the dialog stays open to correct it");
  // A scheme mistyped, a port alone: refused with the reason, what was typed kept to correct it.
  await page.getByLabel(/Server URLs/).fill("ws//localhost::80 80");
  await page.getByRole("button", { name: "Apply" }).click();
  await waitText(page, "settings-error", /"ws\/\/localhost::80": it has no scheme: write ws:\/\/host:port/);
  assert.equal(await page.getByLabel(/Server URLs/).inputValue(), "ws//localhost::80 80");
  await waitStatus(page, /^Live$/);
  assert.deepEqual((await stored(page)).local, before.local, "nothing saved");
  // The connection still works: a click goes through.
  await page.getByRole("button", { name: "Cancel" }).click();
  const value = Number(await textOf(page, "counter-value"));
  await page.getByTestId("counter-inc").click();
  await waitText(page, "counter-value", String(value + 1));
  // And a reload starts from the settings that work.
  await page.reload();
  await waitStatus(page, /^Live$/);
});

test("a server never reached is Connecting (N), not Reconnecting (N)", { timeout: 60_000 }, async () => {
  const page = await env.tab({ identity: "settings-never", path: "/counter" });
  await page.getByRole("button", { name: "Connection settings" }).click();
  // A port with nothing listening (the control server's own port is HTTP, not WebSocket: 1 is
  // closed on every machine).
  await page.getByLabel(/Server URLs/).fill("ws://127.0.0.1:1");
  await page.getByRole("button", { name: "Apply" }).click();
  await waitStatus(page, /^Connecting \([3-9]\)$/, { timeout: 20_000 });
  // And so says the reason under it, and the badge's title.
  await waitText(page, "status-why", /^Connecting: /);
  assert.doesNotMatch(await page.getByTestId("status").getAttribute("title"), /reconnect/i);
  await page.getByRole("button", { name: "Connection settings" }).click();
  await page.getByRole("button", { name: "Defaults" }).click();
  await page.getByLabel(/Server URLs/).fill(env.server.ws);
  await page.getByRole("button", { name: "Apply" }).click();
  await waitStatus(page, /^Live$/);
});

test("the settings dialog keeps the keyboard in it: Tab from Apply to the first field and back; Esc closes it", { timeout: 60_000 }, async () => {
  const page = await env.tab({ identity: "settings-keys", path: "/chat" });
  await page.getByRole("button", { name: "Connection settings" }).click();
  const dialog = page.getByRole("dialog");
  assert.equal(await dialog.getAttribute("aria-modal"), "true");
  const focused = () => page.evaluate(() => document.activeElement?.getAttribute("aria-label") ?? document.activeElement?.textContent.trim() ?? "");
  const inDialog = () => page.evaluate(() => !!document.activeElement?.closest('[role="dialog"]'));
  await page.getByRole("button", { name: "Apply" }).focus();
  await page.keyboard.press("Tab");
  assert.ok(await inDialog(), `Tab from Apply left the dialog for ${await focused()}`);
  assert.equal(await page.evaluate(() => document.activeElement === document.querySelector('[role="dialog"] input')), true, "the first field");
  await page.keyboard.press("Shift+Tab");
  assert.equal(await focused(), "Apply");
  await page.keyboard.press("Escape");
  assert.equal(await dialog.count(), 0);
  assert.equal(await focused(), "Connection settings");
});
