import { describe, expect, it } from 'vitest';
import { binMatrix, binSubMatrix, planLines } from '../src/lod';

function randomRows(n: number, seed: number, sharp: number): Float32Array {
  let s = seed;
  const r = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const a = new Float32Array(n * n);
  for (let i = 0; i < n; ++i) {
    let z = 0;
    for (let j = 0; j < n; ++j) z += a[i * n + j] = Math.exp(sharp * r());
    for (let j = 0; j < n; ++j) a[i * n + j] /= z;
  }
  return a;
}

describe('head view level of detail', () => {
  const n = 64;
  const mats = [randomRows(n, 1, 8), randomRows(n, 2, 8)];
  const idx = Array.from({ length: n }, (_, t) => t);

  it('draws everything visible when under budget, and reports 100% kept where nothing is skipped', () => {
    const plan = planLines(mats, n, idx, idx, 0.5, 1e9, 0);
    expect(plan.lines).toBe(2 * n * n);
    plan.kept.forEach((k) => expect(k).toBeCloseTo(1, 6));
  });

  it('raises the threshold to meet the budget and reports the kept share of each row exactly', () => {
    const budget = 500;
    const plan = planLines(mats, n, idx, idx, 0.5, budget);
    expect(plan.lines).toBeLessThanOrEqual(budget);
    expect(plan.lines).toBeGreaterThan(budget * 0.8); // not far below: the histogram has 2,048 bins
    idx.forEach((i) => {
      let total = 0, kept = 0, count = 0;
      for (const a of mats)
        for (let j = 0; j < n; ++j) {
          total += a[i * n + j];
          if (a[i * n + j] * 0.5 >= plan.threshold) (kept += a[i * n + j]), count++;
        }
      expect(plan.kept[i]).toBeCloseTo(kept / total, 5);
    });
  });

  it('skips lines too faint to see even without a budget', () => {
    const flat = [new Float32Array(n * n).fill(1 / n)];
    const plan = planLines(flat, n, idx, idx, 1 / 300, 1e9); // opacity 1/(64*300) < 0.5/255
    expect(plan.lines).toBe(0);
    plan.kept.forEach((k) => expect(k).toBe(0));
  });
});

describe('model view binning', () => {
  it('keeps the mass of every query row', () => {
    const n = 100, bins = 23;
    const a = randomRows(n, 5, 3);
    const b = binMatrix(a, n, bins);
    for (let bi = 0; bi < bins; ++bi) {
      let s = 0;
      for (let bj = 0; bj < bins; ++bj) s += b[bi * bins + bj];
      expect(s).toBeCloseTo(1, 5);
    }
  });

  it('is the identity when there are no more tokens than bins, and matches a brute-force sum otherwise', () => {
    const n = 10;
    const a = randomRows(n, 9, 3);
    const idx = Array.from({ length: n }, (_, t) => t);
    const b = binSubMatrix(a, n, idx, idx, 16);
    for (let i = 0; i < n; ++i) for (let j = 0; j < n; ++j) expect(b[i * 16 + j]).toBeCloseTo(a[i * n + j], 6);
    const rows = [0, 1, 2, 3, 4], cols = [5, 6, 7, 8, 9];
    const s = binSubMatrix(a, n, rows, cols, 2);
    // rows 0..2 -> bin 0 (3 rows), 3..4 -> bin 1; cols 5..7 -> bin 0, 8..9 -> bin 1
    let want = 0;
    for (const i of [0, 1, 2]) for (const j of [8, 9]) want += a[i * n + j];
    expect(s[0 * 2 + 1]).toBeCloseTo(want / 3, 6);
  });
});
