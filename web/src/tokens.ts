// Token strings are user data: they are only ever drawn on a canvas, set as textContent or escaped
// into SVG — never parsed as HTML. Control characters and bidirectional formatting marks are shown
// as visible escapes so a token cannot reorder or hide its neighbours.

const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

export function label(s: string, max = 24): string {
  let t = s.replace(INVISIBLE, (c) => {
    const code = c.charCodeAt(0);
    if (c === '\n') return '\\n';
    if (c === '\t') return '\\t';
    if (c === '\r') return '\\r';
    return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
  const chars = Array.from(t);
  if (chars.length > max) t = chars.slice(0, max - 1).join('') + '…';
  return t;
}

export type Filter = 'all' | 'aa' | 'bb' | 'ab' | 'ba';

// Sentence-pair filter (BertViz's "All / A→A / B→B / A→B / B→A"): which queries and keys show.
export function filterIndices(n: number, bStart: number | null, f: Filter): { rows: number[]; cols: number[] } {
  const all = Array.from({ length: n }, (_, t) => t);
  if (bStart === null || f === 'all') return { rows: all, cols: all };
  const a = all.slice(0, bStart), b = all.slice(bStart);
  const pick = (c: string) => (c === 'a' ? a : b);
  return { rows: pick(f[0]), cols: pick(f[1]) };
}
