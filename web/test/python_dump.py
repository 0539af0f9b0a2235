"""Writes a dump the way the README's Python recipe does for a Hugging Face model: the tuple
output_attentions gives (one [batch=1, heads, tokens, tokens] tensor per layer), saved as
attention.<layer>, with the tokens as JSON metadata. Here the attention is a random softmax and the
tokens are hostile strings, so the viewer's escaping is tested on data it did not produce itself.
Usage: python_dump.py OUT.safetensors"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tests", "reference"))
from safetensors_io import save  # noqa: E402  (the safetensors format, written by the tests' own writer)

tokens = ["[CLS]", "<script>window.__pwned=4</script>", '"><img src=x onerror="window.__pwned=5">', "</script>",
          "\u202eevil", "nul\u0000", "&amp;", "[SEP]"]
torch.manual_seed(0)
attentions = tuple(torch.softmax(torch.randn(1, 3, len(tokens), len(tokens)) * 3, -1) for _ in range(2))
save(sys.argv[1], {f"attention.{i}": a[0].contiguous() for i, a in enumerate(attentions)},
     metadata={"tokens": json.dumps(tokens), "model_type": "bert"})
