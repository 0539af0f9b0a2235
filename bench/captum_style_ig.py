#!/usr/bin/python3
"""What a user would otherwise run for integrated gradients on a GPT-2: Captum's algorithm written
out in PyTorch (Debian python3-torch; Captum itself is not packaged): Gauss-Legendre points, the
scaled word embeddings of all steps pushed through a batched float32 GPT-2 forward in chunks of
`batch` (Captum's internal_batch_size), torch.autograd.grad per chunk, the weighted sum times
(x - baseline). The forward follows modeling_gpt2.py. Prints JSON: seconds (the attribution
alone), per-token scores reduced like attnscope's default (sum over the embedding / L2 norm).

Usage: captum_style_ig.py CHECKPOINT DUMP.safetensors STEPS BATCH
"""
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "reference"))
import safetensors_io  # noqa: E402

ck, dump, steps, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(os.cpu_count())
w = {}
for f in os.listdir(ck):
    if f.endswith(".safetensors"):
        t, _ = safetensors_io.load(os.path.join(ck, f))
        w.update({k.removeprefix("transformer."): v.float() for k, v in t.items()})
cfg = json.load(open(os.path.join(ck, "config.json")))
D, H, L = cfg["n_embd"], cfg["n_head"], cfg["n_layer"]
hd = D // H
ids = safetensors_io.load(dump)[0]["input_ids"].long()
T = ids.shape[0]
causal = torch.tril(torch.ones(T, T, dtype=torch.bool))


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def logits_at_last(emb):  # emb: [B, T, D] word embeddings -> [B, V] logits of the last position
    B = emb.shape[0]
    x = emb + w["wpe.weight"][:T]
    for i in range(L):
        p = f"h.{i}."
        a = F.layer_norm(x, (D,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], 1e-5)
        qkv = torch.addmm(w[p + "attn.c_attn.bias"], a.view(-1, D), w[p + "attn.c_attn.weight"]).view(B, T, 3, H, hd)
        q, k, v = (qkv[:, :, j].transpose(1, 2) for j in range(3))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        s = s.masked_fill(~causal, torch.finfo(s.dtype).min)
        o = (torch.softmax(s, -1) @ v).transpose(1, 2).reshape(B * T, D)
        x = x + torch.addmm(w[p + "attn.c_proj.bias"], o, w[p + "attn.c_proj.weight"]).view(B, T, D)
        m = F.layer_norm(x, (D,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], 1e-5)
        f = gelu_new(torch.addmm(w[p + "mlp.c_fc.bias"], m.view(-1, D), w[p + "mlp.c_fc.weight"]))
        x = x + torch.addmm(w[p + "mlp.c_proj.bias"], f, w[p + "mlp.c_proj.weight"]).view(B, T, D)
    h = F.layer_norm(x[:, -1], (D,), w["ln_f.weight"], w["ln_f.bias"], 1e-5)
    return h @ w.get("lm_head.weight", w["wte.weight"]).t()


x = w["wte.weight"][ids]
with torch.no_grad():
    target = int(logits_at_last(x[None])[0].argmax())
t0 = time.perf_counter()
nodes, wts = np.polynomial.legendre.leggauss(steps)
alphas, wts = (nodes + 1) / 2, wts / 2
base = torch.zeros_like(x)
total = torch.zeros_like(x)
for s in range(0, steps, batch):
    a = torch.tensor(alphas[s:s + batch], dtype=torch.float32).view(-1, 1, 1)
    inp = (base + a * (x - base)).requires_grad_(True)
    f = logits_at_last(inp)[:, target]
    (g,) = torch.autograd.grad(f.sum(), inp)
    total += (g * torch.tensor(wts[s:s + batch], dtype=torch.float32).view(-1, 1, 1)).sum(0)
attr = (x - base) * total
seconds = time.perf_counter() - t0
sums = attr.sum(-1).double()
print(json.dumps({"seconds": seconds, "target": target, "tokens": T, "scores": (sums / sums.norm()).tolist()}))
