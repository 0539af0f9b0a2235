#include "gpt2.h"

#include <cmath>

#include "attnscope/error.h"
#include "tensor_util.h"

namespace attnscope::gpt2 {

using torch::indexing::Slice;

Config Config::from(const attnscope::Config& c) {
  Config g;
  g.n_embd = c.get_int("n_embd");
  g.n_head = c.get_int("n_head");
  g.n_layer = c.get_int("n_layer");
  g.n_positions = c.get_int("n_positions");
  g.vocab_size = c.get_int("vocab_size");
  g.n_inner = c.has("n_inner") ? c.get_int("n_inner") : 4 * g.n_embd;
  g.eps = c.get_double("layer_norm_epsilon", 1e-5);
  g.activation = c.get_string("activation_function", "gelu_new");
  g.scale_attn_weights = c.get_bool("scale_attn_weights", true);
  g.scale_by_inverse_layer_idx = c.get_bool("scale_attn_by_inverse_layer_idx", false);
  if (g.n_head == 0 || g.n_embd == 0 || g.n_embd % g.n_head != 0)
    throw Error(c.path() + ": n_embd (" + std::to_string(g.n_embd) + ") must be a positive multiple of n_head (" +
                std::to_string(g.n_head) + ")");
  if (g.n_layer == 0 || g.n_positions == 0 || g.vocab_size == 0)
    throw Error(c.path() + ": n_layer, n_positions and vocab_size must be positive");
  check_activation(g.activation, c.path() + ": activation_function");
  return g;
}

nlohmann::json Config::to_json() const {
  return {{"model_type", "gpt2"},
          {"architectures", {"GPT2LMHeadModel"}},
          {"n_embd", n_embd},
          {"n_head", n_head},
          {"n_layer", n_layer},
          {"n_positions", n_positions},
          {"n_ctx", n_positions},
          {"vocab_size", vocab_size},
          {"n_inner", n_inner},
          {"layer_norm_epsilon", eps},
          {"activation_function", activation},
          {"scale_attn_weights", scale_attn_weights},
          {"scale_attn_by_inverse_layer_idx", scale_by_inverse_layer_idx},
          {"bos_token_id", 50256},
          {"eos_token_id", 50256},
          {"torch_dtype", "float16"}};
}

namespace {

// The one table of GPT-2 tensor names: Hugging Face suffix -> shape. Block names get
// "h.<i>." in front; everything gets the checkpoint's prefix ("transformer." or "").
struct Spec {
  std::string name;
  std::vector<int64_t> shape;
  torch::Tensor* slot;
};

std::vector<Spec> specs(const Config& c, Weights& w) {
  const int64_t D = c.n_embd, I = c.n_inner;
  std::vector<Spec> s{{"wte.weight", {c.vocab_size, D}, &w.wte},
                      {"wpe.weight", {c.n_positions, D}, &w.wpe},
                      {"ln_f.weight", {D}, &w.lnf_w},
                      {"ln_f.bias", {D}, &w.lnf_b}};
  w.h.resize(size_t(c.n_layer));
  for (int64_t i = 0; i < c.n_layer; ++i) {
    Block& b = w.h[size_t(i)];
    const std::string p = "h." + std::to_string(i) + ".";
    for (Spec x : std::vector<Spec>{{"ln_1.weight", {D}, &b.ln1_w},
                                    {"ln_1.bias", {D}, &b.ln1_b},
                                    {"attn.c_attn.weight", {D, 3 * D}, &b.attn_w},
                                    {"attn.c_attn.bias", {3 * D}, &b.attn_b},
                                    {"attn.c_proj.weight", {D, D}, &b.proj_w},
                                    {"attn.c_proj.bias", {D}, &b.proj_b},
                                    {"ln_2.weight", {D}, &b.ln2_w},
                                    {"ln_2.bias", {D}, &b.ln2_b},
                                    {"mlp.c_fc.weight", {D, I}, &b.fc_w},
                                    {"mlp.c_fc.bias", {I}, &b.fc_b},
                                    {"mlp.c_proj.weight", {I, D}, &b.fc2_w},
                                    {"mlp.c_proj.bias", {D}, &b.fc2_b}}) {
      x.name = p + x.name;
      s.push_back(std::move(x));
    }
  }
  return s;
}

}  // namespace

Weights Weights::load(const Checkpoint& ckpt, const Config& c) {
  Weights w;
  std::string prefix;
  if (ckpt.has("transformer.wte.weight"))
    prefix = "transformer.";
  else if (!ckpt.has("wte.weight"))
    throw Error(ckpt.dir() + ": missing tensor 'wte.weight' (also looked for 'transformer.wte.weight')");
  for (Spec& s : specs(c, w)) *s.slot = load_checked(ckpt, prefix + s.name, s.shape);
  if (ckpt.has("lm_head.weight")) {
    w.lm_head = load_checked(ckpt, "lm_head.weight", {c.vocab_size, c.n_embd});
    w.tied = false;
  } else {
    w.lm_head = w.wte;
    w.tied = true;
  }
  return w;
}

Weights Weights::random(const Config& c, uint64_t seed) {
  torch::manual_seed(seed);
  Weights w;
  const double std = 0.02, resid = 0.02 / std::sqrt(2.0 * double(c.n_layer));
  for (Spec& s : specs(c, w)) {
    const std::string& n = s.name;
    auto ends = [&](const char* suf) {
      return n.size() >= strlen(suf) && n.compare(n.size() - strlen(suf), strlen(suf), suf) == 0;
    };
    if (ends("ln_1.weight") || ends("ln_2.weight") || ends("ln_f.weight"))
      *s.slot = torch::ones(s.shape);
    else if (ends(".bias"))
      *s.slot = torch::zeros(s.shape);
    else if (ends("c_proj.weight"))
      *s.slot = torch::randn(s.shape) * resid;
    else
      *s.slot = torch::randn(s.shape) * std;
  }
  w.lm_head = w.wte;
  w.tied = true;
  return w;
}

std::vector<std::pair<std::string, torch::Tensor>> Weights::named() const {
  Weights copy = *this;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  Config c;
  c.n_layer = int64_t(h.size());
  for (Spec& s : specs(c, copy)) out.emplace_back(s.name, *s.slot);
  if (!tied) out.emplace_back("lm_head.weight", lm_head);
  return out;
}

std::vector<torch::Tensor> Weights::parameters() const {
  std::vector<torch::Tensor> out;
  for (auto& [n, t] : named()) out.push_back(t);
  return out;
}

torch::Tensor forward_hidden(const Config& c, const Weights& w, const torch::Tensor& ids, Capture* cap, KvCache* cache,
                             const torch::Tensor& embeds) {
  const int64_t B = ids.size(0), T = ids.size(1), D = c.n_embd, H = c.n_head, hd = c.head_dim();
  const int64_t past = cache ? cache->length() : 0;
  auto pos = torch::arange(past, past + T, torch::kLong);
  torch::Tensor x = (embeds.defined() ? embeds : w.wte.index_select(0, ids.reshape({-1})).view({B, T, D})) +
                    w.wpe.index_select(0, pos);  // (B, T, D)
  if (cap && cap->hidden) cap->hidden_states.push_back(x);
  // Causal mask: key j > query i is masked, so those probabilities are exactly 0.
  auto future = torch::ones({T, past + T}, torch::kBool).triu(past + 1);
  const double scale = c.scale_attn_weights ? 1.0 / std::sqrt(double(hd)) : 1.0;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const Block& b = w.h[size_t(l)];
    auto a = torch::layer_norm(x, {D}, b.ln1_w, b.ln1_b, c.eps);
    auto qkv = torch::addmm(b.attn_b, a.view({B * T, D}), b.attn_w).view({B, T, 3, H, hd});  // (B, T, 3, H, hd)
    auto q = qkv.select(2, 0).permute({0, 2, 1, 3});                                         // (B, H, T, hd)
    auto k = qkv.select(2, 1).permute({0, 2, 1, 3});
    auto v = qkv.select(2, 2).permute({0, 2, 1, 3});
    if (cache) std::tie(k, v) = cache->append(l, c.n_layer, k, v);
    auto scores = torch::matmul(q, k.transpose(-1, -2));  // (B, H, T, T)
    if (c.scale_attn_weights) scores = scores * scale;
    if (c.scale_by_inverse_layer_idx) scores = scores / double(l + 1);
    scores = scores.masked_fill(future, -std::numeric_limits<float>::infinity());
    auto probs = attention_softmax(scores);
    if (cap) cap->keep(l, probs, q, k, v);
    auto o = torch::matmul(probs, v).permute({0, 2, 1, 3}).reshape({B * T, D});  // (B*T, D)
    auto y = torch::addmm(b.proj_b, o, b.proj_w).view({B, T, D});
    auto mid = x + y;
    auto m = torch::layer_norm(mid, {D}, b.ln2_w, b.ln2_b, c.eps);
    auto f = activation(c.activation, torch::addmm(b.fc_b, m.view({B * T, D}), b.fc_w));  // (B*T, I)
    auto z = torch::addmm(b.fc2_b, f, b.fc2_w).view({B, T, D});
    if (cap && cap->lrp) {
      LrpLayer r;
      r.x = x, r.attn_in = a, r.q = q, r.k = k, r.v = v, r.probs = probs, r.ctx = o.view({B, T, D}), r.attn_out = y;
      r.mid = mid, r.mlp_in = m, r.act = f.view({B, T, -1}), r.mlp_out = z;
      // Conv1D stores [in, out]: the q/k/v blocks of c_attn, transposed to nn.Linear's [out, in].
      r.wq = b.attn_w.narrow(1, 0, D).t(), r.wk = b.attn_w.narrow(1, D, D).t(), r.wv = b.attn_w.narrow(1, 2 * D, D).t();
      r.wo = b.proj_w.t(), r.w1 = b.fc_w.t(), r.w2 = b.fc2_w.t();
      cap->lrp_layers.push_back(r);
    }
    x = mid + z;
    if (cap && cap->hidden && l + 1 < c.n_layer) cap->hidden_states.push_back(x);
  }
  x = torch::layer_norm(x, {D}, w.lnf_w, w.lnf_b, c.eps);
  // Hugging Face's last hidden state (index n_layer) is after ln_f.
  if (cap && cap->hidden) cap->hidden_states.push_back(x);
  return x;
}

torch::Tensor logits(const Weights& w, const torch::Tensor& h) {
  return torch::matmul(h, w.lm_head.t());  // (B, T, V)
}

}  // namespace attnscope::gpt2
