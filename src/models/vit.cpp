// ViT (pre-LN encoder over [CLS] + image patches, optional classification head). Math per
// Hugging Face modeling_vit.py; names and shapes per reference/models.md.
#include <cmath>

#include "attnscope/error.h"
#include "common.h"
#include "families.h"
#include "tensor_util.h"

namespace attnscope {

namespace {

struct VitConfig {
  int64_t D = 0, H = 0, L = 0, I = 0, image = 0, patch = 0, C = 3;
  double eps = 1e-12;
  bool qkv_bias = true;
  std::string act = "gelu";
  std::vector<std::string> labels;
  int64_t grid() const { return image / patch; }
  int64_t tokens() const { return grid() * grid() + 1; }

  static VitConfig from(const Config& c) {
    VitConfig v;
    v.D = c.get_int("hidden_size");
    v.H = c.get_int("num_attention_heads");
    v.L = c.get_int("num_hidden_layers");
    v.I = c.get_int("intermediate_size");
    v.image = c.get_int("image_size");
    v.patch = c.get_int("patch_size");
    v.C = c.get_int("num_channels", 3);
    v.eps = c.get_double("layer_norm_eps", 1e-12);
    v.qkv_bias = c.get_bool("qkv_bias", true);
    v.act = c.get_string("hidden_act", "gelu");
    if (v.H <= 0 || v.D <= 0 || v.D % v.H != 0)
      throw Error(c.path() + ": hidden_size (" + std::to_string(v.D) +
                  ") must be a positive multiple of num_attention_heads (" + std::to_string(v.H) + ")");
    if (v.patch <= 0 || v.image <= 0 || v.image % v.patch != 0)
      throw Error(c.path() + ": image_size (" + std::to_string(v.image) +
                  ") must be a positive multiple of patch_size (" + std::to_string(v.patch) + ")");
    if (v.C != 1 && v.C != 3) throw Error(c.path() + ": num_channels " + std::to_string(v.C) + ": expected 1 or 3");
    check_activation(v.act, c.path() + ": hidden_act");
    const auto& j = c.json();
    if (j.contains("id2label") && j["id2label"].is_object()) {
      for (auto& [k, name] : j["id2label"].items()) {
        int64_t idx = -1;
        try {
          idx = std::stoll(k);
        } catch (...) {
        }
        if (idx < 0 || idx > 1000000 || !name.is_string())
          throw Error(c.path() + ": id2label: expected {\"index\": \"name\"}, found key '" + k + "'");
        if (size_t(idx) >= v.labels.size()) v.labels.resize(size_t(idx) + 1);
        v.labels[size_t(idx)] = name.get<std::string>();
      }
    }
    return v;
  }
};

struct Layer {
  torch::Tensor ln1_w, ln1_b, q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b, ln2_w, ln2_b, f1_w, f1_b, f2_w, f2_b;
};

struct Weights {
  torch::Tensor cls, pos, proj_w, proj_b, ln_w, ln_b, cls_w, cls_b;
  std::vector<Layer> layers;
};

struct Spec {
  std::string name;
  std::vector<int64_t> shape;
  torch::Tensor* slot;
};

std::vector<Spec> specs(const VitConfig& c, Weights& w) {
  const int64_t D = c.D, I = c.I;
  std::vector<Spec> s{{"embeddings.cls_token", {1, 1, D}, &w.cls},
                      {"embeddings.position_embeddings", {1, c.tokens(), D}, &w.pos},
                      {"embeddings.patch_embeddings.projection.weight", {D, c.C, c.patch, c.patch}, &w.proj_w},
                      {"embeddings.patch_embeddings.projection.bias", {D}, &w.proj_b},
                      {"layernorm.weight", {D}, &w.ln_w},
                      {"layernorm.bias", {D}, &w.ln_b}};
  w.layers.resize(size_t(c.L));
  for (int64_t i = 0; i < c.L; ++i) {
    Layer& l = w.layers[size_t(i)];
    const std::string p = "encoder.layer." + std::to_string(i) + ".";
    std::vector<Spec> ls{{"layernorm_before.weight", {D}, &l.ln1_w},
                         {"layernorm_before.bias", {D}, &l.ln1_b},
                         {"attention.attention.query.weight", {D, D}, &l.q_w},
                         {"attention.attention.key.weight", {D, D}, &l.k_w},
                         {"attention.attention.value.weight", {D, D}, &l.v_w},
                         {"attention.output.dense.weight", {D, D}, &l.o_w},
                         {"attention.output.dense.bias", {D}, &l.o_b},
                         {"layernorm_after.weight", {D}, &l.ln2_w},
                         {"layernorm_after.bias", {D}, &l.ln2_b},
                         {"intermediate.dense.weight", {I, D}, &l.f1_w},
                         {"intermediate.dense.bias", {I}, &l.f1_b},
                         {"output.dense.weight", {D, I}, &l.f2_w},
                         {"output.dense.bias", {D}, &l.f2_b}};
    if (c.qkv_bias)
      ls.insert(ls.end(), {{"attention.attention.query.bias", {D}, &l.q_b},
                           {"attention.attention.key.bias", {D}, &l.k_b},
                           {"attention.attention.value.bias", {D}, &l.v_b}});
    for (Spec& x : ls) {
      x.name = p + x.name;
      s.push_back(std::move(x));
    }
  }
  return s;
}

class VitModel final : public Model {
 public:
  explicit VitModel(const Checkpoint& ck) : cfg_(VitConfig::from(ck.config())) {
    std::string prefix = "vit.";
    if (!ck.has(prefix + "embeddings.cls_token")) {
      if (!ck.has("embeddings.cls_token"))
        throw Error(ck.dir() + ": missing tensor 'embeddings.cls_token' (also looked for 'vit.embeddings.cls_token')");
      prefix.clear();
    }
    for (Spec& s : specs(cfg_, w_)) *s.slot = load_checked(ck, prefix + s.name, s.shape);
    if (ck.has("classifier.weight")) {
      const int64_t n = ck.info("classifier.weight").shape.empty() ? 0 : ck.info("classifier.weight").shape[0];
      w_.cls_w = load_checked(ck, "classifier.weight", {n, cfg_.D});
      w_.cls_b = load_checked(ck, "classifier.bias", {n});
      labels_.resize(size_t(n));
      for (int64_t i = 0; i < n; ++i)
        labels_[size_t(i)] = size_t(i) < cfg_.labels.size() && !cfg_.labels[size_t(i)].empty()
                                 ? cfg_.labels[size_t(i)]
                                 : "LABEL_" + std::to_string(i);
    }
    info_.family = "vit";
    info_.model_type = ck.model_type();
    info_.n_layers = cfg_.L;
    info_.n_heads = info_.n_kv_heads = cfg_.H;
    info_.head_dim = cfg_.D / cfg_.H;
    info_.d_model = cfg_.D;
    info_.d_ff = cfg_.I;
    info_.vocab_size = 0;
    info_.max_positions = cfg_.tokens();
    info_.causal = false;
    info_.activation = cfg_.act;
    info_.head = w_.cls_w.defined() ? "classifier" : "";
    info_.labels = labels_;
    info_.tied_head = false;
    info_.image = true;
    info_.image_size = cfg_.image;
    info_.patch_size = cfg_.patch;
    info_.channels = cfg_.C;
    info_.weight_dtype = dtype_name(ck.info(prefix + "embeddings.cls_token").dtype);
    for (Spec& s : specs(cfg_, w_)) info_.n_params += s.slot->numel();
    if (w_.cls_w.defined()) info_.n_params += w_.cls_w.numel() + w_.cls_b.numel();
  }

  const ModelInfo& info() const override { return info_; }

  Trace forward(const ModelInput& in, const TraceOptions& o) const override {
    check_pixels(in);
    if (o.logits && !w_.cls_w.defined())
      throw Error("the checkpoint has no classification head (expected classifier.weight)");
    torch::NoGradGuard no_grad;
    Capture cap = capture_for(o, cfg_.L);
    auto px =
        torch::from_blob(const_cast<float*>(in.pixels.ptr()), {1, cfg_.C, cfg_.image, cfg_.image}, torch::kFloat32);
    auto logits = run(px, &cap, o.logits);
    return to_trace(cap, logits);
  }

  Array features(const ModelInput& in) const override {
    check_pixels(in);
    return in.pixels;
  }

  Gradients gradients(const ModelInput& in, const std::vector<Array>& batch, const Target& t,
                      const GradientOptions& o) const override {
    check_pixels(in);
    if (!w_.cls_w.defined()) throw Error("the checkpoint has no classification head (expected classifier.weight)");
    auto fn = [&](const torch::Tensor& x, Capture* cap) { return run(x, cap, true); };
    return gradients_with(fn, {cfg_.C, cfg_.image, cfg_.image}, batch, t, o, cfg_.L, int64_t(labels_.size()), 1);
  }

  Relevance relevance(const ModelInput& in, const Target& t) const override {
    if (!w_.cls_w.defined()) throw Error("the checkpoint has no classification head (expected classifier.weight)");
    auto fn = [&](const torch::Tensor& x, Capture* cap) { return run(x, cap, true); };
    return relevance_with(fn, features(in), t, cfg_.L, int64_t(labels_.size()), 1);
  }

 private:
  void check_pixels(const ModelInput& in) const {
    const std::vector<int64_t> want{cfg_.C, cfg_.image, cfg_.image};
    if (in.pixels.empty()) throw Error("input: a ViT model takes an image (--image), found text");
    if (in.pixels.shape != want)
      throw Error("input: expected pixels of shape " + shape_str(want) + ", found " + shape_str(in.pixels.shape));
  }
  // px: [B, C, H, W] -> logits [B, classes] (undefined without with_logits).
  torch::Tensor run(const torch::Tensor& px, Capture* cap, bool with_logits) const {
    const int64_t B = px.size(0), D = cfg_.D, H = cfg_.H, hd = D / H, T = cfg_.tokens();
    auto patches = torch::conv2d(px, w_.proj_w, w_.proj_b, {cfg_.patch, cfg_.patch});                 // (B, D, g, g)
    auto x = torch::cat({w_.cls.expand({B, 1, D}), patches.flatten(2).transpose(1, 2)}, 1) + w_.pos;  // (B, T, D)
    if (cap->hidden) cap->hidden_states.push_back(x);
    const double scale = 1.0 / std::sqrt(double(hd));
    auto heads = [&](const torch::Tensor& t) { return t.view({B, T, H, hd}).permute({0, 2, 1, 3}); };
    for (int64_t i = 0; i < cfg_.L; ++i) {
      const Layer& l = w_.layers[size_t(i)];
      auto a = torch::layer_norm(x, {D}, l.ln1_w, l.ln1_b, cfg_.eps);
      auto q = heads(linear(a, l.q_w, l.q_b)), k = heads(linear(a, l.k_w, l.k_b)), v = heads(linear(a, l.v_w, l.v_b));
      auto probs = attention_softmax(torch::matmul(q, k.transpose(-1, -2)) * scale);
      cap->keep(i, probs, q, k, v);
      auto ctx = torch::matmul(probs, v).permute({0, 2, 1, 3}).reshape({B, T, D});
      auto y = linear(ctx, l.o_w, l.o_b);
      auto mid = x + y;
      auto m = torch::layer_norm(mid, {D}, l.ln2_w, l.ln2_b, cfg_.eps);
      auto g = activation(cfg_.act, linear(m, l.f1_w, l.f1_b));
      auto z = linear(g, l.f2_w, l.f2_b);
      if (cap->lrp) {
        LrpLayer r;
        r.x = x, r.attn_in = a, r.q = q, r.k = k, r.v = v, r.probs = probs, r.ctx = ctx, r.attn_out = y;
        r.mid = mid, r.mlp_in = m, r.act = g, r.mlp_out = z;
        r.wq = l.q_w, r.wk = l.k_w, r.wv = l.v_w, r.wo = l.o_w, r.w1 = l.f1_w, r.w2 = l.f2_w;
        cap->lrp_layers.push_back(r);
      }
      x = mid + z;
      if (cap->hidden) cap->hidden_states.push_back(x);  // Hugging Face's hidden states are before the final norm
    }
    torch::Tensor logits;
    if (with_logits) {
      auto out = torch::layer_norm(x, {D}, w_.ln_w, w_.ln_b, cfg_.eps);
      logits = linear(out.select(1, 0), w_.cls_w, w_.cls_b);  // (B, classes) from [CLS]
      if (cap->lrp) {
        cap->lrp_head = {{out.select(1, 0), w_.cls_w}};
        cap->lrp_position = 0;
      }
    }
    return logits;
  }

  VitConfig cfg_;
  Weights w_;
  std::vector<std::string> labels_;
  ModelInfo info_;
};

}  // namespace

std::unique_ptr<Model> make_vit(const Checkpoint& ckpt) { return std::make_unique<VitModel>(ckpt); }

}  // namespace attnscope
