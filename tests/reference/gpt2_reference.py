#!/usr/bin/python3
"""Independent GPT-2 reference (written from Hugging Face modeling_gpt2.py's math) and the
random checkpoints it is checked on.

For every case it writes <out>/<case>/ with config.json and safetensors weights named exactly
as Hugging Face saves them (Conv1D [in, out] layout, attn.bias / attn.masked_bias buffers,
optional "transformer." prefix, tied or separate lm_head, F32/F16/BF16, single or sharded),
and <out>/<case>/reference.safetensors with input_ids, attention.<l>, query/key/value.<l>,
hidden.<n> and logits computed in float32 from the stored weights (upcast from F16/BF16 as the engine does).

Run with Debian's interpreter: /usr/bin/python3 tests/reference/gpt2_reference.py OUT_DIR
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402
from ref_math import act, greedy, layer_norm  # noqa: E402

CASES = [
    # name, config overrides, dtype, prefix, tied, shards, sequence length
    dict(name="tiny_48x3x1", n_embd=48, n_head=3, n_layer=1, n_positions=32, vocab_size=97, dtype=torch.float32,
         prefix="transformer.", tied=True, shards=1, seq=13),
    dict(name="five_layers_untied", n_embd=64, n_head=4, n_layer=5, n_positions=40, vocab_size=211, n_inner=100,
         dtype=torch.float32, prefix="", tied=False, shards=1, seq=40),
    dict(name="f16_inverse_layer_idx", n_embd=32, n_head=2, n_layer=2, n_positions=24, vocab_size=64,
         dtype=torch.float16, prefix="transformer.", tied=True, shards=1, seq=17, activation_function="gelu",
         scale_attn_by_inverse_layer_idx=True),
    dict(name="bf16_sharded", n_embd=40, n_head=5, n_layer=3, n_positions=16, vocab_size=50, dtype=torch.bfloat16,
         prefix="transformer.", tied=False, shards=2, seq=16, activation_function="relu"),
]


def make_weights(c, g):
    D, L, V, P = c["n_embd"], c["n_layer"], c["vocab_size"], c["n_positions"]
    inner = c.get("n_inner") or 4 * D
    r = lambda *s, std=0.3: torch.randn(*s, generator=g) * std  # noqa: E731
    w = {"wte.weight": r(V, D), "wpe.weight": r(P, D), "ln_f.weight": 1 + r(D, std=0.1), "ln_f.bias": r(D, std=0.1)}
    for i in range(L):
        p = f"h.{i}."
        w[p + "ln_1.weight"] = 1 + r(D, std=0.1)
        w[p + "ln_1.bias"] = r(D, std=0.1)
        w[p + "attn.c_attn.weight"] = r(D, 3 * D, std=0.15)
        w[p + "attn.c_attn.bias"] = r(3 * D, std=0.1)
        w[p + "attn.c_proj.weight"] = r(D, D, std=0.1)
        w[p + "attn.c_proj.bias"] = r(D, std=0.1)
        w[p + "ln_2.weight"] = 1 + r(D, std=0.1)
        w[p + "ln_2.bias"] = r(D, std=0.1)
        w[p + "mlp.c_fc.weight"] = r(D, inner, std=0.2)
        w[p + "mlp.c_fc.bias"] = r(inner, std=0.1)
        w[p + "mlp.c_proj.weight"] = r(inner, D, std=0.1)
        w[p + "mlp.c_proj.bias"] = r(D, std=0.1)
    if not c["tied"]:
        w["lm_head.weight"] = r(V, D)
    return w






def reference(c, w, ids, dtype=torch.float32):
    """GPT-2 forward following modeling_gpt2.py (GPT2Attention._attn, GPT2MLP, GPT2Block), in F32 like
    Hugging Face runs an F32 model (dtype=torch.float64 gives the exact value, for diagnosis)."""
    D, H, L = c["n_embd"], c["n_head"], c["n_layer"]
    hd = D // H
    eps = c.get("layer_norm_epsilon", 1e-5)
    a_fn = c.get("activation_function", "gelu_new")
    w = {k: v.to(dtype) for k, v in w.items()}
    T = ids.shape[0]
    x = w["wte.weight"][ids] + w["wpe.weight"][torch.arange(T)]
    out = {"hidden.0": x.clone()}
    causal = torch.tril(torch.ones(T, T, dtype=torch.bool))
    for i in range(L):
        p = f"h.{i}."
        a = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
        qkv = a @ w[p + "attn.c_attn.weight"] + w[p + "attn.c_attn.bias"]  # Conv1D: x W + b
        q, k, v = qkv.split(D, dim=-1)
        heads = lambda t: t.view(T, H, hd).permute(1, 0, 2)  # noqa: E731  (H, T, hd)
        q, k, v = heads(q), heads(k), heads(v)
        s = q @ k.transpose(-1, -2)
        if c.get("scale_attn_weights", True):
            s = s / (hd ** 0.5)
        if c.get("scale_attn_by_inverse_layer_idx", False):
            s = s / float(i + 1)
        s = torch.where(causal, s, torch.tensor(torch.finfo(s.dtype).min, dtype=s.dtype))
        probs = torch.softmax(s, dim=-1)
        out[f"attention.{i}"] = probs
        out[f"query.{i}"], out[f"key.{i}"], out[f"value.{i}"] = q, k, v
        o = (probs @ v).permute(1, 0, 2).reshape(T, D)
        x = x + o @ w[p + "attn.c_proj.weight"] + w[p + "attn.c_proj.bias"]
        m = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        f = act(a_fn, m @ w[p + "mlp.c_fc.weight"] + w[p + "mlp.c_fc.bias"])
        x = x + f @ w[p + "mlp.c_proj.weight"] + w[p + "mlp.c_proj.bias"]
        if i + 1 < L:
            out[f"hidden.{i + 1}"] = x.clone()
    x = layer_norm(x, w["ln_f.weight"], w["ln_f.bias"], eps)
    out[f"hidden.{L}"] = x
    head = w.get("lm_head.weight", w["wte.weight"])
    out["logits"] = x @ head.t()
    return out


def write_case(root, c, seed):
    g = torch.Generator().manual_seed(seed)
    d = os.path.join(root, c["name"])
    os.makedirs(d, exist_ok=True)
    cfg = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": c["n_embd"], "n_head": c["n_head"],
           "n_layer": c["n_layer"], "n_positions": c["n_positions"], "n_ctx": c["n_positions"],
           "vocab_size": c["vocab_size"], "layer_norm_epsilon": 1e-5,
           "activation_function": c.get("activation_function", "gelu_new"), "n_inner": c.get("n_inner"),
           "scale_attn_weights": True,
           "scale_attn_by_inverse_layer_idx": c.get("scale_attn_by_inverse_layer_idx", False)}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    w = make_weights(c, g)
    stored = {k: v.to(c["dtype"]) for k, v in w.items()}
    # What the file holds: prefixed names (lm_head never is), plus the legacy buffers.
    named = {}
    for k, v in stored.items():
        named[k if k == "lm_head.weight" else c["prefix"] + k] = v
    P = c["n_positions"]
    for i in range(c["n_layer"]):
        named[f"{c['prefix']}h.{i}.attn.bias"] = torch.tril(torch.ones(P, P, dtype=torch.uint8)).view(1, 1, P, P)
        named[f"{c['prefix']}h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    safetensors_io.save_model(d, named, c["shards"])
    ids = torch.randint(0, c["vocab_size"], (c["seq"],), generator=g)
    ref = reference(c, {k: v.to(torch.float64) for k, v in stored.items()}, ids)
    ref = {k: v.float().contiguous() for k, v in ref.items()}
    ref["input_ids"] = ids
    w64 = {k: v.to(torch.float64) for k, v in stored.items()}
    ref["greedy_ids"] = greedy(lambda t: reference(c, w64, t)["logits"], ids[:5], 8, eos=None)
    safetensors_io.save(os.path.join(d, "reference.safetensors"), ref)
    return d


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "gpt2_reference_out"
    os.makedirs(root, exist_ok=True)
    for n, c in enumerate(CASES):
        d = write_case(root, c, 1000 + n)
        ref, _ = safetensors_io.load(os.path.join(d, "reference.safetensors"))
        print("wrote", d, "(largest attention weight off the first row: %.3f)" % max(
            float(v[:, 1:, :].max()) for k, v in ref.items() if k.startswith("attention.")))


if __name__ == "__main__":
    main()
