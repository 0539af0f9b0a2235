import { describe, expect, it } from 'vitest';
import { Ctx, State } from '../src/context';
import { Meta, Store } from '../src/data';
import { HeadView, stateSource } from '../src/headview';
import { THEMES } from '../src/colors';
import { ModelView } from '../src/modelview';

// A context without a browser: text width = 7 px per character.
function ctx(tokens: string[], layout: 'vertical' | 'horizontal', filter: State['filter'] = 'all', bStart: number | null = null): Ctx {
  const n = tokens.length;
  const meta = { tokens, n_layers: 3, n_heads: 2, n_kv_heads: 2, head_dim: 4, causal: false, sentence_b_start: bStart, model_type: 'bert',
    attention: { encoding: 'u12', layout: 'dense' }, qk: null, views: ['head', 'model'] } as unknown as Meta;
  const flat = () => Array.from({ length: 2 }, () => new Float32Array(n * n).fill(1 / n));
  const store = { meta, n, layer: () => flat(), head: () => flat()[0] } as unknown as Store;
  const state: State = { view: 'head', layer: 0, heads: [0, 1], agg: 'none', filter, layout, theme: 'light', token: null, side: 'q',
    nhead: 0, nquery: 0, expand: false, detail: null };
  return { store, meta, state, headColors: ['#1f77b4', '#ff7f0e'], layerColors: ['#1f77b4', '#ff7f0e', '#2ca02c'],
    theme: () => THEMES.light, update: () => {}, measure: (s) => 7 * s.length, info: () => {} };
}

describe('head view layout', () => {
  const tokens = ['[CLS]', 'the', 'whale', '鯨', 'is', 'a', 'very-long-token-indeed', '[SEP]'];
  for (const layout of ['vertical', 'horizontal'] as const) {
    it(`${layout}: every token's label is hit where it is drawn, on both sides`, () => {
      const c = ctx(tokens, layout);
      const v = new HeadView(c, () => stateSource(c));
      const { width, height } = v.size();
      tokens.forEach((_, i) => {
        for (const side of ['q', 'k'] as const) {
          const p = v.tokenPoint(side, i)!;
          expect(p.x).toBeGreaterThan(0);
          expect(p.x).toBeLessThan(width);
          expect(p.y).toBeLessThan(height);
          expect(v.hit(p.x, p.y)).toEqual({ side, index: i });
        }
      });
      expect(v.hit(-5, -5)).toBeNull();
    });
  }
  it('vertical rows do not depend on token width; horizontal cells do', () => {
    const a = new HeadView(ctx(['a', 'b'], 'horizontal'), () => stateSource(ctx(['a', 'b'], 'horizontal')));
    const b = new HeadView(ctx(['a', 'bbbbbbbbbbbbbb'], 'horizontal'), () => stateSource(ctx(['a', 'bbbbbbbbbbbbbb'], 'horizontal')));
    expect(b.size().width).toBeGreaterThan(a.size().width);
    const long = Array.from({ length: 1024 }, (_, i) => `t${i}`);
    const c = ctx(long, 'vertical');
    const v = new HeadView(c, () => stateSource(c));
    expect(v.size().height).toBe(30 + 1024 * 20 + 10);
  });
  it('a sentence-pair filter leaves only that part in each column', () => {
    const c = ctx(tokens, 'vertical', 'ab', 4);
    const v = new HeadView(c, () => stateSource(c));
    expect(v.tokenPoint('q', 5)).toBeNull(); // a B token is not a query under A -> B
    expect(v.tokenPoint('k', 1)).toBeNull(); // an A token is not a key
    const p = v.tokenPoint('k', 5)!;
    expect(v.hit(p.x, p.y)).toEqual({ side: 'k', index: 5 });
  });
});

describe('model view layout', () => {
  it('maps every thumbnail back to its layer and head', () => {
    const c = ctx(['a', 'b', 'c'], 'vertical');
    const m = new ModelView(c);
    for (let l = 0; l < 3; ++l)
      for (let h = 0; h < 2; ++h) {
        const r = m.cell(l, h);
        expect(m.hit(r.x + r.w / 2, r.y + r.h / 2)).toEqual([l, h]);
        expect(m.hit(r.x + r.w + 3, r.y + 1)).toBeNull(); // the gap between thumbnails
      }
  });
});
