// Head colours. Up to 10 heads: d3's category10 (what BertViz users know). More heads: a palette
// of up to 64 colours picked by farthest-point sampling in OKLab among sRGB colours of medium
// lightness (readable on light and dark backgrounds), starting from category10 — so no two
// heads share a colour (BertViz repeats its 10 colours).

export const CATEGORY10 = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export type Lab = [number, number, number];

function linear(c: number): number {
  return c <= 0.04045 ? c / 12.92 : Math.pow((c + 0.055) / 1.055, 2.4);
}

export function hexToRgb(hex: string): [number, number, number] {
  const v = parseInt(hex.slice(1), 16);
  return [(v >> 16) & 255, (v >> 8) & 255, v & 255];
}

export function rgbToHex(r: number, g: number, b: number): string {
  return '#' + [r, g, b].map((x) => x.toString(16).padStart(2, '0')).join('');
}

// sRGB (0..255) to OKLab (Björn Ottosson's matrices).
export function oklab(r: number, g: number, b: number): Lab {
  const R = linear(r / 255), G = linear(g / 255), B = linear(b / 255);
  const l = Math.cbrt(0.4122214708 * R + 0.5363325363 * G + 0.0514459929 * B);
  const m = Math.cbrt(0.2119034982 * R + 0.6806995451 * G + 0.1073969566 * B);
  const s = Math.cbrt(0.0883024619 * R + 0.2817188376 * G + 0.6299787005 * B);
  return [
    0.2104542553 * l + 0.793617785 * m - 0.0040720468 * s,
    1.9779984951 * l - 2.428592205 * m + 0.4505937099 * s,
    0.0259040371 * l + 0.7827717662 * m - 0.808675766 * s,
  ];
}

export function distance(a: Lab, b: Lab): number {
  return Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2]);
}

let cached: string[] | null = null;

export function palette64(): string[] {
  if (cached) return cached;
  const cands: { hex: string; lab: Lab }[] = [];
  for (let r = 0; r < 256; r += 17)
    for (let g = 0; g < 256; g += 17)
      for (let b = 0; b < 256; b += 17) {
        const lab = oklab(r, g, b);
        if (lab[0] >= 0.5 && lab[0] <= 0.82) cands.push({ hex: rgbToHex(r, g, b), lab });
      }
  const chosen = CATEGORY10.map((hex) => ({ hex, lab: oklab(...hexToRgb(hex)) }));
  const best = cands.map((c) => Math.min(...chosen.map((s) => distance(c.lab, s.lab))));
  while (chosen.length < 64) {
    let k = 0;
    for (let t = 1; t < cands.length; ++t) if (best[t] > best[k]) k = t;
    const pick = cands[k];
    chosen.push(pick);
    for (let t = 0; t < cands.length; ++t) best[t] = Math.min(best[t], distance(cands[t].lab, pick.lab));
  }
  cached = chosen.map((c) => c.hex);
  return cached;
}

export function headColors(nHeads: number): string[] {
  if (nHeads <= 10) return CATEGORY10.slice(0, nHeads);
  const p = palette64();
  return Array.from({ length: nHeads }, (_, h) => p[h % p.length]);
}

// Neuron view cells: positive blue, negative orange, opacity tanh(|v| / 4) (BertViz's rule).
export function signedCell(v: number): { color: string; alpha: number } {
  return { color: v >= 0 ? '#1f77b4' : '#ff7f0e', alpha: Math.tanh(Math.abs(v) / 4) };
}

export interface Theme {
  name: 'light' | 'dark';
  background: string;
  text: string;
  muted: string;
  highlight: string;
}

export const THEMES: Record<'light' | 'dark', Theme> = {
  light: { name: 'light', background: '#ffffff', text: '#1a1a1a', muted: '#8a8a8a', highlight: '#fff2a8' },
  dark: { name: 'dark', background: '#16181d', text: '#e8e8e8', muted: '#8d939c', highlight: '#5a4b00' },
};
