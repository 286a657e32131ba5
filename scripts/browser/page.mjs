// page.mjs URL SHOT.png PROBE.js: loads URL in Debian's chromium, headless,
// through playwright-core (a download of Playwright's own browser fails
// on this machine), runs PROBE.js in the page, saves a full-page
// screenshot to SHOT.png and prints, as one JSON object, what the probe
// returned (result) and the page's errors (errors: uncaught exceptions,
// console errors, a failed load). PROBE.js is the body of a function run
// in the page: it returns any JSON value. The browser tests in Go call
// this (labtest.Browser) and assert on the JSON.
//
// CHROMIUM overrides the browser's path (/usr/bin/chromium).
import { readFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const [url, shot, probeFile] = process.argv.slice(2);
if (!url || !shot || !probeFile) {
  console.error('usage: node page.mjs URL SHOT.png PROBE.js');
  process.exit(2);
}
const probe = readFileSync(probeFile, 'utf8');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // Root runs the tests: chromium refuses its sandbox to root. The rest
  // keep it from calling out of this machine's closed network at start.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const errors = [];
let result = null;
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  const resp = await page.goto(url, { waitUntil: 'load', timeout: 30000 });
  if (resp && !resp.ok()) errors.push(`load: HTTP ${resp.status()}`);
  result = await page.evaluate(new Function(probe));
  // A full-page screenshot of a bare SVG document never ends (chromium
  // 156): the viewport is the whole of one that fits it.
  const html = await page.evaluate(() => document.contentType === 'text/html');
  await page.screenshot({ path: shot, fullPage: html });
} catch (e) {
  errors.push(`driver: ${e.message}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify({ result, errors }));
