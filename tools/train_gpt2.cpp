// Trains the small GPT-2-architecture model that ships in models/ (libtorch autograd through
// the same model code the tool runs). Usage:
//   train_gpt2 --corpus moby.txt --tokenizer models/gpt2-moby --out models/gpt2-moby
//              [--steps 700 --batch 16 --seq 128 --lr 3e-3 --n-embd 112 --n-layer 4 --n-head 4
//               --n-positions 256 --wpe-std 0.02 --seed 1234 --heldout 0.05 --threads 2]
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>

#include "attnscope/error.h"
#include "attnscope/safetensors.h"
#include "attnscope/tokenizer.h"
#include "gpt2.h"
#include "train_common.h"

using namespace attnscope;

int main(int argc, char** argv) {
  std::map<std::string, std::string> a{{"--steps", "700"},    {"--batch", "16"},        {"--seq", "128"},
                                       {"--lr", "3e-3"},      {"--n-embd", "112"},      {"--n-layer", "4"},
                                       {"--n-head", "4"},     {"--n-positions", "256"}, {"--seed", "1234"},
                                       {"--heldout", "0.05"}, {"--threads", "2"},       {"--wpe-std", "0.02"}};
  if (!train::parse_args(argc, argv, a, {"--corpus", "--tokenizer", "--out"}, "train_gpt2")) return 2;
  try {
    torch::set_num_threads(std::stoi(a["--threads"]));
    const std::string corpus = train::read_text(a["--corpus"]);
    auto tok = load_tokenizer(a["--tokenizer"]);
    auto t0 = std::chrono::steady_clock::now();
    Encoding enc = tok->encode(corpus);
    std::cout << "corpus: " << corpus.size() << " bytes, " << enc.size() << " tokens ("
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s to tokenize)\n";
    auto all = torch::tensor(enc.ids, torch::kLong);
    const int64_t n = all.size(0), n_held = int64_t(double(n) * std::stod(a["--heldout"]));
    auto train = all.slice(0, 0, n - n_held), held = all.slice(0, n - n_held, n);

    gpt2::Config cfg;
    cfg.n_embd = std::stoll(a["--n-embd"]);
    cfg.n_layer = std::stoll(a["--n-layer"]);
    cfg.n_head = std::stoll(a["--n-head"]);
    cfg.n_positions = std::stoll(a["--n-positions"]);
    cfg.n_inner = 4 * cfg.n_embd;
    cfg.vocab_size = tok->vocab_size();
    const uint64_t seed = std::stoull(a["--seed"]);
    gpt2::Weights w = gpt2::Weights::random(cfg, seed);
    // Larger position embeddings at the start help positional heads (previous-token) form early.
    w.wpe.mul_(std::stod(a["--wpe-std"]) / 0.02);
    auto params = w.parameters();
    for (auto& p : params) p.requires_grad_(true);
    const int64_t steps = std::stoll(a["--steps"]), B = std::stoll(a["--batch"]), T = std::stoll(a["--seq"]);
    const double lr = std::stod(a["--lr"]);
    torch::optim::AdamW opt(params, torch::optim::AdamWOptions(lr).betas({0.9, 0.95}).weight_decay(0.01));
    torch::manual_seed(seed + 1);
    auto batch_from = [&](const torch::Tensor& src, int64_t b) { return train::random_windows(src, b, T + 1); };
    auto loss_of = [&](const torch::Tensor& xy) {
      auto x = xy.slice(1, 0, T), y = xy.slice(1, 1, T + 1);
      auto h = gpt2::forward_hidden(cfg, w, x, nullptr);
      auto lg = gpt2::logits(w, h);  // (B, T, V)
      return torch::nn::functional::cross_entropy(lg.reshape({-1, cfg.vocab_size}), y.reshape({-1}));
    };
    double last = 0;
    t0 = std::chrono::steady_clock::now();
    for (int64_t s = 1; s <= steps; ++s) {
      train::set_lr(opt, lr * train::lr_factor(s, steps, 0.1));
      opt.zero_grad();
      auto loss = loss_of(batch_from(train, B));
      loss.backward();
      torch::nn::utils::clip_grad_norm_(params, 1.0);
      opt.step();
      last = 0.9 * (s == 1 ? loss.item<double>() : last) + 0.1 * loss.item<double>();
      if (s == 1) last = loss.item<double>();
      if (s % 25 == 0 || s == 1)
        std::cout << "step " << s << "/" << steps << " loss " << loss.item<double>() << " (ema " << last << ") "
                  << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n"
                  << std::flush;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // Final losses on fixed windows of the training and held-out parts.
    torch::NoGradGuard ng;
    torch::manual_seed(seed + 2);
    double tr = 0, he = 0;
    const int evals = 8;
    for (int i = 0; i < evals; ++i) {
      tr += loss_of(batch_from(train, B)).item<double>() / evals;
      he += loss_of(batch_from(held, B)).item<double>() / evals;
    }
    std::cout << "final train loss " << tr << ", held-out loss " << he << " after " << steps << " steps, " << secs
              << " s\n";

    namespace fs = std::filesystem;
    fs::create_directories(a["--out"]);
    std::vector<TensorWrite> out;
    for (auto& [name, t] : w.named()) {
      auto c = t.detach().contiguous();
      out.push_back(tensor_f16("transformer." + name, c.sizes().vec(), c.data_ptr<float>()));
    }
    write_safetensors((fs::path(a["--out"]) / "model.safetensors").string(), out, {{"format", "pt"}});
    std::ofstream(fs::path(a["--out"]) / "config.json") << cfg.to_json().dump(2) << "\n";
    train::write_run_log(a["--out"], {a["--corpus"], n, n_held, steps, B, T, lr, seed, secs, tr, he});
  } catch (const std::exception& e) {
    std::cerr << "train_gpt2: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
