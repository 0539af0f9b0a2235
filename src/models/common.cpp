#include "common.h"

#include <cmath>

#include "attnscope/error.h"
#include "tensor_util.h"

namespace attnscope {

void Capture::keep(int64_t l, const torch::Tensor& probs, const torch::Tensor& q_, const torch::Tensor& k_,
                   const torch::Tensor& v_) {
  const bool w = wants(l);
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
