"""Independent values for the gradient attributions on a GPT-2 checkpoint written by
gpt2_reference.py (run it first into the same root): saliency and input x gradient on the word
embeddings, integrated gradients (Gauss-Legendre via numpy's leggauss, zero baseline), and
Chefer et al. ICCV 2021 grad-attention rows (plain and signed). Float64 PyTorch autograd on
gpt2_reference.reference(). Usage: attribution_reference.py GPT2_REFERENCE_ROOT OUT_DIR"""
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402
from gpt2_reference import CASES, reference  # noqa: E402

root, out_dir = sys.argv[1], sys.argv[2]
os.makedirs(out_dir, exist_ok=True)
case = next(c for c in CASES if c["name"] == "five_layers_untied")
d = os.path.join(root, case["name"])
w = {}
for f in sorted(os.listdir(d)):
    if f.endswith(".safetensors") and f != "reference.safetensors":
        t, _ = safetensors_io.load(os.path.join(d, f))
        w.update(t)
prefix = case["prefix"]
w = {(k[len(prefix):] if k.startswith(prefix) and k != "lm_head.weight" else k): v.to(torch.float64)
     for k, v in w.items() if not k.endswith(".attn.bias") and not k.endswith(".attn.masked_bias")}
T = 7
ids = torch.randperm(w["wte.weight"].shape[0], generator=torch.Generator().manual_seed(5))[:T]  # distinct ids
pos, target = T - 1, 3


def run(word_embeddings, keep_attention=False):
    """F = logit of `target` at `pos`, with the word embeddings of the T positions given."""
    ww = dict(w)
    wte = ww["wte.weight"].clone()
    wte[ids] = word_embeddings
    ww["wte.weight"] = wte
    out = reference(case, ww, ids, dtype=torch.float64)
    att = [out[f"attention.{i}"] for i in range(case["n_layer"])]
    if keep_attention:
        for a in att:
            a.retain_grad()
    return out["logits"][pos, target], att


x = w["wte.weight"][ids].clone().requires_grad_(True)
f, att = run(x, keep_attention=True)
f.backward()
grad = x.grad.detach().numpy()
expected = {"ids": ids.tolist(), "position": pos, "target": target, "value": float(f),
            "saliency": np.abs(grad).tolist(), "grad_x_input": (grad * x.detach().numpy()).tolist()}
for signed in (False, True):
    R = torch.eye(T, dtype=torch.float64)
    for a in att:
        cam = a.grad * a.detach()
        if not signed:
            cam = cam.clamp(min=0)
        R = R + cam.mean(0) @ R
    expected["grad_attention_signed" if signed else "grad_attention"] = R[pos].tolist()
nodes, weights = np.polynomial.legendre.leggauss(32)
alphas, weights = (nodes + 1) / 2, weights / 2
acc = np.zeros_like(grad)
for a, wt in zip(alphas, weights):
    xi = (a * x.detach()).clone().requires_grad_(True)
    fi, _ = run(xi)
    fi.backward()
    acc += wt * xi.grad.numpy()
ig = x.detach().numpy() * acc
f0, _ = run(torch.zeros_like(x))
expected["ig32"] = ig.tolist()
expected["ig32_baseline_value"] = float(f0)
expected["ig32_delta"] = float(ig.sum() - (float(f) - float(f0)))
# Captum's Occlusion with sliding_window_shapes (2, D), strides (1, D), baseline 0: each token gets
# the mean drop F(x) - F(x with the window zeroed) over the windows that cover it.
with torch.no_grad():
    fx = float(run(x.detach())[0])
    drops, counts = np.zeros(T), np.zeros(T)
    for s0 in range(0, T - 1):
        xo = x.detach().clone()
        xo[s0:s0 + 2] = 0
        d = fx - float(run(xo)[0])
        drops[s0:s0 + 2] += d
        counts[s0:s0 + 2] += 1
expected["occlusion_w2"] = (drops / counts).tolist()

# Captum's LLM attribution of a continuation (LLMGradientAttribution with LayerIntegratedGradients on
# the word embeddings): row i explains log_softmax(logits[-1])[cont[i]] for the input ids + cont[:i];
# only the prompt's embeddings are interpolated from 0; the row sums attr over the embedding.
perm = torch.randperm(w["wte.weight"].shape[0], generator=torch.Generator().manual_seed(5))
cont = perm[T:T + 3]  # distinct from the prompt's ids


def logprob_of(prompt_embeddings, i):
    ww = dict(w)
    wte = ww["wte.weight"].clone()
    wte[ids] = prompt_embeddings
    ww["wte.weight"] = wte
    full = torch.cat([ids, cont[:i]])
    out = reference(case, ww, full, dtype=torch.float64)
    return torch.log_softmax(out["logits"][-1], -1)[cont[i]]


rows, values = [], []
for i in range(len(cont)):
    acc = np.zeros_like(grad)
    for a, wt in zip(alphas, weights):
        xi = (a * x.detach()).clone().requires_grad_(True)
        logprob_of(xi, i).backward()
        acc += wt * xi.grad.numpy()
    rows.append((x.detach().numpy() * acc).sum(-1).tolist())
    values.append(float(logprob_of(x.detach(), i)))
expected["continuation_ids"] = cont.tolist()
expected["continuation_ig32_rows"] = rows
expected["continuation_values"] = values
with open(os.path.join(out_dir, "attribution_expected.json"), "w") as fh:
    json.dump(expected, fh)
print(out_dir, "F =", float(f), "IG delta", expected["ig32_delta"])
