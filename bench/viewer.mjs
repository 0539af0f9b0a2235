// Viewer benchmark: views of a 12-layer, 12-head model at 128, 512 and 1,024 tokens, opened in
// Debian's chromium (playwright-core, offline). Per size: file size and bytes per weight, time to
// write it, time to the first drawn frame, and the time of the interactions (hover a token, switch
// layer, open the model view, open the neuron computation). Prints a Markdown table.
// Usage: node bench/viewer.mjs BIN CHECKPOINT OUT_DIR
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const [bin, ck, out] = process.argv.slice(2);
const require = createRequire(path.resolve('web/package.json'));
const { chromium } = require('playwright-core');
fs.mkdirSync(out, { recursive: true });

const sentence = 'It was the best of times, it was the worst of times, it was the age of wisdom. ';
const text = sentence.repeat(80);
const ntok = (t) => Number(execFileSync(bin, ['tokenize', '--model', ck, '--text', t]).toString().trim().split('\n').pop().split(' ')[0]);
function textOf(n) {
  // the longest prefix (in words) with at most n tokens
  const words = text.split(' ');
  let lo = 1, hi = words.length;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ntok(words.slice(0, mid).join(' ')) <= n) lo = mid;
    else hi = mid - 1;
  }
  return words.slice(0, lo).join(' ');
}

const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] });
const rows = [];
for (const n of [128, 512, 1024]) {
  const t = textOf(n);
  const file = path.join(out, `view-${n}.html`);
  const t0 = performance.now();
  execFileSync(bin, ['view', '--model', ck, '--text', t, '--view', 'all', '-o', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  const writeS = (performance.now() - t0) / 1000;
  const bytes = fs.statSync(file).size;
  const lean = path.join(out, `view-${n}-head-model.html`);
  execFileSync(bin, ['view', '--model', ck, '--text', t, '--view', 'head,model', '-o', lean], { stdio: ['ignore', 'ignore', 'pipe'] });
  const leanBytes = fs.statSync(lean).size;
  const meta = { L: 12, H: 12 };
  const tokens = ntok(t);
  const context = await browser.newContext({ offline: true, viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  await page.goto('file://' + file);
  await page.waitForFunction(() => window.attnscopeFirstFrame !== undefined, null, { timeout: 120000 });
  const first = await page.evaluate(() => window.attnscopeFirstFrame);
  const r = await page.evaluate(async () => {
    const a = window.attnscope;
    const n = a.ctx.meta.tokens.length;
    const hc = a.canvases.get('head');
    const time = (f) => { const t = performance.now(); f(); return performance.now() - t; };
    // hover: set the hovered token, write the exact values, draw the frame (as a mousemove does)
    const hovers = [];
    for (let k = 0; k < 20; ++k) {
      const i = Math.floor(((k + 0.5) * n) / 20);
      hovers.push(time(() => { a.head.hover = { side: 'q', index: i }; a.ctx.info(a.head.describe(a.head.hover)); hc.draw(); }));
    }
    a.head.hover = null;
    const scroll = [];
    for (let k = 0; k < 10; ++k) scroll.push(time(() => { hc.scroller.scrollTop = (k * hc.scroller.scrollHeight) / 10; hc.draw(); }));
    const layer = [];
    for (const l of [3, 7]) layer.push(time(() => { a.update({ layer: l }); hc.draw(); }));
    const t0 = performance.now();
    a.update({ view: 'model' });
    await new Promise((res) => { const chk = () => (a.modelReady() === a.ctx.meta.n_layers ? res() : setTimeout(chk, 5)); chk(); });
    a.canvases.get('model').draw();
    const model = performance.now() - t0;
    const neuron = time(() => { a.update({ view: 'neuron', nquery: n - 1, expand: true }); a.canvases.get('neuron').draw(); });
    const med = (v) => v.sort((x, y) => x - y)[Math.floor(v.length / 2)];
    return { hover: med(hovers), hoverMax: Math.max(...hovers), scroll: med(scroll), layer: Math.max(...layer), model, neuron,
             lines: a.headStats().lines, heap: performance.memory ? performance.memory.usedJSHeapSize / 2 ** 20 : null };
  });
  await context.close();
  const weights = meta.L * meta.H * tokens * tokens;
  rows.push({ tokens, bytes, perWeight: bytes / weights, leanBytes, leanPerWeight: leanBytes / weights, writeS, first, ...r });
  console.error(`${tokens} tokens done`);
}
await browser.close();
console.log('| tokens | file, head+model views | bytes/weight | file, all three views (+ q/k) | bytes/weight | write (s) | first frame (ms) | hover (ms, median / max) | scroll frame (ms) | layer switch (ms) | model view, all 144 heads (ms) | neuron view open (ms) | JS heap (MiB) |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
for (const r of rows)
  console.log(`| ${r.tokens} | ${(r.leanBytes / 1e6).toFixed(1)} MB | ${r.leanPerWeight.toFixed(2)} | ${(r.bytes / 1e6).toFixed(1)} MB | ${r.perWeight.toFixed(2)} | ${r.writeS.toFixed(2)} | ${r.first.toFixed(0)} | ${r.hover.toFixed(1)} / ${r.hoverMax.toFixed(1)} | ${r.scroll.toFixed(1)} | ${r.layer.toFixed(0)} | ${r.model.toFixed(0)} | ${r.neuron.toFixed(0)} | ${r.heap === null ? '-' : r.heap.toFixed(0)} |`);
