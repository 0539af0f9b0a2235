#!/usr/bin/python3
"""Writes a cased WordPiece vocab.txt for the shipped BERT from the pieces of models/llama-moby's
SentencePiece model (trained by spm_train on the same text), and init_embeddings.safetensors: for
every WordPiece entry that is a converted piece ("\u2581x" -> "x", "x" -> "##x"), that piece's row of
llama-moby's trained token embeddings (same width, 128); other rows N(0, 0.02). The BERT trainer
starts from these word embeddings (--init-embeddings) instead of random ones.
Usage: bert_vocab_from_llama.py LLAMA_DIR OUT_DIR   (needs spm_export_vocab, Debian's sentencepiece)"""
import json
import os
import subprocess
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "reference"))
import safetensors_io  # noqa: E402

llama, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
pieces = subprocess.run(["spm_export_vocab", "--model=" + os.path.join(llama, "tokenizer.model")],
                        check=True, capture_output=True, text=True).stdout.splitlines()
pieces = [p.split("\t")[0] for p in pieces]
weights, _ = safetensors_io.load(os.path.join(llama, "model.safetensors"))
emb = weights["model.embed_tokens.weight"].float()
vocab, source = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], [None] * 5
seen = set(vocab)
for i, p in enumerate(pieces):
    if p in ("<unk>", "<s>", "</s>") or (p.startswith("<0x") and p.endswith(">")) or p == "\u2581":
        continue
    w = p[1:] if p.startswith("\u2581") else "##" + p
    if w and w not in seen:
        seen.add(w)
        vocab.append(w)
        source.append(i)
# every character of the pieces and every printable ASCII character, in both forms
chars = sorted({c for p in pieces if not p.startswith("<") for c in p.replace("\u2581", "")} |
               {chr(c) for c in range(33, 127)})
for c in chars:
    for w in (c, "##" + c):
        if w not in seen:
            seen.add(w)
            vocab.append(w)
            source.append(pieces.index(c) if c in pieces else None)
with open(os.path.join(out, "vocab.txt"), "w", encoding="utf-8") as f:
    f.write("\n".join(vocab) + "\n")
with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
    json.dump({"do_lower_case": False, "tokenizer_class": "BertTokenizer"}, f)
g = torch.Generator().manual_seed(0)
init = torch.randn(len(vocab), emb.shape[1], generator=g) * 0.02
mapped = 0
for k, s in enumerate(source):
    if s is not None:
        init[k] = emb[s]
        mapped += 1
safetensors_io.save(os.path.join(out, "init_embeddings.safetensors"), {"word_embeddings": init.contiguous()})
print(f"{out}: {len(vocab)} WordPiece entries, {mapped} initialised from {llama}'s embeddings")
