// The projections on given points, for bench/projection_bench.py: reads "points" [n, d] (F32) from
// a safetensors file and runs
//   tsne DIMS METHOD   -> writes "y" [n, DIMS], prints {"seconds", "kl"}
//   umap DIMS          -> writes "y" [n, DIMS], prints {"seconds"}
//   kl COORDS.safetensors -> the exact KL(P || Q) of the embedding "y" there (perplexity 30), for
//                            comparing embeddings made elsewhere with the same P.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "attnscope/error.h"
#include "attnscope/projection.h"
#include "attnscope/safetensors.h"

using namespace attnscope;

int main(int argc, char** argv) {
  try {
    if (argc < 4)
      throw Error("usage: bench_projection POINTS OUT|COORDS tsne DIMS [METHOD [ITERATIONS]] | umap DIMS | kl");
    SafetensorsFile f(argv[1]);
    const auto shape = f.info("points").shape;
    const int64_t n = shape[0], d = shape[1];
    const std::vector<float> x = f.to_f32("points");
    const std::string what = argv[3];
    if (what == "kl") {
      SafetensorsFile c(argv[2]);
      const auto yf = c.to_f32("y");
      const int64_t dims = c.info("y").shape[1];
      const Affinities p = tsne_affinities(x.data(), n, d, 30);
      std::printf("{\"kl\": %.6f}\n", tsne_kl(p, std::vector<double>(yf.begin(), yf.end()), dims));
      return 0;
    }
    const int64_t dims = argc > 4 ? std::atoi(argv[4]) : 2;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<float> y;
    double kl = -1;
    if (what == "tsne") {
      TsneOptions o;
      o.dims = dims;
      if (argc > 5) o.method = argv[5];
      if (argc > 6) {
        char* end = nullptr;
        o.iterations = std::strtoll(argv[6], &end, 10);
        if (end == argv[6] || *end != '\0') throw Error(std::string("ITERATIONS ") + argv[6] + ": expected an integer");
      }
      const TsneResult r = tsne(x.data(), n, d, o);
      y = r.y;
      kl = r.kl;
    } else if (what == "umap") {
      UmapOptions o;
      o.dims = dims;
      y = umap(x.data(), n, d, o);
    } else {
      throw Error("expected tsne, umap or kl, found " + what);
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    write_safetensors(argv[2], {tensor_f32("y", {n, dims}, y.data())});
    std::printf("{\"seconds\": %.3f, \"kl\": %.6f}\n", s, kl);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_projection: %s\n", e.what());
    return 1;
  }
}
