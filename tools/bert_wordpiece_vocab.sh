#!/usr/bin/env bash
# Writes a lower-case WordPiece vocab.txt (+ tokenizer_config.json) for the shipped BERT, learnt
# from the corpus with spm_train (BPE, case-folded by nmt_nfkc_cf) and converted to WordPiece
# notation: a word-initial piece "▁x" becomes "x", any other piece "x" becomes "##x". Every
# character of the corpus and every printable ASCII character is there in both forms.
# Usage: bert_wordpiece_vocab.sh CORPUS OUT_DIR [VOCAB_SIZE]
set -euo pipefail
corpus=$1 out=$2 size=${3:-4000}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$out"
spm_train --input="$corpus" --model_prefix="$tmp/wp" --vocab_size="$size" --model_type=bpe \
  --normalization_rule_name=nmt_nfkc_cf --character_coverage=1.0 --split_digits=true \
  --num_threads=1 --minloglevel=2 > "$tmp/log" 2>&1 || { cat "$tmp/log"; exit 1; }
{
  printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n'
  cut -f1 "$tmp/wp.vocab" | awk '
    NR <= 3 { next }                      # <unk> <s> </s>
    $0 == "\xe2\x96\x81" { next }         # a lone word boundary
    { if (index($0, "\xe2\x96\x81") == 1) print substr($0, 4); else print "##" $0 }'
  # every character of the corpus and every printable ASCII character, in both forms
  { cut -f1 "$tmp/wp.vocab" | awk 'NR > 3' | sed 's/^\xe2\x96\x81//' | grep -o .
    LC_ALL=C awk 'BEGIN { for (c = 33; c < 127; c++) if (c < 65 || c > 90) printf "%c\n", c }'; } |
    LC_ALL=C sort -u | awk '{ print; print "##" $0 }'
} | awk 'length($0) > 0 && !seen[$0]++' > "$out/vocab.txt"
printf '{"do_lower_case": true, "tokenizer_class": "BertTokenizer"}\n' > "$out/tokenizer_config.json"
echo "$out/vocab.txt: $(wc -l < "$out/vocab.txt") pieces"
