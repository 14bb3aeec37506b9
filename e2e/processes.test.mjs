// /processes with via-agent: without the agent the page says so (at once, and how to start it);
// with it, two tabs see the same processes, a restart clicked in one shows in both (new pid, one
// more restart), a refused request is shown, and the log tail is live and plain text.

import assert from "node:assert/strict";
import { test } from "node:test";

import { axeViolations, hiddenWhenNarrow, pause, screenshot, sel, textOf, useEnv, waitFor, waitText } from "./lib.mjs";

const env = useEnv();
const T = { timeout: 120_000 };

// `sleeper` just runs; `talker` prints a line (with markup in it) every 200 ms; `pinned` may not
// be controlled from requests.
const PROCESSES = `
[[process]]
name = "sleeper"
command = "sleep"
args = ["3600"]
autostart = true
restart = "never"

[[process]]
name = "talker"
command = "sh"
args = ["-c", "i=0; while true; i=$((i+1)); do echo \\"tick $i <b>not bold</b>\\"; sleep 0.2; done"]
autostart = true
restart = "on-failure"

[[process]]
name = "pinned"
command = "sleep"
args = ["3600"]
autostart = true
restart = "never"
control = false
`;

const visible = (page, testid) =>
  waitFor(page, `[${testid}] visible`, (s) => !!document.querySelector(s), sel(testid));
const gone = (page, testid) =>
  waitFor(page, `[${testid}] gone`, (s) => !document.querySelector(s), sel(testid));

test("processes: without via-agent the page says how to start it, and notices when it comes", T, async () => {
  const page = await env.tab({ identity: "ops", path: "/processes" });
  const started = Date.now();
  await visible(page, "agent-missing");
  // No responders come back at once: no request timeout (5 s) is waited for.
  assert.ok(Date.now() - started < 4000, `agent-missing took ${Date.now() - started} ms`);
  const notice = await textOf(page, "agent-missing");
  assert.match(notice, /\.\/run\.sh/);
  assert.match(notice, /cargo run -p via-agent/);
  await screenshot(page, "processes-agent-missing");

  const agent = await env.agent({ processes: PROCESSES });
  try {
    await gone(page, "agent-missing");
    await waitText(page, "proc-state-sleeper", "running");
  } finally {
    await agent.stop();
  }
  // The agent gone: the notice is back, and the rows are no longer shown as live.
  await visible(page, "agent-missing");
  await waitFor(
    page,
    "the sleeper row greyed out as stale, its buttons off",
    (s) => {
      const state = document.querySelector(s);
      const row = state?.closest("tr");
      return !!row?.classList.contains("stale") && row.querySelectorAll("button[disabled]").length === 3;
    },
    sel("proc-state-sleeper"),
  );
  // Greyed out, and still readable.
  assert.deepEqual(await axeViolations(page), [], "a stale row fails WCAG 2 A/AA");
});

// Both tabs start, stop and restart: signed in as admin (the browser user may only watch).
test("processes: a restart clicked in one tab is seen in the other", T, async () => {
  const agent = await env.agent({ processes: PROCESSES });
  try {
    const [a, b] = await Promise.all([
      env.tab({ identity: "ops-a", path: "/processes", admin: true }),
      env.tab({ identity: "ops-b", path: "/processes", admin: true }),
    ]);
    for (const page of [a, b]) {
      await waitText(page, "proc-state-sleeper", "running");
      await waitText(page, "proc-pid-sleeper", /^\d+$/);
      await gone(page, "agent-missing");
    }
    const pid = await textOf(a, "proc-pid-sleeper");
    const restarts = Number(await textOf(a, "proc-restarts-sleeper"));
    assert.equal(await textOf(b, "proc-pid-sleeper"), pid, "both tabs show the same pid");
    const rows = await a.evaluate((s) => document.querySelectorAll(s).length, sel("proc-row"));
    assert.ok(rows >= 3, `${rows} process rows`);

    await a.getByTestId("proc-restart-sleeper").click();
    for (const page of [a, b]) {
      await waitFor(
        page,
        `sleeper restarted: a pid other than ${pid}, restarts ${restarts + 1}`,
        ({ pidSel, restartsSel, stateSel, pid, restarts }) =>
          /^\d+$/.test(document.querySelector(pidSel)?.textContent.trim() ?? "") &&
          document.querySelector(pidSel).textContent.trim() !== pid &&
          document.querySelector(restartsSel)?.textContent.trim() === String(restarts + 1) &&
          document.querySelector(stateSel)?.textContent.trim() === "running",
        {
          pidSel: sel("proc-pid-sleeper"),
          restartsSel: sel("proc-restarts-sleeper"),
          stateSel: sel("proc-state-sleeper"),
          pid,
          restarts,
        },
      );
    }
    const newPid = await textOf(b, "proc-pid-sleeper");
    // The agent's own record agrees.
    const list = JSON.parse((await env.nc.request("via.proc.list", "{}")).string()).processes;
    const sleeper = list.find((p) => p.name === "sleeper");
    assert.equal(String(sleeper.pid), newPid);
    assert.equal(sleeper.restarts, restarts + 1);

    // Stop in tab b: both tabs see it stopped; Start brings it back.
    await b.getByTestId("proc-stop-sleeper").click();
    for (const page of [a, b]) await waitText(page, "proc-state-sleeper", "stopped");
    await a.getByTestId("proc-start-sleeper").click();
    for (const page of [a, b]) await waitText(page, "proc-state-sleeper", "running");

    // A process the config does not let requests control: its buttons are off, and the agent
    // refuses if asked anyway (the page shows what it says instead of failing).
    await waitText(a, "proc-state-pinned", "running");
    assert.equal(await a.getByTestId("proc-restart-pinned").isDisabled(), true);
    const refused = await env.nc.request("via.proc.restart", JSON.stringify({ name: "pinned" }));
    assert.equal(refused.headers?.get("Nats-Service-Error-Code"), "403");

    // The log tail: pick `talker`, earlier lines come first, new ones arrive live, as text.
    await a.getByRole("button", { name: "talker", exact: true }).click();
    await waitFor(a, "the log of talker", (s) => /Log of\s*talker/.test(document.querySelector(s)?.closest("section")?.textContent ?? ""), sel("proc-log"));
    const ticks = () =>
      a.evaluate((s) => {
        const all = [...(document.querySelector(s)?.textContent.matchAll(/tick (\d+)/g) ?? [])];
        return all.map((m) => Number(m[1]));
      }, sel("proc-log"));
    await waitFor(a, "talker's lines in the log", (s) => /tick \d+/.test(document.querySelector(s)?.textContent ?? ""), sel("proc-log"));
    const first = Math.max(...(await ticks()));
    await waitFor(
      a,
      `a tick after ${first} arrives live`,
      ({ s, first }) => [...document.querySelector(s).textContent.matchAll(/tick (\d+)/g)].some((m) => Number(m[1]) > first + 3),
      { s: sel("proc-log"), first },
    );
    const seen = await ticks();
    assert.equal(new Set(seen).size, seen.length, "no line shown twice");
    assert.ok(
      seen.every((n, i) => i === 0 || n === seen[i - 1] + 1),
      `lines in order, none missing: ${seen.join(",")}`,
    );
    assert.equal(await a.evaluate((s) => document.querySelector(s).querySelector("b"), sel("proc-log")), null, "markup in a line stays text");
    assert.match(await textOf(a, "proc-log"), /<b>not bold<\/b>/);

    await screenshot(a, "processes");
    // On a phone, every row's buttons and values are in sight: rows stack, nothing scrolls away.
    assert.deepEqual(await hiddenWhenNarrow(a, '.proc-row button, .proc-row td[data-label]', { shot: "processes-narrow" }), []);
    await a.evaluate(() => document.documentElement.setAttribute("data-theme", "dark"));
    await pause(400); // the theme's colour transition
    await screenshot(a, "processes-dark");
  } finally {
    await agent.stop();
  }
});

test("processes: a refused action is said on its row until the process starts, stops or restarts", T, async () => {
  const agent = await env.agent({ processes: PROCESSES });
  try {
    // The browser user may read the processes, not control them.
    const page = await env.tab({ identity: "viewer", path: "/processes" });
    await waitText(page, "proc-state-sleeper", "running");
    await page.getByTestId("proc-stop-sleeper").click();
    await waitFor(page, "the refusal on the row", () =>
      /^stop sleeper: .*may not/.test(document.querySelector("tr.proc-error")?.textContent.trim() ?? ""),
    );
    // Stopped by someone who may: what the row said of the process as it was goes.
    const stopped = await env.nc.request("via.proc.stop", JSON.stringify({ name: "sleeper" }), { timeout: 10_000 });
    assert.equal(stopped.headers?.get("Nats-Service-Error-Code") ?? null, null, stopped.string());
    await waitText(page, "proc-state-sleeper", "stopped");
    await waitFor(page, "the refusal gone", () => !document.querySelector("tr.proc-error"));
  } finally {
    await agent.stop();
  }
});
