"""Independent reference values for the attention-only explanations (rollout, flow, the
generation table, activation energy), computed with numpy and networkx's own max-flow on small
random attention. Writes OUT/explain.safetensors (inputs) and OUT/explain_expected.json.
Usage: explain_reference.py OUT_DIR"""
import json
import os
import sys

import networkx as nx
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from safetensors_io import save  # noqa: E402

rng = np.random.default_rng(11)


def softmax_rows(x, causal):
    if causal:
        n = x.shape[-1]
        x = np.where(np.tril(np.ones((n, n), bool)), x, -np.inf)
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def random_attention(layers, heads, n, causal, sharp=2.5):
    return [softmax_rows(rng.normal(size=(heads, n, n)) * sharp, causal) for _ in range(layers)]


def fused(a, fusion, discard):
    w = {"mean": a.mean(0), "max": a.max(0), "min": a.min(0)}[fusion].copy()
    n = w.shape[0]
    if discard > 0:
        flat = w.reshape(-1)
        order = np.argsort(flat, kind="stable")[: int(n * n * discard)]
        order = order[order // n != order % n]  # keep the diagonal
        flat[order] = 0
    w = w + np.eye(n)
    return w / w.sum(-1, keepdims=True)


def rollout(att, fusion="mean", discard=0.0, start=0):
    r = fused(att[start], fusion, discard)
    for a in att[start + 1:]:
        r = fused(a, fusion, discard) @ r
    return r


def flow(att, fusion="mean", discard=0.0, start=0):
    layers = att[start:]
    n = layers[0].shape[-1]
    g = nx.DiGraph()
    for k, a in enumerate(layers, start=1):
        w = fused(a, fusion, discard)
        for i in range(n):
            for j in range(n):
                if w[i, j] > 0:
                    g.add_edge((k, i), (k - 1, j), capacity=float(w[i, j]))
    top = len(layers)
    out = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            out[i, j] = nx.maximum_flow_value(g, (top, i), (0, j))
        out[i] /= out[i].sum()
    return out


def generation_table(att, prompt):
    T = att[0].shape[-1]
    out = np.zeros((T, T))
    for i in range(prompt):
        out[i, i] = 1
    for t in range(prompt, T):
        rows = []
        for a in att:
            r = a[:, t - 1, :].mean(0).copy()
            r[t:] = 0
            r[0] = 0
            rows.append(r / r.sum())
        out[t] = np.mean(rows, 0)
    return out


out_dir = sys.argv[1]
os.makedirs(out_dir, exist_ok=True)
enc = random_attention(3, 2, 7, causal=False)
dec = random_attention(4, 3, 6, causal=True)
hidden = [rng.normal(size=(5, 8)) * (l + 1) for l in range(3)]
tensors = {}
for l, a in enumerate(enc):
    tensors[f"enc.{l}"] = torch.tensor(a, dtype=torch.float32)
for l, a in enumerate(dec):
    tensors[f"dec.{l}"] = torch.tensor(a, dtype=torch.float32)
for l, h in enumerate(hidden):
    tensors[f"hidden.{l}"] = torch.tensor(h, dtype=torch.float32)
save(os.path.join(out_dir, "explain.safetensors"), tensors)
# the references see the float32 values the C++ side reads
enc = [tensors[f"enc.{l}"].double().numpy() for l in range(3)]
dec = [tensors[f"dec.{l}"].double().numpy() for l in range(4)]
hidden = [tensors[f"hidden.{l}"].double().numpy() for l in range(3)]

expected = {"rollout": [], "flow": []}
for fusion, discard, start in [("mean", 0.0, 0), ("max", 0.0, 0), ("min", 0.0, 1), ("mean", 0.5, 0), ("max", 0.3, 1)]:
    for name, att in [("enc", enc), ("dec", dec)]:
        expected["rollout"].append({"case": name, "fusion": fusion, "discard": discard, "start": start,
                                    "value": rollout(att, fusion, discard, start).tolist()})
for fusion, discard, start in [("mean", 0.0, 0), ("max", 0.5, 1)]:
    for name, att in [("enc", enc), ("dec", dec)]:
        expected["flow"].append({"case": name, "fusion": fusion, "discard": discard, "start": start,
                                 "value": flow(att, fusion, discard, start).tolist()})
expected["generation"] = {"prompt": 3, "value": generation_table(dec, 3).tolist()}
expected["activation"] = [(np.abs(h) ** 2).sum(-1).tolist() for h in hidden]
expected["activation"] = [(np.array(e) / np.linalg.norm(e)).tolist() for e in expected["activation"]]
expected["activation_p1"] = [(np.abs(h).sum(-1) / np.linalg.norm(np.abs(h).sum(-1))).tolist() for h in hidden]
# a plain max-flow problem (CLRS figure 26.1: value 23)
expected["clrs"] = {"edges": [[0, 1, 16], [0, 2, 13], [2, 1, 4], [1, 3, 12], [3, 2, 9], [2, 4, 14], [4, 3, 7],
                              [3, 5, 20], [4, 5, 4]]}
g = nx.DiGraph()
for u, v, c in expected["clrs"]["edges"]:
    g.add_edge(u, v, capacity=c)
expected["clrs"]["value"] = nx.maximum_flow_value(g, 0, 5)
with open(os.path.join(out_dir, "explain_expected.json"), "w") as f:
    json.dump(expected, f)
print(out_dir)
