#include "attnscope/attribution.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "attnscope/error.h"
#include "attnscope/safetensors.h"

namespace attnscope {

void integration_points(const std::string& rule, int64_t n, std::vector<double>* alphas, std::vector<double>* weights) {
  if (n < 1) throw Error("--steps " + std::to_string(n) + ": expected at least 1");
  alphas->assign(size_t(n), 0.0);
  weights->assign(size_t(n), 1.0 / double(n));
  if (rule == "gausslegendre") {
    // Roots of the Legendre polynomial P_n (Newton from Chebyshev guesses), mapped from [-1, 1] to
    // [0, 1] as Captum does with numpy's leggauss: alpha = (x + 1) / 2, weight = w / 2.
    auto legendre = [n](double x, double* dp) {
      double p0 = 1, p1 = x;
      for (int64_t k = 2; k <= n; ++k) {
        const double p2 = ((2.0 * double(k) - 1) * x * p1 - (double(k) - 1) * p0) / double(k);
        p0 = p1, p1 = p2;
      }
      *dp = double(n) * (x * p1 - p0) / (x * x - 1);
      return p1;
    };
    for (int64_t i = 0; i < n; ++i) {
      double x = std::cos(M_PI * (double(i) + 0.75) / (double(n) + 0.5)), dp = 0;
      for (int it = 0; it < 100; ++it) {
        const double dx = legendre(x, &dp) / dp;
        x -= dx;
        if (std::fabs(dx) < 1e-16) break;
      }
      legendre(x, &dp);
      (*alphas)[size_t(n - 1 - i)] = (x + 1) / 2;
      (*weights)[size_t(n - 1 - i)] = 1.0 / ((1 - x * x) * dp * dp);
    }
  } else if (rule == "riemann_left") {
    for (int64_t k = 0; k < n; ++k) (*alphas)[size_t(k)] = double(k) / double(n);
  } else if (rule == "riemann_right") {
    for (int64_t k = 0; k < n; ++k) (*alphas)[size_t(k)] = double(k + 1) / double(n);
  } else if (rule == "riemann_middle") {
    for (int64_t k = 0; k < n; ++k) (*alphas)[size_t(k)] = (double(k) + 0.5) / double(n);
  } else if (rule == "riemann_trapezoid") {
    if (n < 2) throw Error("--steps: riemann_trapezoid needs at least 2 steps");
    for (int64_t k = 0; k < n; ++k) {
      (*alphas)[size_t(k)] = double(k) / double(n - 1);
      (*weights)[size_t(k)] = (k == 0 || k == n - 1 ? 0.5 : 1.0) / double(n - 1);
    }
  } else {
    throw Error("--rule " + rule +
                ": expected gausslegendre, riemann_left, riemann_right, riemann_middle or riemann_trapezoid");
  }
}

namespace {

// E_h[(g (.) a)+] (or without the (.)+ when signed) for g, a: [H, T, T]; T x T row-major.
std::vector<double> head_mean_product(const Array& g, const Array& a, bool signed_evidence) {
  const int64_t H = a.dim(0), TT = a.dim(1) * a.dim(2);
  std::vector<double> out(size_t(TT), 0.0);
  for (int64_t h = 0; h < H; ++h) {
    const float* gp = g.ptr() + h * TT;
    const float* ap = a.ptr() + h * TT;
    for (int64_t k = 0; k < TT; ++k) {
      const double p = double(gp[k]) * double(ap[k]);
      out[size_t(k)] += signed_evidence ? p : std::max(0.0, p);
    }
  }
  for (double& x : out) x /= double(H);
  return out;
}

Array copy_of(const Array& a) {
  Array b = Array::zeros(a.shape);
  std::copy(a.ptr(), a.ptr() + a.numel(), b.mutable_ptr());
  return b;
}

// F (and gradients) for many inputs, `batch` at a time.
Gradients batched(const Model& m, const ModelInput& in, const std::vector<Array>& xs, const Target& t, int64_t batch,
                  int64_t* passes, bool values_only = false) {
  Gradients all;
  const int64_t per = xs.empty() ? 0 : xs[0].numel();
  std::vector<int64_t> shape{int64_t(xs.size())};
  if (!xs.empty()) shape.insert(shape.end(), xs[0].shape.begin(), xs[0].shape.end());
  if (!values_only) all.grad = Array::zeros(shape);
  for (size_t b = 0; b < xs.size(); b += size_t(batch)) {
    std::vector<Array> chunk(xs.begin() + long(b), xs.begin() + long(std::min(xs.size(), b + size_t(batch))));
    GradientOptions go;
    go.values_only = values_only;
    Gradients g = m.gradients(in, chunk, t, go);
    ++*passes;
    all.value.insert(all.value.end(), g.value.begin(), g.value.end());
    if (!values_only) std::copy(g.grad.ptr(), g.grad.ptr() + g.grad.numel(), all.grad.mutable_ptr() + int64_t(b) * per);
  }
  return all;
}

}  // namespace

Attribution attribute(const Model& m, const ModelInput& in, const Target& t, const Array& baseline,
                      const AttributionOptions& o) {
  if (o.batch < 1) throw Error("--batch " + std::to_string(o.batch) + ": expected at least 1");
  const Array x = m.features(in);
  if (!baseline.empty() && baseline.shape != x.shape) throw Error("baseline: expected the shape of the input features");
  const int64_t n = x.numel();
  Attribution r;
  if (o.method == "saliency" || o.method == "grad-x-input") {
    Gradients g = m.gradients(in, {x}, t, {});
    r.passes = 1;
    r.value = g.value[0];
    r.attr = Array::zeros(x.shape);
    for (int64_t k = 0; k < n; ++k)
      r.attr.mutable_ptr()[k] = o.method == "saliency" ? std::fabs(g.grad.ptr()[k]) : g.grad.ptr()[k] * x.ptr()[k];
    return r;
  }
  if (o.method == "integrated-gradients") {
    std::vector<double> alphas, weights;
    integration_points(o.rule, o.steps, &alphas, &weights);
    std::vector<Array> path;
    for (double a : alphas) {
      Array p = Array::zeros(x.shape);
      for (int64_t k = 0; k < n; ++k)
        p.mutable_ptr()[k] = float(baseline.ptr()[k] + a * (x.ptr()[k] - baseline.ptr()[k]));
      path.push_back(p);
    }
    Gradients g = batched(m, in, path, t, o.batch, &r.passes);
    // F(x) and F(x') for the convergence delta: one forward pass, no gradients.
    const Gradients ends = batched(m, in, {copy_of(x), copy_of(baseline)}, t, o.batch, &r.passes, true);
    std::vector<double> acc(size_t(n), 0.0);
    for (size_t s = 0; s < alphas.size(); ++s)
      for (int64_t k = 0; k < n; ++k) acc[size_t(k)] += weights[s] * g.grad.ptr()[int64_t(s) * n + k];
    r.attr = Array::zeros(x.shape);
    double sum = 0;
    for (int64_t k = 0; k < n; ++k) {
      const double v = (double(x.ptr()[k]) - baseline.ptr()[k]) * acc[size_t(k)];
      r.attr.mutable_ptr()[k] = float(v);
      sum += v;
    }
    r.value = ends.value[0];
    r.baseline_value = ends.value[1];
    r.delta = sum - (r.value - r.baseline_value);
    return r;
  }
  if (o.method == "occlusion") {
    // Captum's Occlusion: windows of `window` tokens every `stride` tokens (images: the patches)
    // replaced by the baseline; a token's score is the mean drop F(x) - F(x occluded) over the
    // windows that cover it. Forward passes only.
    if (o.window < 1 || o.stride < 1)
      throw Error("--window/--stride " + std::to_string(o.window) + "/" + std::to_string(o.stride) +
                  ": expected at least 1");
    std::vector<Array> xs{copy_of(x)};
    std::vector<std::vector<int64_t>> units;   // the occluded feature indices of each window
    std::vector<std::vector<int64_t>> covers;  // the score units (tokens / patches) each window covers
    if (x.shape.size() == 2) {
      const int64_t T = x.dim(0), D = x.dim(1);
      for (int64_t s = 0; s < T; s += o.stride) {
        std::vector<int64_t> idx, toks;
        for (int64_t tt = s; tt < std::min(T, s + o.window); ++tt) {
          toks.push_back(tt);
          for (int64_t d = 0; d < D; ++d) idx.push_back(tt * D + d);
        }
        units.push_back(idx);
        covers.push_back(toks);
        if (s + o.window >= T) break;
      }
    } else {
      const int64_t C = x.dim(0), H = x.dim(1), W = x.dim(2), p = o.window;
      for (int64_t r0 = 0; r0 < H; r0 += p)
        for (int64_t c0 = 0; c0 < W; c0 += p) {
          std::vector<int64_t> idx;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t y = r0; y < std::min(H, r0 + p); ++y)
              for (int64_t xx = c0; xx < std::min(W, c0 + p); ++xx) idx.push_back((c * H + y) * W + xx);
          covers.push_back({int64_t(units.size())});
          units.push_back(idx);
        }
    }
    for (const auto& u : units) {
      Array o2 = copy_of(x);
      for (int64_t k : u) o2.mutable_ptr()[k] = baseline.ptr()[k];
      xs.push_back(o2);
    }
    Gradients g = batched(m, in, xs, t, o.batch, &r.passes, /*values_only=*/true);
    r.value = g.value[0];
    const size_t n_scores = x.shape.size() == 2 ? size_t(x.dim(0)) : units.size();
    std::vector<double> sum(n_scores, 0.0), count(n_scores, 0.0);
    for (size_t u = 0; u < units.size(); ++u)
      for (int64_t k : covers[u]) sum[size_t(k)] += g.value[0] - g.value[u + 1], count[size_t(k)] += 1;
    for (size_t k = 0; k < n_scores; ++k) r.per_unit.push_back(count[k] > 0 ? sum[k] / count[k] : 0.0);
    return r;
  }
  if (o.method == "grad-attention" || o.method == "relevance") {
    const bool lrp = o.method == "relevance";
    std::vector<Array> att, grad, cam;
    if (lrp) {
      Relevance rel = m.relevance(in, t);
      r.value = rel.value;
      att = std::move(rel.attention), grad = std::move(rel.attention_grad), cam = std::move(rel.attention_relevance);
    } else {
      GradientOptions go;
      go.attention = true;
      Gradients g = m.gradients(in, {x}, t, go);
      r.value = g.value[0];
      att = std::move(g.attention), grad = std::move(g.attention_grad);
    }
    r.passes = 1;
    const int64_t L = int64_t(att.size());
    if (o.start_layer < 0 || o.start_layer >= L)
      throw Error("--start-layer " + std::to_string(o.start_layer) + ": outside 0.." + std::to_string(L - 1));
    // Per layer Abar = E_h[(grad (.) A)+] (ICCV 2021) or E_h[(grad (.) R_A)+] (CVPR 2021).
    std::vector<std::vector<double>> abar;
    for (int64_t l = 0; l < L; ++l)
      abar.push_back(head_mean_product(grad[size_t(l)], lrp ? cam[size_t(l)] : att[size_t(l)], o.signed_evidence));
    const int64_t T = att[0].dim(1);
    const int64_t q = x.shape.size() == 2 ? t.position : 0;  // images: [CLS]
    // One row of the layer product, propagated from the top: v <- v (I + Abar) (ICCV), or
    // v <- v (Abar + I) / rowsum (CVPR: rollout of the relevance maps from start_layer).
    std::vector<double> v(static_cast<size_t>(T), 0.0), next;
    v[size_t(q)] = 1;
    for (int64_t l = L - 1; l >= (lrp ? o.start_layer : 0); --l) {
      const auto& a = abar[size_t(l)];
      next = lrp ? std::vector<double>(size_t(T), 0.0) : v;
      for (int64_t i = 0; i < T; ++i) {
        if (v[size_t(i)] == 0) continue;
        const double* row = &a[size_t(i * T)];
        if (lrp) {
          const double sum = std::accumulate(row, row + T, 1.0);  // row of Abar + I
          const double w = v[size_t(i)] / sum;
          for (int64_t j = 0; j < T; ++j) next[size_t(j)] += w * (row[j] + (i == j ? 1.0 : 0.0));
        } else {
          for (int64_t j = 0; j < T; ++j) next[size_t(j)] += v[size_t(i)] * row[j];
        }
      }
      v.swap(next);
    }
    r.per_unit = v;
    return r;
  }
  throw Error("--method " + o.method +
              ": expected saliency, grad-x-input, integrated-gradients, occlusion, grad-attention or relevance");
}

ContinuationAttribution attribute_continuation(const Model& m, const std::vector<int64_t>& prompt,
                                               const std::vector<int64_t>& continuation, const Array& prompt_baseline,
                                               const std::string& kind, const AttributionOptions& o,
                                               const std::string& reduce) {
  if (reduce != "sum" && reduce != "signed" && reduce != "l2")
    throw Error("--reduce " + reduce + ": expected l2, sum or signed");
  if (continuation.empty()) throw Error("continuation: expected at least one token, found none");
  const int64_t P = int64_t(prompt.size());
  ContinuationAttribution out;
  ModelInput in;
  in.ids = prompt;
  for (size_t i = 0; i < continuation.size(); ++i) {
    const Array x = m.features(in);  // (T, D), T = P + i
    const int64_t D = x.dim(1);
    if (prompt_baseline.shape != std::vector<int64_t>{P, D})
      throw Error("continuation: expected a prompt baseline of shape " + shape_str({P, D}) + ", found " +
                  shape_str(prompt_baseline.shape));
    Array b = copy_of(x);
    std::copy(prompt_baseline.ptr(), prompt_baseline.ptr() + P * D, b.mutable_ptr());
    const Target t{int64_t(in.ids.size()) - 1, continuation[i], kind};
    const Attribution a = attribute(m, in, t, b, o);
    std::vector<double> row(size_t(P), 0.0);
    for (int64_t k = 0; k < P; ++k) {
      if (a.attr.empty()) {
        row[size_t(k)] = a.per_unit.at(size_t(k));
        continue;
      }
      const float* r = a.attr.ptr() + k * D;
      double acc = 0;
      for (int64_t d = 0; d < D; ++d) acc += reduce == "l2" ? double(r[d]) * r[d] : r[d];
      row[size_t(k)] = reduce == "l2" ? std::sqrt(acc) : acc;
    }
    out.rows.push_back(std::move(row));
    out.values.push_back(a.value);
    out.deltas.push_back(a.delta);
    out.passes += a.passes;
    in.ids.push_back(continuation[i]);
  }
  return out;
}

std::vector<double> reduce_attribution(const Array& attr, const std::string& how, int64_t patch) {
  std::vector<std::vector<double>> units;  // the attribution values of each token / patch
  if (attr.shape.size() == 2) {
    const int64_t T = attr.dim(0), D = attr.dim(1);
    for (int64_t t = 0; t < T; ++t) units.emplace_back(attr.ptr() + t * D, attr.ptr() + (t + 1) * D);
  } else if (attr.shape.size() == 3 && patch > 0) {
    const int64_t C = attr.dim(0), H = attr.dim(1), W = attr.dim(2);
    for (int64_t r0 = 0; r0 < H; r0 += patch)
      for (int64_t c0 = 0; c0 < W; c0 += patch) {
        std::vector<double> u;
        for (int64_t c = 0; c < C; ++c)
          for (int64_t y = r0; y < std::min(H, r0 + patch); ++y)
            for (int64_t x = c0; x < std::min(W, c0 + patch); ++x) u.push_back(attr.ptr()[(c * H + y) * W + x]);
        units.push_back(u);
      }
  } else {
    throw Error("reduce: expected a [tokens, dim] or [channels, height, width] attribution");
  }
  std::vector<double> out;
  if (how == "l2") {
    for (const auto& u : units) out.push_back(std::sqrt(std::inner_product(u.begin(), u.end(), u.begin(), 0.0)));
    const double s = std::accumulate(out.begin(), out.end(), 0.0);
    if (s > 0)
      for (double& v : out) v /= s;
  } else if (how == "sum" || how == "signed") {
    for (const auto& u : units) out.push_back(std::accumulate(u.begin(), u.end(), 0.0));
    double norm = 0;
    for (double v : out) norm += how == "sum" ? v * v : std::fabs(v);
    if (how == "sum") norm = std::sqrt(norm);
    if (norm > 0)
      for (double& v : out) v /= norm;
  } else {
    throw Error("--reduce " + how + ": expected l2, sum or signed");
  }
  return out;
}

}  // namespace attnscope
