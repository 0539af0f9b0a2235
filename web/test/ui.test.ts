import { describe, expect, it } from 'vitest';
import { CATEGORY10, distance, headColors, hexToRgb, oklab, palette64 } from '../src/colors';
import { hashToState, State, stateToHash } from '../src/context';
import { Meta } from '../src/data';
import { computeRow } from '../src/neuronview';
import { escapeXml } from '../src/painter';
import { filterIndices, label } from '../src/tokens';

describe('head colours', () => {
  it('uses category10 up to 10 heads and 64 distinct colours beyond', () => {
    expect(headColors(10)).toEqual(CATEGORY10);
    const p = headColors(64);
    expect(new Set(p).size).toBe(64);
    let worst = Infinity;
    const labs = p.map((h) => oklab(...hexToRgb(h)));
    for (let a = 0; a < 64; ++a) for (let b = a + 1; b < 64; ++b) worst = Math.min(worst, distance(labs[a], labs[b]));
    // 0.02 in OKLab is about one just-noticeable difference; the closest pair is several apart.
    expect(worst).toBeGreaterThan(0.06);
    expect(palette64().slice(0, 10)).toEqual(CATEGORY10);
  });
});

describe('token labels', () => {
  it('shows control characters and bidi marks as escapes and cuts long tokens', () => {
    expect(label('a\u0000b')).toBe('a\\x00b');
    expect(label('\u202eevil')).toBe('\\u202eevil');
    expect(label('x\n')).toBe('x\\n');
    expect(label('<script>')).toBe('<script>'); // drawn as text, never parsed
    expect(Array.from(label('ab'.repeat(30))).length).toBe(24);
  });
  it('escapes what it writes into SVG', () => {
    expect(escapeXml('"><img onerror=x>&\u0000')).toBe('&quot;&gt;&lt;img onerror=x&gt;&amp;\uFFFD');
  });
  it('filters sentence pairs', () => {
    expect(filterIndices(5, 2, 'ab')).toEqual({ rows: [0, 1], cols: [2, 3, 4] });
    expect(filterIndices(5, 2, 'ba')).toEqual({ rows: [2, 3, 4], cols: [0, 1] });
    expect(filterIndices(3, null, 'ab').rows).toEqual([0, 1, 2]);
  });
});

describe('URL hash state', () => {
  const meta = { n_layers: 4, n_heads: 6, tokens: ['a', 'b', 'c'], views: ['head', 'model', 'neuron'], sentence_b_start: 1 } as unknown as Meta;
  const base: State = { view: 'head', layer: 0, heads: [0, 1, 2, 3, 4, 5], agg: 'none', filter: 'all', layout: 'vertical', theme: 'light',
    token: null, side: 'q', nhead: 0, nquery: 0, expand: false, detail: null };
  it('round-trips', () => {
    const s: State = { ...base, view: 'neuron', layer: 3, heads: [1, 4], filter: 'ab', layout: 'horizontal', theme: 'dark', token: 2, side: 'k', nhead: 5, nquery: 1, expand: true, detail: [2, 3] };
    expect(hashToState(stateToHash(s), base, meta)).toEqual(s);
  });
  it('ignores values out of range', () => {
    const s = hashToState('#layer=9&heads=1.99&token=q7&view=bogus&detail=4.0', base, meta);
    expect(s.layer).toBe(0);
    expect(s.heads).toEqual([1]);
    expect(s.token).toBeNull();
    expect(s.view).toBe('head');
    expect(s.detail).toBeNull();
  });
});

describe('neuron view numbers', () => {
  it('computes q·k, the scaled product and a softmax over the visible keys', () => {
    const d = 2, n = 3;
    const q = Float32Array.from([1, 0, 0, 2, 1, 1]);
    const k = Float32Array.from([1, 1, 2, 0, 0, 3]);
    const c = computeRow(q, k, d, 1, n, true); // query 1 of a causal model: keys 0 and 1
    expect(c.keys).toEqual([0, 1]);
    expect(Array.from(c.dot)).toEqual([2, 0]);
    expect(c.scaled[0]).toBeCloseTo(2 / Math.sqrt(2), 6);
    const e = Math.exp(2 / Math.sqrt(2));
    expect(c.softmax[0]).toBeCloseTo(e / (e + 1), 6);
    expect(computeRow(q, k, d, 1, n, false).keys).toEqual([0, 1, 2]);
  });
});
