// The data inside an atlas file (attnscope view --from corpus.qk), and its decoding. The C++
// writer (src/export/atlas.cpp) is the other half; README "The atlas file" describes it.
//
// <script type="application/json" id="attnscope-atlas"> holds AtlasMeta. Every array is one
// <script type="text/plain" id="attnscope-atlas-NAME"> of base64 (RFC 4648) over the raw
// little-endian bytes of the .qk tensor:
//   item            int32 [N]            the corpus item of each token (items are consecutive runs)
//   offset          int32 [N+1]          start of each query's attention row within a head's rows
//   qnorm/knorm/vnorm float16 [L,H,N]    |query|, |key| (after translation/equalization), |value|
//   proj-P-l        float16 [H,2N,d]     projection P of layer l: queries 0..N-1, then keys
//   topk-l          uint16 [H,N,K]       the query's top keys, as positions in its item (65535: none)
//   topw-l          float16 [H,N,K]      their attention weights
//   attn-l          float16 [H,M]        whole attention rows over the item's keys (causal: 0..t),
//                                        for items of at most attention_max tokens; others have none
//   image           uint8 [items,S,S,3]  image models: each image at the model's input size

export interface AtlasMeta {
  format: 'attnscope-atlas';
  version: number;
  title: string;
  model_type: string;
  n_layers: number;
  n_heads: number;
  head_dim: number;
  causal: boolean;
  equalize: boolean;
  top_k: number;
  n: number;
  attention_rows: number;
  tokens: string[];
  items: string[];
  projections: { name: string; dims: number }[];
  spearman: number[][];
  image: { image_size: number; patch_size: number; grid: number } | null;
  initial: { layer: number; head: number };
}

export const NO_KEY = 0xffff;

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const LUT = (() => {
  const t = new Int16Array(128).fill(-1);
  for (let i = 0; i < 64; ++i) t[B64.charCodeAt(i)] = i;
  return t;
})();

// base64 text to bytes (4-byte aligned buffer, so typed views over it work); throws on a bad
// character or length so that a damaged file fails loudly.
export function decodeBase64(s: string, what: string): Uint8Array {
  let n = s.length;
  while (n > 0 && (s.charCodeAt(n - 1) <= 32)) --n;
  if (n % 4) throw new Error(`atlas data ${what}: base64 length ${n} is not a multiple of 4`);
  let pad = 0;
  if (n && s[n - 1] === '=') pad = s[n - 2] === '=' ? 2 : 1;
  const bytes = (n / 4) * 3 - pad;
  const buf = new Uint8Array(new ArrayBuffer((bytes + 7) & ~7), 0, bytes);
  let o = 0;
  for (let i = 0; i < n; i += 4) {
    const c = [0, 1, 2, 3].map((k) => {
      const ch = s.charCodeAt(i + k);
      if (ch === 61 && i + k >= n - pad) return 0;
      const v = ch < 128 ? LUT[ch] : -1;
      if (v < 0) throw new Error(`atlas data ${what}: invalid character at ${i + k}`);
      return v;
    });
    const v = (c[0] << 18) | (c[1] << 12) | (c[2] << 6) | c[3];
    if (o < bytes) buf[o++] = v >> 16;
    if (o < bytes) buf[o++] = (v >> 8) & 255;
    if (o < bytes) buf[o++] = v & 255;
  }
  return buf;
}

export function encodeBase64(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i += 3) {
    const v = (b[i] << 16) | ((b[i + 1] ?? 0) << 8) | (b[i + 2] ?? 0);
    s += B64[v >> 18] + B64[(v >> 12) & 63] + (i + 1 < b.length ? B64[(v >> 6) & 63] : '=') + (i + 2 < b.length ? B64[v & 63] : '=');
  }
  return s;
}

// IEEE half to float, through a 65,536-entry table.
let F16: Float32Array | null = null;
export function f16Table(): Float32Array {
  if (F16) return F16;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; ++h) {
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, m = h & 1023;
    t[h] = e === 0 ? s * m * 2 ** -24 : e === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (e - 15);
  }
  F16 = t;
  return t;
}

export function halfToFloat(b: Uint8Array): Float32Array {
  if (b.length % 2) throw new Error('atlas data: float16 array with an odd number of bytes');
  const h = new Uint16Array(b.buffer, b.byteOffset, b.length / 2);
  const t = f16Table();
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; ++i) out[i] = t[h[i]];
  return out;
}

export interface TopK {
  key: Uint16Array; // [H, N, K] key position within the query's item (NO_KEY: none)
  weight: Float32Array; // [H, N, K]
}

// Where the data lives: the page, or (tests) a map of names to base64 strings.
export type AtlasSource = { meta: AtlasMeta; text(name: string): string };

export function documentAtlasSource(doc: Document): AtlasSource | null {
  const el = doc.getElementById('attnscope-atlas');
  if (!el) return null;
  const meta = JSON.parse(el.textContent ?? '') as AtlasMeta;
  if (meta.format !== 'attnscope-atlas') throw new Error(`atlas data: expected format attnscope-atlas, found ${meta.format}`);
  return {
    meta,
    text: (name) => {
      const e = doc.getElementById(`attnscope-atlas-${name}`);
      if (!e) throw new Error(`atlas data: missing element attnscope-atlas-${name}`);
      return e.textContent ?? '';
    },
  };
}

export class AtlasStore {
  readonly meta: AtlasMeta;
  readonly n: number;
  readonly item: Int32Array; // [N]
  readonly position: Int32Array; // [N]
  readonly itemStart: Int32Array; // [items + 1]
  readonly offset: Int32Array; // [N + 1]
  private norms = new Map<string, Float32Array>();
  private proj = new Map<string, Float32Array[]>();
  private topCache = new Map<number, TopK>();
  private attnCache = new Map<number, Float32Array>();
  private images: Uint8Array | null = null;

  constructor(private src: AtlasSource) {
    const m = (this.meta = src.meta);
    this.n = m.n;
    this.item = this.i32('item', m.n);
    this.offset = this.i32('offset', m.n + 1);
    this.position = new Int32Array(m.n);
    this.itemStart = new Int32Array(m.items.length + 1);
    let prev = -1;
    for (let i = 0; i < m.n; ++i) {
      const it = this.item[i];
      if (it < 0 || it >= m.items.length || it < prev) throw new Error(`atlas data item: token ${i} has item ${it}`);
      for (let k = prev + 1; k <= it; ++k) this.itemStart[k] = i;
      prev = it;
      this.position[i] = i - this.itemStart[it];
    }
    for (let k = prev + 1; k <= m.items.length; ++k) this.itemStart[k] = m.n;
    if (m.tokens.length !== m.n) throw new Error(`atlas data: ${m.tokens.length} token strings for ${m.n} tokens`);
  }
  private bytes(name: string, expected: number): Uint8Array {
    const b = decodeBase64(this.src.text(name), name);
    if (b.length !== expected) throw new Error(`atlas data ${name}: expected ${expected} bytes, found ${b.length}`);
    return b;
  }
  private i32(name: string, count: number): Int32Array {
    const b = this.bytes(name, 4 * count);
    return new Int32Array(b.buffer, b.byteOffset, count);
  }
  private f16(name: string, count: number): Float32Array {
    return halfToFloat(this.bytes(name, 2 * count));
  }
  itemTokens(it: number): [number, number] {
    return [this.itemStart[it], this.itemStart[it + 1]];
  }
  // |q|, |k| or |v| of layer l, head h: [N].
  norm(kind: 'q' | 'k' | 'v', l: number, h: number): Float32Array {
    const m = this.meta;
    let all = this.norms.get(kind);
    if (!all) {
      all = this.f16(`${kind}norm`, m.n_layers * m.n_heads * m.n);
      this.norms.set(kind, all);
    }
    return all.subarray((l * m.n_heads + h) * m.n, (l * m.n_heads + h + 1) * m.n);
  }
  dims(name: string): number {
    const p = this.meta.projections.find((x) => x.name === name);
    if (!p) throw new Error(`atlas data: no projection ${name}`);
    return p.dims;
  }
  // Projection `name` of layer l: [H, 2N, d] as floats (every layer is kept once decoded).
  projection(name: string, l: number): Float32Array {
    let layers = this.proj.get(name);
    if (!layers) this.proj.set(name, (layers = []));
    if (!layers[l]) {
      const m = this.meta;
      layers[l] = this.f16(`proj-${name}-${l}`, m.n_heads * 2 * m.n * this.dims(name));
    }
    return layers[l];
  }
  head(name: string, l: number, h: number): Float32Array {
    const per = 2 * this.n * this.dims(name);
    return this.projection(name, l).subarray(h * per, (h + 1) * per);
  }
  topk(l: number): TopK {
    const hit = this.topCache.get(l);
    if (hit) return hit;
    const m = this.meta;
    const count = m.n_heads * m.n * m.top_k;
    const b = this.bytes(`topk-${l}`, 2 * count);
    const t = { key: new Uint16Array(b.buffer, b.byteOffset, count), weight: this.f16(`topw-${l}`, count) };
    if (this.topCache.size >= 4) this.topCache.delete(this.topCache.keys().next().value as number);
    this.topCache.set(l, t);
    return t;
  }
  // The top keys of query i in head (l, h) as global token indices with weights, strongest first.
  topKeys(l: number, h: number, i: number): { key: number; weight: number }[] {
    const t = this.topk(l), K = this.meta.top_k, base = this.itemStart[this.item[i]];
    const out: { key: number; weight: number }[] = [];
    for (let k = 0; k < K; ++k) {
      const at = (h * this.n + i) * K + k;
      if (t.key[at] !== NO_KEY) out.push({ key: base + t.key[at], weight: t.weight[at] });
    }
    return out;
  }
  hasRow(i: number): boolean {
    return this.offset[i + 1] > this.offset[i];
  }
  // Query i's whole attention row over the keys of its item (causal: up to i), or null when the
  // item was longer than attention_max.
  row(l: number, h: number, i: number): Float32Array | null {
    if (!this.hasRow(i)) return null;
    let a = this.attnCache.get(l);
    if (!a) {
      a = this.f16(`attn-${l}`, this.meta.n_heads * this.meta.attention_rows);
      if (this.attnCache.size >= 2) this.attnCache.delete(this.attnCache.keys().next().value as number);
      this.attnCache.set(l, a);
    }
    const base = h * this.meta.attention_rows;
    return a.subarray(base + this.offset[i], base + this.offset[i + 1]);
  }
  // Image models: item it's pixels, [S, S, 3].
  image(it: number): Uint8Array | null {
    const im = this.meta.image;
    if (!im) return null;
    const per = im.image_size * im.image_size * 3;
    if (!this.images) this.images = this.bytes('image', per * this.meta.items.length);
    return this.images.subarray(it * per, (it + 1) * per);
  }
}

// BertViz's "hide special tokens": the tokens a sentence view leaves out when asked to.
export function isSpecial(label: string, position: number, causal: boolean): boolean {
  if (causal) return position === 0; // the first token of a causal model (the attention sink)
  return /^\[(CLS|SEP)\]$|^<\/?s>$/.test(label.trim());
}

// One row of attention over the visible keys, renormalized to sum 1; with value norms, each weight
// is multiplied by its key's |v| first (Kobayashi et al., 2020, with |v| for |f(x)|).
export function sentenceRow(row: ArrayLike<number>, visible: boolean[], vnorm: ArrayLike<number> | null, renormalize: boolean): Float32Array {
  const out = new Float32Array(row.length);
  let sum = 0;
  for (let j = 0; j < row.length; ++j) {
    if (!visible[j]) continue;
    out[j] = row[j] * (vnorm ? vnorm[j] : 1);
    sum += out[j];
  }
  if ((renormalize || vnorm) && sum > 0) for (let j = 0; j < out.length; ++j) out[j] /= sum;
  return out;
}
