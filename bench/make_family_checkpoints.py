#!/usr/bin/python3
"""Random base-sized checkpoints of the other families for bench/run.sh (Hugging Face names, F16
to halve the disk; the engine computes in F32). Not committed.

  bert-base-random   BERT base: 12 layers, 12 heads, 768 wide, MLP 3,072, 30,522 tokens (masked-LM head)
  llama-random       Llama-style: 12 layers, 12 query / 4 key-value heads, 768 wide, SwiGLU 2,048, 32,000 tokens
  vit-base-random    ViT-B/16: 224 px, 16 px patches (197 tokens), 12 layers, 12 heads, 768 wide, 1,000 classes

Usage: /usr/bin/python3 bench/make_family_checkpoints.py OUT_DIR
"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "reference"))
import safetensors_io  # noqa: E402

out = sys.argv[1]
g = torch.Generator().manual_seed(0)


def r(*s, std=0.02):
    return (torch.randn(*s, generator=g) * std).to(torch.float16)


def save(name, cfg, w):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    safetensors_io.save(os.path.join(d, "model.safetensors"), w, {"format": "pt"})
    print("wrote", d)


D, H, L, I = 768, 12, 12, 3072
ones, zeros = (lambda n: torch.ones(n, dtype=torch.float16)), (lambda n: torch.zeros(n, dtype=torch.float16))

if not os.path.exists(os.path.join(out, "bert-base-random", "model.safetensors")):
    V, P = 30522, 512
    w = {"bert.embeddings.word_embeddings.weight": r(V, D), "bert.embeddings.position_embeddings.weight": r(P, D),
         "bert.embeddings.token_type_embeddings.weight": r(2, D), "bert.embeddings.LayerNorm.weight": ones(D),
         "bert.embeddings.LayerNorm.bias": zeros(D)}
    for i in range(L):
        p = f"bert.encoder.layer.{i}."
        for m in ("query", "key", "value"):
            w[p + f"attention.self.{m}.weight"], w[p + f"attention.self.{m}.bias"] = r(D, D), zeros(D)
        w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"] = r(D, D), zeros(D)
        w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"] = ones(D), zeros(D)
        w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"] = r(I, D), zeros(I)
        w[p + "output.dense.weight"], w[p + "output.dense.bias"] = r(D, I), zeros(D)
        w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"] = ones(D), zeros(D)
    w.update({"cls.predictions.transform.dense.weight": r(D, D), "cls.predictions.transform.dense.bias": zeros(D),
              "cls.predictions.transform.LayerNorm.weight": ones(D), "cls.predictions.transform.LayerNorm.bias": zeros(D),
              "cls.predictions.bias": zeros(V)})
    save("bert-base-random", {"model_type": "bert", "hidden_size": D, "num_attention_heads": H, "num_hidden_layers": L,
                              "intermediate_size": I, "vocab_size": V, "max_position_embeddings": P,
                              "type_vocab_size": 2, "hidden_act": "gelu", "layer_norm_eps": 1e-12}, w)

if not os.path.exists(os.path.join(out, "llama-random", "model.safetensors")):
    V, KV, hd, IL, P = 32000, 4, 64, 2048, 2048
    w = {"model.embed_tokens.weight": r(V, D), "model.norm.weight": ones(D), "lm_head.weight": r(V, D)}
    for i in range(L):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"], w[p + "post_attention_layernorm.weight"] = ones(D), ones(D)
        w[p + "self_attn.q_proj.weight"], w[p + "self_attn.o_proj.weight"] = r(H * hd, D), r(D, H * hd)
        w[p + "self_attn.k_proj.weight"], w[p + "self_attn.v_proj.weight"] = r(KV * hd, D), r(KV * hd, D)
        w[p + "mlp.gate_proj.weight"], w[p + "mlp.up_proj.weight"] = r(IL, D), r(IL, D)
        w[p + "mlp.down_proj.weight"] = r(D, IL)
    save("llama-random", {"model_type": "llama", "hidden_size": D, "num_attention_heads": H, "num_key_value_heads": KV,
                          "num_hidden_layers": L, "intermediate_size": IL, "vocab_size": V,
                          "max_position_embeddings": P, "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
                          "tie_word_embeddings": False, "hidden_act": "silu"}, w)

if not os.path.exists(os.path.join(out, "vit-base-random", "model.safetensors")):
    S, PS, C, N = 224, 16, 3, 1000
    T = (S // PS) ** 2 + 1
    w = {"vit.embeddings.cls_token": r(1, 1, D), "vit.embeddings.position_embeddings": r(1, T, D),
         "vit.embeddings.patch_embeddings.projection.weight": r(D, C, PS, PS),
         "vit.embeddings.patch_embeddings.projection.bias": zeros(D), "vit.layernorm.weight": ones(D),
         "vit.layernorm.bias": zeros(D), "classifier.weight": r(N, D), "classifier.bias": zeros(N)}
    for i in range(L):
        p = f"vit.encoder.layer.{i}."
        for m in ("query", "key", "value"):
            w[p + f"attention.attention.{m}.weight"], w[p + f"attention.attention.{m}.bias"] = r(D, D), zeros(D)
        w[p + "attention.output.dense.weight"], w[p + "attention.output.dense.bias"] = r(D, D), zeros(D)
        w[p + "layernorm_before.weight"], w[p + "layernorm_before.bias"] = ones(D), zeros(D)
        w[p + "layernorm_after.weight"], w[p + "layernorm_after.bias"] = ones(D), zeros(D)
        w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"] = r(I, D), zeros(I)
        w[p + "output.dense.weight"], w[p + "output.dense.bias"] = r(D, I), zeros(D)
    save("vit-base-random", {"model_type": "vit", "hidden_size": D, "num_attention_heads": H, "num_hidden_layers": L,
                             "intermediate_size": I, "image_size": S, "patch_size": PS, "num_channels": C,
                             "hidden_act": "gelu", "layer_norm_eps": 1e-12,
                             "id2label": {str(k): f"class {k}" for k in range(N)}}, w)
