#!/usr/bin/python3
"""Independent ViT reference: the image pipeline of Hugging Face's ViTImageProcessor (PIL decode,
PIL resize with the configured filter, rescale in float64 -> float32, normalize in float32) and the
model math of modeling_vit.py, on random checkpoints with Hugging Face names ("vit." prefix or none,
classifier with id2label, qkv_bias false, 1 or 3 channels, F32/F16/BF16) and images of odd sizes
(JPEG, grey PNG, RGBA PNG).

Writes <out>/<case>/ (config.json, preprocessor_config.json, model.safetensors, the input image)
and reference.safetensors with pixel_values, attention.<l>, query/key/value.<l>, hidden.<n>, logits.

Run with Debian's interpreter: /usr/bin/python3 tests/reference/vit_reference.py OUT_DIR
"""
import json
import math
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
import safetensors_io  # noqa: E402
from ref_math import layer_norm  # noqa: E402

CASES = [
    dict(name="vit_cls_bilinear_jpeg", prefix="vit.", D=48, H=3, L=2, I=64, image=32, patch=8, C=3, classes=5,
         dtype=torch.float32, resample=2, qkv_bias=True, file="input.jpg", src=(45, 37, "RGB"),
         mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]),
    dict(name="vit_gray_bicubic_f16", prefix="", D=32, H=4, L=3, I=48, image=28, patch=7, C=1, classes=0,
         dtype=torch.float16, resample=3, qkv_bias=True, file="input.png", src=(50, 20, "RGB"), mean=[0.5], std=[0.5]),
    dict(name="vit_nearest_rgba_bf16", prefix="vit.", D=40, H=5, L=2, I=56, image=24, patch=6, C=3, classes=3,
         dtype=torch.bfloat16, resample=0, qkv_bias=False, file="input.png", src=(16, 16, "RGBA"),
         mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5]),
    dict(name="vit_lanczos_gray_png", prefix="vit.", D=32, H=2, L=1, I=40, image=16, patch=4, C=3, classes=2,
         dtype=torch.float32, resample=1, qkv_bias=True, file="input.png", src=(61, 23, "L"),
         mean=[0.5, 0.5, 0.5], std=[0.25, 0.25, 0.25]),
]


def make_image(c, g, path):
    w, h, mode = c["src"]
    yy, xx = np.mgrid[0:h, 0:w]
    noise = torch.rand(h, w, 4, generator=g).numpy()
    chans = [(128 + 100 * np.sin(xx / 3.0 + k) * np.cos(yy / 4.0 - k) + 27 * noise[..., k]) for k in range(4)]
    arr = np.clip(np.stack(chans, -1), 0, 255).astype(np.uint8)
    if mode == "L":
        im = Image.fromarray(arr[..., 0], "L")
    elif mode == "RGB":
        im = Image.fromarray(arr[..., :3], "RGB")
    else:
        im = Image.fromarray(arr, "RGBA")
    if path.endswith(".jpg"):
        im.save(path, quality=90)
    else:
        im.save(path)


def pixel_values(c, path):
    im = Image.open(path)
    im = im.convert("L" if c["C"] == 1 else "RGB")
    im = im.resize((c["image"], c["image"]), resample=c["resample"])
    a = np.array(im)
    if a.ndim == 2:
        a = a[..., None]
    a = (a.astype(np.float64) * (1 / 255)).astype(np.float32)
    a = (a - np.array(c["mean"], dtype=np.float32)) / np.array(c["std"], dtype=np.float32)
    return torch.from_numpy(a.transpose(2, 0, 1).copy())


def names(c):
    D, I, C, P = c["D"], c["I"], c["C"], c["patch"]
    T = (c["image"] // P) ** 2 + 1
    out = {"embeddings.cls_token": (1, 1, D), "embeddings.position_embeddings": (1, T, D),
           "embeddings.patch_embeddings.projection.weight": (D, C, P, P),
           "embeddings.patch_embeddings.projection.bias": (D,), "layernorm.weight": (D,), "layernorm.bias": (D,)}
    for i in range(c["L"]):
        p = f"encoder.layer.{i}."
        out.update({p + "layernorm_before.weight": (D,), p + "layernorm_before.bias": (D,),
                    p + "layernorm_after.weight": (D,), p + "layernorm_after.bias": (D,),
                    p + "attention.output.dense.weight": (D, D), p + "attention.output.dense.bias": (D,),
                    p + "intermediate.dense.weight": (I, D), p + "intermediate.dense.bias": (I,),
                    p + "output.dense.weight": (D, I), p + "output.dense.bias": (D,)})
        for m in ("query", "key", "value"):
            out[p + f"attention.attention.{m}.weight"] = (D, D)
            if c["qkv_bias"]:
                out[p + f"attention.attention.{m}.bias"] = (D,)
    return out




def gelu(x):
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def reference(c, w, px):
    D, H, P = c["D"], c["H"], c["patch"]
    hd = D // H
    lin = lambda x, n: x @ w[n + ".weight"].t() + w.get(n + ".bias", 0.0)  # noqa: E731
    pw = w["embeddings.patch_embeddings.projection.weight"]
    patches = torch.nn.functional.conv2d(px[None], pw, w["embeddings.patch_embeddings.projection.bias"], stride=P)
    x = torch.cat([w["embeddings.cls_token"], patches.flatten(2).transpose(1, 2)], 1)[0] + w["embeddings.position_embeddings"][0]
    T = x.shape[0]
    out = {"hidden.0": x.clone()}
    heads = lambda t: t.view(T, H, hd).permute(1, 0, 2)  # noqa: E731
    for i in range(c["L"]):
        p = f"encoder.layer.{i}."
        a = layer_norm(x, w[p + "layernorm_before.weight"], w[p + "layernorm_before.bias"], 1e-12)
        q, k, v = (heads(lin(a, p + f"attention.attention.{m}")) for m in ("query", "key", "value"))
        probs = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(hd), -1)
        out[f"attention.{i}"] = probs
        out[f"query.{i}"], out[f"key.{i}"], out[f"value.{i}"] = q, k, v
        x = x + lin((probs @ v).permute(1, 0, 2).reshape(T, D), p + "attention.output.dense")
        m = layer_norm(x, w[p + "layernorm_after.weight"], w[p + "layernorm_after.bias"], 1e-12)
        x = x + lin(gelu(lin(m, p + "intermediate.dense")), p + "output.dense")
        out[f"hidden.{i + 1}"] = x.clone()
    if c["classes"]:
        y = layer_norm(x, w["layernorm.weight"], w["layernorm.bias"], 1e-12)
        out["logits"] = lin(y[0], "classifier")
    return out


def write_case(root, c, seed):
    g = torch.Generator().manual_seed(seed)
    d = os.path.join(root, c["name"])
    os.makedirs(d, exist_ok=True)
    cfg = {"model_type": "vit", "hidden_size": c["D"], "num_attention_heads": c["H"], "num_hidden_layers": c["L"],
           "intermediate_size": c["I"], "image_size": c["image"], "patch_size": c["patch"], "num_channels": c["C"],
           "hidden_act": "gelu", "layer_norm_eps": 1e-12, "qkv_bias": c["qkv_bias"]}
    if c["classes"]:
        cfg["architectures"] = ["ViTForImageClassification"]
        cfg["id2label"] = {str(i): f"class {i} ✓" for i in range(c["classes"])}
        cfg["label2id"] = {f"class {i} ✓": i for i in range(c["classes"])}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
    with open(os.path.join(d, "preprocessor_config.json"), "w") as f:
        json.dump({"do_resize": True, "size": {"height": c["image"], "width": c["image"]}, "resample": c["resample"],
                   "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": c["mean"],
                   "image_std": c["std"], "image_processor_type": "ViTImageProcessor"}, f, indent=2)
    w = {}
    for n, shape in names(c).items():
        if n.endswith("weight") and "layernorm" in n:
            w[n] = 1 + torch.randn(*shape, generator=g) * 0.1
        elif n.endswith("bias"):
            w[n] = torch.randn(*shape, generator=g) * 0.1
        elif "embeddings" in n and "projection" not in n:
            w[n] = torch.randn(*shape, generator=g) * 0.5
        else:
            fan_in = int(np.prod(shape[1:]))
            w[n] = torch.randn(*shape, generator=g) * (0.8 / math.sqrt(fan_in))
    if c["classes"]:
        w["classifier.weight"] = torch.randn(c["classes"], c["D"], generator=g) * 0.3
        w["classifier.bias"] = torch.randn(c["classes"], generator=g) * 0.1
    stored = {k: v.to(c["dtype"]) for k, v in w.items()}
    named = {(k if k.startswith("classifier") else c["prefix"] + k): v for k, v in stored.items()}
    safetensors_io.save(os.path.join(d, "model.safetensors"), named, {"format": "pt"})
    path = os.path.join(d, c["file"])
    make_image(c, g, path)
    px = pixel_values(c, path)
    ref = reference(c, {k: v.to(torch.float64) for k, v in stored.items()}, px.to(torch.float64))
    ref = {k: v.float().contiguous() for k, v in ref.items()}
    ref["pixel_values"] = px
    safetensors_io.save(os.path.join(d, "reference.safetensors"), ref)
    return d


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "vit_reference_out"
    os.makedirs(root, exist_ok=True)
    for n, c in enumerate(CASES):
        print("wrote", write_case(root, c, 4000 + n))


if __name__ == "__main__":
    main()
