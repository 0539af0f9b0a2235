# The two commands of the README: `make demo` and `make test`.
BUILD ?= build
JOBS ?= 2
OUT ?= out
BIN := $(BUILD)/attnscope
DEMO_TEXT := A new sentence to visualize attention weights

.PHONY: all setup configure build demo test bench train-model clean

all: build

setup:
	@bash scripts/setup.sh

configure: setup
	@cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release > $(BUILD).configure.log 2>&1 || (cat $(BUILD).configure.log; exit 1)

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

demo: build
	@mkdir -p $(OUT)
	@$(BIN) info
	@$(BIN) tokenize --text "$(DEMO_TEXT)"
	@$(BIN) dump --text "$(DEMO_TEXT)" -o $(OUT)/attention.safetensors --qkv
	@$(BIN) heatmap --text "$(DEMO_TEXT)" -o $(OUT)/heatmap.png
	@$(BIN) heatmap --text "$(DEMO_TEXT)" -o $(OUT)/heatmap.svg
	@$(BIN) heatmap --text "$(DEMO_TEXT)" -o $(OUT)/heatmap-annotated.pdf --annotate --cmap cividis
	@$(BIN) heatmap --text "$(DEMO_TEXT)" -o $(OUT)/heatmap-layer0-heads-max.png --layer 0 --head max
	@echo "demo results in $(OUT)/"

test: build
	@cd $(BUILD) && ctest -j $(JOBS) --output-on-failure

bench: build
	@bash bench/run.sh

# Re-trains the shipped model (about half an hour on 2 cores); see models/gpt2-moby/README.md.
train-model: build
	@bash tools/train_shipped_model.sh

clean:
	rm -rf $(BUILD) $(BUILD).configure.log $(OUT)
