// Chromium for the end-to-end tests and the benchmark: its flags, and a launch that survives
// Chromium dying while it starts.

import { chromium } from "playwright-core";

/** The flags every Chromium of the tests runs with (the closed network, no first-run noise). */
export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/**
 * Chromium (`CHROMIUM`, default Debian's /usr/bin/chromium), launched again (up to 3 tries)
 * when it dies before it answers: Debian's Chromium now and then ends in SIGSEGV during
 * start-up, before any page exists, which says nothing of the app. Each failed try is printed,
 * so that a pattern shows in the logs.
 */
export async function launchChromium(args, options = {}) {
  const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
  for (let attempt = 1; ; attempt++) {
    try {
      return await chromium.launch({ ...options, executablePath, args });
    } catch (e) {
      if (attempt >= 3) throw e;
      const why = String(e?.message ?? e).match(/signal=\w+|exitCode=\d+/g)?.join(" ") ?? "no exit status";
      console.error(`Chromium did not start (try ${attempt} of 3: ${why}); starting it again`);
    }
  }
}
