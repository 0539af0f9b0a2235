"""Small pieces of Hugging Face's math that several reference programs use (written from the
modeling code: activations.py's GELU variants, nn.LayerNorm) and the reference greedy loop."""
import math

import torch


def act(name, x):
    if name in ("gelu_new", "gelu_fast", "gelu_pytorch_tanh"):
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    if name == "gelu":
        return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))
    if name == "relu":
        return torch.clamp(x, min=0)
    raise ValueError(name)


def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdim=True)
    var = ((x - mu) ** 2).mean(-1, keepdim=True)
    return (x - mu) / torch.sqrt(var + eps) * w + b


def greedy(logits_of, prompt, steps, eos=None):
    """A full forward per step (logits_of(ids) -> [T, V]), argmax of the last position, stop at EOS."""
    cur = prompt.clone()
    for _ in range(steps):
        nxt = int(logits_of(cur)[-1].argmax())
        cur = torch.cat([cur, torch.tensor([nxt])])
        if nxt == eos:
            break
    return cur
