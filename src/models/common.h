// Pieces every family shares (internal, libtorch): what a forward pass keeps, activations,
// input checks and the conversion of kept tensors into a Trace.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "attnscope/model.h"

namespace attnscope {

struct Capture {
  bool attention = false, qkv = false, hidden = false;
  std::vector<bool> layers;  // attention/q/k/v kept for these layers only; empty = all
  bool wants(int64_t l) const { return layers.empty() || (size_t(l) < layers.size() && layers[size_t(l)]); }
  std::vector<torch::Tensor> attention_probs;  // per layer [B, H, T, T] (undefined if not wanted)
  std::vector<torch::Tensor> q, k, v;          // per layer [B, H, T, hd] (undefined if not wanted)
  std::vector<torch::Tensor> hidden_states;    // n_layers + 1 of [B, T, D]

  // Keeps one layer's attention (and q/k/v) as asked.
  void keep(int64_t l, const torch::Tensor& probs, const torch::Tensor& q_, const torch::Tensor& k_,
            const torch::Tensor& v_);
};

// A Capture for the options; checks the layer numbers.
Capture capture_for(const TraceOptions& o, int64_t n_layers);
// The kept tensors of batch item 0 as a Trace.
Trace to_trace(const Capture& cap, const torch::Tensor& logits);

// Activation by its Hugging Face name (gelu = erf, gelu_new = tanh approximation, ...).
torch::Tensor activation(const std::string& name, const torch::Tensor& x);
// Throws Error naming `where` when the activation is unknown.
void check_activation(const std::string& name, const std::string& where);

// nn.Linear: x W^T + b (b may be undefined).
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b);

// Softmax that keeps subnormals out (they slow BLAS 50-100x; values below 1e-30 are invisible).
torch::Tensor attention_softmax(const torch::Tensor& scores);

// Token input checks: not empty, at most max_positions, ids inside the vocabulary; token types
// (if any) one per id and inside 0..type_vocab_size-1.
void check_tokens(const ModelInput& in, int64_t vocab, int64_t max_positions, const char* positions_key,
                  int64_t type_vocab_size);
torch::Tensor ids_tensor(const std::vector<int64_t>& ids);  // [1, T] int64

}  // namespace attnscope
