// What every view shares: the data, the colours, the theme and the state (kept in the URL hash).
import { Theme } from './colors';
import { Meta, Store, ViewName } from './data';
import { Filter } from './tokens';
import { FONT } from './painter';

export type Agg = 'none' | 'mean' | 'max';

export interface State {
  view: ViewName;
  layer: number; // -1 = mean over layers
  heads: number[]; // active heads (head view)
  agg: Agg; // a pseudo-head instead of the active heads
  filter: Filter;
  layout: 'vertical' | 'horizontal';
  theme: 'light' | 'dark';
  token: number | null; // the query token that is hovered or pinned (head view), or null
  side: 'q' | 'k';
  nhead: number; // neuron view: its one head
  nquery: number; // neuron view: the query token
  expand: boolean; // neuron view: the q·k computation is open
  detail: [number, number] | null; // model view: the open detail panel (layer, head)
}

export interface Ctx {
  store: Store;
  meta: Meta;
  headColors: string[];
  layerColors: string[];
  state: State;
  theme(): Theme;
  update(patch: Partial<State>): void;
  measure(s: string, size: number): number;
  info(lines: string[]): void; // the value panel under the toolbar (exact numbers as text)
}

let measureCtx: CanvasRenderingContext2D | null = null;
const widths = new Map<string, number>();
export function measureText(s: string, size: number): number {
  const key = `${size}|${s}`;
  const hit = widths.get(key);
  if (hit !== undefined) return hit;
  if (!measureCtx) measureCtx = document.createElement('canvas').getContext('2d')!;
  measureCtx.font = `${size}px ${FONT}`;
  const w = measureCtx.measureText(s).width;
  widths.set(key, w);
  return w;
}

// Layers and heads under the model's own numbers (a file may hold a subset, --include-*).
export const layerId = (meta: Meta, l: number): number => meta.layer_ids?.[l] ?? l;
export const headId = (meta: Meta, h: number): number => meta.head_ids?.[h] ?? h;

export function layerName(meta: Meta, l: number): string {
  return l < 0 ? `mean of ${meta.n_layers} layers` : `layer ${layerId(meta, l)}`;
}

// URL hash <-> state, so that a view can be shared: #view=head&layer=3&heads=0.2&token=5 ...
export function stateToHash(s: State): string {
  const p = new URLSearchParams();
  p.set('view', s.view);
  p.set('layer', String(s.layer));
  p.set('heads', s.heads.join('.'));
  if (s.agg !== 'none') p.set('agg', s.agg);
  if (s.filter !== 'all') p.set('filter', s.filter);
  if (s.layout !== 'vertical') p.set('layout', s.layout);
  if (s.theme !== 'light') p.set('theme', s.theme);
  if (s.token !== null) p.set('token', `${s.side}${s.token}`);
  p.set('nhead', String(s.nhead));
  p.set('nquery', String(s.nquery));
  if (s.expand) p.set('expand', '1');
  if (s.detail) p.set('detail', s.detail.join('.'));
  return '#' + p.toString();
}

export function hashToState(hash: string, base: State, meta: Meta): State {
  const p = new URLSearchParams(hash.replace(/^#/, ''));
  const s: State = { ...base };
  const int = (v: string | null, lo: number, hi: number): number | null => {
    if (v === null || !/^-?\d+$/.test(v)) return null;
    const n = Number(v);
    return n >= lo && n <= hi ? n : null;
  };
  const n = meta.tokens.length;
  const view = p.get('view');
  if (view && (meta.views as string[]).includes(view)) s.view = view as State['view'];
  const layer = int(p.get('layer'), -1, meta.n_layers - 1);
  if (layer !== null) s.layer = layer;
  const heads = p.get('heads');
  if (heads !== null) {
    const hs = heads.split('.').map((x) => int(x, 0, meta.n_heads - 1)).filter((x): x is number => x !== null);
    if (hs.length) s.heads = [...new Set(hs)].sort((a, b) => a - b);
  }
  const agg = p.get('agg');
  if (agg === 'mean' || agg === 'max') s.agg = agg;
  const f = p.get('filter');
  if (f && ['all', 'aa', 'bb', 'ab', 'ba'].includes(f) && meta.sentence_b_start !== null) s.filter = f as Filter;
  if (p.get('layout') === 'horizontal') s.layout = 'horizontal';
  if (p.get('theme') === 'dark') s.theme = 'dark';
  const tok = p.get('token');
  if (tok && /^[qk]\d+$/.test(tok)) {
    const t = int(tok.slice(1), 0, n - 1);
    if (t !== null) {
      s.token = t;
      s.side = tok[0] as 'q' | 'k';
    }
  }
  const nh = int(p.get('nhead'), 0, meta.n_heads - 1);
  if (nh !== null) s.nhead = nh;
  const nq = int(p.get('nquery'), 0, n - 1);
  if (nq !== null) s.nquery = nq;
  s.expand = p.get('expand') === '1';
  const d = p.get('detail');
  if (d) {
    const [l, h] = d.split('.').map((x) => Number(x));
    if (Number.isInteger(l) && Number.isInteger(h) && l >= 0 && l < meta.n_layers && h >= 0 && h < meta.n_heads)
      s.detail = [l, h];
  }
  return s;
}
