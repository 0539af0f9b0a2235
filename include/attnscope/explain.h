// Explanations computed from captured attention and hidden states (no gradients): attention
// rollout and attention flow (Abnar & Zuidema 2020), the attention-while-generating table of the
// "attention" project, and attention-transfer energy maps. Formulas: ../shared/reference/explain.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "attnscope/array.h"

namespace attnscope {

// A dense row-major n x n matrix of doubles.
struct Square {
  int64_t n = 0;
  std::vector<double> v;
  double& at(int64_t i, int64_t j) { return v[size_t(i * n + j)]; }
  double at(int64_t i, int64_t j) const { return v[size_t(i * n + j)]; }
  static Square identity(int64_t n);
};

struct RolloutOptions {
  std::string fusion = "mean";  // how heads are fused: mean | max | min
  double discard_ratio = 0;     // share of the lowest fused weights set to 0 (the diagonal is kept)
  int64_t start_layer = 0;      // first layer in the product
};

// Per layer: the fused heads, the discard, then (W + I) / rowsum(W + I). attention: [H, n, n].
Square rollout_layer(const Array& attention, const RolloutOptions& o);

// R = Â(L-1) · ... · Â(start): row i is the relevance of the inputs for output position i.
Square attention_rollout(const std::vector<Array>& attention, const RolloutOptions& o);

// Attention flow: the maximum flow from output node (top layer, token i) to each input node
// (layer 0, token j) through the layered graph whose edges carry capacities Â(l)[i][j], each row
// normalised to sum 1. rows: which output positions (empty = all). Dinic's algorithm per pair.
// Returns n x n with zeros in rows not asked for.
Square attention_flow(const std::vector<Array>& attention, const RolloutOptions& o, const std::vector<int64_t>& rows);

// Maximum flow in a general graph (exposed for tests): nodes 0..n-1, edges (u, v, capacity).
struct FlowEdge {
  int64_t u, v;
  double cap;
};
double max_flow(int64_t n_nodes, const std::vector<FlowEdge>& edges, int64_t source, int64_t sink);

// The "attention" project's table for a generation over T tokens (attention[l]: [H, T, T]):
// prompt rows are the identity; for a generated token t, per layer the head-mean row of the query
// at t - 1 (the position that predicted t), its first column set to 0, renormalised, then averaged
// over layers. Rows sum to 1; the first column is 0; diagonal entries of generated rows are 0.
Square generation_attention(const std::vector<Array>& attention, int64_t prompt_length);

// Display transform offered with it: each generated row's values through a logistic function of
// their z-score within the row (mean 0.5); prompt rows unchanged.
Square sigmoid_display(const Square& table, int64_t prompt_length);

// Attention-transfer energy: per layer n (0 = embeddings), ||h_t||_p^p for every token t,
// L2-normalised over the tokens of that layer. hidden[n]: [T, d]. Returns [layers][T].
std::vector<std::vector<double>> activation_energy(const std::vector<Array>& hidden, double p);

}  // namespace attnscope
