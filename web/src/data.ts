// The data inside a view file, and its decoding. The C++ writer (src/export/html.cpp) is the other
// half of this format; README "The view file" describes it.
//
// Attention: every weight w in [0, 1] is stored as q = round(w * 4095), a 12-bit number written as
// two characters of the base64 alphabet (q >> 6, q & 63): 2 bytes per weight, absolute error
// <= 0.5 / 4095 = 1.22e-4. Layout "dense": per head, rows of all N keys. Layout "lower" (causal
// models): per head, row i holds keys 0..i only (the rest are exact zeros).
// Query/key vectors (neuron view): per layer, per head, q then k, each [N, head_dim], as 12-bit
// signed values v = (q - 2048) / 2047 * scale with one scale (max |v|) per layer, head and kind.

export interface Meta {
  format: 'attnscope-view';
  version: number;
  title: string;
  model_type: string;
  n_layers: number;
  n_heads: number;
  n_kv_heads: number;
  n_heads_model: number; // heads per layer in the model (n_heads is what the file holds)
  layer_ids: number[] | null; // --include-layers: the model's number of each layer in the file
  head_ids: number[] | null; // --include-heads: the model's number of each head
  head_dim: number;
  causal: boolean;
  tokens: string[];
  // Sentence pairs: index of the first token of sentence B, and each token's segment (0 = A, 1 = B).
  sentence_b_start: number | null;
  segments: number[] | null;
  image: { grid: number; patch_size: number; image_size: number } | null;
  source: string; // the text, or the image path
  attention: { encoding: 'u12'; layout: 'dense' | 'lower' };
  qk: { encoding: 'u12s'; scales: number[][][] } | null; // scales[layer][head] = [q scale, k scale]
  views: ViewName[];
  initial: { view: ViewName; layer: number; heads: number[] | null };
}

export type ViewName = 'head' | 'model' | 'neuron';

export const U12_MAX = 4095;
export const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const LUT = (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < 64; ++i) t[B64.charCodeAt(i)] = i;
  return t;
})();

// Decodes n 12-bit numbers from s starting at character `from` into out[at..]; throws on a bad
// character so that a damaged file fails loudly instead of showing a wrong picture.
export function decodeU12(s: string, from: number, n: number, out: Uint16Array, at = 0): void {
  if (from + 2 * n > s.length) throw new Error(`view data: expected ${2 * n} characters at ${from}, found ${s.length - from}`);
  for (let k = 0; k < n; ++k) {
    const c1 = s.charCodeAt(from + 2 * k), c2 = s.charCodeAt(from + 2 * k + 1);
    const hi = c1 < 128 ? LUT[c1] : -1, lo = c2 < 128 ? LUT[c2] : -1;
    if (hi < 0 || lo < 0) throw new Error(`view data: invalid character at ${from + 2 * k}`);
    out[at + k] = (hi << 6) | lo;
  }
}

// The inverse (used by tests and by nothing at run time): values in [0, 1] to the text form.
export function encodeU12(values: ArrayLike<number>): string {
  let s = '';
  for (let k = 0; k < values.length; ++k) {
    const q = Math.max(0, Math.min(U12_MAX, Math.round(values[k] * U12_MAX)));
    s += B64[q >> 6] + B64[q & 63];
  }
  return s;
}

export function attentionChars(n: number, heads: number, layout: 'dense' | 'lower'): number {
  return 2 * heads * (layout === 'dense' ? n * n : (n * (n + 1)) / 2);
}

// One layer's attention, [heads][N * N] row-major, as probabilities.
export function decodeAttention(s: string, heads: number, n: number, layout: 'dense' | 'lower'): Float32Array[] {
  const expected = attentionChars(n, heads, layout);
  if (s.length !== expected) throw new Error(`view data: attention layer has ${s.length} characters, expected ${expected}`);
  const q = new Uint16Array(n);
  const out: Float32Array[] = [];
  let pos = 0;
  const inv = 1 / U12_MAX;
  for (let h = 0; h < heads; ++h) {
    const a = new Float32Array(n * n);
    for (let i = 0; i < n; ++i) {
      const len = layout === 'dense' ? n : i + 1;
      decodeU12(s, pos, len, q);
      pos += 2 * len;
      const row = i * n;
      for (let j = 0; j < len; ++j) a[row + j] = q[j] * inv;
    }
    out.push(a);
  }
  return out;
}

export interface QK {
  q: Float32Array[]; // [head][N * head_dim]
  k: Float32Array[];
}

export function decodeQK(s: string, heads: number, n: number, d: number, scales: number[][]): QK {
  const per = n * d;
  if (s.length !== 2 * heads * 2 * per)
    throw new Error(`view data: query/key layer has ${s.length} characters, expected ${4 * heads * per}`);
  const buf = new Uint16Array(per);
  const q: Float32Array[] = [], k: Float32Array[] = [];
  let pos = 0;
  for (let h = 0; h < heads; ++h) {
    for (const [kind, dst] of [[0, q], [1, k]] as const) {
      decodeU12(s, pos, per, buf);
      pos += 2 * per;
      const scale = scales[h][kind] / 2047;
      const v = new Float32Array(per);
      for (let t = 0; t < per; ++t) v[t] = (buf[t] - 2048) * scale;
      dst.push(v);
    }
  }
  return { q, k };
}

// Heads of a layer reduced to one pseudo-head.
export function reduceHeads(heads: Float32Array[], how: 'mean' | 'max'): Float32Array {
  const out = new Float32Array(heads[0].length);
  if (how === 'mean') {
    for (const a of heads) for (let t = 0; t < a.length; ++t) out[t] += a[t];
    const inv = 1 / heads.length;
    for (let t = 0; t < out.length; ++t) out[t] *= inv;
  } else {
    for (const a of heads) for (let t = 0; t < a.length; ++t) if (a[t] > out[t]) out[t] = a[t];
  }
  return out;
}

// Where the data lives: the meta JSON and one text element per layer, decoded on first use and
// kept in a small cache (a 12-head layer at 1,024 tokens is 50 MB as floats).
export interface Source {
  meta: Meta;
  attentionText(layer: number): string;
  qkText(layer: number): string;
}

export const MEAN_LAYER = -1; // the pseudo-layer "mean over layers"

export class Store {
  readonly meta: Meta;
  readonly n: number;
  private cache = new Map<number, Float32Array[]>();
  private order: number[] = [];
  private qkCache = new Map<number, QK>();
  private meanLayer: Float32Array[] | null = null;
  constructor(private src: Source, private capacity = 3) {
    this.meta = src.meta;
    this.n = src.meta.tokens.length;
  }
  // [head][N * N] for a layer (MEAN_LAYER = mean over layers).
  layer(l: number): Float32Array[] {
    if (l === MEAN_LAYER) return this.mean();
    const hit = this.cache.get(l);
    if (hit) return hit;
    const m = this.meta;
    const a = decodeAttention(this.src.attentionText(l), m.n_heads, this.n, m.attention.layout);
    this.cache.set(l, a);
    this.order.push(l);
    while (this.order.length > this.capacity) this.cache.delete(this.order.shift()!);
    return a;
  }
  private mean(): Float32Array[] {
    if (this.meanLayer) return this.meanLayer;
    const m = this.meta;
    const acc = Array.from({ length: m.n_heads }, () => new Float32Array(this.n * this.n));
    for (let l = 0; l < m.n_layers; ++l) {
      const a = decodeAttention(this.src.attentionText(l), m.n_heads, this.n, m.attention.layout);
      for (let h = 0; h < m.n_heads; ++h) for (let t = 0; t < acc[h].length; ++t) acc[h][t] += a[h][t];
    }
    for (const a of acc) for (let t = 0; t < a.length; ++t) a[t] /= m.n_layers;
    this.meanLayer = acc;
    return acc;
  }
  // One head (index) or a pseudo-head ('mean' | 'max') of a layer.
  head(l: number, h: number | 'mean' | 'max'): Float32Array {
    const a = this.layer(l);
    return typeof h === 'number' ? a[h] : reduceHeads(a, h);
  }
  value(l: number, h: number, i: number, j: number): number {
    return this.layer(l)[h][i * this.n + j];
  }
  hasQK(): boolean {
    return this.meta.qk !== null;
  }
  qk(l: number): QK {
    const hit = this.qkCache.get(l);
    if (hit) return hit;
    const m = this.meta;
    if (!m.qk) throw new Error('this view file has no query/key vectors');
    const v = decodeQK(this.src.qkText(l), m.n_heads, this.n, m.head_dim, m.qk.scales[l]);
    this.qkCache.clear();
    this.qkCache.set(l, v);
    return v;
  }
}

// The page's own data: <script type="application/json" id="attnscope-meta"> and one
// <script type="text/plain" id="attnscope-attn-L"> (and attnscope-qk-L) per layer.
export function documentSource(doc: Document): Source {
  const el = doc.getElementById('attnscope-meta');
  if (!el) throw new Error('this page has no attnscope data');
  const meta = JSON.parse(el.textContent ?? '') as Meta;
  const text = (id: string) => {
    const e = doc.getElementById(id);
    if (!e) throw new Error(`view data: missing element ${id}`);
    return (e.textContent ?? '').trim();
  };
  return { meta, attentionText: (l) => text(`attnscope-attn-${l}`), qkText: (l) => text(`attnscope-qk-${l}`) };
}
