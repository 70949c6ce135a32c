// Opens an HTML report (`pulse report --html`) in headless Chromium and
// uses it as a reader would, by real clicks and typing:
//
// - every column of every table is clicked twice: after the first click
//   its values must be in order (figures most first, by their raw value in
//   `data-v`; text from A), after the second in the reverse order, the
//   rows the same rows;
// - each table's filter box, given a word from its first row, must keep
//   exactly the rows holding it; given text no row holds, hide them all and
//   say so; emptied, show them all again;
// - in each flamegraph, a click on a frame must zoom it to the full width,
//   and "Reset zoom" restore every frame;
// - the page must log no console error (a Content-Security-Policy
//   violation is one), throw nothing, open no dialog, and set no
//   `window.__pwned` (what the hostile session's names try).
//
// Prints one line of JSON:
//
//   {"title": str, "tables": [{"id", "rows", "columns", "sorted", "filtered"}],
//    "flamegraphs": [{"id", "frames", "zoomed": name, or null where every
//    frame is the whole width}], "text": str,
//    "command": str, "failures": [...], "console_errors": [...],
//    "page_errors": [...], "dialogs": [...], "pwned": bool}
//
// and exits non-zero when anything failed.
//
// usage: node html.mjs FILE.html [--screenshot OUT.png]
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { finish, run, withPage } from "./chromium.mjs";

const collator = new Intl.Collator("en", { numeric: true, sensitivity: "base" });

// Whether `keys` are in order: figures (numbers, missing as -Infinity)
// most first when `descending`, text by the page's collation.
function ordered(keys, numeric, descending) {
  for (let i = 1; i < keys.length; i++) {
    const c = numeric
      ? Math.sign(keys[i - 1] - keys[i])
      : collator.compare(keys[i - 1], keys[i]);
    if (descending ? c < 0 : c > 0) {
      return false;
    }
  }
  return true;
}

// The table's rows as the page shows them: each cell's sort key, and the
// row's text (to compare the rows as a set).
async function rows(page, id) {
  return page.$eval(`#${id}`, (table) => {
    const heads = Array.from(table.tHead.rows[0].cells);
    return Array.from(table.tBodies[0].rows).map((r) => ({
      hidden: r.hidden,
      text: r.textContent,
      keys: heads.map((th, i) => {
        const cell = r.cells[i];
        const v = cell ? cell.getAttribute("data-v") : null;
        if (th.classList.contains("n") || th.classList.contains("k")) {
          const n = v === null || v === "" ? NaN : Number(v);
          return Number.isNaN(n) ? null : n;
        }
        return v !== null ? v : cell ? cell.textContent : "";
      }),
    }));
  });
}

async function checkSorting(page, id, failures) {
  const heads = await page.$$eval(`#${id} thead th`, (ths) =>
    ths.map((th) => ({
      name: th.textContent,
      numeric: th.classList.contains("n") || th.classList.contains("k"),
    })),
  );
  const before = await rows(page, id);
  const texts = before.map((r) => r.text).sort().join("\n");
  let sorted = 0;
  for (const [col, head] of heads.entries()) {
    const th = page.locator(`#${id} thead th`).nth(col);
    // Figures most first, then least; text from A, then from Z.
    const orders = head.numeric ? [true, false] : [false, true];
    for (const [click, descending] of orders.entries()) {
      await th.click();
      const after = await rows(page, id);
      const keys = after.map((r) => {
        const k = r.keys[col];
        return head.numeric ? (k === null ? -Infinity : k) : k;
      });
      const aria = await th.getAttribute("aria-sort");
      const want = descending ? "descending" : "ascending";
      if (!ordered(keys, head.numeric, descending) || aria !== want) {
        failures.push(
          `${id}: column ${head.name}, click ${click + 1}: not ${want} (aria-sort ${aria}): ${JSON.stringify(keys.slice(0, 12))}`,
        );
      }
      if (after.map((r) => r.text).sort().join("\n") !== texts) {
        failures.push(`${id}: column ${head.name}: sorting changed the rows`);
      }
    }
    sorted += 1;
  }
  return sorted;
}

async function checkFilter(page, id, failures) {
  const box = page.locator(`#${id}`).locator("xpath=ancestor::div[@class='tbl']//input[@class='filter']");
  const empty = page.locator(`#${id}`).locator("xpath=ancestor::div[@class='tbl']/p[@class='empty']");
  const all = await rows(page, id);
  // A word of the first row's first cell with some length to it.
  const first = await page.$eval(`#${id} tbody tr td`, (td) => td.textContent);
  const word = (first.match(/[A-Za-z_][A-Za-z0-9_]{2,}/) || [first.trim().slice(0, 4)])[0];
  await box.fill(word);
  const kept = await rows(page, id);
  const want = all.map((r) => r.text.toLowerCase().includes(word.toLowerCase()));
  const got = kept.map((r) => !r.hidden);
  const right = want.length === got.length && want.every((w, i) => w === got[i]);
  if (!right || !got.some((g) => g)) {
    failures.push(`${id}: filter ${JSON.stringify(word)} kept ${JSON.stringify(got)}, wanted ${JSON.stringify(want)}`);
  }
  await box.fill("no row holds this: ~~~");
  const none = await rows(page, id);
  if (none.some((r) => !r.hidden) || !(await empty.isVisible())) {
    failures.push(`${id}: a filter no row matches left rows shown or said nothing`);
  }
  await box.fill("");
  const back = await rows(page, id);
  if (back.some((r) => r.hidden) || (await empty.isVisible())) {
    failures.push(`${id}: an empty filter did not show every row again`);
  }
  return { word, kept: got.filter((g) => g).length, of: got.length };
}

// Clicks a frame of the flamegraph in `figure` (the widest narrower than
// the whole, or the widest under three quarters of it where there is one
// of at least a twentieth), checks it then fills the width, and that
// "Reset zoom" brings every frame back to where it was.
async function checkZoom(page, figure, failures) {
  const svg = page.locator(`#${figure} svg.flamegraph`);
  const frames = await svg.locator("g.f").evaluateAll((gs) =>
    gs.map((g) => ({
      name: g.dataset.n,
      w: parseFloat(g.dataset.w),
      rect: parseFloat(g.querySelector("rect").getAttribute("width")),
    })),
  );
  const widest = (most) =>
    frames.reduce((best, f, i) => (i > 0 && f.w >= 1 && f.w < most && (best < 0 || f.w > frames[best].w) ? i : best), -1);
  const middling = widest(900);
  const pick = middling >= 0 && frames[middling].w >= 60 ? middling : widest(1199);
  if (pick < 0) {
    // Every frame is the whole width (one stack): nothing to zoom into.
    // The caller says where it needs a zoom.
    return { id: figure, frames: frames.length, zoomed: null };
  }
  const frame = svg.locator("g.f").nth(pick);
  await frame.click();
  const zoomed = await frame.evaluate((g) => {
    const svg = g.ownerSVGElement;
    return {
      width: parseFloat(g.querySelector("rect").getAttribute("width")),
      shown: g.querySelector("rect").getBoundingClientRect().width,
      whole: svg.getBoundingClientRect().width,
      reset: svg.querySelector(".unzoom").getAttribute("visibility"),
    };
  });
  if (Math.abs(zoomed.width - 1199.5) > 0.01 || zoomed.shown < 0.97 * zoomed.whole) {
    failures.push(`${figure}: ${frames[pick].name} zoomed to ${JSON.stringify(zoomed)}, not the full width`);
  }
  if (zoomed.reset !== "visible") {
    failures.push(`${figure}: no Reset zoom after a zoom`);
  }
  await svg.locator(".unzoom").click();
  const after = await svg.locator("g.f").evaluateAll((gs) =>
    gs.map((g) => parseFloat(g.querySelector("rect").getAttribute("width"))),
  );
  const restored = after.every((w, i) => Math.abs(w - Math.max(frames[i].w - 0.5, 0.1)) < 0.01);
  const reset = await svg.locator(".unzoom").getAttribute("visibility");
  if (!restored || reset !== "hidden") {
    failures.push(`${figure}: Reset zoom did not restore the frames (Reset zoom ${reset})`);
  }
  return { id: figure, frames: frames.length, zoomed: frames[pick].name };
}

async function main() {
  const file = process.argv[2];
  const shot = process.argv.indexOf("--screenshot");
  const screenshot = shot > 0 ? process.argv[shot + 1] : null;
  if (!file || !existsSync(file)) {
    finish({ error: `usage: node html.mjs FILE.html [--screenshot OUT.png] (no file ${file ?? ""})` }, true);
    return;
  }
  const report = await withPage(async (page, problems) => {
    const dialogs = [];
    page.on("dialog", async (d) => {
      dialogs.push(`${d.type()}: ${d.message()}`);
      await d.dismiss();
    });
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(pathToFileURL(resolve(file)).href, { waitUntil: "load" });
    const failures = [];
    const ids = await page.$$eval("table.sortable", (ts) =>
      ts.map((t) => ({ id: t.id, rows: t.tBodies[0].rows.length, columns: t.tHead.rows[0].cells.length })),
    );
    const tables = [];
    for (const t of ids) {
      const entry = { ...t, sorted: 0, filtered: null };
      if (t.rows > 1) {
        entry.sorted = await checkSorting(page, t.id, failures);
        entry.filtered = await checkFilter(page, t.id, failures);
      }
      tables.push(entry);
    }
    const figures = await page.$$eval("figure", (fs) =>
      fs.filter((f) => f.querySelector("svg.flamegraph")).map((f) => f.id),
    );
    const flamegraphs = [];
    for (const f of figures) {
      flamegraphs.push(await checkZoom(page, f, failures));
    }
    const seen = await page.evaluate(() => ({
      title: document.title,
      command: document.querySelector("h1 code").textContent,
      text: document.body.innerText.slice(0, 200_000),
      pwned: window.__pwned !== undefined,
    }));
    if (screenshot) {
      // The top of the page as it opens (header, recommendations, memory),
      // 1280 pixels wide and at most 1600 high.
      await page.reload({ waitUntil: "load" });
      await page.evaluate(() => window.scrollTo(0, 0));
      const height = await page.evaluate(() => document.documentElement.scrollHeight);
      await page.screenshot({
        path: screenshot,
        fullPage: true,
        clip: { x: 0, y: 0, width: 1280, height: Math.min(height, 1600) },
      });
    }
    return {
      ...seen,
      tables,
      flamegraphs,
      failures,
      dialogs,
      console_errors: problems.console,
      page_errors: problems.page,
    };
  });
  const failed =
    report.failures.length > 0 ||
    report.dialogs.length > 0 ||
    report.pwned ||
    report.console_errors.length > 0 ||
    report.page_errors.length > 0;
  finish(report, failed);
}

run(main);
