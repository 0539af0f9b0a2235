#include "attnscope/explain.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "attnscope/error.h"

namespace attnscope {

Square Square::identity(int64_t n) {
  Square s{n, std::vector<double>(size_t(n * n), 0.0)};
  for (int64_t i = 0; i < n; ++i) s.at(i, i) = 1;
  return s;
}

namespace {

void check_layers(const std::vector<Array>& attention, const char* what) {
  if (attention.empty()) throw Error(std::string(what) + ": expected attention for at least one layer, found none");
  const auto& s = attention[0].shape;
  for (const auto& a : attention)
    if (a.empty() || a.shape.size() != 3 || a.shape != s || a.dim(1) != a.dim(2))
      throw Error(std::string(what) + ": expected every layer's attention as [heads, n, n] of one size");
}

// C = A · B for n x n.
Square matmul(const Square& a, const Square& b) {
  const int64_t n = a.n;
  Square c{n, std::vector<double>(size_t(n * n), 0.0)};
  for (int64_t i = 0; i < n; ++i) {
    double* ci = &c.v[size_t(i * n)];
    for (int64_t k = 0; k < n; ++k) {
      const double aik = a.at(i, k);
      if (aik == 0) continue;
      const double* bk = &b.v[size_t(k * n)];
      for (int64_t j = 0; j < n; ++j) ci[j] += aik * bk[j];
    }
  }
  return c;
}

}  // namespace

Square rollout_layer(const Array& attention, const RolloutOptions& o) {
  const int64_t H = attention.dim(0), n = attention.dim(1);
  if (o.fusion != "mean" && o.fusion != "max" && o.fusion != "min")
    throw Error("--fusion " + o.fusion + ": expected mean, max or min");
  if (!(o.discard_ratio >= 0 && o.discard_ratio < 1))
    throw Error("--discard " + std::to_string(o.discard_ratio) + ": expected a ratio in [0, 1)");
  Square w{n, std::vector<double>(size_t(n * n), 0.0)};
  const float* a = attention.ptr();
  for (int64_t t = 0; t < n * n; ++t) {
    double acc = o.fusion == "mean" ? 0 : a[t];
    for (int64_t h = 0; h < H; ++h) {
      const double x = a[h * n * n + t];
      if (o.fusion == "mean")
        acc += x;
      else if (o.fusion == "max")
        acc = std::max(acc, x);
      else
        acc = std::min(acc, x);
    }
    w.v[size_t(t)] = o.fusion == "mean" ? acc / double(H) : acc;
  }
  if (o.discard_ratio > 0) {  // the lowest share of all weights goes, the diagonal stays
    std::vector<int64_t> idx(size_t(n * n));
    std::iota(idx.begin(), idx.end(), 0);
    const size_t k = size_t(double(n * n) * o.discard_ratio);
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t x, int64_t y) { return w.v[size_t(x)] < w.v[size_t(y)]; });
    for (size_t r = 0; r < k; ++r)
      if (idx[r] / n != idx[r] % n) w.v[size_t(idx[r])] = 0;
  }
  for (int64_t i = 0; i < n; ++i) {
    w.at(i, i) += 1;
    double s = 0;
    for (int64_t j = 0; j < n; ++j) s += w.at(i, j);
    for (int64_t j = 0; j < n; ++j) w.at(i, j) /= s;
  }
  return w;
}

Square attention_rollout(const std::vector<Array>& attention, const RolloutOptions& o) {
  check_layers(attention, "rollout");
  const int64_t L = int64_t(attention.size());
  if (o.start_layer < 0 || o.start_layer >= L)
    throw Error("--start-layer " + std::to_string(o.start_layer) + ": expected 0.." + std::to_string(L - 1));
  Square r = rollout_layer(attention[size_t(o.start_layer)], o);
  for (int64_t l = o.start_layer + 1; l < L; ++l) r = matmul(rollout_layer(attention[size_t(l)], o), r);
  return r;
}

namespace {

// Dinic's maximum flow on a fixed graph; capacities are restored before each solve.
class Dinic {
 public:
  Dinic(int64_t n, const std::vector<FlowEdge>& edges) : n_(n), head_(size_t(n + 1), 0) {
    for (const auto& e : edges) {
      if (e.u < 0 || e.u >= n || e.v < 0 || e.v >= n) throw Error("max_flow: edge endpoint outside the graph");
      head_[size_t(e.u + 1)]++;
      head_[size_t(e.v + 1)]++;
    }
    for (int64_t i = 0; i < n; ++i) head_[size_t(i + 1)] += head_[size_t(i)];
    to_.resize(2 * edges.size());
    cap0_.resize(2 * edges.size());
    rev_.resize(2 * edges.size());
    std::vector<int64_t> fill(head_.begin(), head_.end() - 1);
    for (const auto& e : edges) {
      const int64_t a = fill[size_t(e.u)]++, b = fill[size_t(e.v)]++;
      to_[size_t(a)] = e.v, cap0_[size_t(a)] = std::max(0.0, e.cap), rev_[size_t(a)] = b;
      to_[size_t(b)] = e.u, cap0_[size_t(b)] = 0, rev_[size_t(b)] = a;
    }
    level_.resize(size_t(n));
    it_.resize(size_t(n));
  }
  double solve(int64_t s, int64_t t) {
    if (s == t) throw Error("max_flow: source and sink are the same node");
    cap_ = cap0_;
    double flow = 0;
    while (bfs(s, t)) {
      for (int64_t i = 0; i < n_; ++i) it_[size_t(i)] = head_[size_t(i)];
      while (true) {
        const double f = dfs(s, t, std::numeric_limits<double>::infinity());
        if (f <= kEps) break;
        flow += f;
      }
    }
    return flow;
  }

 private:
  static constexpr double kEps = 1e-13;
  bool bfs(int64_t s, int64_t t) {
    std::fill(level_.begin(), level_.end(), -1);
    std::vector<int64_t> q{s};
    level_[size_t(s)] = 0;
    for (size_t k = 0; k < q.size(); ++k) {
      const int64_t u = q[k];
      for (int64_t e = head_[size_t(u)]; e < head_[size_t(u + 1)]; ++e)
        if (cap_[size_t(e)] > kEps && level_[size_t(to_[size_t(e)])] < 0) {
          level_[size_t(to_[size_t(e)])] = level_[size_t(u)] + 1;
          q.push_back(to_[size_t(e)]);
        }
    }
    return level_[size_t(t)] >= 0;
  }
  // Iterative would avoid deep recursion; the depth is at most the number of BFS levels.
  double dfs(int64_t u, int64_t t, double pushed) {
    if (u == t) return pushed;
    for (int64_t& e = it_[size_t(u)]; e < head_[size_t(u + 1)]; ++e) {
      const int64_t v = to_[size_t(e)];
      if (cap_[size_t(e)] <= kEps || level_[size_t(v)] != level_[size_t(u)] + 1) continue;
      const double f = dfs(v, t, std::min(pushed, cap_[size_t(e)]));
      if (f > kEps) {
        cap_[size_t(e)] -= f;
        cap_[size_t(rev_[size_t(e)])] += f;
        return f;
      }
    }
    return 0;
  }
  int64_t n_;
  std::vector<int64_t> head_, to_, rev_, level_, it_;
  std::vector<double> cap0_, cap_;
};

}  // namespace

double max_flow(int64_t n_nodes, const std::vector<FlowEdge>& edges, int64_t source, int64_t sink) {
  if (source < 0 || source >= n_nodes || sink < 0 || sink >= n_nodes)
    throw Error("max_flow: source or sink outside the graph");
  return Dinic(n_nodes, edges).solve(source, sink);
}

Square attention_flow(const std::vector<Array>& attention, const RolloutOptions& o, const std::vector<int64_t>& rows) {
  check_layers(attention, "flow");
  const int64_t L = int64_t(attention.size()), n = attention[0].dim(1);
  if (o.start_layer < 0 || o.start_layer >= L)
    throw Error("--start-layer " + std::to_string(o.start_layer) + ": expected 0.." + std::to_string(L - 1));
  const int64_t used = L - o.start_layer;
  // Node (k, t), k = 0 (inputs) .. used (outputs): k * n + t. Edges go down one layer.
  std::vector<FlowEdge> edges;
  for (int64_t k = 1; k <= used; ++k) {
    const Square a = rollout_layer(attention[size_t(o.start_layer + k - 1)], o);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        if (a.at(i, j) > 0) edges.push_back({k * n + i, (k - 1) * n + j, a.at(i, j)});
  }
  Dinic g((used + 1) * n, edges);
  std::vector<int64_t> want = rows;
  if (want.empty())
    for (int64_t i = 0; i < n; ++i) want.push_back(i);
  Square out{n, std::vector<double>(size_t(n * n), 0.0)};
  for (int64_t i : want) {
    if (i < 0 || i >= n) throw Error("flow: position " + std::to_string(i) + " outside 0.." + std::to_string(n - 1));
    double sum = 0;
    for (int64_t j = 0; j < n; ++j) sum += out.at(i, j) = g.solve(used * n + i, j);
    if (sum > 0)
      for (int64_t j = 0; j < n; ++j) out.at(i, j) /= sum;
  }
  return out;
}

Square generation_attention(const std::vector<Array>& attention, int64_t prompt_length) {
  check_layers(attention, "generation");
  const int64_t H = attention[0].dim(0), T = attention[0].dim(1), L = int64_t(attention.size());
  if (prompt_length < 1 || prompt_length > T)
    throw Error("generation: prompt length " + std::to_string(prompt_length) + " outside 1.." + std::to_string(T));
  Square out{T, std::vector<double>(size_t(T * T), 0.0)};
  for (int64_t i = 0; i < prompt_length; ++i) out.at(i, i) = 1;
  std::vector<double> row(static_cast<size_t>(T));
  for (int64_t t = prompt_length; t < T; ++t) {
    const int64_t q = t - 1;  // the position that predicted token t
    for (int64_t l = 0; l < L; ++l) {
      const float* a = attention[size_t(l)].ptr();
      std::fill(row.begin(), row.end(), 0.0);
      for (int64_t h = 0; h < H; ++h)
        for (int64_t j = 0; j <= q; ++j) row[size_t(j)] += a[(h * T + q) * T + j] / double(H);
      row[0] = 0;  // the first token's "null attention" (the sink)
      double s = 0;
      for (int64_t j = 0; j <= q; ++j) s += row[size_t(j)];
      if (s > 0)
        for (int64_t j = 0; j <= q; ++j) out.at(t, j) += row[size_t(j)] / s / double(L);
    }
  }
  return out;
}

Square sigmoid_display(const Square& table, int64_t prompt_length) {
  Square out = table;
  for (int64_t t = prompt_length; t < table.n; ++t) {
    const int64_t m = t - 1;  // columns 1 .. t-1 carry the row's values
    if (m < 1) continue;
    double mean = 0, var = 0;
    for (int64_t j = 1; j < t; ++j) mean += table.at(t, j) / double(m);
    for (int64_t j = 1; j < t; ++j) var += (table.at(t, j) - mean) * (table.at(t, j) - mean) / double(m);
    const double sd = std::sqrt(var);
    for (int64_t j = 1; j < t; ++j)
      out.at(t, j) = 1.0 / (1.0 + std::exp(-(sd > 0 ? (table.at(t, j) - mean) / sd : 0.0)));
  }
  return out;
}

std::vector<std::vector<double>> activation_energy(const std::vector<Array>& hidden, double p) {
  if (!(p > 0)) throw Error("--p " + std::to_string(p) + ": expected a power > 0");
  std::vector<std::vector<double>> out;
  for (const auto& h : hidden) {
    if (h.empty() || h.shape.size() != 2) throw Error("activation: expected hidden states as [tokens, d_model]");
    const int64_t T = h.dim(0), D = h.dim(1);
    std::vector<double> e(size_t(T), 0.0);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t d = 0; d < D; ++d) e[size_t(t)] += std::pow(std::fabs(double(h.ptr()[t * D + d])), p);
    double norm = 0;
    for (double x : e) norm += x * x;
    norm = std::sqrt(norm);
    if (norm > 0)
      for (double& x : e) x /= norm;
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace attnscope
