#!/usr/bin/python3
"""Per-head summary of an attnscope dump: mean attention on the previous token, on the first
token, on the token itself, and the mean row entropy (queries 2..T-1).

Usage: /usr/bin/python3 tools/head_stats.py DUMP.safetensors
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "reference"))
import safetensors_io  # noqa: E402

t, meta = safetensors_io.load(sys.argv[1])
L = int(meta["n_layers"])
print("| layer | head | previous token | first token | self | entropy (nats) |")
print("|---|---|---|---|---|---|")
for l in range(L):
    a = t[f"attention.{l}"].float()  # [H, T, T]
    T = a.shape[1]
    q = torch.arange(2, T)
    for h in range(a.shape[0]):
        prev = a[h, q, q - 1].mean().item()
        first = a[h, q, 0].mean().item()
        self_ = a[h, q, q].mean().item()
        p = a[h, 2:].clamp_min(1e-12)
        ent = -(a[h, 2:] * p.log()).sum(-1).mean().item()
        print(f"| {l} | {h} | {prev:.3f} | {first:.3f} | {self_:.3f} | {ent:.2f} |")
print(json.dumps({"tokens": len(json.loads(meta["tokens"]))}))
