// What the training programs for the shipped models share (tools/ only): arguments, the
// corpus, the learning-rate schedule, random windows and saving named tensors.
#pragma once
#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <initializer_list>
#include <iostream>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "attnscope/error.h"
#include "attnscope/safetensors.h"

namespace attnscope::train {

using Args = std::map<std::string, std::string>;

// "--key value" pairs over the defaults; returns false (after saying which) if a required key is missing.
inline bool parse_args(int argc, char** argv, Args& a, std::initializer_list<const char*> required, const char* prog) {
  for (int i = 1; i + 1 < argc; i += 2) a[argv[i]] = argv[i + 1];
  for (const char* k : required)
    if (!a.count(k)) {
      std::cerr << prog << ": missing " << k << "\n";
      return false;
    }
  return true;
}

inline std::string read_text(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(path + ": cannot read corpus");
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Linear warm-up over the first 5 % of the steps, then cosine decay to `floor` of the peak.
inline double lr_factor(int64_t step, int64_t steps, double floor) {
  const int64_t warmup = std::max<int64_t>(1, steps / 20);
  const double f = step <= warmup ? double(step) / double(warmup)
                                  : 0.5 * (1 + std::cos(M_PI * double(step - warmup) / double(steps - warmup)));
  return floor + (1 - floor) * f;
}

inline void set_lr(torch::optim::AdamW& opt, double lr) {
  for (auto& g : opt.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
}

inline std::vector<torch::Tensor> parameters(std::map<std::string, torch::Tensor>& w) {
  std::vector<torch::Tensor> out;
  for (auto& [n, t] : w) out.push_back(t.requires_grad_(true));
  return out;
}

// b random windows of len consecutive tokens: (b, len).
inline torch::Tensor random_windows(const torch::Tensor& src, int64_t b, int64_t len) {
  auto starts = torch::randint(0, src.size(0) - len, {b}, torch::kLong);
  std::vector<torch::Tensor> xs;
  for (int64_t i = 0; i < b; ++i)
    xs.push_back(src.slice(0, starts[i].item<int64_t>(), starts[i].item<int64_t>() + len));
  return torch::stack(xs);
}

// The tensors under their Hugging Face names, F16 or F32.
inline void save_named(const std::map<std::string, torch::Tensor>& w, const std::string& path, bool f16) {
  std::vector<TensorWrite> tw;
  for (const auto& [name, t] : w) {
    auto c = t.detach().contiguous();
    tw.push_back(f16 ? tensor_f16(name, c.sizes().vec(), c.data_ptr<float>())
                     : tensor_f32(name, c.sizes().vec(), c.data_ptr<float>()));
  }
  write_safetensors(path, tw, {{"format", "pt"}});
}

// The record of a text-model run, written as train_log.json beside the weights; `extra` adds
// what one trainer alone knows (accuracies, options).
struct RunLog {
  std::string corpus;
  int64_t corpus_tokens = 0, heldout_tokens = 0, steps = 0, batch = 0, seq = 0;
  double lr = 0;
  uint64_t seed = 0;
  double seconds = 0, final_train_loss = 0, heldout_loss = 0;
};
inline void write_run_log(const std::filesystem::path& dir, const RunLog& r, const nlohmann::json& extra = {}) {
  nlohmann::json log{{"corpus", r.corpus},
                     {"corpus_tokens", r.corpus_tokens},
                     {"heldout_tokens", r.heldout_tokens},
                     {"steps", r.steps},
                     {"batch", r.batch},
                     {"seq", r.seq},
                     {"lr", r.lr},
                     {"seed", r.seed},
                     {"seconds", r.seconds},
                     {"final_train_loss", r.final_train_loss},
                     {"heldout_loss", r.heldout_loss}};
  if (extra.is_object()) log.update(extra);
  std::ofstream(dir / "train_log.json") << log.dump(2) << "\n";
}

}  // namespace attnscope::train
