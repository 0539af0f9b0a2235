#!/usr/bin/env bash
# Side-by-side: whole-process `attnscope heatmap` vs the seed's Python program (PyTorch +
# matplotlib + seaborn) on the same GPT-2-small-sized random checkpoint, forward+capture at 1,024
# tokens, every family, the views in chromium, and every explain method (integrated gradients vs a
# Captum-style PyTorch loop). Writes bench/out/results.md. Run via `make bench`.
set -euo pipefail
cd "$(dirname "$0")/.."
out=bench/out
ck=$out/gpt2-small-random
mkdir -p "$out"
[ -f "$ck/model.safetensors" ] || /usr/bin/python3 bench/make_checkpoint.py "$ck" models/gpt2-moby
short="A new sentence to visualize attention weights"
long=$(for i in $(seq 1 127); do printf 'A new sentence to visualize attention weights. '; done)
REPS=${REPS:-3}
ntok() { build/attnscope tokenize --model "$ck" --text "$1" | tail -1 | cut -d' ' -f1; }
n_short=$(ntok "$short")
n_long=$(ntok "$long")

# median wall seconds and max RSS (MiB) of REPS runs of a command
measure() {
  local tag=$1; shift
  : > "$out/$tag.times"
  for _ in $(seq 1 "$REPS"); do
    /usr/bin/time -f "%e %M" -o "$out/$tag.one" "$@" > /dev/null
    cat "$out/$tag.one" >> "$out/$tag.times"
  done
  sort -n "$out/$tag.times" | awk -v n="$REPS" 'NR==int((n+1)/2){wall=$1} {if($2>m)m=$2} END{printf "%.2f %.0f\n", wall, m/1024}'
}

echo "timing (median of $REPS runs each)..." >&2
read -r c1 cm1 < <(measure cpp_short build/attnscope heatmap --model "$ck" --text "$short" -o "$out/attnscope_short.png")
read -r p1 pm1 < <(measure py_short /usr/bin/python3 bench/seed_heatmap.py "$ck" "$short" "$out/seed_short.png")
read -r c2 cm2 < <(measure cpp_long build/attnscope heatmap --model "$ck" --text "$long" -o "$out/attnscope_long.png")
read -r p2 pm2 < <(measure py_long /usr/bin/python3 bench/seed_heatmap.py "$ck" "$long" "$out/seed_long.png")
fwd=$(build/bench/bench_forward "$ck" 1024 3)
# Every family: forward + capture at 512 tokens (ViT: 197 tokens, 8 images), generation with and
# without the key/value cache (decoders: 128 new tokens after a 32-token prompt).
/usr/bin/python3 bench/make_family_checkpoints.py "$out" > /dev/null
families=$(
  build/bench/bench_forward "$ck" 512 3 128
  build/bench/bench_forward "$out/bert-base-random" 512 3
  build/bench/bench_forward "$out/llama-random" 512 3 128
  build/bench/bench_forward "$out/vit-base-random" 0 3
)

# Every explain method at 128 and 512 tokens, and integrated gradients against a Captum-style
# PyTorch loop on the same checkpoint.
explain=$(/usr/bin/python3 bench/explain_bench.py build/attnscope "$ck" "$out/explain" models/bert-moby/heldout.txt)

# t-SNE vs scikit-learn's TSNE and UMAP vs umap-js on the same query/key vectors (5,000 and 10,000 points).
[ -d bench/node_modules/umap-js ] || (cd bench && npm ci --no-audit --no-fund > /dev/null)
projection=$(/usr/bin/python3 bench/projection_bench.py build/attnscope build/bench/bench_projection "$out/projection" 2500 5000 10000)

# The exported views in a real browser (Debian chromium via playwright-core, offline).
viewer=$(node bench/viewer.mjs build/attnscope "$ck" "$out/views")

# Same numbers? attnscope's dump vs the seed program's matrix (last layer, mean over heads).
/usr/bin/python3 bench/seed_heatmap.py "$ck" "$long" "$out/seed_check.png" "$out/seed_attention.npy" > /dev/null
build/attnscope dump --model "$ck" --text "$long" -o "$out/attnscope_long.safetensors" > /dev/null
check=$(/usr/bin/python3 - "$out" <<'PY'
import sys, os, numpy as np
sys.path.insert(0, "tests/reference")
import safetensors_io
out = sys.argv[1]
t, meta = safetensors_io.load(os.path.join(out, "attnscope_long.safetensors"))
ours = t["attention.%d" % (int(meta["n_layers"]) - 1)].numpy().mean(axis=0)
seed = np.load(os.path.join(out, "seed_attention.npy"))
print("%d tokens, max |attnscope - seed| = %.2e" % (ours.shape[0], np.abs(ours - seed).max()))
PY
)

{
  echo "# attnscope benchmarks ($(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs))"
  echo
  echo "Whole-process heatmap, GPT-2-small-sized random checkpoint (124M parameters, F32), median of $REPS runs:"
  echo
  echo "| text | attnscope s | seed (PyTorch+seaborn) s | speed-up | attnscope peak MiB | seed peak MiB |"
  echo "|---|---|---|---|---|---|"
  awk -v n="$n_short" -v a="$c1" -v b="$p1" -v am="$cm1" -v bm="$pm1" 'BEGIN{printf "| %d tokens | %.2f | %.2f | %.1fx | %d | %d |\n", n, a, b, b/a, am, bm}'
  awk -v n="$n_long" -v a="$c2" -v b="$p2" -v am="$cm2" -v bm="$pm2" 'BEGIN{printf "| %d tokens | %.2f | %.2f | %.1fx | %d | %d |\n", n, a, b, b/a, am, bm}'
  echo
  echo "Cross-check of the plotted matrix: $check"
  echo
  echo "Forward + capture of all 12x12 attention maps at 1,024 tokens:"
  echo
  echo '```'
  echo "$fwd"
  echo '```'
  echo
  echo "Every family (random base-sized checkpoints; forward + capture of every attention map; generation"
  echo "of 128 tokens after 32 with and without the key/value cache):"
  echo
  echo "| model | tokens x inputs | forward s | GFLOP/s | of matmul peak | peak MiB | tokens/s with cache | without |"
  echo "|---|---|---|---|---|---|---|---|"
  echo "$families" | /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    if not line.strip(): continue
    j = json.loads(line)
    g = j.get("kv_cache_tokens_per_s"); n = j.get("no_cache_tokens_per_s")
    print("| %s (%d layers, %d/%d heads, %.0fM params) | %d x %d | %.3f | %.1f | %.0f %% | %.0f | %s | %s |" % (
        j["model_type"], j["layers"], j["heads"], j["kv_heads"], j["params"] / 1e6, j["tokens"], j["batch"],
        j["forward_s"], j["gflops"], 100 * j["fraction_of_peak"], j["peak_mib"],
        "%.1f" % g if g else "-", "%.1f" % n if n else "-"))
'
  echo
  echo "Interactive views (attnscope view) of the same 12-layer, 12-head checkpoint in Debian's chromium: file"
  echo "size (BertViz embeds ~44 bytes per weight: full-precision JSON twice), time to write the file (model"
  echo "run included), first drawn frame after opening it, and per-interaction times measured in the page:"
  echo
  echo "$viewer"
  echo
  echo "attnscope explain on the same checkpoint: time of the method itself (after loading), the whole"
  echo "process and its peak memory; then integrated gradients side by side with a Captum-style PyTorch"
  echo "loop (bench/captum_style_ig.py) on the same tokens, steps and chunk size:"
  echo
  echo "$explain"
  echo
  echo "Projections of one head's queries and keys (models/gpt2-moby, layer 1 head 2, Moby Dick sentences,"
  echo "aligned as attnscope qk does) against scikit-learn's TSNE and umap-js on the same vectors:"
  echo
  echo "$projection"
} > "$out/results.md"
cat "$out/results.md"
