// Opens an SVG file in headless Chromium, as a browser tab does, and says
// whether Chromium's XML parser took it. On a parse error Chromium still
// shows a page: the part it read, with a <parsererror> element saying "This
// page contains the following errors". Prints one line of JSON:
//
//   {"parsed": bool, "error": string|null, "root": "svg", "elements": N,
//    "rects": N, "texts": N, "scripts": N, "text": "...",
//    "console_errors": [...], "page_errors": [...]}
//
// `text` is the document's text content (labels, titles), cut to 200 000
// characters, for the caller to look for names in. Exits non-zero on a
// parse error, a root that is not SVG, a console error or an uncaught
// exception (the flamegraph's scripts run).
//
// usage: node svg.mjs FILE.svg
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { finish, run, withPage } from "./chromium.mjs";

async function main() {
  const file = process.argv[2];
  if (!file || !existsSync(file)) {
    finish({ error: `usage: node svg.mjs FILE.svg (no file ${file ?? ""})` }, true);
    return;
  }
  const report = await withPage(async (page, problems) => {
    await page.goto(pathToFileURL(resolve(file)).href, { waitUntil: "load" });
    const seen = await page.evaluate(() => {
      const SVG = "http://www.w3.org/2000/svg";
      const errors = document.getElementsByTagNameNS("*", "parsererror");
      const root = document.documentElement;
      const count = (name) => document.getElementsByTagNameNS(SVG, name).length;
      const all = document.getElementsByTagName("*").length;
      const text = root ? root.textContent : "";
      let error = null;
      if (errors.length > 0) {
        error = errors[0].textContent.trim();
      } else if (!root || root.namespaceURI !== SVG || root.localName !== "svg") {
        error = `the document's root is ${root ? `<${root.localName}> in ${root.namespaceURI}` : "missing"}, not <svg>`;
      } else if (text.includes("This page contains the following errors")) {
        error = "Chromium's XML error page";
      }
      return {
        parsed: errors.length === 0,
        error,
        root: root ? root.localName : null,
        elements: all,
        rects: count("rect"),
        texts: count("text"),
        scripts: count("script"),
        text: text.slice(0, 200_000),
      };
    });
    return { ...seen, console_errors: problems.console, page_errors: problems.page };
  });
  const failed =
    report.error !== null || report.console_errors.length > 0 || report.page_errors.length > 0;
  finish(report, failed);
}

run(main);
