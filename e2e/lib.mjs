// Shared helpers of the end-to-end tests: the environment, a browser with one context per tab,
// a NATS client on the node side, and waits that say what they were waiting for.
//
// Environment (./test.sh sets all of it):
//   E2E_DIST           the release app (bash scripts/build_app.sh <dir>; a trunk build works too,
//                      without the split build's own tests, e2e/lazy.test.mjs)
//   NATS_WS_TEST_URL   the test server's WebSocket url, given to the app
//   NATS_TEST_URL      the same server's client url, for the node-side NATS client
//   NATS_TEST_CONTROL  GET <url>/stop and <url>/start stop and start that server; <url>/proxy/…
//                      drives the hostile-network proxy in front of its WebSocket port (env.proxy)
//   E2E_SCREENSHOTS    where the page screenshots go (default e2e/screenshots)
//   CHROMIUM           the browser (default /usr/bin/chromium)
// Without the NATS_* variables, a test file starts its own throwaway server with
// scripts/nats_test_control.py (handy to run one file: E2E_DIST=... node --test e2e/chat.test.mjs).
// A file that asks for a cluster (useEnv({ cluster: true })) always starts its own: three nodes
// (NATS_TEST_CLUSTER=1), of the binary $NATS_SERVER_BIN.

import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { createInterface } from "node:readline";
import { after, afterEach, before } from "node:test";
import { fileURLToPath } from "node:url";

import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { connect } from "@nats-io/transport-node";
import { CHROMIUM_ARGS, launchChromium } from "./chromium.mjs";
import { serveStatic } from "./serve.mjs";

export { CHROMIUM_ARGS };

export const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.dirname(E2E_DIR);
export const SCREENSHOTS = path.join(E2E_DIR, "screenshots");

export const VIEWPORT = { width: 1280, height: 800 };
/** How long a wait for something the app should do gets, in ms. */
export const WAIT = 20_000;

/** Every page of the app, in navigation order (src/lib.rs `Page::path`). */
export const PAGES = ["/", "/chat", "/counter", "/config", "/themes", "/workers", "/monitor", "/streams", "/kv", "/nats", "/graph", "/processes", "/scale", "/server", "/playground"];


/** A short random suffix, so that a test only ever matches what it wrote itself. */
export const rand = () => Math.random().toString(36).slice(2, 8);

/**
 * The test's NATS server: from the environment, or a throwaway one this process owns; with
 * `cluster`, always a throwaway 3-node cluster (node 0's urls).
 */
async function natsServer({ cluster = false } = {}) {
  const { NATS_WS_TEST_URL: ws, NATS_TEST_CONTROL: control, NATS_TEST_URL: nats } = process.env;
  if (ws && control && nats && !cluster) return { ws, control, nats, stop: async () => {} };

  const work = mkdtempSync(path.join(tmpdir(), "via-e2e-nats-"));
  // With the development server's accounts: the app runs as the restricted `browser` user.
  const child = spawn("python3", [path.join(REPO, "scripts", "nats_test_control.py"), work], {
    stdio: ["ignore", "pipe", "inherit"],
    env: { ...process.env, NATS_TEST_ACCOUNTS: "1", NATS_TEST_CLUSTER: cluster ? "1" : "0" },
  });
  const line = await new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error("test nats-server did not start in 60 s")), 60_000);
    lines.on("line", (l) => {
      if (l.startsWith("ready ")) {
        clearTimeout(timer);
        resolve(l);
      }
    });
    child.once("exit", (code) => reject(new Error(`nats_test_control.py exited (${code})`)));
  });
  const [, wsUrl, controlUrl, natsUrl] = line.trim().split(/\s+/);
  return {
    ws: wsUrl,
    control: controlUrl,
    nats: natsUrl,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
      rmSync(work, { recursive: true, force: true });
    },
  };
}

/**
 * Everything a test file needs; call in `before`, and `close()` in `after` (always runs, also
 * when a test failed): closes the browser, the static server, the NATS client (and the server
 * when this process started it).
 */
export async function startEnv(env = {}, { cluster = false, chromiumArgs = [] } = {}) {
  const dist = process.env.E2E_DIST;
  if (!dist) {
    throw new Error(
      "E2E_DIST is not set: build the app (bash scripts/build_app.sh <dir>) and set E2E_DIST=<dir>, or run ./test.sh",
    );
  }
  Object.assign(env, { contexts: [], problems: [] });
  const closers = [];
  env.close = async () => {
    for (const close of closers.splice(0).reverse()) {
      try {
        await close();
      } catch (e) {
        console.error("cleanup:", e);
      }
    }
  };
  try {
    const server = await natsServer({ cluster });
    closers.push(server.stop);
    env.server = server;

    // The users' passwords when the server has accounts (NATS_<USER>_PASSWORD; {} without).
    const res = await fetch(`${server.control}/credentials`);
    env.credentials = res.ok ? await res.json() : {};
    env.admin = env.credentials.NATS_ADMIN_PASSWORD
      ? { user: "admin", pass: env.credentials.NATS_ADMIN_PASSWORD }
      : {};

    const web = await serveStatic(dist);
    closers.push(web.close);
    env.baseUrl = web.url;

    // The outside client, as admin: it sets up and checks whatever a test needs. Keeps
    // reconnecting while a test has the server stopped.
    env.nc = await connect({
      servers: server.nats,
      ...env.admin,
      name: "via-e2e",
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
    closers.push(() => env.nc.close());
    env.jsm = await jetstreamManager(env.nc);
    env.kvm = new Kvm(env.nc);

    env.browser = await launchChromium([...CHROMIUM_ARGS, ...chromiumArgs]);
    closers.push(() => env.browser.close());
  } catch (e) {
    await env.close();
    throw e;
  }

  /** A KV bucket, created the way the app creates it (history 5) when it does not exist yet. */
  env.kv = async (bucket) => {
    try {
      await env.jsm.streams.info(`KV_${bucket}`);
    } catch {
      try {
        return await env.kvm.create(bucket, { history: 5 });
      } catch {
        // the app created it meanwhile
      }
    }
    return env.kvm.open(bucket);
  };

  /**
   * A new tab: its own browser context (own sessionStorage), pointed at the test server through
   * localStorage `via.settings`, with identity `identity` (sessionStorage `via.identity`).
   * Opens `path` and waits until the header says "Live". With `proxy`, the tab connects through
   * the hostile-network proxy (scripts/ws_proxy.py) instead of straight to the server; with
   * `servers`, to those. Tabs are the anonymous `browser` user; with `admin`, signed in as admin
   * (as ⚙ does); with `user` ({ user, pass }), as that user; `saved`: more fields of the saved
   * settings (as an older version left them). With `clockSkewMs`, the tab's wall
   * clock (`Date.now()`, what the app reads) is that far ahead (negative: behind). `viewport`:
   * its size from the start ({ width, height }; 1280 × 800 by default).
   */
  env.tab = async ({ identity, path: at = "/", live = true, proxy = false, admin = false, user, servers: to, saved, clockSkewMs = 0, viewport = VIEWPORT } = {}) => {
    const context = await env.browser.newContext({ viewport });
    env.contexts.push(context);
    const servers = to ?? (proxy ? (await env.proxy("status")).url : env.server.ws);
    const settings = { servers, name: `e2e ${identity ?? ""}`.trim(), user: "", password: "", token: "" };
    if (admin && env.admin.user) Object.assign(settings, { user: "admin", password: env.admin.pass, remember: true });
    if (user) Object.assign(settings, { user: user.user, password: user.pass, remember: true });
    // Fields as an older version of the app saved them.
    if (saved) Object.assign(settings, saved);
    await context.addInitScript(
      ({ settings, identity }) => {
        try {
          localStorage.setItem("via.settings", JSON.stringify(settings));
          if (identity) sessionStorage.setItem("via.identity", identity);
        } catch {
          // about:blank has no storage
        }
      },
      { settings, identity },
    );
    if (clockSkewMs) {
      await context.addInitScript((skew) => {
        const real = Date.now;
        Date.now = () => real() + skew;
      }, clockSkewMs);
    }
    const page = await context.newPage();
    page.label = identity ?? `tab ${env.contexts.length}`;
    page.on("pageerror", (e) => env.problems.push(`${page.label}: uncaught ${e.message}`));
    // Files the page asked for and did not get, as its console reports them (which also covers
    // what the browser fetches on its own, such as the tab's icon).
    page.failed = [];
    // The last console lines, for the report of a failure (see `consoleTail`).
    page.logs = [];
    page.brokenCloses = [];
    page.on("console", (m) => {
      page.logs.push(`${new Date().toISOString().slice(11, 23)} ${m.type()}: ${m.text()}`);
      if (page.logs.length > 200) page.logs.shift();
      if (m.type() === "error" && /^Failed to load resource/.test(m.text())) page.failed.push(`${m.text()}: ${m.location().url}`);
      if (m.type() === "error" && /panicked|RuntimeError|unreachable/i.test(m.text())) {
        env.problems.push(`${page.label}: ${m.text()}`);
      }
      // A close Chromium calls broken: a socket the app closed without a status code (nats-server
      // answers with 1005, a code that must not be sent), or a server that closed with such a
      // code itself (nats-server sends 1006 on a stale connection or a read error), so the tests
      // of the app's own closes look at it, not every test.
      if (/broken close frame/.test(m.text())) page.brokenCloses.push(m.text());
    });
    await page.goto(env.baseUrl + at);
    if (live) await waitStatus(page, /^Live$/);
    // The release app fetches a heavy page's code when it is first opened: Live can come first.
    await page.waitForSelector("main.page > *");
    return page;
  };

  /** Closes every tab opened so far. */
  env.closeTabs = async () => {
    const contexts = env.contexts.splice(0);
    await Promise.all(contexts.map((c) => c.close().catch(() => {})));
  };

  /**
   * The nodes of a cluster environment (GET /cluster): [{ name, running, client, websocket,
   * http, leafnodes, mqtt }] — node 0 is the one env.server names.
   */
  env.nodes = async () => JSON.parse(await env.control("cluster"));

  /** Stops or starts the test server (returns once done). */
  env.control = async (what) => {
    const res = await fetch(`${env.server.control}/${what}`);
    const body = await res.text();
    if (!res.ok) throw new Error(`control /${what}: ${res.status} ${body}`);
    return body;
  };

  /**
   * A command to the hostile-network proxy in front of the server's WebSocket port
   * (scripts/ws_proxy.py, served by the control port): status, set (params: seed, split,
   * cut_rate, garbage_rate), cut, garbage, stall, resume, reset. Returns its status (JSON).
   */
  env.proxy = async (what, params = {}) => {
    const query = new URLSearchParams(params).toString();
    const res = await fetch(`${env.server.control}/proxy/${what}${query ? `?${query}` : ""}`);
    const body = await res.text();
    if (!res.ok) throw new Error(`proxy /${what}: ${res.status} ${body}`);
    return JSON.parse(body);
  };

  /**
   * Starts via-agent against the test server: the binary is $VIA_AGENT_BIN, else
   * target/debug/via-agent, else target/release/via-agent (`cargo build -p via-agent`). Its config,
   * written into a temp dir (leaves under its data/), points leaves at the server's leafnodes port
   * and /leafz at its monitoring port (scripts/nats_test_control.py's /ports); `processes` is the
   * TOML of its [[process]] tables. Resolves once the agent answers `via.proc.list`. `stop()`
   * sends SIGTERM (the agent stops its children) and waits; env.close() stops it too; `kill()`
   * sends SIGKILL.
   */
  env.agent = async ({ processes = "", maxLeaves = 8 } = {}) => {
    const bin =
      process.env.VIA_AGENT_BIN ??
      ["debug", "release"].map((p) => path.join(REPO, "target", p, "via-agent")).find((p) => existsSync(p));
    if (!bin || !existsSync(bin)) {
      throw new Error("no via-agent binary: cargo build -p via-agent (or set VIA_AGENT_BIN)");
    }
    const ports = JSON.parse(await env.control("ports"));
    const dir = mkdtempSync(path.join(tmpdir(), "via-e2e-agent-"));
    const config = path.join(dir, "via-agent.toml");
    writeFileSync(
      config,
      `[agent]\nnats_url = "${env.server.nats}"\nmax_leaves = ${maxLeaves}\n` +
        `hub_leafnode_port = ${ports.leafnodes}\nhub_monitoring_url = "http://127.0.0.1:${ports.http}"\n` +
        `data_dir = "data"\n\n${processes}\n`,
    );
    const log = path.join(dir, "agent.log");
    const out = openSync(log, "a");
    const child = spawn(bin, ["--config", config], {
      cwd: dir,
      stdio: ["ignore", out, out],
      // Leaves run nats-server: $NATS_SERVER_BIN (./test.sh sets it), else PATH's (Debian's is in /usr/sbin).
      // Its processes inherit the users' passwords (crates/credentials reads NATS_<USER>_PASSWORD).
      env: { ...process.env, ...env.credentials, VIA_NATS_URL: env.server.nats, PATH: `${process.env.PATH}:/usr/sbin` },
    });
    closeSync(out);
    const exited = new Promise((r) => child.once("exit", r));
    const agent = {
      dir,
      log: () => readFileSync(log, "utf8"),
      /** SIGKILL: the agent cannot say anything, deregister anything or stop anything. */
      kill: async () => {
        child.kill("SIGKILL");
        await exited;
      },
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
          await exited;
          clearTimeout(timer);
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
    closers.push(agent.stop);
    try {
      await eventually(
        "via-agent answers via.proc.list",
        async () => {
          if (child.exitCode !== null) throw new Error(`via-agent exited (${child.exitCode}):\n${agent.log()}`);
          const reply = await env.nc.request("via.proc.list", "{}", { timeout: 1000 });
          return JSON.parse(reply.string()).processes;
        },
        { timeout: 30_000, every: 200 },
      );
    } catch (e) {
      await agent.stop();
      throw e;
    }
    return agent;
  };

  /**
   * Runs `code` (an asyncio coroutine body, `nc` connected to the test server as nats-py) in
   * python3 and resolves with what it printed; rejects with its stderr when it fails. nats-py is
   * the outside peer the console pages are tested against (scripts/setup.sh installs it).
   */
  env.py = (code, { timeout = 60_000 } = {}) =>
    new Promise((resolve, reject) => {
      const body = code
        .trim()
        .split("\n")
        .map((l) => `    ${l}`)
        .join("\n");
      const script =
        `import asyncio, json, sys\nimport nats\n\nasync def main():\n` +
        `    nc = await nats.connect(${JSON.stringify(env.server.nats)}, **${JSON.stringify(
          env.admin.user ? { user: env.admin.user, password: env.admin.pass } : {},
        )})\n` +
        `    try:\n    ${body.replaceAll("\n", "\n    ")}\n    finally:\n        await nc.drain()\n\n` +
        `asyncio.run(main())\n`;
      const child = spawn("python3", ["-c", script], { stdio: ["ignore", "pipe", "pipe"] });
      let out = "";
      let err = "";
      child.stdout.on("data", (d) => (out += d));
      child.stderr.on("data", (d) => (err += d));
      const timer = setTimeout(() => child.kill("SIGKILL"), timeout);
      child.once("exit", (code, signal) => {
        clearTimeout(timer);
        if (code === 0) resolve(out);
        else reject(new Error(`nats-py peer failed (${signal ?? code}):\n${err}`));
      });
    });

  /** Fails when a page threw or the wasm panicked. */
  env.assertNoProblems = () => {
    if (env.problems.length) {
      throw new Error(`errors in the pages:\n${env.problems.splice(0).join("\n")}`);
    }
  };

  return env;
}

/**
 * The environment of a test file: set up before its tests, each test's tabs closed after it (and
 * the pages checked for uncaught errors and panics), everything closed after the last test, also
 * when a test failed.
 */
export function useEnv(options = {}) {
  const env = {};
  before(() => startEnv(env, options), { timeout: 60_000 });
  afterEach(async () => {
    await env.closeTabs?.();
    env.assertNoProblems?.();
  });
  after(() => env.close?.(), { timeout: 60_000 });
  return env;
}

const sel = (testid) => `[data-testid="${testid}"]`;
export { sel };

/**
 * Tells `page` its document is hidden (or shown again) with a `visibilitychange`, as a tab put in
 * the background would: Playwright keeps its pages visible (e2e/hidden-tab.test.mjs has a tab
 * Chromium really hides, timers throttled and all).
 */
export function setHidden(page, hidden) {
  return page.evaluate((h) => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => h });
    document.dispatchEvent(new Event("visibilitychange", { bubbles: true }));
  }, hidden);
}

/**
 * Waits until the text of the element [data-testid=testid] (trimmed) matches `expected`
 * (a RegExp, or a string for equality). Fails with what it saw last.
 */
export async function waitText(page, testid, expected, { timeout = WAIT } = {}) {
  const re = expected instanceof RegExp ? expected : new RegExp(`^${escapeRe(String(expected))}$`);
  try {
    await page.waitForFunction(
      ({ selector, source, flags }) => {
        const el = document.querySelector(selector);
        return !!el && new RegExp(source, flags).test(el.textContent.trim());
      },
      { selector: sel(testid), source: re.source, flags: re.flags },
      { timeout, polling: 50 },
    );
  } catch (e) {
    const seen = await textOf(page, testid).catch(() => "(page gone)");
    throw new Error(`${page.label}: [${testid}] should match ${re}, but shows ${JSON.stringify(seen)} (${e.message.split("\n")[0]})`);
  }
}

/** Adds a user through the users page's form, and waits until the page lists it. */
export async function addUser(page, name, email) {
  await page.getByTestId("user-name-input").fill(name);
  await page.getByTestId("user-email-input").fill(email);
  await page.getByTestId("user-create").click();
  await waitCount(page, "user-row", name, 1);
}

/** The trimmed text of [data-testid=testid], or null when there is none. */
export async function textOf(page, testid) {
  return page.evaluate((s) => document.querySelector(s)?.textContent.trim() ?? null, sel(testid));
}

export const waitStatus = (page, expected, opts) => waitText(page, "status", expected, opts);

/** Waits for `fn(arg)` to be truthy in the page; `what` names it in the error. */
export async function waitFor(page, what, fn, arg, { timeout = WAIT } = {}) {
  try {
    return await page.waitForFunction(fn, arg, { timeout, polling: 50 });
  } catch (e) {
    throw new Error(`${page.label}: ${what} (${e.message.split("\n")[0]})`);
  }
}

/** Signs the tab in as `user` through ⚙ (the settings dialog), as a user would; waits for "Live". */
export async function signIn(page, user, password) {
  await page.getByRole("button", { name: "Connection settings" }).click();
  await page.getByLabel("User", { exact: true }).fill(user);
  await page.getByLabel("Password", { exact: true }).fill(password);
  await page.getByRole("dialog").getByRole("button", { name: "Apply" }).click();
  await waitStatus(page, /^Live$/);
}

/** Waits until the number of [data-testid=testid] elements whose text contains `text` is `n`. */
export async function waitCount(page, testid, text, n, opts) {
  try {
    await waitFor(
      page,
      `expected ${n} [${testid}] containing ${JSON.stringify(text)}`,
      ({ selector, text, n }) =>
        [...document.querySelectorAll(selector)].filter((e) => e.textContent.includes(text)).length === n,
      { selector: sel(testid), text, n },
      opts,
    );
  } catch (e) {
    const seen = await countText(page, testid, text).catch(() => "?");
    const last = await page
      .evaluate((s) => [...document.querySelectorAll(s)].slice(-3).map((e) => e.textContent.trim()), sel(testid))
      .catch(() => []);
    throw new Error(`${e.message}; found ${seen}; the last ones: ${JSON.stringify(last)}`);
  }
}

/** The number of [data-testid=testid] elements whose text contains `text`. */
export async function countText(page, testid, text) {
  return page.evaluate(
    ({ selector, text }) =>
      [...document.querySelectorAll(selector)].filter((e) => e.textContent.includes(text)).length,
    { selector: sel(testid), text },
  );
}

/** Polls `fn` (async) until it returns a truthy value; for state outside the browser. */
export async function eventually(what, fn, { timeout = WAIT, every = 100 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`${what} did not happen in ${timeout} ms${last ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, every));
  }
}

/** Every known config key has a value in `page`. */
export function configLoaded(page) {
  return waitFor(
    page,
    "every config key has a value (the first /config page on a fresh server writes the defaults)",
    () => {
      const values = [...document.querySelectorAll('[data-testid^="config-value-"]')];
      return values.length >= 7 && values.every((v) => !["…", "(not set)"].includes(v.textContent.trim()));
    },
    undefined,
  );
}

/** Saves a 1280×800 picture of `page` as <E2E_SCREENSHOTS or e2e/screenshots>/<name>.png. */
export async function screenshot(page, name) {
  const dir = process.env.E2E_SCREENSHOTS || SCREENSHOTS;
  await mkdir(dir, { recursive: true });
  // No hover effect on the last button clicked; web fonts loaded.
  await page.mouse.move(4, VIEWPORT.height - 4);
  await page.evaluate(() => document.fonts.ready);
  await page.screenshot({ path: path.join(dir, `${name}.png`) });
}

/**
 * At a phone's width (390 × 800), what the user cannot see without scrolling sideways: the page
 * wider than the screen, and each element matching `selector` (by its test id or text) that ends
 * past the screen's right edge or past that of a box it scrolls in; with `shot`, a screenshot of
 * that name too. The viewport is put back.
 */
export async function hiddenWhenNarrow(page, selector, { shot } = {}) {
  const before = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 800 });
  try {
    if (shot) {
      await page.evaluate((s) => document.querySelector(s)?.closest("table")?.scrollIntoView({ block: "start" }), selector);
      await screenshot(page, shot);
    }
    return await page.evaluate(async (s) => {
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      const hidden = [];
      if (document.documentElement.scrollWidth > window.innerWidth) hidden.push(`the page (${document.documentElement.scrollWidth} px wide)`);
      const found = document.querySelectorAll(s);
      if (found.length === 0) hidden.push(`nothing matches ${s}`);
      for (const el of found) {
        let right = window.innerWidth;
        for (let p = el.parentElement; p; p = p.parentElement) {
          if (getComputedStyle(p).overflowX === "visible") continue;
          right = Math.min(right, p.getBoundingClientRect().right);
          const scrolls = `a box scrolls sideways (${p.scrollWidth} px in ${p.clientWidth})`;
          if (p.scrollWidth > p.clientWidth && !hidden.includes(scrolls)) hidden.push(scrolls);
        }
        const box = el.getBoundingClientRect();
        if (box.width === 0 || box.left < 0 || box.right > right + 0.5) hidden.push(el.dataset.testid || el.textContent.trim());
      }
      return hidden;
    }, selector);
  } finally {
    await page.setViewportSize(before);
  }
}

/** Waits until no change of the counter is "on the way" in `page`: every click of it written. */
export const counterSettled = (page, { timeout = 60_000 } = {}) =>
  waitFor(
    page,
    "no counter change left on the way",
    () => !/on the way/.test(document.querySelector(".counter")?.textContent ?? "on the way"),
    undefined,
    { timeout },
  );

/** Types `text` into the chat and presses Send in one go (no other action can come in between). */
export const sendChat = (page, text) =>
  page.evaluate((text) => {
    const input = document.querySelector('[data-testid="chat-input"]');
    input.value = text;
    input.dispatchEvent(new Event("input", { bubbles: true }));
    document.querySelector('[data-testid="chat-send"]').click();
  }, text);

/** Counter value as the app reads it: JSON {"value":N,...} or a bare integer; 0 when unset. */
export function counterValue(entry) {
  if (!entry || entry.operation !== "PUT") return 0;
  const text = entry.string().trim();
  try {
    const v = JSON.parse(text);
    if (typeof v === "number") return v;
    if (v && typeof v.value === "number") return v.value;
  } catch {
    // fall through
  }
  return Number.parseInt(text, 10);
}

/** A seeded random generator (mulberry32): numbers in [0, 1), the same sequence for a seed. */
export function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Resolves after `ms`: to space out actions (clicks, cuts), never to wait for a state. */
export const pause = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs each of `actions` (async functions) once, at a moment drawn from `rng` within `ms`; resolves
 * when all are done. The moments are drawn before any runs, so a seed gives the same schedule.
 */
export async function scatter(rng, ms, actions) {
  const moments = actions.map(() => Math.floor(rng() * ms));
  await Promise.all(actions.map((action, i) => pause(moments[i]).then(action)));
}

/** Resolves with the ms it took for every tab in `tabs` to say "Live". */
export async function allLive(tabs, { timeout = WAIT } = {}) {
  const started = Date.now();
  await Promise.all(tabs.map((page) => waitStatus(page, /^Live$/, { timeout })));
  return Date.now() - started;
}

/**
 * After a run through the hostile proxy, once it is reset: resolves with the ms it took until every
 * tab is "Live" on a connection no cut has touched (the proxy relays exactly one such connection per
 * tab). A tab whose connection was cut a moment ago still says "Live" until it notices, and then
 * waits its reconnect delay (2 s): timing from that "Live" charged the delay to what came after.
 */
export async function liveAfterCuts(env, tabs, { timeout = WAIT } = {}) {
  const started = Date.now();
  await eventually(
    `${tabs.length} connections through the proxy that no cut touched`,
    async () => (await env.proxy("status")).live === tabs.length,
    { timeout, every: 50 },
  );
  await allLive(tabs, { timeout: Math.max(1, started + timeout - Date.now()) });
  return Date.now() - started;
}

/** The last `n` console lines of `page`, for a failure report. */
export const consoleTail = (page, n = 8) => (page.logs ?? []).slice(-n).join("\n    ");

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// Core NATS delivers only to subscriptions the server already has, and "Live" can show before a
// tab's `user.*` subscription has reached the server. Publishes probe events until every tab has
// shown one (each probe waited for, bounded), so the events that follow cannot be lost to timing.
export async function untilSubscribed(env, tabs) {
  for (let attempt = 0; attempt < 40; attempt++) {
    const probe = `Probe ${rand()}`;
    env.nc.publish("user.updated", JSON.stringify({ name: probe }));
    await env.nc.flush();
    const seen = await Promise.all(
      tabs.map((page) =>
        page
          .waitForFunction(
            ({ selector, probe }) => [...document.querySelectorAll(selector)].some((t) => t.textContent.includes(probe)),
            { selector: sel("toast"), probe },
            { timeout: 500 },
          )
          .then(
            () => true,
            () => false,
          ),
      ),
    );
    if (seen.every(Boolean)) return;
  }
  throw new Error("the tabs never showed a user.* event: their subscription did not reach the server");
}

/** The native worker's binary: $VIA_WORKER_BIN, else target/debug/via-worker, else target/release/via-worker. */
export function viaWorkerBin() {
  const bin =
    process.env.VIA_WORKER_BIN ??
    ["debug", "release"].map((p) => path.join(REPO, "target", p, "via-worker")).find((p) => existsSync(p));
  if (!bin || !existsSync(bin)) {
    throw new Error("no via-worker binary: cargo build -p via-worker (or set VIA_WORKER_BIN)");
  }
  return bin;
}

/**
 * Starts the native worker (`via-worker`, crates/via-worker) against the test server (the
 * binary: `viaWorkerBin`). `args` are added to `--url <the server's client url>`; its
 * output goes to a log in a temp dir. `stop()` sends SIGTERM (a clean leave) and waits; `kill()`
 * sends SIGKILL. The caller stops it (in a `finally`).
 */
export function startViaWorker(env, args = []) {
  const bin = viaWorkerBin();
  const dir = mkdtempSync(path.join(tmpdir(), "via-e2e-worker-"));
  const log = path.join(dir, "worker.log");
  const out = openSync(log, "a");
  const child = spawn(bin, ["--url", env.server.nats, ...args], {
    cwd: dir,
    stdio: ["ignore", out, out],
    env: { ...process.env, ...env.credentials },
  });
  closeSync(out);
  const exited = new Promise((r) => child.once("exit", (code, signal) => r({ code, signal })));
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    dir,
    pid: child.pid,
    exited,
    log: () => readFileSync(log, "utf8"),
    stop: async () => {
      if (running()) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
        await exited;
        clearTimeout(timer);
      }
    },
    kill: async () => {
      if (running()) {
        child.kill("SIGKILL");
        await exited;
      }
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The serious and critical WCAG 2 A/AA violations axe-core finds on `page` as it is now. */
export async function axeViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe === "object"))) {
    const { createRequire } = await import("node:module");
    const source = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
    await page.addScriptTag({ content: source });
  }
  return page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] } });
    return r.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(" ")).slice(0, 4).join(", ")}`);
  });
}

/** Applies `theme` to the open page without storing it, once its colour transitions are over. */
export const applyTheme = (page, theme) =>
  page.evaluate(async (t) => {
    document.documentElement.dataset.theme = t;
    await new Promise((r) => requestAnimationFrame(r));
    await Promise.all(
      document
        .getAnimations()
        .filter((a) => a instanceof CSSTransition)
        .map((a) => a.finished.catch(() => {})),
    );
  }, theme);

/** Opens /streams in a new tab (`admin`: signed in as admin) and the detail of stream `name`. */
export async function openStreamDetail(env, name, { identity, admin = false }) {
  const page = await env.tab({ identity, path: "/streams", admin });
  await page.getByTestId("stream-row").filter({ hasText: name }).getByRole("button", { name, exact: true }).click();
  await waitFor(
    page,
    `the detail of ${name}`,
    ({ s, name }) => document.querySelector(s)?.querySelector("h2")?.textContent.includes(name),
    { s: sel("stream-detail"), name },
  );
  return page;
}
