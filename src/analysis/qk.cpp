#include "attnscope/qk.h"

#include <cmath>

#include "attnscope/error.h"
#include "attnscope/projection.h"

namespace attnscope {

QkAlignment align_queries_keys(float* q, float* k, int64_t n, int64_t hd, bool equalize) {
  if (n < 1 || hd < 1) throw Error("qk: expected at least one token and one dimension");
  std::vector<double> mq(static_cast<size_t>(hd), 0.0), mk(static_cast<size_t>(hd), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < hd; ++c) {
      mq[size_t(c)] += q[i * hd + c];
      mk[size_t(c)] += k[i * hd + c];
    }
  QkAlignment a;
  for (int64_t c = 0; c < hd; ++c) a.delta.push_back(float((mq[size_t(c)] - mk[size_t(c)]) / double(n)));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < hd; ++c) k[i * hd + c] += a.delta[size_t(c)];
  if (!equalize) return a;
  double nq = 0, nk = 0;
  for (int64_t i = 0; i < n; ++i) {
    double sq = 0, sk = 0;
    for (int64_t c = 0; c < hd; ++c) {
      sq += double(q[i * hd + c]) * q[i * hd + c];
      sk += double(k[i * hd + c]) * k[i * hd + c];
    }
    nq += std::sqrt(sq);
    nk += std::sqrt(sk);
  }
  if (nq <= 0 || nk <= 0) return a;
  a.scale = std::sqrt(nq / nk);
  for (int64_t i = 0; i < n * hd; ++i) {
    k[i] = float(k[i] * a.scale);
    q[i] = float(q[i] / a.scale);
  }
  return a;
}

double qk_distance_spearman(const float* q, const float* k, int64_t hd, const std::vector<int32_t>& item, bool causal,
                            int64_t max_pairs) {
  const int64_t n = int64_t(item.size());
  // Pairs (i, j): same item, and j <= i for causal models. Items are contiguous runs.
  int64_t total = 0;
  for (int64_t s = 0; s < n;) {
    int64_t e = s;
    while (e < n && item[size_t(e)] == item[size_t(s)]) ++e;
    const int64_t len = e - s;
    total += causal ? len * (len + 1) / 2 : len * len;
    s = e;
  }
  if (total < 2) return 0;
  const int64_t stride = std::max<int64_t>(1, total / std::max<int64_t>(max_pairs, 2));
  std::vector<double> dot, dist;
  int64_t counter = 0;
  for (int64_t s = 0; s < n;) {
    int64_t e = s;
    while (e < n && item[size_t(e)] == item[size_t(s)]) ++e;
    for (int64_t i = s; i < e; ++i)
      for (int64_t j = s; j < (causal ? i + 1 : e); ++j) {
        if (counter++ % stride != 0) continue;
        double d = 0, x = 0;
        for (int64_t c = 0; c < hd; ++c) {
          const double qi = q[i * hd + c], kj = k[j * hd + c];
          d += qi * kj;
          x += (qi - kj) * (qi - kj);
        }
        dot.push_back(d);
        dist.push_back(std::sqrt(x));
      }
    s = e;
  }
  return spearman(dot, dist);
}

}  // namespace attnscope
