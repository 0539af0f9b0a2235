// umap-js (npm) on the points of a raw float32 file: node umap_js.mjs POINTS.f32 N D OUT.f32 DIMS
// Prints {"seconds"}; the embedding goes to OUT.f32 (float32, row-major).
import { readFileSync, writeFileSync } from "node:fs";
import { UMAP } from "umap-js";

const [file, n, d, out, dims] = process.argv.slice(2);
const N = Number(n), D = Number(d);
const buf = new Float32Array(readFileSync(file).buffer.slice(0));
const data = [];
for (let i = 0; i < N; i++) data.push(Array.from(buf.subarray(i * D, (i + 1) * D)));
let seed = 42; // a fixed seed for repeatable runs (umap-js takes a random() function)
const random = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 4294967296);
const t0 = performance.now();
const umap = new UMAP({ nComponents: Number(dims), nNeighbors: 15, minDist: 0.1, random });
const y = umap.fit(data);
const seconds = (performance.now() - t0) / 1000;
writeFileSync(out, Buffer.from(new Float32Array(y.flat()).buffer));
console.log(JSON.stringify({ seconds }));
