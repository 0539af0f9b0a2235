// BertViz's head view: queries in one column (or row), keys in the other, one line per weight in
// the head's colour with opacity = weight / active heads. Hover a token: only its lines stay and
// the other column shows one box per head with opacity = weight; the value panel lists the exact
// numbers. Lines below an adaptive opacity threshold are skipped (level of detail); the bar left of
// each query shows the share of its row's mass that is drawn.
import { Ctx, headId, layerName } from './context';
import { planLines, LinePlan } from './lod';
import { Painter } from './painter';
import { Rect } from './scroll';
import { filterIndices, label } from './tokens';

export interface HeadSource {
  layer: number;
  heads: number[]; // head indices, or [] for a pseudo-head
  mats: Float32Array[];
  colors: string[];
  names: string[];
  scale: number; // line opacity = weight * scale
  title: string;
}

const ROW = 20, PAD = 10, BAR = 12, TITLE = 30, FONT_SIZE = 13;
export const LINE_BUDGET = 60000;

export class HeadView {
  hover: { side: 'q' | 'k'; index: number } | null = null;
  private planKey = '';
  private plan: LinePlan | null = null;
  private lines: Float32Array = new Float32Array(0); // (r, c, source, opacity) per line
  private geo = { textW: 80, gap: 240, x: new Float32Array(0), w: new Float32Array(0), key: '' };
  constructor(private ctx: Ctx, private source: () => HeadSource, private budget = LINE_BUDGET) {}

  private indices() {
    const m = this.ctx.meta;
    return filterIndices(m.tokens.length, m.sentence_b_start, this.ctx.state.filter);
  }
  private horizontal(): boolean {
    return this.ctx.state.layout === 'horizontal';
  }
  private geometry() {
    const toks = this.ctx.meta.tokens;
    const key = `${this.ctx.state.layout}|${toks.length}`;
    if (this.geo.key === key) return this.geo;
    let maxW = 0;
    const w = new Float32Array(toks.length), x = new Float32Array(toks.length);
    let acc = PAD + BAR + 4;
    toks.forEach((t, i) => {
      const tw = this.ctx.measure(label(t), FONT_SIZE);
      maxW = Math.max(maxW, tw);
      w[i] = Math.max(26, Math.min(200, tw + 10));
      x[i] = acc + w[i] / 2;
      acc += w[i];
    });
    this.geo = { textW: Math.min(200, Math.max(40, maxW + 8)), gap: 240, x, w, key };
    return this.geo;
  }
  // Anchor of a query (row r of the filtered list) or key (col c) in content coordinates.
  private qAnchor(r: number, i: number): [number, number] {
    const g = this.geometry();
    if (this.horizontal()) return [g.x[i], TITLE + BAR + ROW];
    return [PAD + BAR + 4 + g.textW + 6, TITLE + r * ROW + ROW / 2];
  }
  private kAnchor(c: number, j: number): [number, number] {
    const g = this.geometry();
    if (this.horizontal()) return [g.x[j], TITLE + BAR + ROW + g.gap];
    return [PAD + BAR + 4 + g.textW + 6 + g.gap, TITLE + c * ROW + ROW / 2];
  }
  size(): { width: number; height: number } {
    const g = this.geometry();
    const { rows, cols } = this.indices();
    if (this.horizontal()) {
      const n = this.ctx.meta.tokens.length;
      return { width: n ? g.x[n - 1] + g.w[n - 1] / 2 + PAD : 100, height: TITLE + BAR + 2 * ROW + g.gap + PAD };
    }
    return { width: PAD + BAR + 4 + 2 * g.textW + 12 + g.gap + PAD, height: TITLE + Math.max(rows.length, cols.length) * ROW + PAD };
  }
  // Which token is at a content point: the side and the token index.
  hit(x: number, y: number): { side: 'q' | 'k'; index: number } | null {
    const { rows, cols } = this.indices();
    const g = this.geometry();
    if (this.horizontal()) {
      const top = TITLE + BAR, bottom = TITLE + BAR + ROW + g.gap;
      const side = y >= top && y < top + ROW ? 'q' : y >= bottom && y < bottom + ROW ? 'k' : null;
      if (!side) return null;
      const list = side === 'q' ? rows : cols;
      for (const t of list) if (Math.abs(x - g.x[t]) <= g.w[t] / 2) return { side, index: t };
      return null;
    }
    const k = Math.floor((y - TITLE) / ROW);
    const [xl] = this.qAnchor(0, 0), [xr] = this.kAnchor(0, 0);
    if (x < xl && x >= PAD && k >= 0 && k < rows.length) return { side: 'q', index: rows[k] };
    if (x > xr && k >= 0 && k < cols.length) return { side: 'k', index: cols[k] };
    return null;
  }
  // The centre of a token's label (for tests and keyboard focus).
  tokenPoint(side: 'q' | 'k', index: number): { x: number; y: number } | null {
    const { rows, cols } = this.indices();
    const r = (side === 'q' ? rows : cols).indexOf(index);
    if (r < 0) return null;
    const g = this.geometry();
    if (this.horizontal()) {
      const [x, y] = side === 'q' ? this.qAnchor(r, index) : this.kAnchor(r, index);
      return { x, y: side === 'q' ? y - ROW / 2 : y + ROW / 2 };
    }
    const [x, y] = side === 'q' ? this.qAnchor(r, index) : this.kAnchor(r, index);
    return { x: side === 'q' ? x - 6 - g.textW / 2 : x + 6 + g.textW / 2, y };
  }
  private ensurePlan(src: HeadSource): LinePlan {
    const { rows, cols } = this.indices();
    const key = `${src.title}|${src.heads.join(',')}|${this.ctx.state.filter}|${src.scale}|${src.mats.length}`;
    if (this.plan && key === this.planKey) return this.plan;
    const n = this.ctx.meta.tokens.length;
    const plan = planLines(src.mats, n, rows, cols, src.scale, this.budget);
    const out = new Float32Array(plan.lines * 4);
    let t = 0;
    src.mats.forEach((a, s) => {
      rows.forEach((i, r) => {
        cols.forEach((j, c) => {
          const o = a[i * n + j] * src.scale;
          if (o >= plan.threshold) {
            out[t++] = r, out[t++] = c, out[t++] = s, out[t++] = o;
          }
        });
      });
    });
    this.lines = out;
    this.plan = plan;
    this.planKey = key;
    return plan;
  }
  stats(): { lines: number; threshold: number; minKept: number; meanKept: number } {
    const p = this.ensurePlan(this.source());
    let mn = 1, sum = 0;
    for (const k of p.kept) (mn = Math.min(mn, k)), (sum += k);
    return { lines: p.lines, threshold: p.threshold, minKept: mn, meanKept: p.kept.length ? sum / p.kept.length : 1 };
  }

  paint(p: Painter, view: Rect): void {
    const src = this.source();
    const th = this.ctx.theme();
    const { rows, cols } = this.indices();
    const toks = this.ctx.meta.tokens;
    const n = toks.length;
    const g = this.geometry();
    const hz = this.horizontal();
    const plan = this.ensurePlan(src);
    const visible = (a: [number, number], b: [number, number]) =>
      hz ? Math.max(a[0], b[0]) >= view.x && Math.min(a[0], b[0]) <= view.x + view.w
         : Math.max(a[1], b[1]) >= view.y && Math.min(a[1], b[1]) <= view.y + view.h;
    p.text(PAD, 14, src.title, { color: th.text, size: 13, bold: true });
    const hv = this.hover;
    // Boxes in the other column while hovering (one per head, opacity = weight).
    if (hv) {
      const other = hv.side === 'q' ? cols : rows;
      other.forEach((t, r) => {
        const [ax, ay] = hv.side === 'q' ? this.kAnchor(r, t) : this.qAnchor(r, t);
        const cellW = hz ? g.w[t] - 2 : g.textW;
        const cellH = ROW - 2;
        const x0 = hz ? ax - cellW / 2 : hv.side === 'q' ? ax + 4 : ax - 4 - cellW;
        const y0 = hz ? (hv.side === 'q' ? ay + 1 : ay - ROW + 1) : ay - cellH / 2;
        if (!hz && (y0 > view.y + view.h || y0 + cellH < view.y)) return;
        if (hz && (x0 > view.x + view.w || x0 + cellW < view.x)) return;
        const stripe = cellW / src.mats.length;
        src.mats.forEach((a, s) => {
          const w = hv.side === 'q' ? a[hv.index * n + t] : a[t * n + hv.index];
          if (w > 0) p.rect(x0 + s * stripe, y0, stripe, cellH, src.colors[s], w);
        });
      });
      // Only the hovered token's lines.
      src.mats.forEach((a, s) => {
        if (hv.side === 'q') {
          const r = rows.indexOf(hv.index);
          if (r < 0) return;
          const qa = this.qAnchor(r, hv.index);
          cols.forEach((j, c) => {
            const ka = this.kAnchor(c, j);
            if (visible(qa, ka)) p.line(qa[0], qa[1], ka[0], ka[1], src.colors[s], a[hv.index * n + j] * src.scale, 2);
          });
        } else {
          const c = cols.indexOf(hv.index);
          if (c < 0) return;
          const ka = this.kAnchor(c, hv.index);
          rows.forEach((i, r) => {
            const qa = this.qAnchor(r, i);
            if (visible(qa, ka)) p.line(qa[0], qa[1], ka[0], ka[1], src.colors[s], a[i * n + hv.index] * src.scale, 2);
          });
        }
      });
    } else {
      const L = this.lines;
      for (let t = 0; t < L.length; t += 4) {
        const r = L[t], c = L[t + 1];
        const qa = this.qAnchor(r, rows[r]), ka = this.kAnchor(c, cols[c]);
        if (visible(qa, ka)) p.line(qa[0], qa[1], ka[0], ka[1], src.colors[L[t + 2]], L[t + 3], 2);
      }
    }
    p.flush();
    // Kept-mass bars and token labels.
    rows.forEach((i, r) => {
      const [ax, ay] = this.qAnchor(r, i);
      if (hz ? ax < view.x - 200 || ax > view.x + view.w + 200 : ay < view.y - ROW || ay > view.y + view.h + ROW) return;
      const kept = plan.kept[r];
      if (hz) p.rect(ax - g.w[i] / 2 + 2, TITLE + 2, (g.w[i] - 4) * kept, BAR - 6, th.muted, 0.6);
      else p.rect(PAD, ay - 3, BAR * kept, 6, th.muted, 0.6);
      const on = hv && hv.side === 'q' && hv.index === i;
      if (hz) p.text(ax, ay - ROW / 2, label(toks[i]), { color: th.text, size: FONT_SIZE, align: 'center', bold: !!on });
      else p.text(ax - 6, ay, label(toks[i]), { color: th.text, size: FONT_SIZE, align: 'right', bold: !!on });
    });
    cols.forEach((j, c) => {
      const [ax, ay] = this.kAnchor(c, j);
      if (hz ? ax < view.x - 200 || ax > view.x + view.w + 200 : ay < view.y - ROW || ay > view.y + view.h + ROW) return;
      const on = hv && hv.side === 'k' && hv.index === j;
      if (hz) p.text(ax, ay + ROW / 2, label(toks[j]), { color: th.text, size: FONT_SIZE, align: 'center', bold: !!on });
      else p.text(ax + 6, ay, label(toks[j]), { color: th.text, size: FONT_SIZE, align: 'left', bold: !!on });
    });
  }

  // The exact values behind a hovered token: per head, its strongest partners (4 decimals).
  describe(h: { side: 'q' | 'k'; index: number }): string[] {
    const src = this.source();
    const toks = this.ctx.meta.tokens;
    const n = toks.length;
    const { rows, cols } = this.indices();
    const out = [`${h.side === 'q' ? 'query' : 'key'} ${h.index} "${label(toks[h.index], 40)}" · ${layerName(this.ctx.meta, src.layer)}`];
    if (h.side === 'q') {
      const r = rows.indexOf(h.index);
      if (r >= 0 && this.plan) out[0] += ` · ${(this.plan.kept[r] * 100).toFixed(1)}% of the row's mass drawn`;
    }
    src.mats.forEach((a, s) => {
      const list = (h.side === 'q' ? cols : rows).map((t) => ({ t, w: h.side === 'q' ? a[h.index * n + t] : a[t * n + h.index] }));
      list.sort((x, y) => y.w - x.w);
      out.push(`${src.names[s]}: ` + list.slice(0, 5).map((e) => `"${label(toks[e.t], 16)}" ${e.w.toFixed(4)}`).join(', '));
    });
    return out;
  }
}

// The head view of the app state: the chosen layer, the active heads or a pseudo-head.
export function stateSource(ctx: Ctx): HeadSource {
  const s = ctx.state;
  const m = ctx.meta;
  if (s.agg !== 'none') {
    const name = `${s.agg} over heads`;
    return { layer: s.layer, heads: [], mats: [ctx.store.head(s.layer, s.agg)], colors: [ctx.theme().text], names: [name], scale: 1,
             title: `${m.model_type} · ${layerName(m, s.layer)} · ${name}` };
  }
  const a = ctx.store.layer(s.layer);
  return {
    layer: s.layer,
    heads: s.heads,
    mats: s.heads.map((h) => a[h]),
    colors: s.heads.map((h) => ctx.headColors[h]),
    names: s.heads.map((h) => `head ${headId(m, h)}`),
    scale: 1 / s.heads.length,
    title: `${m.model_type} · ${layerName(m, s.layer)} · ${s.heads.length === m.n_heads ? 'all heads' : 'heads ' + s.heads.map((h) => headId(m, h)).join(', ')}`,
  };
}
