// A tiny static server for a trunk-built dist folder, for the end-to-end tests (and by hand).
//
//   node e2e/serve.mjs <dist-dir> [port]      # prints "serving <dir> at http://127.0.0.1:<port>/"
//
// Loopback only. Correct MIME types (application/wasm included, so the browser can stream-compile
// the module). Single-page app fallback: a path that is not a file and does not look like one
// (no extension, e.g. /chat) gets index.html, so deep links load on refresh; a missing asset is a
// 404. A file whose name carries its build's hash (`via_bg-<16 hex>.wasm`: scripts/build_app.sh,
// trunk) never changes, so the browser may keep it for good and skip fetching and compiling it
// again on the next visit; anything else (index.html, which names the current build's files) is
// fetched every time, so a rebuilt app is always what the browser gets.

import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

const MIME = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".wasm": "application/wasm",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".jpg": "image/jpeg",
  ".jpeg": "image/jpeg",
  ".gif": "image/gif",
  ".webp": "image/webp",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
};

/** A name with a build's hash in it: `<name>-<16 hex digits>.<ext>`. */
const HASHED = /-[0-9a-f]{16}(_bg)?\.(js|wasm|css)$/;

async function fileAt(file) {
  try {
    const s = await stat(file);
    return s.isFile() ? s : null;
  } catch {
    return null;
  }
}

/**
 * Serves `dir` on 127.0.0.1:`port` (0: a free port).
 * Resolves to { url, port, close() } once listening; close() also ends open connections.
 */
export async function serveStatic(dir, { port = 0, log = false } = {}) {
  const root = path.resolve(dir);
  const index = path.join(root, "index.html");
  if (!(await fileAt(index))) {
    throw new Error(`no index.html in ${root}: build the app first (trunk build --release --dist ${dir})`);
  }

  const server = http.createServer(async (req, res) => {
    try {
      if (req.method !== "GET" && req.method !== "HEAD") {
        res.writeHead(405, { Allow: "GET, HEAD" }).end();
        return;
      }
      let pathname;
      try {
        pathname = decodeURIComponent(new URL(req.url, "http://localhost").pathname);
      } catch {
        res.writeHead(400).end("bad request");
        return;
      }
      // Resolve inside root only (no ../ escapes).
      let file = path.join(root, path.normalize(pathname));
      if (file !== root && !file.startsWith(root + path.sep)) {
        res.writeHead(403).end("forbidden");
        return;
      }
      let info = await fileAt(file);
      if (!info && pathname.endsWith("/")) {
        file = path.join(file, "index.html");
        info = await fileAt(file);
      }
      if (!info) {
        if (path.extname(pathname) !== "") {
          res.writeHead(404, { "Content-Type": "text/plain; charset=utf-8" }).end("not found");
          if (log) console.log(`404 ${pathname}`);
          return;
        }
        file = index; // SPA route such as /chat
        info = await fileAt(file);
      }
      res.writeHead(200, {
        "Content-Type": MIME[path.extname(file).toLowerCase()] ?? "application/octet-stream",
        "Content-Length": info.size,
        "Cache-Control": HASHED.test(path.basename(file)) ? "public, max-age=31536000, immutable" : "no-store",
      });
      if (req.method === "HEAD") {
        res.end();
        return;
      }
      createReadStream(file)
        .on("error", () => res.destroy())
        .pipe(res);
      if (log) console.log(`200 ${pathname}`);
    } catch (e) {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(e));
    }
  });

  await new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", resolve);
  });
  const actual = server.address().port;
  return {
    url: `http://127.0.0.1:${actual}`,
    port: actual,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections?.();
      }),
  };
}

// Run as a script: node e2e/serve.mjs <dist-dir> [port]
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [dir, port] = process.argv.slice(2);
  if (!dir) {
    console.error("usage: node e2e/serve.mjs <dist-dir> [port]");
    process.exit(2);
  }
  const { url, close } = await serveStatic(dir, { port: Number(port ?? 0), log: true });
  console.log(`serving ${path.resolve(dir)} at ${url}/`);
  const stop = () => close().then(() => process.exit(0));
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
