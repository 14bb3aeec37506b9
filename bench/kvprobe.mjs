// throwaway: a fresh page's first KV puts, profiled at 50 µs
import { createServer } from "node:http";
import { readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
const here = path.dirname(fileURLToPath(import.meta.url));
const [ws, client = "ours", n = "300", interval = "50"] = process.argv.slice(2);
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm" };
const server = createServer(async (req, res) => {
  const h = { "Cache-Control": "no-store", "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp" };
  let rel = decodeURIComponent(new URL(req.url, "http://x").pathname);
  try { const body = await readFile(path.join(here, rel)); h["Content-Type"] = TYPES[path.extname(rel)] ?? "application/octet-stream"; res.writeHead(200, h).end(body); } catch { res.writeHead(404, h).end(); }
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const url = `http://127.0.0.1:${server.address().port}`;
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", ...(process.env.XARGS ? process.env.XARGS.split(" ") : [])] });
const page = await browser.newPage();
await page.goto(`${url}/index.html?clients=${client}`);
await page.waitForFunction(() => window.benchReady || window.benchError);
const cdp = await page.context().newCDPSession(page);
await cdp.send("Profiler.enable");
await cdp.send("Profiler.setSamplingInterval", { interval: Number(interval) });
await cdp.send("Profiler.start");
const r = await page.evaluate(async ([client, ws, n]) => {
  const m = await window.loadClient(client);
  const t0 = performance.now() + performance.timeOrigin;
  const r = await m.kv_latencies(ws, "probe_" + Math.random().toString(16).slice(2, 8), n, 64);
  return { t0, put: Array.from(r.put), get: Array.from(r.get) };
}, [client, ws, Number(n)]);
const { profile } = await cdp.send("Profiler.stop");
await writeFile(`/tmp/kvprobe-${client}.cpuprofile`, JSON.stringify(profile));
await writeFile(`/tmp/kvprobe-${client}.json`, JSON.stringify(r));
const slow = r.put.filter((x) => x > 2).length;
const sorted = [...r.put].sort((a, b) => a - b);
console.log(client, "puts>2ms", slow, "p99", sorted[Math.floor(sorted.length * 0.99)].toFixed(2), "slow at", r.put.map((x, i) => (x > 2 ? `${i}:${x.toFixed(1)}` : null)).filter(Boolean).join(" "));
await browser.close();
server.close();
