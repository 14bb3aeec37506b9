// The static server the other tests use: MIME types (the browser only stream-compiles
// application/wasm), the single-page-app fallback for deep links, 404 for missing assets, caching
// only what a build names by its hash, and no way out of the served folder.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";

import { serveStatic } from "./serve.mjs";

let dir;
let web;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "via-e2e-serve-"));
  writeFileSync(path.join(dir, "index.html"), "<!doctype html><title>app</title>");
  writeFileSync(path.join(dir, "app-1234_bg.wasm"), Buffer.from([0, 97, 115, 109, 1, 0, 0, 0]));
  writeFileSync(path.join(dir, "app-1234.js"), "export default 1;");
  writeFileSync(path.join(dir, "main.css"), "body{}");
  // As scripts/build_app.sh and trunk name them: the build's hash in the name.
  writeFileSync(path.join(dir, "via_bg-0123456789abcdef.wasm"), Buffer.from([0, 97, 115, 109, 1, 0, 0, 0]));
  writeFileSync(path.join(dir, "via-0123456789abcdef_bg.wasm"), Buffer.from([0, 97, 115, 109, 1, 0, 0, 0]));
  writeFileSync(path.join(dir, "via-0123456789abcdef.js"), "export default 1;");
  writeFileSync(path.join(dir, "main-0123456789abcdef.css"), "body{}");
  web = await serveStatic(dir);
});

after(async () => {
  await web?.close();
  rmSync(dir, { recursive: true, force: true });
});

async function get(p) {
  const res = await fetch(web.url + p);
  return {
    status: res.status,
    type: res.headers.get("content-type"),
    cache: res.headers.get("cache-control"),
    body: await res.text(),
  };
}

test("serves files with their MIME types", async () => {
  assert.equal((await get("/app-1234_bg.wasm")).type, "application/wasm");
  assert.match((await get("/app-1234.js")).type, /^text\/javascript/);
  assert.match((await get("/main.css")).type, /^text\/css/);
  const index = await get("/");
  assert.equal(index.status, 200);
  assert.match(index.type, /^text\/html/);
});

test("deep links get index.html; missing assets are 404", async () => {
  for (const p of ["/chat", "/config", "/no/such/page?x=1"]) {
    const res = await get(p);
    assert.equal(res.status, 200, p);
    assert.match(res.body, /<title>app<\/title>/, p);
  }
  assert.equal((await get("/missing.js")).status, 404);
  assert.equal((await get("/missing_bg.wasm")).status, 404);
});

test("a file named by its build's hash is kept for good; index.html and anything else never", async () => {
  for (const p of ["/via_bg-0123456789abcdef.wasm", "/via-0123456789abcdef_bg.wasm", "/via-0123456789abcdef.js", "/main-0123456789abcdef.css"]) {
    const res = await get(p);
    assert.equal(res.status, 200, p);
    assert.equal(res.cache, "public, max-age=31536000, immutable", p);
  }
  // index.html names the current build's files: a rebuilt app must be what the next load gets.
  for (const p of ["/", "/index.html", "/chat", "/main.css", "/app-1234.js", "/app-1234_bg.wasm"]) {
    assert.equal((await get(p)).cache, "no-store", p);
  }
});

test("nothing outside the folder", async () => {
  for (const p of ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/..%2f..%2fetc%2fpasswd"]) {
    const res = await get(p);
    assert.ok(!/root:/.test(res.body), p);
  }
  assert.equal(web.url.startsWith("http://127.0.0.1:"), true);
});
