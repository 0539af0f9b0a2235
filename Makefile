# The two commands of the README: `make demo` and `make test`.
BUILD ?= build
JOBS ?= 2
OUT ?= out
ASAN_BUILD ?= build-asan
BIN := $(BUILD)/attnscope
# ccache hits across checkouts in other folders (CI clones elsewhere).
export CCACHE_BASEDIR := $(CURDIR)
DEMO_TEXT := A new sentence to visualize attention weights

.PHONY: all setup configure build demo test bench train-model train-models clean

all: build

setup:
	@bash scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release > $(BUILD).configure.log 2>&1 || (cat $(BUILD).configure.log; exit 1)

build: configure
	@cmake --build $(BUILD) -j $(JOBS) $(TARGET)

demo: TARGET = --target attnscope
demo: build
	@mkdir -p $(OUT)
	@$(BIN) info
	@$(BIN) tokenize --text "$(DEMO_TEXT)"
	@$(BIN) dump --text "$(DEMO_TEXT)" -o $(OUT)/attention.safetensors --qkv
	@$(BIN) heatmap --text "$(DEMO_TEXT)" -o $(OUT)/heatmap.png
	@$(BIN) heatmap --text "$(DEMO_TEXT)" -o $(OUT)/heatmap.svg
	@$(BIN) heatmap --text "$(DEMO_TEXT)" -o $(OUT)/heatmap-annotated.pdf --annotate --cmap cividis
	@$(BIN) heatmap --text "$(DEMO_TEXT)" -o $(OUT)/heatmap-layer0-heads-max.png --layer 0 --head max
	@$(BIN) heatmap --text-file models/gpt2-moby/sample.txt -o $(OUT)/heatmap-sample-layer1-head3.png --layer 1 --head 3 \
	  --title "Moby Dick, chapter 1 (240 tokens): layer 1, head 3"
	@$(BIN) generate --text "Call me Ishmael. Some years ago" -n 24 -o $(OUT)/generation.safetensors
	@$(BIN) info --model models/llama-moby --text "Call me Ishmael. Some years ago"
	@$(BIN) heatmap --model models/llama-moby --text-file models/gpt2-moby/sample.txt --truncate --layer 3 --head 2 \
	  -o $(OUT)/llama-moby-heatmap.png --title "llama-moby (GQA, RoPE): layer 3, head 2"
	@$(BIN) generate --model models/llama-moby --text "Call me Ishmael. Some years ago" -n 24 \
	  -o $(OUT)/llama-moby-generation.safetensors
	@$(BIN) info --model models/vit-mnist --image models/vit-mnist/samples/digit-7-0.png
	@$(BIN) overlay --model models/vit-mnist --image models/vit-mnist/samples/digit-7-0.png -o $(OUT)/vit-mnist-overlay.png
	@$(BIN) heatmap --model models/vit-mnist --image models/vit-mnist/samples/digit-7-0.png -o $(OUT)/vit-mnist-heatmap.png
	@$(BIN) info --model models/bert-moby --text "Call me Ishmael. Some years ago I went to [MASK]."
	@$(BIN) heatmap --model models/bert-moby --text "Call me Ishmael." --text-b "Some years ago I went to sea." \
	  -o $(OUT)/bert-moby-pair-heatmap.png --title "bert-moby, a sentence pair: last layer, mean over heads"
	@$(BIN) view --text "$(DEMO_TEXT)" -o $(OUT)/view.html
	@$(BIN) view --model models/bert-moby --text "Call me Ishmael." --text-b "Some years ago I went to sea." \
	  -o $(OUT)/bert-moby-view.html
	@$(BIN) view --model models/llama-moby --text-file models/gpt2-moby/sample.txt --truncate --layer 3 --heads 2 \
	  -o $(OUT)/llama-moby-view.html
	@$(BIN) view --model models/vit-mnist --image models/vit-mnist/samples/digit-7-0.png -o $(OUT)/vit-mnist-view.html
	@$(BIN) explain --text "Call me Ishmael. Some years ago" --method relevance -o $(OUT)/explain-relevance.html
	@$(BIN) explain --text "Call me Ishmael. Some years ago" --method integrated-gradients -o $(OUT)/explain-ig.png
	@$(BIN) explain --text "Call me Ishmael. Some years ago" --method grad-x-input --continuation -n 8 \
	  -o $(OUT)/explain-continuation.png
	@$(BIN) explain --text "Call me Ishmael. Some years ago" --method generation -n 8 -o $(OUT)/explain-generation.html
	@$(BIN) explain --model models/vit-mnist --image models/vit-mnist/samples/digit-7-0.png --method relevance \
	  -o $(OUT)/vit-mnist-relevance.png
	@$(BIN) explain --model models/bert-moby --text "Call me Ishmael. Some years ago I went to [MASK]." \
	  --method integrated-gradients --baseline pad -o $(OUT)/bert-moby-ig.png
	@$(BIN) qk --corpus data/moby-sentences.txt --max-tokens 1500 --truncate -o $(OUT)/moby.qk
	@$(BIN) view --from $(OUT)/moby.qk -o $(OUT)/moby-atlas.html
	@$(BIN) qk --model models/vit-mnist --corpus models/vit-mnist/samples -o $(OUT)/digits.qk
	@$(BIN) view --from $(OUT)/digits.qk -o $(OUT)/digits-atlas.html
	@echo "demo results in $(OUT)/ (open the .html files in a browser)"

test: build
	@cd $(BUILD) && ctest -j $(JOBS) --output-on-failure
	@echo "== torch-free suites again under ASan + UBSan =="
	@cmake -S . -B $(ASAN_BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DATTNSCOPE_SANITIZE=ON \
	  -DATTNSCOPE_ENGINE=OFF > $(ASAN_BUILD).configure.log 2>&1 || (cat $(ASAN_BUILD).configure.log; exit 1)
	@cmake --build $(ASAN_BUILD) -j $(JOBS)
	@cd $(ASAN_BUILD) && LSAN_OPTIONS=suppressions=$(CURDIR)/tests/lsan.supp \
	  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ctest -j $(JOBS) --output-on-failure

bench: build
	@bash bench/run.sh

# Re-trains the shipped GPT-2 (about half an hour on 2 cores); see models/gpt2-moby/README.md.
train-model: build
	@bash tools/train_shipped_model.sh

# Re-trains the other shipped models (ViT on MNIST, Llama on Moby Dick, then the BERT whose
# vocabulary and first embeddings come from the Llama's; about 50 minutes).
train-models: TARGET = --target attnscope --target train_vit --target train_llama --target train_bert
train-models: build
	@bash tools/train_vit_mnist.sh
	@bash tools/train_llama_moby.sh
	@bash tools/train_bert_moby.sh

clean:
	rm -rf $(BUILD) $(BUILD).configure.log $(ASAN_BUILD) $(ASAN_BUILD).configure.log $(OUT)
