#include "attnscope/projection.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <exception>
#include <functional>
#include <numeric>
#include <random>
#include <thread>

#include <fftw3.h>
// Without hnswlib's hand-vectorised paths: their prefetches read one entry past a neighbour list
// (AddressSanitizer: heap-buffer-overflow in searchBaseLayer, Debian's hnswlib 0.6.2).
#define NO_MANUAL_VECTORIZATION
#include <hnswlib/hnswlib.h>

#include <mutex>

#include "attnscope/error.h"

namespace attnscope {

namespace {

// > 0: this thread's caller already runs one job per core (SingleThreaded).
thread_local int serial_depth = 0;

// Runs fn(begin, end) over [0, n) on every core; the first exception thrown is rethrown here.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(std::thread::hardware_concurrency(), n / 64 + 1));
  if (threads == 1 || serial_depth > 0) return fn(0, n);
  std::vector<std::thread> pool;
  std::mutex m;
  std::exception_ptr failure;
  const int64_t per = (n + threads - 1) / threads;
  for (int64_t t = 0; t < threads; ++t) {
    const int64_t b = t * per, e = std::min(n, b + per);
    if (b < e)
      pool.emplace_back([&, b, e] {
        try {
          fn(b, e);
        } catch (...) {
          std::lock_guard<std::mutex> g(m);
          if (!failure) failure = std::current_exception();
        }
      });
  }
  for (auto& th : pool) th.join();
  if (failure) std::rethrow_exception(failure);
}

// Eigen-decomposition of a symmetric d x d matrix by cyclic Jacobi rotations: values descending,
// vectors as the columns of v (row-major d x d).
void symmetric_eigen(std::vector<double> a, int64_t d, std::vector<double>* values, std::vector<double>* v) {
  v->assign(size_t(d * d), 0.0);
  for (int64_t i = 0; i < d; ++i) (*v)[size_t(i * d + i)] = 1;
  auto A = [&](int64_t i, int64_t j) -> double& { return a[size_t(i * d + j)]; };
  for (int sweep = 0; sweep < 100; ++sweep) {
    double off = 0, total = 0;
    for (int64_t i = 0; i < d; ++i)
      for (int64_t j = 0; j < d; ++j) (i == j ? total : off) += A(i, j) * A(i, j);
    if (off <= 1e-30 * (total + off) || off == 0) break;
    for (int64_t p = 0; p < d; ++p)
      for (int64_t q = p + 1; q < d; ++q) {
        const double apq = A(p, q);
        if (std::fabs(apq) < 1e-300) continue;
        const double theta = (A(q, q) - A(p, p)) / (2 * apq);
        const double t = (theta >= 0 ? 1.0 : -1.0) / (std::fabs(theta) + std::sqrt(theta * theta + 1));
        const double c = 1 / std::sqrt(t * t + 1), s = t * c;
        for (int64_t k = 0; k < d; ++k) {  // A <- J^T A J
          const double akp = A(k, p), akq = A(k, q);
          A(k, p) = c * akp - s * akq;
          A(k, q) = s * akp + c * akq;
        }
        for (int64_t k = 0; k < d; ++k) {
          const double apk = A(p, k), aqk = A(q, k);
          A(p, k) = c * apk - s * aqk;
          A(q, k) = s * apk + c * aqk;
        }
        for (int64_t k = 0; k < d; ++k) {
          double& vkp = (*v)[size_t(k * d + p)];
          double& vkq = (*v)[size_t(k * d + q)];
          const double x = vkp, y = vkq;
          vkp = c * x - s * y;
          vkq = s * x + c * y;
        }
      }
  }
  std::vector<int64_t> order(static_cast<size_t>(d));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return A(i, i) > A(j, j); });
  std::vector<double> sorted(size_t(d * d));
  values->resize(size_t(d));
  for (int64_t c = 0; c < d; ++c) {
    (*values)[size_t(c)] = A(order[size_t(c)], order[size_t(c)]);
    for (int64_t r = 0; r < d; ++r) sorted[size_t(r * d + c)] = (*v)[size_t(r * d + order[size_t(c)])];
  }
  *v = std::move(sorted);
}

}  // namespace

SingleThreaded::SingleThreaded() { ++serial_depth; }
SingleThreaded::~SingleThreaded() { --serial_depth; }

std::vector<float> pca(const float* x, int64_t n, int64_t d, int64_t dims, std::vector<double>* variance) {
  if (n < 2 || d < 1 || dims < 1 || dims > d)
    throw Error("pca: expected at least 2 points and 1 <= dims <= " + std::to_string(d) + ", found n " +
                std::to_string(n) + ", dims " + std::to_string(dims));
  std::vector<double> mean(size_t(d), 0.0), cov(size_t(d * d), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < d; ++k) mean[size_t(k)] += x[i * d + k];
  for (double& m : mean) m /= double(n);
  for (int64_t i = 0; i < n; ++i) {
    const float* r = x + i * d;
    for (int64_t a = 0; a < d; ++a) {
      const double ca = r[a] - mean[size_t(a)];
      for (int64_t b = a; b < d; ++b) cov[size_t(a * d + b)] += ca * (r[b] - mean[size_t(b)]);
    }
  }
  for (int64_t a = 0; a < d; ++a)
    for (int64_t b = a; b < d; ++b) cov[size_t(b * d + a)] = cov[size_t(a * d + b)] /= double(n - 1);
  std::vector<double> values, vecs;
  symmetric_eigen(cov, d, &values, &vecs);
  for (int64_t c = 0; c < dims; ++c) {  // sign: the largest-magnitude loading positive
    int64_t best = 0;
    for (int64_t r = 1; r < d; ++r)
      if (std::fabs(vecs[size_t(r * d + c)]) > std::fabs(vecs[size_t(best * d + c)])) best = r;
    if (vecs[size_t(best * d + c)] < 0)
      for (int64_t r = 0; r < d; ++r) vecs[size_t(r * d + c)] = -vecs[size_t(r * d + c)];
  }
  if (variance) variance->assign(values.begin(), values.begin() + dims);
  std::vector<float> out(size_t(n * dims));
  parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      for (int64_t c = 0; c < dims; ++c) {
        double s = 0;
        for (int64_t k = 0; k < d; ++k) s += (x[i * d + k] - mean[size_t(k)]) * vecs[size_t(k * d + c)];
        out[size_t(i * dims + c)] = float(s);
      }
  });
  return out;
}

namespace {

// Squared Euclidean distance in four-lane blocks (GCC/Clang vector extensions: SSE on any x86-64)
// with two accumulators, then the tail: hnswlib's own SIMD paths are compiled out (above), and its
// plain loop is a serial chain of scalar adds.
float l2_squared(const void* pa, const void* pb, const void* pd) {
  typedef float v4 __attribute__((vector_size(16)));
  const float* a = static_cast<const float*>(pa);
  const float* b = static_cast<const float*>(pb);
  const size_t d = *static_cast<const size_t*>(pd);
  v4 s0 = {0, 0, 0, 0}, s1 = {0, 0, 0, 0};
  size_t c = 0;
  for (; c + 8 <= d; c += 8) {
    v4 a0, b0, a1, b1;
    std::memcpy(&a0, a + c, 16), std::memcpy(&b0, b + c, 16);
    std::memcpy(&a1, a + c + 4, 16), std::memcpy(&b1, b + c + 4, 16);
    const v4 t0 = a0 - b0, t1 = a1 - b1;
    s0 += t0 * t0, s1 += t1 * t1;
  }
  s0 += s1;
  float s = (s0[0] + s0[1]) + (s0[2] + s0[3]);
  for (; c < d; ++c) s += (a[c] - b[c]) * (a[c] - b[c]);
  return s;
}

class L2SquaredSpace : public hnswlib::SpaceInterface<float> {
 public:
  explicit L2SquaredSpace(size_t d) : d_(d) {}
  size_t get_data_size() override { return d_ * sizeof(float); }
  hnswlib::DISTFUNC<float> get_dist_func() override { return l2_squared; }
  void* get_dist_func_param() override { return &d_; }

 private:
  size_t d_;
};

// Exact k nearest neighbours by blocks: the matrix-product form |a|^2 + |b|^2 - 2 a.b for 4 points
// against 16 candidates at a time (a 4 x 16 tile of sums kept in vector registers over all d
// coordinates; candidates stored transposed per block of kCols) screens the candidates; the ones
// within its rounding bound of a point's current k-th are measured directly, and each point keeps a
// bounded max-heap of (distance, index). The neighbours are so the k smallest in that total order:
// the first k of a search for more are the result of a search for k (qk shares one search). Points
// are centred first (the form loses digits far from the origin). Compiled for AVX-512, AVX2 and
// baseline x86-64, picked at run time (target_clones): the build itself assumes only SSE2.
constexpr int64_t kRows = 4, kLanes = 16, kCols = 256;
typedef float v16 __attribute__((vector_size(64)));

typedef int32_t v16i __attribute__((vector_size(64)));

// One tile: the dot products of kRows points q ([kRows][d]) with 16 candidates (coordinate-major
// in xt, [d][kCols]; norms nj), screened by the product form against each row's threshold:
// pass[r * kLanes + m] is nonzero where ni + nj - 2 q.x <= thr + slack (ni + nj), and the return
// value has bit r set when row r has any.
__attribute__((target_clones("avx512f", "avx2", "default"))) uint32_t screen_tile(const float* q, int64_t d,
                                                                                  const float* xt, const float* norm,
                                                                                  const float* ni, const float* thr,
                                                                                  float slack, int32_t* pass) {
  v16 acc[kRows] = {};
  for (int64_t c = 0; c < d; ++c) {
    v16 b;
    std::memcpy(&b, xt + c * kCols, sizeof b);
    for (int64_t r = 0; r < kRows; ++r) acc[r] += q[r * d + c] * b;
  }
  v16 nj;
  std::memcpy(&nj, norm, sizeof nj);
  uint32_t rows = 0;
  for (int64_t r = 0; r < kRows; ++r) {
    v16i m = (ni[r] + nj - 2 * acc[r]) <= (thr[r] + slack * (ni[r] + nj));
    std::memcpy(pass + r * kLanes, &m, sizeof m);
    // any lane: OR of the halves, then of their halves
    m |= __builtin_shufflevector(m, m, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    m |= __builtin_shufflevector(m, m, 4, 5, 6, 7, 0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2, 3);
    m |= __builtin_shufflevector(m, m, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0, 1);
    m |= __builtin_shufflevector(m, m, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0);
    if (m[0]) rows |= 1u << r;
  }
  return rows;
}

void exact_neighbours(const float* x_in, int64_t n, int64_t d, int64_t k, std::vector<int64_t>* idx,
                      std::vector<float>* dist2) {
  const int64_t blocks = (n + kCols - 1) / kCols, rows = (n + kRows - 1) / kRows * kRows;
  std::vector<double> mean(size_t(d), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < d; ++c) mean[size_t(c)] += x_in[i * d + c];
  std::vector<float> xq(size_t(rows * d), 0.0f);  // centred, padded to whole row groups
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < d; ++c) xq[size_t(i * d + c)] = float(x_in[i * d + c] - mean[size_t(c)] / double(n));
  const float* x = xq.data();
  std::vector<float> xt(size_t(blocks * d * kCols), 0.0f), norm(size_t(blocks * kCols), INFINITY);
  for (int64_t j = 0; j < n; ++j) {
    const int64_t blk = j / kCols, col = j % kCols;
    float s = 0;
    for (int64_t c = 0; c < d; ++c) {
      xt[size_t((blk * d + c) * kCols + col)] = x[j * d + c];
      s += x[j * d + c] * x[j * d + c];
    }
    norm[size_t(j)] = s;  // padding columns: infinite norm, skipped
  }
  // |computed - true| <= (d + 4) u (|a|^2 + |b|^2) for the product form in float (u = 2^-24).
  const float slack = float(d + 4) * 6e-8f;
  const size_t du = size_t(d);
  parallel_for(rows / kRows, [&](int64_t gb, int64_t ge) {
    std::vector<std::vector<std::pair<float, int64_t>>> heap(static_cast<size_t>(kRows));
    int32_t pass[kRows * kLanes];
    float ni[kRows], thr[kRows];
    for (int64_t g = gb; g < ge; ++g) {
      const int64_t i0 = g * kRows;
      for (auto& h : heap) h.assign(size_t(k), {INFINITY, n});
      for (int64_t r = 0; r < kRows; ++r) ni[r] = i0 + r < n ? norm[size_t(i0 + r)] : 0;
      for (int64_t blk = 0; blk < blocks; ++blk)
        for (int64_t l = 0; l < kCols; l += kLanes) {
          for (int64_t r = 0; r < kRows; ++r) thr[r] = heap[size_t(r)].front().first;
          uint32_t rows = screen_tile(&xq[size_t(i0 * d)], d, &xt[size_t(blk * d * kCols + l)],
                                      &norm[size_t(blk * kCols + l)], ni, thr, slack, pass);
          for (; rows; rows &= rows - 1) {
            const int64_t r = __builtin_ctz(rows), i = i0 + r;
            if (i >= n) continue;
            auto& h = heap[size_t(r)];
            for (int64_t m = 0; m < kLanes; ++m) {
              const int64_t j = blk * kCols + l + m;
              if (!pass[r * kLanes + m] || j >= n || j == i) continue;
              const std::pair<float, int64_t> cand{l2_squared(x + i * d, x + j * d, &du), j};
              if (!(cand < h.front())) continue;
              std::pop_heap(h.begin(), h.end());
              h.back() = cand;
              std::push_heap(h.begin(), h.end());
            }
          }
        }
      for (int64_t r = 0; r < kRows && i0 + r < n; ++r) {
        auto& h = heap[size_t(r)];
        std::sort_heap(h.begin(), h.end());
        if (h.back().second == n)  // a slot never filled: only NaN distances to compare
          throw Error("nearest neighbours: point " + std::to_string(i0 + r) +
                      " has a non-finite coordinate (expected finite vectors)");
        for (int64_t m = 0; m < k; ++m) {
          (*idx)[size_t((i0 + r) * k + m)] = h[size_t(m)].second;
          (*dist2)[size_t((i0 + r) * k + m)] = h[size_t(m)].first;
        }
      }
    }
  });
}

}  // namespace

void nearest_neighbours(const float* x, int64_t n, int64_t d, int64_t k, std::vector<int64_t>* idx,
                        std::vector<float>* dist2, int64_t exact_up_to) {
  if (k < 1 || k >= n)
    throw Error("nearest neighbours: expected 1 <= k < n (" + std::to_string(n) + "), found " + std::to_string(k));
  idx->assign(size_t(n * k), 0);
  dist2->assign(size_t(n * k), 0.0f);
  if (n > exact_up_to) {
    L2SquaredSpace space(static_cast<size_t>(d));
    hnswlib::HierarchicalNSW<float> index(&space, static_cast<size_t>(n), 16, 200, 42);
    // Inserted in order: the graph (and each point's random level) then depends on the data only,
    // so t-SNE/UMAP stay deterministic above exact_up_to. Searches run in parallel.
    for (int64_t i = 0; i < n; ++i) index.addPoint(x + i * d, static_cast<size_t>(i));
    index.setEf(static_cast<size_t>(std::max<int64_t>(200, 2 * k)));
    parallel_for(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        auto found = index.searchKnnCloserFirst(x + i * d, static_cast<size_t>(k + 1));
        int64_t m = 0;
        for (const auto& [dist, label] : found) {
          if (int64_t(label) == i || m == k) continue;
          (*idx)[size_t(i * k + m)] = int64_t(label);
          (*dist2)[size_t(i * k + m)] = dist;
          ++m;
        }
        for (; m < k; ++m) {  // fewer than k found besides i (duplicates): repeat the last
          (*idx)[size_t(i * k + m)] = m > 0 ? (*idx)[size_t(i * k + m - 1)] : (i + 1) % n;
          (*dist2)[size_t(i * k + m)] = m > 0 ? (*dist2)[size_t(i * k + m - 1)] : 0.0f;
        }
      }
    });
    return;
  }
  exact_neighbours(x, n, d, k, idx, dist2);
}

Neighbours nearest_neighbours(const float* x, int64_t n, int64_t d, int64_t k, int64_t exact_up_to) {
  Neighbours nb;
  nb.n = n, nb.k = k;
  nearest_neighbours(x, n, d, k, &nb.idx, &nb.dist2, exact_up_to);
  return nb;
}

namespace {

// The first k of each point's (nearest-first) list: what a search for k would have found.
Neighbours first_neighbours(const Neighbours& nb, int64_t k, const char* who) {
  if (nb.k < k || int64_t(nb.idx.size()) != nb.n * nb.k || nb.dist2.size() != nb.idx.size())
    throw Error(std::string(who) + ": expected " + std::to_string(k) + " neighbours per point, found " +
                std::to_string(nb.k));
  Neighbours out;
  out.n = nb.n, out.k = k;
  out.idx.resize(size_t(nb.n * k));
  out.dist2.resize(size_t(nb.n * k));
  for (int64_t i = 0; i < nb.n; ++i)
    for (int64_t m = 0; m < k; ++m) {
      out.idx[size_t(i * k + m)] = nb.idx[size_t(i * nb.k + m)];
      out.dist2[size_t(i * k + m)] = nb.dist2[size_t(i * nb.k + m)];
    }
  return out;
}

}  // namespace

int64_t tsne_neighbour_count(int64_t n, double perplexity) {
  return std::min<int64_t>(n - 1, int64_t(3 * perplexity + 1));
}

Affinities tsne_affinities(const float* x, int64_t n, int64_t d, double perplexity) {
  if (perplexity <= 0) throw Error("--perplexity " + std::to_string(perplexity) + ": expected a positive number");
  return tsne_affinities(nearest_neighbours(x, n, d, tsne_neighbour_count(n, perplexity)), perplexity);
}

Affinities tsne_affinities(const Neighbours& nb, double perplexity) {
  if (perplexity <= 0) throw Error("--perplexity " + std::to_string(perplexity) + ": expected a positive number");
  const int64_t n = nb.n, k = tsne_neighbour_count(n, perplexity);
  const Neighbours first = first_neighbours(nb, k, "t-SNE");
  const std::vector<int64_t>& idx = first.idx;
  const std::vector<float>& dist = first.dist2;
  // Conditional p_j|i by binary search on the precision beta (scikit-learn's
  // _binary_search_perplexity: entropy in nats, tolerance 1e-5, 100 steps).
  std::vector<double> cond(size_t(n * k));
  const double target = std::log(perplexity);
  parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      double beta = 1, lo = -INFINITY, hi = INFINITY;
      const float* di = &dist[size_t(i * k)];
      double* pi = &cond[size_t(i * k)];
      for (int step = 0; step < 100; ++step) {
        double sum = 0;
        for (int64_t m = 0; m < k; ++m) sum += pi[m] = std::exp(-double(di[m]) * beta);
        if (sum == 0) sum = 1e-8;
        double h = 0;
        for (int64_t m = 0; m < k; ++m) {
          pi[m] /= sum;
          h += double(di[m]) * pi[m];
        }
        h = std::log(sum) + beta * h;
        const double diff = h - target;
        if (std::fabs(diff) <= 1e-5) break;
        if (diff > 0) {
          lo = beta;
          beta = hi == INFINITY ? beta * 2 : (beta + hi) / 2;
        } else {
          hi = beta;
          beta = lo == -INFINITY ? beta / 2 : (beta + lo) / 2;
        }
      }
    }
  });
  // P + P^T over the union of the neighbour lists, normalised to sum 1.
  std::vector<std::vector<std::pair<int64_t, double>>> rows(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t m = 0; m < k; ++m) {
      const int64_t j = idx[size_t(i * k + m)];
      rows[size_t(i)].push_back({j, cond[size_t(i * k + m)]});
      rows[size_t(j)].push_back({i, cond[size_t(i * k + m)]});
    }
  Affinities p;
  p.n = n;
  p.row.push_back(0);
  double total = 0;
  for (auto& r : rows) {
    std::sort(r.begin(), r.end());
    for (size_t a = 0; a < r.size();) {
      size_t b = a;
      double v = 0;
      while (b < r.size() && r[b].first == r[a].first) v += r[b++].second;
      p.col.push_back(r[a].first);
      p.val.push_back(v);
      total += v;
      a = b;
    }
    p.row.push_back(int64_t(p.col.size()));
  }
  for (double& v : p.val) v /= std::max(total, 1e-300);
  return p;
}

double tsne_kl(const Affinities& p, const std::vector<double>& y, int64_t dims, std::vector<double>* grad) {
  const int64_t n = p.n;
  if (dims < 1 || dims > 3 || int64_t(y.size()) != n * dims)
    throw Error("t-SNE KL: expected an embedding of " + std::to_string(n) + " x 1..3, found " +
                std::to_string(y.size()) + " values for " + std::to_string(dims) + " dimensions");
  auto w_of = [&](int64_t i, int64_t j, double* diff) {
    double d2 = 0;
    for (int64_t c = 0; c < dims; ++c) {
      diff[c] = y[size_t(i * dims + c)] - y[size_t(j * dims + c)];
      d2 += diff[c] * diff[c];
    }
    return 1 / (1 + d2);
  };
  std::vector<double> zi(size_t(n), 0.0), rep(size_t(n * dims), 0.0);
  parallel_for(n, [&](int64_t b, int64_t e) {
    double diff[3];
    for (int64_t i = b; i < e; ++i)
      for (int64_t j = 0; j < n; ++j) {
        if (j == i) continue;
        const double w = w_of(i, j, diff);
        zi[size_t(i)] += w;
        for (int64_t c = 0; c < dims; ++c) rep[size_t(i * dims + c)] += w * w * diff[c];
      }
  });
  const double z = std::accumulate(zi.begin(), zi.end(), 0.0);
  double kl = 0, diff[3];
  if (grad) grad->assign(size_t(n * dims), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t e = p.row[size_t(i)]; e < p.row[size_t(i + 1)]; ++e) {
      const double pij = p.val[size_t(e)], w = w_of(i, p.col[size_t(e)], diff);
      if (pij > 0) kl += pij * std::log(pij / (w / z));
      if (grad)
        for (int64_t c = 0; c < dims; ++c) (*grad)[size_t(i * dims + c)] += 4 * pij * w * diff[c];
    }
    if (grad)
      for (int64_t c = 0; c < dims; ++c) (*grad)[size_t(i * dims + c)] -= 4 * rep[size_t(i * dims + c)] / z;
  }
  return kl;
}

namespace {

// For each of nt targets (coordinates t[i * dims + c]): the sum over a list of masses m_j at
// (x_j, y_j[, z_j]) of m_j q and of m_j q^2 (t - s_j), q = 1 / (1 + |t - s_j|^2), into
// out[i * (1 + dims) + 0 | 1 + c]. The list is padded to whole vectors of kLanes with mass 0.
// Compiled for AVX-512, AVX2 and baseline x86-64 (target_clones), like screen_tile.
__attribute__((target_clones("avx512f", "avx2", "default"))) void sum_interactions(int dims, const float* sx,
                                                                                   const float* sy, const float* sz,
                                                                                   const float* sm, int64_t len,
                                                                                   const float* t, int64_t nt,
                                                                                   float* out) {
  auto hsum = [](const v16& v) {
    float s = 0;
    for (int k = 0; k < kLanes; ++k) s += v[k];
    return s;
  };
  for (int64_t i = 0; i < nt; ++i) {
    const float tx = t[i * dims], ty = t[i * dims + 1];
    v16 s = {}, fx = {}, fy = {}, fz = {};
    if (dims == 2) {
      for (int64_t j = 0; j < len; j += kLanes) {
        v16 x, y, m;
        std::memcpy(&x, sx + j, sizeof x), std::memcpy(&y, sy + j, sizeof y), std::memcpy(&m, sm + j, sizeof m);
        const v16 dx = tx - x, dy = ty - y;
        const v16 q = 1 / (1 + dx * dx + dy * dy), mq = m * q, mqq = mq * q;
        s += mq, fx += mqq * dx, fy += mqq * dy;
      }
    } else {
      const float tz = t[i * dims + 2];
      for (int64_t j = 0; j < len; j += kLanes) {
        v16 x, y, z, m;
        std::memcpy(&x, sx + j, sizeof x), std::memcpy(&y, sy + j, sizeof y);
        std::memcpy(&z, sz + j, sizeof z), std::memcpy(&m, sm + j, sizeof m);
        const v16 dx = tx - x, dy = ty - y, dz = tz - z;
        const v16 q = 1 / (1 + dx * dx + dy * dy + dz * dz), mq = m * q, mqq = mq * q;
        s += mq, fx += mqq * dx, fy += mqq * dy, fz += mqq * dz;
      }
    }
    float* o = out + i * (1 + dims);
    o[0] = hsum(s), o[1] = hsum(fx), o[2] = hsum(fy);
    if (dims == 3) o[3] = hsum(fz);
  }
}

// A 2^D-ary space-partitioning tree (quadtree / octree) with centres of mass, for the Barnes-Hut
// approximation of t-SNE's repulsive forces. Built top-down by sorting the points into cells; a
// cell of at most kLeaf points (or whose points lie within 1e-6 of each other, as a ViT's repeated
// blank patches: scikit-learn's quadtree also merges those) is a leaf holding them contiguously.
// The walk is shared by groups, the largest cells of at most kGroup points (Barnes' 1990 grouped
// walk, as in N-body codes): one list of far cells and near points per group, summed for each of
// its points in vector lanes, instead of one branchy walk per point.
template <int D>
class SpaceTree {
 public:
  static constexpr int kLeaf = 16, kGroup = 128;

  SpaceTree(const std::vector<double>& y, int64_t n) : y_(y) {
    std::array<double, D> lo, hi, centre;
    lo.fill(INFINITY);
    hi.fill(-INFINITY);
    for (int64_t i = 0; i < n; ++i)
      for (int c = 0; c < D; ++c) {
        lo[size_t(c)] = std::min(lo[size_t(c)], y[size_t(i * D + c)]);
        hi[size_t(c)] = std::max(hi[size_t(c)], y[size_t(i * D + c)]);
      }
    double half = 0;
    for (int c = 0; c < D; ++c) {
      centre[size_t(c)] = (lo[size_t(c)] + hi[size_t(c)]) / 2;
      half = std::max(half, (hi[size_t(c)] - lo[size_t(c)]) / 2);
    }
    order_.resize(size_t(n));
    std::iota(order_.begin(), order_.end(), 0);
    scratch_.resize(size_t(n));
    nodes_.reserve(size_t(n / 2 + 16));
    nodes_.emplace_back();
    build(0, 0, n, centre, half * (1 + 1e-5) + 1e-12, 0, false);
    pts_.resize(size_t(n * D));
    for (int64_t p = 0; p < n; ++p)
      for (int c = 0; c < D; ++c) pts_[size_t(p * D + c)] = float(y[size_t(order_[size_t(p)] * D + c)]);
    scratch_ = {};
  }

  // The walk's groups: the largest cells of at most kGroup points (or a larger leaf).
  int64_t groups() const { return int64_t(groups_.size()); }

  // What one group's walk collects: masses (a cell's centre of mass and count, or a near leaf's
  // points with mass 1), coordinate by coordinate, padded to whole vectors with mass 0.
  struct List {
    std::vector<float> c[D], m, out;
    size_t len = 0;
    void reserve(size_t more) {
      if (len + more <= m.size()) return;
      const size_t cap = std::max(2 * m.size(), len + more + kLanes);
      for (auto& v : c) v.resize(cap);
      m.resize(cap);
    }
    void add(const float* at, float mass) {  // after reserve
      for (int k = 0; k < D; ++k) c[k][len] = at[k];
      m[len++] = mass;
    }
  };

  // Repulsion on the points of group g, each into neg (count * q^2 * (y_i - com) over the masses)
  // and sum_q (count * q), q = 1 / (1 + d^2). One walk serves the whole group: a cell is one mass
  // when its width over its distance from the group's bounding box is below theta, so for each point
  // the criterion is at least as strict as in its own walk. The list is then summed for each point
  // in vector lanes (sum_interactions). The point itself is in the list (its own leaf is always
  // near) at distance exactly 0, adding exactly q = 1 and no force: 1 is taken off its sum.
  void repulse_group(int64_t g, double theta, double* neg, double* sum_q, List* list) const {
    const float t2 = float(theta * theta);
    const Node& group = nodes_[size_t(groups_[size_t(g)])];
    const float* own = &pts_[size_t(group.first) * D];
    float lo[D], hi[D];
    for (int c = 0; c < D; ++c) lo[c] = INFINITY, hi[c] = -INFINITY;
    for (int32_t p = 0; p < group.count; ++p)
      for (int c = 0; c < D; ++c) lo[c] = std::min(lo[c], own[p * D + c]), hi[c] = std::max(hi[c], own[p * D + c]);
    list->len = 0;
    int32_t stack[64 * (1 << D)];
    int top = 0;
    stack[top++] = 0;
    while (top > 0) {
      const Node& nd = nodes_[size_t(stack[--top])];
      float d2 = 0;
      for (int c = 0; c < D; ++c) {
        const float v = std::max(std::max(lo[c] - nd.com[size_t(c)], nd.com[size_t(c)] - hi[c]), 0.0f);
        d2 += v * v;
      }
      // Far: below theta, and farther than the cell's diagonal (so never a cell holding the group,
      // whose own points must stay in the list; that binds only for theta above 2/3).
      if ((nd.width2 < t2 * d2 && 2.25f * nd.width2 < d2) || nd.children == kCoincident) {
        // (points within 1e-6 of each other: one mass even when near, where a direct sum over
        // thousands of repeated points would cost thousands of terms)
        list->reserve(1);
        list->add(nd.com.data(), float(nd.count));
      } else if (nd.child < 0) {  // a near leaf: its points
        list->reserve(size_t(nd.count));
        for (int32_t p = nd.first; p < nd.first + nd.count; ++p) list->add(&pts_[size_t(p) * D], 1);
      } else {
        for (int k = 0; k < nd.children; ++k) stack[top++] = nd.child + k;
      }
    }
    list->reserve(kLanes);
    while (list->len % kLanes) {
      const float zero[D] = {};
      list->add(zero, 0);
    }
    list->out.resize(size_t(group.count) * (1 + D));
    sum_interactions(D, list->c[0].data(), list->c[1].data(), D == 3 ? list->c[D - 1].data() : nullptr, list->m.data(),
                     int64_t(list->len), own, group.count, list->out.data());
    for (int32_t p = 0; p < group.count; ++p) {
      const int64_t i = order_[size_t(group.first + p)];
      const float* o = &list->out[size_t(p) * (1 + D)];
      sum_q[i] = double(o[0]) - 1;
      for (int c = 0; c < D; ++c) neg[i * D + c] = double(o[1 + c]);
    }
  }

 private:
  // What the walk reads, in 28 bytes (2-D).
  struct Node {
    std::array<float, D> com{};
    float width2 = 0;      // the cell's (2 half)^2
    int32_t count = 0;     // points below
    int32_t child = -1;    // the first of `children` non-empty children, contiguous; -1 for a leaf
    int32_t children = 0;  // a leaf: 0, or kCoincident
    int32_t first = 0;     // a leaf's first point in pts_ / order_
  };
  // A leaf of points within 1e-6 of each other (any number of them): walked as one mass even when
  // near, where a direct sum over thousands of repeated points would cost thousands of terms.
  static constexpr int32_t kCoincident = -1;

  // Node `at` covers order_[b, e), a cell of this centre and half-width.
  void build(int64_t at, int64_t b, int64_t e, const std::array<double, D>& centre, double half, int depth,
             bool grouped) {
    double com[D] = {}, lo[D], hi[D];
    for (int c = 0; c < D; ++c) lo[c] = INFINITY, hi[c] = -INFINITY;
    for (int64_t p = b; p < e; ++p)
      for (int c = 0; c < D; ++c) {
        const double v = y_[size_t(order_[size_t(p)] * D + c)];
        com[c] += v, lo[c] = std::min(lo[c], v), hi[c] = std::max(hi[c], v);
      }
    bool together = true;
    for (int c = 0; c < D; ++c) together = together && hi[c] - lo[c] <= 1e-6;
    {
      Node& nd = nodes_[size_t(at)];
      for (int c = 0; c < D; ++c) nd.com[size_t(c)] = float(com[c] / double(e - b));
      nd.width2 = float(4 * half * half);
      nd.count = int32_t(e - b);
      nd.first = int32_t(b);
    }
    if (together && e - b > 1) nodes_[size_t(at)].children = kCoincident;
    const bool leaf = e - b <= kLeaf || together || depth >= 48;
    if (!grouped && (e - b <= kGroup || leaf)) {
      groups_.push_back(int32_t(at));
      grouped = true;
    }
    if (leaf) return;
    // Counting sort of [b, e) by octant.
    int64_t counts[1 << D] = {}, start[(1 << D) + 1] = {};
    auto octant = [&](int64_t i) {
      int k = 0;
      for (int c = 0; c < D; ++c)
        if (y_[size_t(i * D + c)] > centre[size_t(c)]) k |= 1 << c;
      return k;
    };
    for (int64_t p = b; p < e; ++p) ++counts[octant(order_[size_t(p)])];
    start[0] = b;
    for (int k = 0; k < (1 << D); ++k) start[k + 1] = start[k] + counts[k];
    int64_t fill[1 << D];
    std::copy(start, start + (1 << D), fill);
    for (int64_t p = b; p < e; ++p) scratch_[size_t(fill[octant(order_[size_t(p)])]++)] = order_[size_t(p)];
    std::copy(scratch_.begin() + b, scratch_.begin() + e, order_.begin() + b);
    const int32_t first = int32_t(nodes_.size());
    int32_t children = 0;
    for (int k = 0; k < (1 << D); ++k) children += counts[k] > 0;
    nodes_.resize(nodes_.size() + size_t(children));
    nodes_[size_t(at)].child = first;
    nodes_[size_t(at)].children = children;
    int32_t slot = first;
    for (int k = 0; k < (1 << D); ++k) {
      if (counts[k] == 0) continue;
      std::array<double, D> sub;
      for (int c = 0; c < D; ++c) sub[size_t(c)] = centre[size_t(c)] + ((k >> c) & 1 ? half / 2 : -half / 2);
      build(slot++, start[k], start[k + 1], sub, half / 2, depth + 1, grouped);
    }
  }

  const std::vector<double>& y_;
  std::vector<Node> nodes_;
  std::vector<int64_t> order_, scratch_;  // point indices sorted by cell (scratch_: while building)
  std::vector<int32_t> groups_;
  std::vector<float> pts_;  // the points in order_'s order, in single precision
};

// FFTW's planner is not thread-safe (execution is).
std::mutex& fftw_planner() {
  static std::mutex m;
  return m;
}

// t-SNE's repulsion in 2-D by interpolation on a grid (Linderman et al. 2019, FIt-SNE): the
// embedding's square bounding box in max(50, range) boxes per side, 3 Lagrange nodes per box and
// side; charges spread to the nodes, convolved with the kernels by FFT, read back at the points.
// neg[i] = sum_j q_ij^2 (y_i - y_j) (unnormalised); returns Z = sum_{i != j} q_ij.
double repulsion_fft_2d(const std::vector<double>& y_in, int64_t n, std::vector<double>* neg) {
  constexpr int P = 3, CH = 4;
  // Centred coordinates: q_ij depends on differences only, and small |y| keeps the expansion of
  // sum_j q_ij^2 (y_i - y_j) = y_i phi0 - phi1 from cancelling.
  double lo = INFINITY, hi = -INFINITY;
  for (double v : y_in) lo = std::min(lo, v), hi = std::max(hi, v);
  const double mid = (lo + hi) / 2;
  std::vector<double> y(y_in.size());
  for (size_t e = 0; e < y.size(); ++e) y[e] = y_in[e] - mid;
  lo -= mid, hi -= mid;
  const int64_t boxes = std::max<int64_t>(50, int64_t(std::ceil(hi - lo)));
  const double h = std::max(hi - lo, 1e-12) / double(boxes);
  const int64_t m = boxes * P, F = 2 * m, FC = F / 2 + 1;
  const double dx = h / P;
  // Kernels: K2 = 1 / (1 + d^2)^2 for the forces (charges 1, y_x, y_y), K1 = 1 / (1 + d^2) for Z
  // (charge 1) — Z straight from K1 rather than expanded from K2, which would cancel.
  double* kern = fftw_alloc_real(size_t(2 * F * F));
  double* grid = fftw_alloc_real(size_t(CH * F * F));
  fftw_complex* kf = fftw_alloc_complex(size_t(2 * F * FC));
  fftw_complex* gf = fftw_alloc_complex(size_t(CH * F * FC));
  fftw_plan fwd, back;
  {
    std::lock_guard<std::mutex> g(fftw_planner());
    fwd = fftw_plan_dft_r2c_2d(int(F), int(F), kern, kf, FFTW_ESTIMATE);
    back = fftw_plan_dft_c2r_2d(int(F), int(F), gf, grid, FFTW_ESTIMATE);
  }
  for (int64_t a = 0; a < F; ++a)
    for (int64_t b = 0; b < F; ++b) {
      const double da = double(a < m ? a : a - F) * dx, db = double(b < m ? b : b - F) * dx;
      const double w = (a == m || b == m) ? 0 : 1 / (1 + da * da + db * db);
      kern[a * F + b] = w * w;
      kern[F * F + a * F + b] = w;
    }
  std::fill(grid, grid + CH * F * F, 0.0);
  std::vector<int64_t> box(size_t(2 * n));
  std::vector<double> wt(size_t(2 * n * P));
  const double nodes[P] = {0.5 / P, 1.5 / P, 2.5 / P};
  for (int64_t i = 0; i < n; ++i)
    for (int c = 0; c < 2; ++c) {
      const double u = (y[size_t(i * 2 + c)] - lo) / h;
      const int64_t bx = std::min<int64_t>(boxes - 1, std::max<int64_t>(0, int64_t(u)));
      const double t = u - double(bx);
      box[size_t(i * 2 + c)] = bx;
      for (int j = 0; j < P; ++j) {
        double l = 1;
        for (int k = 0; k < P; ++k)
          if (k != j) l *= (t - nodes[k]) / (nodes[j] - nodes[k]);
        wt[size_t((i * 2 + c) * P + j)] = l;
      }
    }
  auto at_node = [&](int64_t i, int jx, int jy) {
    return (box[size_t(i * 2)] * P + jx) * F + box[size_t(i * 2 + 1)] * P + jy;
  };
  for (int64_t i = 0; i < n; ++i) {
    const double charge[3] = {1, y[size_t(i * 2)], y[size_t(i * 2 + 1)]};
    for (int jx = 0; jx < P; ++jx)
      for (int jy = 0; jy < P; ++jy) {
        const double w = wt[size_t((i * 2) * P + jx)] * wt[size_t((i * 2 + 1) * P + jy)];
        const int64_t at = at_node(i, jx, jy);
        for (int ch = 0; ch < 3; ++ch) grid[ch * F * F + at] += w * charge[ch];
      }
  }
  std::copy(grid, grid + F * F, grid + 3 * F * F);  // charge 1 again, for K1
  fftw_execute_dft_r2c(fwd, kern, kf);
  fftw_execute_dft_r2c(fwd, kern + F * F, kf + F * FC);
  for (int ch = 0; ch < CH; ++ch) fftw_execute_dft_r2c(fwd, grid + ch * F * F, gf + ch * F * FC);
  const double norm = 1.0 / double(F * F);
  for (int ch = 0; ch < CH; ++ch) {
    const fftw_complex* k = kf + (ch == 3 ? F * FC : 0);
    for (int64_t e = 0; e < F * FC; ++e) {
      fftw_complex& g = gf[ch * F * FC + e];
      const double re = g[0] * k[e][0] - g[1] * k[e][1], im = g[0] * k[e][1] + g[1] * k[e][0];
      g[0] = re * norm, g[1] = im * norm;
    }
  }
  for (int ch = 0; ch < CH; ++ch) fftw_execute_dft_c2r(back, gf + ch * F * FC, grid + ch * F * F);
  double z = 0;
  neg->assign(size_t(2 * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    double phi[CH] = {0, 0, 0, 0};
    for (int jx = 0; jx < P; ++jx)
      for (int jy = 0; jy < P; ++jy) {
        const double w = wt[size_t((i * 2) * P + jx)] * wt[size_t((i * 2 + 1) * P + jy)];
        const int64_t at = at_node(i, jx, jy);
        for (int ch = 0; ch < CH; ++ch) phi[ch] += w * grid[ch * F * F + at];
      }
    z += phi[3] - 1;  // less the point itself (K1(0) = 1)
    (*neg)[size_t(i * 2)] = y[size_t(i * 2)] * phi[0] - phi[1];
    (*neg)[size_t(i * 2 + 1)] = y[size_t(i * 2 + 1)] * phi[0] - phi[2];
  }
  {
    std::lock_guard<std::mutex> g(fftw_planner());
    fftw_destroy_plan(fwd);
    fftw_destroy_plan(back);
  }
  fftw_free(kern), fftw_free(grid), fftw_free(kf), fftw_free(gf);
  return z;
}

enum class Repulsion { Exact, BarnesHut, Fft };

// P's rows for the attractive forces, which stream all of P every iteration: columns and values
// in 4 bytes each, every row padded to whole vectors of kLanes with value 0 (column: the row's own
// point, at distance 0).
struct CompactP {
  std::vector<int64_t> row;
  std::vector<int32_t> col;
  std::vector<float> val;
  explicit CompactP(const Affinities& p) : row(size_t(p.n + 1), 0) {
    for (int64_t i = 0; i < p.n; ++i) {
      const int64_t len = p.row[size_t(i + 1)] - p.row[size_t(i)];
      row[size_t(i + 1)] = row[size_t(i)] + (len + kLanes - 1) / kLanes * kLanes;
    }
    col.resize(size_t(row.back()));
    val.assign(size_t(row.back()), 0.0f);
    for (int64_t i = 0; i < p.n; ++i) {
      int64_t at = row[size_t(i)];
      for (int64_t k = p.row[size_t(i)]; k < p.row[size_t(i + 1)]; ++k, ++at)
        col[size_t(at)] = int32_t(p.col[size_t(k)]), val[size_t(at)] = float(p.val[size_t(k)]);
      for (; at < row[size_t(i + 1)]; ++at) col[size_t(at)] = int32_t(i);
    }
  }
};

// The attractive forces of points [b, e): out[(i - b) * dims + c] = sum_j p_ij q_ij (y_i - y_j)
// over CompactP's padded rows, kLanes terms at a time. Compiled like screen_tile (target_clones).
__attribute__((target_clones("avx512f", "avx2", "default"))) void attract(const int64_t* row, const int32_t* col,
                                                                          const float* val, const float* y, int dims,
                                                                          int64_t b, int64_t e, float* out) {
  // Each block of kLanes terms in scalar form into arrays (no reduction in the loop, so the
  // compiler vectorises it), then added in vector lanes: measured faster than the same in vector
  // types (3-D at 20,000 points 6.8 against 8.0 s) and than AVX-512 / AVX2 gather instructions.
  for (int64_t i = b; i < e; ++i) {
    const float yx = y[i * dims], yy = y[i * dims + 1], yz = dims == 3 ? y[i * dims + 2] : 0;
    v16 fx = {}, fy = {}, fz = {};
    alignas(64) float tx[kLanes], ty[kLanes], tz[kLanes];
    for (int64_t k = row[i]; k < row[i + 1]; k += kLanes) {
      if (dims == 2) {
        for (int l = 0; l < kLanes; ++l) {
          const int64_t j = col[k + l];
          const float dx = yx - y[2 * j], dy = yy - y[2 * j + 1];
          const float pq = val[k + l] / (1 + dx * dx + dy * dy);
          tx[l] = pq * dx, ty[l] = pq * dy;
        }
      } else {
        for (int l = 0; l < kLanes; ++l) {
          const int64_t j = col[k + l];
          const float dx = yx - y[3 * j], dy = yy - y[3 * j + 1], dz = yz - y[3 * j + 2];
          const float pq = val[k + l] / (1 + dx * dx + dy * dy + dz * dz);
          tx[l] = pq * dx, ty[l] = pq * dy, tz[l] = pq * dz;
        }
        v16 t;
        std::memcpy(&t, tz, sizeof t);
        fz += t;
      }
      v16 t;
      std::memcpy(&t, tx, sizeof t);
      fx += t;
      std::memcpy(&t, ty, sizeof t);
      fy += t;
    }
    float sx = 0, sy = 0, sz = 0;
    for (int l = 0; l < kLanes; ++l) sx += fx[l], sy += fy[l], sz += fz[l];
    float* o = out + (i - b) * dims;
    o[0] = sx, o[1] = sy;
    if (dims == 3) o[2] = sz;
  }
}

template <int D>
double gradient(const Affinities& p, const CompactP& cp, double exaggeration, const std::vector<double>& y,
                double theta, Repulsion how, std::vector<double>* grad, bool want_kl, bool single = false) {
  const int64_t n = p.n;
  std::vector<double> neg(size_t(n * D), 0.0), sum_q(size_t(n), 0.0);
  double z_fft = -1;
  if (D == 2 && how == Repulsion::Fft) {
    z_fft = repulsion_fft_2d(y, n, &neg);
  } else if (how == Repulsion::BarnesHut) {
    SpaceTree<D> tree(y, n);
    parallel_for(tree.groups(), [&](int64_t b, int64_t e) {
      typename SpaceTree<D>::List list;
      for (int64_t g = b; g < e; ++g) tree.repulse_group(g, theta, neg.data(), sum_q.data(), &list);
    });
  } else {
    parallel_for(n, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i)
        for (int64_t j = 0; j < n; ++j) {
          if (j == i) continue;
          double diff[D], d2 = 0;
          for (int c = 0; c < D; ++c) {
            diff[c] = y[size_t(i * D + c)] - y[size_t(j * D + c)];
            d2 += diff[c] * diff[c];
          }
          const double q = 1 / (1 + d2);
          sum_q[size_t(i)] += q;
          for (int c = 0; c < D; ++c) neg[size_t(i * D + c)] += q * q * diff[c];
        }
    });
  }
  const double z = z_fft >= 0 ? z_fft : std::accumulate(sum_q.begin(), sum_q.end(), 0.0);
  grad->assign(size_t(n * D), 0.0);
  if (single) {  // the optimisation's gradient: attractive forces in single precision
    const std::vector<float> yf(y.begin(), y.end());
    parallel_for(n, [&](int64_t b, int64_t e) {
      std::vector<float> pos(size_t((e - b) * D));
      attract(cp.row.data(), cp.col.data(), cp.val.data(), yf.data(), D, b, e, pos.data());
      for (int64_t i = b; i < e; ++i)
        for (int c = 0; c < D; ++c)
          (*grad)[size_t(i * D + c)] =
              4 * (exaggeration * double(pos[size_t((i - b) * D + c)]) - neg[size_t(i * D + c)] / z);
    });
    return 0;
  }
  std::vector<double> kl_part(size_t(n), 0.0);
  parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      double pos[D] = {};
      for (int64_t k = p.row[size_t(i)]; k < p.row[size_t(i + 1)]; ++k) {
        const int64_t j = p.col[size_t(k)];
        double diff[D], d2 = 0;
        for (int c = 0; c < D; ++c) {
          diff[c] = y[size_t(i * D + c)] - y[size_t(j * D + c)];
          d2 += diff[c] * diff[c];
        }
        const double q = 1 / (1 + d2), pij = p.val[size_t(k)] * exaggeration;
        for (int c = 0; c < D; ++c) pos[c] += pij * q * diff[c];
        if (want_kl && p.val[size_t(k)] > 0)
          kl_part[size_t(i)] +=
              p.val[size_t(k)] * std::log(std::max(p.val[size_t(k)], 1e-300) / std::max(q / z, 1e-300));
      }
      for (int c = 0; c < D; ++c) (*grad)[size_t(i * D + c)] = 4 * (pos[c] - neg[size_t(i * D + c)] / z);
    }
  });
  return std::accumulate(kl_part.begin(), kl_part.end(), 0.0);
}

}  // namespace

void tsne_gradient(const Affinities& p, const std::vector<double>& y, int64_t dims, const std::string& method,
                   double theta, std::vector<double>* grad) {
  const Repulsion how = method == "exact"        ? Repulsion::Exact
                        : method == "barnes_hut" ? Repulsion::BarnesHut
                        : method == "fft"
                            ? Repulsion::Fft
                            : throw Error("t-SNE method " + method + ": expected fft, barnes_hut or exact");
  const CompactP cp(p);
  if (dims == 2)
    gradient<2>(p, cp, 1.0, y, theta, how, grad, false);
  else if (dims == 3 && how != Repulsion::Fft)
    gradient<3>(p, cp, 1.0, y, theta, how, grad, false);
  else
    throw Error("t-SNE: expected 2 dimensions (fft) or 2-3 (barnes_hut, exact)");
}

TsneResult tsne(const float* x, int64_t n, int64_t d, const TsneOptions& o, const Affinities* shared) {
  if (o.dims != 2 && o.dims != 3) throw Error("t-SNE: expected 2 or 3 dimensions, found " + std::to_string(o.dims));
  if (n < 4) throw Error("t-SNE: expected at least 4 points, found " + std::to_string(n));
  if (o.perplexity >= double(n)) throw Error("t-SNE: the perplexity must be below the number of points");
  if (o.iterations < 1 || o.exaggeration_iterations < 0 || !(o.learning_rate >= 0) || !(o.momentum >= 0) ||
      !(o.momentum < 1) || !(o.max_step >= 0) || !(o.early_exaggeration > 0))
    throw Error(
        "t-SNE: expected iterations >= 1, exaggeration iterations >= 0, learning rate >= 0, 0 <= momentum < 1, "
        "max step >= 0 and early exaggeration > 0, found " +
        std::to_string(o.iterations) + ", " + std::to_string(o.exaggeration_iterations) + ", " +
        std::to_string(o.learning_rate) + ", " + std::to_string(o.momentum) + ", " + std::to_string(o.max_step) + ", " +
        std::to_string(o.early_exaggeration));
  Repulsion how = Repulsion::BarnesHut;
  if (o.method == "exact" || o.theta == 0)
    how = Repulsion::Exact;
  else if (o.method == "fft")
    how = Repulsion::Fft;
  else if (o.method != "barnes_hut" && o.method != "auto")
    throw Error("t-SNE method " + o.method + ": expected auto, fft, barnes_hut or exact");
  if (how == Repulsion::Fft && o.dims != 2) throw Error("t-SNE method fft: 2 dimensions only (3-D: barnes_hut)");
  if (shared && shared->n != n)
    throw Error("t-SNE: affinities of " + std::to_string(shared->n) + " points for " + std::to_string(n));
  const Affinities own = shared ? Affinities{} : tsne_affinities(x, n, d, o.perplexity);
  const Affinities& p = shared ? *shared : own;
  const int64_t D = o.dims;
  // init="pca" (scikit-learn's and openTSNE's): the first components, scaled so that the first
  // has std 1e-4.
  const std::vector<float> init = pca(x, n, d, D);
  double mean0 = 0, var0 = 0;
  for (int64_t i = 0; i < n; ++i) mean0 += init[size_t(i * D)];
  mean0 /= double(n);
  for (int64_t i = 0; i < n; ++i) var0 += (init[size_t(i * D)] - mean0) * (init[size_t(i * D)] - mean0);
  const double scale = 1e-4 / std::max(std::sqrt(var0 / double(n)), 1e-300);
  std::vector<double> y(size_t(n * D)), update(size_t(n * D), 0.0), gains(size_t(n * D), 1.0), grad;
  for (size_t k = 0; k < y.size(); ++k) y[k] = double(init[k]) * scale;
  const CompactP cp(p);
  auto rate = [&](double exaggeration) {
    return o.learning_rate > 0 ? o.learning_rate : std::max(double(n) / exaggeration / 4, 50.0);
  };
  for (int64_t it = 0; it < o.iterations; ++it) {
    const bool early = it < o.exaggeration_iterations;
    const double exaggeration = early ? o.early_exaggeration : 1.0, lr = rate(exaggeration);
    if (D == 2)
      gradient<2>(p, cp, exaggeration, y, o.theta, how, &grad, false, true);
    else
      gradient<3>(p, cp, exaggeration, y, o.theta, how, &grad, false, true);
    for (size_t k = 0; k < y.size(); ++k) {
      const bool inc = update[k] * grad[k] < 0;
      gains[k] = std::max(inc ? gains[k] + 0.2 : gains[k] * 0.8, 0.01);
      update[k] = o.momentum * update[k] - lr * gains[k] * grad[k];
    }
    if (o.max_step > 0)  // openTSNE's max_step_norm: no point moves farther than this in one step
      for (int64_t i = 0; i < n; ++i) {
        double* u = &update[size_t(i * D)];
        double len2 = 0;
        for (int64_t c = 0; c < D; ++c) len2 += u[c] * u[c];
        if (len2 > o.max_step * o.max_step)
          for (int64_t c = 0; c < D; ++c) u[c] *= o.max_step / std::sqrt(len2);
      }
    for (size_t k = 0; k < y.size(); ++k) y[k] += update[k];
  }
  TsneResult r;
  r.y.assign(y.begin(), y.end());
  // The KL from one more evaluation with the same repulsion (its Z estimate): cheap, where the
  // exact KL is O(n^2) per head (tsne_kl, for comparing embeddings).
  r.kl = D == 2 ? gradient<2>(p, cp, 1.0, y, o.theta, how, &grad, true)
                : gradient<3>(p, cp, 1.0, y, o.theta, how, &grad, true);
  return r;
}

std::pair<double, double> umap_ab(double min_dist, double spread) {
  if (!(min_dist >= 0) || !(spread > 0) || min_dist > spread)
    throw Error("UMAP: expected 0 <= min_dist <= spread and spread > 0");
  std::vector<double> xs, ys;
  for (int i = 0; i < 300; ++i) {
    const double x = 3 * spread * double(i) / 299;
    xs.push_back(x);
    ys.push_back(x < min_dist ? 1.0 : std::exp(-(x - min_dist) / spread));
  }
  // Levenberg-Marquardt on the residuals 1 / (1 + a x^(2b)) - y, from a = 1, b = 1 (scipy's
  // curve_fit default start).
  double a = 1, b = 1, lambda = 1e-3;
  auto cost = [&](double aa, double bb) {
    double c = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      const double f = 1 / (1 + aa * std::pow(xs[i], 2 * bb));
      c += (f - ys[i]) * (f - ys[i]);
    }
    return c;
  };
  double c = cost(a, b);
  for (int it = 0; it < 500; ++it) {
    double jtj[2][2] = {{0, 0}, {0, 0}}, jtr[2] = {0, 0};
    for (size_t i = 0; i < xs.size(); ++i) {
      if (xs[i] <= 0) continue;
      const double p = std::pow(xs[i], 2 * b), f = 1 / (1 + a * p), r = f - ys[i];
      const double da = -p * f * f, db = -a * p * 2 * std::log(xs[i]) * f * f;
      jtj[0][0] += da * da, jtj[0][1] += da * db, jtj[1][1] += db * db;
      jtr[0] += da * r, jtr[1] += db * r;
    }
    const double m00 = jtj[0][0] * (1 + lambda), m11 = jtj[1][1] * (1 + lambda), m01 = jtj[0][1];
    const double det = m00 * m11 - m01 * m01;
    if (det == 0) break;
    const double sa = -(m11 * jtr[0] - m01 * jtr[1]) / det, sb = -(m00 * jtr[1] - m01 * jtr[0]) / det;
    const double cn = cost(a + sa, b + sb);
    if (cn < c) {
      a += sa, b += sb;
      const bool done = c - cn < 1e-15 * std::max(c, 1e-300);
      c = cn;
      lambda *= 0.3;
      if (done) break;
    } else {
      lambda *= 10;
      if (lambda > 1e12) break;
    }
  }
  return {a, b};
}

namespace {

// UMAP's two gradient coefficients as functions of the squared distance dd > 0:
//   attract(dd) = -2ab dd^(b-1) / (1 + a dd^b),  repel(dd) = 2b / ((0.001 + dd) (1 + a dd^b)),
// tabulated at 256 points per octave of dd (the top 8 bits of a float's mantissa) from 2^-40 to
// 2^40, linear in between: a shift, two loads and a multiply-add in place of expf and logf, which
// took a third of the SGD. Relative error below 2e-5 (tested); outside the table, the formula.
class UmapKernel {
 public:
  static constexpr int kShift = 15;  // 23 mantissa bits - 8 kept
  static constexpr int kLowExp = -40, kHighExp = 40;
  UmapKernel(double a, double b) : a_(a), b_(b) {
    const int cells = (kHighExp - kLowExp) << (23 - kShift);
    att_.resize(size_t(cells) + 1);
    rep_.resize(size_t(cells) + 1);
    for (int c = 0; c <= cells; ++c) {
      const double dd = std::ldexp(1.0 + double(c & ((1 << (23 - kShift)) - 1)) / double(1 << (23 - kShift)),
                                   kLowExp + (c >> (23 - kShift)));
      att_[size_t(c)] = float(attract_exact(dd));
      rep_[size_t(c)] = float(repel_exact(dd));
    }
  }
  double attract_exact(double dd) const {
    const double pb = std::pow(dd, b_);
    return -2 * a_ * b_ * (pb / dd) / (1 + a_ * pb);
  }
  double repel_exact(double dd) const { return 2 * b_ / ((0.001 + dd) * (1 + a_ * std::pow(dd, b_))); }
  // dd > 0.
  double attract(double dd) const {
    float v;
    return lookup(att_, dd, &v) ? v : attract_exact(dd);
  }
  double repel(double dd) const {
    float v;
    return lookup(rep_, dd, &v) ? v : repel_exact(dd);
  }

 private:
  static bool lookup(const std::vector<float>& t, double dd, float* v) {
    const float f = float(dd);
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    constexpr uint32_t lo = uint32_t(127 + kLowExp) << 23, hi = uint32_t(127 + kHighExp) << 23;
    if (bits < lo || bits >= hi) return false;
    const uint32_t c = (bits - lo) >> kShift;
    const float frac = float(bits & ((1u << kShift) - 1)) * (1.0f / float(1u << kShift));
    *v = t[c] + frac * (t[c + 1] - t[c]);
    return true;
  }
  double a_, b_;
  std::vector<float> att_, rep_;
};

template <int D>
void umap_sgd(std::vector<double>& y, const std::vector<int64_t>& H, const std::vector<int64_t>& Tl,
              const std::vector<double>& eps, std::vector<double>& next, const std::vector<double>& eps_neg,
              std::vector<double>& next_neg, int64_t n, int64_t epochs, double a, double b, const UmapOptions& o) {
  // Negative samples: a xorshift64* stream (the SGD's hot loop; mt19937 took 6 % of it).
  uint64_t state = o.seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
  // The top 32 bits scaled to [0, n) by a multiply (Lemire's), not a 64-bit division.
  auto pick = [&]() {
    state ^= state >> 12, state ^= state << 25, state ^= state >> 27;
    return int64_t(((state * 0x2545F4914F6CDD1Dull) >> 32) * uint64_t(n) >> 32);
  };
  const UmapKernel kernel(a, b);
  auto clip = [](double v) { return std::max(-4.0, std::min(4.0, v)); };
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    const double alpha = 1.0 - double(epoch) / double(epochs);
    for (size_t e = 0; e < H.size(); ++e) {
      if (next[e] > double(epoch)) continue;
      double* yj = &y[size_t(H[e] * D)];
      double* yk = &y[size_t(Tl[e] * D)];
      double dd = 0;
      for (int c = 0; c < D; ++c) dd += (yj[c] - yk[c]) * (yj[c] - yk[c]);
      const double coeff = dd > 0 ? kernel.attract(dd) : 0.0;
      for (int c = 0; c < D; ++c) {
        const double g = clip(coeff * (yj[c] - yk[c])) * alpha;
        yj[c] += g;
        yk[c] -= g;
      }
      next[e] += eps[e];
      const int64_t negs = int64_t((double(epoch) - next_neg[e]) / eps_neg[e]);
      for (int64_t s = 0; s < negs; ++s) {
        const int64_t k = pick();
        if (k == H[e]) continue;
        const double* yn = &y[size_t(k * D)];
        double dn = 0;
        for (int c = 0; c < D; ++c) dn += (yj[c] - yn[c]) * (yj[c] - yn[c]);
        const double coeff2 = dn > 0 ? kernel.repel(dn) : 0.0;
        for (int c = 0; c < D; ++c) yj[c] += (coeff2 > 0 ? clip(coeff2 * (yj[c] - yn[c])) : 4.0) * alpha;
      }
      next_neg[e] += double(negs) * eps_neg[e];
    }
  }
}

}  // namespace

std::pair<double, double> detail::umap_kernel_table_error(double a, double b) {
  const UmapKernel kernel(a, b);
  double att = 0, rep = 0;
  for (double dd = 1e-14; dd < 1e14; dd *= 1.0007) {
    att = std::max(att, std::fabs(kernel.attract(dd) / kernel.attract_exact(dd) - 1));
    rep = std::max(rep, std::fabs(kernel.repel(dd) / kernel.repel_exact(dd) - 1));
  }
  return {att, rep};
}

UmapGraph umap_graph(const Neighbours& nb, int64_t neighbours) {
  const int64_t n = nb.n, K = neighbours - 1;  // umap-learn's n_neighbors counts the point itself
  if (neighbours < 2 || neighbours >= n)
    throw Error("UMAP: expected 2 <= neighbours < n (" + std::to_string(n) + "), found " + std::to_string(neighbours));
  const Neighbours first = first_neighbours(nb, K, "UMAP");
  const std::vector<int64_t>& idx = first.idx;
  const std::vector<float>& d2 = first.dist2;
  // smooth_knn_dist: rho = the nearest distance, sigma so that sum exp(-(d - rho) / sigma) = log2(k).
  std::vector<double> w(size_t(n * K));
  const double target = std::log2(double(neighbours));
  parallel_for(n, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      std::vector<double> dist(static_cast<size_t>(K));
      double mean = 0;  // over the row with the point itself (at 0), as umap-learn's
      for (int64_t m = 0; m < K; ++m) mean += dist[size_t(m)] = std::sqrt(double(d2[size_t(i * K + m)]));
      mean /= double(K + 1);
      double rho = 0;
      for (double v : dist)
        if (v > 0) {
          rho = v;
          break;
        }
      double lo = 0, hi = INFINITY, mid = 1;
      for (int it = 0; it < 64; ++it) {
        double psum = 0;
        for (double v : dist) psum += v - rho > 0 ? std::exp(-(v - rho) / mid) : 1.0;
        if (std::fabs(psum - target) < 1e-5) break;
        if (psum > target) {
          hi = mid;
          mid = (lo + hi) / 2;
        } else {
          lo = mid;
          mid = hi == INFINITY ? mid * 2 : (lo + hi) / 2;
        }
      }
      if (rho > 0) mid = std::max(mid, 1e-3 * mean);
      for (int64_t m = 0; m < K; ++m) {
        const double v = dist[size_t(m)] - rho;
        w[size_t(i * K + m)] = v <= 0 ? 1.0 : std::exp(-v / mid);
      }
    }
  });
  // Fuzzy union: w_ij + w_ji - w_ij w_ji over both directions.
  std::vector<std::vector<std::pair<int64_t, double>>> out(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    for (int64_t m = 0; m < K; ++m) out[size_t(i)].push_back({idx[size_t(i * K + m)], w[size_t(i * K + m)]});
  std::vector<std::vector<std::pair<int64_t, double>>> in(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    for (const auto& [j, v] : out[size_t(i)]) in[size_t(j)].push_back({i, v});
  UmapGraph g;
  g.n = n;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<std::pair<int64_t, double>> row = out[size_t(i)];
    std::sort(row.begin(), row.end());
    auto& back = in[size_t(i)];
    std::sort(back.begin(), back.end());
    // merge row (w_ij) and back (w_ji) by j
    size_t a = 0, b = 0;
    while (a < row.size() || b < back.size()) {
      int64_t j;
      double wij = 0, wji = 0;
      if (b >= back.size() || (a < row.size() && row[a].first < back[b].first)) {
        j = row[a].first, wij = row[a++].second;
      } else if (a >= row.size() || back[b].first < row[a].first) {
        j = back[b].first, wji = back[b++].second;
      } else {
        j = row[a].first, wij = row[a++].second, wji = back[b++].second;
      }
      if (j == i) continue;
      const double v = wij + wji - wij * wji;
      if (v > 0) g.head.push_back(i), g.tail.push_back(j), g.weight.push_back(v);
    }
  }
  return g;
}

std::vector<float> umap(const float* x, int64_t n, int64_t d, const UmapOptions& o, const UmapGraph* shared) {
  if (o.dims < 1 || o.dims > 3) throw Error("UMAP: expected 1 to 3 dimensions, found " + std::to_string(o.dims));
  if (shared && shared->n != n)
    throw Error("UMAP: a graph of " + std::to_string(shared->n) + " points for " + std::to_string(n));
  if (!shared && (o.neighbours < 2 || o.neighbours >= n))
    throw Error("UMAP: expected 2 <= neighbours < n (" + std::to_string(n) + "), found " +
                std::to_string(o.neighbours));
  const UmapGraph own = shared ? UmapGraph{} : umap_graph(nearest_neighbours(x, n, d, o.neighbours - 1), o.neighbours);
  const UmapGraph& g = shared ? *shared : own;
  const std::vector<int64_t>&head = g.head, &tail = g.tail;
  const std::vector<double>& weight = g.weight;
  const int64_t epochs = o.epochs > 0 ? o.epochs : (n <= 10000 ? 500 : 200);
  const double wmax = weight.empty() ? 1.0 : *std::max_element(weight.begin(), weight.end());
  // Edges too weak to be sampled once are dropped (umap-learn: weight < max / epochs).
  std::vector<double> eps, next, eps_neg, next_neg;
  std::vector<int64_t> H, Tl;
  for (size_t e = 0; e < weight.size(); ++e) {
    if (weight[e] < wmax / double(epochs)) continue;
    H.push_back(head[e]), Tl.push_back(tail[e]);
    eps.push_back(wmax / weight[e]);
    next.push_back(wmax / weight[e]);
    eps_neg.push_back(wmax / weight[e] / double(o.negative_sample_rate));
    next_neg.push_back(wmax / weight[e] / double(o.negative_sample_rate));
  }
  // init="pca": scaled to a largest |coordinate| of 10, plus a little noise.
  const int64_t D = o.dims;
  std::vector<float> init = pca(x, n, d, std::min<int64_t>(D, d));
  std::vector<double> y(size_t(n * D), 0.0);
  double mx = 0;
  for (float v : init) mx = std::max(mx, double(std::fabs(v)));
  std::mt19937_64 rng(o.seed);
  std::normal_distribution<double> noise(0, 1e-4);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < D; ++c)
      y[size_t(i * D + c)] =
          (c < d ? double(init[size_t(i * std::min<int64_t>(D, d) + c)]) * 10 / std::max(mx, 1e-300) : 0) + noise(rng);
  const auto [a, b] = umap_ab(o.min_dist, o.spread);
  if (D == 1)
    umap_sgd<1>(y, H, Tl, eps, next, eps_neg, next_neg, n, epochs, a, b, o);
  else if (D == 2)
    umap_sgd<2>(y, H, Tl, eps, next, eps_neg, next_neg, n, epochs, a, b, o);
  else
    umap_sgd<3>(y, H, Tl, eps, next, eps_neg, next_neg, n, epochs, a, b, o);
  return std::vector<float>(y.begin(), y.end());
}

double trustworthiness(const float* x, int64_t d, const float* y, int64_t dims, int64_t n, int64_t k) {
  if (k < 1 || k >= n / 2)
    throw Error("trustworthiness: expected 1 <= k < n / 2, found k " + std::to_string(k) + " for n " +
                std::to_string(n));
  std::vector<int64_t> emb;
  std::vector<float> unused;
  nearest_neighbours(y, n, dims, k, &emb, &unused);
  std::vector<double> part(size_t(n), 0.0);
  parallel_for(n, [&](int64_t b, int64_t e) {
    std::vector<std::pair<float, int64_t>> all(static_cast<size_t>(n));
    std::vector<int64_t> rank(static_cast<size_t>(n));
    for (int64_t i = b; i < e; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        float s = 0;
        for (int64_t c = 0; c < d; ++c) s += (x[i * d + c] - x[j * d + c]) * (x[i * d + c] - x[j * d + c]);
        all[size_t(j)] = {j == i ? INFINITY : s, j};
      }
      std::sort(all.begin(), all.end());
      for (int64_t r = 0; r < n; ++r) rank[size_t(all[size_t(r)].second)] = r + 1;  // 1 = nearest
      for (int64_t m = 0; m < k; ++m) {
        const int64_t r = rank[size_t(emb[size_t(i * k + m)])];
        if (r > k) part[size_t(i)] += double(r - k);
      }
    }
  });
  const double t = std::accumulate(part.begin(), part.end(), 0.0);
  return 1 - t * (2.0 / (double(n) * double(k) * (2.0 * double(n) - 3.0 * double(k) - 1.0)));
}

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size() || a.size() < 2)
    throw Error("spearman: expected two series of the same length (at least 2)");
  auto ranks = [](const std::vector<double>& v) {
    std::vector<size_t> o(v.size());
    std::iota(o.begin(), o.end(), 0);
    std::sort(o.begin(), o.end(), [&](size_t i, size_t j) { return v[i] < v[j]; });
    std::vector<double> r(v.size());
    for (size_t s = 0; s < o.size();) {
      size_t e = s;
      while (e < o.size() && v[o[e]] == v[o[s]]) ++e;
      const double avg = (double(s) + double(e - 1)) / 2 + 1;
      for (size_t k = s; k < e; ++k) r[o[k]] = avg;
      s = e;
    }
    return r;
  };
  const auto ra = ranks(a), rb = ranks(b);
  const double n = double(a.size());
  const double ma = std::accumulate(ra.begin(), ra.end(), 0.0) / n, mb = std::accumulate(rb.begin(), rb.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < ra.size(); ++i) {
    sab += (ra[i] - ma) * (rb[i] - mb);
    saa += (ra[i] - ma) * (ra[i] - ma);
    sbb += (rb[i] - mb) * (rb[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

}  // namespace attnscope
