import { describe, expect, it } from 'vitest';
import { searchTokens, tokenText, viridis } from '../src/atlas';
import { AtlasMeta, AtlasStore, decodeBase64, encodeBase64, halfToFloat, isSpecial, NO_KEY, sentenceRow } from '../src/atlasdata';
import { apply, fit, fitMatrix, multiply, rotation } from '../src/atlasgl';

// float -> IEEE half (round to nearest even), written independently of the decoder under test.
function toHalf(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0];
  const sign = (x >>> 16) & 0x8000;
  const e = ((x >>> 23) & 255) - 127 + 15;
  let m = x & 0x7fffff;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    m |= 0x800000;
    const shift = 14 - e;
    let h = m >> shift;
    const rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) ++h;
    return sign | h;
  }
  let h = (e << 10) | (m >> 13);
  const rem = m & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) ++h;
  return sign | h;
}
const b64 = (a: ArrayBufferView) => encodeBase64(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
const half = (v: number[]) => b64(new Uint16Array(v.map(toHalf)));

describe('atlas encodings', () => {
  it('base64 round-trips every length and byte value (RFC 4648 padding)', () => {
    for (let n = 0; n < 40; ++n) {
      const b = new Uint8Array(n).map((_, i) => (i * 97 + n * 13) & 255);
      const s = encodeBase64(b);
      expect(s.length % 4).toBe(0);
      expect(Array.from(decodeBase64(s, 't'))).toEqual(Array.from(b));
    }
    expect(encodeBase64(new TextEncoder().encode('any carnal pleas'))).toBe('YW55IGNhcm5hbCBwbGVhcw==');
    expect(() => decodeBase64('ab$d', 'x')).toThrow(/atlas data x: invalid character at 2/);
    expect(() => decodeBase64('abc', 'x')).toThrow(/not a multiple of 4/);
  });
  it('decodes IEEE halves exactly (normals, subnormals, signs, infinity)', () => {
    const values = [0, 1, -2.5, 65504, 6.103515625e-5, 5.960464477539063e-8, -0.333251953125, Infinity];
    const out = halfToFloat(decodeBase64(half(values), 'h'));
    expect(Array.from(out)).toEqual(values);
    expect(halfToFloat(new Uint8Array([0x00, 0x7e]))[0]).toBeNaN();
  });
});

// A corpus of 2 items (3 and 2 tokens), 1 layer, 2 heads, top-2, causal.
function corpus(): AtlasStore {
  const n = 5, H = 2, K = 2;
  const meta: AtlasMeta = {
    format: 'attnscope-atlas', version: 1, title: 't', model_type: 'gpt2', n_layers: 1, n_heads: H, head_dim: 4,
    causal: true, equalize: true, top_k: K, n, attention_rows: 1 + 2 + 3 + 1 + 2,
    tokens: ['A', 'Ġwhale', 'Ġship', 'Call', 'Ġme'], items: ['A whale ship', 'Call me'],
    projections: [{ name: 'pca2', dims: 2 }], spearman: [[0.1, -0.2]], image: null, initial: { layer: 0, head: 0 },
  };
  const rows: number[] = [];
  for (let h = 0; h < H; ++h) rows.push(1, 0.25, 0.75, 0.5, 0.25, 0.25, 1, 0.5, 0.5);
  const top = new Uint16Array(H * n * K).fill(NO_KEY);
  top.set([0, NO_KEY, 1, 0, 1, 0, 0, NO_KEY, 0, 1], 0);
  const text: Record<string, string> = {
    item: b64(new Int32Array([0, 0, 0, 1, 1])),
    offset: b64(new Int32Array([0, 1, 3, 6, 7, 9])),
    qnorm: half(Array.from({ length: H * n }, (_, i) => i)),
    knorm: half(Array.from({ length: H * n }, (_, i) => 10 + i)),
    vnorm: half([1, 2, 4, 1, 3, 1, 1, 1, 1, 1]),
    'proj-pca2-0': half(Array.from({ length: H * 2 * n * 2 }, (_, i) => i / 8)),
    'topk-0': b64(top),
    'topw-0': half([1, 0, 0.75, 0.25, 0.5, 0.25, 1, 0, 0.5, 0.5, ...new Array(10).fill(0)]),
    'attn-0': half(rows),
  };
  return new AtlasStore({ meta, text: (name) => text[name] });
}

describe('atlas store', () => {
  it('derives items and positions, and reads norms, projections, rows and top keys', () => {
    const st = corpus();
    expect(Array.from(st.position)).toEqual([0, 1, 2, 0, 1]);
    expect(Array.from(st.itemStart)).toEqual([0, 3, 5]);
    expect(st.itemTokens(1)).toEqual([3, 5]);
    expect(Array.from(st.norm('q', 0, 1))).toEqual([5, 6, 7, 8, 9]);
    expect(Array.from(st.norm('v', 0, 0))).toEqual([1, 2, 4, 1, 3]);
    expect(st.head('pca2', 0, 1)[0]).toBe(20 / 8);
    expect(Array.from(st.row(0, 0, 2)!)).toEqual([0.5, 0.25, 0.25]);
    expect(Array.from(st.row(0, 1, 4)!)).toEqual([0.5, 0.5]);
    // top keys are positions in the query's item: token 4's keys are tokens 3 + (0, 1)
    expect(st.topKeys(0, 0, 4)).toEqual([{ key: 3, weight: 0.5 }, { key: 4, weight: 0.5 }]);
    expect(st.topKeys(0, 0, 0)).toEqual([{ key: 0, weight: 1 }]);
  });
  it('fails loudly on a damaged array', () => {
    const meta = (corpus() as unknown as { meta: AtlasMeta }).meta;
    expect(() => new AtlasStore({ meta, text: () => b64(new Int32Array([0, 0, 0, 1])) })).toThrow(/atlas data item: expected 20 bytes, found 16/);
    expect(() => new AtlasStore({ meta, text: (n) => b64(new Int32Array(n === 'item' ? [0, 1, 0, 1, 1] : [0, 1, 3, 6, 7, 9])) })).toThrow(
      /atlas data item: token 2 has item 0/);
  });
});

describe('sentence view rows', () => {
  it('hides special tokens and renormalizes, and weights by |value| (Kobayashi et al.)', () => {
    const row = [0.5, 0.25, 0.25];
    expect(Array.from(sentenceRow(row, [true, true, true], null, false))).toEqual(row);
    expect(Array.from(sentenceRow(row, [false, true, true], null, true))).toEqual([0, 0.5, 0.5]);
    // |v| = 1, 2, 4: weights 0.5, 0.5, 1 over a sum of 2
    expect(Array.from(sentenceRow(row, [true, true, true], [1, 2, 4], false))).toEqual([0.25, 0.25, 0.5]);
    expect(Array.from(sentenceRow(row, [false, true, true], [1, 2, 4], true))).toEqual([0, 1 / 3, 2 / 3].map(Math.fround));
  });
  it('knows the special tokens of each family', () => {
    expect(isSpecial('[CLS]', 0, false)).toBe(true);
    expect(isSpecial('[SEP]', 7, false)).toBe(true);
    expect(isSpecial('<s>', 0, false)).toBe(true);
    expect(isSpecial('Ġthe', 3, false)).toBe(false);
    expect(isSpecial('Call', 0, true)).toBe(true); // a causal model's first token
    expect(isSpecial('Call', 1, true)).toBe(false);
  });
});

describe('search and colours', () => {
  it('finds tokens by their text, case-insensitive, across markers', () => {
    const tokens = ['Call', 'Ġme', 'ĠIsh', 'mael', '.', 'ĠWhale', 'whales', '##ship'];
    expect(searchTokens(tokens, 'whale')).toEqual([5, 6]);
    expect(searchTokens(tokens, ' ME ')).toEqual([1]);
    expect(searchTokens(tokens, 'ship')).toEqual([7]);
    expect(searchTokens(tokens, '  ')).toEqual([]);
    expect(tokenText('Ġme')).toBe(' me');
  });
  it('maps 0 and 1 to viridis ends and clamps', () => {
    expect(viridis(0)).toEqual([68, 1, 84]);
    expect(viridis(1)).toEqual([253, 231, 37]);
    expect(viridis(7)).toEqual([253, 231, 37]);
    expect(viridis(NaN)).toEqual([68, 1, 84]);
  });
});

describe('atlas geometry', () => {
  it('fits a cloud into [-1, 1] keeping its aspect', () => {
    const p = new Float32Array([0, 0, 4, 2, 2, 1]);
    const f = fit(p, 2, 3);
    const m = fitMatrix(f, 1, 1);
    expect(apply(m, 0, 0, 0).slice(0, 2)).toEqual([-1, -0.5]);
    expect(apply(m, 4, 2, 0).slice(0, 2)).toEqual([1, 0.5]);
  });
  it('rotates without changing lengths', () => {
    const r = rotation(0.7, -0.4);
    const v = apply(multiply(r, rotation(0, 0)), 1, 2, 3);
    expect(Math.hypot(...v)).toBeCloseTo(Math.hypot(1, 2, 3), 5);
  });
});
