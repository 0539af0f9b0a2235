// The engine's public face: load a model from a checkpoint and run it on token ids,
// keeping what the caller asks for. Free of libtorch so that renderers and the CLI do not
// pay for it at compile time.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attnscope/array.h"

namespace attnscope {

class Checkpoint;

struct ModelInfo {
  std::string family;      // "gpt2"
  std::string model_type;  // config.json model_type
  int64_t n_layers = 0, n_heads = 0, head_dim = 0, d_model = 0, d_ff = 0;
  int64_t vocab_size = 0, max_positions = 0;
  std::string weight_dtype;  // dtype of the stored weights, e.g. "F16" (compute is F32)
  int64_t n_params = 0;      // unique parameters (tied weights counted once)
  bool causal = true;
  bool tied_head = true;
  std::string activation;
};

// What a forward pass keeps. What is not asked for is not computed or stored.
struct TraceOptions {
  bool attention = true;        // attention[l]: [heads, queries, keys]
  bool qkv = false;             // query/key/value[l]: [heads, tokens, head_dim]
  bool hidden = false;          // hidden[n]: [tokens, d_model], n = 0 (embeddings) .. n_layers
  bool logits = false;          // logits: [tokens, vocab]
  std::vector<int64_t> layers;  // keep attention/q/k/v of these layers only (others stay
                                // empty Arrays); empty = every layer
};

struct Trace {
  std::vector<Array> attention;  // one per layer; empty Arrays for layers not asked for
  std::vector<Array> query, key, value;
  std::vector<Array> hidden;
  Array logits;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelInfo& info() const = 0;
  // ids: one sequence. Throws Error if it is empty or longer than max_positions.
  virtual Trace forward(const std::vector<int64_t>& ids, const TraceOptions& opts) const = 0;
};

// Picks the family from config.json's model_type, loads and checks every weight.
std::unique_ptr<Model> load_model(const Checkpoint& ckpt);

}  // namespace attnscope
