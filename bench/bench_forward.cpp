// Forward + attention capture for any family: seconds, achieved GFLOP/s, and that as a
// fraction of the libtorch matmul peak measured in the same run; peak memory; and, for decoder
// families, generation tokens/s with the key/value cache and without it.
// Usage: bench_forward MODEL_DIR [T=1024] [REPEATS=3] [GENERATE_NEW_TOKENS=0]
// Image models ignore T: they run IMAGES=8 images (one forward each) per repeat.
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>

#include "attnscope/checkpoint.h"
#include "attnscope/model.h"

using namespace attnscope;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

static double peak_mib() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return double(r.ru_maxrss) / 1024.0;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_forward MODEL_DIR [T] [REPEATS] [GENERATE_NEW_TOKENS]\n");
    return 2;
  }
  int64_t T = argc > 2 ? std::stoll(argv[2]) : 1024;
  const int reps = argc > 3 ? std::stoi(argv[3]) : 3;
  const int64_t gen_new = argc > 4 ? std::stoll(argv[4]) : 0;
  auto t0 = Clock::now();
  Checkpoint ck(argv[1]);
  auto model = load_model(ck);
  const double load_s = seconds_since(t0);
  const ModelInfo& i = model->info();
  std::mt19937 rng(0);
  ModelInput in;
  int64_t batch = 1;
  if (i.image) {
    batch = 8;
    T = i.grid() * i.grid() + 1;
    auto px = torch::randn({i.channels, i.image_size, i.image_size});
    in.pixels.shape = {i.channels, i.image_size, i.image_size};
    auto* holder = new torch::Tensor(px);
    in.pixels.data = std::shared_ptr<const float>(holder->data_ptr<float>(), [holder](const float*) { delete holder; });
  } else {
    in.ids.resize(size_t(T));
    for (auto& id : in.ids) id = int64_t(rng() % uint32_t(i.vocab_size));
  }
  model->forward(in, TraceOptions{});  // warm-up
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    auto t = Clock::now();
    for (int64_t b = 0; b < batch; ++b) Trace tr = model->forward(in, TraceOptions{});
    times.push_back(seconds_since(t));
  }
  std::sort(times.begin(), times.end());
  const double fwd = times[times.size() / 2];
  // Matmul FLOPs of one sequence: q/k/v and output projections, attention, MLP (3 matrices when gated).
  const double D = double(i.d_model), I = double(i.d_ff), Tn = double(T), Q = double(i.n_heads * i.head_dim),
               K = double(i.n_kv_heads * i.head_dim);
  const double mlp = (i.family == "llama" ? 3.0 : 2.0) * 2 * Tn * D * I;
  double flops =
      double(batch) * double(i.n_layers) * (2 * Tn * D * (Q + 2 * K) + 2 * Tn * Q * D + mlp + 2 * 2 * Tn * Tn * Q);
  if (i.image) flops += double(batch) * 2 * Tn * D * double(i.channels * i.patch_size * i.patch_size);
  // The libtorch matmul peak at the MLP's shape, same threads.
  auto a = torch::randn({T, i.d_model}), b = torch::randn({i.d_model, i.d_ff});
  torch::mm(a, b);
  double best = 1e9;
  for (int r = 0; r < 20; ++r) {
    auto t = Clock::now();
    auto c = torch::mm(a, b);
    best = std::min(best, seconds_since(t));
  }
  const double peak = 2 * Tn * D * I / best / 1e9, achieved = flops / fwd / 1e9;
  std::printf(
      "{\"model_type\": \"%s\", \"tokens\": %lld, \"batch\": %lld, \"layers\": %lld, \"heads\": %lld, \"kv_heads\": "
      "%lld, \"d_model\": %lld, \"params\": %lld, \"threads\": %d, \"load_s\": %.3f, \"forward_s\": %.4f, \"gflop\": "
      "%.2f, \"gflops\": %.1f, \"matmul_peak_gflops\": %.1f, \"fraction_of_peak\": %.3f, \"peak_mib\": %.0f",
      i.model_type.c_str(), (long long)T, (long long)batch, (long long)i.n_layers, (long long)i.n_heads,
      (long long)i.n_kv_heads, (long long)i.d_model, (long long)i.n_params, torch::get_num_threads(), load_s, fwd,
      flops / 1e9, achieved, peak, achieved / peak, peak_mib());
  if (gen_new > 0 && i.head == "lm") {
    std::vector<int64_t> prompt(32);
    for (auto& id : prompt) id = int64_t(rng() % uint32_t(i.vocab_size));
    GenerateOptions o;
    o.max_new_tokens = gen_new;
    o.attention = false;
    auto with = model->generate(prompt, o, nullptr);
    o.use_cache = false;
    auto without = model->generate(prompt, o, nullptr);
    const double n = double(with.ids.size() - prompt.size());
    std::printf(", \"generate_new_tokens\": %.0f, \"kv_cache_tokens_per_s\": %.1f, \"no_cache_tokens_per_s\": %.1f", n,
                n / with.seconds, double(without.ids.size() - prompt.size()) / without.seconds);
  }
  std::printf("}\n");
  return 0;
}
