// The atlas (AttentionViz, Yeh et al. 2023): every head's queries and keys in one joint embedding.
// Views: matrix (all heads, layers x heads, WebGL), single (one head: pan/zoom, 2-D/3-D, colour
// modes, hover shows the token in its sentence, click a query for lines to its top keys), sentence
// (BertViz-style lines for one item and head) and image (ViT: the patch grid with the attention of a
// chosen patch or [CLS]). A selection or a search in one view shows in the others.
import { CATEGORY10, palette64 } from './colors';
import { AtlasStore, isSpecial, sentenceRow } from './atlasdata';
import { apply, fit, Fit, fitMatrix, identity, Mat4, multiply, PointGL, rotation } from './atlasgl';

export type AtlasView = 'matrix' | 'single' | 'sentence' | 'image';
export type ColorBy = 'qk' | 'position' | 'token' | 'sentence' | 'norm';

export interface AtlasState {
  view: AtlasView;
  method: string; // pca | tsne | umap
  dims: 2 | 3;
  color: ColorBy;
  layer: number;
  head: number;
  selected: number | null; // a token (its query and key)
  search: string;
  item: number; // sentence / image view
  hideSpecial: boolean;
  valueNorm: boolean;
  patch: number; // image view: the query position (0 = [CLS])
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const QUERY_RGB: [number, number, number] = [58, 166, 85]; // AttentionViz: queries green, keys pink
const KEY_RGB: [number, number, number] = [214, 64, 159];
// viridis at 9 stops
const VIRIDIS = [
  [68, 1, 84], [71, 45, 123], [59, 82, 139], [44, 114, 142], [33, 145, 140], [40, 174, 128], [94, 201, 98], [173, 220, 48], [253, 231, 37],
];
export function viridis(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(t) ? t : 0)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x)), f = x - i;
  return [0, 1, 2].map((c) => Math.round(VIRIDIS[i][c] * (1 - f) + VIRIDIS[i + 1][c] * f)) as [number, number, number];
}
function hex(s: string): [number, number, number] {
  const v = parseInt(s.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}
function hash(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; ++i) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}
const css = (c: [number, number, number], a = 1) => `rgba(${c[0]},${c[1]},${c[2]},${a})`;

// The token's text as a reader sees it (byte-level BPE's Ġ is a space, WordPiece's ## a join).
export function tokenText(label: string): string {
  return label.replace(/^Ġ/, ' ').replace(/^▁/, ' ').replace(/^##/, '');
}

// Tokens whose text contains the query (case-insensitive, surrounding spaces ignored).
export function searchTokens(tokens: string[], query: string): number[] {
  const q = query.trim().toLowerCase();
  if (!q) return [];
  const out: number[] = [];
  for (let i = 0; i < tokens.length; ++i) if (tokenText(tokens[i]).trim().toLowerCase().includes(q)) out.push(i);
  return out;
}

export class Atlas {
  state: AtlasState;
  readonly store: AtlasStore;
  private gl: PointGL;
  private glCanvas = el('canvas', { id: 'atlas-gl' });
  private overlay = el('canvas', { id: 'atlas-overlay' });
  private sentenceCanvas = el('canvas', { id: 'atlas-sentence-canvas' });
  private imageCanvas = el('canvas', { id: 'atlas-image-canvas' });
  private stage = el('div', { class: 'at-stage', id: 'atlas-stage' });
  private scroller = el('div', { class: 'at-scroller', id: 'atlas-scroller' });
  private side = el('div', { class: 'at-side', id: 'atlas-side', 'aria-live': 'polite' });
  private status = el('div', { class: 'as-status', id: 'atlas-status' });
  private controls = new Map<string, HTMLElement>();
  private tabs = new Map<AtlasView, HTMLButtonElement>();
  private matches: number[] = [];
  private hi = new Uint8Array(0); // [2N] highlight flags
  private hiCount = 0; // highlighted points, listed in the buffer 'hi-list'
  private version = 0; // bumped when colours or highlights change (the matrix redraws)
  // The matrix view paints in passes: 0, a sample of every head (the whole picture at once); 1, the
  // rest of every head's points; 2, the highlighted points on top. `next` counts heads in a pass.
  private matrixJob: { key: string; pass: number; next: number; started: number; frames: number; sampleMs: number; doneMs: number; points: number } | null = null;
  private hoverTile: [number, number] | null = null;
  private colorKey = '';
  private fits = new Map<string, Fit>();
  // single view camera
  private cam = { zoom: 1, panX: 0, panY: 0, yaw: 0.6, pitch: 0.35 };
  hover: number | null = null; // a point 0..2N-1 (queries then keys) under the mouse
  private frameRequested = false;
  frameTimes: number[] = [];
  lastDrawMs = 0;
  private sentenceLayout: { x0: number; x1: number; y0: number; row: number; tokens: number[] } | null = null;
  private imageLayout: { x: number; y: number; cell: number; grid: number } | null = null;

  constructor(store: AtlasStore) {
    this.store = store;
    const m = store.meta;
    const methods = this.methods();
    if (!methods.length) throw new Error('atlas data: no projections');
    const prefer = ['umap', 'tsne', 'pca'].find((x) => methods.includes(x)) ?? methods[0];
    this.state = {
      view: 'matrix', method: prefer, dims: this.has(prefer, 2) ? 2 : 3, color: 'qk',
      layer: Math.min(m.initial.layer, m.n_layers - 1), head: Math.min(m.initial.head, m.n_heads - 1),
      selected: null, search: '', item: 0, hideSpecial: false, valueNorm: false, patch: 0,
    };
    this.build();
    this.gl = new PointGL(this.glCanvas);
    this.hi = new Uint8Array(2 * store.n);
    this.gl.buffer('hi', this.hi);
    // A fixed random order of the points: the matrix view draws a prefix of it per head (a uniform
    // sample, as dense as the tile's pixels), then every highlighted point.
    const order = new Uint32Array(2 * store.n).map((_, i) => i);
    let seed = 12345;
    for (let i = order.length - 1; i > 0; --i) {
      seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
      const j = seed % (i + 1);
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    this.gl.buffer('order', order, true);
    new ResizeObserver(() => this.request()).observe(this.stage);
    this.update({});
  }

  methods(): string[] {
    const out: string[] = [];
    for (const p of this.store.meta.projections) {
      const name = p.name.replace(/[23]$/, '');
      if (!out.includes(name)) out.push(name);
    }
    return out;
  }
  has(method: string, dims: number): boolean {
    return this.store.meta.projections.some((p) => p.name === `${method}${dims}`);
  }
  // The projection a view draws: the matrix view is always 2-D when the method has it.
  projectionName(view: AtlasView = this.state.view): string {
    const s = this.state;
    const want = view === 'matrix' ? 2 : s.dims;
    if (this.has(s.method, want)) return `${s.method}${want}`;
    return `${s.method}${want === 2 ? 3 : 2}`;
  }

  private build(): void {
    const m = this.store.meta;
    document.title = `${m.title} — attnscope atlas`;
    const bar = el('div', { class: 'as-bar', role: 'toolbar' });
    bar.appendChild(el('span', { class: 'as-title', title: m.title }, m.title));
    const tabs = el('span', { class: 'as-tabs', role: 'tablist' });
    const views: AtlasView[] = ['matrix', 'single', 'sentence'];
    if (m.image) views.push('image');
    for (const v of views) {
      const b = el('button', { role: 'tab', id: `atlas-tab-${v}`, 'aria-selected': 'false' }, `${v} view`);
      b.addEventListener('click', () => this.update({ view: v }));
      this.tabs.set(v, b);
      tabs.appendChild(b);
    }
    bar.appendChild(tabs);
    const select = (id: string, label: string, options: [string, string][], on: (v: string) => void) => {
      const s = el('select', { id: `atlas-${id}`, 'aria-label': label });
      for (const [v, t] of options) s.appendChild(el('option', { value: v }, t));
      s.addEventListener('change', () => on(s.value));
      const l = el('label', {}, label);
      l.appendChild(s);
      bar.appendChild(l);
      this.controls.set(id, s);
      return s;
    };
    select('method', 'Projection', this.methods().map((x) => [x, x === 'tsne' ? 't-SNE' : x.toUpperCase()]), (v) => this.update({ method: v }));
    const dimsBtn = el('button', { id: 'atlas-dims', 'aria-pressed': 'false' }, '3-D');
    dimsBtn.addEventListener('click', () => this.update({ dims: this.state.dims === 3 ? 2 : 3 }));
    bar.appendChild(dimsBtn);
    this.controls.set('dims', dimsBtn);
    select('color', 'Colour', [['qk', 'query / key'], ['position', 'position'], ['token', 'token'], ['sentence', 'sentence'], ['norm', 'norm']],
      (v) => this.update({ color: v as ColorBy }));
    select('layer', 'Layer', Array.from({ length: m.n_layers }, (_, l) => [String(l), String(l)]), (v) => this.update({ layer: Number(v) }));
    select('head', 'Head', Array.from({ length: m.n_heads }, (_, h) => [String(h), String(h)]), (v) => this.update({ head: Number(v) }));
    const search = el('input', { id: 'atlas-search', type: 'search', placeholder: 'search tokens', 'aria-label': 'search tokens' });
    search.addEventListener('input', () => this.update({ search: search.value }));
    search.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && this.matches.length) {
        const cur = this.state.selected === null ? -1 : this.matches.indexOf(this.state.selected);
        this.select(this.matches[(cur + 1) % this.matches.length]);
      }
    });
    bar.appendChild(search);
    this.controls.set('search', search);
    const count = el('span', { id: 'atlas-search-count', class: 'as-hint' });
    bar.appendChild(count);
    this.controls.set('count', count);
    const hide = el('label', { id: 'atlas-hide-label' }, 'hide special tokens');
    const hideBox = el('input', { id: 'atlas-hide', type: 'checkbox' });
    hideBox.addEventListener('change', () => this.update({ hideSpecial: hideBox.checked }));
    hide.prepend(hideBox);
    bar.appendChild(hide);
    this.controls.set('hide', hide);
    const vn = el('label', { id: 'atlas-vnorm-label' }, 'weight by |value|');
    const vnBox = el('input', { id: 'atlas-vnorm', type: 'checkbox' });
    vnBox.addEventListener('change', () => this.update({ valueNorm: vnBox.checked }));
    vn.prepend(vnBox);
    bar.appendChild(vn);
    this.controls.set('vnorm', vn);
    const itemSel = select('item', 'Item', m.items.map((t, i) => [String(i), `${i}: ${t.length > 40 ? t.slice(0, 40) + '…' : t}`]), (v) =>
      this.update({ item: Number(v), patch: 0 }));
    this.controls.set('item', itemSel);
    const cls = el('button', { id: 'atlas-cls' }, '[CLS]');
    cls.addEventListener('click', () => this.update({ patch: 0, selected: this.store.itemStart[this.state.item] }));
    bar.appendChild(cls);
    this.controls.set('cls', cls);
    document.body.appendChild(bar);

    const main = el('div', { class: 'as-main' });
    this.stage.append(this.glCanvas, this.overlay, this.scroller, this.imageCanvas);
    this.scroller.appendChild(this.sentenceCanvas);
    main.append(this.stage, this.side);
    document.body.append(main, this.status);
    this.status.textContent =
      `${m.n} tokens in ${m.items.length} items · ${m.n_layers}×${m.n_heads} heads · ${2 * m.n} points per head · ` +
      `keys translated${m.equalize ? ', norms equalized' : ''}`;

    this.overlay.addEventListener('mousemove', (e) => this.onMove(e));
    this.overlay.addEventListener('mouseleave', () => {
      this.hover = null;
      this.request();
    });
    this.overlay.addEventListener('click', (e) => this.onClick(e));
    this.overlay.addEventListener('wheel', (e) => this.onWheel(e), { passive: false });
    this.overlay.addEventListener('mousedown', (e) => this.onDrag(e));
    this.sentenceCanvas.addEventListener('mousemove', (e) => this.onSentenceMove(e));
    this.sentenceCanvas.addEventListener('click', (e) => {
      const t = this.sentenceToken(e);
      if (t) this.select(t.token);
    });
    this.imageCanvas.addEventListener('click', (e) => this.onImageClick(e));
    document.addEventListener('keydown', (e) => {
      if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement) return;
      if (e.key === 'Escape') this.update({ selected: null, view: this.state.view === 'single' ? 'matrix' : this.state.view });
    });
  }

  update(patch: Partial<AtlasState>): void {
    const s = (this.state = { ...this.state, ...patch });
    const m = this.store.meta;
    s.layer = Math.max(0, Math.min(m.n_layers - 1, s.layer | 0));
    s.head = Math.max(0, Math.min(m.n_heads - 1, s.head | 0));
    if (!this.methods().includes(s.method)) s.method = this.methods()[0];
    if (s.dims === 3 && !this.has(s.method, 3)) s.dims = 2;
    if (s.dims === 2 && !this.has(s.method, 2)) s.dims = 3;
    if (s.view === 'image' && !m.image) s.view = 'matrix';
    if (s.selected !== null) {
      if (s.selected < 0 || s.selected >= m.n) s.selected = null;
      else if (patch.selected !== undefined) {
        s.item = this.store.item[s.selected];
        s.patch = this.store.position[s.selected];
      }
    }
    s.item = Math.max(0, Math.min(m.items.length - 1, s.item | 0));
    if ('patch' in patch && patch.selected === undefined) s.selected = this.store.itemStart[s.item] + Math.max(0, s.patch);
    if ('method' in patch || 'dims' in patch) this.cam = { zoom: 1, panX: 0, panY: 0, yaw: 0.6, pitch: 0.35 };
    if ('search' in patch) this.matches = searchTokens(m.tokens, s.search);
    for (const [v, b] of this.tabs) b.setAttribute('aria-selected', String(v === s.view));
    (this.controls.get('method') as HTMLSelectElement).value = s.method;
    const dimsBtn = this.controls.get('dims') as HTMLButtonElement;
    dimsBtn.setAttribute('aria-pressed', String(s.dims === 3));
    dimsBtn.disabled = !(this.has(s.method, 2) && this.has(s.method, 3));
    (this.controls.get('color') as HTMLSelectElement).value = s.color;
    (this.controls.get('layer') as HTMLSelectElement).value = String(s.layer);
    (this.controls.get('head') as HTMLSelectElement).value = String(s.head);
    (this.controls.get('item') as HTMLSelectElement).value = String(s.item);
    const inSentence = s.view === 'sentence';
    this.controls.get('hide')!.hidden = !inSentence;
    this.controls.get('vnorm')!.hidden = !inSentence;
    this.controls.get('item')!.parentElement!.hidden = !(inSentence || s.view === 'image');
    this.controls.get('cls')!.hidden = s.view !== 'image';
    this.controls.get('count')!.textContent = s.search.trim() ? `${this.matches.length} match${this.matches.length === 1 ? '' : 'es'}` : '';
    this.glCanvas.hidden = this.overlay.hidden = !(s.view === 'matrix' || s.view === 'single');
    this.scroller.hidden = !inSentence;
    this.imageCanvas.hidden = s.view !== 'image';
    this.updateHighlight();
    this.updateSide();
    this.request();
  }

  select(token: number | null): void {
    this.update({ selected: token });
  }

  request(): void {
    if (this.frameRequested) return;
    this.frameRequested = true;
    requestAnimationFrame((t) => {
      this.frameRequested = false;
      this.frameTimes.push(t);
      if (this.frameTimes.length > 240) this.frameTimes.shift();
      const t0 = performance.now();
      this.draw();
      this.lastDrawMs = performance.now() - t0;
    });
  }

  // --- colours and highlights -------------------------------------------------------------------

  private updateHighlight(): void {
    const n = this.store.n, s = this.state;
    this.hi.fill(0);
    for (const i of this.matches) this.hi[i] = this.hi[n + i] = 1;
    if (s.selected !== null) this.hi[s.selected] = this.hi[n + s.selected] = 1;
    this.gl.buffer('hi', this.hi);
    const list: number[] = [];
    for (let p = 0; p < 2 * n; ++p) if (this.hi[p]) list.push(p);
    this.hiCount = list.length;
    this.gl.buffer('hi-list', new Uint32Array(list.length ? list : [0]), true);
    ++this.version;
  }
  // Alpha of the points not highlighted: a search dims the rest hard, a selection lightly.
  dimmed(): number {
    return this.matches.length > 0 ? 0.1 : this.state.selected !== null ? 0.45 : 0;
  }

  // RGBA per point [2N] for head-independent modes, or [H * 2N] of layer l for 'norm'.
  private colors(l: number): { buf: WebGLBuffer; perHead: boolean } {
    const s = this.state, st = this.store, n = st.n, m = st.meta;
    const perHead = s.color === 'norm';
    const key = perHead ? `color-norm-${l}` : `color-${s.color}`;
    if (this.gl.has(key)) return { buf: this.gl.buffer(key), perHead };
    const heads = perHead ? m.n_heads : 1;
    const c = new Uint8Array(heads * 2 * n * 4);
    const cat = palette64();
    for (let h = 0; h < heads; ++h) {
      let qn: Float32Array | null = null, kn: Float32Array | null = null;
      const range = [Infinity, -Infinity, Infinity, -Infinity];
      if (perHead) {
        qn = st.norm('q', l, h);
        kn = st.norm('k', l, h);
        for (let i = 0; i < n; ++i) {
          range[0] = Math.min(range[0], qn[i]), range[1] = Math.max(range[1], qn[i]);
          range[2] = Math.min(range[2], kn[i]), range[3] = Math.max(range[3], kn[i]);
        }
      }
      for (let p = 0; p < 2 * n; ++p) {
        const i = p % n, isKey = p >= n;
        let rgb: [number, number, number];
        if (s.color === 'qk') rgb = isKey ? KEY_RGB : QUERY_RGB;
        else if (s.color === 'position') {
          const [a, b] = st.itemTokens(st.item[i]);
          rgb = viridis(b - a > 1 ? (i - a) / (b - a - 1) : 0);
        } else if (s.color === 'token') rgb = hex(cat[hash(tokenText(m.tokens[i]).trim().toLowerCase()) % cat.length]);
        else if (s.color === 'sentence') rgb = hex(cat[st.item[i] % cat.length]);
        else {
          const v = isKey ? kn![i] : qn![i], lo = isKey ? range[2] : range[0], hi = isKey ? range[3] : range[1];
          rgb = viridis(hi > lo ? (v - lo) / (hi - lo) : 0.5);
        }
        const o = (h * 2 * n + p) * 4;
        c[o] = rgb[0], c[o + 1] = rgb[1], c[o + 2] = rgb[2], c[o + 3] = s.color === 'qk' || s.color === 'norm' ? 200 : 220;
      }
    }
    if (this.colorKey !== key && !perHead) this.gl.drop('color-');
    if (this.colorKey !== key) ++this.version;
    this.colorKey = key;
    return { buf: this.gl.buffer(key, c), perHead };
  }

  private positions(name: string, l: number): WebGLBuffer {
    const key = `pos-${name}-${l}`;
    if (this.gl.has(key)) return this.gl.buffer(key);
    return this.gl.buffer(key, this.store.projection(name, l));
  }
  headFit(name: string, l: number, h: number): Fit {
    const key = `${name}/${l}/${h}`;
    let f = this.fits.get(key);
    if (!f) {
      f = fit(this.store.head(name, l, h), this.store.dims(name), 2 * this.store.n);
      this.fits.set(key, f);
    }
    return f;
  }

  // --- drawing ----------------------------------------------------------------------------------

  private draw(): void {
    const s = this.state;
    if (s.view === 'matrix') this.drawMatrix();
    else if (s.view === 'single') this.drawSingle();
    else if (s.view === 'sentence') this.drawSentence();
    else this.drawImage();
  }

  private overlayContext(): CanvasRenderingContext2D {
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    const w = this.overlay.clientWidth, h = this.overlay.clientHeight;
    if (this.overlay.width !== Math.round(w * dpr) || this.overlay.height !== Math.round(h * dpr)) {
      this.overlay.width = Math.round(w * dpr);
      this.overlay.height = Math.round(h * dpr);
    }
    const g = this.overlay.getContext('2d')!;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    return g;
  }

  // Tile of head (l, h) in CSS pixels.
  tile(l: number, h: number): { x: number; y: number; w: number; h: number } {
    const m = this.store.meta;
    const W = this.stage.clientWidth, Hh = this.stage.clientHeight;
    const left = 34, top = 18;
    const size = Math.max(8, Math.min((W - left - 4) / m.n_heads, (Hh - top - 4) / m.n_layers));
    return { x: left + h * size, y: top + l * size, w: size - 2, h: size - 2 };
  }

  // Points one frame of the matrix view may draw; the rest of the heads follow in the next frames,
  // so the page answers while a large corpus is still being painted.
  static readonly MATRIX_POINTS_PER_FRAME = 150000;

  // Points of each head in the first pass: about as many as the tile has device pixels (0.6 per
  // pixel, at least 2,000); the rest follow in the second pass.
  private matrixSample(): number {
    const t = this.tile(0, 0), dpr = Math.min(window.devicePixelRatio || 1, 2);
    return Math.min(2 * this.store.n, Math.max(2000, Math.round(t.w * t.h * dpr * dpr * 0.6)));
  }

  private drawMatrix(): void {
    const st = this.store, m = st.meta, s = this.state, n = st.n;
    const { w: W, h: H, dpr } = this.gl.resize();
    const name = this.projectionName('matrix');
    const d = st.dims(name);
    const key = [name, this.version, s.color, W, H, dpr].join('|');
    if (!this.matrixJob || this.matrixJob.key !== key) {
      this.gl.clear([1, 1, 1]);
      this.matrixJob = { key, pass: 0, next: 0, started: performance.now(), frames: 0, sampleMs: 0, doneMs: 0, points: 0 };
    }
    const job = this.matrixJob;
    const size = this.tile(0, 0).w;
    const pointSize = Math.max(1, Math.min(3, size / 60)) * dpr;
    const sample = this.matrixSample();
    const dim = this.dimmed();
    const heads = m.n_layers * m.n_heads;
    let spent = 0;
    if (job.pass < 3) ++job.frames;
    while (job.pass < 3 && spent < Atlas.MATRIX_POINTS_PER_FRAME) {
      if (job.next >= heads || (job.pass === 1 && sample >= 2 * n) || (job.pass === 2 && !this.hiCount)) {
        if (job.pass === 0) job.sampleMs = performance.now() - job.started;
        ++job.pass;
        job.next = 0;
        continue;
      }
      const l = Math.floor(job.next / m.n_heads), h = job.next % m.n_heads;
      const col = this.colors(l);
      const t = this.tile(l, h);
      const base = {
        pos: this.positions(name, l), posOffset: h * 2 * n * d * 4, dims: d, color: col.buf, colorOffset: col.perHead ? h * 2 * n * 4 : 0,
        hi: this.gl.buffer('hi'), m: fitMatrix(this.headFit(name, l, h), 0.92, 0.92), size: pointSize, dim,
        viewport: [Math.round(t.x * dpr), Math.round((H - t.y - t.h) * dpr), Math.round(t.w * dpr), Math.round(t.h * dpr)] as [number, number, number, number],
      };
      if (job.pass === 0) {
        this.gl.draw({ ...base, count: sample, indices: sample < 2 * n ? this.gl.buffer('order') : undefined });
        spent += sample;
        job.points += sample;
      } else if (job.pass === 1) {
        this.gl.draw({ ...base, count: 2 * n - sample, indices: this.gl.buffer('order'), first: sample });
        spent += 2 * n - sample;
        job.points += 2 * n - sample;
      } else {
        this.gl.draw({ ...base, count: this.hiCount, indices: this.gl.buffer('hi-list') });
        spent += this.hiCount;
      }
      ++job.next;
    }
    if (job.pass < 3) this.request();
    else if (!job.doneMs) job.doneMs = performance.now() - job.started;
    const g = this.overlayContext();
    g.font = '11px "DejaVu Sans", sans-serif';
    g.fillStyle = '#555';
    g.textBaseline = 'middle';
    for (let l = 0; l < m.n_layers; ++l) {
      const t = this.tile(l, 0);
      g.textAlign = 'right';
      g.fillText(`L${l}`, t.x - 4, t.y + t.h / 2);
    }
    g.textAlign = 'center';
    for (let h = 0; h < m.n_heads; ++h) {
      const t = this.tile(0, h);
      g.fillText(`H${h}`, t.x + t.w / 2, t.y - 9);
    }
    for (let l = 0; l < m.n_layers; ++l)
      for (let h = 0; h < m.n_heads; ++h) {
        const t = this.tile(l, h);
        const current = l === s.layer && h === s.head;
        const hovered = this.hoverTile !== null && this.hoverTile[0] === l && this.hoverTile[1] === h;
        g.strokeStyle = current ? '#1f77b4' : hovered ? '#333' : '#e2e4e8';
        g.lineWidth = current || hovered ? 2 : 1;
        g.strokeRect(t.x - 0.5, t.y - 0.5, t.w + 1, t.h + 1);
      }
    if (this.hoverTile) {
      const [l, h] = this.hoverTile, t = this.tile(l, h);
      const label = `layer ${l}, head ${h} · Spearman(q·k, distance) ${m.spearman[l][h].toFixed(3)}`;
      const w = g.measureText(label).width + 10;
      const x = Math.min(t.x, this.stage.clientWidth - w - 4), y = t.y + t.h + 4;
      g.fillStyle = 'rgba(255,255,255,0.92)';
      g.fillRect(x, y, w, 18);
      g.fillStyle = '#111';
      g.textAlign = 'left';
      g.fillText(label, x + 5, y + 9);
    }
    if (job.pass < 3) {
      g.fillStyle = '#666';
      g.textAlign = 'left';
      g.fillText(job.pass === 0 ? `drawing heads ${job.next}/${heads} …` : `adding the rest of the points: ${job.pass === 1 ? job.next : heads}/${heads} heads …`,
        6, this.stage.clientHeight - 10);
    }
  }

  // The single view's matrix: fit, camera (3-D rotation), zoom, pan, aspect.
  singleMatrix(): Mat4 {
    const name = this.projectionName('single');
    const f = this.headFit(name, this.state.layer, this.state.head);
    const W = this.stage.clientWidth - 0, H = this.stage.clientHeight;
    const side = Math.min(W, H);
    const z = this.cam.zoom * 0.9;
    let m = fitMatrix(f, 1, 1);
    if (this.store.dims(name) === 3) m = multiply(rotation(this.cam.yaw, this.cam.pitch), m);
    const a = identity();
    a[0] = (z * side) / W;
    a[5] = (z * side) / H;
    a[10] = 0.5;
    a[12] = this.cam.panX;
    a[13] = this.cam.panY;
    return multiply(a, m);
  }

  // Where point p (0..2N-1) of the current head is on the stage, in CSS pixels.
  pointStage(p: number, mat = this.singleMatrix()): { x: number; y: number } {
    const name = this.projectionName('single'), d = this.store.dims(name);
    const v = this.store.head(name, this.state.layer, this.state.head);
    const [x, y] = apply(mat, v[p * d], v[p * d + 1], d === 3 ? v[p * d + 2] : 0);
    return { x: ((x + 1) / 2) * this.stage.clientWidth, y: ((1 - y) / 2) * this.stage.clientHeight };
  }

  private drawSingle(): void {
    const st = this.store, s = this.state, n = st.n;
    this.matrixJob = null;
    this.gl.resize();
    this.gl.clear([1, 1, 1]);
    const name = this.projectionName('single');
    const d = st.dims(name);
    const mat = this.singleMatrix();
    const col = this.colors(s.layer);
    const single = {
      pos: this.positions(name, s.layer), posOffset: s.head * 2 * n * d * 4, dims: d, color: col.buf,
      colorOffset: col.perHead ? s.head * 2 * n * 4 : 0, hi: this.gl.buffer('hi'), m: mat,
      size: Math.max(2, Math.min(7, 2.5 * Math.sqrt(this.cam.zoom))) * Math.min(window.devicePixelRatio || 1, 2), dim: this.dimmed(),
    };
    this.gl.draw({ ...single, count: 2 * n });
    if (this.hiCount) this.gl.draw({ ...single, count: this.hiCount, indices: this.gl.buffer('hi-list') });
    const g = this.overlayContext();
    // the selected query's lines to its top keys
    if (s.selected !== null) {
      const q = this.pointStage(s.selected, mat);
      const keys = st.topKeys(s.layer, s.head, s.selected);
      const top = Math.max(1e-9, ...keys.map((k) => k.weight));
      for (const k of keys) {
        const p = this.pointStage(n + k.key, mat);
        g.strokeStyle = css(KEY_RGB, 0.15 + 0.85 * (k.weight / top));
        g.lineWidth = 1 + 2.5 * (k.weight / top);
        g.beginPath();
        g.moveTo(q.x, q.y);
        g.lineTo(p.x, p.y);
        g.stroke();
      }
      g.strokeStyle = '#000';
      g.lineWidth = 2;
      g.beginPath();
      g.arc(q.x, q.y, 7, 0, 2 * Math.PI);
      g.stroke();
    }
    if (this.hover !== null) {
      const p = this.pointStage(this.hover, mat);
      g.strokeStyle = '#111';
      g.lineWidth = 1.5;
      g.beginPath();
      g.arc(p.x, p.y, 6, 0, 2 * Math.PI);
      g.stroke();
      const label = `${this.hover < n ? 'query' : 'key'} ${JSON.stringify(tokenText(st.meta.tokens[this.hover % n]))}`;
      g.font = '12px "DejaVu Sans", sans-serif';
      const w = g.measureText(label).width + 8;
      g.fillStyle = 'rgba(255,255,255,0.9)';
      g.fillRect(p.x + 9, p.y - 20, w, 18);
      g.fillStyle = '#111';
      g.textBaseline = 'middle';
      g.textAlign = 'left';
      g.fillText(label, p.x + 13, p.y - 11);
    }
    g.font = '12px "DejaVu Sans", sans-serif';
    g.fillStyle = '#444';
    g.textAlign = 'left';
    g.textBaseline = 'top';
    const rho = st.meta.spearman[s.layer][s.head];
    g.fillText(`layer ${s.layer}, head ${s.head} · ${name.replace(/\d$/, '')} ${d}-D · Spearman(q·k, distance) ${rho.toFixed(3)}`, 8, 6);
    this.legend(g);
  }

  private legend(g: CanvasRenderingContext2D): void {
    const s = this.state;
    g.font = '11px "DejaVu Sans", sans-serif';
    g.textBaseline = 'middle';
    const y = this.stage.clientHeight - 14;
    if (s.color === 'qk') {
      g.fillStyle = css(QUERY_RGB);
      g.fillRect(8, y - 5, 10, 10);
      g.fillStyle = '#333';
      g.fillText('query', 22, y);
      g.fillStyle = css(KEY_RGB);
      g.fillRect(70, y - 5, 10, 10);
      g.fillStyle = '#333';
      g.fillText('key', 84, y);
    } else if (s.color === 'position' || s.color === 'norm') {
      for (let i = 0; i < 100; ++i) {
        g.fillStyle = css(viridis(i / 99));
        g.fillRect(8 + i, y - 5, 1, 10);
      }
      g.fillStyle = '#333';
      g.fillText(s.color === 'position' ? 'first → last token' : 'low → high norm (per head, q and k apart)', 114, y);
    }
  }

  // --- single view interaction ------------------------------------------------------------------

  private nearest(x: number, y: number, radius = 10): number | null {
    if (this.state.view !== 'single') return null;
    const mat = this.singleMatrix();
    const name = this.projectionName('single'), d = this.store.dims(name);
    const v = this.store.head(name, this.state.layer, this.state.head);
    const W = this.stage.clientWidth, H = this.stage.clientHeight;
    let best = -1, bd = radius * radius;
    const dim = this.dimmed() > 0;
    for (let p = 0; p < 2 * this.store.n; ++p) {
      if (dim && !this.hi[p] && this.matches.length) continue; // with a search, only matches are pickable
      const [cx, cy] = apply(mat, v[p * d], v[p * d + 1], d === 3 ? v[p * d + 2] : 0);
      const dx = ((cx + 1) / 2) * W - x, dy = ((1 - cy) / 2) * H - y;
      const dd = dx * dx + dy * dy;
      if (dd < bd) (bd = dd), (best = p);
    }
    return best < 0 ? null : best;
  }
  private local(e: MouseEvent): { x: number; y: number } {
    const r = this.stage.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }
  private tileAt(x: number, y: number): [number, number] | null {
    const m = this.store.meta;
    const t0 = this.tile(0, 0), step = this.tile(1, 1);
    const h = Math.floor((x - t0.x) / (step.x - t0.x)), l = Math.floor((y - t0.y) / (step.y - t0.y));
    return l >= 0 && l < m.n_layers && h >= 0 && h < m.n_heads ? [l, h] : null;
  }
  private onMove(e: MouseEvent): void {
    const { x, y } = this.local(e);
    if (this.state.view === 'matrix') {
      const t = this.tileAt(x, y);
      if (String(t) !== String(this.hoverTile)) {
        this.hoverTile = t;
        this.request();
      }
      return;
    }
    if (this.state.view === 'single') {
      const p = this.nearest(x, y);
      if (p !== this.hover) {
        this.hover = p;
        this.updateSide();
        this.request();
      }
    }
  }
  private onClick(e: MouseEvent): void {
    const { x, y } = this.local(e);
    const s = this.state;
    if (s.view === 'matrix') {
      const t = this.tileAt(x, y);
      if (t) this.update({ view: 'single', layer: t[0], head: t[1] });
      return;
    }
    if (this.dragged) return;
    const p = this.nearest(x, y);
    this.select(p === null ? null : p % this.store.n);
  }
  private dragged = false;
  private onDrag(e: MouseEvent): void {
    if (this.state.view !== 'single') return;
    const x0 = e.clientX, y0 = e.clientY, cam0 = { ...this.cam };
    this.dragged = false;
    const three = this.store.dims(this.projectionName('single')) === 3;
    const move = (ev: MouseEvent) => {
      const dx = ev.clientX - x0, dy = ev.clientY - y0;
      if (Math.abs(dx) + Math.abs(dy) > 3) this.dragged = true;
      if (three && !ev.shiftKey) {
        this.cam.yaw = cam0.yaw + dx * 0.01;
        this.cam.pitch = Math.max(-1.5, Math.min(1.5, cam0.pitch + dy * 0.01));
      } else {
        this.cam.panX = cam0.panX + (2 * dx) / this.stage.clientWidth;
        this.cam.panY = cam0.panY - (2 * dy) / this.stage.clientHeight;
      }
      this.request();
    };
    const up = () => {
      window.removeEventListener('mousemove', move);
      window.removeEventListener('mouseup', up);
      setTimeout(() => (this.dragged = false), 0);
    };
    window.addEventListener('mousemove', move);
    window.addEventListener('mouseup', up);
  }
  private onWheel(e: WheelEvent): void {
    if (this.state.view !== 'single') return;
    e.preventDefault();
    const { x, y } = this.local(e);
    const f = Math.exp(-e.deltaY * 0.0015);
    const zoom = Math.max(0.2, Math.min(200, this.cam.zoom * f));
    const k = zoom / this.cam.zoom;
    // keep the point under the mouse in place
    const cx = (x / this.stage.clientWidth) * 2 - 1, cy = 1 - (y / this.stage.clientHeight) * 2;
    this.cam.panX = cx - (cx - this.cam.panX) * k;
    this.cam.panY = cy - (cy - this.cam.panY) * k;
    this.cam.zoom = zoom;
    this.request();
  }
  // For scripts: zoom by factor f about the stage's centre, rotate by (dyaw, dpitch).
  camera(patch: Partial<{ zoom: number; panX: number; panY: number; yaw: number; pitch: number }>): void {
    Object.assign(this.cam, patch);
    this.request();
  }

  // --- side panel: the hovered or selected token in its sentence --------------------------------

  private updateSide(): void {
    const st = this.store, s = this.state, n = st.n, m = st.meta;
    this.side.replaceChildren();
    const p = this.hover !== null ? this.hover : s.selected;
    if (p === null) {
      const hint =
        s.view === 'matrix' ? 'Every head: queries (green) and keys (pink) of the whole corpus in one embedding. Click a head to open it.'
        : s.view === 'single' ? 'Hover a point for its token in its sentence; click a query for lines to its top keys. Drag to pan (3-D: rotate, shift-drag pans), wheel to zoom.'
        : s.view === 'sentence' ? 'Lines: attention from each token (left) to the tokens it attends to (right). Hover a token for its lines alone; click to select it in every view.'
        : 'Click a patch for its attention over the image; [CLS] shows the class token\'s.';
      this.side.appendChild(el('p', { class: 'at-hint' }, hint));
      if (s.search.trim()) this.side.appendChild(el('p', {}, `${this.matches.length} tokens match “${s.search.trim()}”.`));
      return;
    }
    const i = p % n;
    const it = st.item[i];
    const [a, b] = st.itemTokens(it);
    this.side.appendChild(el('div', { class: 'at-kind' }, `${p >= n && this.hover !== null ? 'key' : 'query'} · item ${it} · position ${i - a}`));
    const sent = el('div', { class: 'at-sentence', id: 'atlas-side-sentence' });
    const from = Math.max(a, i - 60), to = Math.min(b, i + 60);
    if (from > a) sent.appendChild(document.createTextNode('… '));
    for (let t = from; t < to; ++t) {
      const span = el('span', t === i ? { class: 'at-current' } : {}, tokenText(m.tokens[t]));
      sent.appendChild(span);
      if (m.image && t + 1 < to) sent.appendChild(document.createTextNode(' ')); // patches: r0c0 r0c1 …
    }
    if (to < b) sent.appendChild(document.createTextNode(' …'));
    this.side.appendChild(sent);
    const keys = st.topKeys(s.layer, s.head, i);
    this.side.appendChild(el('div', { class: 'at-kind' }, `top keys of this query, layer ${s.layer} head ${s.head}:`));
    const list = el('ol', { class: 'at-keys', id: 'atlas-side-keys' });
    for (const k of keys) list.appendChild(el('li', {}, `${JSON.stringify(tokenText(m.tokens[k.key]))} @${k.key - a}  ${k.weight.toFixed(4)}`));
    this.side.appendChild(list);
    const qn = st.norm('q', s.layer, s.head)[i], kn = st.norm('k', s.layer, s.head)[i], vn = st.norm('v', s.layer, s.head)[i];
    this.side.appendChild(el('div', { class: 'at-kind' }, `|q| ${qn.toFixed(3)} · |k| ${kn.toFixed(3)} · |v| ${vn.toFixed(3)}`));
  }

  // --- sentence view ----------------------------------------------------------------------------

  // The rows shown: for each visible query, its weights over the visible keys of the item.
  sentenceRows(): { tokens: number[]; rows: Float32Array[]; whole: boolean } {
    const st = this.store, s = this.state, m = st.meta;
    const [a, b] = st.itemTokens(s.item);
    const all: number[] = [];
    for (let t = a; t < b; ++t) all.push(t);
    const visible = all.map((t) => !(s.hideSpecial && isSpecial(m.tokens[t], t - a, m.causal)));
    const vn = s.valueNorm ? st.norm('v', s.layer, s.head).subarray(a, b) : null;
    const rows: Float32Array[] = [];
    let whole = true;
    for (const t of all) {
      let row = st.row(s.layer, s.head, t);
      if (!row) {
        whole = false;
        const full = new Float32Array(b - a);
        for (const k of st.topKeys(s.layer, s.head, t)) full[k.key - a] = k.weight;
        row = full;
      }
      const padded = new Float32Array(b - a);
      padded.set(row.subarray(0, Math.min(row.length, b - a)));
      rows.push(visible[t - a] ? sentenceRow(padded, visible, vn, s.hideSpecial) : new Float32Array(b - a));
    }
    return { tokens: all.filter((_, k) => visible[k]), rows, whole };
  }

  private sentenceHover: number | null = null;
  private drawSentence(): void {
    const st = this.store, s = this.state, m = st.meta;
    const [a] = st.itemTokens(s.item);
    const { tokens, rows, whole } = this.sentenceRows();
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    const row = 20, y0 = 40;
    const W = this.scroller.clientWidth, Hc = y0 + tokens.length * row + 20;
    this.sentenceCanvas.style.width = `${W}px`;
    this.sentenceCanvas.style.height = `${Hc}px`;
    this.sentenceCanvas.width = Math.round(W * dpr);
    this.sentenceCanvas.height = Math.round(Hc * dpr);
    const g = this.sentenceCanvas.getContext('2d')!;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = '#fff';
    g.fillRect(0, 0, W, Hc);
    const x0 = Math.max(140, W / 2 - 160), x1 = Math.min(W - 140, W / 2 + 160);
    this.sentenceLayout = { x0, x1, y0, row, tokens };
    g.font = '12px "DejaVu Sans", sans-serif';
    g.fillStyle = '#444';
    g.textBaseline = 'top';
    g.textAlign = 'left';
    g.fillText(`item ${s.item} · layer ${s.layer}, head ${s.head}${s.hideSpecial ? ' · special tokens hidden, rows renormalized' : ''}` +
      `${s.valueNorm ? ' · weighted by |value|' : ''}${whole ? '' : ` · top-${m.top_k} keys only (item longer than the stored rows)`}`, 8, 8);
    const place = new Map<number, number>();
    tokens.forEach((t, k) => place.set(t, y0 + k * row + row / 2));
    const shown = (t: number | null) => (t !== null && place.has(t) ? t : null);
    const focus = shown(this.sentenceHover) ?? shown(s.selected);
    const [hr, hg, hb] = CATEGORY10.map(hex)[0];
    for (const q of tokens) {
      if (focus !== null && q !== focus) continue;
      const r = rows[q - a];
      const yq = place.get(q)!;
      for (const k of tokens) {
        const w = r[k - a];
        if (!(w > 0.002)) continue;
        g.strokeStyle = `rgba(${hr},${hg},${hb},${Math.min(1, w)})`;
        g.lineWidth = focus !== null ? 2 : 1.5;
        g.beginPath();
        g.moveTo(x0 + 6, yq);
        g.lineTo(x1 - 6, place.get(k)!);
        g.stroke();
      }
    }
    g.textBaseline = 'middle';
    for (const t of tokens) {
      const y = place.get(t)!;
      const label = tokenText(m.tokens[t]);
      const on = t === focus;
      g.font = `${on ? 'bold ' : ''}13px "DejaVu Sans", sans-serif`;
      g.fillStyle = this.matches.includes(t) ? '#b35900' : '#1a1a1a';
      g.textAlign = 'right';
      g.fillText(label, x0, y);
      g.textAlign = 'left';
      g.fillText(label, x1, y);
      if (focus !== null && t !== focus) {
        const w = rows[focus - a][t - a];
        g.fillStyle = `rgba(${hr},${hg},${hb},${Math.min(1, w) * 0.35})`;
        g.fillRect(x1 - 3, y - row / 2 + 1, g.measureText(label).width + 6, row - 2);
      }
    }
  }
  sentenceToken(e: MouseEvent): { token: number; side: 'q' | 'k' } | null {
    const L = this.sentenceLayout;
    if (!L) return null;
    const r = this.sentenceCanvas.getBoundingClientRect();
    const x = e.clientX - r.left, y = e.clientY - r.top;
    const k = Math.floor((y - L.y0) / L.row);
    if (k < 0 || k >= L.tokens.length) return null;
    if (x < L.x0 + 4) return { token: L.tokens[k], side: 'q' };
    if (x > L.x1 - 4) return { token: L.tokens[k], side: 'k' };
    return null;
  }
  private onSentenceMove(e: MouseEvent): void {
    const t = this.sentenceToken(e);
    const q = t && t.side === 'q' ? t.token : null;
    if (q !== this.sentenceHover) {
      this.sentenceHover = q;
      this.hover = q;
      this.updateSide();
      this.request();
    }
  }
  // For scripts: where a sentence-view token is, in client pixels.
  sentenceClientPoint(token: number, side: 'q' | 'k'): { x: number; y: number } | null {
    const L = this.sentenceLayout;
    if (!L) return null;
    const k = L.tokens.indexOf(token);
    if (k < 0) return null;
    const r = this.sentenceCanvas.getBoundingClientRect();
    return { x: r.left + (side === 'q' ? L.x0 - 10 : L.x1 + 10), y: r.top + L.y0 + k * L.row + L.row / 2 };
  }

  // --- image view -------------------------------------------------------------------------------

  // The chosen query's attention over the patches of the current image: [grid * grid], and [CLS]'s.
  imageAttention(): { patches: Float32Array; cls: number } | null {
    const st = this.store, s = this.state, im = st.meta.image;
    if (!im) return null;
    const [a, b] = st.itemTokens(s.item);
    const q = a + Math.min(s.patch, b - a - 1);
    const row = st.row(s.layer, s.head, q);
    const g2 = im.grid * im.grid;
    const patches = new Float32Array(g2);
    let cls = 0;
    if (row) {
      cls = row[0];
      for (let k = 0; k < g2 && k + 1 < row.length; ++k) patches[k] = row[k + 1];
    } else
      for (const k of st.topKeys(s.layer, s.head, q)) {
        if (k.key === a) cls = k.weight;
        else if (k.key - a - 1 < g2) patches[k.key - a - 1] = k.weight;
      }
    return { patches, cls };
  }

  private drawImage(): void {
    const st = this.store, s = this.state, im = st.meta.image!;
    const W = this.stage.clientWidth, H = this.stage.clientHeight;
    const dpr = Math.min(window.devicePixelRatio || 1, 2);
    this.imageCanvas.width = Math.round(W * dpr);
    this.imageCanvas.height = Math.round(H * dpr);
    this.imageCanvas.style.width = `${W}px`;
    this.imageCanvas.style.height = `${H}px`;
    const g = this.imageCanvas.getContext('2d')!;
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.fillStyle = '#fff';
    g.fillRect(0, 0, W, H);
    const S = im.image_size, grid = im.grid;
    const side = Math.max(grid, Math.floor((Math.min(W, H) - 80) / grid) * grid);
    const cell = side / grid;
    const x = Math.round((W - side) / 2), y = 48;
    this.imageLayout = { x, y, cell, grid };
    const px = st.image(s.item)!;
    const off = document.createElement('canvas');
    off.width = off.height = S;
    const id = off.getContext('2d')!.createImageData(S, S);
    for (let t = 0; t < S * S; ++t) {
      id.data[4 * t] = px[3 * t];
      id.data[4 * t + 1] = px[3 * t + 1];
      id.data[4 * t + 2] = px[3 * t + 2];
      id.data[4 * t + 3] = 255;
    }
    off.getContext('2d')!.putImageData(id, 0, 0);
    g.imageSmoothingEnabled = false;
    g.drawImage(off, x, y, side, side);
    const att = this.imageAttention()!;
    const top = Math.max(1e-9, ...att.patches);
    for (let k = 0; k < grid * grid; ++k) {
      g.fillStyle = `rgba(230,40,30,${(0.8 * att.patches[k]) / top})`;
      g.fillRect(x + (k % grid) * cell, y + Math.floor(k / grid) * cell, cell, cell);
    }
    g.strokeStyle = 'rgba(255,255,255,0.5)';
    g.lineWidth = 1;
    for (let k = 0; k <= grid; ++k) {
      g.beginPath();
      g.moveTo(x + k * cell, y);
      g.lineTo(x + k * cell, y + side);
      g.moveTo(x, y + k * cell);
      g.lineTo(x + side, y + k * cell);
      g.stroke();
    }
    if (s.patch > 0) {
      const k = s.patch - 1;
      g.strokeStyle = '#1f77b4';
      g.lineWidth = 3;
      g.strokeRect(x + (k % grid) * cell + 1.5, y + Math.floor(k / grid) * cell + 1.5, cell - 3, cell - 3);
    }
    g.fillStyle = '#333';
    g.font = '12px "DejaVu Sans", sans-serif';
    g.textBaseline = 'top';
    g.textAlign = 'left';
    g.fillText(`${st.meta.items[s.item]} · layer ${s.layer}, head ${s.head} · attention from ${s.patch === 0 ? '[CLS]' : `patch ${s.patch - 1}`}` +
      ` · to [CLS] ${att.cls.toFixed(3)} · strongest patch ${top.toFixed(3)}`, 8, 8);
  }
  private onImageClick(e: MouseEvent): void {
    const L = this.imageLayout;
    if (!L) return;
    const r = this.imageCanvas.getBoundingClientRect();
    const cx = Math.floor((e.clientX - r.left - L.x) / L.cell), cy = Math.floor((e.clientY - r.top - L.y) / L.cell);
    if (cx < 0 || cy < 0 || cx >= L.grid || cy >= L.grid) return;
    this.update({ patch: 1 + cy * L.grid + cx });
  }
  patchClientPoint(k: number): { x: number; y: number } | null {
    const L = this.imageLayout;
    if (!L) return null;
    const r = this.imageCanvas.getBoundingClientRect();
    return { x: r.left + L.x + ((k % L.grid) + 0.5) * L.cell, y: r.top + L.y + (Math.floor(k / L.grid) + 0.5) * L.cell };
  }

  // --- for tests and scripts --------------------------------------------------------------------

  pointClientPoint(p: number): { x: number; y: number } {
    const q = this.pointStage(p);
    const r = this.stage.getBoundingClientRect();
    return { x: r.left + q.x, y: r.top + q.y };
  }
  tileClientPoint(l: number, h: number): { x: number; y: number } {
    const t = this.tile(l, h), r = this.stage.getBoundingClientRect();
    return { x: r.left + t.x + t.w / 2, y: r.top + t.y + t.h / 2 };
  }
  matchCount(): number {
    return this.matches.length;
  }
  sideText(): string {
    return this.side.textContent ?? '';
  }
  // Pixels of the WebGL canvas that are not background, in a tile (l, h) or the whole canvas.
  inkedPixels(l?: number, h?: number): number {
    const gl = this.gl.gl, dpr = Math.min(window.devicePixelRatio || 1, 2);
    let x = 0, y = 0, w = gl.drawingBufferWidth, hh = gl.drawingBufferHeight;
    if (l !== undefined && h !== undefined) {
      const t = this.tile(l, h);
      x = Math.round(t.x * dpr), w = Math.round(t.w * dpr), hh = Math.round(t.h * dpr);
      y = gl.drawingBufferHeight - Math.round((t.y + t.h) * dpr);
    }
    const px = new Uint8Array(w * hh * 4);
    gl.readPixels(x, y, w, hh, gl.RGBA, gl.UNSIGNED_BYTE, px);
    let n = 0;
    for (let k = 0; k < px.length; k += 4) if (px[k] < 250 || px[k + 1] < 250 || px[k + 2] < 250) ++n;
    return n;
  }
  // The matrix view from scratch: frames until every head is drawn, the whole time, the longest
  // frame; then the time of a frame that only redraws the overlay (hovering a head).
  measureMatrix(): Promise<{ frames: number; points: number; sampleMs: number; fullMs: number; worstFrameMs: number; overlayMs: number }> {
    this.matrixJob = null;
    return new Promise((resolve) => {
      const stamps: number[] = [];
      const step = (t: number) => {
        stamps.push(t);
        this.draw();
        const job = this.matrixJob!;
        if (job.pass < 3) return requestAnimationFrame(step);
        requestAnimationFrame((t2) => {
          stamps.push(t2);
          let worst = 0;
          for (let k = 1; k < stamps.length; ++k) worst = Math.max(worst, stamps[k] - stamps[k - 1]);
          const fullMs = stamps[stamps.length - 1] - stamps[0];
          const frames = stamps.length - 1;
          const o: number[] = [];
          const hover = (t3: number) => {
            o.push(t3);
            this.hoverTile = [o.length % this.store.meta.n_layers, 0];
            this.draw();
            if (o.length < 11) requestAnimationFrame(hover);
            else {
              this.hoverTile = null;
              this.request();
              resolve({ frames, points: this.matrixJob!.points, sampleMs: this.matrixJob!.sampleMs, fullMs, worstFrameMs: worst, overlayMs: (o[o.length - 1] - o[0]) / (o.length - 1) });
            }
          };
          requestAnimationFrame(hover);
        });
      };
      requestAnimationFrame(step);
    });
  }
  // Mean time between animation frames over `frames` redraws (a full redraw each frame).
  measureFrames(frames: number, spin = false): Promise<number> {
    return new Promise((resolve) => {
      const times: number[] = [];
      const step = (t: number) => {
        times.push(t);
        if (spin) this.cam.yaw += 0.05;
        this.draw();
        if (times.length <= frames) requestAnimationFrame(step);
        else resolve((times[times.length - 1] - times[0]) / (times.length - 1));
      };
      requestAnimationFrame(step);
    });
  }
}
