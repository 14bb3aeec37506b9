// /monitor against outside publishers: 5 000 messages from nats-py are counted exactly and per
// subject, payloads with markup are shown as text (JSON pretty-printed, binary as hex), the log stays
// bounded, a subject click filters the log, an invalid subject is an inline error with nothing
// subscribed, and Pause freezes the log while the counts go on. An expanded row lists its status
// and headers (as text) before the payload, and Escape folds it; sizes are never cut; bidirectional
// controls in payloads, headers and subjects are shown as escapes, never applied.

import assert from "node:assert/strict";
import { test } from "node:test";

import { headers } from "@nats-io/transport-node";

import { applyTheme, axeViolations, eventually, pause, rand, screenshot, sel, signIn, textOf, useEnv, waitFor, waitText } from "./lib.mjs";

const env = useEnv();
const T = { timeout: 90_000 };

/** Opens /monitor and subscribes to `subject` from the page. */
async function monitor(identity, subject) {
  const page = await env.tab({ identity, path: "/monitor" });
  await page.fill(sel("monitor-subject-input"), subject);
  await page.click(sel("monitor-start"));
  await waitText(page, "monitor-state", `Subscribed to ${subject}`);
  return page;
}

/**
 * Core NATS delivers only to subscriptions the server already has: probes on `probe` until the
 * page counted one, then waits until it counted every probe sent, and clears.
 */
async function untilCounting(page, probe) {
  let sent = 0;
  for (;;) {
    env.nc.publish(probe, "probe");
    sent++;
    await env.nc.flush();
    const seen = await page
      .waitForFunction((s) => document.querySelector(s)?.textContent.trim() !== "0", sel("monitor-count"), {
        timeout: 500,
      })
      .then(
        () => true,
        () => false,
      );
    if (seen) break;
    assert.ok(sent < 40, "the page never counted a probe: its subscription did not reach the server");
  }
  await waitText(page, "monitor-count", String(sent));
  await page.click(sel("monitor-clear"));
  await waitText(page, "monitor-count", "0");
}

/** The subjects table as {subject: count}. */
const subjectTable = (page) =>
  page.evaluate((s) => {
    const out = {};
    for (const tr of document.querySelectorAll(s)) {
      const cells = tr.querySelectorAll("td");
      out[cells[0].textContent.trim()] = Number(cells[1].textContent.trim());
    }
    return out;
  }, sel("monitor-subject-row"));

/** Scrolls the log to its end until the page holds `n` rows (it adds them as its end comes near). */
const scrolledToRows = (page, n, what) =>
  waitFor(
    page,
    what,
    ({ s, n }) => {
      const log = document.querySelector(".monitor-log");
      log.scrollTop = log.scrollHeight;
      return document.querySelectorAll(s).length === n;
    },
    { s: sel("monitor-row"), n },
  );

const rowCount = (page) => page.evaluate((s) => document.querySelectorAll(s).length, sel("monitor-row"));

test("monitor: 5 000 messages from nats-py counted exactly, per subject, shown as text", T, async () => {
  const base = `mon.${rand()}`;
  const page = await monitor("watcher", `${base}.>`);
  await untilCounting(page, `${base}.probe`);

  // 5 000 messages: 6 in 10 on .a, 3 in 10 on .b, 1 in 10 on .c; three more on .c carry
  // markup, JSON and bytes that are not UTF-8.
  const markup = ["<b>x</b>", "<img src=x onerror=window.__xss=1>"];
  await env.py(`
base = ${JSON.stringify(base)}
for i in range(4997):
    subject = base + (".a" if i % 10 < 6 else ".b" if i % 10 < 9 else ".c")
    await nc.publish(subject, b"message %d" % i)
await nc.publish(base + ".c", ${JSON.stringify(markup.join(" "))}.encode(), reply="reply." + base)
await nc.publish(base + ".c", json.dumps({"id": 7, "tags": ["<b>x</b>"]}).encode(), headers={"K": "v"})
await nc.publish(base + ".c", bytes([0xff, 0x00, 0x3c, 0x62, 0x3e]))
await nc.flush()
`);
  await waitText(page, "monitor-count", "5000", { timeout: 30_000 });
  await waitFor(
    page,
    "the subjects table counts all 5000",
    (s) =>
      [...document.querySelectorAll(s)].reduce((n, tr) => n + Number(tr.querySelectorAll("td")[1].textContent), 0) ===
      5000,
    sel("monitor-subject-row"),
  );
  // i % 10: 0-5 → .a, 6-8 → .b, 9 → .c over 4 997 messages, then 3 more on .c.
  assert.deepEqual(await subjectTable(page), { [`${base}.a`]: 3000, [`${base}.b`]: 1498, [`${base}.c`]: 502 });
  assert.equal(await textOf(page, "monitor-count"), "5000", "nothing counted twice");
  assert.match(await textOf(page, "monitor-rate"), /^\d+ msgs\/s · [\d.]+ (B|KiB|MiB)\/s$/);
  // A burst is drawn with its newest 100 rows, the last 500 once it has passed; the page holds
  // the newest 30 of them until the log is scrolled down, 100 more each time its end comes near.
  assert.ok((await rowCount(page)) <= 30, "the log's window");
  const scrollLog = (to) =>
    page.evaluate((to) => {
      const log = document.querySelector(".monitor-log");
      log.scrollTop = to === "end" ? log.scrollHeight : 0;
    }, to);
  await scrolledToRows(page, 500, "scrolled down, the log shows the last 500 rows");
  await scrollLog("top");
  await waitFor(page, "back at the top, the window again", (s) => document.querySelectorAll(s).length === 30, sel("monitor-row"));

  // Newest first: bytes as hex, then the JSON, then the markup, as text.
  const rows = await page.evaluate(
    (s) =>
      [...document.querySelectorAll(s)].slice(0, 3).map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent.trim())),
    sel("monitor-row"),
  );
  assert.equal(rows[0][5], "ff 00 3c 62 3e");
  assert.equal(rows[1][3], "1", "one header");
  assert.equal(rows[1][5], '{"id": 7, "tags": ["<b>x</b>"]}');
  assert.equal(rows[2][2], `reply.${base}`);
  assert.equal(rows[2][5], markup.join(" "));
  const injected = await page.evaluate(() => ({
    elements: document.querySelectorAll("main b, main img, .monitor-log b, .monitor-log img").length,
    xss: window.__xss ?? null,
  }));
  assert.deepEqual(injected, { elements: 0, xss: null }, "payload markup is text, never HTML");

  // Expanded: JSON pretty-printed.
  await page.locator(sel("monitor-payload")).nth(1).click();
  await waitFor(page, "the JSON is expanded", () => !!document.querySelector(".monitor-detail pre"));
  assert.equal(
    await page.evaluate(() => document.querySelector(".monitor-detail pre").textContent),
    '{\n  "id": 7,\n  "tags": [\n    "<b>x</b>"\n  ]\n}',
  );
  await page.evaluate(() => window.scrollTo(0, 0));
  await screenshot(page, "monitor");

  // A click on a subject filters the log to it.
  await page.click(`${sel("monitor-subject-row")} button:text-is("${base}.c")`);
  await waitFor(
    page,
    "the log shows only .c",
    ({ rows, subject }) => {
      const list = [...document.querySelectorAll(rows)];
      return list.length > 0 && list.every((tr) => tr.querySelectorAll("td")[1].textContent === subject);
    },
    { rows: sel("monitor-row"), subject: `${base}.c` },
  );
  await scrolledToRows(page, 52, "scrolled down, the .c messages among the last 500: 49 + the last 3");
});

// A steady feed is drawn in batches: the counts at most every 100 ms and the log every 250 ms
// (drawing each of 20 msgs/s kept a third of a core busy), while a message after a quiet spell
// is on screen at once.
test("monitor: a steady feed is drawn at most ten times a second, a lone message at once", T, async () => {
  const base = `pace.${rand()}`;
  const page = await monitor("pace", `${base}.>`);
  await untilCounting(page, `${base}.probe`);
  await page.evaluate((s) => {
    window.__draws = { count: 0, log: 0 };
    new MutationObserver(() => window.__draws.count++).observe(document.querySelector(s.count), {
      childList: true,
      characterData: true,
      subtree: true,
    });
    new MutationObserver(() => window.__draws.log++).observe(document.querySelector(".monitor-log tbody"), {
      childList: true,
    });
  }, { count: sel("monitor-count") });

  // 60 messages, one every 50 ms: the page may draw its counts at most once per 100 ms (31
  // times in 3 s, and a few more for a slow machine's late timers), not once per message.
  const started = Date.now();
  for (let i = 0; i < 60; i++) {
    env.nc.publish(`${base}.steady`, `m${i}`);
    await pause(started + (i + 1) * 50 - Date.now());
  }
  await waitText(page, "monitor-count", "60");
  const seconds = (Date.now() - started) / 1000;
  const draws = await page.evaluate(() => window.__draws);
  assert.ok(draws.count >= 5, `the count moved while the feed ran (${draws.count} draws)`);
  assert.ok(draws.count <= 10 * seconds + 5, `${draws.count} draws of the count in ${seconds.toFixed(1)} s`);
  assert.ok(draws.log <= 4 * seconds + 3, `${draws.log} draws of the log in ${seconds.toFixed(1)} s`);

  // After a quiet second, one message is drawn in the next frame, well within the 250 ms a
  // steady feed's log waits (both clocks are this machine's wall clock).
  await pause(1000);
  await page.evaluate(
    ({ subject, row }) => {
      window.__lone = null;
      new MutationObserver((_, observer) => {
        if ([...document.querySelectorAll(row)].some((tr) => tr.textContent.includes(subject))) {
          window.__lone = Date.now();
          observer.disconnect();
        }
      }).observe(document.querySelector(".monitor-log tbody"), { childList: true });
    },
    { subject: `${base}.lone`, row: sel("monitor-row") },
  );
  const sent = Date.now();
  env.nc.publish(`${base}.lone`, "alone");
  await waitFor(page, "the lone message is in the log", () => window.__lone !== null);
  const after = (await page.evaluate(() => window.__lone)) - sent;
  assert.ok(after < 200, `a lone message took ${after} ms to be drawn`);
});

test("monitor: an invalid subject is an inline error, and nothing is subscribed", T, async () => {
  const page = await env.tab({ identity: "typo", path: "/monitor" });
  const ports = await (await fetch(`${env.server.control}/ports`)).json();
  const subs = async () => {
    const connz = await (await fetch(`http://127.0.0.1:${ports.http}/connz?subs=1&limit=1000`)).json();
    return connz.connections.filter((c) => c.name === "e2e typo").flatMap((c) => c.subscriptions_list ?? []);
  };
  const typed = ["a..b", "foo.>.bar", "ok.one", "bad..two", ">"];
  // [what is typed, the subject the error names]; the last has a valid subject and an invalid
  // one, and subscribes neither.
  const cases = [
    ["a..b", "a..b"],
    ["foo.>.bar", "foo.>.bar"],
    ["ok.one bad..two", "bad..two"],
  ];
  for (const [input, named] of cases) {
    await page.fill(sel("monitor-subject-input"), input);
    await page.click(sel("monitor-start"));
    await waitText(page, "monitor-error", `Invalid subject: invalid subject "${named}": ${named === "foo.>.bar" ? "'>' may only be the last token" : "it has an empty token (leading, trailing or double '.')"}`);
    assert.equal(await textOf(page, "monitor-state"), "Not subscribed.");
    assert.equal(await page.getAttribute(sel("monitor-subject-input"), "aria-invalid"), "true");
  }
  await env.nc.flush();
  assert.deepEqual((await subs()).filter((s) => typed.includes(s)), [], "no subscription reached the server");

  // A valid one clears the error, and is subscribed.
  await page.click(sel("monitor-preset-all"));
  await waitText(page, "monitor-state", "Subscribed to >");
  await waitFor(page, "the error is gone", (s) => document.querySelector(s).hidden, sel("monitor-error"));
  assert.equal(await page.getAttribute(sel("monitor-subject-input"), "aria-invalid"), "false");
  assert.equal(await page.inputValue(sel("monitor-subject-input")), ">");
  await eventually("the server has the subscription to >", async () => (await subs()).includes(">"));
  await page.click(sel("monitor-stop"));
  await waitText(page, "monitor-state", "Not subscribed.");
  await eventually("the subscription to > is gone", async () => !(await subs()).includes(">"));
});

// A subscription the server refuses ends: the page names it and no longer says it is subscribed
// to it, and the others go on (it went on saying "Subscribed to" both).
test("monitor: a subject the user may not read is named, and no longer shown as subscribed", T, async () => {
  const pass = env.credentials.NATS_PUBLISHER_PASSWORD;
  assert.ok(pass, "the test server's credentials name the publisher user");
  const page = await env.tab({ identity: "mon-publisher", path: "/monitor", user: { user: "publisher", pass } });
  const allowed = `_INBOX.mon${rand()}`;
  await page.fill(sel("monitor-subject-input"), `${allowed} chat.>`);
  await page.click(sel("monitor-start"));
  await waitText(page, "monitor-error", /may not subscribe to chat\.>/);
  await waitText(page, "monitor-state", `Subscribed to ${allowed}`);
  // The one allowed still counts.
  env.nc.publish(allowed, "hi");
  await waitText(page, "monitor-count", "1");

  // Signing in as a user who may read it (what the refusal advises) subscribes to both again:
  // what Start asked for is kept, the subject the last connection refused too.
  await signIn(page, "admin", env.admin.pass);
  await waitText(page, "monitor-state", `Subscribed to ${allowed}, chat.>`);
  await waitFor(page, "the error is gone", (s) => document.querySelector(s).hidden, sel("monitor-error"));
  const room = `chat.mon${rand()}`;
  await eventually("a chat message is counted", async () => {
    env.nc.publish(room, "hello");
    await env.nc.flush();
    return (await textOf(page, "monitor-count")) !== "1";
  });

  // Stop forgets it: the next connection subscribes to nothing.
  await page.click(sel("monitor-stop"));
  await waitText(page, "monitor-state", "Not subscribed.");
  await signIn(page, "publisher", pass);
  await waitText(page, "status", "Live");
  assert.equal(await textOf(page, "monitor-state"), "Not subscribed.");
});

test("monitor: a subject another one covers is not subscribed twice, so nothing is counted twice", T, async () => {
  // A user typed `ov.>, ov.a`: the server sends a message once per subscription it matches, and
  // every message on ov.a was counted and logged twice.
  const ov = `ov${rand()}`;
  const page = await env.tab({ identity: "mon-overlap", path: "/monitor" });
  await page.fill(sel("monitor-subject-input"), `${ov}.>, ${ov}.a`);
  await page.click(sel("monitor-start"));
  await waitText(page, "monitor-state", `Subscribed to ${ov}.>`);
  await waitText(page, "monitor-note", `not subscribed twice: ${ov}.a (within ${ov}.>)`);
  await untilCounting(page, `${ov}.probe`);
  // Ten on ov.a, then one on ov.b after them: 11 once each (21 before).
  for (let i = 0; i < 10; i++) env.nc.publish(`${ov}.a`, `m${i}`);
  env.nc.publish(`${ov}.b`, "last");
  await env.nc.flush();
  await waitText(page, "monitor-count", "11");
  await eventually("11 rows in the log", async () => (await page.locator(sel("monitor-row")).count()) === 11);
  assert.equal(await textOf(page, "monitor-count"), "11", "counted twice");
});

test("monitor: Pause freezes the log and keeps counting", T, async () => {
  const base = `mon.${rand()}`;
  const page = await monitor("pauser", `${base}.>`);
  await untilCounting(page, `${base}.probe`);
  await env.py(`
for i in range(20):
    await nc.publish(${JSON.stringify(base)} + ".before", b"%d" % i)
await nc.flush()
`);
  await waitText(page, "monitor-count", "20");
  await waitFor(page, "20 rows", (s) => document.querySelectorAll(s).length === 20, sel("monitor-row"));

  await page.click(sel("monitor-pause"));
  await waitText(page, "monitor-state", /paused/);
  await env.py(`
for i in range(300):
    await nc.publish(${JSON.stringify(base)} + ".during", b"%d" % i)
await nc.flush()
`);
  await waitText(page, "monitor-count", "320");
  await waitFor(
    page,
    "the table counts the messages sent while paused",
    ({ s, subject }) =>
      [...document.querySelectorAll(s)].some(
        (tr) => tr.querySelectorAll("td")[0].textContent.trim() === subject && tr.querySelectorAll("td")[1].textContent.trim() === "300",
      ),
    { s: sel("monitor-subject-row"), subject: `${base}.during` },
  );
  assert.equal(await rowCount(page), 20, "the log did not move");

  await page.click(sel("monitor-pause"));
  await env.nc.publish(`${base}.after`, "after");
  await waitFor(
    page,
    "the log moves again",
    ({ s, subject }) => document.querySelector(s)?.querySelectorAll("td")[1].textContent === subject,
    { s: sel("monitor-row"), subject: `${base}.after` },
  );
  await waitText(page, "monitor-count", "321");
  assert.equal(await rowCount(page), 21);
});

test("monitor: signing in keeps the subjects, the counts and the log, and goes on counting", T, async () => {
  const base = `mon.${rand()}`;
  const page = await monitor("signer", `${base}.>`);
  await untilCounting(page, `${base}.probe`);
  env.nc.publish(`${base}.before`, "before");
  await waitText(page, "monitor-count", "1");
  await waitFor(page, "the message in the log", (s) => document.querySelectorAll(s).length === 1, sel("monitor-row"));

  await signIn(page, "admin", env.admin.pass);
  await waitText(page, "monitor-state", `Subscribed to ${base}.>`);
  assert.equal(await page.inputValue(sel("monitor-subject-input")), `${base}.>`);
  assert.equal(await textOf(page, "monitor-count"), "1", "the count so far is kept");
  assert.equal(await rowCount(page), 1, "the log is kept");
  // The change of connection is a gap, and the page says so.
  await waitText(page, "monitor-interrupted", /./);
  // Counting on the new connection: probes until one arrives (its subscription reaches the
  // server a moment after the page shows it).
  await eventually(
    "a message published after the sign-in is counted",
    async () => {
      env.nc.publish(`${base}.after`, "after");
      await env.nc.flush();
      return Number(await textOf(page, "monitor-count")) > 1;
    },
    { every: 300 },
  );
  // The subjects table (redrawn twice a second) has both.
  await eventually("both subjects in the table", async () => {
    const table = await subjectTable(page);
    return table[`${base}.before`] === 1 && table[`${base}.after`] >= 1;
  });
});

/** Waits until the log has `n` rows; returns their cells' texts (newest first). */
async function logRows(page, n) {
  await waitFor(page, `${n} rows in the log`, ({ s, n }) => document.querySelectorAll(s).length === n, { s: sel("monitor-row"), n });
  return page.evaluate(
    (s) => [...document.querySelectorAll(s)].map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent.trim())),
    sel("monitor-row"),
  );
}

/** Expands the log's row `i` (0: the newest); resolves with its expanded part's element handle. */
async function expand(page, i) {
  await page.locator(sel("monitor-payload")).nth(i).click();
  await waitFor(
    page,
    `row ${i} is expanded`,
    ({ s, i }) => document.querySelectorAll(s)[i].nextElementSibling?.classList.contains("monitor-detail"),
    { s: sel("monitor-row"), i },
  );
  return page.evaluateHandle(({ s, i }) => document.querySelectorAll(s)[i].nextElementSibling, { s: sel("monitor-row"), i });
}

/** axe-core's serious and critical WCAG 2 A/AA violations on the page as it is, in every theme. */
async function axeInEveryTheme(page) {
  const problems = [];
  for (const theme of ["light", "dark", "ocean", "forest", "sunset"]) {
    await applyTheme(page, theme);
    for (const v of await axeViolations(page)) problems.push(`[${theme}] ${v}`);
  }
  return problems;
}

/** The [name, value] pairs an expanded row lists, in order. */
const headersOf = (detail) =>
  detail.evaluate((d, s) => [...d.querySelectorAll(s)].map((h) => [h.querySelector("dt").textContent, h.querySelector("dd").textContent]), sel("monitor-header"));

// The trial: a message with three headers said "3" and showed only its payload when expanded.
test("monitor: an expanded row lists every header and value, as text, before the payload", T, async () => {
  const base = `mon.${rand()}`;
  const page = await monitor("headers", `${base}.>`);
  await untilCounting(page, `${base}.probe`);
  const h = headers();
  h.append("X-Trial", "<b>hdr</b>");
  h.append("X-Multi", "one");
  h.append("X-Multi", "two");
  env.nc.publish(`${base}.h`, "the body", { headers: h });
  const [row] = await logRows(page, 1);
  assert.equal(row[3], "3", "three headers");
  const detail = await expand(page, 0);
  assert.deepEqual(await headersOf(detail), [
    ["X-Trial", "<b>hdr</b>"],
    ["X-Multi", "one"],
    ["X-Multi", "two"],
  ]);
  const order = await detail.evaluate((d) => {
    const list = d.querySelector("dl");
    const pre = d.querySelector("pre");
    return {
      payload: pre.textContent,
      before: !!(list.compareDocumentPosition(pre) & Node.DOCUMENT_POSITION_FOLLOWING),
      markup: d.querySelectorAll("b").length,
    };
  });
  assert.deepEqual(order, { payload: "the body", before: true, markup: 0 }, "headers first, markup as text");
  assert.deepEqual(await axeInEveryTheme(page), [], "axe-core on the expanded row");
});

// The trial: a 503 with an empty payload was "0 headers, 0 B" with a disabled expand button.
test("monitor: a status-only message shows its status, and expands to it", T, async () => {
  const base = `mon.${rand()}`;
  const page = await monitor("status", `${base}.>`);
  await untilCounting(page, `${base}.probe`);
  env.nc.publish(`${base}.none`, undefined, { headers: headers(503, "No Responders") });
  const [row] = await logRows(page, 1);
  assert.match(row[5], /503 No Responders/, "the status in the row");
  assert.equal(await page.locator(sel("monitor-payload")).first().isDisabled(), false, "the row can be expanded");
  const detail = await expand(page, 0);
  assert.equal(await detail.evaluate((d, s) => d.querySelector(s)?.textContent.trim(), sel("monitor-detail-status")), "503 No Responders");
  assert.deepEqual(await headersOf(detail), []);
  assert.deepEqual(await axeInEveryTheme(page), [], "axe-core on the status, in the row and expanded");
});

// The trial: at 1280 px the Size column showed "100.0 …".
test("monitor: sizes are shown in full, at 1280 and 390 px", T, async () => {
  const base = `mon.${rand()}`;
  const page = await monitor("sizes", `${base}.>`);
  await untilCounting(page, `${base}.probe`);
  // 100 KiB, and the widest a size is written ("1000.0 KiB": 1 MiB and over is "1.0 MiB").
  env.nc.publish(`${base}.big`, new Uint8Array(1000 * 1024).fill(0x61));
  env.nc.publish(`${base}.hundred`, new Uint8Array(100 * 1024).fill(0x61));
  const rows = await logRows(page, 2);
  assert.deepEqual(
    rows.map((r) => r[4]),
    ["100.0 KiB", "1000.0 KiB"],
  );
  // The size, and the other cells of fixed width (time, headers), none cut.
  const cut = () =>
    page.evaluate(
      (s) =>
        [...document.querySelectorAll(s)].flatMap((tr) =>
          [0, 3, 4]
            .map((i) => tr.querySelectorAll("td")[i])
            .filter((td) => td.scrollWidth > td.clientWidth)
            .map((td) => `${td.textContent}: ${td.scrollWidth} > ${td.clientWidth}`),
        ),
      sel("monitor-row"),
    );
  assert.deepEqual(await cut(), [], "at 1280 px");
  await page.setViewportSize({ width: 390, height: 844 });
  assert.deepEqual(await cut(), [], "at 390 px");
  // The subjects table's subjects on one line each: they took 4 lines at 390 px, 4 rows to the
  // table's box (it scrolls sideways in its box instead). A subject as long as the agent's
  // `$KV.processes.app`.
  env.nc.publish(`${base}.proc.app`, "x");
  await waitFor(page, "the subjects table", (s) => document.querySelectorAll(s).length >= 3, sel("monitor-subject-row"));
  const wrapped = await page.evaluate(
    (s) =>
      [...document.querySelectorAll(s)]
        .filter((tr) => {
          // One line: the count's text (cells share their row's height).
          const line = document.createRange();
          line.selectNodeContents(tr.cells[1]);
          return tr.cells[0].querySelector("button").getBoundingClientRect().height > 1.5 * line.getBoundingClientRect().height;
        })
        .map((tr) => tr.cells[0].textContent),
    sel("monitor-subject-row"),
  );
  assert.deepEqual(wrapped, [], "subjects wrapped at 390 px");
});

test("monitor: Escape folds an expanded row and gives the focus back to its button", T, async () => {
  const base = `mon.${rand()}`;
  const page = await monitor("escape", `${base}.>`);
  await untilCounting(page, `${base}.probe`);
  env.nc.publish(`${base}.x`, JSON.stringify({ long: "x".repeat(5000) }));
  await logRows(page, 1);
  const folded = () =>
    waitFor(
      page,
      "the row is folded, its button focused",
      (s) => {
        const button = document.querySelector(s);
        return !document.querySelector(".monitor-detail") && button.getAttribute("aria-expanded") === "false" && document.activeElement === button;
      },
      sel("monitor-payload"),
    );
  // From the row's button.
  await expand(page, 0);
  await page.keyboard.press("Escape");
  await folded();
  // From within the expanded part (its payload, which scrolls).
  await expand(page, 0);
  await page.focus(".monitor-detail pre");
  await page.keyboard.press("Escape");
  await folded();
});

test("monitor: bidirectional controls in payloads, headers and subjects are shown, not applied", T, async () => {
  const base = `mon.${rand()}`;
  const page = await monitor("bidi", `${base}.>`);
  await untilCounting(page, `${base}.probe`);
  const h = headers();
  h.append("X-Bidi", "a\u2067b");
  env.nc.publish(`${base}.\u202Ertl`, "fine 🎉 \u202Eevil", { headers: h });
  const [row] = await logRows(page, 1);
  assert.equal(row[1], `${base}.\\u{202E}rtl`, "the subject");
  assert.equal(row[5], "fine 🎉 \\u{202E}evil", "the payload");
  const detail = await expand(page, 0);
  assert.deepEqual(await headersOf(detail), [["X-Bidi", "a\\u{2067}b"]]);
  assert.equal(await detail.evaluate((d) => d.querySelector("pre").textContent), "fine 🎉 \\u{202E}evil");
  // The subjects table and the filter say it the same way.
  const subject = `${base}.\\u{202E}rtl`;
  await page.locator(`${sel("monitor-subject-row")} button`).filter({ hasText: subject }).click();
  await waitText(page, "monitor-filter", `Only ${subject} Show all subjects`);
  const raw = await page.evaluate(() => /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/.test(document.querySelector("main").textContent));
  assert.equal(raw, false, "no bidi control in the page's text");
  // Shown apart from the text around them.
  const marks = await page.evaluate(() => [...document.querySelectorAll(".bidi-control")].map((e) => e.textContent));
  assert.ok(marks.length >= 4 && marks.every((m) => /^\\u\{(202E|2067)\}$/.test(m)), marks.join(" "));
  assert.deepEqual(await axeInEveryTheme(page), [], "axe-core on the controls shown");
});
