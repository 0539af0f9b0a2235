// The engine's public face: load a model from a checkpoint and run it on token ids,
// keeping what the caller asks for. Free of libtorch so that renderers and the CLI do not
// pay for it at compile time.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "attnscope/array.h"

namespace attnscope {

class Checkpoint;

struct ModelInfo {
  std::string family;      // "gpt2", "bert", "vit", "llama"
  std::string model_type;  // config.json model_type (bert, roberta, distilbert, qwen2, ...)
  int64_t n_layers = 0, n_heads = 0, head_dim = 0, d_model = 0, d_ff = 0;
  int64_t vocab_size = 0, max_positions = 0;
  std::string weight_dtype;  // dtype of the stored weights, e.g. "F16" (compute is F32)
  int64_t n_params = 0;      // unique parameters (tied weights counted once)
  int64_t n_kv_heads = 0;    // key/value heads (GQA); = n_heads without GQA
  bool causal = true;
  bool tied_head = true;
  std::string activation;
  std::vector<int64_t> eos_ids;  // config.json eos_token_id (generation stops there)
  // What the output head predicts: "lm" (next token), "mlm" (masked tokens), "classifier"
  // (one label per input, see labels), or "" (no head in the checkpoint).
  std::string head;
  std::vector<std::string> labels;  // classifier labels (config.json id2label), by class index
  int64_t type_vocab_size = 0;      // token types (sentence A/B) the embeddings know; 0 = none
  // Image models: input is pixels [channels, image_size, image_size]; tokens are [CLS] + the
  // patch grid row-major.
  bool image = false;
  int64_t image_size = 0, patch_size = 0, channels = 0;
  int64_t grid() const { return patch_size ? image_size / patch_size : 0; }
};

// One input: token ids (with optional token types), or an image.
struct ModelInput {
  std::vector<int64_t> ids;
  std::vector<int64_t> type_ids;  // empty = all 0
  Array pixels;                   // [channels, height, width], already preprocessed
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
  Array logits;  // [tokens, vocab] for lm/mlm heads; [classes] for a classifier
};

struct GenerateOptions {
  int64_t max_new_tokens = 20;
  double temperature = 0;  // 0 = greedy (argmax)
  int64_t top_k = 0;       // 0 = the whole vocabulary
  uint64_t seed = 0;
  bool use_cache = true;  // false: a full forward pass per step (for comparison)
  bool attention = true;  // assemble the attention of every step
};

struct Generation {
  std::vector<int64_t> ids;  // prompt + generated
  size_t prompt_length = 0;
  bool stopped_by_eos = false, stopped_by_caller = false;
  // Per layer [heads, T, T] over all T = ids.size() tokens: the prompt's rows from the first
  // pass, then one row per generated token as it was computed (causal zeros above the diagonal).
  std::vector<Array> attention;
  double seconds = 0;  // time spent generating (excluding loading)
};

// What a gradient explains: F = a logit, probability or log-probability of `index` (a token id,
// or a class for classifiers) at output `position` (ignored by classifiers).
struct Target {
  int64_t position = 0;
  int64_t index = 0;
  std::string kind = "logit";  // logit | prob | logprob
};

struct GradientOptions {
  bool attention = false;    // also keep every layer's attention and its gradient (batch item 0)
  bool values_only = false;  // F only: a forward pass without autograd (Gradients::grad stays empty)
};

struct Gradients {
  std::vector<double> value;                     // F for each batch item
  Array grad;                                    // dF/dfeatures, [B, ...features shape]
  std::vector<Array> attention, attention_grad;  // per layer [heads, T, T] (with GradientOptions::attention)
};

// Model::relevance: per layer [heads, T, T] of batch item 0.
struct Relevance {
  double value = 0;  // F: the target logit
  std::vector<Array> attention, attention_grad, attention_relevance;
};

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelInfo& info() const = 0;
  // One sequence or one image. Throws Error if the input does not fit the model (empty, longer
  // than max_positions, ids outside the vocabulary, wrong image size).
  virtual Trace forward(const ModelInput& in, const TraceOptions& opts) const = 0;
  Trace forward(const std::vector<int64_t>& ids, const TraceOptions& opts) const {
    return forward(ModelInput{ids, {}, {}}, opts);
  }
  // Decoder families (gpt2, llama): continues the prompt token by token with a key/value cache.
  // stop(ids) is asked after every new token; true ends generation. Throws Error for encoders.
  virtual Generation generate(const std::vector<int64_t>& prompt, const GenerateOptions& opts,
                              const std::function<bool(const std::vector<int64_t>&)>& stop) const;

  // The input features gradients are taken with respect to: text models the word-embedding output
  // [T, d_model] (positions and token types are added inside, as Captum's LayerIntegratedGradients
  // on the word embeddings); image models the preprocessed pixels [C, H, W].
  virtual Array features(const ModelInput& in) const = 0;
  // F (see Target) and dF/dfeatures for a batch of feature arrays, each the shape features(in)
  // gives; everything else (positions, token types, the causal mask) comes from `in`. One
  // backward pass for the batch.
  virtual Gradients gradients(const ModelInput& in, const std::vector<Array>& batch, const Target& target,
                              const GradientOptions& opts) const = 0;
  // Layer-wise relevance of Chefer et al. (CVPR 2021) for a target logit (target.kind must be
  // "logit"): each layer's attention, the logit's gradient there and the LRP relevance there.
  virtual Relevance relevance(const ModelInput& in, const Target& target) const = 0;
};

// Picks the family from config.json's model_type, loads and checks every weight.
std::unique_ptr<Model> load_model(const Checkpoint& ckpt);

}  // namespace attnscope
