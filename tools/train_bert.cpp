// Trains the small BERT (masked-LM) that ships in models/bert-moby on Moby Dick with the
// bert-base-uncased WordPiece vocabulary. Parameters carry their Hugging Face names
// (BertForMaskedLM: "bert." + "cls.predictions.*", decoder tied to the word embeddings); the
// forward pass is modeling_bert.py's. Masking as in BERT: 15 % of the positions, of which 80 %
// become [MASK], 10 % a random token, 10 % stay. Usage:
//   train_bert --corpus moby.txt --tokenizer DIR_WITH_vocab.txt --out models/bert-moby
//              [--steps 1500 --batch 16 --seq 128 --lr 1e-3 --dim 128 --layers 4 --heads 4 --mlp 512
//               --positions 256 --pos-std 0.02 --seed 1234 --heldout 0.05 --threads 2]
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
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

struct Bert {
  int64_t D, L, H, I, V, P, types = 2;
  double eps = 1e-12;
  std::map<std::string, torch::Tensor> w;  // Hugging Face names
  torch::Tensor& p(const std::string& n) { return w.at(n); }

  void init(uint64_t seed, double pos_std, double qk_std, bool sin_pos) {
    torch::manual_seed(seed);
    auto normal = [](std::vector<int64_t> s) { return torch::randn(s) * 0.02; };
    w["bert.embeddings.word_embeddings.weight"] = normal({V, D});
    // Larger position embeddings at the start help positional heads (the neighbours a masked
    // word depends on) form before the model settles on predicting frequent words.
    w["bert.embeddings.position_embeddings.weight"] = torch::randn({P, D}) * pos_std;
    if (sin_pos) {  // the Transformer's sinusoids, scaled to std pos_std: nearby positions start similar
      auto pos = torch::arange(P, torch::kFloat).unsqueeze(1);
      auto freq = torch::exp(torch::arange(0, D, 2, torch::kFloat) * (-std::log(10000.0) / double(D)));
      auto pe = torch::zeros({P, D});
      pe.slice(1, 0, D, 2).copy_(torch::sin(pos * freq));
      pe.slice(1, 1, D, 2).copy_(torch::cos(pos * freq));
      w["bert.embeddings.position_embeddings.weight"] = pe * (pos_std / std::sqrt(0.5));
    }
    w["bert.embeddings.token_type_embeddings.weight"] = normal({types, D});
    w["bert.embeddings.LayerNorm.weight"] = torch::ones({D});
    w["bert.embeddings.LayerNorm.bias"] = torch::zeros({D});
    for (int64_t i = 0; i < L; ++i) {
      const std::string q = "bert.encoder.layer." + std::to_string(i) + ".";
      for (const char* m : {"query", "key", "value"}) {
        const bool qk = std::string(m) != "value";
        w[q + "attention.self." + m + ".weight"] = qk ? torch::randn({D, D}) * qk_std : normal({D, D});
        w[q + "attention.self." + m + ".bias"] = torch::zeros({D});
      }
      w[q + "attention.output.dense.weight"] = normal({D, D});
      w[q + "attention.output.dense.bias"] = torch::zeros({D});
      w[q + "attention.output.LayerNorm.weight"] = torch::ones({D});
      w[q + "attention.output.LayerNorm.bias"] = torch::zeros({D});
      w[q + "intermediate.dense.weight"] = normal({I, D});
      w[q + "intermediate.dense.bias"] = torch::zeros({I});
      w[q + "output.dense.weight"] = normal({D, I});
      w[q + "output.dense.bias"] = torch::zeros({D});
      w[q + "output.LayerNorm.weight"] = torch::ones({D});
      w[q + "output.LayerNorm.bias"] = torch::zeros({D});
    }
    w["cls.predictions.transform.dense.weight"] = normal({D, D});
    w["cls.predictions.transform.dense.bias"] = torch::zeros({D});
    w["cls.predictions.transform.LayerNorm.weight"] = torch::ones({D});
    w["cls.predictions.transform.LayerNorm.bias"] = torch::zeros({D});
    w["cls.predictions.bias"] = torch::zeros({V});
  }
  torch::Tensor lin(const torch::Tensor& x, const std::string& n) {
    return torch::matmul(x, p(n + ".weight").t()) + p(n + ".bias");
  }
  torch::Tensor ln(const torch::Tensor& x, const std::string& n) {
    return torch::layer_norm(x, {D}, p(n + ".weight"), p(n + ".bias"), eps);
  }
  // ids (B, T) -> hidden (B, T, D)
  // causal: a warm-up phase trains the same weights as a left-to-right LM (see --causal-steps).
  torch::Tensor encode(const torch::Tensor& ids, bool causal = false) {
    const int64_t B = ids.size(0), T = ids.size(1), hd = D / H;
    auto x = p("bert.embeddings.word_embeddings.weight").index_select(0, ids.reshape({-1})).view({B, T, D}) +
             p("bert.embeddings.position_embeddings.weight").slice(0, 0, T) +
             p("bert.embeddings.token_type_embeddings.weight")[0];
    x = ln(x, "bert.embeddings.LayerNorm");
    auto heads = [&](const torch::Tensor& t) { return t.view({B, T, H, hd}).permute({0, 2, 1, 3}); };
    for (int64_t i = 0; i < L; ++i) {
      const std::string q = "bert.encoder.layer." + std::to_string(i) + ".";
      auto qq = heads(lin(x, q + "attention.self.query")), kk = heads(lin(x, q + "attention.self.key")),
           vv = heads(lin(x, q + "attention.self.value"));
      auto scores = torch::matmul(qq, kk.transpose(-1, -2)) / std::sqrt(double(hd));
      if (causal)
        scores = scores.masked_fill(torch::ones({T, T}, torch::kBool).triu(1), -std::numeric_limits<float>::infinity());
      auto probs = torch::softmax(scores, -1);
      auto ctx = torch::matmul(probs, vv).permute({0, 2, 1, 3}).reshape({B, T, D});
      auto a = ln(lin(ctx, q + "attention.output.dense") + x, q + "attention.output.LayerNorm");
      x = ln(lin(torch::gelu(lin(a, q + "intermediate.dense")), q + "output.dense") + a, q + "output.LayerNorm");
    }
    return x;
  }
  // hidden rows (N, D) -> vocabulary logits (N, V)
  torch::Tensor mlm(const torch::Tensor& h) {
    auto t = ln(torch::gelu(lin(h, "cls.predictions.transform.dense")), "cls.predictions.transform.LayerNorm");
    return torch::matmul(t, p("bert.embeddings.word_embeddings.weight").t()) + p("cls.predictions.bias");
  }
};

}  // namespace

int main(int argc, char** argv) {
  std::map<std::string, std::string> a{
      {"--steps", "1500"},    {"--batch", "16"},         {"--seq", "128"},        {"--lr", "1e-3"},
      {"--dim", "128"},       {"--layers", "4"},         {"--heads", "4"},        {"--mlp", "512"},
      {"--positions", "256"}, {"--seed", "1234"},        {"--heldout", "0.05"},   {"--threads", "2"},
      {"--pos-std", "0.02"},  {"--qk-std", "0.02"},      {"--mask-rate", "0.15"}, {"--pos-init", "normal"},
      {"--save-every", "0"},  {"--init-embeddings", ""}, {"--causal-steps", "0"}, {"--init-model", ""}};
  if (!train::parse_args(argc, argv, a, {"--corpus", "--tokenizer", "--out"}, "train_bert")) return 2;
  try {
    torch::set_num_threads(std::stoi(a["--threads"]));
    const std::string corpus = train::read_text(a["--corpus"]);
    auto tok = load_tokenizer(a["--tokenizer"]);
    Encoding enc = tok->encode(corpus);
    // The corpus without the [CLS]/[SEP] the post-processor put around it.
    std::vector<int64_t> ids(enc.ids.begin() + 1, enc.ids.end() - 1);
    const int64_t cls = *tok->token_to_id("[CLS]"), sep = *tok->token_to_id("[SEP]"),
                  mask = *tok->token_to_id("[MASK]");
    auto all = torch::tensor(ids, torch::kLong);
    const int64_t n = all.size(0), n_held = int64_t(double(n) * std::stod(a["--heldout"]));
    auto train = all.slice(0, 0, n - n_held), held = all.slice(0, n - n_held, n);
    std::cout << "corpus: " << corpus.size() << " bytes, " << n << " WordPiece tokens\n";
    Bert m;
    m.D = std::stoll(a["--dim"]);
    m.L = std::stoll(a["--layers"]);
    m.H = std::stoll(a["--heads"]);
    m.I = std::stoll(a["--mlp"]);
    m.P = std::stoll(a["--positions"]);
    m.V = tok->vocab_size();
    const uint64_t seed = std::stoull(a["--seed"]);
    m.init(seed, std::stod(a["--pos-std"]), std::stod(a["--qk-std"]), a["--pos-init"] == "sin");
    const double mask_rate = std::stod(a["--mask-rate"]);
    if (!a["--init-model"].empty()) {  // continue from a saved model (every tensor, by name)
      SafetensorsFile f(a["--init-model"]);
      for (auto& [name, t] : m.w) {
        const auto& info = f.info(name);
        if (info.shape != std::vector<int64_t>(t.sizes().begin(), t.sizes().end()))
          throw Error(a["--init-model"] + ": " + name + ": expected shape " + shape_str(t.sizes().vec()) + ", found " +
                      shape_str(info.shape));
        auto v = f.to_f32(name);
        t = torch::from_blob(v.data(), t.sizes(), torch::kFloat32).clone();
      }
      std::cout << "weights from " << a["--init-model"] << "\n";
    }
    if (!a["--init-embeddings"].empty()) {  // word embeddings from elsewhere (tools/bert_vocab_from_llama.py)
      SafetensorsFile f(a["--init-embeddings"]);
      const auto& info = f.info("word_embeddings");
      if (info.shape != std::vector<int64_t>{m.V, m.D})
        throw Error(a["--init-embeddings"] + ": expected word_embeddings of shape " + shape_str({m.V, m.D}) +
                    ", found " + shape_str(info.shape));
      auto v = f.to_f32("word_embeddings");
      m.w["bert.embeddings.word_embeddings.weight"] = torch::from_blob(v.data(), {m.V, m.D}, torch::kFloat32).clone();
      std::cout << "word embeddings from " << a["--init-embeddings"] << "\n";
    }
    auto params = train::parameters(m.w);
    const int64_t steps = std::stoll(a["--steps"]), B = std::stoll(a["--batch"]), T = std::stoll(a["--seq"]);
    const double lr = std::stod(a["--lr"]);
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(lr).weight_decay(0.01));
    torch::manual_seed(seed + 1);
    // [CLS] window [SEP], with 15 % of the window masked; returns (inputs, positions, targets).
    auto batch_from = [&](const torch::Tensor& src, int64_t b) {
      auto x = torch::cat({torch::full({b, 1}, cls, torch::kLong), train::random_windows(src, b, T - 2),
                           torch::full({b, 1}, sep, torch::kLong)},
                          1);  // (b, T)
      auto inner = torch::zeros({b, T}, torch::kBool);
      inner.slice(1, 1, T - 1).fill_(true);
      auto chosen = (torch::rand({b, T}) < mask_rate).logical_and(inner);
      auto target = x.masked_select(chosen);
      auto r = torch::rand({b, T});
      auto inp = x.clone();
      inp.masked_fill_(chosen.logical_and(r < 0.8), mask);
      auto rnd = torch::randint(0, m.V, {b, T}, torch::kLong);
      auto use_rnd = chosen.logical_and(r >= 0.8).logical_and(r < 0.9);
      inp = torch::where(use_rnd, rnd, inp);
      return std::make_tuple(inp, chosen, target);
    };
    auto loss_acc = [&](const torch::Tensor& src, int64_t b) {
      auto [inp, chosen, target] = batch_from(src, b);
      auto h = m.encode(inp);
      auto rows = h.index({chosen});  // (N, D)
      auto lg = m.mlm(rows);
      auto loss = torch::nn::functional::cross_entropy(lg, target);
      // Accuracy where the input really was [MASK] (not the 10 % left unchanged, which are easy).
      auto was_mask = inp.index({chosen}).eq(mask);
      double acc = lg.argmax(1).eq(target).logical_and(was_mask).sum().item<double>() /
                   std::max(1.0, was_mask.sum().item<double>());
      return std::make_pair(loss, acc);
    };
    const fs::path out(a["--out"]);
    // Weights + config.json; also every --save-every steps, so a long run can be stopped and used.
    auto save_model = [&]() {
      fs::create_directories(out);
      train::save_named(m.w, (out / "model.safetensors").string(), true);
      nlohmann::json cfg{{"model_type", "bert"},
                         {"architectures", {"BertForMaskedLM"}},
                         {"hidden_size", m.D},
                         {"num_hidden_layers", m.L},
                         {"num_attention_heads", m.H},
                         {"intermediate_size", m.I},
                         {"hidden_act", "gelu"},
                         {"layer_norm_eps", m.eps},
                         {"max_position_embeddings", m.P},
                         {"type_vocab_size", m.types},
                         {"vocab_size", m.V},
                         {"pad_token_id", 0},
                         {"position_embedding_type", "absolute"},
                         {"torch_dtype", "float16"}};
      std::ofstream(out / "config.json") << cfg.dump(2) << "\n";
    };
    const int64_t save_every = std::stoll(a["--save-every"]);
    auto t0 = std::chrono::steady_clock::now();
    // Warm start: --causal-steps of next-token prediction with a causal mask through the same
    // weights and the same (tied) MLM head, so that attention learns to use the context before
    // the masked-LM phase; a small masked LM on a small text otherwise sits for thousands of steps
    // on "predict a frequent word".
    const int64_t causal_steps = std::stoll(a["--causal-steps"]);
    for (int64_t s = 1; s <= causal_steps; ++s) {
      train::set_lr(opt, lr * train::lr_factor(s, causal_steps, 0.1));
      opt.zero_grad();
      auto x = train::random_windows(train, B, T);  // (B, T)
      auto h = m.encode(x, true);
      auto lg = m.mlm(h.slice(1, 0, T - 1).reshape({-1, m.D}));
      auto loss = torch::nn::functional::cross_entropy(lg, x.slice(1, 1, T).reshape({-1}));
      loss.backward();
      torch::nn::utils::clip_grad_norm_(params, 1.0);
      opt.step();
      if (s % 50 == 0 || s == 1)
        std::cout << "causal step " << s << "/" << causal_steps << " next-token loss " << loss.item<double>() << "\n"
                  << std::flush;
    }
    for (int64_t s = 1; s <= steps; ++s) {
      train::set_lr(opt, lr * train::lr_factor(s, steps, 0.1));
      opt.zero_grad();
      auto [loss, acc] = loss_acc(train, B);
      loss.backward();
      torch::nn::utils::clip_grad_norm_(params, 1.0);
      opt.step();
      if (save_every > 0 && s % save_every == 0 && s < steps) {
        torch::NoGradGuard ng;
        save_model();
      }
      if (s % 50 == 0 || s == 1)
        std::cout << "step " << s << "/" << steps << " loss " << loss.item<double>() << " masked accuracy " << acc
                  << " " << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n"
                  << std::flush;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    torch::NoGradGuard ng;
    torch::manual_seed(seed + 2);
    double tr = 0, he = 0, tra = 0, hea = 0;
    for (int i = 0; i < 8; ++i) {
      auto [l1, a1] = loss_acc(train, B);
      auto [l2, a2] = loss_acc(held, B);
      tr += l1.item<double>() / 8, tra += a1 / 8, he += l2.item<double>() / 8, hea += a2 / 8;
    }
    std::cout << "final masked-LM loss: train " << tr << " (accuracy " << tra << "), held-out " << he << " (accuracy "
              << hea << ") after " << steps << " steps, " << secs << " s\n";
    save_model();
    train::write_run_log(out, {a["--corpus"], n, n_held, steps, B, T, lr, seed, secs, tr, he},
                         {{"train_masked_accuracy", tra},
                          {"heldout_masked_accuracy", hea},
                          {"mask_rate", mask_rate},
                          {"causal_steps", causal_steps},
                          {"init_model", a["--init-model"]},
                          {"init_embeddings", a["--init-embeddings"]}});
  } catch (const std::exception& e) {
    std::cerr << "train_bert: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
