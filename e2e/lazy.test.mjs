// The release app's heavy pages come in modules of their own, one per group (/chat, /workers, the
// console, /playground: scripts/build_app.sh, src/pages/lazy.rs): a tab fetches the group of the page it
// opens, then the others in the background; a page whose code cannot be fetched says so, the tab
// stays connected, and the page is fetched again on the next visit.

import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { test } from "node:test";

import { PAGES, textOf, useEnv, waitFor } from "./lib.mjs";

const env = useEnv();

const dist = process.env.E2E_DIST ?? "";
const split = dist !== "" && readdirSync(dist).some((f) => f.startsWith("__wasm_split"));
const skip = split ? false : "E2E_DIST is not a split build (bash scripts/build_app.sh <dist>)";

const GROUPS = ["chat", "workers", "console", "playground"];

/** Each group's module the tab asks for (split_<group>-<build>.wasm) and when, in ms since `since()`. */
function pageModules(page, since) {
  const asked = new Map();
  page.on("request", (r) => {
    const m = /\/split_([a-z]+)-[0-9a-f]+\.wasm$/.exec(r.url());
    if (m && !asked.has(m[1])) asked.set(m[1], since());
  });
  return asked;
}

/** How the tab's background fetch of the groups ended, once it has: `<html data-preloaded>`,
 *  "all" or "partial". */
async function preloaded(page) {
  const done = await waitFor(page, "the background preload done", () => document.documentElement.dataset.preloaded, null, { timeout: 30_000 });
  return done.jsonValue();
}

/** Reloads the tab, watching which groups' modules it asks for; `since()`: ms since the reload. */
async function reloadWatched(page) {
  let began = 0;
  const since = () => Date.now() - began;
  const asked = pageModules(page, since);
  began = Date.now();
  await page.reload();
  return { asked, since };
}

/**
 * Follows the header's link to `to`; resolves once the page's heading (the link's text) or "could
 * not be loaded" is shown. (The heading is the way to tell: pages that start alike share their
 * first elements, which the router keeps.)
 */
async function go(page, to) {
  const link = page.locator(`nav.nav a[href="${to}"]`);
  const title = (await link.textContent()).trim();
  await link.click();
  await waitFor(
    page,
    `${to} shown`,
    (title) =>
      document.querySelector('[data-testid="page-not-loaded"]') !== null ||
      document.querySelector("main.page h1")?.textContent.trim() === title,
    title,
  );
}

test("a tab on a page of the main module fetches no group at first, every group in the background; then every page opens without the app's server", { skip, timeout: 120_000 }, async () => {
  const page = await env.tab({ identity: "lazy-1", path: "/counter" });
  // Again from the start, watched: the counter is in the main module, the groups come once it
  // is up (the app waits 2 s after it started before it fetches them).
  const { asked } = await reloadWatched(page);
  await page.getByTestId("counter-value").waitFor();
  assert.equal(await preloaded(page), "all");
  assert.deepEqual([...asked.keys()].sort(), [...GROUPS].sort());
  const early = [...asked].filter(([, at]) => at < 2000);
  assert.deepEqual(early, [], "no group's module within the first 2 s");
  // From here on, no module comes from the server.
  let refused = 0;
  await page.context().route(/\.wasm$/, (r) => {
    refused++;
    return r.abort();
  });
  for (const to of [...PAGES.filter((p) => p !== "/counter"), "/counter"]) {
    await go(page, to);
    assert.equal(await page.getByTestId("page-not-loaded").count(), 0, `${to} shown, not "could not be loaded"`);
  }
  assert.equal(refused, 0, "no page asked the server for a module again");
  assert.equal(await textOf(page, "status"), "Live");
});

test("a page whose code cannot be fetched says so, the tab stays Live, and the next visit fetches it", { skip, timeout: 120_000 }, async () => {
  const page = await env.tab({ identity: "lazy-2", path: "/counter" });
  let blocked = true;
  await page.context().route(/\/split_console-[0-9a-f]+\.wasm$/, (r) => (blocked ? r.abort() : r.continue()));
  // From the start: the background preload meets the refusal too, and says so.
  await page.reload();
  assert.equal(await preloaded(page), "partial");
  assert.equal(await textOf(page, "status"), "Live");
  await go(page, "/streams");
  await page.getByTestId("page-not-loaded").waitFor();
  assert.equal(await textOf(page, "status"), "Live");
  // The other pages still open.
  await go(page, "/counter");
  await page.getByTestId("counter-value").waitFor();

  blocked = false;
  await go(page, "/streams");
  assert.equal(await page.getByTestId("page-not-loaded").count(), 0, "/streams shown the second time");
  assert.equal(await textOf(page, "status"), "Live");
});

test("a tab opened on a console page fetches the console's module with the page, the other groups later", { skip, timeout: 60_000 }, async () => {
  const page = await env.tab({ identity: "lazy-3", path: "/streams" });
  const { asked, since } = await reloadWatched(page);
  await waitFor(page, "/streams shown", () => document.querySelector("main.page h1")?.textContent.trim() === "Streams");
  const shownAt = since();
  assert.ok(asked.get("console") <= shownAt, `the console's module before the page: ${JSON.stringify([...asked])}`);
  const early = [...asked].filter(([group, at]) => group !== "console" && at < 2000);
  assert.deepEqual(early, [], "no other group's module within the first 2 s");
});
