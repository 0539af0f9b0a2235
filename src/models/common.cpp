#include "common.h"

#include <cstring>

#include <chrono>
#include <cmath>
#include <random>

#include "attnscope/error.h"
#include "attnscope/safetensors.h"
#include "tensor_util.h"

namespace attnscope {

void Capture::keep(int64_t l, const torch::Tensor& probs, const torch::Tensor& q_, const torch::Tensor& k_,
                   const torch::Tensor& v_) {
  const bool w = wants(l);
  if (grad && w && probs.requires_grad()) probs.retain_grad();
  if (attention) attention_probs.push_back(w ? probs : torch::Tensor());
  if (qkv) {
    q.push_back(w ? q_ : torch::Tensor());
    k.push_back(w ? k_ : torch::Tensor());
    v.push_back(w ? v_ : torch::Tensor());
  }
}

Capture capture_for(const TraceOptions& o, int64_t n_layers) {
  Capture cap;
  cap.attention = o.attention;
  cap.qkv = o.qkv;
  cap.hidden = o.hidden;
  for (int64_t l : o.layers) {
    if (l < 0 || l >= n_layers)
      throw Error("layer " + std::to_string(l) + " is outside 0.." + std::to_string(n_layers - 1));
    cap.layers.resize(size_t(n_layers), false);
    cap.layers[size_t(l)] = true;
  }
  return cap;
}

Trace to_trace(const Capture& cap, const torch::Tensor& logits) {
  Trace tr;
  auto first = [](const torch::Tensor& t) { return t.defined() ? to_array(t[0]) : Array{}; };
  for (auto& a : cap.attention_probs) tr.attention.push_back(first(a));
  for (size_t l = 0; l < cap.q.size(); ++l) {
    tr.query.push_back(first(cap.q[l]));
    tr.key.push_back(first(cap.k[l]));
    tr.value.push_back(first(cap.v[l]));
  }
  for (auto& x : cap.hidden_states) tr.hidden.push_back(first(x));
  if (logits.defined()) tr.logits = first(logits);
  return tr;
}

torch::Tensor activation(const std::string& name, const torch::Tensor& x) {
  if (name == "gelu_new" || name == "gelu_fast" || name == "gelu_pytorch_tanh") {
    const double k = std::sqrt(2.0 / M_PI);
    return 0.5 * x * (1.0 + torch::tanh(k * (x + 0.044715 * torch::pow(x, 3.0))));
  }
  if (name == "gelu") return torch::gelu(x);
  if (name == "relu") return torch::relu(x);
  if (name == "silu" || name == "swish") return torch::silu(x);
  if (name == "tanh") return torch::tanh(x);
  throw Error("activation '" + name +
              "' is not supported (expected gelu_new, gelu_fast, gelu_pytorch_tanh, gelu, relu, silu, tanh)");
}

void check_activation(const std::string& name, const std::string& where) {
  try {
    activation(name, torch::zeros({1}));
  } catch (const Error&) {
    throw Error(where + " '" + name +
                "' is not supported (expected gelu_new, gelu_fast, gelu_pytorch_tanh, gelu, relu, silu, tanh)");
  }
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return b.defined() ? torch::addmm(b, x.reshape({-1, x.size(-1)}), w.t()).view([&] {
    auto s = x.sizes().vec();
    s.back() = w.size(0);
    return s;
  }())
                     : torch::matmul(x, w.t());
}

torch::Tensor attention_softmax(const torch::Tensor& scores) {
  return torch::threshold(torch::softmax(scores, -1), 1e-30, 0.0);
}

void check_tokens(const ModelInput& in, int64_t vocab, int64_t max_positions, const char* positions_key,
                  int64_t type_vocab_size) {
  const auto& ids = in.ids;
  if (ids.empty()) throw Error("input: expected at least one token, found none");
  if (max_positions > 0 && int64_t(ids.size()) > max_positions)
    throw Error("input: " + std::to_string(ids.size()) + " tokens exceed the model's " + positions_key + " " +
                std::to_string(max_positions) + " (use --truncate to keep the first " + std::to_string(max_positions) +
                ")");
  for (int64_t id : ids)
    if (id < 0 || id >= vocab)
      throw Error("input: token id " + std::to_string(id) + " is outside the model's vocabulary of " +
                  std::to_string(vocab));
  if (in.type_ids.empty()) return;
  if (in.type_ids.size() != ids.size())
    throw Error("input: expected one token type per token (" + std::to_string(ids.size()) + "), found " +
                std::to_string(in.type_ids.size()));
  for (int64_t t : in.type_ids)
    if (t < 0 || t >= std::max<int64_t>(type_vocab_size, 1))
      throw Error("input: token type " + std::to_string(t) + " is outside the model's " +
                  std::to_string(std::max<int64_t>(type_vocab_size, 1)) +
                  " token types (a sentence pair needs type_vocab_size 2)");
}

torch::Tensor ids_tensor(const std::vector<int64_t>& ids) {
  return torch::from_blob(const_cast<int64_t*>(ids.data()), {1, int64_t(ids.size())}, torch::kLong).clone();
}

}  // namespace attnscope

namespace attnscope {

Array array_of(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kFloat32).contiguous();
  Array a = Array::zeros(std::vector<int64_t>(c.sizes().begin(), c.sizes().end()));
  std::memcpy(a.mutable_ptr(), c.data_ptr<float>(), size_t(c.numel()) * sizeof(float));
  return a;
}

namespace {

void check_target_index(const Target& t, int64_t n_outputs) {
  if (t.index < 0 || t.index >= n_outputs)
    throw Error("target " + std::to_string(t.index) + ": outside the model's outputs 0.." +
                std::to_string(n_outputs - 1));
}

// Token outputs (B, T, V) at the target's position; classifier outputs (B, classes) as they are.
torch::Tensor at_position(const torch::Tensor& out, const Target& t, int64_t n_positions) {
  if (out.dim() != 3) return out;
  if (t.position < 0 || t.position >= n_positions)
    throw Error("target position " + std::to_string(t.position) + ": outside 0.." + std::to_string(n_positions - 1));
  return out.select(1, out.size(1) == 1 ? 0 : t.position);  // (B, 1, V) when run computed that row only
}

}  // namespace

Gradients gradients_with(const std::function<torch::Tensor(const torch::Tensor&, Capture*)>& run,
                         const std::vector<int64_t>& shape, const std::vector<Array>& batch, const Target& t,
                         const GradientOptions& o, int64_t n_layers, int64_t n_outputs, int64_t n_positions) {
  if (batch.empty()) throw Error("gradients: expected at least one input, found none");
  if (t.kind != "logit" && t.kind != "prob" && t.kind != "logprob")
    throw Error("--target-kind " + t.kind + ": expected logit, prob or logprob");
  check_target_index(t, n_outputs);
  std::vector<torch::Tensor> items;
  for (const auto& a : batch) {
    if (a.shape != shape)
      throw Error("gradients: expected features of shape " + shape_str(shape) + ", found " + shape_str(a.shape));
    items.push_back(torch::from_blob(const_cast<float*>(a.ptr()), shape, torch::kFloat32));
  }
  torch::AutoGradMode on(!o.values_only);
  auto x = torch::stack(items).clone().set_requires_grad(!o.values_only);  // (B, ...)
  Capture cap;
  cap.attention = o.attention;
  cap.grad = o.attention;
  // The head runs on the target's row only (not B x T x vocabulary logits); a position outside the
  // input leaves every row to at_position, which names the error.
  cap.head_position = t.position >= 0 && t.position < n_positions ? t.position : -1;
  auto out = at_position(run(x, &cap), t, n_positions);  // (B, V) or (B, classes)
  torch::Tensor f;                                       // (B,)
  if (t.kind == "logit")
    f = out.select(1, t.index);
  else if (t.kind == "prob")
    f = torch::softmax(out, 1).select(1, t.index);
  else
    f = torch::log_softmax(out, 1).select(1, t.index);
  Gradients g;
  auto fv = f.detach().to(torch::kDouble).contiguous();
  g.value.assign(fv.data_ptr<double>(), fv.data_ptr<double>() + fv.numel());
  if (o.values_only) return g;
  f.sum().backward();
  g.grad = array_of(x.grad());
  if (o.attention) {
    for (int64_t l = 0; l < n_layers; ++l) {
      const auto& p = cap.attention_probs.at(size_t(l));
      g.attention.push_back(array_of(p[0]));
      g.attention_grad.push_back(p.grad().defined() ? array_of(p.grad()[0]) : Array::zeros(g.attention.back().shape));
    }
  }
  return g;
}

Relevance relevance_with(const std::function<torch::Tensor(const torch::Tensor&, Capture*)>& run, const Array& features,
                         const Target& t, int64_t n_layers, int64_t n_outputs, int64_t n_positions) {
  if (t.kind != "logit")
    throw Error("--target-kind " + t.kind +
                ": relevance explains a logit (LRP starts from a one-hot at the target logit); expected logit");
  check_target_index(t, n_outputs);
  torch::AutoGradMode on(true);
  auto x = torch::from_blob(const_cast<float*>(features.ptr()), features.shape, torch::kFloat32)
               .unsqueeze(0)
               .clone()
               .set_requires_grad(true);  // (1, ...)
  Capture cap;
  cap.attention = cap.grad = cap.lrp = true;
  auto f = at_position(run(x, &cap), t, n_positions).select(1, t.index);  // (1,)
  f.sum().backward();
  torch::NoGradGuard no_grad;
  Relevance out;
  out.value = f.item<double>();
  // The head: a one-hot at the target logit through its linear layers (norms and activations pass).
  // Outputs other than the target carry no relevance, so the top layer needs only the target's row.
  const int64_t pos = cap.lrp_position >= 0 ? cap.lrp_position : t.position;
  torch::Tensor r;
  for (const auto& h : cap.lrp_head) {
    auto in = h.in.dim() == 3 ? h.in.select(1, pos) : h.in;
    r = r.defined() ? lrp::linear(in, h.w, r) : lrp::linear(in, h.w.narrow(0, t.index, 1), torch::ones({1, 1}));
  }
  auto rl = torch::zeros_like(cap.lrp_layers.back().x);
  rl.select(1, pos).copy_(r);
  std::vector<torch::Tensor> r_probs(static_cast<size_t>(n_layers));
  for (int64_t l = n_layers - 1; l >= 0; --l) rl = lrp::layer(cap.lrp_layers[size_t(l)], rl, &r_probs[size_t(l)]);
  for (int64_t l = 0; l < n_layers; ++l) {
    const auto& p = cap.attention_probs.at(size_t(l));
    out.attention.push_back(array_of(p[0]));
    out.attention_grad.push_back(p.grad().defined() ? array_of(p.grad()[0]) : Array::zeros(out.attention.back().shape));
    out.attention_relevance.push_back(array_of(r_probs[size_t(l)][0]));
  }
  return out;
}

Generation Model::generate(const std::vector<int64_t>&, const GenerateOptions&,
                           const std::function<bool(const std::vector<int64_t>&)>&) const {
  throw Error("generate: model_type '" + info().model_type + "' is an encoder (" + info().family +
              " family), it does not generate text; use a decoder (gpt2, llama, qwen2, mistral)");
}

std::pair<torch::Tensor, torch::Tensor> KvCache::append(int64_t l, int64_t n_layers, const torch::Tensor& k_new,
                                                        const torch::Tensor& v_new) {
  if (k.size() < size_t(n_layers)) {
    k.resize(size_t(n_layers));
    v.resize(size_t(n_layers));
  }
  auto& ck = k[size_t(l)];
  auto& cv = v[size_t(l)];
  ck = ck.defined() ? torch::cat({ck, k_new}, 2) : k_new;
  cv = cv.defined() ? torch::cat({cv, v_new}, 2) : v_new;
  return {ck, cv};
}

std::vector<int64_t> eos_ids_of(const Config& c) {
  std::vector<int64_t> out;
  const auto& j = c.json();
  if (!j.contains("eos_token_id")) return out;
  const auto& e = j["eos_token_id"];
  if (e.is_number_integer()) out.push_back(e.get<int64_t>());
  if (e.is_array())
    for (const auto& x : e)
      if (x.is_number_integer()) out.push_back(x.get<int64_t>());
  return out;
}

namespace {

int64_t choose(const torch::Tensor& logits_row, const GenerateOptions& o, std::mt19937_64& rng) {
  if (o.temperature <= 0) return logits_row.argmax().item<int64_t>();
  auto l = logits_row.to(torch::kFloat64) / o.temperature;
  if (o.top_k > 0 && o.top_k < l.size(0)) {
    auto kth = std::get<0>(torch::topk(l, o.top_k)).min();
    l = l.masked_fill(l < kth, -std::numeric_limits<double>::infinity());
  }
  auto p = torch::softmax(l, 0).contiguous();
  const double* pp = p.data_ptr<double>();
  std::uniform_real_distribution<double> u(0.0, 1.0);
  double r = u(rng), acc = 0;
  for (int64_t i = 0; i < p.size(0); ++i) {
    acc += pp[i];
    if (r < acc) return i;
  }
  return p.size(0) - 1;
}

}  // namespace

Generation generate_with(const StepFn& step, const ModelInfo& info, const std::vector<int64_t>& prompt,
                         const GenerateOptions& o, const std::function<bool(const std::vector<int64_t>&)>& stop) {
  if (prompt.empty()) throw Error("generate: expected a prompt of at least one token, found none");
  if (o.max_new_tokens < 0) throw Error("--max-new-tokens: expected 0 or more");
  if (o.temperature < 0) throw Error("--temperature: expected 0 (greedy) or a positive number");
  for (int64_t id : prompt)
    if (id < 0 || id >= info.vocab_size)
      throw Error("input: token id " + std::to_string(id) + " is outside the model's vocabulary of " +
                  std::to_string(info.vocab_size));
  const int64_t max_total = int64_t(prompt.size()) + o.max_new_tokens;
  if (max_total > info.max_positions)
    throw Error("generate: the prompt (" + std::to_string(prompt.size()) + " tokens) plus --max-new-tokens " +
                std::to_string(o.max_new_tokens) + " exceed the model's " + std::to_string(info.max_positions) +
                " positions");
  torch::NoGradGuard no_grad;
  auto t0 = std::chrono::steady_clock::now();
  const int64_t L = info.n_layers, H = info.n_heads;
  Generation g;
  g.ids = prompt;
  g.prompt_length = prompt.size();
  std::vector<torch::Tensor> att;  // per layer [H, max_total, max_total]
  if (o.attention)
    for (int64_t l = 0; l < L; ++l) att.push_back(torch::zeros({H, max_total, max_total}));
  std::mt19937_64 rng(o.seed);
  KvCache cache;
  // Writes the attention rows of positions [from, from + n) (probs [1, H, n, from + n]).
  auto keep_rows = [&](const Capture& cap, int64_t from, int64_t n) {
    for (int64_t l = 0; l < L && o.attention; ++l) {
      const auto& p = cap.attention_probs[size_t(l)];
      const int64_t keys = p.size(3);
      att[size_t(l)].narrow(1, from, n).narrow(2, 0, keys).copy_(p[0].narrow(1, p.size(2) - n, n));
    }
  };
  auto run = [&](int64_t from, bool last_only) {
    Capture cap;
    cap.attention = o.attention;
    torch::Tensor logits;
    if (o.use_cache) {
      auto ids = ids_tensor(std::vector<int64_t>(g.ids.begin() + from, g.ids.end()));
      logits = step(ids, &cache, &cap);
    } else {
      logits = step(ids_tensor(g.ids), nullptr, &cap);  // everything again, no cache
    }
    const int64_t n = int64_t(g.ids.size()) - from;
    keep_rows(cap, last_only ? int64_t(g.ids.size()) - 1 : from, last_only ? 1 : n);
    return logits[0][logits.size(1) - 1];
  };
  torch::Tensor next_logits = run(0, false);
  for (int64_t s = 0; s < o.max_new_tokens; ++s) {
    int64_t id = choose(next_logits, o, rng);
    g.ids.push_back(id);
    const bool eos = std::find(info.eos_ids.begin(), info.eos_ids.end(), id) != info.eos_ids.end();
    const bool caller = stop && stop(g.ids);
    // Feed the new token too, so that its attention row exists (and the next prediction).
    next_logits = run(int64_t(g.ids.size()) - 1, true);
    if (eos || caller) {
      g.stopped_by_eos = eos;
      g.stopped_by_caller = caller && !eos;
      break;
    }
  }
  const int64_t T = int64_t(g.ids.size());
  for (auto& a : att) g.attention.push_back(to_array(a.narrow(1, 0, T).narrow(2, 0, T).contiguous()));
  g.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return g;
}

}  // namespace attnscope
