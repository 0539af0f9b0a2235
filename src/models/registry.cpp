// model_type -> family. Adding a family: one file in src/models/ and one line here.
#include <torch/torch.h>

#include <cstdlib>
#include <thread>

#include "attnscope/checkpoint.h"
#include "attnscope/error.h"
#include "attnscope/model.h"
#include "families.h"
#include "gpt2.h"
#include "tensor_util.h"

namespace attnscope {

namespace {

class Gpt2Model final : public Model {
 public:
  explicit Gpt2Model(const Checkpoint& ckpt)
      : cfg_(gpt2::Config::from(ckpt.config())), w_(gpt2::Weights::load(ckpt, cfg_)) {
    info_.family = "gpt2";
    info_.model_type = ckpt.model_type();
    info_.n_layers = cfg_.n_layer;
    info_.n_heads = cfg_.n_head;
    info_.head_dim = cfg_.head_dim();
    info_.d_model = cfg_.n_embd;
    info_.d_ff = cfg_.n_inner;
    info_.vocab_size = cfg_.vocab_size;
    info_.max_positions = cfg_.n_positions;
    info_.causal = true;
    info_.tied_head = w_.tied;
    info_.activation = cfg_.activation;
    info_.n_kv_heads = cfg_.n_head;
    info_.head = "lm";
    info_.eos_ids = eos_ids_of(ckpt.config());
    std::string prefix = ckpt.has("transformer.wte.weight") ? "transformer." : "";
    info_.weight_dtype = dtype_name(ckpt.info(prefix + "wte.weight").dtype);
    for (const auto& t : w_.parameters()) info_.n_params += t.numel();
  }

  const ModelInfo& info() const override { return info_; }

  Trace forward(const ModelInput& in, const TraceOptions& o) const override {
    check_tokens(in, cfg_.vocab_size, cfg_.n_positions, "n_positions", 0);
    torch::NoGradGuard no_grad;
    Capture cap = capture_for(o, cfg_.n_layer);
    auto h = gpt2::forward_hidden(cfg_, w_, ids_tensor(in.ids), &cap);
    return to_trace(cap, o.logits ? gpt2::logits(w_, h) : torch::Tensor());
  }

  Generation generate(const std::vector<int64_t>& prompt, const GenerateOptions& o,
                      const std::function<bool(const std::vector<int64_t>&)>& stop) const override {
    auto fn = [this](const torch::Tensor& ids, KvCache* cache, Capture* cap) {
      return gpt2::logits(w_, gpt2::forward_hidden(cfg_, w_, ids, cap, cache));
    };
    return generate_with(fn, info_, prompt, o, stop);
  }

  Array features(const ModelInput& in) const override {
    check_tokens(in, cfg_.vocab_size, cfg_.n_positions, "n_positions", 0);
    torch::NoGradGuard no_grad;
    return array_of(w_.wte.index_select(0, ids_tensor(in.ids).reshape({-1})));  // (T, D)
  }

  Gradients gradients(const ModelInput& in, const std::vector<Array>& batch, const Target& t,
                      const GradientOptions& o) const override {
    check_tokens(in, cfg_.vocab_size, cfg_.n_positions, "n_positions", 0);
    const int64_t T = int64_t(in.ids.size());
    return gradients_with(run_on(in), {T, cfg_.n_embd}, batch, t, o, cfg_.n_layer, cfg_.vocab_size, T);
  }

  Relevance relevance(const ModelInput& in, const Target& t) const override {
    return relevance_with(run_on(in), features(in), t, cfg_.n_layer, cfg_.vocab_size, int64_t(in.ids.size()));
  }

 private:
  // Logits from word embeddings x [B, T, D] of the input's tokens (the head recorded for LRP).
  std::function<torch::Tensor(const torch::Tensor&, Capture*)> run_on(const ModelInput& in) const {
    return [this, ids = ids_tensor(in.ids)](const torch::Tensor& x, Capture* cap) {
      auto h = gpt2::forward_hidden(cfg_, w_, ids.expand({x.size(0), ids.size(1)}), cap, nullptr, x);
      if (cap->lrp) cap->lrp_head = {{h, w_.lm_head}};
      return gpt2::logits(w_, cap->head_position >= 0 ? h.narrow(1, cap->head_position, 1) : h);
    };
  }

  gpt2::Config cfg_;
  gpt2::Weights w_;
  ModelInfo info_;
};

}  // namespace

// libtorch may start with one intra-op thread; use every core unless ATTNSCOPE_THREADS says.
static void set_threads() {
  int n = int(std::thread::hardware_concurrency());
  if (const char* e = std::getenv("ATTNSCOPE_THREADS"); e && *e) n = std::atoi(e);
  if (n > 0 && torch::get_num_threads() != n) torch::set_num_threads(n);
}

std::unique_ptr<Model> load_model(const Checkpoint& ckpt) {
  set_threads();
  const std::string type = ckpt.model_type();
  if (type == "gpt2") return std::make_unique<Gpt2Model>(ckpt);
  if (type == "bert" || type == "roberta" || type == "distilbert") return make_bert_family(ckpt);
  if (type == "llama" || type == "qwen2" || type == "mistral") return make_llama_family(ckpt);
  if (type == "vit") return make_vit(ckpt);
  throw Error(ckpt.config().path() + ": unknown model_type '" + type +
              "' (supported: gpt2, bert, roberta, distilbert, llama, qwen2, mistral, vit)");
}

}  // namespace attnscope
