// BertViz's model view: layers × heads, each a thumbnail of that head's lines coloured by layer.
// Tokens are binned to the thumbnail's resolution (at most BINS bins per side) and the weights
// summed per pair of bins, so a thumbnail costs at most BINS² lines however long the text is.
// Thumbnails are computed a few layers per frame (the page stays responsive) and kept as bitmaps.
import { Ctx, headId, layerId } from './context';
import { binSubMatrix } from './lod';
import { CanvasPainter, Painter } from './painter';
import { Rect } from './scroll';
import { filterIndices } from './tokens';

export const THUMB = 92, GAP = 10, LEFT = 40, TOP = 54, BINS = 46;

export class ModelView {
  private binned = new Map<string, Float32Array>();
  private bitmaps = new Map<string, HTMLCanvasElement>();
  private queue: number[] = [];
  private running = false;
  onProgress: () => void = () => {};
  constructor(private ctx: Ctx) {}

  private key(l: number, h: number) {
    return `${l}.${h}.${this.ctx.state.filter}`;
  }
  private dims() {
    const m = this.ctx.meta;
    const { rows, cols } = filterIndices(m.tokens.length, m.sentence_b_start, this.ctx.state.filter);
    return { rows, cols, br: Math.min(BINS, rows.length), bc: Math.min(BINS, cols.length) };
  }
  size(): { width: number; height: number } {
    const m = this.ctx.meta;
    return { width: LEFT + m.n_heads * (THUMB + GAP) + GAP, height: TOP + m.n_layers * (THUMB + GAP) + GAP };
  }
  cell(l: number, h: number): Rect {
    return { x: LEFT + h * (THUMB + GAP), y: TOP + l * (THUMB + GAP), w: THUMB, h: THUMB };
  }
  hit(x: number, y: number): [number, number] | null {
    const m = this.ctx.meta;
    const h = Math.floor((x - LEFT) / (THUMB + GAP)), l = Math.floor((y - TOP) / (THUMB + GAP));
    if (h < 0 || l < 0 || h >= m.n_heads || l >= m.n_layers) return null;
    const c = this.cell(l, h);
    return x - c.x <= THUMB && y - c.y <= THUMB ? [l, h] : null;
  }
  ready(): number {
    let n = 0;
    for (let l = 0; l < this.ctx.meta.n_layers; ++l) if (this.binned.has(this.key(l, 0))) ++n;
    return n;
  }
  private compute(l: number): void {
    const m = this.ctx.meta;
    if (this.binned.has(this.key(l, 0))) return;
    const { rows, cols } = this.dims();
    const a = this.ctx.store.layer(l);
    for (let h = 0; h < m.n_heads; ++h) this.binned.set(this.key(l, h), binSubMatrix(a[h], m.tokens.length, rows, cols, BINS));
  }
  // Starts (or continues) computing thumbnails in the background, one layer per frame.
  schedule(): void {
    const m = this.ctx.meta;
    this.queue = [];
    for (let l = 0; l < m.n_layers; ++l) if (!this.binned.has(this.key(l, 0))) this.queue.push(l);
    if (this.running) return;
    this.running = true;
    const step = () => {
      const l = this.queue.shift();
      if (l === undefined) {
        this.running = false;
        this.onProgress();
        return;
      }
      this.compute(l);
      this.onProgress();
      setTimeout(step, 0);
    };
    setTimeout(step, 0);
  }
  private drawThumb(p: Painter, l: number, h: number, x0: number, y0: number): void {
    const b = this.binned.get(this.key(l, h));
    if (!b) return;
    const { br, bc } = this.dims();
    const color = this.ctx.layerColors[l];
    const xl = x0 + 6, xr = x0 + THUMB - 6;
    const yq = (bi: number) => y0 + 4 + ((bi + 0.5) * (THUMB - 8)) / br;
    const yk = (bj: number) => y0 + 4 + ((bj + 0.5) * (THUMB - 8)) / bc;
    for (let bi = 0; bi < br; ++bi)
      for (let bj = 0; bj < bc; ++bj) {
        const w = b[bi * BINS + bj];
        if (w * 255 >= 0.5) p.line(xl, yq(bi), xr, yk(bj), color, Math.min(1, w), 1);
      }
  }
  private bitmap(l: number, h: number): HTMLCanvasElement | null {
    const k = `${this.key(l, h)}|${this.ctx.state.theme}`;
    const hit = this.bitmaps.get(k);
    if (hit) return hit;
    if (!this.binned.has(this.key(l, h))) return null;
    const dpr = window.devicePixelRatio || 1;
    const c = document.createElement('canvas');
    c.width = c.height = Math.round(THUMB * dpr);
    const g = c.getContext('2d')!;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    const p = new CanvasPainter(g);
    this.drawThumb(p, l, h, 0, 0);
    p.flush();
    this.bitmaps.set(k, c);
    return c;
  }
  // ctx given: the screen (bitmaps); null: an export (vector lines, everything computed first).
  paint(p: Painter, view: Rect, g: CanvasRenderingContext2D | null): void {
    const m = this.ctx.meta;
    const th = this.ctx.theme();
    const s = this.ctx.state;
    if (!g) for (let l = 0; l < m.n_layers; ++l) this.compute(l);
    p.text(GAP, 14, `${m.model_type} · ${m.n_layers} layers × ${m.n_heads} heads · click a head to open it`, { color: th.text, size: 13, bold: true });
    for (let h = 0; h < m.n_heads; ++h) p.text(LEFT + h * (THUMB + GAP) + THUMB / 2, TOP - 12, `H${headId(m, h)}`, { color: th.muted, size: 11, align: 'center' });
    for (let l = 0; l < m.n_layers; ++l) {
      const y = TOP + l * (THUMB + GAP);
      if (y > view.y + view.h || y + THUMB < view.y) continue;
      p.text(LEFT - 8, y + THUMB / 2, `L${layerId(m, l)}`, { color: th.muted, size: 11, align: 'right' });
      for (let h = 0; h < m.n_heads; ++h) {
        const c = this.cell(l, h);
        if (c.x > view.x + view.w || c.x + THUMB < view.x) continue;
        const open = s.detail !== null && s.detail[0] === l && s.detail[1] === h;
        p.rect(c.x - 1, c.y - 1, THUMB + 2, THUMB + 2, open ? this.ctx.layerColors[l] : th.muted, open ? 0.9 : 0.25);
        p.rect(c.x, c.y, THUMB, THUMB, th.background, 1);
        if (g) {
          const bm = this.bitmap(l, h);
          if (bm) g.drawImage(bm, c.x, c.y, THUMB, THUMB);
          else p.text(c.x + THUMB / 2, c.y + THUMB / 2, '…', { color: th.muted, size: 12, align: 'center' });
        } else {
          this.drawThumb(p, l, h, c.x, c.y);
          p.flush();
        }
      }
    }
  }
  reset(): void {
    this.bitmaps.clear();
  }
}
