// AttentionViz's alignment of queries and keys: every softmax row unchanged, mean norms equal;
// the query-key Spearman number against scipy (tests/reference/projection_reference.py).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "attnscope/qk.h"
#include "test_util.h"

using namespace attnscope;

namespace {

// Softmax over keys j of item(i) (j <= i when causal) of q_i . k_j / sqrt(hd), row-major [n, n].
std::vector<double> attention(const std::vector<float>& q, const std::vector<float>& k, int64_t n, int64_t hd,
                              const std::vector<int32_t>& item, bool causal) {
  std::vector<double> a(size_t(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double mx = -INFINITY, sum = 0;
    std::vector<double> s(size_t(n), -INFINITY);
    for (int64_t j = 0; j < n; ++j) {
      if (item[size_t(j)] != item[size_t(i)] || (causal && j > i)) continue;
      double d = 0;
      for (int64_t c = 0; c < hd; ++c) d += double(q[size_t(i * hd + c)]) * k[size_t(j * hd + c)];
      s[size_t(j)] = d / std::sqrt(double(hd));
      mx = std::max(mx, s[size_t(j)]);
    }
    for (int64_t j = 0; j < n; ++j)
      if (std::isfinite(s[size_t(j)])) sum += a[size_t(i * n + j)] = std::exp(s[size_t(j)] - mx);
    for (int64_t j = 0; j < n; ++j) a[size_t(i * n + j)] /= sum;
  }
  return a;
}

}  // namespace

TEST(Qk, TranslationAndEqualisationLeaveEveryAttentionProbabilityUnchanged) {
  const int64_t n = 50, hd = 16;
  std::mt19937_64 rng(2);
  std::normal_distribution<float> g(0, 1);
  std::vector<float> q(size_t(n * hd)), k(size_t(n * hd));
  for (float& v : q) v = g(rng) + 1.5f;  // offset clouds: the translation is not trivial
  for (float& v : k) v = 3 * g(rng) - 2.0f;
  std::vector<int32_t> item;
  for (int64_t i = 0; i < n; ++i) item.push_back(int32_t(i / 20));
  for (bool causal : {false, true})
    for (bool equalize : {false, true}) {
      auto q2 = q, k2 = k;
      const QkAlignment al = align_queries_keys(q2.data(), k2.data(), n, hd, equalize);
      const auto before = attention(q, k, n, hd, item, causal), after = attention(q2, k2, n, hd, item, causal);
      for (size_t e = 0; e < before.size(); ++e) ASSERT_NEAR(before[e], after[e], 1e-5) << e;
      // The translated key cloud's mean equals the query cloud's (the equalisation then scales
      // both about the origin: keys x c, queries / c).
      for (int64_t c = 0; c < hd; ++c) {
        double mq = 0, mk = 0;
        for (int64_t i = 0; i < n; ++i) mq += q2[size_t(i * hd + c)], mk += k2[size_t(i * hd + c)];
        EXPECT_NEAR(mq / n * al.scale * al.scale, mk / n, 1e-4);
      }
      if (equalize) {
        double nq = 0, nk = 0;
        for (int64_t i = 0; i < n; ++i) {
          double sq = 0, sk = 0;
          for (int64_t c = 0; c < hd; ++c)
            sq += q2[size_t(i * hd + c)] * q2[size_t(i * hd + c)],
                sk += k2[size_t(i * hd + c)] * k2[size_t(i * hd + c)];
          nq += std::sqrt(sq), nk += std::sqrt(sk);
        }
        EXPECT_NEAR(nq / nk, 1.0, 1e-5);
        EXPECT_NE(al.scale, 1.0);
      }
    }
}

TEST(Qk, SpearmanOfDotProductAndDistanceMatchesScipy) {
  std::ifstream in(test::data_dir() + "/projection_reference/projection_expected.json");
  const auto e = nlohmann::json::parse(in);
  std::vector<float> q, k;
  for (const auto& r : e["qk_q"])
    for (const auto& v : r) q.push_back(v.get<float>());
  for (const auto& r : e["qk_k"])
    for (const auto& v : r) k.push_back(v.get<float>());
  const auto item = e["qk_items"].get<std::vector<int32_t>>();
  EXPECT_NEAR(qk_distance_spearman(q.data(), k.data(), 8, item, true, 1000000), e["qk_rho"].get<double>(), 1e-9);
}
