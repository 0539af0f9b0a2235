#!/usr/bin/python3
"""The seed program of the GPT-2 attention tutorials, done the same way a user does it:
PyTorch (Debian python3-torch) + matplotlib + seaborn, a GPT-2 written per Hugging Face's
modeling_gpt2.py math (Hugging Face transformers is not packaged in Debian), weights loaded
from the same safetensors checkpoint, GPT-2's byte-level BPE as in OpenAI's encoder.py.

Usage: /usr/bin/python3 bench/seed_heatmap.py MODEL_DIR "TEXT" OUT.png [SAVE.npy]
(SAVE.npy: also save the plotted matrix, for the cross-check with attnscope's dump.)
"""
import json
import math
import os
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import regex as re  # noqa: E402
import seaborn as sns  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "reference"))
import safetensors_io  # noqa: E402


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


class Encoder:
    def __init__(self, d):
        self.encoder = json.load(open(os.path.join(d, "vocab.json")))
        merges = open(os.path.join(d, "merges.txt"), encoding="utf-8").read().split("\n")[1:-1]
        self.ranks = {tuple(m.split()): i for i, m in enumerate(merges)}
        self.b2u = bytes_to_unicode()
        self.pat = re.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

    def bpe(self, token):
        word = tuple(token)
        while len(word) > 1:
            pairs = set(zip(word, word[1:]))
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            a, b = best
            new, i = [], 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == a and word[i + 1] == b:
                    new.append(a + b)
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = tuple(new)
        return word

    def encode(self, text):
        toks = []
        for piece in re.findall(self.pat, text):
            toks.extend(self.bpe("".join(self.b2u[b] for b in piece.encode("utf-8"))))
        return [self.encoder[t] for t in toks], toks


def gpt2_attentions(cfg, w, ids):
    D, H = cfg["n_embd"], cfg["n_head"]
    hd, eps = D // H, cfg.get("layer_norm_epsilon", 1e-5)
    pre = "transformer." if "transformer.wte.weight" in w else ""
    T = len(ids)
    x = w[pre + "wte.weight"][ids] + w[pre + "wpe.weight"][:T]
    mask = torch.tril(torch.ones(T, T, dtype=torch.bool))
    atts = []
    for i in range(cfg["n_layer"]):
        p = f"{pre}h.{i}."
        a = F.layer_norm(x, (D,), w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        q, k, v = (a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]).split(D, -1)
        q, k, v = (t.view(T, H, hd).transpose(0, 1) for t in (q, k, v))
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        s = torch.where(mask, s, torch.tensor(torch.finfo(s.dtype).min))
        pr = s.softmax(-1)
        atts.append(pr)
        o = (pr @ v).transpose(0, 1).reshape(T, D)
        x = x + o @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        m = F.layer_norm(x, (D,), w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        x = x + F.gelu(m @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"], approximate="tanh") @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
    return atts


def main():
    model_dir, text, out = sys.argv[1], sys.argv[2], sys.argv[3]
    torch.set_num_threads(os.cpu_count())
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    w, _ = safetensors_io.load(os.path.join(model_dir, "model.safetensors"))
    w = {k: v.float() for k, v in w.items()}
    enc = Encoder(model_dir)
    ids, toks = enc.encode(text)
    with torch.no_grad():
        attention = gpt2_attentions(cfg, w, torch.tensor(ids))[-1].mean(dim=0).numpy()
    labels = [t.replace("Ġ", " ") for t in toks]
    plt.figure(figsize=(10, 8))
    sns.heatmap(attention, xticklabels=labels, yticklabels=labels, cmap="viridis")
    plt.title("Attention Heatmap")
    plt.xlabel("Input Tokens")
    plt.ylabel("Output Tokens")
    plt.savefig(out)
    if len(sys.argv) > 4:
        np.save(sys.argv[4], attention)
    print(out, np.asarray(attention).shape)


if __name__ == "__main__":
    main()
