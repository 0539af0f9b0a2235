import { describe, expect, it } from 'vitest';
import { attentionChars, decodeAttention, decodeQK, decodeU12, encodeU12, reduceHeads, U12_MAX } from '../src/data';

function rand(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

// A random attention layer: softmax rows, causal or not.
function layer(heads: number, n: number, causal: boolean, r = rand(1)): Float32Array[] {
  return Array.from({ length: heads }, () => {
    const a = new Float32Array(n * n);
    for (let i = 0; i < n; ++i) {
      let z = 0;
      const len = causal ? i + 1 : n;
      for (let j = 0; j < len; ++j) z += a[i * n + j] = Math.exp(6 * r());
      for (let j = 0; j < len; ++j) a[i * n + j] /= z;
    }
    return a;
  });
}

function encodeLayer(a: Float32Array[], n: number, lower: boolean): string {
  let s = '';
  for (const m of a) for (let i = 0; i < n; ++i) s += encodeU12(m.subarray(i * n, i * n + (lower ? i + 1 : n)));
  return s;
}

describe('12-bit attention encoding', () => {
  it('round-trips every 12-bit value', () => {
    const all = Array.from({ length: U12_MAX + 1 }, (_, q) => q / U12_MAX);
    const s = encodeU12(all);
    expect(s.length).toBe(2 * all.length);
    const out = new Uint16Array(all.length);
    decodeU12(s, 0, all.length, out);
    out.forEach((q, k) => expect(q).toBe(k));
  });

  it('keeps every weight within 0.5/4095 and costs 2 characters per weight (dense)', () => {
    const n = 37, h = 3;
    const a = layer(h, n, false);
    const s = encodeLayer(a, n, false);
    expect(s.length).toBe(attentionChars(n, h, 'dense'));
    expect(s.length / (h * n * n)).toBe(2);
    const d = decodeAttention(s, h, n, 'dense');
    let worst = 0;
    for (let k = 0; k < h; ++k) for (let t = 0; t < n * n; ++t) worst = Math.max(worst, Math.abs(d[k][t] - a[k][t]));
    expect(worst).toBeLessThanOrEqual(0.5 / U12_MAX + 1e-7);
    expect(worst).toBeGreaterThan(0); // the bound is met by rounding, not by a lossless path
  });

  it('stores causal layers as the lower triangle and restores exact zeros above it', () => {
    const n = 20, h = 2;
    const a = layer(h, n, true, rand(7));
    const s = encodeLayer(a, n, true);
    expect(s.length).toBe(2 * h * (n * (n + 1)) / 2);
    const d = decodeAttention(s, h, n, 'lower');
    for (let i = 0; i < n; ++i) for (let j = i + 1; j < n; ++j) expect(d[1][i * n + j]).toBe(0);
    for (let i = 0; i < n; ++i) {
      let sum = 0;
      for (let j = 0; j < n; ++j) sum += d[0][i * n + j];
      expect(Math.abs(sum - 1)).toBeLessThan(n * 0.5 / U12_MAX + 1e-6);
    }
  });

  it('rejects damaged data instead of drawing a wrong picture', () => {
    const s = encodeLayer(layer(1, 4, false), 4, false);
    expect(() => decodeAttention(s.slice(1), 1, 4, 'dense')).toThrow(/characters/);
    expect(() => decodeAttention('!' + s.slice(1), 1, 4, 'dense')).toThrow(/invalid character/);
    expect(() => decodeAttention(s, 1, 4, 'lower')).toThrow(/expected/);
  });

  it('decodes signed query/key vectors with one scale per head and kind', () => {
    const n = 5, d = 4, heads = 2;
    const r = rand(3);
    const raw = Array.from({ length: heads * 2 }, () => Float32Array.from({ length: n * d }, () => (r() - 0.5) * 10));
    const scales: number[][] = [];
    let s = '';
    for (let h = 0; h < heads; ++h) {
      const pair: number[] = [];
      for (let kind = 0; kind < 2; ++kind) {
        const v = raw[2 * h + kind];
        const mx = Math.max(...Array.from(v, Math.abs));
        pair.push(mx);
        // the C++ writer's rule: q = round(v / scale * 2047) + 2048, as an unsigned 12-bit value
        s += encodeU12(Array.from(v, (x) => (Math.round((x / mx) * 2047) + 2048) / U12_MAX));
      }
      scales.push(pair);
    }
    const qk = decodeQK(s, heads, n, d, scales);
    for (let h = 0; h < heads; ++h)
      for (let t = 0; t < n * d; ++t) {
        expect(Math.abs(qk.q[h][t] - raw[2 * h][t])).toBeLessThanOrEqual((0.5 / 2047) * scales[h][0] + 1e-6);
        expect(Math.abs(qk.k[h][t] - raw[2 * h + 1][t])).toBeLessThanOrEqual((0.5 / 2047) * scales[h][1] + 1e-6);
      }
  });

  it('reduces heads to mean and max pseudo-heads', () => {
    const a = [Float32Array.from([0.2, 0.8]), Float32Array.from([0.6, 0.4])];
    expect(Array.from(reduceHeads(a, 'mean'))).toEqual([0.4000000059604645, 0.6000000238418579]);
    expect(Array.from(reduceHeads(a, 'max'))).toEqual([0.6000000238418579, 0.800000011920929]);
  });
});
