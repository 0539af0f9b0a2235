// The BERT family: BERT, RoBERTa, DistilBERT (post-LN encoders, bidirectional attention,
// optional masked-LM head). Math per Hugging Face modeling_bert.py, modeling_roberta.py and
// modeling_distilbert.py; names and shapes per reference/models.md, in one table per family.
#include <cmath>

#include "attnscope/error.h"
#include "common.h"
#include "families.h"
#include "tensor_util.h"

namespace attnscope {

namespace {

enum class Kind { Bert, Roberta, Distil };

struct BertConfig {
  Kind kind = Kind::Bert;
  int64_t D = 0, H = 0, L = 0, I = 0, V = 0, P = 0, types = 0, pad = 0;
  double eps = 1e-12;
  std::string act = "gelu";
  int64_t hd() const { return D / H; }
  // Positions an input may use: RoBERTa numbers them from pad + 1.
  int64_t max_tokens() const { return kind == Kind::Roberta ? P - pad - 1 : P; }

  static BertConfig from(const Config& c) {
    BertConfig b;
    const std::string t = c.get_string("model_type");
    if (t == "distilbert") {
      b.kind = Kind::Distil;
      b.D = c.get_int("dim");
      b.H = c.get_int("n_heads");
      b.L = c.get_int("n_layers");
      b.I = c.get_int("hidden_dim");
      b.act = c.get_string("activation", "gelu");
      b.types = 0;
    } else {
      b.kind = t == "roberta" ? Kind::Roberta : Kind::Bert;
      b.D = c.get_int("hidden_size");
      b.H = c.get_int("num_attention_heads");
      b.L = c.get_int("num_hidden_layers");
      b.I = c.get_int("intermediate_size");
      b.act = c.get_string("hidden_act", "gelu");
      b.eps = c.get_double("layer_norm_eps", 1e-12);
      b.types = c.has("type_vocab_size") ? c.get_int("type_vocab_size") : 2;
      b.pad = c.has("pad_token_id") ? c.get_int("pad_token_id") : (b.kind == Kind::Roberta ? 1 : 0);
      const std::string pe = c.get_string("position_embedding_type", "absolute");
      if (pe != "absolute")
        throw Error(c.path() + ": position_embedding_type '" + pe + "' is not supported (expected absolute)");
    }
    b.V = c.get_int("vocab_size");
    b.P = c.get_int("max_position_embeddings");
    if (b.H <= 0 || b.D <= 0 || b.D % b.H != 0)
      throw Error(c.path() + ": the hidden size (" + std::to_string(b.D) +
                  ") must be a positive multiple of the number of heads (" + std::to_string(b.H) + ")");
    if (b.L <= 0 || b.V <= 0 || b.P <= 0 || b.I <= 0)
      throw Error(c.path() +
                  ": layers, vocab_size, max_position_embeddings and the intermediate size must be positive");
    if (b.max_tokens() <= 0)
      throw Error(c.path() + ": max_position_embeddings " + std::to_string(b.P) +
                  " leaves no positions after pad_token_id " + std::to_string(b.pad));
    check_activation(b.act, c.path() + (b.kind == Kind::Distil ? ": activation" : ": hidden_act"));
    return b;
  }
};

struct Layer {
  torch::Tensor q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b, ln1_w, ln1_b, f1_w, f1_b, f2_w, f2_b, ln2_w, ln2_b;
};

struct Weights {
  torch::Tensor word, pos, type, ln_w, ln_b;
  std::vector<Layer> layers;
  bool mlm = false, tied = true;
  torch::Tensor t_w, t_b, t_ln_w, t_ln_b, decoder, decoder_b;  // masked-LM head
};

struct Spec {
  std::string name;
  std::vector<int64_t> shape;
  torch::Tensor* slot;
};

// The one table of names per family (without the task prefix).
std::vector<Spec> specs(const BertConfig& c, Weights& w) {
  const int64_t D = c.D, I = c.I;
  std::vector<Spec> s{{"embeddings.word_embeddings.weight", {c.V, D}, &w.word},
                      {"embeddings.position_embeddings.weight", {c.P, D}, &w.pos},
                      {"embeddings.LayerNorm.weight", {D}, &w.ln_w},
                      {"embeddings.LayerNorm.bias", {D}, &w.ln_b}};
  if (c.kind != Kind::Distil) s.push_back({"embeddings.token_type_embeddings.weight", {c.types, D}, &w.type});
  w.layers.resize(size_t(c.L));
  for (int64_t i = 0; i < c.L; ++i) {
    Layer& l = w.layers[size_t(i)];
    std::vector<Spec> ls;
    std::string p;
    if (c.kind == Kind::Distil) {
      p = "transformer.layer." + std::to_string(i) + ".";
      ls = {{"attention.q_lin.weight", {D, D}, &l.q_w},   {"attention.q_lin.bias", {D}, &l.q_b},
            {"attention.k_lin.weight", {D, D}, &l.k_w},   {"attention.k_lin.bias", {D}, &l.k_b},
            {"attention.v_lin.weight", {D, D}, &l.v_w},   {"attention.v_lin.bias", {D}, &l.v_b},
            {"attention.out_lin.weight", {D, D}, &l.o_w}, {"attention.out_lin.bias", {D}, &l.o_b},
            {"sa_layer_norm.weight", {D}, &l.ln1_w},      {"sa_layer_norm.bias", {D}, &l.ln1_b},
            {"ffn.lin1.weight", {I, D}, &l.f1_w},         {"ffn.lin1.bias", {I}, &l.f1_b},
            {"ffn.lin2.weight", {D, I}, &l.f2_w},         {"ffn.lin2.bias", {D}, &l.f2_b},
            {"output_layer_norm.weight", {D}, &l.ln2_w},  {"output_layer_norm.bias", {D}, &l.ln2_b}};
    } else {
      p = "encoder.layer." + std::to_string(i) + ".";
      ls = {{"attention.self.query.weight", {D, D}, &l.q_w},
            {"attention.self.query.bias", {D}, &l.q_b},
            {"attention.self.key.weight", {D, D}, &l.k_w},
            {"attention.self.key.bias", {D}, &l.k_b},
            {"attention.self.value.weight", {D, D}, &l.v_w},
            {"attention.self.value.bias", {D}, &l.v_b},
            {"attention.output.dense.weight", {D, D}, &l.o_w},
            {"attention.output.dense.bias", {D}, &l.o_b},
            {"attention.output.LayerNorm.weight", {D}, &l.ln1_w},
            {"attention.output.LayerNorm.bias", {D}, &l.ln1_b},
            {"intermediate.dense.weight", {I, D}, &l.f1_w},
            {"intermediate.dense.bias", {I}, &l.f1_b},
            {"output.dense.weight", {D, I}, &l.f2_w},
            {"output.dense.bias", {D}, &l.f2_b},
            {"output.LayerNorm.weight", {D}, &l.ln2_w},
            {"output.LayerNorm.bias", {D}, &l.ln2_b}};
    }
    for (Spec& x : ls) {
      x.name = p + x.name;
      s.push_back(std::move(x));
    }
  }
  return s;
}

// Masked-LM head names (never prefixed): dense, layer norm, decoder bias; the decoder weight is
// tied to the word embeddings unless the file has its own.
struct HeadNames {
  const char *dense, *ln, *bias, *bias_alt, *decoder;
};
HeadNames head_names(Kind k) {
  switch (k) {
    case Kind::Bert:
      return {"cls.predictions.transform.dense", "cls.predictions.transform.LayerNorm", "cls.predictions.bias",
              "cls.predictions.decoder.bias", "cls.predictions.decoder.weight"};
    case Kind::Roberta:
      return {"lm_head.dense", "lm_head.layer_norm", "lm_head.bias", "lm_head.decoder.bias", "lm_head.decoder.weight"};
    case Kind::Distil:
      return {"vocab_transform", "vocab_layer_norm", "vocab_projector.bias", "vocab_projector.bias",
              "vocab_projector.weight"};
  }
  return {};
}

const char* prefix_of(Kind k) { return k == Kind::Bert ? "bert." : k == Kind::Roberta ? "roberta." : "distilbert."; }

// Old (TensorFlow-converted) BERT checkpoints name LayerNorm parameters gamma/beta.
std::string resolve(const Checkpoint& ck, const std::string& name) {
  if (ck.has(name)) return name;
  auto swap = [&](const std::string& from, const std::string& to) -> std::string {
    if (name.size() > from.size() && name.compare(name.size() - from.size(), from.size(), from) == 0 &&
        name.find("LayerNorm") != std::string::npos)
      return name.substr(0, name.size() - from.size()) + to;
    return "";
  };
  for (const std::string& alt : {swap(".weight", ".gamma"), swap(".bias", ".beta")})
    if (!alt.empty() && ck.has(alt)) return alt;
  return name;  // load_checked names the missing tensor
}

Weights load_weights(const Checkpoint& ck, const BertConfig& c, std::string& prefix) {
  Weights w;
  prefix = prefix_of(c.kind);
  if (!ck.has(prefix + "embeddings.word_embeddings.weight")) {
    if (!ck.has("embeddings.word_embeddings.weight"))
      throw Error(ck.dir() + ": missing tensor 'embeddings.word_embeddings.weight' (also looked for '" + prefix +
                  "embeddings.word_embeddings.weight')");
    prefix.clear();
  }
  for (Spec& s : specs(c, w)) *s.slot = load_checked(ck, resolve(ck, prefix + s.name), s.shape);
  HeadNames h = head_names(c.kind);
  const std::string dense = std::string(h.dense);
  if (ck.has(dense + ".weight")) {
    w.mlm = true;
    w.t_w = load_checked(ck, dense + ".weight", {c.D, c.D});
    w.t_b = load_checked(ck, dense + ".bias", {c.D});
    w.t_ln_w = load_checked(ck, resolve(ck, std::string(h.ln) + ".weight"), {c.D});
    w.t_ln_b = load_checked(ck, resolve(ck, std::string(h.ln) + ".bias"), {c.D});
    w.decoder_b = load_checked(ck, ck.has(h.bias) ? h.bias : h.bias_alt, {c.V});
    if (ck.has(h.decoder)) {
      w.decoder = load_checked(ck, h.decoder, {c.V, c.D});
      w.tied = false;
    } else {
      w.decoder = w.word;
    }
  }
  return w;
}

// embeds: optional word embeddings [B, T, D] used instead of looking ids up (gradients).
torch::Tensor forward_hidden(const BertConfig& c, const Weights& w, const torch::Tensor& ids,
                             const torch::Tensor& types, Capture* cap, const torch::Tensor& embeds = {}) {
  const int64_t B = ids.size(0), T = ids.size(1), D = c.D, H = c.H, hd = c.hd();
  torch::Tensor pos;
  if (c.kind == Kind::Roberta) {
    // create_position_ids_from_input_ids: padding tokens keep pad, others count from pad + 1.
    auto mask = ids.ne(c.pad).to(torch::kLong);
    pos = torch::cumsum(mask, 1) * mask + c.pad;
  } else {
    pos = torch::arange(T, torch::kLong).unsqueeze(0).expand({B, T});
  }
  auto x = (embeds.defined() ? embeds : w.word.index_select(0, ids.reshape({-1})).view({B, T, D})) +
           w.pos.index_select(0, pos.reshape({-1})).view({B, T, D});
  if (c.kind != Kind::Distil) x = x + w.type.index_select(0, types.reshape({-1})).view({B, T, D});
  x = torch::layer_norm(x, {D}, w.ln_w, w.ln_b, c.eps);
  if (cap && cap->hidden) cap->hidden_states.push_back(x);
  const double scale = 1.0 / std::sqrt(double(hd));
  auto heads = [&](const torch::Tensor& t) { return t.view({B, T, H, hd}).permute({0, 2, 1, 3}); };  // (B, H, T, hd)
  for (int64_t i = 0; i < c.L; ++i) {
    const Layer& l = w.layers[size_t(i)];
    auto q = heads(linear(x, l.q_w, l.q_b)), k = heads(linear(x, l.k_w, l.k_b)), v = heads(linear(x, l.v_w, l.v_b));
    auto probs = attention_softmax(torch::matmul(q, k.transpose(-1, -2)) * scale);  // (B, H, T, T)
    if (cap) cap->keep(i, probs, q, k, v);
    auto ctx = torch::matmul(probs, v).permute({0, 2, 1, 3}).reshape({B, T, D});
    auto y = linear(ctx, l.o_w, l.o_b);
    auto a = torch::layer_norm(y + x, {D}, l.ln1_w, l.ln1_b, c.eps);
    auto g = activation(c.act, linear(a, l.f1_w, l.f1_b));
    auto f = linear(g, l.f2_w, l.f2_b);
    if (cap && cap->lrp) {
      LrpLayer r;
      r.x = r.attn_in = x, r.q = q, r.k = k, r.v = v, r.probs = probs, r.ctx = ctx, r.attn_out = y;
      r.mid = r.mlp_in = a, r.act = g, r.mlp_out = f;
      r.wq = l.q_w, r.wk = l.k_w, r.wv = l.v_w, r.wo = l.o_w, r.w1 = l.f1_w, r.w2 = l.f2_w;
      cap->lrp_layers.push_back(r);
    }
    x = torch::layer_norm(f + a, {D}, l.ln2_w, l.ln2_b, c.eps);
    if (cap && cap->hidden) cap->hidden_states.push_back(x);
  }
  return x;
}

torch::Tensor mlm_logits(const BertConfig& c, const Weights& w, const torch::Tensor& h, Capture* cap = nullptr) {
  // RobertaLMHead always uses erf GELU; BERT and DistilBERT use the configured activation.
  auto t = activation(c.kind == Kind::Roberta ? "gelu" : c.act, linear(h, w.t_w, w.t_b));
  t = torch::layer_norm(t, {c.D}, w.t_ln_w, w.t_ln_b, c.eps);
  if (cap && cap->lrp) cap->lrp_head = {{t, w.decoder}, {h, w.t_w}};
  return linear(t, w.decoder, w.decoder_b);  // (B, T, V)
}

class BertFamilyModel final : public Model {
 public:
  explicit BertFamilyModel(const Checkpoint& ck) : cfg_(BertConfig::from(ck.config())) {
    std::string prefix;
    w_ = load_weights(ck, cfg_, prefix);
    info_.family = "bert";
    info_.model_type = ck.model_type();
    info_.n_layers = cfg_.L;
    info_.n_heads = info_.n_kv_heads = cfg_.H;
    info_.head_dim = cfg_.hd();
    info_.d_model = cfg_.D;
    info_.d_ff = cfg_.I;
    info_.vocab_size = cfg_.V;
    info_.max_positions = cfg_.max_tokens();
    info_.causal = false;
    info_.activation = cfg_.act;
    info_.type_vocab_size = cfg_.types;
    info_.head = w_.mlm ? "mlm" : "";
    info_.tied_head = w_.tied;
    info_.weight_dtype = dtype_name(ck.info(prefix + "embeddings.word_embeddings.weight").dtype);
    auto count = [&](const torch::Tensor& t) {
      if (t.defined()) info_.n_params += t.numel();
    };
    for (const auto& s : specs(cfg_, w_)) count(*s.slot);
    if (w_.mlm) {
      for (const auto* t : {&w_.t_w, &w_.t_b, &w_.t_ln_w, &w_.t_ln_b, &w_.decoder_b}) count(*t);
      if (!w_.tied) count(w_.decoder);
    }
  }

  const ModelInfo& info() const override { return info_; }

  Trace forward(const ModelInput& in, const TraceOptions& o) const override {
    const char* key =
        cfg_.kind == Kind::Roberta ? "max_position_embeddings (less pad_token_id + 1)" : "max_position_embeddings";
    check_tokens(in, cfg_.V, cfg_.max_tokens(), key, cfg_.types);
    if (o.logits && !w_.mlm)
      throw Error("the checkpoint has no masked-LM head (expected " + std::string(head_names(cfg_.kind).dense) +
                  ".weight), so it predicts no tokens");
    torch::NoGradGuard no_grad;
    Capture cap = capture_for(o, cfg_.L);
    auto ids = ids_tensor(in.ids);
    auto types = in.type_ids.empty() ? torch::zeros_like(ids) : ids_tensor(in.type_ids);
    auto h = forward_hidden(cfg_, w_, ids, types, &cap);
    return to_trace(cap, o.logits ? mlm_logits(cfg_, w_, h) : torch::Tensor());
  }

  Array features(const ModelInput& in) const override {
    check_tokens(in, cfg_.V, cfg_.max_tokens(), "max_position_embeddings", cfg_.types);
    torch::NoGradGuard no_grad;
    return array_of(w_.word.index_select(0, ids_tensor(in.ids).reshape({-1})));  // (T, D)
  }

  Gradients gradients(const ModelInput& in, const std::vector<Array>& batch, const Target& t,
                      const GradientOptions& o) const override {
    check_tokens(in, cfg_.V, cfg_.max_tokens(), "max_position_embeddings", cfg_.types);
    check_head();
    const int64_t T = int64_t(in.ids.size());
    return gradients_with(run_on(in), {T, cfg_.D}, batch, t, o, cfg_.L, cfg_.V, T);
  }

  Relevance relevance(const ModelInput& in, const Target& t) const override {
    check_head();
    return relevance_with(run_on(in), features(in), t, cfg_.L, cfg_.V, int64_t(in.ids.size()));
  }

 private:
  void check_head() const {
    if (!w_.mlm)
      throw Error("the checkpoint has no masked-LM head (expected " + std::string(head_names(cfg_.kind).dense) +
                  ".weight), so there is no output to explain");
  }

  // Masked-LM logits from word embeddings x [B, T, D] of the input's tokens.
  std::function<torch::Tensor(const torch::Tensor&, Capture*)> run_on(const ModelInput& in) const {
    const int64_t T = int64_t(in.ids.size());
    auto ids = ids_tensor(in.ids);
    auto types = in.type_ids.empty() ? torch::zeros({1, T}, torch::kLong) : ids_tensor(in.type_ids);
    return [this, ids, types, T](const torch::Tensor& x, Capture* cap) {
      const int64_t B = x.size(0);
      auto h = forward_hidden(cfg_, w_, ids.expand({B, T}), types.expand({B, T}), cap, x);
      return mlm_logits(cfg_, w_, cap->head_position >= 0 ? h.narrow(1, cap->head_position, 1) : h, cap);
    };
  }

  BertConfig cfg_;
  Weights w_;
  ModelInfo info_;
};

}  // namespace

std::unique_ptr<Model> make_bert_family(const Checkpoint& ckpt) { return std::make_unique<BertFamilyModel>(ckpt); }

}  // namespace attnscope
