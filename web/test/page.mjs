// What the browser tests and benches share: Debian's chromium driven by playwright-core, and a
// page opened from disk with the network off.
import assert from 'node:assert/strict';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const launch = () =>
  chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });

// Two animation frames: what was drawn has reached the screen.
export const frame = (page) => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));

// Opens file (plus a URL hash) in a fresh offline context and waits for the global `ready` (or
// window.attnscopeError, which fails). Every request other than the file itself, page error and
// dialog is recorded in `problems`.
export async function openOffline(browser, file, { ready, hash = '', viewport = { width: 1280, height: 860 }, timeout = 30000, acceptDownloads = false }) {
  const context = await browser.newContext({ offline: true, viewport, acceptDownloads });
  const page = await context.newPage();
  const url = 'file://' + path.resolve(file);
  const problems = [];
  page.on('request', (r) => {
    if (r.url().split('#')[0] !== url) problems.push(`request: ${r.url()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    d.dismiss();
  });
  await page.goto(url + hash, { timeout });
  await page.waitForFunction((g) => window[g] || window.attnscopeError, ready, { timeout });
  const err = await page.evaluate(() => window.attnscopeError ?? null);
  assert.equal(err, null, `${path.basename(file)} failed to start: ${err}`);
  await frame(page);
  return { page, context, problems, close: () => context.close() };
}
