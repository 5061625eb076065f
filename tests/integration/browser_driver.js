// Drives Debian's /usr/bin/chromium (headless) through npm playwright-core for
// browser_test.py: one JSON request per line on stdin, one JSON answer per line on
// stdout ({"ok":true,"value":...} or {"error":"..."}). Never downloads a browser.
//
// Requests: {"op":"launch"} | {"op":"goto","url":U} | {"op":"eval","expr":JS} (a
// function body's expression, its value must be JSON) | {"op":"fill","selector":S,
// "value":V} | {"op":"click","selector":S} | {"op":"screenshot","path":P} |
// {"op":"logs"} (console messages and page errors so far) | {"op":"close"}.
"use strict";

const readline = require("readline");
const { chromium } = require("playwright-core");

const CHROMIUM = process.env.LIVEGATE_CHROMIUM || "/usr/bin/chromium";
const OP_TIMEOUT_MS = 15000;

let browser = null;
let page = null;
const logs = [];

async function handle(req) {
  switch (req.op) {
    case "launch":
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        // CI runs as root, where Chromium's sandbox cannot start.
        args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-proxy-server"],
        timeout: 30000,
      });
      page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
      page.setDefaultTimeout(OP_TIMEOUT_MS);
      page.on("console", (m) => logs.push(`console.${m.type()}: ${m.text()}`));
      page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
      page.on("requestfailed", (r) => logs.push(`requestfailed: ${r.url()} ${r.failure() && r.failure().errorText}`));
      return browser.version();
    case "goto": {
      const res = await page.goto(req.url, { waitUntil: "load" });
      return res ? res.status() : null;
    }
    case "eval":
      return await page.evaluate(`(${req.expr})`);
    case "fill":
      await page.fill(req.selector, req.value);
      return true;
    case "click":
      await page.click(req.selector);
      return true;
    case "screenshot":
      await page.screenshot({ path: req.path });
      return req.path;
    case "logs":
      return logs.slice(-200);
    case "close":
      if (browser) await browser.close();
      browser = null;
      return true;
    default:
      throw new Error(`unknown op ${JSON.stringify(req.op)}`);
  }
}

const rl = readline.createInterface({ input: process.stdin });
let chain = Promise.resolve();
rl.on("line", (line) => {
  chain = chain.then(async () => {
    let out;
    try {
      out = { ok: true, value: await handle(JSON.parse(line)) };
    } catch (e) {
      out = { error: String((e && e.stack) || e) };
    }
    process.stdout.write(JSON.stringify(out === undefined ? null : out) + "\n");
  });
});
rl.on("close", () => {
  chain.then(async () => {
    if (browser) await browser.close().catch(() => {});
    process.exit(0);
  });
});
