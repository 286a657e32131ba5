// page.mjs URL SHOT.png PROBE.js|DRIVER.mjs: loads URL in Debian's
// chromium, headless, through playwright-core (a download of Playwright's
// own browser fails on this machine), runs the probe, saves a full-page
// screenshot to SHOT.png and prints, as one JSON object, what the probe
// returned (result) and the page's errors (errors: uncaught exceptions,
// console errors, a failed load). PROBE.js is the body of a function run
// in the page: it returns any JSON value. DRIVER.mjs instead exports a
// default async function that gets Playwright's page — to click with the
// mouse, type, wait for what the page shows — and returns a JSON value.
// The browser tests in Go call this (labtest.Browser) and assert on the
// JSON.
//
// CHROMIUM overrides the browser's path (/usr/bin/chromium).
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const [url, shot, probeFile] = process.argv.slice(2);
if (!url || !shot || !probeFile) {
  console.error('usage: node page.mjs URL SHOT.png PROBE.js');
  process.exit(2);
}
const driver = probeFile.endsWith('.mjs');
const probe = driver ? '' : readFileSync(probeFile, 'utf8');
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  // Root runs the tests: chromium refuses its sandbox to root. The rest
  // keep it from calling out of this machine's closed network at start.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const errors = [];
let result = null;
let page = null;
try {
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}${m.location().url ? ' (' + m.location().url + ')' : ''}`);
  });
  const resp = await page.goto(url, { waitUntil: 'load', timeout: 30000 });
  if (resp && !resp.ok()) errors.push(`load: HTTP ${resp.status()}`);
  if (driver) {
    const mod = await import(pathToFileURL(probeFile).href);
    result = await mod.default(page);
  } else {
    result = await page.evaluate(new Function(probe));
  }
} catch (e) {
  errors.push(`driver: ${e.message}`);
}
// The screenshot, of a page that did what it should or of one that did
// not (what it showed when the driver gave up is the evidence). A
// full-page screenshot of a bare SVG document never ends (chromium 156):
// the viewport is the whole of one that fits it.
try {
  if (page) {
    const html = await page.evaluate(() => document.contentType === 'text/html');
    await page.screenshot({ path: shot, fullPage: html });
  }
} catch (e) {
  errors.push(`screenshot: ${e.message}`);
} finally {
  await browser.close();
}
console.log(JSON.stringify({ result, errors }));
