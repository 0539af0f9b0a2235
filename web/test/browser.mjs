// Browser tests of the exported views: Debian's chromium driven by playwright-core, the network
// off. For each family the test writes a view with the attnscope binary, opens it from disk and
// uses it as a person would: switch layer, toggle and solo heads, hover tokens, open the neuron
// computation, open a model-view thumbnail, export PNG and SVG, switch theme and layout, reload
// from a shared URL. Any request other than the file itself fails the test.
// Environment: ATTNSCOPE_BIN (the binary), ATTNSCOPE_TEST_DATA (ctest's fixture folder),
// ATTNSCOPE_WEB_OUT (where files and screenshots go).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launch, openOffline, frame } from './page.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../..');
const BIN = process.env.ATTNSCOPE_BIN ?? path.join(root, 'build/attnscope');
const DATA = process.env.ATTNSCOPE_TEST_DATA ?? path.join(root, 'build/testdata');
const OUT = process.env.ATTNSCOPE_WEB_OUT ?? path.join(root, 'build/web-test');
const SHOTS = path.join(OUT, 'screenshots');
fs.mkdirSync(SHOTS, { recursive: true });

const attnscope = (...args) => execFileSync(BIN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

// A minimal safetensors reader (F32 only) for the reference values.
function readDump(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const base = 8 + n;
  const tensors = {};
  for (const [name, t] of Object.entries(header)) {
    if (name === '__metadata__' || t.dtype !== 'F32') continue;
    const [b, e] = t.data_offsets;
    const bytes = buf.subarray(base + b, base + e);
    tensors[name] = { shape: t.shape, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)) };
  }
  return { tensors, meta: header.__metadata__ ?? {} };
}

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

// Opens a view file with the network off; every request and page error is recorded.
const open = (file, hash = '', viewport = { width: 1280, height: 860 }) =>
  openOffline(browser, file, { ready: 'attnscope', hash, viewport, acceptDownloads: true });

const state = (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.attnscope.ctx.state)));
const info = (page) => page.evaluate(() => document.getElementById('attnscope-info').textContent);

async function hoverToken(page, view, side, index) {
  const p = await page.evaluate(([v, s, i]) => window.attnscope.tokenClientPoint(v, s, i), [view, side, index]);
  assert.ok(p, `token ${side}${index} has a place on screen`);
  await frame(page);
  const q = await page.evaluate(([v, s, i]) => window.attnscope.tokenClientPoint(v, s, i), [view, side, index]);
  await page.mouse.move(q.x, q.y);
  await frame(page);
}

async function exportFile(page, button) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(button)]);
  const file = path.join(OUT, download.suggestedFilename());
  await download.saveAs(file);
  return file;
}

function pngSize(file) {
  const b = fs.readFileSync(file);
  assert.equal(b.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', `${file} is a PNG`);
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

// Every decoded weight equals the dump's within the 12-bit bound.
async function checkValues(page, dump, layers) {
  const d = readDump(dump);
  for (const l of layers) {
    const t = d.tensors[`attention.${l}`];
    const [H, N] = t.shape;
    const got = await page.evaluate(([l]) => {
      const a = window.attnscope.ctx.store.layer(l);
      return a.map((m) => Array.from(m));
    }, [l]);
    let worst = 0;
    for (let h = 0; h < H; ++h) for (let x = 0; x < N * N; ++x) worst = Math.max(worst, Math.abs(got[h][x] - t.data[h * N * N + x]));
    assert.ok(worst <= 0.5 / 4095 + 1e-6, `layer ${l}: worst difference ${worst} > 12-bit bound`);
  }
}

// The interactions every family goes through.
async function exercise(name, file, dump, { pair = false, image = false } = {}) {
  const v = await open(file);
  const { page, problems } = v;
  try {
    const s0 = await state(page);
    const meta = await page.evaluate(() => window.attnscope.ctx.meta);
    const N = meta.tokens.length, H = meta.n_heads, L = meta.n_layers;
    assert.equal(s0.view, 'head');
    assert.equal(s0.layer, L - 1, 'starts at the last layer');
    await checkValues(page, dump, [0, L - 1]);
    await page.screenshot({ path: path.join(SHOTS, `${name}-head.png`) });

    // Layer switch from the dropdown and from the keyboard; the URL hash follows.
    await page.selectOption('#attnscope-layer', '0');
    assert.equal((await state(page)).layer, 0);
    assert.match(page.url(), /layer=0/);
    await page.keyboard.press('ArrowDown');
    assert.equal((await state(page)).layer, 1 % L);
    await page.keyboard.press('ArrowUp');
    assert.equal((await state(page)).layer, 0);

    // Heads: click toggles, double-click solos, double-click the soloed head brings all back.
    await page.click('.swatch[data-head="0"]');
    assert.deepEqual((await state(page)).heads, Array.from({ length: H - 1 }, (_, k) => k + 1));
    await page.dblclick('.swatch[data-head="1"]');
    assert.deepEqual((await state(page)).heads, [1]);
    await page.click('.swatch[data-head="1"]'); // the last active head stays on
    assert.deepEqual((await state(page)).heads, [1]);
    await page.keyboard.press('ArrowRight');
    assert.deepEqual((await state(page)).heads, [2 % H]);
    await page.dblclick(`.swatch[data-head="${2 % H}"]`);
    assert.deepEqual((await state(page)).heads, Array.from({ length: H }, (_, k) => k));

    // Hover a query: only its lines, boxes on the keys, and the exact values in the panel.
    const q = Math.min(N - 1, pair ? 2 : 3);
    await hoverToken(page, 'head', 'q', q);
    assert.deepEqual(await page.evaluate(() => window.attnscope.hovered()), { side: 'q', index: q });
    const text = await info(page);
    const dumpL0 = readDump(dump).tensors['attention.0'];
    const row = Array.from(dumpL0.data.subarray((0 * N + q) * N, (0 * N + q) * N + N));
    const best = Math.max(...row);
    assert.ok(text.includes(`head 0: `), text);
    assert.ok(text.includes(best.toFixed(4)) || text.includes((best - 1e-4).toFixed(4)) || text.includes((best + 1e-4).toFixed(4)),
      `the panel shows head 0's largest weight ${best.toFixed(4)}: ${text}`);
    await page.screenshot({ path: path.join(SHOTS, `${name}-head-hover.png`) });
    await page.mouse.move(2, 300);
    await frame(page);
    assert.equal(await page.evaluate(() => window.attnscope.hovered()), null);

    // Pseudo-heads.
    await page.click('.agg[data-agg="mean"]');
    assert.equal((await state(page)).agg, 'mean');
    await page.click('.agg[data-agg="mean"]');
    assert.equal((await state(page)).agg, 'none');
    // The pseudo-layer "mean of layers" equals the mean of the dump's layers.
    await page.selectOption('#attnscope-layer', '-1');
    assert.equal((await state(page)).layer, -1);
    const meanRow = await page.evaluate(() => Array.from(window.attnscope.ctx.store.layer(-1)[0].subarray(0, window.attnscope.ctx.meta.tokens.length * 2)));
    const dd = readDump(dump).tensors;
    for (let x = 0; x < meanRow.length; ++x) {
      let m = 0;
      for (let l = 0; l < L; ++l) m += dd[`attention.${l}`].data[x] / L;
      assert.ok(Math.abs(meanRow[x] - m) <= 0.5 / 4095 + 1e-6, `mean of layers at ${x}: ${meanRow[x]} vs ${m}`);
    }
    await page.selectOption('#attnscope-layer', '0');

    if (pair) {
      await page.selectOption('#attnscope-filter', 'ab');
      assert.equal((await state(page)).filter, 'ab');
      await hoverToken(page, 'head', 'q', 1);
      const t = await info(page);
      // only sentence-B keys are listed
      const b0 = meta.sentence_b_start;
      const names = [...t.matchAll(/"([^"]*)" \d\.\d{4}/g)].map((m) => m[1]);
      const bTokens = new Set(meta.tokens.slice(b0));
      assert.ok(names.length > 0 && names.every((x) => bTokens.has(x)), `A→B lists B tokens only: ${t}`);
      assert.equal(await page.evaluate(() => window.attnscope.tokenClientPoint('head', 'q', window.attnscope.ctx.meta.sentence_b_start)), null);
      await page.screenshot({ path: path.join(SHOTS, `${name}-pair-ab.png`) });
      await page.selectOption('#attnscope-filter', 'all');
    }
    if (image) assert.ok(meta.tokens.includes('[CLS]') && meta.tokens.includes('r0c0'), 'patch labels');

    // Exports: PNG at print resolution, SVG with the tokens as escaped text.
    const png = await exportFile(page, '#attnscope-export-png');
    const size = await page.evaluate(() => window.attnscope.lastExport);
    const dims = pngSize(png);
    assert.equal(dims.width, size.width);
    const content = await page.evaluate(() => {
      const a = window.attnscope;
      return a.current().d.size();
    });
    assert.ok(dims.width >= 2.9 * content.width, `PNG ${dims.width} px wide for ${content.width} CSS px`);
    const svgFile = await exportFile(page, '#attnscope-export-svg');
    const svg = fs.readFileSync(svgFile, 'utf8');
    assert.match(svg, /^<\?xml/);
    assert.ok(svg.includes('<svg') && svg.includes('</svg>'));
    assert.ok(!/<script/i.test(svg) && !/<img/i.test(svg), 'no markup from tokens');
    const parsed = await page.evaluate((s) => {
      const d = new DOMParser().parseFromString(s, 'image/svg+xml');
      return { error: d.querySelector('parsererror')?.textContent ?? null, texts: Array.from(d.querySelectorAll('text')).map((t) => t.textContent) };
    }, svg);
    assert.equal(parsed.error, null, 'the SVG is well-formed XML');
    assert.ok(parsed.texts.length >= N, 'every token is text in the SVG');

    // Theme and layout.
    await page.click('#attnscope-theme');
    await frame(page);
    assert.equal(await page.evaluate(() => document.body.classList.contains('theme-dark')), true);
    const px = await page.evaluate(() => {
      const c = document.querySelector('.as-head-view canvas');
      return Array.from(c.getContext('2d').getImageData(c.width - 3, c.height - 3, 1, 1).data);
    });
    assert.ok(px[0] + px[1] + px[2] < 150, `dark background, found ${px}`);
    await page.click('#attnscope-layout');
    assert.equal((await state(page)).layout, 'horizontal');
    await hoverToken(page, 'head', 'q', q);
    assert.deepEqual(await page.evaluate(() => window.attnscope.hovered()), { side: 'q', index: q });
    await page.screenshot({ path: path.join(SHOTS, `${name}-horizontal-dark.png`) });
    await page.click('#attnscope-layout');
    await page.click('#attnscope-theme');

    // Model view: thumbnails for every head, click opens "Layer X, Head Y", click again closes.
    await page.click('#attnscope-tab-model');
    await page.waitForFunction((L) => window.attnscope.modelReady() === L, L);
    const c = await page.evaluate(() => window.attnscope.thumbClientPoint(1, 1));
    await frame(page);
    const c2 = await page.evaluate(() => window.attnscope.thumbClientPoint(1, 1));
    await page.mouse.click(c2.x, c2.y);
    assert.deepEqual((await state(page)).detail, [1, 1]);
    assert.equal(await page.isVisible('#attnscope-detail'), true);
    assert.equal(await page.textContent('#attnscope-detail-title'), 'Layer 1, Head 1');
    await hoverToken(page, 'detail', 'q', Math.min(N - 1, 2));
    assert.match(await info(page), /head 1: /);
    await page.screenshot({ path: path.join(SHOTS, `${name}-model.png`) });
    const c3 = await page.evaluate(() => window.attnscope.thumbClientPoint(1, 1));
    await page.mouse.click(c3.x, c3.y);
    assert.equal((await state(page)).detail, null);
    assert.equal(await page.isVisible('#attnscope-detail'), false);
    assert.ok(c.x > 0);
    const mpng = pngSize(await exportFile(page, '#attnscope-export-png'));
    assert.ok(mpng.width > 300);

    // Neuron view: a visible, labelled control opens the computation.
    await page.click('#attnscope-tab-neuron');
    assert.equal(await page.isVisible('#attnscope-expand'), true);
    assert.match(await page.textContent('#attnscope-expand'), /Show q·k computation/);
    await page.selectOption('#attnscope-nhead', String(H - 1));
    await hoverToken(page, 'neuron', 'q', q);
    await page.mouse.click((await page.evaluate((q) => window.attnscope.tokenClientPoint('neuron', 'q', q), q)).x,
      (await page.evaluate((q) => window.attnscope.tokenClientPoint('neuron', 'q', q), q)).y);
    assert.equal((await state(page)).nquery, q);
    await page.click('#attnscope-expand');
    assert.equal(await page.getAttribute('#attnscope-expand', 'aria-expanded'), 'true');
    const comp = await page.evaluate(() => {
      const c = window.attnscope.neuronComputation();
      return { keys: c.keys, softmax: Array.from(c.softmax) };
    });
    assert.equal(comp.keys.length, meta.causal ? q + 1 : N, 'causal models show no future keys');
    const s = await state(page);
    const stored = await page.evaluate(([l, h, i]) => Array.from(window.attnscope.ctx.store.layer(l)[h].subarray(i * window.attnscope.ctx.meta.tokens.length, (i + 1) * window.attnscope.ctx.meta.tokens.length)), [s.layer, s.nhead, q]);
    let worst = 0;
    comp.keys.forEach((j, t) => (worst = Math.max(worst, Math.abs(comp.softmax[t] - stored[j]))));
    // softmax(q·k/√d) from the stored q and k reproduces the model's attention (12-bit q/k).
    assert.ok(worst < 0.02, `softmax from q·k vs stored attention: ${worst}`);
    await page.screenshot({ path: path.join(SHOTS, `${name}-neuron.png`) });
    const npng = pngSize(await exportFile(page, '#attnscope-export-png'));
    assert.ok(npng.width > 300);

    // The hash restores the state on reload (a shared link).
    const url = page.url();
    assert.match(url, /view=neuron/);
    assert.match(url, /expand=1/);
    const w = await open(file, '#view=head&layer=0&heads=1&token=q' + q);
    assert.deepEqual((await state(w.page)).heads, [1]);
    assert.deepEqual(await w.page.evaluate(() => window.attnscope.hovered()), { side: 'q', index: q });
    assert.deepEqual(w.problems, []);
    await w.close();
    assert.deepEqual(problems, [], 'no request, no page error');
    return { worst };
  } finally {
    await v.close();
  }
}

function writeViews(name, model, input, extra = []) {
  const html = path.join(OUT, `${name}.html`), dump = path.join(OUT, `${name}.safetensors`);
  const args = model ? ['--model', model] : [];
  attnscope('view', ...args, ...input, ...extra, '-o', html);
  attnscope('dump', ...args, ...input, '--qkv', '-o', dump);
  return { html, dump };
}

test('GPT-2 (shipped): every interaction', async () => {
  const { html, dump } = writeViews('gpt2', null, ['--text', 'Call me Ishmael. Some years ago, never mind how long.']);
  await exercise('gpt2', html, dump);
  // A view made from the dump (q/k included) shows the same numbers.
  const fromDump = path.join(OUT, 'gpt2-from-dump.html');
  attnscope('view', '--from', dump, '-o', fromDump);
  const v = await open(fromDump);
  await checkValues(v.page, dump, [0, 1, 2, 3]);
  assert.deepEqual((await v.page.evaluate(() => window.attnscope.ctx.meta.views)), ['head', 'model', 'neuron']);
  await v.close();
});

test('BERT sentence pair: filters and neuron view', async () => {
  const model = path.join(DATA, 'bert_reference/bert_mlm_pair');
  const { html, dump } = writeViews('bert-pair', model, ['--text', 'Call me Ishmael.', '--text-b', 'The whale is white!']);
  await exercise('bert-pair', html, dump, { pair: true });
});

test('Llama (shipped, GQA + RoPE): neuron view from the engine q/k', async () => {
  const { html, dump } = writeViews('llama', path.join(root, 'models/llama-moby'), ['--text', 'Call me Ishmael. Some years ago']);
  await exercise('llama', html, dump);
});

test('ViT (shipped): patch tokens', async () => {
  const { html, dump } = writeViews('vit', path.join(root, 'models/vit-mnist'), ['--image', path.join(root, 'models/vit-mnist/samples/digit-7-0.png')]);
  await exercise('vit', html, dump, { image: true });
});

test('hostile tokens are text and execute nothing', async () => {
  const file = path.join(OUT, 'hostile.txt');
  fs.writeFileSync(file, 'a <script>window.__pwned=1</script> "><img src=x onerror="window.__pwned=2"> </script> \u202eevil\u202c \u0000 end');
  const html = path.join(OUT, 'hostile.html');
  attnscope('view', '--text-file', file, '--title', '<script>window.__pwned=3</script>', '-o', html);
  const raw = fs.readFileSync(html, 'utf8');
  assert.equal((raw.match(/<script/g) ?? []).length, 4 + 4 + 1 + 1, 'only the file\'s own script elements (meta, 4 attention, 4 q/k, viewer)');
  const v = await open(html);
  const { page } = v;
  assert.equal(await page.evaluate(() => window.__pwned ?? null), null);
  assert.equal(await page.evaluate(() => document.querySelectorAll('img').length), 0);
  assert.equal(await page.title(), '<script>window.__pwned=3</script> — attnscope');
  const meta = await page.evaluate(() => window.attnscope.ctx.meta);
  const joined = meta.tokens.join('');
  assert.ok(joined.includes('<script>') && joined.includes('onerror') && joined.includes('\u0000'));
  const k = meta.tokens.findIndex((t) => t.includes('\u0000'));
  await hoverToken(page, 'head', 'q', k);
  assert.match(await info(page), /\\x00/);
  const svg = fs.readFileSync(await exportFile(page, '#attnscope-export-svg'), 'utf8');
  assert.ok(!/<script|<img/i.test(svg));
  assert.ok(svg.includes('&lt;'));
  await page.screenshot({ path: path.join(SHOTS, 'hostile.png') });
  assert.equal(await page.evaluate(() => window.__pwned ?? null), null);
  assert.deepEqual(v.problems, []);
  await v.close();

  // Tokens from elsewhere (a dump written by Python, as in the README's recipe), whole and hostile.
  const dump = path.join(OUT, 'python.safetensors');
  execFileSync('/usr/bin/python3', [path.join(here, 'python_dump.py'), dump]);
  const html2 = path.join(OUT, 'python.html');
  attnscope('view', '--from', dump, '-o', html2);
  const w = await open(html2);
  const m2 = await w.page.evaluate(() => window.attnscope.ctx.meta);
  assert.equal(m2.tokens[1], '<script>window.__pwned=4</script>');
  assert.equal(m2.causal, false);
  assert.deepEqual(m2.views, ['head', 'model'], 'no q/k in the dump: no neuron view');
  await checkValues(w.page, dump, [0, 1]);
  await hoverToken(w.page, 'head', 'q', 4);
  assert.match(await info(w.page), /query 4 "\\u202eevil"/);
  await hoverToken(w.page, 'head', 'k', 2);
  assert.ok((await info(w.page)).includes('"><img src=x onerror="window.__pwned=5">'));
  await w.page.screenshot({ path: path.join(SHOTS, 'hostile-python.png') });
  assert.equal(await w.page.evaluate(() => window.__pwned ?? null), null);
  assert.equal(await w.page.evaluate(() => document.querySelectorAll('img').length), 0);
  assert.deepEqual(w.problems, []);
  await w.close();
});
