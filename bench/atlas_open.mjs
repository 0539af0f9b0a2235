// An atlas in Debian's chromium (playwright-core, offline): time to open it, then the matrix view's
// paint (every head sampled, all points drawn, longest frame) and the single view's frame time, by
// the atlas's own measuring hooks (those of web/test/atlas.mjs). For atlases of real runs, e.g. the
// 10,000-token qk of README's performance section.
// Usage: node bench/atlas_open.mjs ATLAS.html
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const [html] = process.argv.slice(2);
const require = createRequire(path.resolve('web/package.json'));
const { chromium } = require('playwright-core');
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: ['--no-sandbox'] });
try {
  const context = await browser.newContext({ offline: true, viewport: { width: 1280, height: 860 } });
  const page = await context.newPage();
  const t0 = Date.now();
  await page.goto('file://' + path.resolve(html), { timeout: 300000 });
  await page.waitForFunction(() => window.attnscopeAtlas || window.attnscopeError, null, { timeout: 300000 });
  const err = await page.evaluate(() => window.attnscopeError ?? null);
  if (err) throw new Error(`the atlas failed to start: ${err}`);
  const openMs = Date.now() - t0;
  const mm = await page.evaluate(() => window.attnscopeAtlas.measureMatrix());
  const p = await page.evaluate(() => window.attnscopeAtlas.tileClientPoint(0, 0));
  await page.mouse.click(p.x, p.y);
  const single = await page.evaluate(() => window.attnscopeAtlas.measureFrames(20, false));
  const f = (x) => x.toFixed(0);
  console.log(`${path.basename(html)} (${(fs.statSync(html).size / 1e6).toFixed(0)} MB): opened in ${(openMs / 1000).toFixed(1)} s; ` +
    `matrix view: every head sampled after ${f(mm.sampleMs)} ms, all ${mm.points.toLocaleString('en')} points after ${f(mm.fullMs)} ms ` +
    `over ${mm.frames} frames (longest ${f(mm.worstFrameMs)} ms); single view ${f(single)} ms per frame`);
} finally {
  await browser.close();
}
