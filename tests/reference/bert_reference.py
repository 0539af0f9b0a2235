#!/usr/bin/python3
"""Independent reference for the BERT family (BERT, RoBERTa, DistilBERT), written from Hugging Face
modeling_bert.py / modeling_roberta.py / modeling_distilbert.py's math, and the random checkpoints
it is checked on.

For every case it writes <out>/<case>/ with config.json and safetensors weights named exactly as
Hugging Face saves them (task prefixes bert./roberta./distilbert., old LayerNorm gamma/beta names,
masked-LM heads, F32/F16/BF16), and reference.safetensors with input_ids, token_type_ids,
attention.<l>, query/key/value.<l>, hidden.<n> and logits (masked-LM), computed in float64 from
the stored weights and saved as float32.

Run with Debian's interpreter: /usr/bin/python3 tests/reference/bert_reference.py OUT_DIR
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402
from ref_math import act, layer_norm  # noqa: E402

CASES = [
    dict(name="bert_mlm_pair", family="bert", prefix="bert.", D=48, H=3, L=2, I=80, V=120, P=40, types=2,
         act="gelu", mlm=True, dtype=torch.float32, seq=17, b_start=9),
    dict(name="bert_gamma_beta_f16", family="bert", prefix="", D=32, H=4, L=3, I=64, V=90, P=24, types=2,
         act="gelu_new", mlm=False, dtype=torch.float16, seq=20, b_start=None, gamma_beta=True),
    dict(name="roberta_mlm_bf16", family="roberta", prefix="roberta.", D=40, H=5, L=2, I=72, V=100, P=34, types=1,
         act="gelu", mlm=True, dtype=torch.bfloat16, seq=30, b_start=None, untied_decoder=True, eps=1e-5),
    dict(name="distilbert_mlm", family="distilbert", prefix="distilbert.", D=64, H=4, L=3, I=100, V=150, P=50,
         types=0, act="gelu", mlm=True, dtype=torch.float32, seq=25, b_start=None),
]


def names(c):
    """HF names (without the task prefix) -> shape, for one case."""
    D, I, V, P = c["D"], c["I"], c["V"], c["P"]
    out = {}
    if c["family"] == "distilbert":
        out.update({"embeddings.word_embeddings.weight": (V, D), "embeddings.position_embeddings.weight": (P, D),
                    "embeddings.LayerNorm.weight": (D,), "embeddings.LayerNorm.bias": (D,)})
        for i in range(c["L"]):
            p = f"transformer.layer.{i}."
            for lin in ("q_lin", "k_lin", "v_lin", "out_lin"):
                out[p + f"attention.{lin}.weight"] = (D, D)
                out[p + f"attention.{lin}.bias"] = (D,)
            out.update({p + "sa_layer_norm.weight": (D,), p + "sa_layer_norm.bias": (D,),
                        p + "ffn.lin1.weight": (I, D), p + "ffn.lin1.bias": (I,),
                        p + "ffn.lin2.weight": (D, I), p + "ffn.lin2.bias": (D,),
                        p + "output_layer_norm.weight": (D,), p + "output_layer_norm.bias": (D,)})
        return out
    out.update({"embeddings.word_embeddings.weight": (V, D), "embeddings.position_embeddings.weight": (P, D),
                "embeddings.token_type_embeddings.weight": (c["types"], D),
                "embeddings.LayerNorm.weight": (D,), "embeddings.LayerNorm.bias": (D,)})
    for i in range(c["L"]):
        p = f"encoder.layer.{i}."
        for m in ("query", "key", "value"):
            out[p + f"attention.self.{m}.weight"] = (D, D)
            out[p + f"attention.self.{m}.bias"] = (D,)
        out.update({p + "attention.output.dense.weight": (D, D), p + "attention.output.dense.bias": (D,),
                    p + "attention.output.LayerNorm.weight": (D,), p + "attention.output.LayerNorm.bias": (D,),
                    p + "intermediate.dense.weight": (I, D), p + "intermediate.dense.bias": (I,),
                    p + "output.dense.weight": (D, I), p + "output.dense.bias": (D,),
                    p + "output.LayerNorm.weight": (D,), p + "output.LayerNorm.bias": (D,)})
    out.update({"pooler.dense.weight": (D, D), "pooler.dense.bias": (D,)})
    return out


def head_names(c):
    D, V = c["D"], c["V"]
    if not c["mlm"]:
        return {}
    if c["family"] == "bert":
        return {"cls.predictions.transform.dense.weight": (D, D), "cls.predictions.transform.dense.bias": (D,),
                "cls.predictions.transform.LayerNorm.weight": (D,), "cls.predictions.transform.LayerNorm.bias": (D,),
                "cls.predictions.bias": (V,)}
    if c["family"] == "roberta":
        h = {"lm_head.dense.weight": (D, D), "lm_head.dense.bias": (D,), "lm_head.layer_norm.weight": (D,),
             "lm_head.layer_norm.bias": (D,), "lm_head.bias": (V,)}
        if c.get("untied_decoder"):
            h["lm_head.decoder.weight"] = (V, D)
        return h
    return {"vocab_transform.weight": (D, D), "vocab_transform.bias": (D,), "vocab_layer_norm.weight": (D,),
            "vocab_layer_norm.bias": (D,), "vocab_projector.bias": (V,)}


def make_weights(c, g):
    w = {}
    for n, shape in list(names(c).items()) + list(head_names(c).items()):
        if "LayerNorm.weight" in n or "layer_norm.weight" in n:
            w[n] = 1 + torch.randn(*shape, generator=g) * 0.1
        elif n.endswith("bias"):
            w[n] = torch.randn(*shape, generator=g) * 0.1
        elif "embeddings" in n:
            w[n] = torch.randn(*shape, generator=g) * 0.5
        else:
            w[n] = torch.randn(*shape, generator=g) * (0.6 / math.sqrt(shape[-1]))
    return w






def linear(x, w, p):
    return x @ w[p + ".weight"].t() + w[p + ".bias"]


def reference(c, w, ids, types):
    D, H, L = c["D"], c["H"], c["L"]
    hd = D // H
    eps = c.get("eps", 1e-12)
    T = ids.shape[0]
    fam = c["family"]
    if fam == "roberta":
        pad = 1
        pos = torch.cumsum((ids != pad).long(), 0) * (ids != pad).long() + pad  # create_position_ids_from_input_ids
    else:
        pos = torch.arange(T)
    x = w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][pos]
    if fam != "distilbert":
        x = x + w["embeddings.token_type_embeddings.weight"][types]
    x = layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], eps)
    out = {"hidden.0": x.clone()}
    heads = lambda t: t.view(T, H, hd).permute(1, 0, 2)  # noqa: E731
    for i in range(L):
        if fam == "distilbert":
            p = f"transformer.layer.{i}."
            q, k, v = (heads(linear(x, w, p + f"attention.{n}")) for n in ("q_lin", "k_lin", "v_lin"))
            # DistilBERT scales q before the product; the same numbers up to rounding.
            s = (q / math.sqrt(hd)) @ k.transpose(-1, -2)
        else:
            p = f"encoder.layer.{i}."
            q, k, v = (heads(linear(x, w, p + f"attention.self.{n}")) for n in ("query", "key", "value"))
            s = (q @ k.transpose(-1, -2)) / math.sqrt(hd)
        probs = torch.softmax(s, dim=-1)
        out[f"attention.{i}"] = probs
        out[f"query.{i}"], out[f"key.{i}"], out[f"value.{i}"] = q, k, v
        ctx = (probs @ v).permute(1, 0, 2).reshape(T, D)
        if fam == "distilbert":
            sa = layer_norm(linear(ctx, w, p + "attention.out_lin") + x, w[p + "sa_layer_norm.weight"],
                            w[p + "sa_layer_norm.bias"], eps)
            f = linear(act(c["act"], linear(sa, w, p + "ffn.lin1")), w, p + "ffn.lin2")
            x = layer_norm(f + sa, w[p + "output_layer_norm.weight"], w[p + "output_layer_norm.bias"], eps)
        else:
            a = layer_norm(linear(ctx, w, p + "attention.output.dense") + x, w[p + "attention.output.LayerNorm.weight"],
                           w[p + "attention.output.LayerNorm.bias"], eps)
            f = linear(act(c["act"], linear(a, w, p + "intermediate.dense")), w, p + "output.dense")
            x = layer_norm(f + a, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"], eps)
        out[f"hidden.{i + 1}"] = x.clone()
    if c["mlm"]:
        emb = w["embeddings.word_embeddings.weight"]
        if fam == "bert":
            h = act(c["act"], linear(x, w, "cls.predictions.transform.dense"))
            h = layer_norm(h, w["cls.predictions.transform.LayerNorm.weight"],
                           w["cls.predictions.transform.LayerNorm.bias"], eps)
            out["logits"] = h @ emb.t() + w["cls.predictions.bias"]
        elif fam == "roberta":
            h = act("gelu", linear(x, w, "lm_head.dense"))  # RobertaLMHead always uses erf gelu
            h = layer_norm(h, w["lm_head.layer_norm.weight"], w["lm_head.layer_norm.bias"], eps)
            dec = w.get("lm_head.decoder.weight", emb)
            out["logits"] = h @ dec.t() + w["lm_head.bias"]
        else:
            h = act(c["act"], linear(x, w, "vocab_transform"))
            h = layer_norm(h, w["vocab_layer_norm.weight"], w["vocab_layer_norm.bias"], 1e-12)
            out["logits"] = h @ emb.t() + w["vocab_projector.bias"]
    return out


def config_of(c):
    fam = c["family"]
    if fam == "distilbert":
        return {"model_type": "distilbert", "architectures": ["DistilBertForMaskedLM"], "dim": c["D"],
                "n_heads": c["H"], "n_layers": c["L"], "hidden_dim": c["I"], "vocab_size": c["V"],
                "max_position_embeddings": c["P"], "activation": c["act"], "pad_token_id": 0,
                "sinusoidal_pos_embds": False}
    cfg = {"model_type": fam, "hidden_size": c["D"], "num_attention_heads": c["H"], "num_hidden_layers": c["L"],
           "intermediate_size": c["I"], "vocab_size": c["V"], "max_position_embeddings": c["P"],
           "type_vocab_size": c["types"], "hidden_act": c["act"],
           "layer_norm_eps": c.get("eps", 1e-12), "pad_token_id": 1 if fam == "roberta" else 0}
    cfg["architectures"] = [("RobertaForMaskedLM" if fam == "roberta" else "BertForMaskedLM") if c["mlm"]
                            else ("RobertaModel" if fam == "roberta" else "BertModel")]
    return cfg


WORDS = ("the whale sea ship call me ishmael white captain ahab and a of to in is was he it that his with as for "
         "on at by from this all but not or be had one so they there were we an its if which when my what you out "
         "up no him into some would more only now than then do old like man time day water boat").split()


def write_vocab(d, V):
    """A small lower-case WordPiece vocabulary (vocab.txt) of exactly V entries, so CLI tests can run on
    the random BERT checkpoint: specials, letters, ##letters, punctuation, then whole words."""
    letters = [chr(ord("a") + i) for i in range(26)]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + letters + ["##" + x for x in letters] + list(".,!?'")
    vocab += [w for w in WORDS if w not in vocab][: V - len(vocab)]
    assert len(vocab) == V, (len(vocab), V)
    with open(os.path.join(d, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": True, "tokenizer_class": "BertTokenizer"}, f)


def write_case(root, c, seed):
    g = torch.Generator().manual_seed(seed)
    d = os.path.join(root, c["name"])
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(config_of(c), f, indent=2)
    w = make_weights(c, g)
    stored = {k: v.to(c["dtype"]) for k, v in w.items()}
    named = {}
    for k, v in stored.items():
        key = k if k in head_names(c) else c["prefix"] + k
        if c.get("gamma_beta"):
            key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        named[key] = v
    if c["family"] != "distilbert":
        named[c["prefix"] + "embeddings.position_ids"] = torch.arange(c["P"]).view(1, -1)  # a buffer old files carry
    safetensors_io.save(os.path.join(d, "model.safetensors"), named, {"format": "pt"})
    if c["family"] == "bert" and c["mlm"]:
        write_vocab(d, c["V"])
    T = c["seq"]
    low = 3 if c["family"] == "roberta" else 0  # keep RoBERTa's padding id out of the input
    ids = torch.randint(low, c["V"], (T,), generator=g)
    types = torch.zeros(T, dtype=torch.long)
    if c["b_start"]:
        types[c["b_start"]:] = 1
    ref = reference(c, {k: v.to(torch.float64) for k, v in stored.items()}, ids, types)
    ref = {k: v.float().contiguous() for k, v in ref.items()}
    ref["input_ids"] = ids
    ref["token_type_ids"] = types
    safetensors_io.save(os.path.join(d, "reference.safetensors"), ref)
    return d


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "bert_reference_out"
    os.makedirs(root, exist_ok=True)
    for n, c in enumerate(CASES):
        d = write_case(root, c, 2000 + n)
        print("wrote", d)


if __name__ == "__main__":
    main()
