#!/usr/bin/env bash
# Installs what attnscope needs on a fresh Debian 12 machine; idempotent (skips what is
# present). System packages from Debian's archive, the golden-file peers from npm.
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libopenblas0-openmp            # tensors/autograd; a multi-threaded BLAS for libtorch
  nlohmann-json3-dev libcli11-dev
  libcairo2-dev libpango1.0-dev fonts-dejavu-core fonts-noto-cjk fonts-noto-color-emoji
  libpcre2-dev libutf8proc-dev                # tokenizer regexes and Unicode tables
  libsentencepiece-dev sentencepiece          # tokenizer.model files; spm_train/spm_encode for the tests
  libpng-dev libjpeg62-turbo-dev              # images for ViT (the decoders PIL uses)
  libgtest-dev libgmock-dev libbenchmark-dev
  python3-torch python3-numpy python3-matplotlib python3-seaborn python3-regex python3-pil  # references, Python baselines
  python3-networkx                            # the established max-flow the attention-flow test compares with
  python3-scipy python3-sklearn               # projection references (Spearman) and the t-SNE baseline of the bench
  libhnswlib-dev                              # approximate nearest neighbours for t-SNE/UMAP over large corpora
  libfftw3-dev                                # t-SNE repulsion by FFT-accelerated interpolation (FIt-SNE)
  chromium                                    # the real browser of the viewer tests (playwright-core drives it)
  time
)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
command -v node >/dev/null 2>&1 || missing+=(nodejs npm)

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
fi

# libtorch links libblas.so.3; make sure the alternative is OpenBLAS, not the reference BLAS.
blas=$(readlink -f /etc/alternatives/libblas.so.3-x86_64-linux-gnu 2>/dev/null || true)
case "$blas" in
  *openblas*) ;;
  *) $SUDO update-alternatives --set libblas.so.3-x86_64-linux-gnu \
       /usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3 || true ;;
esac

# npm peers for the tokenizer golden files (versions pinned in the lock file).
stamp=tests/golden/node_modules/.attnscope-installed
if [ ! -f "$stamp" ] || [ tests/golden/package-lock.json -nt "$stamp" ]; then
  (cd tests/golden && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi

# The web viewer's build and test tools (Vite, TypeScript, Vitest, playwright-core), pinned.
stamp=web/node_modules/.attnscope-installed
if [ ! -f "$stamp" ] || [ web/package-lock.json -nt "$stamp" ]; then
  (cd web && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi
