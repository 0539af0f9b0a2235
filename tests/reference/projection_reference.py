#!/usr/bin/python3
"""Independent values for the projections (numpy/scipy): PCA by numpy's SVD, t-SNE affinities by
the definition (per point a Gaussian over its 3 * perplexity nearest neighbours, precision by
bisection on the entropy in nats, P = (P + P^T) / sum), trustworthiness by scikit-learn's formula,
and Spearman's rho by scipy.stats.spearmanr.

Usage: projection_reference.py OUT_DIR  (writes projection_expected.json)"""
import json
import os
import sys

import numpy as np
from scipy.stats import spearmanr

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(11)
# PCA: 300 points in 12-D with decreasing variances.
x = (rng.standard_normal((300, 12)) * np.linspace(3, 0.3, 12)) @ np.linalg.qr(rng.standard_normal((12, 12)))[0]
x = x.astype(np.float32)
xc = x.astype(np.float64) - x.astype(np.float64).mean(0)
u, s, vt = np.linalg.svd(xc, full_matrices=False)
comps = vt[:3]
for c in comps:  # the largest-magnitude loading positive
    if c[np.argmax(np.abs(c))] < 0:
        c *= -1
proj = xc @ comps.T
var = s[:3] ** 2 / (x.shape[0] - 1)

# t-SNE affinities on 60 points in 5-D, perplexity 8.
a = rng.standard_normal((60, 5)).astype(np.float32)
n, perp = a.shape[0], 8.0
k = min(n - 1, int(3 * perp + 1))
d2 = ((a[:, None, :].astype(np.float64) - a[None, :, :]) ** 2).sum(-1)
np.fill_diagonal(d2, np.inf)
nbr = np.argsort(d2, axis=1, kind="stable")[:, :k]
P = np.zeros((n, n))
for i in range(n):
    di = d2[i, nbr[i]]
    lo, hi = 0.0, np.inf
    beta = 1.0
    for _ in range(200):
        p = np.exp(-di * beta)
        sp = max(p.sum(), 1e-300)
        h = np.log(sp) + beta * (di * p).sum() / sp
        if abs(h - np.log(perp)) < 1e-10:
            break
        if h > np.log(perp):
            lo = beta
            beta = beta * 2 if hi == np.inf else (beta + hi) / 2
        else:
            hi = beta
            beta = (beta + lo) / 2
    P[i, nbr[i]] = p / sp
P = P + P.T
P /= P.sum()

# Trustworthiness of a noisy 2-D view of 200 points in 6-D, k = 5 (scikit-learn's formula).
t = rng.standard_normal((200, 6)).astype(np.float32)
emb = (t[:, :2] + 0.3 * rng.standard_normal((200, 2))).astype(np.float32)
kk = 5
dx = ((t[:, None, :].astype(np.float64) - t[None]) ** 2).sum(-1)
np.fill_diagonal(dx, np.inf)
rank = np.empty_like(dx, dtype=int)
order = np.argsort(dx, axis=1, kind="stable")
for i in range(len(t)):
    rank[i, order[i]] = np.arange(1, len(t) + 1)
de = ((emb[:, None, :].astype(np.float64) - emb[None]) ** 2).sum(-1)
np.fill_diagonal(de, np.inf)
ne = np.argsort(de, axis=1, kind="stable")[:, :kk]
r = np.array([rank[i, ne[i]] for i in range(len(t))]) - kk
tw = 1 - (2.0 / (len(t) * kk * (2.0 * len(t) - 3.0 * kk - 1.0))) * r[r > 0].sum()

# Spearman with ties.
sa = rng.integers(0, 20, 500).astype(float)
sb = sa * 0.5 + rng.standard_normal(500) * 4
rho = spearmanr(sa, sb).correlation

# UMAP's a, b: scipy's curve_fit of 1 / (1 + a x^(2b)) as umap-learn's find_ab_params does it.
from scipy.optimize import curve_fit  # noqa: E402


def find_ab(min_dist, spread):
    xv = np.linspace(0, spread * 3, 300)
    yv = np.where(xv < min_dist, 1.0, np.exp(-(xv - min_dist) / spread))
    params, _ = curve_fit(lambda x, a, b: 1.0 / (1.0 + a * x ** (2 * b)), xv, yv)
    return [float(params[0]), float(params[1]), min_dist, spread]


ab = [find_ab(0.1, 1.0), find_ab(0.5, 1.0), find_ab(0.01, 2.0)]

# Spearman between q.k and |q - k| over the pairs a causal model compares (same item, key <= query).
qq = rng.standard_normal((40, 8)).astype(np.float32)
kq = rng.standard_normal((40, 8)).astype(np.float32)
items = [0] * 15 + [1] * 25
dots, dists = [], []
for i in range(40):
    for j in range(40):
        if items[i] == items[j] and j <= i:
            dots.append(float(qq[i].astype(np.float64) @ kq[j]))
            dists.append(float(np.linalg.norm(qq[i].astype(np.float64) - kq[j])))
qk_rho = spearmanr(dots, dists).correlation

json.dump({"qk_q": qq.tolist(), "qk_k": kq.tolist(), "qk_items": items, "qk_rho": float(qk_rho),
           "umap_ab": ab, "pca_x": x.tolist(), "pca_proj": proj.tolist(), "pca_var": var.tolist(),
           "tsne_x": a.tolist(), "tsne_perplexity": perp, "tsne_p": P.tolist(),
           "tw_x": t.tolist(), "tw_y": emb.tolist(), "tw_k": kk, "tw": float(tw),
           "sp_a": sa.tolist(), "sp_b": sb.tolist(), "spearman": float(rho)},
          open(os.path.join(out, "projection_expected.json"), "w"))
print("trustworthiness", tw, "spearman", rho)
