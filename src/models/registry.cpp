// model_type -> family. Adding a family: one file in src/models/ and one line here.
#include <torch/torch.h>

#include <cstdlib>
#include <thread>

#include "attnscope/checkpoint.h"
#include "attnscope/error.h"
#include "attnscope/model.h"
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
    std::string prefix = ckpt.has("transformer.wte.weight") ? "transformer." : "";
    info_.weight_dtype = dtype_name(ckpt.info(prefix + "wte.weight").dtype);
    for (const auto& t : w_.parameters()) info_.n_params += t.numel();
  }

  const ModelInfo& info() const override { return info_; }

  Trace forward(const std::vector<int64_t>& ids, const TraceOptions& o) const override {
    if (ids.empty()) throw Error("input: expected at least one token, found none");
    if (int64_t(ids.size()) > cfg_.n_positions)
      throw Error("input: " + std::to_string(ids.size()) + " tokens exceed the model's n_positions " +
                  std::to_string(cfg_.n_positions) + " (use --truncate to keep the first " +
                  std::to_string(cfg_.n_positions) + ")");
    for (int64_t id : ids)
      if (id < 0 || id >= cfg_.vocab_size)
        throw Error("input: token id " + std::to_string(id) + " is outside the model's vocabulary of " +
                    std::to_string(cfg_.vocab_size));
    torch::NoGradGuard no_grad;
    auto t = torch::from_blob(const_cast<int64_t*>(ids.data()), {1, int64_t(ids.size())}, torch::kLong).clone();
    gpt2::Capture cap;
    cap.attention = o.attention;
    for (int64_t l : o.layers) {
      if (l < 0 || l >= cfg_.n_layer)
        throw Error("layer " + std::to_string(l) + " is outside 0.." + std::to_string(cfg_.n_layer - 1));
      cap.layers.resize(size_t(cfg_.n_layer), false);
      cap.layers[size_t(l)] = true;
    }
    cap.qkv = o.qkv;
    cap.hidden = o.hidden;
    auto h = gpt2::forward_hidden(cfg_, w_, t, &cap);
    Trace tr;
    auto first = [](const torch::Tensor& t) { return t.defined() ? to_array(t[0]) : Array{}; };
    for (auto& a : cap.attention_probs) tr.attention.push_back(first(a));
    for (size_t l = 0; l < cap.q.size(); ++l) {
      tr.query.push_back(first(cap.q[l]));
      tr.key.push_back(first(cap.k[l]));
      tr.value.push_back(first(cap.v[l]));
    }
    for (auto& x : cap.hidden_states) tr.hidden.push_back(to_array(x[0]));
    if (o.logits) tr.logits = to_array(gpt2::logits(w_, h)[0]);
    return tr;
  }

 private:
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
  throw Error(ckpt.config().path() + ": unknown model_type '" + type + "' (supported: gpt2)");
}

}  // namespace attnscope
