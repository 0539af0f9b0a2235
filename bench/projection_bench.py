#!/usr/bin/python3
"""t-SNE against scikit-learn's TSNE and UMAP against umap-js on the same vectors, in one run: the
queries and keys of one head of the shipped GPT-2 (models/gpt2-moby, layer 1 head 2) over Moby Dick
sentences, aligned as attnscope qk aligns them (keys translated, norms equalised). Reports wall
time, the exact KL(P || Q) of each t-SNE embedding under the same P (attnscope's, perplexity 30),
and scikit-learn's trustworthiness (10 neighbours) for every embedding. Prints Markdown.

Usage: projection_bench.py ATTNSCOPE BENCH_PROJECTION OUT_DIR [TOKENS...]
"""
import json
import os
import subprocess
import sys
import time

import numpy as np
from sklearn.manifold import TSNE, trustworthiness

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "reference"))
import safetensors_io  # noqa: E402
import torch  # noqa: E402

exe, bp, out = sys.argv[1:4]
sizes = [int(a) for a in sys.argv[4:]] or [2500, 5000]
root = os.path.join(os.path.dirname(__file__), "..")
model = os.path.join(root, "models", "gpt2-moby")
lines = open(os.path.join(root, "data", "moby-sentences.txt"), encoding="utf-8").read().split("\n")
os.makedirs(out, exist_ok=True)
LAYER, HEAD = 1, 2


def head_vectors(n_tokens):
    """q, k of the head over chunks of 12 sentences (each cut to the model's 256 positions)."""
    qs, ks, got, c = [], [], 0, 0
    while got < n_tokens:
        text = " ".join(lines[12 * c:12 * c + 12])
        c += 1
        path = os.path.join(out, "chunk.safetensors")
        subprocess.run([exe, "dump", "--model", model, "--text", text, "--truncate", "--qkv", "-o", path], check=True,
                       capture_output=True)
        t, _ = safetensors_io.load(path)
        q, k = t[f"query.{LAYER}"][HEAD].numpy(), t[f"key.{LAYER}"][HEAD].numpy()
        take = min(len(q), n_tokens - got)
        qs.append(q[:take])
        ks.append(k[:take])
        got += take
    q, k = np.concatenate(qs).astype(np.float64), np.concatenate(ks).astype(np.float64)
    k = k + (q.mean(0) - k.mean(0))
    c = np.sqrt(np.linalg.norm(q, axis=1).mean() / np.linalg.norm(k, axis=1).mean())
    return np.concatenate([q / c, k * c]).astype(np.float32)


def save_coords(path, y):
    safetensors_io.save(path, {"y": torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))})


def run_json(args):
    r = subprocess.run(args, check=True, capture_output=True, text=True)
    return json.loads(r.stdout.strip().splitlines()[-1])


rows = []
for n_tokens in sizes:
    x = head_vectors(n_tokens)
    n, d = x.shape
    pts = os.path.join(out, f"points_{n}.safetensors")
    safetensors_io.save(pts, {"points": torch.from_numpy(x)})
    x.tofile(os.path.join(out, f"points_{n}.f32"))
    res = {}
    # t-SNE: attnscope (its defaults: Barnes-Hut, openTSNE's schedule) and scikit-learn (its defaults).
    ours = os.path.join(out, f"tsne_ours_{n}.safetensors")
    r = run_json([bp, pts, ours, "tsne", "2", "auto"])
    y = safetensors_io.load(ours)[0]["y"].numpy()
    res["tsne_ours"] = (r["seconds"], run_json([bp, pts, ours, "kl"])["kl"], trustworthiness(x, y, n_neighbors=10))
    t0 = time.perf_counter()
    ys = TSNE(2, perplexity=30, init="pca", learning_rate="auto", n_jobs=2, random_state=0).fit_transform(x)
    sk_s = time.perf_counter() - t0
    theirs = os.path.join(out, f"tsne_sklearn_{n}.safetensors")
    save_coords(theirs, ys)
    res["tsne_sklearn"] = (sk_s, run_json([bp, pts, theirs, "kl"])["kl"], trustworthiness(x, ys, n_neighbors=10))
    # UMAP: attnscope and umap-js.
    ours = os.path.join(out, f"umap_ours_{n}.safetensors")
    r = run_json([bp, pts, ours, "umap", "2"])
    y = safetensors_io.load(ours)[0]["y"].numpy()
    res["umap_ours"] = (r["seconds"], None, trustworthiness(x, y, n_neighbors=10))
    raw = os.path.join(out, f"umap_js_{n}.f32")
    r = run_json(["node", os.path.join(os.path.dirname(__file__), "umap_js.mjs"), os.path.join(out, f"points_{n}.f32"),
                  str(n), str(d), raw, "2"])
    yj = np.fromfile(raw, dtype=np.float32).reshape(n, 2)
    res["umap_js"] = (r["seconds"], None, trustworthiness(x, yj, n_neighbors=10))
    rows.append((n, d, res))
    print(f"{n} points done", file=sys.stderr)

print("| points (dims) | method | seconds | KL(P‖Q) | trustworthiness (k=10) | speed-up |")
print("|---|---|---|---|---|---|")
for n, d, res in rows:
    for name, label, base in (("tsne_ours", "attnscope t-SNE", "tsne_sklearn"),
                              ("tsne_sklearn", "scikit-learn TSNE", None),
                              ("umap_ours", "attnscope UMAP", "umap_js"), ("umap_js", "umap-js", None)):
        s, kl, tw = res[name]
        up = f"{res[base][0] / s:.1f}x" if base else ""
        print(f"| {n:,} ({d}) | {label} | {s:.2f} | {'' if kl is None else f'{kl:.3f}'} | {tw:.4f} | {up} |")
