// wss://: the page on a server whose WebSocket port speaks TLS (nats-server's own `websocket { tls
// { … } }`, a certificate for 127.0.0.1 made for this run, which this file's Chromium is told to
// accept). The tab goes Live over wss://, says so in the status, and the playground's hello card
// (a second connection from the same settings) connects, publishes and receives over it.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";

import { useEnv, waitCount } from "./lib.mjs";

const env = useEnv({ chromiumArgs: ["--ignore-certificate-errors"] });

test("wss://: a tab goes Live over TLS and the hello card runs over it", { timeout: 90_000 }, async (t) => {
  const store = mkdtempSync(path.join(tmpdir(), "via-e2e-tls-"));
  t.after(async () => {
    await fetch(`${env.server.control}/auth-server/stop`);
    rmSync(store, { recursive: true, force: true });
  });
  const config = `jetstream { store_dir: ${JSON.stringify(store)} }`;
  const res = await fetch(`${env.server.control}/auth-server?tls=1&config=${encodeURIComponent(config)}`);
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  assert.match(body.websocket, /^wss:\/\/127\.0\.0\.1:\d+$/);

  const page = await env.tab({ path: "/playground", servers: body.websocket });
  const title = await page.getByTestId("status").getAttribute("title");
  assert.ok(title.includes(`at ${body.websocket}`), `the status names the wss:// url: ${title}`);

  await page.getByTestId("pg-hello-run").click();
  await waitCount(page, "pg-hello-step", "closed the connection", 1);
  const steps = await page.evaluate(() =>
    [...document.querySelectorAll('[data-testid="pg-hello-step"]')].map((e) => ({
      text: e.textContent.trim(),
      failed: e.classList.contains("failed"),
    })),
  );
  assert.deepEqual(steps.filter((s) => s.failed), [], JSON.stringify(steps));
  assert.ok(steps.some((s) => s.text.includes(body.websocket)), `the card connected to ${body.websocket}: ${JSON.stringify(steps)}`);
  assert.ok(steps.some((s) => /MSG hello: "Hello World!"/.test(s.text)), JSON.stringify(steps));
});
