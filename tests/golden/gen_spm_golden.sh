#!/usr/bin/env bash
# Trains a small SentencePiece BPE model (byte fallback) with Debian's spm_train on the shipped
# sample text and the tokenizer corpus, then encodes the single-line corpus entries with
# spm_encode: the golden ids for the libsentencepiece-backed loader.
# Usage: gen_spm_golden.sh SOURCE_DIR OUT_DIR
set -euo pipefail
src=$1 out=$2
mkdir -p "$out/spm"
node -e 'const c = require(process.argv[1]); for (const t of c) if (!/[\r\n]/.test(t)) console.log(t);' \
  "$src/tests/golden/corpus.json" > "$out/spm/lines.txt"
cat "$src/models/gpt2-moby/sample.txt" "$out/spm/lines.txt" > "$out/spm/train.txt"
spm_train --input="$out/spm/train.txt" --model_prefix="$out/spm/tokenizer" --vocab_size=700 --model_type=bpe \
  --byte_fallback=true --character_coverage=0.98 --hard_vocab_limit=false --minloglevel=2 > "$out/spm/train.log" 2>&1
spm_encode --model="$out/spm/tokenizer.model" --output_format=id < "$out/spm/lines.txt" > "$out/spm/ids.txt"
spm_encode --model="$out/spm/tokenizer.model" --output_format=piece < "$out/spm/lines.txt" > "$out/spm/pieces.txt"
echo "wrote $(wc -l < "$out/spm/ids.txt") SentencePiece encodings to $out/spm"
