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
