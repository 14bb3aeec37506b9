// Values written by a NATS client outside the app (here nats.js from node, on the server's client
// port) show up live in every tab: a config key, the theme, and a user event as one notification.

import assert from "node:assert/strict";
import { test } from "node:test";

import { configLoaded, countText, rand, sel, textOf, untilSubscribed, useEnv, waitCount, waitFor, waitText } from "./lib.mjs";

const env = useEnv();
const T = { timeout: 90_000 };

test("config: a key put by another client appears live, whatever its value", T, async () => {
  const kv = await env.kv("via_config");
  const [a, b] = await Promise.all([
    env.tab({ identity: "ext-ada", path: "/config" }),
    env.tab({ identity: "ext-grace", path: "/config" }),
  ]);
  // The first page to open on a fresh server writes the defaults of the keys nobody set: let that
  // finish, so that the last change is ours.
  for (const page of [a, b]) await configLoaded(page);
  // Not one of the values the page cycles through: shown as it is.
  const value = `trace-${rand()}`;
  await kv.put("config.app.log_level", value);
  for (const page of [a, b]) {
    await waitText(page, "config-value-app.log_level", value);
    await waitText(page, "config-last-change", /config\.app\.log_level/);
    const panel = await textOf(page, "config-last-change");
    assert.match(panel, new RegExp(value), panel);
    assert.match(panel, /another client/, `a write without the app's header is "another client": ${panel}`);
  }
  // Back to a known value, from outside too.
  await kv.put("config.app.log_level", "info");
  for (const page of [a, b]) await waitText(page, "config-value-app.log_level", "info");
});

test("theme: put by another client, applied in every tab", T, async () => {
  const kv = await env.kv("via_config");
  await kv.put("theme", "light");
  const tabs = await Promise.all([
    env.tab({ identity: "ext-ada", path: "/themes" }),
    env.tab({ identity: "ext-grace", path: "/" }),
  ]);
  const theme = (page, name) =>
    waitFor(page, `<html data-theme="${name}">`, (n) => document.documentElement.dataset.theme === n, name);
  await Promise.all(tabs.map((p) => theme(p, "light")));

  await kv.put("theme", "ocean");
  await Promise.all(tabs.map((p) => theme(p, "ocean")));
  await waitText(tabs[0], "theme-stored", "ocean");
  await waitText(tabs[0], "theme-applied", "ocean");

  await kv.put("theme", "light");
  await Promise.all(tabs.map((p) => theme(p, "light")));
});

// Other systems write bucket `users` too, with the fields they have. Before, a user without
// `created_at`/`updated_at` was not listed, and an edit here would have dropped fields this app
// does not know.
test("users: a user written by another client is listed, and an edit keeps its other fields", T, async () => {
  const kv = await env.kv("users");
  const page = await env.tab({ identity: "ext-users", path: "/" });
  const r = rand();
  const [id, name] = [`ext-${r}`, `Outside ${r}`];
  // As JavaScript clients write it: a Unix time, not text.
  const created = 1700000000;
  await kv.put(id, JSON.stringify({ name, email: `outside-${r}@example.com`, role: { admin: true }, created_at: created }));
  // A value that is no user at all is counted as such, not shown.
  const junk = `junk-${r}`;
  await kv.put(junk, "not a user");
  try {
    await waitCount(page, "user-row", name, 1);
    await waitText(page, "user-total", /other values? in the bucket (is not a user|are not users)/);

    await page.getByTestId("user-row").filter({ hasText: name }).getByRole("button", { name: "Edit" }).click();
    const editing = page.locator('[data-testid="user-row"]:has(input[aria-label="Name"])');
    await editing.getByLabel("Name").fill(`${name} edited`);
    await editing.getByRole("button", { name: `Save ${name}`, exact: true }).click();
    await waitCount(page, "user-row", `${name} edited`, 1);
    const stored = (await kv.get(id)).json();
    assert.equal(stored.name, `${name} edited`);
    assert.deepEqual(stored.role, { admin: true }, JSON.stringify(stored));
    assert.equal(stored.id, id);
    // What the edit did not change keeps its type.
    assert.strictEqual(stored.created_at, created, JSON.stringify(stored));
  } finally {
    await kv.delete(junk);
    await kv.delete(id);
  }
});

test("user event from another client: one notification per tab, even when published twice", T, async () => {
  const tabs = await Promise.all([
    env.tab({ identity: "ext-ada", path: "/" }),
    env.tab({ identity: "ext-grace", path: "/counter" }),
  ]);
  await untilSubscribed(env, tabs);
  // `nats pub user.created '{"name":"External User"}'`, twice within a second.
  const payload = JSON.stringify({ name: "External User" });
  env.nc.publish("user.created", payload);
  env.nc.publish("user.created", payload);
  // A different event after them: once a tab shows it, it has handled both copies before it
  // (one connection, messages in order), so the count below is final.
  const marker = `Marker ${rand()}`;
  env.nc.publish("user.created", JSON.stringify({ name: marker }));
  await env.nc.flush();

  for (const page of tabs) {
    await waitCount(page, "toast", marker, 1);
    assert.equal(await countText(page, "toast", "External User"), 1, `${page.label}: one "External User" toast`);
    const toast = page.getByTestId("toast").filter({ hasText: "External User" });
    const text = await toast.textContent();
    assert.match(text, /created/, text);
    assert.match(text, /another client/, text);
  }

  // A later event with another payload is a new notification.
  env.nc.publish("user.deleted", JSON.stringify({ id: "x1", name: "External User", action: "deleted", by: "cli" }));
  for (const page of tabs) {
    await waitFor(
      page,
      "a toast: External User deleted by cli",
      ({ selector }) =>
        [...document.querySelectorAll(selector)].some((t) => /External User deleted by cli/.test(t.textContent)),
      { selector: sel("toast") },
    );
  }
});

// A value from outside can be one long word. Before, a 300-character config value put every
// "Set" button 3 000 px to the right, and a long user name pushed Edit and Delete out of sight.
test("config, theme and users: one long word written by another client wraps, the page stays as wide as the window", T, async () => {
  const config = await env.kv("via_config");
  const users = await env.kv("users");
  const word = (c) => c.repeat(3000);
  const id = `long-${rand()}`;
  const at = new Date().toISOString();
  await configLoaded(await env.tab({ identity: "ext-long", path: "/config" }));
  await config.put("config.app.name", word("n"));
  await config.put("theme", word("t"));
  await users.put(id, JSON.stringify({ id, name: word("u"), email: "long@example.com", created_at: at, updated_at: at }));
  try {
    for (const [path, testid] of [
      ["/config", "config-value-app.name"],
      ["/themes", "theme-stored"],
      ["/", "user-row"],
    ]) {
      const page = await env.tab({ identity: "ext-long", path });
      await waitFor(page, `the long value on ${path}`, (s) => [...document.querySelectorAll(s)].some((e) => e.textContent.length >= 3000), sel(testid));
      const { scrollWidth, width } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth }));
      assert.ok(scrollWidth <= width, `${path}: the page is ${scrollWidth} px wide in a ${width} px window`);
    }
  } finally {
    await users.delete(id);
    await config.put("config.app.name", "VIA Console");
    await config.put("theme", "light");
  }
});
