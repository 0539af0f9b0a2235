// Pure functions over captured attention (no model, no drawing).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "attnscope/array.h"
#include "attnscope/render.h"

namespace attnscope {

// "-1" is the last layer. Throws Error naming --layer, the valid range and the value.
int64_t resolve_layer(int64_t layer, int64_t n_layers);

struct HeadSelection {
  enum class Kind { Index, Mean, Max, Min } kind = Kind::Mean;
  int64_t index = 0;
  // "mean", "max", "min", or a head index (negative counts from the end).
  static HeadSelection parse(const std::string& s, int64_t n_heads);
  std::string describe() const;  // "mean over heads", "head 3"
};

// attention: [heads, queries, keys] -> [queries, keys] values (row-major).
std::vector<float> reduce_heads(const Array& attention, const HeadSelection& sel);

struct Prediction {
  int64_t id = 0;
  double prob = 0;
};
// The k most probable entries of softmax(logits[0..n)), most probable first.
std::vector<Prediction> top_k(const float* logits, int64_t n, int64_t k);

}  // namespace attnscope
