// Trains the small Llama-architecture model that ships in models/llama-moby (GQA + RoPE +
// RMSNorm + SwiGLU, tied embeddings) on Moby Dick, with a SentencePiece tokenizer trained by
// Debian's spm_train. Parameters carry their Hugging Face names (LlamaForCausalLM); the forward
// pass is modeling_llama.py's. Usage:
//   train_llama --corpus moby.txt --tokenizer DIR_WITH_tokenizer.model --out models/llama-moby
//               [--steps 1500 --batch 16 --seq 128 --lr 3e-3 --dim 128 --layers 4 --heads 4 --kv-heads 2
//                --mlp 384 --positions 256 --seed 1234 --heldout 0.05 --threads 2]
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "attnscope/error.h"
#include "attnscope/safetensors.h"
#include "attnscope/tokenizer.h"
#include "train_common.h"

using namespace attnscope;
namespace fs = std::filesystem;

namespace {

struct Llama {
  int64_t D, L, H, KV, I, V, P;
  double theta = 10000.0, eps = 1e-6;
  std::map<std::string, torch::Tensor> w;  // Hugging Face names
  torch::Tensor& p(const std::string& n) { return w.at(n); }
  int64_t hd() const { return D / H; }

  void init(uint64_t seed) {
    torch::manual_seed(seed);
    const double std = 0.02, resid = 0.02 / std::sqrt(2.0 * double(L));
    w["model.embed_tokens.weight"] = torch::randn({V, D}) * std;
    w["model.norm.weight"] = torch::ones({D});
    for (int64_t i = 0; i < L; ++i) {
      const std::string q = "model.layers." + std::to_string(i) + ".";
      w[q + "input_layernorm.weight"] = torch::ones({D});
      w[q + "post_attention_layernorm.weight"] = torch::ones({D});
      w[q + "self_attn.q_proj.weight"] = torch::randn({H * hd(), D}) * std;
      w[q + "self_attn.k_proj.weight"] = torch::randn({KV * hd(), D}) * std;
      w[q + "self_attn.v_proj.weight"] = torch::randn({KV * hd(), D}) * std;
      w[q + "self_attn.o_proj.weight"] = torch::randn({D, H * hd()}) * resid;
      w[q + "mlp.gate_proj.weight"] = torch::randn({I, D}) * std;
      w[q + "mlp.up_proj.weight"] = torch::randn({I, D}) * std;
      w[q + "mlp.down_proj.weight"] = torch::randn({D, I}) * resid;
    }
  }
  static torch::Tensor rms(const torch::Tensor& x, const torch::Tensor& g, double eps) {
    return g * (x * torch::rsqrt(x.pow(2).mean(-1, true) + eps));
  }
  static torch::Tensor rotate_half(const torch::Tensor& x) {
    const int64_t h = x.size(-1) / 2;
    return torch::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
  }
  // ids (B, T) -> logits (B, T, V)
  torch::Tensor forward(const torch::Tensor& ids) {
    const int64_t B = ids.size(0), T = ids.size(1), d = hd(), rep = H / KV;
    auto x = p("model.embed_tokens.weight").index_select(0, ids.reshape({-1})).view({B, T, D});
    auto inv = 1.0 / torch::pow(theta, torch::arange(0, d, 2, torch::kFloat64) / double(d));
    auto fr = torch::outer(torch::arange(T, torch::kFloat64), inv);
    auto emb = torch::cat({fr, fr}, -1);
    auto cos = emb.cos().to(torch::kFloat32), sin = emb.sin().to(torch::kFloat32);
    auto future = torch::ones({T, T}, torch::kBool).triu(1);
    for (int64_t i = 0; i < L; ++i) {
      const std::string q = "model.layers." + std::to_string(i) + ".";
      auto a = rms(x, p(q + "input_layernorm.weight"), eps);
      auto qq = torch::matmul(a, p(q + "self_attn.q_proj.weight").t()).view({B, T, H, d}).permute({0, 2, 1, 3});
      auto kk = torch::matmul(a, p(q + "self_attn.k_proj.weight").t()).view({B, T, KV, d}).permute({0, 2, 1, 3});
      auto vv = torch::matmul(a, p(q + "self_attn.v_proj.weight").t()).view({B, T, KV, d}).permute({0, 2, 1, 3});
      qq = qq * cos + rotate_half(qq) * sin;
      kk = kk * cos + rotate_half(kk) * sin;
      kk = kk.repeat_interleave(rep, 1);
      vv = vv.repeat_interleave(rep, 1);
      auto s = torch::matmul(qq, kk.transpose(-1, -2)) / std::sqrt(double(d));
      auto probs = torch::softmax(s.masked_fill(future, -std::numeric_limits<float>::infinity()), -1);
      auto o = torch::matmul(probs, vv).permute({0, 2, 1, 3}).reshape({B, T, H * d});
      x = x + torch::matmul(o, p(q + "self_attn.o_proj.weight").t());
      auto m = rms(x, p(q + "post_attention_layernorm.weight"), eps);
      auto f = torch::silu(torch::matmul(m, p(q + "mlp.gate_proj.weight").t())) *
               torch::matmul(m, p(q + "mlp.up_proj.weight").t());
      x = x + torch::matmul(f, p(q + "mlp.down_proj.weight").t());
    }
    x = rms(x, p("model.norm.weight"), eps);
    return torch::matmul(x, p("model.embed_tokens.weight").t());  // tied head
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> a{
      {"--steps", "1500"}, {"--batch", "16"},     {"--seq", "128"},    {"--lr", "3e-3"}, {"--dim", "128"},
      {"--layers", "4"},   {"--heads", "4"},      {"--kv-heads", "2"}, {"--mlp", "384"}, {"--positions", "256"},
      {"--seed", "1234"},  {"--heldout", "0.05"}, {"--threads", "2"}};
  if (!train::parse_args(argc, argv, a, {"--corpus", "--tokenizer", "--out"}, "train_llama")) return 2;
  try {
    torch::set_num_threads(std::stoi(a["--threads"]));
    const std::string corpus = train::read_text(a["--corpus"]);
    auto tok = load_tokenizer(a["--tokenizer"]);
    Encoding enc = tok->encode(corpus);
    auto all = torch::tensor(enc.ids, torch::kLong);
    const int64_t n = all.size(0), n_held = int64_t(double(n) * std::stod(a["--heldout"]));
    auto train = all.slice(0, 0, n - n_held), held = all.slice(0, n - n_held, n);
    std::cout << "corpus: " << corpus.size() << " bytes, " << n << " tokens (vocabulary " << tok->vocab_size() << ")\n";
    Llama m;
    m.D = std::stoll(a["--dim"]);
    m.L = std::stoll(a["--layers"]);
    m.H = std::stoll(a["--heads"]);
    m.KV = std::stoll(a["--kv-heads"]);
    m.I = std::stoll(a["--mlp"]);
    m.P = std::stoll(a["--positions"]);
    m.V = tok->vocab_size();
    const uint64_t seed = std::stoull(a["--seed"]);
    m.init(seed);
    auto params = train::parameters(m.w);
    const int64_t steps = std::stoll(a["--steps"]), B = std::stoll(a["--batch"]), T = std::stoll(a["--seq"]);
    const double lr = std::stod(a["--lr"]);
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(lr).betas({0.9, 0.95}).weight_decay(0.01));
    torch::manual_seed(seed + 1);
    auto batch_from = [&](const torch::Tensor& src, int64_t b) { return train::random_windows(src, b, T + 1); };
    auto loss_of = [&](const torch::Tensor& xy) {
      auto lg = m.forward(xy.slice(1, 0, T));
      return torch::nn::functional::cross_entropy(lg.reshape({-1, m.V}), xy.slice(1, 1, T + 1).reshape({-1}));
    };
    auto t0 = std::chrono::steady_clock::now();
    for (int64_t s = 1; s <= steps; ++s) {
      train::set_lr(opt, lr * train::lr_factor(s, steps, 0.1));
      opt.zero_grad();
      auto loss = loss_of(batch_from(train, B));
      loss.backward();
      torch::nn::utils::clip_grad_norm_(params, 1.0);
      opt.step();
      if (s % 50 == 0 || s == 1)
        std::cout << "step " << s << "/" << steps << " loss " << loss.item<double>() << " "
                  << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n"
                  << std::flush;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    torch::NoGradGuard ng;
    torch::manual_seed(seed + 2);
    double tr = 0, he = 0;
    for (int i = 0; i < 8; ++i) {
      tr += loss_of(batch_from(train, B)).item<double>() / 8;
      he += loss_of(batch_from(held, B)).item<double>() / 8;
    }
    std::cout << "final train loss " << tr << ", held-out loss " << he << " after " << steps << " steps, " << secs
              << " s\n";
    const fs::path out(a["--out"]);
    fs::create_directories(out);
    train::save_named(m.w, (out / "model.safetensors").string(), true);
    nlohmann::json cfg{{"model_type", "llama"},       {"architectures", {"LlamaForCausalLM"}},
                       {"hidden_size", m.D},          {"intermediate_size", m.I},
                       {"num_hidden_layers", m.L},    {"num_attention_heads", m.H},
                       {"num_key_value_heads", m.KV}, {"max_position_embeddings", m.P},
                       {"vocab_size", m.V},           {"rms_norm_eps", m.eps},
                       {"rope_theta", m.theta},       {"rope_scaling", nullptr},
                       {"tie_word_embeddings", true}, {"hidden_act", "silu"},
                       {"attention_bias", false},     {"bos_token_id", 1},
                       {"eos_token_id", 2},           {"torch_dtype", "float16"}};
    std::ofstream(out / "config.json") << cfg.dump(2) << "\n";
    train::write_run_log(out, {a["--corpus"], n, n_held, steps, B, T, lr, seed, secs, tr, he});
  } catch (const std::exception& e) {
    std::cerr << "train_llama: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
