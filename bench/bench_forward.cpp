// Forward + attention capture at T tokens: seconds, achieved GFLOP/s, and that as a fraction
// of the libtorch matmul peak measured in the same run.
// Usage: bench_forward MODEL_DIR [T=1024] [REPEATS=3]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include "attnscope/checkpoint.h"
#include "attnscope/model.h"

using namespace attnscope;
using Clock = std::chrono::steady_clock;

static double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_forward MODEL_DIR [T] [REPEATS]\n");
    return 2;
  }
  const int64_t T = argc > 2 ? std::stoll(argv[2]) : 1024;
  const int reps = argc > 3 ? std::stoi(argv[3]) : 3;
  auto t0 = Clock::now();
  Checkpoint ck(argv[1]);
  auto model = load_model(ck);
  const double load_s = seconds_since(t0);
  const ModelInfo& i = model->info();
  std::mt19937 rng(0);
  std::vector<int64_t> ids(static_cast<size_t>(T));
  for (auto& id : ids) id = int64_t(rng() % uint32_t(i.vocab_size));
  model->forward(ids, TraceOptions{});  // warm-up
  std::vector<double> times;
  for (int r = 0; r < reps; ++r) {
    auto t = Clock::now();
    Trace tr = model->forward(ids, TraceOptions{});
    times.push_back(seconds_since(t));
  }
  std::sort(times.begin(), times.end());
  const double fwd = times[times.size() / 2];
  const double D = double(i.d_model), I = double(i.d_ff), Tn = double(T);
  const double flops =
      double(i.n_layers) * (2 * Tn * D * 3 * D + 2 * Tn * D * D + 2 * 2 * Tn * D * I + 2 * 2 * Tn * Tn * D);
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
      "{\"tokens\": %lld, \"layers\": %lld, \"heads\": %lld, \"d_model\": %lld, \"threads\": %d, \"load_s\": %.3f, "
      "\"forward_s\": %.4f, \"gflop\": %.2f, \"gflops\": %.1f, \"matmul_peak_gflops\": %.1f, \"fraction_of_peak\": "
      "%.3f}\n",
      (long long)T, (long long)i.n_layers, (long long)i.n_heads, (long long)i.d_model, torch::get_num_threads(), load_s,
      fwd, flops / 1e9, achieved, peak, achieved / peak);
  return 0;
}
