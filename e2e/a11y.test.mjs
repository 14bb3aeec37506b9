// Accessibility: every page, in every theme, has no serious or critical violation of axe-core's
// WCAG 2 A/AA rules — with content on the page (a user, a chat message),
// since most violations live in rows and forms, not in empty pages — and the settings dialog. Also the header at a phone's
// width (390 px): the navigation fits without scrolling sideways.

import assert from "node:assert/strict";
import { test } from "node:test";

import { PAGES, addUser, applyTheme, axeViolations, rand, useEnv, waitCount, waitFor } from "./lib.mjs";

const env = useEnv();
const T = { timeout: 180_000 };

const THEMES = ["light", "dark", "ocean", "forest", "sunset"];

test("a11y: every page in every theme has no serious or critical WCAG 2 A/AA violation", T, async () => {
  const page = await env.tab({ identity: "a11y" });
  // Content to check: a user row (Edit / Delete buttons) and a chat message.
  const name = `Ada ${rand()}`;
  await addUser(page, name, `ada-${rand()}@example.com`);
  // Its notification is said once: by the one live region, while the toast itself is not one.
  await waitFor(page, "the announcer says the new user", (n) => document.querySelector('[data-testid="announcer"]').textContent.includes(n), name);
  const liveToasts = await page.evaluate(() =>
    [...document.querySelectorAll('[data-testid="toast"]')].filter((t) => t.closest('[aria-live], [role="status"], [role="alert"]')).length,
  );
  assert.equal(liveToasts, 0, "a toast inside a live region would be announced twice");

  const problems = [];
  for (const path of PAGES) {
    if (path !== "/") {
      await page.getByRole("link", { name: linkName(path), exact: true }).click();
      await waitFor(page, `${path} shown`, (p) => location.pathname === p, path);
    }
    await page.locator("main h1").first().waitFor();
    if (path === "/chat") {
      // Enough messages that the list scrolls, as a room's history does: a keyboard user must
      // be able to reach and scroll it.
      const run = rand();
      for (let i = 1; i <= 20; i++) {
        await page.getByTestId("chat-input").fill(`hello ${run} #${i}`);
        await page.getByTestId("chat-send").click();
        await waitCount(page, "chat-message", `hello ${run} #${i}`, 1);
      }
      const scrolls = await page.evaluate(() => {
        const list = document.querySelector("ol.messages");
        return list.scrollHeight > list.clientHeight;
      });
      assert.ok(scrolls, "the chat list is long enough to scroll");
    }
    for (const theme of THEMES) {
      await applyTheme(page, theme);
      for (const v of await axeViolations(page)) problems.push(`${path} [${theme}] ${v}`);
    }
  }
  assert.deepEqual(problems, [], `axe-core found:\n  ${problems.join("\n  ")}`);
  // Nothing any page asked the app's server for was missing (the tab's icon included): a 404
  // is an error in the console of every page.
  assert.deepEqual(page.failed, [], "requests the app's server refused");
});

// The header has some twenty links and buttons before the page: the first Tab offers to skip
// them (a trial counted 15 Tab presses to the first of the page's own).
test("a11y: the first Tab offers to skip to the page, and Enter takes the focus there", T, async () => {
  const page = await env.tab({ identity: "skip", path: "/counter" });
  await page.keyboard.press("Tab");
  await waitFor(page, "the skip link focused and in sight", () => {
    const a = document.activeElement;
    return a?.dataset.testid === "skip-link" && a.getBoundingClientRect().top >= 0;
  });
  await page.keyboard.press("Enter");
  await waitFor(page, "the focus on the page", () => document.activeElement?.id === "main");
  assert.equal(new URL(page.url()).pathname, "/counter", "still on the page");
  await page.keyboard.press("Tab");
  await waitFor(page, "the next Tab in the page", () => !!document.activeElement?.closest("main") && document.activeElement.id !== "main");
});

test("a11y: the settings dialog takes the focus, Esc closes it and gives the focus back", T, async () => {
  const page = await env.tab({ identity: "keys" });
  const opener = page.getByRole("button", { name: "Connection settings" });
  await opener.focus();
  await page.keyboard.press("Enter");
  const dialog = page.getByRole("dialog", { name: "Connection" });
  await dialog.waitFor();
  await waitFor(page, "focus inside the dialog", () => !!document.activeElement?.closest("[role=dialog]"));
  const problems = [];
  for (const theme of THEMES) {
    await applyTheme(page, theme);
    for (const v of await axeViolations(page)) problems.push(`settings [${theme}] ${v}`);
  }
  assert.deepEqual(problems, [], `axe-core found:\n  ${problems.join("\n  ")}`);
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "detached" });
  await waitFor(page, "focus back on the ⚙ button", () => document.activeElement?.getAttribute("aria-label") === "Connection settings");
});

// Editing a user with the keyboard alone. Before, Enter on Edit, Save or Delete left the focus on
// the page's body (26 Tab presses back to the row), and Enter or Escape in the edit did nothing.
test("a11y: a user is edited and deleted with the keyboard, the focus staying in the list", T, async () => {
  const page = await env.tab({ identity: "keys-users" });
  const r = rand();
  const [first, second] = [`Kim ${r}`, `Lee ${r}`];
  for (const name of [first, second]) {
    await addUser(page, name, `${name.split(" ")[0].toLowerCase()}-${r}@example.com`);
  }
  const focused = () => page.evaluate(() => document.activeElement?.getAttribute("aria-label") ?? document.activeElement?.tagName);
  // Enter on Edit: the focus is in the Name field.
  await page.getByRole("button", { name: `Edit ${first}`, exact: true }).focus();
  await page.keyboard.press("Enter");
  await waitFor(page, "the focus in the Name field", () => document.activeElement?.getAttribute("aria-label") === "Name");
  // Escape cancels, and the focus is back on Edit.
  await page.keyboard.press("Escape");
  await waitFor(page, "the edit closed", () => !document.querySelector('input[aria-label="Name"]'));
  assert.equal(await focused(), `Edit ${first}`);
  // Enter in the field saves what was typed, and the focus is back on Edit.
  await page.keyboard.press("Enter");
  await waitFor(page, "the focus in the Name field", () => document.activeElement?.getAttribute("aria-label") === "Name");
  await page.keyboard.press("End");
  await page.keyboard.type(" edited");
  await page.keyboard.press("Enter");
  await waitCount(page, "user-row", `${first} edited`, 1);
  await waitFor(page, "the focus back on Edit", (n) => document.activeElement?.getAttribute("aria-label") === `Edit ${n}`, `${first} edited`);
  // Delete: the focus goes to a neighbouring row, not to the page's top.
  await page.getByRole("button", { name: `Delete ${first} edited`, exact: true }).focus();
  await page.keyboard.press("Enter");
  await waitCount(page, "user-row", `${first} edited`, 0);
  await waitFor(page, "the focus on another row's button", () => !!document.activeElement?.closest('[data-testid="user-row"]'));
  await page.getByRole("button", { name: `Delete ${second}`, exact: true }).click();
  await waitCount(page, "user-row", second, 0);
});

test("a11y: a button disabled while its action runs has the focus again when it is done", T, async () => {
  const page = await env.tab({ identity: "keys-busy", path: "/playground" });
  const active = () => page.evaluate(() => document.activeElement?.dataset.testid ?? document.activeElement?.tagName);
  for (const round of [1, 2]) {
    await page.getByTestId("pg-hello-run").focus();
    await page.keyboard.press("Enter");
    await waitCount(page, "pg-hello-step", "closed the connection", 1);
    await waitFor(page, "the run over", () => !document.querySelector('[data-testid="pg-hello-run"]').disabled);
    assert.equal(await active(), "pg-hello-run", `round ${round}: the focus on Run, where the keyboard left it`);
  }
  // Focused elsewhere meanwhile: the focus stays where the user put it.
  await page.getByTestId("pg-hello-run").focus();
  await page.keyboard.press("Enter");
  await page.getByTestId("pg-queue-run").focus();
  await waitFor(page, "the run over", () => !document.querySelector('[data-testid="pg-hello-run"]').disabled);
  assert.equal(await active(), "pg-queue-run");
});

test("a11y: at 390 px the header fits and every page is one tap away", T, async () => {
  const page = await env.tab({ identity: "phone" });
  await page.setViewportSize({ width: 390, height: 844 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways by ${overflow}px at 390 px`);
  for (const path of PAGES) {
    const link = page.getByRole("link", { name: linkName(path), exact: true });
    assert.ok(await link.isVisible(), `the link to ${path} is not visible at 390 px`);
    const box = await link.boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= 390, `the link to ${path} is outside the screen: ${JSON.stringify(box)}`);
  }
});

/** The navigation's link text for a path. */
function linkName(path) {
  return {
    "/": "Users",
    "/chat": "Chat",
    "/counter": "Counter",
    "/config": "Config",
    "/themes": "Themes",
    "/workers": "Workers",
    "/monitor": "Monitor",
    "/streams": "Streams",
    "/kv": "KV",
    "/nats": "Services",
    "/graph": "Graph",
    "/processes": "Processes",
    "/scale": "Scale",
    "/server": "Server",
    "/playground": "Experiments",
  }[path];
}
