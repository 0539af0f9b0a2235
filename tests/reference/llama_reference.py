#!/usr/bin/python3
"""Independent reference for the Llama family (llama, qwen2, mistral), written from Hugging Face
modeling_llama.py / modeling_qwen2.py's math (RMSNorm, RoPE in the rotate_half layout with default,
linear and llama3 frequency scaling, grouped-query attention, SwiGLU MLP), and the random checkpoints
it is checked on: GQA with 2 key/value heads for 6 query heads, head_dim != hidden/heads, Qwen2's
q/k/v biases, tied and separate heads, F32/F16/BF16, one file or sharded.

Writes <out>/<case>/ (config.json, safetensors with the "model." names) and reference.safetensors
with input_ids, attention.<l>, query/key/value.<l> (after RoPE; key/value expanded to one per query
head), hidden.<n> and logits, computed in float64 from the stored weights and saved as float32.

Run with Debian's interpreter: /usr/bin/python3 tests/reference/llama_reference.py OUT_DIR
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402
from ref_math import greedy  # noqa: E402

CASES = [
    dict(name="llama_gqa_headdim", model_type="llama", D=48, H=6, KV=2, hd=12, L=2, I=64, V=100, P=64,
         tied=False, dtype=torch.float32, seq=19, theta=10000.0, scaling=None, bias=False, shards=1),
    dict(name="qwen2_bias_tied_bf16", model_type="qwen2", D=32, H=4, KV=2, hd=None, L=3, I=56, V=90, P=64,
         tied=True, dtype=torch.bfloat16, seq=23, theta=1000000.0, scaling=None, bias=True, shards=1),
    dict(name="llama3_rope_scaling_f16", model_type="llama", D=64, H=4, KV=4, hd=None, L=2, I=96, V=80, P=128,
         tied=True, dtype=torch.float16, seq=40, theta=500000.0, shards=2, bias=False,
         scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                  "original_max_position_embeddings": 16}),
    dict(name="mistral_linear_scaling", model_type="mistral", D=40, H=5, KV=1, hd=None, L=2, I=64, V=70, P=64,
         tied=False, dtype=torch.float32, seq=30, theta=10000.0, bias=False, shards=1,
         scaling={"type": "linear", "factor": 2.0}),
]


def head_dim(c):
    return c["hd"] or c["D"] // c["H"]


def make_weights(c, g):
    D, H, KV, hd, I, V = c["D"], c["H"], c["KV"], head_dim(c), c["I"], c["V"]
    r = lambda *s, std: torch.randn(*s, generator=g) * std  # noqa: E731
    w = {"model.embed_tokens.weight": r(V, D, std=0.5), "model.norm.weight": 1 + r(D, std=0.1)}
    for i in range(c["L"]):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = 1 + r(D, std=0.1)
        w[p + "post_attention_layernorm.weight"] = 1 + r(D, std=0.1)
        w[p + "self_attn.q_proj.weight"] = r(H * hd, D, std=0.6 / math.sqrt(D))
        w[p + "self_attn.k_proj.weight"] = r(KV * hd, D, std=0.6 / math.sqrt(D))
        w[p + "self_attn.v_proj.weight"] = r(KV * hd, D, std=0.6 / math.sqrt(D))
        w[p + "self_attn.o_proj.weight"] = r(D, H * hd, std=0.6 / math.sqrt(H * hd))
        if c["bias"]:
            for n, o in (("q_proj", H * hd), ("k_proj", KV * hd), ("v_proj", KV * hd)):
                w[p + f"self_attn.{n}.bias"] = r(o, std=0.2)
        w[p + "mlp.gate_proj.weight"] = r(I, D, std=0.6 / math.sqrt(D))
        w[p + "mlp.up_proj.weight"] = r(I, D, std=0.6 / math.sqrt(D))
        w[p + "mlp.down_proj.weight"] = r(D, I, std=0.6 / math.sqrt(I))
    if not c["tied"]:
        w["lm_head.weight"] = r(V, D, std=0.5)
    return w


def inv_freq(c):
    hd = head_dim(c)
    f = 1.0 / (c["theta"] ** (torch.arange(0, hd, 2, dtype=torch.float64) / hd))
    s = c["scaling"]
    if s is None:
        return f
    kind = s.get("rope_type", s.get("type"))
    if kind == "linear":
        return f / s["factor"]
    if kind == "llama3":  # _compute_llama3_parameters
        factor, lo, hi, old = s["factor"], s["low_freq_factor"], s["high_freq_factor"], s["original_max_position_embeddings"]
        lo_wl, hi_wl = old / lo, old / hi
        wl = 2 * math.pi / f
        f_l = torch.where(wl > lo_wl, f / factor, f)
        smooth = (old / wl - lo) / (hi - lo)
        smoothed = (1 - smooth) * f_l / factor + smooth * f_l
        medium = ~(wl < hi_wl) & ~(wl > lo_wl)
        return torch.where(medium, smoothed, f_l)
    raise ValueError(kind)


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), dim=-1)


def rms_norm(x, w, eps):
    return w * (x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps))


def reference(c, w, ids):
    H, KV, hd, L = c["H"], c["KV"], head_dim(c), c["L"]
    eps = 1e-6
    T = ids.shape[0]
    x = w["model.embed_tokens.weight"][ids]
    out = {"hidden.0": x.clone()}
    freqs = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq(c))
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos(), emb.sin()
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(L):
        p = f"model.layers.{i}."
        a = rms_norm(x, w[p + "input_layernorm.weight"], eps)
        proj = lambda n, heads: (a @ w[p + f"self_attn.{n}.weight"].t() + w.get(p + f"self_attn.{n}.bias", 0.0)  # noqa
                                 ).view(T, heads, hd).permute(1, 0, 2)
        q, k, v = proj("q_proj", H), proj("k_proj", KV), proj("v_proj", KV)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = H // KV  # repeat_kv: key/value head h // rep serves query head h
        k, v = k.repeat_interleave(rep, dim=0), v.repeat_interleave(rep, dim=0)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        s = torch.where(causal, s, torch.tensor(float("-inf"), dtype=s.dtype))
        probs = torch.softmax(s, dim=-1)
        out[f"attention.{i}"] = probs
        out[f"query.{i}"], out[f"key.{i}"], out[f"value.{i}"] = q, k, v
        o = (probs @ v).permute(1, 0, 2).reshape(T, H * hd)
        x = x + o @ w[p + "self_attn.o_proj.weight"].t()
        m = rms_norm(x, w[p + "post_attention_layernorm.weight"], eps)
        f = torch.nn.functional.silu(m @ w[p + "mlp.gate_proj.weight"].t()) * (m @ w[p + "mlp.up_proj.weight"].t())
        x = x + f @ w[p + "mlp.down_proj.weight"].t()
        if i + 1 < L:
            out[f"hidden.{i + 1}"] = x.clone()
    x = rms_norm(x, w["model.norm.weight"], eps)
    out[f"hidden.{L}"] = x
    head = w.get("lm_head.weight", w["model.embed_tokens.weight"])
    out["logits"] = x @ head.t()
    return out


def write_case(root, c, seed):
    g = torch.Generator().manual_seed(seed)
    d = os.path.join(root, c["name"])
    os.makedirs(d, exist_ok=True)
    arch = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "mistral": "MistralForCausalLM"}[c["model_type"]]
    cfg = {"model_type": c["model_type"], "architectures": [arch], "hidden_size": c["D"],
           "intermediate_size": c["I"], "num_hidden_layers": c["L"], "num_attention_heads": c["H"],
           "num_key_value_heads": c["KV"], "rms_norm_eps": 1e-6, "rope_theta": c["theta"],
           "rope_scaling": c["scaling"], "max_position_embeddings": c["P"], "vocab_size": c["V"],
           "tie_word_embeddings": c["tied"], "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2}
    if c["hd"]:
        cfg["head_dim"] = c["hd"]
    if c["model_type"] == "mistral":
        cfg["sliding_window"] = None
    if c["model_type"] == "llama":
        cfg["attention_bias"] = False
        cfg["mlp_bias"] = False
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    w = make_weights(c, g)
    stored = {k: v.to(c["dtype"]) for k, v in w.items()}
    safetensors_io.save_model(d, stored, c["shards"])
    ids = torch.randint(0, c["V"], (c["seq"],), generator=g)
    ref = reference(c, {k: v.to(torch.float64) for k, v in stored.items()}, ids)
    ref = {k: v.float().contiguous() for k, v in ref.items()}
    ref["input_ids"] = ids
    w64 = {k: v.to(torch.float64) for k, v in stored.items()}
    ref["greedy_ids"] = greedy(lambda t: reference(c, w64, t)["logits"], ids[:5], 8, eos=2)
    safetensors_io.save(os.path.join(d, "reference.safetensors"), ref)
    return d


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "llama_reference_out"
    os.makedirs(root, exist_ok=True)
    for n, c in enumerate(CASES):
        print("wrote", write_case(root, c, 3000 + n))


if __name__ == "__main__":
    main()
