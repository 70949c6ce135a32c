// Opens a DHAT JSON file in DHAT's own viewer (dh_view.html, as Debian's
// valgrind package ships it), in headless Chromium, the way a user does: the
// viewer's file <input> is given the file. Prints one line of JSON:
//
//   {"error": string|null, "totals": {...}, "console_errors": [...],
//    "page_errors": [...]}
//
// `error` is what the viewer put on the page instead of a profile (its
// `.error` span, e.g. "Error: data file contains a repeated location (1)"),
// or what kept this script from reading one. `totals` are the figures the
// viewer displays for its root program point, the whole profile, as shown:
// total bytes and blocks, bytes and blocks at t-gmax and at t-end; and the
// times t-gmax and t-end from its "Times" header, in the file's time unit.
// Exits non-zero on any error, console error or uncaught exception.
//
// usage: node dh_view.mjs FILE.json   (DH_VIEW=path/to/dh_view.html to use
// another copy of the viewer)
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { finish, run, withPage } from "./chromium.mjs";

const VIEWER = process.env.DH_VIEW || "/usr/libexec/valgrind/dh_view.html";

// "1,234,567" as the viewer prints it (en-US) → 1234567.
function number(s) {
  return Number(s.replaceAll(",", ""));
}

// The root program point's figures in the viewer's text. Its lines read:
//   Total:     1,234 bytes (100%, 5.6/s) in 78 blocks (100%, 9/s), avg size …
//   At t-gmax: 1,000 bytes (100%) in 3 blocks (100%), avg size …
//   At t-end:  0 bytes (0%) in 0 blocks (0%), avg size …
// and the "Times" header before it:
//   t-gmax: 1,234 µs (12.3% of program duration)
//   t-end:  9,999 µs
function parseTotals(text) {
  const root = text.indexOf("PP 1/1");
  if (root < 0) {
    return { problem: "no root program point (PP 1/1) on the page" };
  }
  const header = text.slice(0, root);
  const node = text.slice(root);
  const N = "([0-9][0-9,]*(?:\\.[0-9]+)?)";
  const pair = (label) =>
    node.match(new RegExp(`${label}\\s+${N} bytes \\([^)]*\\) in ${N} blocks`));
  const total = pair("Total:");
  const gmax = pair("At t-gmax:");
  const end = pair("At t-end:");
  const tg = header.match(new RegExp(`t-gmax:\\s+${N} `));
  const te = header.match(new RegExp(`t-end:\\s+${N} `));
  const missing = [
    ["Total", total],
    ["At t-gmax", gmax],
    ["At t-end", end],
    ["t-gmax time", tg],
    ["t-end time", te],
  ]
    .filter(([, m]) => !m)
    .map(([name]) => name);
  if (missing.length > 0) {
    return { problem: `the viewer's text has no ${missing.join(", ")} line` };
  }
  return {
    totals: {
      total_bytes: number(total[1]),
      total_blocks: number(total[2]),
      at_t_gmax_bytes: number(gmax[1]),
      at_t_gmax_blocks: number(gmax[2]),
      at_t_end_bytes: number(end[1]),
      at_t_end_blocks: number(end[2]),
      t_gmax: number(tg[1]),
      t_end: number(te[1]),
    },
  };
}

async function main() {
  const file = process.argv[2];
  if (!file || !existsSync(file)) {
    finish({ error: `usage: node dh_view.mjs FILE.json (no file ${file ?? ""})` }, true);
    return;
  }
  if (!existsSync(VIEWER)) {
    finish({ error: `no DHAT viewer at ${VIEWER} (apt-get install valgrind)` }, true);
    return;
  }
  const report = await withPage(async (page, problems) => {
    await page.goto(pathToFileURL(VIEWER).href, { waitUntil: "load" });
    await page.setInputFiles("input[type=file]", resolve(file));
    // The viewer reads the file, then either writes its `.error` span or
    // draws the tree and ends with its "Processing time" line.
    const outcome = await page
      .waitForFunction(
        () => {
          const error = document.querySelector(".error");
          if (error) {
            return { error: error.textContent };
          }
          const timings = document.querySelector(".timings p");
          const pre = document.querySelector("pre");
          if (timings && pre) {
            return { text: pre.textContent };
          }
          return null;
        },
        null,
        { timeout: 60_000, polling: 50 },
      )
      .then((handle) => handle.jsonValue())
      .catch((err) => ({ error: `the viewer showed neither a profile nor an error: ${err}` }));
    let error = outcome.error ?? null;
    let totals = null;
    if (outcome.text !== undefined) {
      const parsed = parseTotals(outcome.text);
      totals = parsed.totals ?? null;
      error = parsed.problem ?? null;
    }
    return {
      error,
      totals,
      console_errors: problems.console,
      page_errors: problems.page,
    };
  });
  const failed =
    report.error !== null || report.console_errors.length > 0 || report.page_errors.length > 0;
  finish(report, failed);
}

run(main);
