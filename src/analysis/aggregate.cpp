#include <algorithm>
#include <cmath>
#include <cstdlib>

#include "attnscope/analysis.h"
#include "attnscope/error.h"

namespace attnscope {

int64_t resolve_layer(int64_t layer, int64_t n) {
  const int64_t l = layer < 0 ? n + layer : layer;
  if (l < 0 || l >= n)
    throw Error("--layer " + std::to_string(layer) + ": expected a layer in 0.." + std::to_string(n - 1) + " or -" +
                std::to_string(n) + "..-1 (the model has " + std::to_string(n) + " layers)");
  return l;
}

HeadSelection HeadSelection::parse(const std::string& s, int64_t n) {
  HeadSelection h;
  if (s == "mean") {
    h.kind = Kind::Mean;
    return h;
  }
  if (s == "max") {
    h.kind = Kind::Max;
    return h;
  }
  if (s == "min") {
    h.kind = Kind::Min;
    return h;
  }
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || errno) throw Error("--head " + s + ": expected a head index, mean, max or min");
  const long long i = v < 0 ? n + v : v;
  if (i < 0 || i >= n)
    throw Error("--head " + s + ": expected a head in 0.." + std::to_string(n - 1) + " (the model has " +
                std::to_string(n) + " heads per layer), or mean, max, min");
  h.kind = Kind::Index;
  h.index = i;
  return h;
}

std::string HeadSelection::describe() const {
  switch (kind) {
    case Kind::Mean:
      return "mean over heads";
    case Kind::Max:
      return "max over heads";
    case Kind::Min:
      return "min over heads";
    case Kind::Index:
      return "head " + std::to_string(index);
  }
  return "";
}

std::vector<float> reduce_heads(const Array& a, const HeadSelection& sel) {
  if (a.shape.size() != 3) throw Error("attention: expected [heads, queries, keys]");
  const int64_t H = a.shape[0], n = a.shape[1] * a.shape[2];
  const float* p = a.ptr();
  std::vector<float> out(static_cast<size_t>(n));
  if (sel.kind == HeadSelection::Kind::Index) {
    std::copy(p + sel.index * n, p + (sel.index + 1) * n, out.begin());
    return out;
  }
  std::copy(p, p + n, out.begin());
  for (int64_t h = 1; h < H; ++h) {
    const float* q = p + h * n;
    switch (sel.kind) {
      case HeadSelection::Kind::Mean:
        for (int64_t i = 0; i < n; ++i) out[size_t(i)] += q[i];
        break;
      case HeadSelection::Kind::Max:
        for (int64_t i = 0; i < n; ++i) out[size_t(i)] = std::max(out[size_t(i)], q[i]);
        break;
      case HeadSelection::Kind::Min:
        for (int64_t i = 0; i < n; ++i) out[size_t(i)] = std::min(out[size_t(i)], q[i]);
        break;
      default:
        break;
    }
  }
  if (sel.kind == HeadSelection::Kind::Mean)
    for (auto& v : out) v /= float(H);
  return out;
}

}  // namespace attnscope

namespace attnscope {

std::vector<Prediction> top_k(const float* logits, int64_t n, int64_t k) {
  if (n <= 0) return {};
  const float mx = *std::max_element(logits, logits + n);
  double z = 0;
  for (int64_t i = 0; i < n; ++i) z += std::exp(double(logits[i]) - mx);
  std::vector<int64_t> idx(static_cast<size_t>(n), 0);
  for (int64_t i = 0; i < n; ++i) idx[size_t(i)] = i;
  k = std::min(k, n);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                    [&](int64_t a, int64_t b) { return logits[a] != logits[b] ? logits[a] > logits[b] : a < b; });
  std::vector<Prediction> out;
  for (int64_t i = 0; i < k; ++i) out.push_back({idx[size_t(i)], std::exp(double(logits[idx[size_t(i)]]) - mx) / z});
  return out;
}

}  // namespace attnscope
