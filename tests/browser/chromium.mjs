// Debian's Chromium, driven by playwright-core (which downloads no browser
// of its own), headless with a fresh profile: shared by dh_view.mjs and
// svg.mjs.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

export const EXECUTABLE = process.env.CHROMIUM || "/usr/bin/chromium";

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

// Runs `body(page, problems)` in a fresh headless Chromium, then closes it
// and removes its profile. `problems.console` collects the page's console
// errors, `problems.page` its uncaught exceptions.
export async function withPage(body) {
  const profile = mkdtempSync(join(tmpdir(), "pulse-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: EXECUTABLE,
    headless: true,
    args: ARGS,
    // The viewer formats numbers with the default locale: fix it, so that
    // the thousands separator is the comma the parsers expect.
    locale: "en-US",
    timeout: 60_000,
  });
  const problems = { console: [], page: [] };
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("console", (msg) => {
      if (msg.type() === "error") {
        problems.console.push(msg.text());
      }
    });
    page.on("pageerror", (err) => problems.page.push(String(err)));
    return await body(page, problems);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

// Prints `report` as one line of JSON and exits, non-zero when `failed`.
export function finish(report, failed) {
  process.stdout.write(JSON.stringify(report) + "\n");
  process.exitCode = failed ? 1 : 0;
}

// Runs `main`, reporting any exception of the harness itself as an error.
export function run(main) {
  main().catch((err) => {
    finish({ error: `harness: ${err && err.stack ? err.stack : err}` }, true);
  });
}
