#!/usr/bin/python3
"""Writes a random GPT-2-small-sized checkpoint (124M parameters, F32, Hugging Face names and
layout, GPT-2 initialisation std 0.02) for the benchmarks. Not committed: made by bench/run.sh.

Usage: /usr/bin/python3 bench/make_checkpoint.py OUT_DIR TOKENIZER_DIR
"""
import json
import math
import os
import shutil
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "reference"))
import safetensors_io  # noqa: E402

out, tok = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
D, H, L, P, V = 768, 12, 12, 1024, 50257
g = torch.Generator().manual_seed(0)
r = lambda *s, std=0.02: torch.randn(*s, generator=g) * std  # noqa: E731
w = {"transformer.wte.weight": r(V, D), "transformer.wpe.weight": r(P, D, std=0.01),
     "transformer.ln_f.weight": torch.ones(D), "transformer.ln_f.bias": torch.zeros(D)}
for i in range(L):
    p = f"transformer.h.{i}."
    w[p + "ln_1.weight"], w[p + "ln_1.bias"] = torch.ones(D), torch.zeros(D)
    w[p + "attn.c_attn.weight"], w[p + "attn.c_attn.bias"] = r(D, 3 * D), torch.zeros(3 * D)
    w[p + "attn.c_proj.weight"], w[p + "attn.c_proj.bias"] = r(D, D, std=0.02 / math.sqrt(2 * L)), torch.zeros(D)
    w[p + "ln_2.weight"], w[p + "ln_2.bias"] = torch.ones(D), torch.zeros(D)
    w[p + "mlp.c_fc.weight"], w[p + "mlp.c_fc.bias"] = r(D, 4 * D), torch.zeros(4 * D)
    w[p + "mlp.c_proj.weight"], w[p + "mlp.c_proj.bias"] = r(4 * D, D, std=0.02 / math.sqrt(2 * L)), torch.zeros(D)
safetensors_io.save(os.path.join(out, "model.safetensors"), w, {"format": "pt"})
cfg = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": D, "n_head": H, "n_layer": L,
       "n_positions": P, "n_ctx": P, "vocab_size": V, "layer_norm_epsilon": 1e-5, "activation_function": "gelu_new",
       "n_inner": None}
json.dump(cfg, open(os.path.join(out, "config.json"), "w"), indent=2)
for f in ("vocab.json", "merges.txt"):
    shutil.copy(os.path.join(tok, f), os.path.join(out, f))
print("wrote", out, sum(t.numel() for t in w.values()), "parameters")
