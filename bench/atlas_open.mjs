// An atlas in Debian's chromium (playwright-core, offline): time to open it, then the matrix view's
// paint (every head sampled, all points drawn, longest frame) and the single view's frame time, by
// the atlas's own measuring hooks (those of web/test/atlas.mjs). For atlases of real runs, e.g. the
// 10,000-token qk of README's performance section.
// Usage: node bench/atlas_open.mjs ATLAS.html
import fs from 'node:fs';
import path from 'node:path';
import { launch, openOffline } from '../web/test/page.mjs';

const [html] = process.argv.slice(2);
const browser = await launch();
try {
  const t0 = Date.now();
  const { page } = await openOffline(browser, html, { ready: 'attnscopeAtlas', timeout: 300000 });
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
