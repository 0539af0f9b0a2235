// The Llama family: llama, qwen2, mistral (pre-RMSNorm decoders with RoPE in the Hugging Face
// rotate_half layout, grouped-query attention and a SwiGLU MLP). Math per Hugging Face
// modeling_llama.py / modeling_qwen2.py; names and shapes per reference/models.md.
#include <cmath>

#include "attnscope/error.h"
#include "common.h"
#include "families.h"
#include "tensor_util.h"

namespace attnscope {

namespace {

struct LlamaConfig {
  int64_t D = 0, H = 0, KV = 0, hd = 0, L = 0, I = 0, V = 0, P = 0;
  double eps = 1e-6, theta = 10000.0;
  bool tied = false, qkv_bias = false, o_bias = false, mlp_bias = false;
  std::string act = "silu";
  // RoPE frequency scaling.
  std::string rope_type = "default";
  double factor = 1.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  int64_t original_max = 0;

  static LlamaConfig from(const Config& c) {
    LlamaConfig l;
    const std::string type = c.get_string("model_type");
    l.D = c.get_int("hidden_size");
    l.H = c.get_int("num_attention_heads");
    l.KV = c.get_int("num_key_value_heads", l.H);
    l.L = c.get_int("num_hidden_layers");
    l.I = c.get_int("intermediate_size");
    l.V = c.get_int("vocab_size");
    l.P = c.get_int("max_position_embeddings");
    if (l.H <= 0 || l.D <= 0) throw Error(c.path() + ": hidden_size and num_attention_heads must be positive");
    l.hd = c.get_int("head_dim", l.D / l.H);
    l.eps = c.get_double("rms_norm_eps", 1e-6);
    l.theta = c.get_double("rope_theta", 10000.0);
    l.tied = c.get_bool("tie_word_embeddings", false);
    l.act = c.get_string("hidden_act", "silu");
    // Qwen2 always has q/k/v biases; Llama has attention_bias (q/k/v/o) and mlp_bias.
    l.qkv_bias = type == "qwen2" || c.get_bool("attention_bias", false);
    l.o_bias = type != "qwen2" && c.get_bool("attention_bias", false);
    l.mlp_bias = c.get_bool("mlp_bias", false);
    if (l.KV <= 0 || l.H % l.KV != 0)
      throw Error(c.path() + ": num_attention_heads (" + std::to_string(l.H) +
                  ") must be a multiple of num_key_value_heads (" + std::to_string(l.KV) + ")");
    if (l.hd <= 0 || l.hd % 2 != 0)
      throw Error(c.path() + ": head_dim must be a positive even number (RoPE rotates pairs)");
    if (l.L <= 0 || l.I <= 0 || l.V <= 0 || l.P <= 0)
      throw Error(c.path() +
                  ": num_hidden_layers, intermediate_size, vocab_size and max_position_embeddings must be positive");
    if (c.get_double("partial_rotary_factor", 1.0) != 1.0)
      throw Error(c.path() + ": partial_rotary_factor other than 1 is not supported");
    check_activation(l.act, c.path() + ": hidden_act");
    const nlohmann::json& j = c.json();
    if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
      const auto& s = j["rope_scaling"];
      l.rope_type =
          s.contains("rope_type") ? s["rope_type"].get<std::string>() : s.value("type", std::string("default"));
      auto num = [&](const char* k, double dflt) {
        if (!s.contains(k)) return dflt;
        if (!s[k].is_number()) throw Error(c.path() + ": rope_scaling." + k + ": expected a number");
        return s[k].get<double>();
      };
      l.factor = num("factor", 1.0);
      if (l.rope_type == "llama3") {
        l.low_freq_factor = num("low_freq_factor", 1.0);
        l.high_freq_factor = num("high_freq_factor", 4.0);
        l.original_max = int64_t(num("original_max_position_embeddings", 8192));
        if (l.high_freq_factor <= l.low_freq_factor)
          throw Error(c.path() + ": rope_scaling: high_freq_factor must exceed low_freq_factor");
      } else if (l.rope_type != "linear" && l.rope_type != "default") {
        throw Error(c.path() + ": rope_scaling type '" + l.rope_type +
                    "' is not supported (supported: default, linear, llama3)");
      }
      if (!(l.factor > 0)) throw Error(c.path() + ": rope_scaling.factor must be positive");
    }
    return l;
  }

  // inv_freq per rotated pair, after the configured scaling (double precision).
  torch::Tensor inv_freq() const {
    auto f = 1.0 / torch::pow(theta, torch::arange(0, hd, 2, torch::kFloat64) / double(hd));
    if (rope_type == "linear") return f / factor;
    if (rope_type == "llama3") {
      const double lo_wl = double(original_max) / low_freq_factor, hi_wl = double(original_max) / high_freq_factor;
      auto wl = 2 * M_PI / f;
      auto f_l = torch::where(wl > lo_wl, f / factor, f);
      auto smooth = (double(original_max) / wl - low_freq_factor) / (high_freq_factor - low_freq_factor);
      auto smoothed = (1 - smooth) * f_l / factor + smooth * f_l;
      auto medium = (wl >= hi_wl).logical_and(wl <= lo_wl);
      return torch::where(medium, smoothed, f_l);
    }
    return f;
  }
};

struct Layer {
  torch::Tensor in_norm, post_norm, q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b, gate_w, gate_b, up_w, up_b, down_w, down_b;
};

struct Weights {
  torch::Tensor embed, norm, lm_head;
  std::vector<Layer> layers;
};

struct Spec {
  std::string name;
  std::vector<int64_t> shape;
  torch::Tensor* slot;
};

// The one table of Llama-family names.
std::vector<Spec> specs(const LlamaConfig& c, Weights& w) {
  const int64_t D = c.D, Q = c.H * c.hd, K = c.KV * c.hd, I = c.I;
  std::vector<Spec> s{{"model.embed_tokens.weight", {c.V, D}, &w.embed}, {"model.norm.weight", {D}, &w.norm}};
  w.layers.resize(size_t(c.L));
  for (int64_t i = 0; i < c.L; ++i) {
    Layer& l = w.layers[size_t(i)];
    const std::string p = "model.layers." + std::to_string(i) + ".";
    std::vector<Spec> ls{
        {"input_layernorm.weight", {D}, &l.in_norm}, {"post_attention_layernorm.weight", {D}, &l.post_norm},
        {"self_attn.q_proj.weight", {Q, D}, &l.q_w}, {"self_attn.k_proj.weight", {K, D}, &l.k_w},
        {"self_attn.v_proj.weight", {K, D}, &l.v_w}, {"self_attn.o_proj.weight", {D, Q}, &l.o_w},
        {"mlp.gate_proj.weight", {I, D}, &l.gate_w}, {"mlp.up_proj.weight", {I, D}, &l.up_w},
        {"mlp.down_proj.weight", {D, I}, &l.down_w}};
    if (c.qkv_bias)
      ls.insert(ls.end(), {{"self_attn.q_proj.bias", {Q}, &l.q_b},
                           {"self_attn.k_proj.bias", {K}, &l.k_b},
                           {"self_attn.v_proj.bias", {K}, &l.v_b}});
    if (c.o_bias) ls.push_back({"self_attn.o_proj.bias", {D}, &l.o_b});
    if (c.mlp_bias)
      ls.insert(ls.end(), {{"mlp.gate_proj.bias", {I}, &l.gate_b},
                           {"mlp.up_proj.bias", {I}, &l.up_b},
                           {"mlp.down_proj.bias", {D}, &l.down_b}});
    for (Spec& x : ls) {
      x.name = p + x.name;
      s.push_back(std::move(x));
    }
  }
  return s;
}

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  return w * (x * torch::rsqrt(x.pow(2).mean(-1, true) + eps));
}

torch::Tensor rotate_half(const torch::Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
}

class LlamaModel final : public Model {
 public:
  explicit LlamaModel(const Checkpoint& ck) : cfg_(LlamaConfig::from(ck.config())) {
    for (Spec& s : specs(cfg_, w_)) *s.slot = load_checked(ck, s.name, s.shape);
    if (ck.has("lm_head.weight")) {
      w_.lm_head = load_checked(ck, "lm_head.weight", {cfg_.V, cfg_.D});
    } else if (cfg_.tied) {
      w_.lm_head = w_.embed;
    } else {
      throw Error(ck.dir() + ": missing tensor 'lm_head.weight' (config.json has tie_word_embeddings false)");
    }
    inv_freq_ = cfg_.inv_freq();
    info_.family = "llama";
    info_.model_type = ck.model_type();
    info_.n_layers = cfg_.L;
    info_.n_heads = cfg_.H;
    info_.n_kv_heads = cfg_.KV;
    info_.head_dim = cfg_.hd;
    info_.d_model = cfg_.D;
    info_.d_ff = cfg_.I;
    info_.vocab_size = cfg_.V;
    info_.max_positions = cfg_.P;
    info_.causal = true;
    info_.activation = cfg_.act;
    info_.head = "lm";
    info_.eos_ids = eos_ids_of(ck.config());
    info_.tied_head = !ck.has("lm_head.weight");
    info_.weight_dtype = dtype_name(ck.info("model.embed_tokens.weight").dtype);
    for (Spec& s : specs(cfg_, w_)) info_.n_params += s.slot->numel();
    if (!info_.tied_head) info_.n_params += w_.lm_head.numel();
  }

  const ModelInfo& info() const override { return info_; }

  Trace forward(const ModelInput& in, const TraceOptions& o) const override {
    check_tokens(in, cfg_.V, cfg_.P, "max_position_embeddings", 0);
    torch::NoGradGuard no_grad;
    Capture cap = capture_for(o, cfg_.L);
    auto h = step(ids_tensor(in.ids), nullptr, &cap);
    return to_trace(cap, o.logits ? torch::matmul(h, w_.lm_head.t()) : torch::Tensor());
  }

  Generation generate(const std::vector<int64_t>& prompt, const GenerateOptions& o,
                      const std::function<bool(const std::vector<int64_t>&)>& stop) const override {
    auto fn = [this](const torch::Tensor& ids, KvCache* cache, Capture* cap) {
      return torch::matmul(step(ids, cache, cap), w_.lm_head.t());
    };
    return generate_with(fn, info_, prompt, o, stop);
  }

  Array features(const ModelInput& in) const override {
    check_tokens(in, cfg_.V, cfg_.P, "max_position_embeddings", 0);
    torch::NoGradGuard no_grad;
    return array_of(w_.embed.index_select(0, ids_tensor(in.ids).reshape({-1})));  // (T, D)
  }

  Gradients gradients(const ModelInput& in, const std::vector<Array>& batch, const Target& t,
                      const GradientOptions& o) const override {
    check_tokens(in, cfg_.V, cfg_.P, "max_position_embeddings", 0);
    const int64_t T = int64_t(in.ids.size());
    return gradients_with(run_on(in), {T, cfg_.D}, batch, t, o, cfg_.L, cfg_.V, T);
  }

  Relevance relevance(const ModelInput& in, const Target& t) const override {
    return relevance_with(run_on(in), features(in), t, cfg_.L, cfg_.V, int64_t(in.ids.size()));
  }

 private:
  // Logits from token embeddings x [B, T, D] of the input's tokens (the head recorded for LRP).
  std::function<torch::Tensor(const torch::Tensor&, Capture*)> run_on(const ModelInput& in) const {
    return [this, ids = ids_tensor(in.ids)](const torch::Tensor& x, Capture* cap) {
      auto h = step(ids.expand({x.size(0), ids.size(1)}), nullptr, cap, x);
      if (cap->lrp) cap->lrp_head = {{h, w_.lm_head}};
      return torch::matmul(cap->head_position >= 0 ? h.narrow(1, cap->head_position, 1) : h, w_.lm_head.t());
    };
  }

  // Runs ids [B, T_new] after the cached positions; appends to the cache when given.
  // embeds: optional token embeddings [B, T, D] used instead of looking ids up (gradients).
  torch::Tensor step(const torch::Tensor& ids, KvCache* cache, Capture* cap, const torch::Tensor& embeds = {}) const {
    const int64_t B = ids.size(0), T = ids.size(1), H = cfg_.H, KV = cfg_.KV, hd = cfg_.hd;
    const int64_t past = cache ? cache->length() : 0, total = past + T;
    auto x = embeds.defined() ? embeds : w_.embed.index_select(0, ids.reshape({-1})).view({B, T, cfg_.D});
    if (cap && cap->hidden) cap->hidden_states.push_back(x);
    // cos/sin of the new positions, computed in double then rounded once.
    auto freqs = torch::outer(torch::arange(past, total, torch::kFloat64), inv_freq_);
    auto emb = torch::cat({freqs, freqs}, -1);
    auto cos = emb.cos().to(torch::kFloat32), sin = emb.sin().to(torch::kFloat32);  // (T, hd)
    // Causal over all keys: new query i (absolute past + i) sees keys 0..past + i.
    auto future = torch::ones({T, total}, torch::kBool).triu(past + 1);
    const double scale = 1.0 / std::sqrt(double(hd));
    const int64_t rep = H / KV;
    for (int64_t i = 0; i < cfg_.L; ++i) {
      const Layer& l = w_.layers[size_t(i)];
      auto a = rms_norm(x, l.in_norm, cfg_.eps);
      auto q = linear(a, l.q_w, l.q_b).view({B, T, H, hd}).permute({0, 2, 1, 3});  // (B, H, T, hd)
      auto k = linear(a, l.k_w, l.k_b).view({B, T, KV, hd}).permute({0, 2, 1, 3});
      auto v = linear(a, l.v_w, l.v_b).view({B, T, KV, hd}).permute({0, 2, 1, 3});
      auto q_pre = q, k_pre = k;
      q = q * cos + rotate_half(q) * sin;
      k = k * cos + rotate_half(k) * sin;
      if (cache) std::tie(k, v) = cache->append(i, cfg_.L, k, v);
      // repeat_kv: key/value head h / rep serves query head h.
      auto kx = rep == 1 ? k : k.repeat_interleave(rep, 1);
      auto vx = rep == 1 ? v : v.repeat_interleave(rep, 1);
      auto scores = torch::matmul(q, kx.transpose(-1, -2)) * scale;  // (B, H, T, total)
      scores = scores.masked_fill(future, -std::numeric_limits<float>::infinity());
      auto probs = attention_softmax(scores);
      if (cap) cap->keep(i, probs, q, kx, vx);
      auto o = torch::matmul(probs, vx).permute({0, 2, 1, 3}).reshape({B, T, H * hd});
      auto y = linear(o, l.o_w, l.o_b);
      auto mid = x + y;
      auto m = rms_norm(mid, l.post_norm, cfg_.eps);
      auto gate = activation(cfg_.act, linear(m, l.gate_w, l.gate_b)), up = linear(m, l.up_w, l.up_b);
      auto f = gate * up;
      auto z = linear(f, l.down_w, l.down_b);
      if (cap && cap->lrp && !cache) {
        LrpLayer r;
        r.x = x, r.attn_in = a, r.q = q, r.k = k, r.v = v, r.q_pre = q_pre, r.k_pre = k_pre, r.cos = cos, r.sin = sin;
        r.probs = probs, r.ctx = o, r.attn_out = y, r.mid = mid, r.mlp_in = m, r.gate = gate, r.up = up, r.act = f;
        r.mlp_out = z, r.wq = l.q_w, r.wk = l.k_w, r.wv = l.v_w, r.wo = l.o_w, r.w1 = l.gate_w, r.w_up = l.up_w;
        r.w2 = l.down_w;
        cap->lrp_layers.push_back(r);
      }
      x = mid + z;
      if (cap && cap->hidden && i + 1 < cfg_.L) cap->hidden_states.push_back(x);
    }
    x = rms_norm(x, w_.norm, cfg_.eps);
    if (cap && cap->hidden) cap->hidden_states.push_back(x);
    return x;
  }

  LlamaConfig cfg_;
  Weights w_;
  torch::Tensor inv_freq_;
  ModelInfo info_;
};

}  // namespace

std::unique_ptr<Model> make_llama_family(const Checkpoint& ckpt) { return std::make_unique<LlamaModel>(ckpt); }

}  // namespace attnscope
