// Connection settings: servers, name and user are remembered by the browser (localStorage); the
// password and the token only by the tab's session (sessionStorage), unless "remember on this
// device" is ticked.

import assert from "node:assert/strict";
import { test } from "node:test";

import { useEnv, waitStatus } from "./lib.mjs";

const env = useEnv();

const stored = (page) =>
  page.evaluate(() => ({
    local: JSON.parse(localStorage.getItem("via.settings") ?? "{}"),
    session: JSON.parse(sessionStorage.getItem("via.secrets") ?? "null"),
  }));

async function apply(page, { password, token, remember }) {
  await page.getByRole("button", { name: "Connection settings" }).click();
  await page.getByLabel("User", { exact: true }).fill("ada");
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByLabel("Token", { exact: true }).fill(token);
  await page.getByTestId("settings-remember").setChecked(remember);
  await page.getByRole("button", { name: "Apply" }).click();
  // The test server has no authorization: it accepts the credentials and the tab is Live again.
  await waitStatus(page, /^Live$/);
}

test("password and token stay in the session unless remembered", { timeout: 60_000 }, async () => {
  const page = await env.tab({ identity: "settings-ada", path: "/counter" });
  await apply(page, { password: "pw-secret", token: "tok-secret", remember: false });
  let s = await stored(page);
  assert.equal(s.local.user, "ada", "the user name is remembered by the browser");
  assert.equal(s.local.password, "", "no password in localStorage");
  assert.equal(s.local.token, "", "no token in localStorage");
  assert.equal(s.local.remember, false);
  assert.deepEqual(s.session, { password: "pw-secret", token: "tok-secret" });
  // A reload keeps them for the session: the panel shows them again.
  await page.reload();
  await waitStatus(page, /^Live$/);
  await page.getByRole("button", { name: "Connection settings" }).click();
  assert.equal(await page.getByLabel("Token", { exact: true }).inputValue(), "tok-secret");
  assert.equal(await page.getByLabel("Password", { exact: true }).inputValue(), "pw-secret");
  await page.getByRole("button", { name: "Cancel" }).click();

  // Ticked: kept in localStorage, and nothing left in the session.
  await apply(page, { password: "pw-kept", token: "tok-kept", remember: true });
  s = await stored(page);
  assert.equal(s.local.password, "pw-kept");
  assert.equal(s.local.token, "tok-kept");
  assert.equal(s.local.remember, true);
  assert.equal(s.session, null);
});

test("secrets saved in localStorage by the previous version move to the session", { timeout: 60_000 }, async () => {
  const page = await env.tab({ identity: "settings-old", path: "/counter" });
  await page.evaluate(() => {
    const old = JSON.parse(localStorage.getItem("via.settings"));
    localStorage.setItem("via.settings", JSON.stringify({ ...old, password: "old-pw", token: "old-tok" }));
  });
  await page.getByRole("button", { name: "Connection settings" }).click();
  assert.equal(await page.getByLabel("Token", { exact: true }).inputValue(), "old-tok");
  const s = await stored(page);
  assert.equal(s.local.token, "", "moved out of localStorage");
  assert.equal(s.local.password, "");
  assert.deepEqual(s.session, { password: "old-pw", token: "old-tok" });
});
