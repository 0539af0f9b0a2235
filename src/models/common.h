// Pieces every family shares (internal, libtorch): what a forward pass keeps, activations,
// input checks and the conversion of kept tensors into a Trace.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "attnscope/checkpoint.h"
#include "attnscope/model.h"
#include "lrp.h"

namespace attnscope {

struct Capture {
  bool attention = false, qkv = false, hidden = false;
  bool grad = false;         // keep the attention's gradient too (retain_grad on the probabilities)
  std::vector<bool> layers;  // attention/q/k/v kept for these layers only; empty = all
  bool wants(int64_t l) const { return layers.empty() || (size_t(l) < layers.size() && layers[size_t(l)]); }
  std::vector<torch::Tensor> attention_probs;  // per layer [B, H, T, T] (undefined if not wanted)
  std::vector<torch::Tensor> q, k, v;          // per layer [B, H, T, hd] (undefined if not wanted)
  std::vector<torch::Tensor> hidden_states;    // n_layers + 1 of [B, T, D]
  int64_t head_position = -1;                  // >= 0: token heads return logits of this position only, [B, 1, V]
  bool lrp = false;                            // record what relevance propagation needs
  std::vector<LrpLayer> lrp_layers;            // per layer
  std::vector<LrpLinear> lrp_head;             // the output head's linear layers, top first
  int64_t lrp_position = -1;                   // the head reads this position (-1: the target's)

  // Keeps one layer's attention (and q/k/v) as asked.
  void keep(int64_t l, const torch::Tensor& probs, const torch::Tensor& q_, const torch::Tensor& k_,
            const torch::Tensor& v_);
};

// Keys and values of the positions seen so far, per layer ([B, kv_heads, T_past, hd]).
struct KvCache {
  std::vector<torch::Tensor> k, v;
  int64_t length() const { return k.empty() || !k[0].defined() ? 0 : k[0].size(2); }
  // Appends this step's keys/values to layer l and returns all of them.
  std::pair<torch::Tensor, torch::Tensor> append(int64_t l, int64_t n_layers, const torch::Tensor& k_new,
                                                 const torch::Tensor& v_new);
};

// One decoding step of a causal family: runs ids [1, T_new] after the cached positions
// (appending to the cache when given) and returns logits [1, T_new, V].
using StepFn = std::function<torch::Tensor(const torch::Tensor& ids, KvCache* cache, Capture* cap)>;
// The shared generation loop (greedy or sampled, cache or full recompute).
Generation generate_with(const StepFn& step, const ModelInfo& info, const std::vector<int64_t>& prompt,
                         const GenerateOptions& o, const std::function<bool(const std::vector<int64_t>&)>& stop);
// eos_token_id of config.json (an integer or a list), or none.
std::vector<int64_t> eos_ids_of(const Config& c);

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

// The shared part of Model::gradients: stacks the batch into one tensor that requires grad, runs
// `run(features, cap)` -> output logits ([B, T, V] or [B, classes]), takes F per item and one
// backward pass. `shape` is the features' shape without the batch dimension.
Gradients gradients_with(const std::function<torch::Tensor(const torch::Tensor&, Capture*)>& run,
                         const std::vector<int64_t>& shape, const std::vector<Array>& batch, const Target& t,
                         const GradientOptions& o, int64_t n_layers, int64_t n_outputs, int64_t n_positions);
// Model::relevance on the same `run` (which records Capture::lrp): F = the target logit, its
// gradient at every layer's attention, and LRP relevance from a one-hot at the target logit.
Relevance relevance_with(const std::function<torch::Tensor(const torch::Tensor&, Capture*)>& run, const Array& features,
                         const Target& t, int64_t n_layers, int64_t n_outputs, int64_t n_positions);
// A tensor's values as an owning Array (any shape; detached, contiguous F32).
Array array_of(const torch::Tensor& t);

}  // namespace attnscope
