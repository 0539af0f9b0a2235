// Level of detail. Head view: lines whose opacity is below a threshold are skipped; the threshold
// starts at what a screen can show (half a step of 8-bit alpha) and rises until at most `budget`
// lines remain; each query row reports the share of its attention mass that is drawn. Model view:
// tokens are binned to the thumbnail's pixel rows and the weights summed per pair of bins.

export interface LinePlan {
  threshold: number; // lines with opacity < threshold are skipped
  lines: number; // lines drawn
  kept: Float32Array; // per query row (in `rows` order): drawn mass / total mass, over the heads
}

const BINS = 2048;

// mats: the active heads' [N * N] matrices; opacity of a line = weight * scale.
export function planLines(mats: Float32Array[], n: number, rows: number[], cols: number[], scale: number,
                          budget: number, minOpacity = 0.5 / 255): LinePlan {
  const hist = new Float64Array(BINS + 1);
  for (const a of mats)
    for (const i of rows) {
      const base = i * n;
      for (const j of cols) {
        const o = a[base + j] * scale;
        if (o >= minOpacity) hist[Math.min(BINS, Math.floor(o * BINS))] += 1;
      }
    }
  let threshold = minOpacity, count = 0;
  for (let b = BINS; b >= 0; --b) {
    if (count + hist[b] > budget) {
      threshold = Math.max(minOpacity, (b + 1) / BINS);
      break;
    }
    count += hist[b];
  }
  const kept = new Float32Array(rows.length);
  let lines = 0;
  rows.forEach((i, r) => {
    let total = 0, drawn = 0;
    for (const a of mats) {
      const base = i * n;
      for (const j of cols) {
        const w = a[base + j];
        total += w;
        if (w * scale >= threshold) {
          drawn += w;
          lines += 1;
        }
      }
    }
    kept[r] = total > 0 ? drawn / total : 1;
  });
  return { threshold, lines, kept };
}

// The same over a subset of queries (rows) and keys (cols), e.g. a sentence-pair filter.
export function binSubMatrix(a: Float32Array, n: number, rows: number[], cols: number[], bins: number): Float32Array {
  const br = Math.min(bins, rows.length), bc = Math.min(bins, cols.length);
  const out = new Float32Array(bins * bins);
  const count = new Float32Array(bins);
  const colBin = cols.map((_, c) => Math.min(bc - 1, Math.floor((c * bc) / cols.length)));
  rows.forEach((i, r) => {
    const bi = Math.min(br - 1, Math.floor((r * br) / rows.length));
    count[bi] += 1;
    const base = i * n;
    cols.forEach((j, c) => (out[bi * bins + colBin[c]] += a[base + j]));
  });
  for (let bi = 0; bi < bins; ++bi) {
    const inv = count[bi] > 0 ? 1 / count[bi] : 0;
    for (let bj = 0; bj < bins; ++bj) out[bi * bins + bj] *= inv;
  }
  return out;
}

// a: [N * N]; returns [bins * bins] with out[bi][bj] = sum of a[i][j] over i in bin bi and j in
// bin bj, divided by the number of queries in bi (so a row of bins still sums to <= 1).
export function binMatrix(a: Float32Array, n: number, bins: number): Float32Array {
  const out = new Float32Array(bins * bins);
  const binOf = new Int32Array(n);
  const count = new Float32Array(bins);
  for (let t = 0; t < n; ++t) {
    binOf[t] = Math.min(bins - 1, Math.floor((t * bins) / n));
    count[binOf[t]] += 1;
  }
  for (let i = 0; i < n; ++i) {
    const bi = binOf[i] * bins, base = i * n;
    for (let j = 0; j < n; ++j) out[bi + binOf[j]] += a[base + j];
  }
  for (let bi = 0; bi < bins; ++bi) {
    const inv = count[bi] > 0 ? 1 / count[bi] : 0;
    for (let bj = 0; bj < bins; ++bj) out[bi * bins + bj] *= inv;
  }
  return out;
}
