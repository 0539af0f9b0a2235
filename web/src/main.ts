// The attnscope viewer: reads the data embedded in the page and shows the head, model and neuron
// views. No request ever leaves the page (the HTML also carries a Content-Security-Policy that
// forbids them); exports are made in the page and handed over as downloads.
import css from './style.css?inline';
import { headColors, THEMES } from './colors';
import { Agg, Ctx, hashToState, headId, layerId, layerName, measureText, State, stateToHash } from './context';
import { Atlas } from './atlas';
import { AtlasStore, documentAtlasSource } from './atlasdata';
import { documentSource, MEAN_LAYER, Store, ViewName } from './data';
import { HeadView, stateSource } from './headview';
import { ModelView } from './modelview';
import { NeuronView } from './neuronview';
import { CanvasPainter, Painter, SvgPainter } from './painter';
import { Drawable, Rect, ScrollCanvas } from './scroll';
import { Filter, label } from './tokens';

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

const PNG_SCALE = 3; // 3 px per CSS pixel ≈ 288 dpi: print resolution
const MAX_PNG_SIDE = 32000, MAX_PNG_AREA = 200e6;

class App {
  ctx: Ctx;
  private infoEl = el('div', { class: 'as-info', id: 'attnscope-info', 'aria-live': 'polite' });
  private statusEl = el('div', { class: 'as-status', id: 'attnscope-status' });
  private headsEl = el('div', { class: 'as-heads', id: 'attnscope-heads' });
  private mainEl = el('div', { class: 'as-main' });
  private layerSel = el('select', { id: 'attnscope-layer', 'aria-label': 'layer' });
  private headSel = el('select', { id: 'attnscope-nhead', 'aria-label': 'head' });
  private filterSel = el('select', { id: 'attnscope-filter', 'aria-label': 'sentence filter' });
  private tabs = new Map<ViewName, HTMLButtonElement>();
  private expandBtn = el('button', { id: 'attnscope-expand', class: 'as-expand', 'aria-expanded': 'false' });
  private themeBtn = el('button', { id: 'attnscope-theme', 'aria-pressed': 'false' }, 'dark theme');
  private layoutBtn = el('button', { id: 'attnscope-layout', 'aria-pressed': 'false' }, 'horizontal layout');
  private head: HeadView;
  private model: ModelView;
  private neuron: NeuronView;
  private canvases = new Map<ViewName, ScrollCanvas>();
  private detail: { view: HeadView; canvas: ScrollCanvas; root: HTMLDivElement; title: HTMLSpanElement } | null = null;
  lastExport: { kind: string; name: string; bytes: number; width: number; height: number } | null = null;
  // The page starts while the browser is still reading the other layers' data (it follows the
  // viewer script in the file); a change that needs data not read yet waits for the end of the file.
  private loaded = document.readyState !== 'loading';
  private pending: Partial<State> | null = null;

  constructor(store: Store) {
    const meta = store.meta;
    const init = meta.initial;
    const base: State = {
      view: meta.views.includes(init.view) ? init.view : meta.views[0],
      layer: Math.min(Math.max(init.layer, 0), meta.n_layers - 1),
      heads: init.heads && init.heads.length ? init.heads : Array.from({ length: meta.n_heads }, (_, h) => h),
      agg: 'none', filter: 'all', layout: 'vertical', theme: 'light', token: null, side: 'q',
      nhead: init.heads && init.heads.length ? init.heads[0] : 0, nquery: 0, expand: false, detail: null,
    };
    const state = hashToState(location.hash, base, meta);
    this.ctx = {
      store, meta, state,
      // colours follow the model's numbering, so a head keeps its colour in a file with fewer heads
      headColors: Array.from({ length: meta.n_heads }, (_, h) => headColors(meta.n_heads_model ?? meta.n_heads)[meta.head_ids?.[h] ?? h]),
      layerColors: Array.from({ length: meta.n_layers }, (_, l) => headColors(Math.max(meta.n_layers, 1 + (meta.layer_ids?.[meta.n_layers - 1] ?? 0)))[meta.layer_ids?.[l] ?? l]),
      theme: () => THEMES[this.ctx.state.theme],
      update: (patch) => this.update(patch),
      measure: measureText,
      info: (lines) => (this.infoEl.textContent = lines.join('\n')),
    };
    this.head = new HeadView(this.ctx, () => stateSource(this.ctx));
    this.model = new ModelView(this.ctx);
    this.neuron = new NeuronView(this.ctx);
    this.model.onProgress = () => {
      this.status();
      if (this.ctx.state.view === 'model' && !this.ctx.state.detail) this.ctx.info([this.summary()]);
      this.canvases.get('model')?.request();
    };
    this.build();
    if (!this.loaded)
      document.addEventListener('DOMContentLoaded', () => {
        this.loaded = true;
        const p = this.pending ?? {};
        this.pending = null;
        this.update(p);
      });
    this.update({});
  }

  private available(s: State): boolean {
    if (this.loaded) return true;
    if (s.view === 'model' || s.layer < 0) return false;
    const has = (id: string) => document.getElementById(id) !== null;
    return has(`attnscope-attn-${s.layer}`) && (s.view !== 'neuron' || !this.ctx.meta.qk || has(`attnscope-qk-${s.layer}`));
  }

  private build(): void {
    const m = this.ctx.meta;
    const st = el('style');
    st.textContent = css;
    document.head.appendChild(st);
    const bar = el('div', { class: 'as-bar', role: 'toolbar' });
    bar.appendChild(el('span', { class: 'as-title', title: m.source }, m.title));
    const tabs = el('span', { class: 'as-tabs', role: 'tablist' });
    for (const v of m.views) {
      const b = el('button', { role: 'tab', id: `attnscope-tab-${v}`, 'aria-selected': 'false' }, `${v} view`);
      b.addEventListener('click', () => this.update({ view: v }));
      this.tabs.set(v, b);
      tabs.appendChild(b);
    }
    bar.appendChild(tabs);
    for (let l = 0; l < m.n_layers; ++l) this.layerSel.appendChild(el('option', { value: String(l) }, `layer ${layerId(m, l)}`));
    this.layerSel.appendChild(el('option', { value: String(MEAN_LAYER) }, 'mean of layers'));
    this.layerSel.addEventListener('change', () => this.update({ layer: Number(this.layerSel.value) }));
    const ll = el('label', {}, 'Layer');
    ll.appendChild(this.layerSel);
    bar.appendChild(ll);
    for (let h = 0; h < m.n_heads; ++h) this.headSel.appendChild(el('option', { value: String(h) }, `head ${headId(m, h)}`));
    this.headSel.addEventListener('change', () => this.update({ nhead: Number(this.headSel.value) }));
    const hl = el('label', { id: 'attnscope-nhead-label' }, 'Head');
    hl.appendChild(this.headSel);
    bar.appendChild(hl);
    if (m.sentence_b_start !== null) {
      for (const [v, t] of [['all', 'All'], ['aa', 'Sentence A → A'], ['bb', 'Sentence B → B'], ['ab', 'Sentence A → B'], ['ba', 'Sentence B → A']])
        this.filterSel.appendChild(el('option', { value: v }, t));
      this.filterSel.addEventListener('change', () => this.update({ filter: this.filterSel.value as Filter, token: null }));
      const fl = el('label', {}, 'Attention');
      fl.appendChild(this.filterSel);
      bar.appendChild(fl);
    }
    this.expandBtn.addEventListener('click', () => this.update({ expand: !this.ctx.state.expand }));
    bar.appendChild(this.expandBtn);
    this.layoutBtn.addEventListener('click', () => this.update({ layout: this.ctx.state.layout === 'vertical' ? 'horizontal' : 'vertical' }));
    this.themeBtn.addEventListener('click', () => this.update({ theme: this.ctx.state.theme === 'light' ? 'dark' : 'light' }));
    const png = el('button', { id: 'attnscope-export-png', title: `PNG at ${PNG_SCALE}× (print resolution)` }, 'Export PNG');
    png.addEventListener('click', () => this.exportPng());
    const svg = el('button', { id: 'attnscope-export-svg', title: 'SVG (vector)' }, 'Export SVG');
    svg.addEventListener('click', () => this.exportSvg());
    bar.append(this.layoutBtn, this.themeBtn, png, svg);
    bar.appendChild(el('span', { class: 'as-hint' }, '↑↓ layer · ←→ head · Esc all heads · click a token to pin it'));
    this.buildHeads();
    document.body.append(bar, this.headsEl, this.infoEl, this.mainEl, this.statusEl);

    const bg = () => this.ctx.theme().background;
    const headDraw: Drawable = { size: () => this.head.size(), paint: (p, v) => this.head.paint(p, v) };
    const hc = new ScrollCanvas(headDraw, bg, 'as-head-view');
    hc.scroller.addEventListener('mousemove', (e) => this.hoverHead(this.head, hc, e));
    hc.scroller.addEventListener('mouseleave', () => this.leaveHead());
    hc.scroller.addEventListener('click', (e) => {
      const t = this.head.hit(hc.point(e).x, hc.point(e).y);
      this.update(t && !(this.ctx.state.token === t.index && this.ctx.state.side === t.side) ? { token: t.index, side: t.side } : { token: null });
    });
    this.canvases.set('head', hc);

    const mc = new ScrollCanvas({ size: () => this.model.size(), paint: (p, v, g) => this.model.paint(p, v, g) }, bg, 'as-model-view');
    mc.scroller.addEventListener('click', (e) => {
      const c = this.model.hit(mc.point(e).x, mc.point(e).y);
      if (!c) return;
      const d = this.ctx.state.detail;
      this.update({ detail: d && d[0] === c[0] && d[1] === c[1] ? null : c });
    });
    mc.scroller.addEventListener('mousemove', (e) => {
      const c = this.model.hit(mc.point(e).x, mc.point(e).y);
      mc.scroller.style.cursor = c ? 'pointer' : '';
      if (c) this.ctx.info([`layer ${layerId(this.ctx.meta, c[0])}, head ${headId(this.ctx.meta, c[1])}: click to open`]);
    });
    this.canvases.set('model', mc);

    const nc = new ScrollCanvas({ size: () => this.neuron.size(), paint: (p, v) => this.neuron.paint(p, v) }, bg, 'as-neuron-view');
    nc.scroller.addEventListener('mousemove', (e) => this.hoverNeuron(nc, e));
    nc.scroller.addEventListener('mouseleave', () => {
      this.neuron.hoverQuery = null;
      nc.request();
      this.describeNeuron();
    });
    nc.scroller.addEventListener('click', (e) => {
      const t = this.neuron.hit(nc.point(e).x, nc.point(e).y);
      if (t && t.kind === 'query') {
        this.neuron.hoverQuery = null;
        this.update({ nquery: t.index });
      }
    });
    this.canvases.set('neuron', nc);
    for (const c of this.canvases.values()) this.mainEl.appendChild(c.root);

    document.addEventListener('keydown', (e) => this.key(e));
    window.addEventListener('hashchange', () => {
      const s = hashToState(location.hash, this.ctx.state, this.ctx.meta);
      this.update(s);
    });
  }

  private buildHeads(): void {
    const m = this.ctx.meta;
    this.headsEl.appendChild(el('span', { class: 'as-hint', style: 'margin:0 6px 0 0' }, 'Heads'));
    for (let h = 0; h < m.n_heads; ++h) {
      const b = el('button', { class: 'swatch', 'data-head': String(h), title: `head ${headId(m, h)} (click: toggle, double-click: solo)`, 'aria-pressed': 'true' }, String(headId(m, h)));
      b.style.background = this.ctx.headColors[h];
      b.addEventListener('click', () => this.toggleHead(h));
      b.addEventListener('dblclick', () => this.soloHead(h));
      this.headsEl.appendChild(b);
    }
    for (const a of ['mean', 'max'] as Agg[]) {
      const b = el('button', { class: 'agg', 'data-agg': a, 'aria-pressed': 'false', title: `${a} over the layer's heads (a pseudo-head)` }, `${a} of heads`);
      b.addEventListener('click', () => this.update({ agg: this.ctx.state.agg === a ? 'none' : a, token: null }));
      this.headsEl.appendChild(b);
    }
  }

  private toggleHead(h: number): void {
    const s = this.ctx.state;
    const on = s.heads.includes(h);
    if (on && s.heads.length === 1) return; // the last active head stays on
    this.update({ heads: on ? s.heads.filter((x) => x !== h) : [...s.heads, h].sort((a, b) => a - b), agg: 'none' });
  }
  private soloHead(h: number): void {
    const s = this.ctx.state;
    const all = Array.from({ length: this.ctx.meta.n_heads }, (_, k) => k);
    this.update({ heads: s.heads.length === 1 && s.heads[0] === h ? all : [h], agg: 'none' });
  }

  private key(e: KeyboardEvent): void {
    const t = e.target as HTMLElement | null;
    if (t && (t.tagName === 'SELECT' || t.tagName === 'INPUT')) return;
    const s = this.ctx.state, m = this.ctx.meta;
    const wrap = (v: number, n: number) => (v + n) % n;
    if (e.key === 'ArrowUp' || e.key === 'ArrowDown') {
      const cur = s.layer < 0 ? (e.key === 'ArrowUp' ? m.n_layers : -1) : s.layer;
      this.update({ layer: wrap(cur + (e.key === 'ArrowUp' ? -1 : 1), m.n_layers) });
    } else if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
      const d = e.key === 'ArrowLeft' ? -1 : 1;
      if (s.view === 'neuron') this.update({ nhead: wrap(s.nhead + d, m.n_heads) });
      else if (s.view === 'model' && s.detail) this.update({ detail: [s.detail[0], wrap(s.detail[1] + d, m.n_heads)] });
      else {
        const from = s.heads.length === 1 ? s.heads[0] : d > 0 ? -1 : 0;
        this.update({ heads: [wrap(from + d, m.n_heads)], agg: 'none' });
      }
    } else if (e.key === 'Escape') {
      if (s.view === 'model' && s.detail) this.update({ detail: null });
      else this.update({ heads: Array.from({ length: m.n_heads }, (_, k) => k), agg: 'none', token: null });
    } else return;
    e.preventDefault();
  }

  private hoverHead(view: HeadView, canvas: ScrollCanvas, e: MouseEvent): void {
    const p = canvas.point(e);
    const t = view.hit(p.x, p.y);
    const cur = view.hover;
    if (t && cur && t.side === cur.side && t.index === cur.index) return;
    if (!t && !cur) return;
    view.hover = t ?? this.pinned(view);
    canvas.request();
    if (view.hover) this.ctx.info(view.describe(view.hover));
  }
  private pinned(view: HeadView): HeadView['hover'] {
    const s = this.ctx.state;
    return view === this.head && s.token !== null ? { side: s.side, index: s.token } : null;
  }
  private leaveHead(): void {
    this.head.hover = this.pinned(this.head);
    this.canvases.get('head')!.request();
    this.ctx.info(this.head.hover ? this.head.describe(this.head.hover) : [this.summary()]);
  }
  private hoverNeuron(canvas: ScrollCanvas, e: MouseEvent): void {
    const p = canvas.point(e);
    const t = this.neuron.hit(p.x, p.y);
    if (t && t.kind === 'query' && t.index !== this.neuron.hoverQuery) {
      this.neuron.hoverQuery = t.index;
      canvas.request();
    }
    this.describeNeuron(t);
  }
  private describeNeuron(t: ReturnType<NeuronView['hit']> = null): void {
    const m = this.ctx.meta, s = this.ctx.state;
    const i = this.neuron.query();
    const lines = [`query ${i} "${label(m.tokens[i], 40)}" · ${layerName(m, Math.max(0, s.layer))} · head ${headId(m, s.nhead)}`];
    const comp = this.ctx.store.hasQK() ? this.neuron.computation() : null;
    if (t && comp) {
      const v = this.ctx.store.qk(Math.max(0, s.layer));
      const d = m.head_dim;
      const q = v.q[s.nhead], k = v.k[s.nhead];
      if (t.kind === 'q' && t.dim !== undefined) lines.push(`q[${t.dim}] = ${q[i * d + t.dim].toFixed(4)}`);
      else if (t.kind === 'k' && t.dim !== undefined) lines.push(`k(${t.index} "${label(m.tokens[t.index], 16)}")[${t.dim}] = ${k[t.index * d + t.dim].toFixed(4)}`);
      else if (t.kind === 'qk' && t.dim !== undefined)
        lines.push(`q[${t.dim}] × k(${t.index})[${t.dim}] = ${q[i * d + t.dim].toFixed(4)} × ${k[t.index * d + t.dim].toFixed(4)} = ${(q[i * d + t.dim] * k[t.index * d + t.dim]).toFixed(4)}`);
      const r = comp.keys.indexOf(t.index);
      if (r >= 0 && (t.kind === 'num' || t.kind === 'key' || t.kind === 'k' || t.kind === 'qk'))
        lines.push(`key ${t.index} "${label(m.tokens[t.index], 16)}": q·k = ${comp.dot[r].toFixed(4)}, q·k/√${d} = ${comp.scaled[r].toFixed(4)}, softmax = ${comp.softmax[r].toFixed(4)} (stored attention ${this.ctx.store.value(Math.max(0, s.layer), s.nhead, i, t.index).toFixed(4)})`);
    } else if (t && t.kind === 'key') {
      lines.push(`key ${t.index} "${label(m.tokens[t.index], 16)}": attention ${this.ctx.store.value(Math.max(0, s.layer), s.nhead, i, t.index).toFixed(4)}`);
    }
    this.ctx.info(lines);
  }

  private summary(): string {
    const s = this.ctx.state, m = this.ctx.meta;
    if (s.view === 'head') {
      const st = this.head.stats();
      return `${m.tokens.length} tokens · ${st.lines.toLocaleString('en-US')} lines drawn (opacity ≥ ${st.threshold.toFixed(4)}) · each query row keeps ≥ ${(st.minKept * 100).toFixed(1)}% of its attention (mean ${(st.meanKept * 100).toFixed(1)}%) · hover a token for exact values`;
    }
    if (s.view === 'model') return `${m.tokens.length} tokens · thumbnails: tokens binned to ≤ 46 bins per side · ${this.model.ready()}/${m.n_layers} layers ready`;
    return `neuron view: hover or click a query on the left; "Show q·k computation" opens the numbers`;
  }
  private status(): void {
    const s = this.ctx.state;
    this.statusEl.textContent = this.summary() + (s.view === 'model' && s.detail ? ` · open: layer ${layerId(this.ctx.meta, s.detail[0])}, head ${headId(this.ctx.meta, s.detail[1])}` : '');
  }

  update(patch: Partial<State>): void {
    if (!this.available({ ...this.ctx.state, ...patch })) {
      this.pending = { ...(this.pending ?? {}), ...patch };
      this.statusEl.textContent = 'reading the rest of the file… (the change applies as soon as it is read)';
      return;
    }
    const s = Object.assign(this.ctx.state, patch);
    const m = this.ctx.meta;
    if (s.view === 'neuron' && s.layer < 0) s.layer = 0;
    document.body.classList.toggle('theme-dark', s.theme === 'dark');
    for (const [v, b] of this.tabs) b.setAttribute('aria-selected', String(v === s.view));
    for (const [v, c] of this.canvases) c.root.hidden = v !== s.view;
    this.layerSel.value = String(s.layer);
    this.headSel.value = String(s.nhead);
    this.filterSel.value = s.filter;
    this.headSel.parentElement!.hidden = s.view !== 'neuron';
    this.headsEl.hidden = s.view !== 'head';
    this.expandBtn.hidden = s.view !== 'neuron';
    this.expandBtn.textContent = s.expand ? 'Hide q·k computation ▾' : 'Show q·k computation ▸';
    this.expandBtn.setAttribute('aria-expanded', String(s.expand));
    this.layoutBtn.setAttribute('aria-pressed', String(s.layout === 'horizontal'));
    this.themeBtn.setAttribute('aria-pressed', String(s.theme === 'dark'));
    this.themeBtn.textContent = s.theme === 'dark' ? 'light theme' : 'dark theme';
    for (const b of this.headsEl.querySelectorAll<HTMLButtonElement>('.swatch')) {
      const on = s.agg === 'none' && s.heads.includes(Number(b.dataset.head));
      b.classList.toggle('off', !on);
      b.setAttribute('aria-pressed', String(on));
    }
    for (const b of this.headsEl.querySelectorAll<HTMLButtonElement>('.agg')) b.setAttribute('aria-pressed', String(s.agg === b.dataset.agg));
    if (s.nquery >= m.tokens.length) s.nquery = 0;
    this.head.hover = this.pinned(this.head);
    if (s.view === 'model') {
      this.model.reset();
      this.model.schedule();
    }
    this.syncDetail();
    history.replaceState(null, '', stateToHash(s));
    this.canvases.get(s.view)!.request();
    this.status();
    if (s.view === 'head') this.ctx.info(this.head.hover ? this.head.describe(this.head.hover) : [this.summary()]);
    else if (s.view === 'neuron') this.describeNeuron();
    else this.ctx.info([this.summary()]);
    if (s.view === 'head' && s.token !== null) {
      const pt = this.head.tokenPoint(s.side, s.token);
      if (pt) this.canvases.get('head')!.scrollIntoView(pt.x, pt.y);
    }
  }

  // Model view: clicking a thumbnail opens "Layer X, Head Y" beside the grid (a head view).
  private syncDetail(): void {
    const s = this.ctx.state;
    const want = s.view === 'model' && s.detail !== null;
    if (!want) {
      if (this.detail) this.detail.root.hidden = true;
      return;
    }
    if (!this.detail) {
      const root = el('div', { class: 'as-detail', id: 'attnscope-detail' });
      const head = el('header');
      const title = el('span', { id: 'attnscope-detail-title' });
      const close = el('button', { 'aria-label': 'close' }, '×');
      close.addEventListener('click', () => this.update({ detail: null }));
      head.append(title, close);
      const view = new HeadView(this.ctx, () => {
        const [l, h] = this.ctx.state.detail ?? [0, 0];
        return { layer: l, heads: [h], mats: [this.ctx.store.layer(l)[h]], colors: [this.ctx.layerColors[l]], names: [`head ${headId(this.ctx.meta, h)}`], scale: 1, title: `Layer ${layerId(this.ctx.meta, l)}, Head ${headId(this.ctx.meta, h)}` };
      });
      const canvas = new ScrollCanvas({ size: () => view.size(), paint: (p, v) => view.paint(p, v) }, () => this.ctx.theme().background);
      canvas.scroller.addEventListener('mousemove', (e) => this.hoverHead(view, canvas, e));
      canvas.scroller.addEventListener('mouseleave', () => {
        view.hover = null;
        canvas.request();
      });
      root.append(head, canvas.root);
      this.mainEl.appendChild(root);
      this.detail = { view, canvas, root, title };
    }
    this.detail.root.hidden = false;
    this.detail.title.textContent = `Layer ${layerId(this.ctx.meta, s.detail![0])}, Head ${headId(this.ctx.meta, s.detail![1])}`;
    this.detail.view.hover = null;
    this.detail.canvas.request();
  }

  private current(): { d: Drawable; name: string } {
    const s = this.ctx.state;
    const lname = s.layer < 0 ? 'layer-mean' : `layer${s.layer}`;
    if (s.view === 'model') return { d: { size: () => this.model.size(), paint: (p, v, g) => this.model.paint(p, v, g) }, name: 'model' };
    if (s.view === 'neuron') return { d: { size: () => this.neuron.size(), paint: (p, v) => this.neuron.paint(p, v) }, name: `neuron-${lname}-head${s.nhead}` };
    return { d: { size: () => this.head.size(), paint: (p, v) => this.head.paint(p, v) }, name: `head-${lname}` };
  }
  // The whole view (not just the visible part), drawn by the same code as the screen.
  renderPng(): HTMLCanvasElement {
    const { d } = this.current();
    const { width, height } = d.size();
    const scale = Math.max(0.25, Math.min(PNG_SCALE, MAX_PNG_SIDE / Math.max(width, height), Math.sqrt(MAX_PNG_AREA / (width * height))));
    const c = document.createElement('canvas');
    c.width = Math.round(width * scale);
    c.height = Math.round(height * scale);
    const g = c.getContext('2d')!;
    g.setTransform(scale, 0, 0, scale, 0, 0);
    g.fillStyle = this.ctx.theme().background;
    g.fillRect(0, 0, width, height);
    const p: Painter = new CanvasPainter(g);
    d.paint(p, { x: 0, y: 0, w: width, h: height } as Rect, null);
    p.flush();
    return c;
  }
  renderSvg(): string {
    const { d } = this.current();
    const { width, height } = d.size();
    const p = new SvgPainter(width, height, this.ctx.theme().background);
    d.paint(p, { x: 0, y: 0, w: width, h: height }, null);
    return p.document();
  }
  private download(blob: Blob, name: string): void {
    const url = URL.createObjectURL(blob);
    const a = el('a', { href: url, download: name });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }
  exportPng(): void {
    const c = this.renderPng();
    const name = `attnscope-${this.current().name}.png`;
    c.toBlob((b) => {
      if (!b) return;
      this.lastExport = { kind: 'png', name, bytes: b.size, width: c.width, height: c.height };
      this.download(b, name);
    }, 'image/png');
  }
  exportSvg(): void {
    const svg = this.renderSvg();
    const name = `attnscope-${this.current().name}.svg`;
    const b = new Blob([svg], { type: 'image/svg+xml' });
    const { width, height } = this.current().d.size();
    this.lastExport = { kind: 'svg', name, bytes: b.size, width, height };
    this.download(b, name);
  }

  // For tests and scripts: where a token is on screen (scrolling it into view first).
  tokenClientPoint(view: 'head' | 'neuron' | 'detail', side: 'q' | 'k', index: number): { x: number; y: number } | null {
    if (view === 'neuron') {
      const c = this.canvases.get('neuron')!;
      const p = this.neuron.tokenPoint(side === 'q' ? 'query' : 'key', index);
      c.scrollIntoView(p.x, p.y);
      return c.clientPoint(p.x, p.y);
    }
    const hv = view === 'detail' ? this.detail?.view : this.head;
    const c = view === 'detail' ? this.detail?.canvas : this.canvases.get('head');
    if (!hv || !c) return null;
    const p = hv.tokenPoint(side, index);
    if (!p) return null;
    c.scrollIntoView(p.x, p.y);
    return c.clientPoint(p.x, p.y);
  }
  thumbClientPoint(l: number, h: number): { x: number; y: number } {
    const c = this.canvases.get('model')!;
    const r = this.model.cell(l, h);
    c.scrollIntoView(r.x + r.w / 2, r.y + r.h / 2);
    return c.clientPoint(r.x + r.w / 2, r.y + r.h / 2);
  }
  hovered(): HeadView['hover'] {
    return this.head.hover;
  }
  frameMs(): number {
    return this.canvases.get(this.ctx.state.view)!.lastFrameMs;
  }
  modelReady(): number {
    return this.model.ready();
  }
  headStats() {
    return this.head.stats();
  }
  neuronComputation() {
    return this.neuron.computation();
  }
}

declare global {
  interface Window {
    attnscope?: App;
    attnscopeAtlas?: Atlas;
    attnscopeError?: string;
  }
}

function boot(): void {
  try {
    const atlas = documentAtlasSource(document);
    if (atlas) {
      const st = document.createElement('style');
      st.textContent = css;
      document.head.appendChild(st);
      window.attnscopeAtlas = new Atlas(new AtlasStore(atlas));
      return;
    }
    const store = new Store(documentSource(document));
    window.attnscope = new App(store);
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    window.attnscopeError = msg;
    const p = document.createElement('pre');
    p.textContent = `attnscope viewer: ${msg}`;
    document.body.appendChild(p);
  }
}

// The script sits after the page's metadata and first layer, before the other layers: start now.
// (An atlas file puts the script after all of its data.)
if (document.getElementById('attnscope-meta') || document.getElementById('attnscope-atlas') || document.readyState !== 'loading') boot();
else document.addEventListener('DOMContentLoaded', boot);
