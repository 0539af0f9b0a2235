// GPT-2 in libtorch (internal: used by the Model wrapper and by tools/train_gpt2).
// Math per Hugging Face modeling_gpt2.py; names and shapes per reference/models.md.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "attnscope/checkpoint.h"
#include "common.h"

namespace attnscope::gpt2 {

struct Config {
  int64_t n_embd = 768, n_head = 12, n_layer = 12, n_positions = 1024, vocab_size = 50257, n_inner = 3072;
  double eps = 1e-5;
  std::string activation = "gelu_new";
  bool scale_attn_weights = true;
  bool scale_by_inverse_layer_idx = false;
  int64_t head_dim() const { return n_embd / n_head; }
  static Config from(const attnscope::Config& cfg);  // validates keys and divisibility
  nlohmann::json to_json() const;                    // a Hugging Face config.json
};

struct Block {
  torch::Tensor ln1_w, ln1_b;    // [D]
  torch::Tensor attn_w, attn_b;  // [D, 3D] (Conv1D: y = x W + b), [3D]
  torch::Tensor proj_w, proj_b;  // [D, D], [D]
  torch::Tensor ln2_w, ln2_b;    // [D]
  torch::Tensor fc_w, fc_b;      // [D, I], [I]
  torch::Tensor fc2_w, fc2_b;    // [I, D], [D]
};

struct Weights {
  torch::Tensor wte;  // [V, D]
  torch::Tensor wpe;  // [P, D]
  std::vector<Block> h;
  torch::Tensor lnf_w, lnf_b;  // [D]
  torch::Tensor lm_head;       // [V, D]; the same tensor as wte when tied
  bool tied = true;

  // Loads every tensor (F32/F16/BF16/F64 -> F32) and checks its shape against the config.
  static Weights load(const Checkpoint& ckpt, const Config& cfg);
  // GPT-2 initialisation (normal std 0.02, residual projections 0.02/sqrt(2L)).
  static Weights random(const Config& cfg, uint64_t seed);
  // Hugging Face names ("h.0.attn.c_attn.weight", no prefix) and tensors, tied head omitted.
  std::vector<std::pair<std::string, torch::Tensor>> named() const;
  std::vector<torch::Tensor> parameters() const;
};

// ids: [B, T] int64. Returns the final hidden state after ln_f, [B, T, D].
// With a cache: ids are the positions after the cached ones, and their keys/values are appended.
// embeds: optional word embeddings [B, T, D] used instead of looking ids up (gradients).
torch::Tensor forward_hidden(const Config& cfg, const Weights& w, const torch::Tensor& ids, Capture* cap,
                             KvCache* cache = nullptr, const torch::Tensor& embeds = {});
// Logits [B, T, V].
torch::Tensor logits(const Weights& w, const torch::Tensor& final_hidden);

}  // namespace attnscope::gpt2
