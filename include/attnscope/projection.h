// Low-dimensional embeddings of point clouds, for AttentionViz-style joint query-key views: PCA,
// t-SNE (Barnes-Hut, van der Maaten 2014, with scikit-learn's defaults) and the measures used to
// judge them (trustworthiness, Spearman correlation). Points are row-major float [n, d].
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace attnscope {

// While one is alive, the projections started on this thread run on this thread only (for callers
// that already run one projection per core, as attnscope qk does with heads).
class SingleThreaded {
 public:
  SingleThreaded();
  ~SingleThreaded();
  SingleThreaded(const SingleThreaded&) = delete;
  SingleThreaded& operator=(const SingleThreaded&) = delete;
};

// The first `dims` principal components of the centred points ([n, dims]); each component's sign
// makes its largest-magnitude loading positive. variance (optional): the variance each explains.
std::vector<float> pca(const float* x, int64_t n, int64_t d, int64_t dims, std::vector<double>* variance = nullptr);

// The k nearest neighbours of every point (squared Euclidean; excluding the point itself), nearest
// first: indices [n, k] and squared distances [n, k], on every core. Exact up to `exact_up_to`
// points (blocked matrix-product distances, n^2 d: 15 neighbours of 20,000 points of 64
// dimensions in 2 s on one core; a point with a NaN coordinate is an error), above that approximate (hnswlib's HNSW
// graph, M 16, ef 200, built in point order so the result is deterministic; recall tested).
void nearest_neighbours(const float* x, int64_t n, int64_t d, int64_t k, std::vector<int64_t>* idx,
                        std::vector<float>* dist2, int64_t exact_up_to = 50000);

// The same as a value, to share between projections of the same points (attnscope qk: one
// neighbour search per head for t-SNE and UMAP in 2-D and 3-D; each takes the first neighbours it
// needs, which are the ones a search for fewer would find).
struct Neighbours {
  int64_t n = 0, k = 0;
  std::vector<int64_t> idx;  // [n, k], nearest first
  std::vector<float> dist2;  // [n, k]
};
Neighbours nearest_neighbours(const float* x, int64_t n, int64_t d, int64_t k, int64_t exact_up_to = 50000);

// The symmetric t-SNE affinities: per point a Gaussian over its 3 * perplexity nearest neighbours
// with its precision found by binary search for the perplexity (entropy in nats), then
// P = (P + P^T) / sum. Compressed sparse rows.
struct Affinities {
  int64_t n = 0;
  std::vector<int64_t> row;  // n + 1 offsets
  std::vector<int64_t> col;
  std::vector<double> val;
};
Affinities tsne_affinities(const float* x, int64_t n, int64_t d, double perplexity);
// From precomputed neighbours (at least tsne_neighbour_count of them per point).
Affinities tsne_affinities(const Neighbours& nb, double perplexity);
int64_t tsne_neighbour_count(int64_t n, double perplexity);  // min(n - 1, 3 perplexity + 1)

// KL(P || Q) of an embedding y ([n, dims]) with Student-t Q, exactly (O(n^2)); grad (optional,
// [n, dims]) gets dKL/dy = 4 sum_j (p_ij - q_ij) (y_i - y_j) / (1 + |y_i - y_j|^2).
double tsne_kl(const Affinities& p, const std::vector<double>& y, int64_t dims, std::vector<double>* grad = nullptr);

// The t-SNE gradient by one repulsion method ("exact", "barnes_hut" with theta, "fft"; 2-D for
// fft), without exaggeration: for comparing the approximations with the exact gradient.
void tsne_gradient(const Affinities& p, const std::vector<double>& y, int64_t dims, const std::string& method,
                   double theta, std::vector<double>* grad);

struct TsneOptions {
  int64_t dims = 2;  // 2 or 3
  double perplexity = 30;
  // openTSNE's schedule (250 iterations with early exaggeration 12, then 500; momentum 0.8; every
  // point's step at most 5) with its per-phase learning rate (Belkina et al. 2019): 25 % fewer
  // iterations than scikit-learn's, at a lower KL than scikit-learn's 1,000 (bench/).
  int64_t iterations = 750;
  double early_exaggeration = 12;
  int64_t exaggeration_iterations = 250;
  // 0: "auto", n / exaggeration in each phase (openTSNE's, whose gradient lacks the factor 4:
  // here n / (4 exaggeration)), at least 50 (scikit-learn's floor). Otherwise this, in both phases.
  double learning_rate = 0;
  double momentum = 0.8;
  double max_step = 5;  // a point's update is scaled down to this length (0: no limit)
  double theta = 0.5;   // Barnes-Hut opening angle; 0 = exact gradient
  // Repulsion: "barnes_hut" ("auto"), "fft" (2-D: FFT-accelerated interpolation, Linderman et
  // al. 2019; faster on large compact embeddings, but its grid grows with the embedding's extent
  // and its few-percent force error cost KL on real query/key data: opt-in), "exact" (O(n^2)).
  std::string method = "auto";
  uint64_t seed = 0;
};

struct TsneResult {
  std::vector<float> y;  // [n, dims]
  double kl = 0;         // KL(P || Q) at the end, Z from the method's repulsion (exact: tsne_kl)
};

// t-SNE as scikit-learn's TSNE runs it: PCA initialisation scaled to std 1e-4, early exaggeration
// with momentum 0.5, then momentum 0.8, adaptive gains (min 0.01).
// p (optional): the affinities of these points for o.perplexity, shared between runs.
TsneResult tsne(const float* x, int64_t n, int64_t d, const TsneOptions& o, const Affinities* p = nullptr);

struct UmapOptions {
  int64_t dims = 2;
  int64_t neighbours = 15;
  double min_dist = 0.1, spread = 1.0;
  int64_t epochs = 0;  // 0: umap-learn's default, 500 up to 10,000 points, else 200
  int64_t negative_sample_rate = 5;
  uint64_t seed = 0;
};

// a, b of the low-dimensional similarity 1 / (1 + a d^(2b)), least-squares fitted (as umap-learn)
// to 1 below min_dist and exp(-(d - min_dist) / spread) above, on 300 points of [0, 3 spread].
std::pair<double, double> umap_ab(double min_dist, double spread);

// UMAP (McInnes et al. 2018) as umap-learn runs it: fuzzy k-neighbour graph (rho, sigma by binary
// search to log2(k)), fuzzy union, edges sampled in proportion to their weight over the epochs
// with a linearly decaying rate, negative sampling, gradients clipped to 4. Initialisation: PCA
// scaled to a largest coordinate of 10 (umap-learn's init="pca"). Deterministic for a seed.
// graph (optional): umap_graph of these points for o.neighbours, shared between runs.
struct UmapGraph {
  int64_t n = 0;
  std::vector<int64_t> head, tail;  // directed edges i -> j of the fuzzy union, both directions
  std::vector<double> weight;
};
UmapGraph umap_graph(const Neighbours& nb, int64_t neighbours);
std::vector<float> umap(const float* x, int64_t n, int64_t d, const UmapOptions& o, const UmapGraph* graph = nullptr);

namespace detail {
// The largest relative error of UMAP's tabulated gradient coefficients (attract, repel) against
// their formulas, over squared distances from 1e-14 to 1e14 (for the tests).
std::pair<double, double> umap_kernel_table_error(double a, double b);
}  // namespace detail

// Trustworthiness (Venna & Kaski; scikit-learn's definition) of an embedding with k neighbours:
// 1 - 2 / (n k (2n - 3k - 1)) * sum_i sum_{j in N_k^emb(i) \ N_k^orig(i)} (r(i, j) - k).
double trustworthiness(const float* x, int64_t d, const float* y, int64_t dims, int64_t n, int64_t k);

// Spearman's rank correlation (average ranks for ties).
double spearman(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace attnscope
