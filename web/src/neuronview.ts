// BertViz's neuron view for one layer and head: pick a query (hover or click a token on the left);
// its lines go to the keys. The labelled button "Show q·k computation" opens, for that query, the
// query vector q, each key vector k, the elementwise product q×k, the dot product q·k, the scaled
// q·k/√d and the softmax — positive blue, negative orange, opacity tanh(|v|/4). Causal models show
// no future keys. q and k are the engine's own (after RoPE; GQA keys are those of the shared head).
import { signedCell } from './colors';
import { Ctx, headId, layerName } from './context';
import { Painter } from './painter';
import { Rect } from './scroll';
import { label } from './tokens';

const ROW = 18, PAD = 10, TITLE = 70, FONT_SIZE = 12, GAP = 150, NUM = 64;

export interface Computation {
  keys: number[]; // visible keys
  dot: Float32Array;
  scaled: Float32Array;
  softmax: Float32Array;
}

// The numbers of the expanded view, from the stored q and k.
export function computeRow(q: Float32Array, k: Float32Array, d: number, i: number, n: number, causal: boolean): Computation {
  const keys = Array.from({ length: causal ? i + 1 : n }, (_, j) => j);
  const dot = new Float32Array(keys.length), scaled = new Float32Array(keys.length), softmax = new Float32Array(keys.length);
  let mx = -Infinity;
  keys.forEach((j, t) => {
    let s = 0;
    for (let e = 0; e < d; ++e) s += q[i * d + e] * k[j * d + e];
    dot[t] = s;
    scaled[t] = s / Math.sqrt(d);
    mx = Math.max(mx, scaled[t]);
  });
  let z = 0;
  keys.forEach((_, t) => (z += softmax[t] = Math.exp(scaled[t] - mx)));
  keys.forEach((_, t) => (softmax[t] /= z));
  return { keys, dot, scaled, softmax };
}

export class NeuronView {
  hoverQuery: number | null = null;
  constructor(private ctx: Ctx) {}
  private textW(): number {
    let w = 40;
    for (const t of this.ctx.meta.tokens) w = Math.max(w, this.ctx.measure(label(t), FONT_SIZE) + 8);
    return Math.min(180, w);
  }
  private cellW(): number {
    return Math.max(3, Math.min(8, Math.floor(512 / this.ctx.meta.head_dim)));
  }
  query(): number {
    return this.hoverQuery ?? this.ctx.state.nquery;
  }
  private x() {
    const tw = this.textW(), d = this.ctx.meta.head_dim, cw = this.cellW();
    const xq = PAD + tw, xk = xq + 6 + GAP; // line ends
    const xkText = xk + 6;
    const xk0 = xkText + tw + 10; // k cells
    const xp0 = xk0 + d * cw + 14; // q×k cells
    const xdot = xp0 + d * cw + 14;
    return { tw, cw, xq, xk, xkText, xk0, xp0, xdot, xscaled: xdot + NUM, xsoft: xdot + 2 * NUM, end: xdot + 3 * NUM + 60 };
  }
  size(): { width: number; height: number } {
    const x = this.x();
    return { width: (this.ctx.state.expand ? x.end : x.xkText + x.tw) + PAD, height: TITLE + this.ctx.meta.tokens.length * ROW + PAD };
  }
  hit(px: number, py: number): { kind: 'query' | 'key' | 'k' | 'qk' | 'num' | 'q'; index: number; dim?: number } | null {
    const x = this.x();
    const n = this.ctx.meta.tokens.length;
    const r = Math.floor((py - TITLE) / ROW);
    const d = this.ctx.meta.head_dim;
    if (this.ctx.state.expand && py >= TITLE - ROW - 4 && py < TITLE - 4 && px >= x.xk0 && px < x.xk0 + d * x.cw)
      return { kind: 'q', index: this.query(), dim: Math.floor((px - x.xk0) / x.cw) };
    if (r < 0 || r >= n) return null;
    if (px < x.xq) return { kind: 'query', index: r };
    if (px >= x.xkText && px < x.xkText + x.tw) return { kind: 'key', index: r };
    if (!this.ctx.state.expand) return null;
    if (px >= x.xk0 && px < x.xk0 + d * x.cw) return { kind: 'k', index: r, dim: Math.floor((px - x.xk0) / x.cw) };
    if (px >= x.xp0 && px < x.xp0 + d * x.cw) return { kind: 'qk', index: r, dim: Math.floor((px - x.xp0) / x.cw) };
    if (px >= x.xdot && px < x.end) return { kind: 'num', index: r };
    return null;
  }
  tokenPoint(kind: 'query' | 'key', index: number): { x: number; y: number } {
    const x = this.x();
    return { x: kind === 'query' ? x.xq - x.tw / 2 : x.xkText + x.tw / 2, y: TITLE + index * ROW + ROW / 2 };
  }
  computation(): Computation | null {
    const m = this.ctx.meta;
    if (!this.ctx.store.hasQK()) return null;
    const s = this.ctx.state;
    const v = this.ctx.store.qk(Math.max(0, s.layer));
    return computeRow(v.q[s.nhead], v.k[s.nhead], m.head_dim, this.query(), m.tokens.length, m.causal);
  }
  paint(p: Painter, view: Rect): void {
    const m = this.ctx.meta, s = this.ctx.state, th = this.ctx.theme();
    const n = m.tokens.length, d = m.head_dim;
    const layer = Math.max(0, s.layer);
    const x = this.x();
    const i = this.query();
    const a = this.ctx.store.layer(layer)[s.nhead];
    const color = this.ctx.headColors[s.nhead];
    const total = m.n_heads_model ?? m.n_heads, hid = headId(m, s.nhead);
    const kv = m.n_kv_heads && m.n_kv_heads !== total ? ` (key/value head ${Math.floor(hid / (total / m.n_kv_heads))} of ${m.n_kv_heads}, shared)` : '';
    p.text(PAD, 14, `${m.model_type} · ${layerName(m, layer)} · head ${hid}${kv} · query ${i} "${label(m.tokens[i], 30)}"`, { color: th.text, size: 13, bold: true });
    const y = (r: number) => TITLE + r * ROW + ROW / 2;
    const inView = (r: number) => y(r) >= view.y - ROW && y(r) <= view.y + view.h + ROW;
    const future = (j: number) => m.causal && j > i;
    for (let j = 0; j < n; ++j) {
      if (future(j)) continue;
      const y1 = y(i), y2 = y(j);
      if (Math.max(y1, y2) < view.y || Math.min(y1, y2) > view.y + view.h) continue;
      p.line(x.xq + 6, y1, x.xk, y2, color, a[i * n + j], 2);
    }
    p.flush();
    for (let r = 0; r < n; ++r) {
      if (!inView(r)) continue;
      if (r === i) p.rect(PAD, y(r) - ROW / 2 + 1, x.tw, ROW - 2, th.highlight, 1);
      p.text(x.xq, y(r), label(m.tokens[r]), { color: th.text, size: FONT_SIZE, align: 'right', bold: r === i });
      p.text(x.xkText, y(r), label(m.tokens[r]), { color: future(r) ? th.muted : th.text, size: FONT_SIZE });
    }
    if (!s.expand) return;
    const comp = this.computation();
    if (!comp) {
      p.text(x.xk0, TITLE - 12, 'this file has no query/key vectors (written without --view neuron)', { color: th.muted, size: 12 });
      return;
    }
    const v = this.ctx.store.qk(layer);
    const q = v.q[s.nhead], k = v.k[s.nhead];
    const heads = [['k', x.xk0], ['q × k', x.xp0], ['q·k', x.xdot], ['q·k/√d', x.xscaled], ['softmax', x.xsoft]] as const;
    for (const [t, xx] of heads) p.text(xx, TITLE - ROW - 14, t, { color: th.muted, size: 11 });
    // The query vector above the key vectors.
    p.text(x.xk0 - 6, TITLE - ROW / 2 - 4, 'q', { color: th.text, size: 11, align: 'right', bold: true });
    for (let e = 0; e < d; ++e) {
      const c = signedCell(q[i * d + e]);
      p.rect(x.xk0 + e * x.cw, TITLE - ROW - 3, x.cw - (x.cw > 4 ? 1 : 0), ROW - 4, c.color, c.alpha);
    }
    comp.keys.forEach((j, t) => {
      if (!inView(j)) return;
      const top = y(j) - ROW / 2 + 2;
      for (let e = 0; e < d; ++e) {
        const kc = signedCell(k[j * d + e]);
        p.rect(x.xk0 + e * x.cw, top, x.cw - (x.cw > 4 ? 1 : 0), ROW - 4, kc.color, kc.alpha);
        const pc = signedCell(q[i * d + e] * k[j * d + e]);
        p.rect(x.xp0 + e * x.cw, top, x.cw - (x.cw > 4 ? 1 : 0), ROW - 4, pc.color, pc.alpha);
      }
      for (const [val, xx] of [[comp.dot[t], x.xdot], [comp.scaled[t], x.xscaled]] as const) {
        const c = signedCell(val);
        p.rect(xx, top, NUM - 6, ROW - 4, c.color, c.alpha);
        p.text(xx + NUM - 9, y(j), val.toFixed(2), { color: c.alpha > 0.45 ? '#ffffff' : th.text, size: 10, align: 'right' });
      }
      p.rect(x.xsoft, top, (NUM - 6) * comp.softmax[t], ROW - 4, color, 0.8);
      p.text(x.xsoft + NUM, y(j), comp.softmax[t].toFixed(4), { color: th.text, size: 10 });
    });
  }
}
