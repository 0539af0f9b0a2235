// Browser tests of the atlas (attnscope qk + view --from corpus.qk): Debian's chromium driven by
// playwright-core, the network off. The binary writes datasets from the shipped GPT-2, BERT and ViT
// and their atlases; the test opens them from disk and uses every view as a person would (open a
// head, hover, click a query, switch projection and 2-D/3-D, colour modes, search, the sentence and
// image views, linked selection), compares what the page shows with the .qk file read here, and
// measures the matrix view's frame time at full scale (12 x 12 heads x 20,000 points).
// Environment: ATTNSCOPE_BIN, ATTNSCOPE_WEB_OUT (where files and screenshots go).
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
const OUT = path.join(process.env.ATTNSCOPE_WEB_OUT ?? path.join(root, 'build/web-test'), 'atlas');
const SHOTS = path.join(OUT, 'screenshots');
fs.mkdirSync(SHOTS, { recursive: true });

const attnscope = (...args) => execFileSync(BIN, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

// --- safetensors, read and written here (independently of the C++ code) ---------------------------
function half(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
  return e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
}
function readSafetensors(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const base = 8 + n, t = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = info.data_offsets;
    const bytes = buf.subarray(base + b, base + e);
    let data;
    if (info.dtype === 'I32') data = Int32Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readInt32LE(4 * i));
    else if (info.dtype === 'F16') data = Float32Array.from({ length: bytes.length / 2 }, (_, i) => half(bytes.readUInt16LE(2 * i)));
    else if (info.dtype === 'F32') data = Float32Array.from({ length: bytes.length / 4 }, (_, i) => bytes.readFloatLE(4 * i));
    else data = bytes;
    t[name] = { shape: info.shape, data };
  }
  return { t, meta: header.__metadata__ ?? {} };
}
function toHalfBits(v) {
  const f = new Float32Array([v]), x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000, e = ((x >>> 23) & 255) - 112;
  if (e <= 0) return sign;
  if (e >= 31) return sign | 0x7c00;
  return sign | (e << 10) | ((x >> 13) & 1023);
}
function writeSafetensors(file, tensors, metadata) {
  const header = { __metadata__: metadata };
  let off = 0;
  const parts = [];
  for (const [name, { dtype, shape, data }] of Object.entries(tensors)) {
    let bytes;
    if (dtype === 'F16') bytes = Buffer.from(Uint16Array.from(data, toHalfBits).buffer);
    else if (dtype === 'I32') bytes = Buffer.from(Int32Array.from(data).buffer);
    else bytes = Buffer.from(Float32Array.from(data).buffer);
    header[name] = { dtype, shape, data_offsets: [off, off + bytes.length] };
    off += bytes.length;
    parts.push(bytes);
  }
  let h = Buffer.from(JSON.stringify(header));
  h = Buffer.concat([h, Buffer.alloc((8 - (h.length % 8)) % 8, 32)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h, ...parts]));
}

// --- the browser ------------------------------------------------------------------------------------
let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

const open = (file, viewport = { width: 1280, height: 860 }) =>
  openOffline(browser, file, { ready: 'attnscopeAtlas', viewport, timeout: 120000 });
const st = (page) => page.evaluate(() => JSON.parse(JSON.stringify(window.attnscopeAtlas.state)));
const A = (page, fn, arg) => page.evaluate(fn, arg);
// A hash of the WebGL canvas's pixels: changes when the picture changes.
const glHash = (page) =>
  A(page, () => {
    const gl = window.attnscopeAtlas['gl'].gl;
    const px = new Uint8Array(gl.drawingBufferWidth * gl.drawingBufferHeight * 4);
    gl.readPixels(0, 0, gl.drawingBufferWidth, gl.drawingBufferHeight, gl.RGBA, gl.UNSIGNED_BYTE, px);
    let h = 2166136261;
    for (let i = 0; i < px.length; i += 7) h = Math.imul(h ^ px[i], 16777619);
    return h >>> 0;
  });
const overlayInk = (page) =>
  A(page, () => {
    const c = document.getElementById('atlas-overlay');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) ++n;
    return n;
  });

const sentences = fs.readFileSync(path.join(root, 'data/moby-sentences.txt'), 'utf8').split('\n').filter((l) => l.trim());
const tokenText = (t) => t.replace(/^Ġ/, ' ').replace(/^▁/, ' ').replace(/^##/, '');

let gpt2 = null;
function gpt2Atlas() {
  if (gpt2) return gpt2;
  const corpus = path.join(OUT, 'gpt2-corpus.txt');
  fs.writeFileSync(corpus, ['Call me Ishmael. The whale </script><img src=x onerror=alert(1)> & "quotes"', ...sentences.slice(0, 18)].join('\n') + '\n');
  const qk = path.join(OUT, 'gpt2.qk'), html = path.join(OUT, 'gpt2-atlas.html');
  attnscope('qk', '--model', path.join(root, 'models/gpt2-moby'), '--corpus', corpus, '--max-tokens', '400', '--top-k', '6', '-o', qk);
  attnscope('view', '--from', qk, '-o', html);
  gpt2 = { qk: readSafetensors(qk), html };
  return gpt2;
}

test('matrix view: every head of every layer drawn, a click opens the head', async () => {
  const { html, qk } = gpt2Atlas();
  const v = await open(html);
  const { page, problems } = v;
  try {
    const s = await st(page);
    assert.equal(s.view, 'matrix');
    assert.equal(s.method, 'umap');
    const L = 4, H = 4;
    for (let l = 0; l < L; ++l)
      for (let h = 0; h < H; ++h) {
        const ink = await A(page, ([l, h]) => window.attnscopeAtlas.inkedPixels(l, h), [l, h]);
        assert.ok(ink > 100, `tile (${l}, ${h}) has ${ink} drawn pixels`);
      }
    await page.screenshot({ path: path.join(SHOTS, 'atlas-matrix.png') });
    const mm = await A(page, () => window.attnscopeAtlas.measureMatrix());
    assert.equal(mm.points, L * H * 2 * qk.t.item.data.length, 'every point of every head drawn');
    console.log(`# matrix view, ${L * H} heads x ${2 * qk.t.item.data.length} points: drawn in ${mm.fullMs.toFixed(0)} ms (${mm.frames} frames), hover ${mm.overlayMs.toFixed(1)} ms per frame`);
    const p = await A(page, () => window.attnscopeAtlas.tileClientPoint(2, 1));
    await page.mouse.click(p.x, p.y);
    const s2 = await st(page);
    assert.deepEqual([s2.view, s2.layer, s2.head], ['single', 2, 1]);
    assert.deepEqual(problems, []);
  } finally {
    await v.close();
  }
});

test('single view: hover shows the token in its sentence, a click draws lines to its top keys', async () => {
  const { html, qk } = gpt2Atlas();
  const v = await open(html);
  const { page, problems } = v;
  try {
    const N = qk.t.item.data.length, K = 6, H = 4;
    const tokens = JSON.parse(qk.meta.tokens);
    await A(page, () => window.attnscopeAtlas.update({ view: 'single', layer: 3, head: 2 }));
    await frame(page);
    // The points are where the .qk file puts them (float16 → the same place on screen).
    const i = 25;
    const p = await A(page, (i) => window.attnscopeAtlas.pointClientPoint(i), i);
    await page.mouse.move(p.x, p.y);
    await frame(page);
    const hover = await A(page, () => window.attnscopeAtlas.hover);
    assert.ok(hover !== null, 'a point under the mouse');
    const hv = hover % N;
    const side = await A(page, () => window.attnscopeAtlas.sideText());
    const item = qk.t.item.data[hv];
    assert.match(side, new RegExp(`item ${item}`));
    assert.ok(side.includes(tokenText(tokens[hv])), 'the side panel shows the token');
    await page.mouse.click(p.x, p.y);
    await frame(page);
    assert.equal((await st(page)).selected, hv);
    // Its top keys, listed and drawn, are the file's.
    const start = qk.t.item.data.indexOf(item);
    const want = [];
    for (let k = 0; k < K; ++k) {
      const at = ((3 * H + 2) * N + hv) * K + k;
      const j = qk.t.topk_index.data[at];
      if (j >= 0) want.push(`${JSON.stringify(tokenText(tokens[j]))} @${j - start}  ${qk.t.topk_weight.data[at].toFixed(4)}`);
    }
    const got = await A(page, () => Array.from(document.querySelectorAll('#atlas-side-keys li')).map((li) => li.textContent));
    assert.deepEqual(got, want);
    assert.ok((await overlayInk(page)) > 200, 'lines and rings drawn');
    await page.screenshot({ path: path.join(SHOTS, 'atlas-single.png') });

    // Zoom with the wheel keeps the point under the mouse; pan by dragging.
    const before = await A(page, (i) => window.attnscopeAtlas.pointClientPoint(i), hv);
    await page.mouse.move(before.x, before.y);
    await page.mouse.wheel(0, -400);
    await frame(page);
    const afterZoom = await A(page, (i) => window.attnscopeAtlas.pointClientPoint(i), hv);
    assert.ok(Math.hypot(afterZoom.x - before.x, afterZoom.y - before.y) < 1.5, 'zoom about the mouse');
    const other = await A(page, (i) => window.attnscopeAtlas.pointClientPoint(i), (hv + 7) % N);
    await page.mouse.move(400, 400);
    await page.mouse.down();
    await page.mouse.move(460, 430, { steps: 4 });
    await page.mouse.up();
    const moved = await A(page, (i) => window.attnscopeAtlas.pointClientPoint(i), (hv + 7) % N);
    assert.ok(Math.abs(moved.x - other.x - 60) < 1 && Math.abs(moved.y - other.y - 30) < 1, 'drag pans');
    assert.equal((await st(page)).selected, hv, 'a drag is not a click');

    // Projection and dimension switches redraw from other coordinates.
    const h0 = await glHash(page);
    await page.selectOption('#atlas-method', 'pca');
    await frame(page);
    assert.equal((await st(page)).method, 'pca');
    const h1 = await glHash(page);
    assert.notEqual(h1, h0);
    await page.selectOption('#atlas-method', 'tsne');
    await page.click('#atlas-dims');
    await frame(page);
    const s3 = await st(page);
    assert.deepEqual([s3.method, s3.dims], ['tsne', 3]);
    const r0 = await glHash(page);
    await page.mouse.move(500, 400);
    await page.mouse.down();
    await page.mouse.move(560, 380, { steps: 4 });
    await page.mouse.up();
    await frame(page);
    assert.notEqual(await glHash(page), r0, 'drag rotates the 3-D cloud');
    await page.screenshot({ path: path.join(SHOTS, 'atlas-single-3d.png') });
    // Colour modes.
    const seen = new Set([await glHash(page)]);
    for (const c of ['position', 'token', 'sentence', 'norm']) {
      await page.selectOption('#atlas-color', c);
      await frame(page);
      seen.add(await glHash(page));
    }
    assert.equal(seen.size, 5, 'each colour mode paints differently');
    await page.screenshot({ path: path.join(SHOTS, 'atlas-single-norm.png') });
    assert.deepEqual(problems, []);
  } finally {
    await v.close();
  }
});

test('search highlights every matching token; Enter selects them in turn', async () => {
  const { html, qk } = gpt2Atlas();
  const v = await open(html);
  const { page, problems } = v;
  try {
    const tokens = JSON.parse(qk.meta.tokens);
    const want = tokens.map((t, i) => [tokenText(t).trim().toLowerCase(), i]).filter(([t]) => t.includes('the')).map(([, i]) => i);
    assert.ok(want.length > 5);
    await page.fill('#atlas-search', 'The');
    await frame(page);
    assert.equal(await A(page, () => window.attnscopeAtlas.matchCount()), want.length);
    assert.equal(await page.textContent('#atlas-search-count'), `${want.length} matches`);
    await page.screenshot({ path: path.join(SHOTS, 'atlas-search.png') });
    await page.press('#atlas-search', 'Enter');
    assert.equal((await st(page)).selected, want[0]);
    await page.press('#atlas-search', 'Enter');
    assert.equal((await st(page)).selected, want[1]);
    assert.deepEqual(problems, []);
  } finally {
    await v.close();
  }
});

test('sentence view: rows of the file, special tokens hidden and renormalized, |value| weighting, linked selection', async () => {
  const { html, qk } = gpt2Atlas();
  const v = await open(html);
  const { page, problems } = v;
  try {
    const N = qk.t.item.data.length, H = 4;
    const M = qk.t.attention.shape[2];
    const off = qk.t.attention_offset.data;
    const l = 1, h = 3, item = 2;
    const start = qk.t.item.data.indexOf(item), end = qk.t.item.data.lastIndexOf(item) + 1;
    await A(page, ([l, h, item]) => window.attnscopeAtlas.update({ view: 'sentence', layer: l, head: h, item }), [l, h, item]);
    await frame(page);
    const fileRow = (i) => {
      const r = new Float32Array(end - start);
      for (let j = 0; j < off[i + 1] - off[i]; ++j) r[j] = qk.t.attention.data[(l * H + h) * M + off[i] + j];
      return r;
    };
    const rows = async () => A(page, () => window.attnscopeAtlas.sentenceRows().rows.map((r) => Array.from(r)));
    let got = await rows();
    for (let i = start; i < end; ++i) got[i - start].forEach((w, j) => assert.ok(Math.abs(w - fileRow(i)[j]) < 1e-6));
    // hide the first token (a causal model's sink): column 0 empty, rows sum to 1 again
    await page.check('#atlas-hide');
    got = await rows();
    for (let i = start + 1; i < end; ++i) {
      const want = fileRow(i);
      want[0] = 0;
      const s = want.reduce((a, b) => a + b, 0);
      got[i - start].forEach((w, j) => assert.ok(Math.abs(w - want[j] / s) < 1e-5, `row ${i} key ${j}`));
    }
    // |value| weighting: a_ij |v_j| / sum
    await page.uncheck('#atlas-hide');
    await page.check('#atlas-vnorm');
    got = await rows();
    const vn = qk.t.value_norm.data.subarray((l * H + h) * N + start, (l * H + h) * N + end);
    for (let i = start; i < end; ++i) {
      const want = fileRow(i).map((w, j) => w * vn[j]);
      const s = want.reduce((a, b) => a + b, 0);
      got[i - start].forEach((w, j) => assert.ok(Math.abs(w - want[j] / s) < 1e-5));
    }
    await page.uncheck('#atlas-vnorm');
    // hover a token: only its lines; click selects it everywhere
    const t = start + 4;
    const p = await A(page, (t) => window.attnscopeAtlas.sentenceClientPoint(t, 'q'), t);
    await page.mouse.move(p.x, p.y);
    await frame(page);
    await page.screenshot({ path: path.join(SHOTS, 'atlas-sentence.png') });
    await page.mouse.click(p.x, p.y);
    assert.equal((await st(page)).selected, t);
    await page.click('#atlas-tab-single');
    await frame(page);
    assert.equal((await st(page)).selected, t);
    assert.ok((await overlayInk(page)) > 100, 'the single view shows the selection');
    // and a selection made in the single view opens its sentence
    await A(page, () => window.attnscopeAtlas.update({ selected: 3 }));
    await page.click('#atlas-tab-sentence');
    assert.equal((await st(page)).item, qk.t.item.data[3]);
    assert.deepEqual(problems, []);
  } finally {
    await v.close();
  }
});

test('hostile token text stays text', async () => {
  const { html } = gpt2Atlas();
  const v = await open(html);
  const { page, problems } = v;
  try {
    assert.equal(await page.locator('img').count(), 0);
    await A(page, () => window.attnscopeAtlas.update({ view: 'single', selected: 9 }));
    const side = await A(page, () => window.attnscopeAtlas.sideText());
    assert.ok(side.includes('</script>') || side.includes('<img'), 'the markup shows as text');
    assert.deepEqual(problems, []);
  } finally {
    await v.close();
  }
});

test('BERT: [CLS] and [SEP] hidden in the sentence view', async () => {
  const corpus = path.join(OUT, 'bert-corpus.txt');
  fs.writeFileSync(corpus, sentences.slice(0, 6).join('\n') + '\n');
  const qk = path.join(OUT, 'bert.qk'), html = path.join(OUT, 'bert-atlas.html');
  attnscope('qk', '--model', path.join(root, 'models/bert-moby'), '--corpus', corpus, '--projections', 'pca', '--dims', '2', '-o', qk);
  attnscope('view', '--from', qk, '-o', html);
  const v = await open(html);
  const { page, problems } = v;
  try {
    await A(page, () => window.attnscopeAtlas.update({ view: 'sentence', item: 1 }));
    const all = await A(page, () => window.attnscopeAtlas.sentenceRows().tokens.map((t) => window.attnscopeAtlas.store.meta.tokens[t]));
    assert.equal(all[0], '[CLS]');
    assert.equal(all[all.length - 1], '[SEP]');
    await page.check('#atlas-hide');
    const shown = await A(page, () => window.attnscopeAtlas.sentenceRows().tokens.map((t) => window.attnscopeAtlas.store.meta.tokens[t]));
    assert.deepEqual(shown, all.slice(1, -1));
    const sums = await A(page, () => window.attnscopeAtlas.sentenceRows().rows.map((r) => r.reduce((a, b) => a + b, 0)));
    assert.ok(sums.slice(1, -1).every((s) => Math.abs(s - 1) < 1e-5), 'rows renormalized');
    assert.deepEqual(problems, []);
  } finally {
    await v.close();
  }
});

test('ViT: image view shows the attention of a clicked patch and of [CLS]', async () => {
  const digits = path.join(OUT, 'digits');
  fs.mkdirSync(digits, { recursive: true });
  for (const f of fs.readdirSync(path.join(root, 'models/vit-mnist/samples')).filter((f) => f.endsWith('.png')).slice(0, 8))
    fs.copyFileSync(path.join(root, 'models/vit-mnist/samples', f), path.join(digits, f));
  const qkFile = path.join(OUT, 'vit.qk'), html = path.join(OUT, 'vit-atlas.html');
  attnscope('qk', '--model', path.join(root, 'models/vit-mnist'), '--corpus', digits, '--projections', 'pca,umap', '-o', qkFile);
  attnscope('view', '--from', qkFile, '-o', html);
  const qk = readSafetensors(qkFile);
  const v = await open(html);
  const { page, problems } = v;
  try {
    const H = Number(qk.meta.n_heads), M = qk.t.attention.shape[2];
    const off = qk.t.attention_offset.data;
    await page.click('#atlas-tab-image');
    await A(page, () => window.attnscopeAtlas.update({ item: 3, layer: 1, head: 2 }));
    await frame(page);
    const start = qk.t.item.data.indexOf(3);
    const check = async (q) => {
      const got = await A(page, () => {
        const a = window.attnscopeAtlas.imageAttention();
        return { patches: Array.from(a.patches), cls: a.cls };
      });
      const row = (j) => qk.t.attention.data[(1 * H + 2) * M + off[start + q] + j];
      assert.ok(Math.abs(got.cls - row(0)) < 1e-6);
      got.patches.forEach((w, k) => assert.ok(Math.abs(w - row(k + 1)) < 1e-6, `patch ${k}`));
    };
    assert.equal((await st(page)).patch, 0, '[CLS] first');
    await check(0);
    const p = await A(page, () => window.attnscopeAtlas.patchClientPoint(5));
    await page.mouse.click(p.x, p.y);
    const s = await st(page);
    assert.equal(s.patch, 6);
    assert.equal(s.selected, start + 6, 'the patch is selected in every view');
    await check(6);
    await page.screenshot({ path: path.join(SHOTS, 'atlas-image.png') });
    await page.click('#atlas-cls');
    assert.equal((await st(page)).patch, 0);
    // the image itself is the file's
    const px = await A(page, () => Array.from(window.attnscopeAtlas.store.image(3)));
    const S = 28;
    const want = qk.t.image.data.subarray(3 * S * S * 3, 4 * S * S * 3);
    assert.deepEqual(px, Array.from(want));
    assert.deepEqual(problems, []);
  } finally {
    await v.close();
  }
});

// Full scale without running a model: a 12 x 12 dataset of 10,000 tokens (random but well-formed),
// written here, turned into an atlas by the binary and drawn: 144 heads x 20,000 points.
test('matrix view at full scale: 144 heads x 20,000 points, frame time measured', async () => {
  const L = 12, H = 12, N = 10000, K = 4, T = 10, items = N / T;
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const item = Int32Array.from({ length: N }, (_, i) => Math.floor(i / T));
  const position = Int32Array.from({ length: N }, (_, i) => i % T);
  const offset = new Int32Array(N + 1);
  for (let i = 0; i < N; ++i) offset[i + 1] = offset[i] + (i % T) + 1;
  const M = offset[N];
  const proj = new Float32Array(L * H * 2 * N * 2);
  for (let x = 0; x < proj.length; x += 2) {
    const c = Math.floor(rnd() * 6);
    proj[x] = Math.cos(c) * 5 + (rnd() - 0.5) * 3;
    proj[x + 1] = Math.sin(c) * 5 + (rnd() - 0.5) * 3;
  }
  const topi = new Int32Array(L * H * N * K).fill(-1), topw = new Float32Array(L * H * N * K);
  for (let lh = 0; lh < L * H; ++lh)
    for (let i = 0; i < N; ++i) {
      topi[(lh * N + i) * K] = i - (i % T);
      topw[(lh * N + i) * K] = 1 / ((i % T) + 1);
    }
  const attention = new Float32Array(L * H * M);
  for (let lh = 0; lh < L * H; ++lh)
    for (let i = 0; i < N; ++i) for (let j = 0; j <= i % T; ++j) attention[lh * M + offset[i] + j] = 1 / ((i % T) + 1);
  const norms = Float32Array.from({ length: L * H * N }, () => 1 + rnd());
  const file = path.join(OUT, 'scale.qk'), html = path.join(OUT, 'scale-atlas.html');
  writeSafetensors(
    file,
    {
      item: { dtype: 'I32', shape: [N], data: item }, position: { dtype: 'I32', shape: [N], data: position },
      token_id: { dtype: 'I32', shape: [N], data: position },
      query_norm: { dtype: 'F16', shape: [L, H, N], data: norms }, key_norm: { dtype: 'F16', shape: [L, H, N], data: norms },
      value_norm: { dtype: 'F16', shape: [L, H, N], data: norms }, spearman: { dtype: 'F32', shape: [L, H], data: new Float32Array(L * H) },
      topk_index: { dtype: 'I32', shape: [L, H, N, K], data: topi }, topk_weight: { dtype: 'F16', shape: [L, H, N, K], data: topw },
      attention_offset: { dtype: 'I32', shape: [N + 1], data: offset }, attention: { dtype: 'F16', shape: [L, H, M], data: attention },
      'projection.umap2': { dtype: 'F16', shape: [L, H, 2 * N, 2], data: proj },
    },
    {
      format: 'attnscope.qk', version: '1', model: 'synthetic-12x12', model_type: 'gpt2', family: 'gpt2', n_layers: String(L),
      n_heads: String(H), head_dim: '64', causal: 'true', equalize: 'true', top_k: String(K), attention_max: '256', projections: 'umap2',
      tokens: JSON.stringify(Array.from({ length: N }, (_, i) => `t${i % 97}`)),
      items: JSON.stringify(Array.from({ length: items }, (_, i) => `item ${i}`)),
    },
  );
  attnscope('view', '--from', file, '-o', html);
  const t0 = Date.now();
  const v = await open(html);
  const { page, problems } = v;
  try {
    const openMs = Date.now() - t0;
    const ink = await A(page, () => window.attnscopeAtlas.inkedPixels(11, 11));
    assert.ok(ink > 100, 'the last head is drawn');
    const mm = await A(page, () => window.attnscopeAtlas.measureMatrix());
    assert.equal(mm.points, 144 * 20000, 'every point of every head drawn');
    assert.ok(mm.frames > 2, 'painted over several frames');
    await page.fill('#atlas-search', 't42');
    const ms = await A(page, () => window.attnscopeAtlas.measureMatrix());
    const p = await A(page, () => window.attnscopeAtlas.tileClientPoint(11, 11));
    await page.mouse.click(p.x, p.y);
    const single = await A(page, () => window.attnscopeAtlas.measureFrames(20, false));
    const f = (x) => x.toFixed(0);
    const line = `matrix view, 144 heads x 20,000 points (${(fs.statSync(html).size / 1e6).toFixed(0)} MB file): opened in ${(openMs / 1000).toFixed(1)} s; ` +
      `every head sampled (as dense as its pixels) after ${f(mm.sampleMs)} ms, all 2.88 M points after ${f(mm.fullMs)} ms over ${mm.frames} frames ` +
      `(longest frame ${f(mm.worstFrameMs)} ms); hovering a head ${f(mm.overlayMs)} ms per frame; ` +
      `with a search highlighted: all after ${f(ms.fullMs)} ms, longest frame ${f(ms.worstFrameMs)} ms; single view (20,000 points) ${f(single)} ms per frame`;
    console.log(`# ${line}`);
    fs.writeFileSync(path.join(OUT, 'frame-times.txt'), line + '\n');
    await page.screenshot({ path: path.join(SHOTS, 'atlas-scale.png') });
    assert.deepEqual(problems, []);
  } finally {
    await v.close();
  }
});
