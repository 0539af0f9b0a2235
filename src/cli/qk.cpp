#include "qk.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "attnscope/checkpoint.h"
#include "attnscope/error.h"
#include "attnscope/image.h"
#include "attnscope/projection.h"
#include "attnscope/qk.h"
#include "attnscope/safetensors.h"

namespace attnscope::cli {

namespace {

namespace fs = std::filesystem;

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string part; std::getline(in, part, sep);)
    if (!part.empty()) out.push_back(part);
  return out;
}

// The corpus: a folder of PNG/JPEG images (image models), or a text file with one item per
// non-empty line.
std::vector<std::string> read_corpus(const std::string& path, const ModelInfo& info, std::vector<int64_t>* line_of) {
  std::error_code ec;
  std::vector<std::string> items;
  if (fs::is_directory(path, ec)) {
    if (!info.image)
      throw Error("--corpus " + path + ": a folder of images needs an image model; model_type '" + info.model_type +
                  "' takes text (give a text file, one sentence per line)");
    for (const auto& e : fs::directory_iterator(path)) {
      std::string ext = e.path().extension().string();
      std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
      if (e.is_regular_file() && (ext == ".png" || ext == ".jpg" || ext == ".jpeg")) items.push_back(e.path().string());
    }
    std::sort(items.begin(), items.end());
    if (items.empty()) throw Error("--corpus " + path + ": expected PNG or JPEG files in the folder, found none");
    return items;
  }
  if (info.image)
    throw Error("--corpus " + path + ": model_type '" + info.model_type +
                "' takes images; give a folder of PNG or JPEG files");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("--corpus " + path + ": cannot read the file");
  int64_t number = 0;
  for (std::string line; std::getline(f, line);) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) items.push_back(line), line_of->push_back(number);
  }
  if (items.empty()) throw Error("--corpus " + path + ": expected one sentence per line, found no text");
  return items;
}

// Progress on stderr: a bar redrawn in place on a terminal; on anything else (a log, a pipe) a line
// at every tenth.
class Progress {
 public:
  Progress(std::string what, int64_t total)
      : what_(std::move(what)), total_(std::max<int64_t>(1, total)), tty_(isatty(2) != 0) {}
  void update(int64_t done, const std::string& unit, const std::string& extra = "") {
    if (tty_) {
      if (done < total_ && done - last_ < std::max<int64_t>(1, total_ / 100)) return;
      const int width = 30, fill = int(width * done / total_);
      std::fprintf(stderr, "\rattnscope qk: %s [%s%s] %lld/%lld %s%s, %s    ", what_.c_str(),
                   std::string(size_t(fill), '#').c_str(), std::string(size_t(width - fill), '.').c_str(),
                   (long long)done, (long long)total_, unit.c_str(), extra.c_str(), times(done).c_str());
      open_ = true;
    } else if (done % std::max<int64_t>(1, total_ / 10) == 0 || done == total_) {
      std::cerr << "attnscope qk: " << what_ << ": " << done << "/" << total_ << " " << unit << extra << ", "
                << times(done) << "\n";
    }
    last_ = done;
  }
  // "12 s" elapsed, then "about 40 s left" from the rate so far.
  std::string times(int64_t done) const {
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    char buf[96];
    if (done > 0 && done < total_)
      std::snprintf(buf, sizeof buf, "%.0f s, about %.0f s left", secs, secs * double(total_ - done) / double(done));
    else
      std::snprintf(buf, sizeof buf, "%.0f s", secs);
    return buf;
  }
  void finish() {
    if (open_) std::fputc('\n', stderr);
    open_ = false;
  }

 private:
  std::string what_;
  int64_t total_, last_ = 0;
  bool tty_, open_ = false;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

struct Projection {
  std::string name;  // pca | tsne | umap
  int64_t dims;
  std::vector<float> coords;  // [L, H, 2N, dims]
};

}  // namespace

void add_qk(CLI::App* c, Common& common, QkArgs& a) {
  add_model(c, common);
  c->add_option("--corpus", a.corpus, "a text file (one sentence per line) or, for image models, a folder of images")
      ->required();
  c->add_option("-o,--output", a.out, "the dataset (.qk, safetensors)")->required();
  c->add_option("--max-tokens", a.max_tokens, "stop before the item that would pass this many tokens (default 10000)");
  c->add_option("--projections", a.projections, "a comma list of pca, tsne, umap (default all three)");
  c->add_option("--dims", a.dims, "a comma list of 2, 3 (default both)");
  c->add_option("--top-k", a.top_k, "keys kept per query, by attention (default 8)");
  c->add_option("--attention-max", a.attention_max,
                "keep whole attention rows (sentence and image views) for items of at most this many tokens "
                "(default 256; longer items keep their top-k)");
  c->add_option("--perplexity", a.perplexity, "t-SNE perplexity (default 30)");
  c->add_option("--tsne-iterations", a.tsne_iterations,
                "t-SNE iterations, the first 250 with early exaggeration (default 750)");
  c->add_option("--neighbours", a.neighbours, "UMAP neighbours (default 15)");
  c->add_option("--spearman-pairs", a.spearman_pairs,
                "query-key pairs per head for the Spearman number (default 20000)");
  c->add_flag("--no-equalize", a.no_equalize, "keep query/key norms (keys are still translated)");
  c->add_flag("--truncate", common.truncate, "keep the first max-positions tokens of a longer line");
}

int run_qk(const Common& o, const QkArgs& a) {
  std::vector<Projection> projections;
  for (const auto& name : split(a.projections, ','))
    for (const auto& d : split(a.dims, ',')) {
      if (name != "pca" && name != "tsne" && name != "umap")
        throw Error("--projections " + a.projections + ": expected a comma list of pca, tsne, umap");
      if (d != "2" && d != "3") throw Error("--dims " + a.dims + ": expected a comma list of 2, 3");
      projections.push_back({name, d == "2" ? 2 : 3, {}});
    }
  if (a.max_tokens < 2) throw Error("--max-tokens " + std::to_string(a.max_tokens) + ": expected at least 2");
  if (a.top_k < 1) throw Error("--top-k " + std::to_string(a.top_k) + ": expected at least 1");
  if (a.attention_max < 0) throw Error("--attention-max " + std::to_string(a.attention_max) + ": expected 0 or more");
  if (!(a.perplexity > 0)) throw Error("--perplexity " + std::to_string(a.perplexity) + ": expected a positive number");
  if (a.tsne_iterations < 1)
    throw Error("--tsne-iterations " + std::to_string(a.tsne_iterations) + ": expected at least 1");
  if (a.neighbours < 2) throw Error("--neighbours " + std::to_string(a.neighbours) + ": expected at least 2");
  if (a.spearman_pairs < 2)
    throw Error("--spearman-pairs " + std::to_string(a.spearman_pairs) + ": expected at least 2");
  const std::string parent = fs::path(a.out).parent_path().string();
  std::error_code ec;
  if (!parent.empty() && !fs::is_directory(parent, ec))
    throw Error("-o " + a.out + ": the folder " + parent + " does not exist");
  Checkpoint ck(model_dir(o));
  auto model = load_model(ck);
  const ModelInfo& info = model->info();
  std::vector<int64_t> line_of;  // text items: their line in the file
  const std::vector<std::string> items = read_corpus(a.corpus, info, &line_of);
  const int64_t L = info.n_layers, H = info.n_heads, hd = info.head_dim, K = a.top_k;
  const auto t0 = std::chrono::steady_clock::now();

  // 1. The model over the corpus: every head's q and k per token, and each query's top keys.
  std::vector<std::vector<float>> qs(size_t(L * H)), ks(size_t(L * H)), topw(size_t(L * H));
  std::vector<std::vector<int32_t>> topi(size_t(L * H));
  // Whole rows within the item (items of at most --attention-max tokens; causal: keys 0..t):
  // row i of a head starts at row_start[i] in rows[lh]. And each key's value-vector norm.
  std::vector<std::vector<float>> rows(size_t(L * H)), vnorm(size_t(L * H));
  std::vector<int32_t> row_start{0};
  std::vector<int32_t> item_of, position, token_id;
  std::vector<std::string> labels, used;
  std::vector<uint8_t> pixels;  // image models: each image at the model's size, RGB
  std::unique_ptr<Tokenizer> tok;
  TraceOptions to;
  to.attention = true;
  to.qkv = true;
  // Tokenize (or load) first, up to --max-tokens, so that the progress knows the items to run.
  std::vector<Prepared> prepared;
  for (size_t it = 0, total = 0; it < items.size(); ++it) {
    Common c = o;
    c.text_file.clear();
    c.text_b.clear();
    (info.image ? c.image : c.text) = items[it];
    Prepared p;
    try {
      p = prepare(c, *model, ck.dir(), tok);
    } catch (const Error& e) {  // name the item: a line of the file, or an image
      std::string what = e.what();
      if (what.rfind("--text: ", 0) == 0) what.erase(0, 8);  // the line is the text
      throw Error("--corpus " + a.corpus + (info.image ? "" : ", line " + std::to_string(line_of[it])) + ": " + what);
    }
    total += p.enc.size();
    if (int64_t(total) > a.max_tokens) break;
    prepared.push_back(std::move(p));
  }
  Progress model_progress("model", int64_t(prepared.size()));
  for (size_t it = 0; it < prepared.size(); ++it) {
    const Prepared& p = prepared[it];
    const int64_t T = int64_t(p.enc.size()), N0 = int64_t(item_of.size());
    const Trace tr = model->forward(p.in, to);
    const bool whole = T <= a.attention_max;
    for (int64_t t = 0; t < T; ++t) {
      const int64_t end = int64_t(row_start.back()) + (whole ? (info.causal ? t + 1 : T) : 0);
      if (end > INT32_MAX)
        throw Error("--attention-max " + std::to_string(a.attention_max) + ": the whole rows of --corpus " + a.corpus +
                    " pass 2^31 weights per head; lower --attention-max or --max-tokens");
      row_start.push_back(int32_t(end));
    }
    for (int64_t l = 0; l < L; ++l)
      for (int64_t h = 0; h < H; ++h) {
        const size_t lh = size_t(l * H + h);
        const Array& va = tr.value[size_t(l)];
        const int64_t kv = h / std::max<int64_t>(1, H / va.shape[0]);
        const float* v = va.ptr() + kv * T * hd;
        for (int64_t t = 0; t < T; ++t) {
          double s = 0;
          for (int64_t c = 0; c < hd; ++c) s += double(v[t * hd + c]) * v[t * hd + c];
          vnorm[lh].push_back(float(std::sqrt(s)));
        }
        const float* q = tr.query[size_t(l)].ptr() + h * T * hd;
        const float* k = tr.key[size_t(l)].ptr() + h * T * hd;
        qs[lh].insert(qs[lh].end(), q, q + T * hd);
        ks[lh].insert(ks[lh].end(), k, k + T * hd);
        const float* att = tr.attention[size_t(l)].ptr() + h * T * T;
        if (whole)
          for (int64_t t = 0; t < T; ++t)
            rows[lh].insert(rows[lh].end(), att + t * T, att + t * T + (info.causal ? t + 1 : T));
        std::vector<int64_t> order(static_cast<size_t>(T));
        for (int64_t t = 0; t < T; ++t) {
          std::iota(order.begin(), order.end(), 0);
          const int64_t keep = std::min(K, T);
          std::partial_sort(order.begin(), order.begin() + keep, order.end(),
                            [&](int64_t x, int64_t y) { return att[t * T + x] > att[t * T + y]; });
          for (int64_t m = 0; m < K; ++m) {
            const bool real = m < keep && att[t * T + order[size_t(m)]] > 0;
            topi[lh].push_back(real ? int32_t(N0 + order[size_t(m)]) : -1);
            topw[lh].push_back(real ? att[t * T + order[size_t(m)]] : 0.0f);
          }
        }
      }
    for (int64_t t = 0; t < T; ++t) {
      item_of.push_back(int32_t(used.size()));
      position.push_back(int32_t(t));
      token_id.push_back(int32_t(p.enc.ids[size_t(t)]));
      labels.push_back(p.enc.display[size_t(t)]);
    }
    used.push_back(info.image ? fs::path(items[it]).filename().string() : items[it]);
    if (info.image) {
      const int S = int(info.image_size);
      const Image im = resize(convert_channels(load_image(items[it]), 3), S, S, 2);
      pixels.insert(pixels.end(), im.data.begin(), im.data.end());
    }
    model_progress.update(int64_t(it + 1), "items", ", " + std::to_string(item_of.size()) + " tokens");
  }
  model_progress.finish();
  const int64_t N = int64_t(item_of.size());
  if (N < 4)
    throw Error("--corpus " + a.corpus + ": expected at least 4 tokens within --max-tokens " +
                std::to_string(a.max_tokens) + ", found " + std::to_string(N));

  // 2. Per head: align, measure, project (heads in parallel; the projections use every core too).
  std::vector<float> q_norm(size_t(L * H * N)), k_norm(size_t(L * H * N)), rho(size_t(L * H));
  for (auto& p : projections) p.coords.assign(size_t(L * H * 2 * N * p.dims), 0.0f);
  std::atomic<int64_t> next{0}, done{0};
  Progress head_progress("projections", L * H);
  std::mutex io;
  std::string failure;
  const int threads = std::max(1, int(std::thread::hardware_concurrency()));
  auto work = [&]() {
    std::optional<SingleThreaded> one_core;  // heads in parallel: each head on its own core
    if (threads > 1) one_core.emplace();
    for (int64_t lh; (lh = next++) < L * H;) {
      try {
        std::vector<float> q = std::move(qs[size_t(lh)]), k = std::move(ks[size_t(lh)]);
        align_queries_keys(q.data(), k.data(), N, hd, !a.no_equalize);
        for (int64_t i = 0; i < N; ++i) {
          double sq = 0, sk = 0;
          for (int64_t c = 0; c < hd; ++c)
            sq += double(q[size_t(i * hd + c)]) * q[size_t(i * hd + c)],
                sk += double(k[size_t(i * hd + c)]) * k[size_t(i * hd + c)];
          q_norm[size_t(lh * N + i)] = float(std::sqrt(sq));
          k_norm[size_t(lh * N + i)] = float(std::sqrt(sk));
        }
        rho[size_t(lh)] = float(qk_distance_spearman(q.data(), k.data(), hd, item_of, info.causal, a.spearman_pairs));
        std::vector<float> points(q);
        points.insert(points.end(), k.begin(), k.end());  // [2N, hd]: queries, then keys
        // One neighbour search per head, shared by t-SNE and UMAP; one t-SNE affinity matrix and one
        // UMAP graph, shared by 2-D and 3-D.
        const double perplexity = std::min(a.perplexity, double(2 * N - 1) / 3);
        const int64_t neighbours = std::min<int64_t>(a.neighbours, 2 * N - 1);
        int64_t kn = 0;
        for (const auto& p : projections)
          kn = std::max(kn, p.name == "tsne"   ? tsne_neighbour_count(2 * N, perplexity)
                            : p.name == "umap" ? neighbours - 1
                                               : 0);
        Neighbours nb;
        std::optional<Affinities> affinities;
        std::optional<UmapGraph> graph;
        if (kn > 0) nb = nearest_neighbours(points.data(), 2 * N, hd, kn);
        for (auto& p : projections) {
          std::vector<float> y;
          if (p.name == "pca") {
            y = pca(points.data(), 2 * N, hd, std::min(p.dims, hd));
            if (p.dims > hd) y.resize(size_t(2 * N * p.dims), 0.0f);
          } else if (p.name == "tsne") {
            TsneOptions t;
            t.dims = p.dims;
            t.perplexity = perplexity;
            t.iterations = a.tsne_iterations;
            if (!affinities) affinities = tsne_affinities(nb, perplexity);
            y = tsne(points.data(), 2 * N, hd, t, &*affinities).y;
          } else {
            UmapOptions u;
            u.dims = p.dims;
            u.neighbours = neighbours;
            if (!graph) graph = umap_graph(nb, neighbours);
            y = umap(points.data(), 2 * N, hd, u, &*graph);
          }
          std::copy(y.begin(), y.end(), p.coords.begin() + lh * 2 * N * p.dims);
        }
        const int64_t d = ++done;
        std::lock_guard<std::mutex> g(io);
        head_progress.update(d, "heads");
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> g(io);
        if (failure.empty())
          failure = "layer " + std::to_string(lh / H) + " head " + std::to_string(lh % H) + ": " + e.what();
        next = L * H;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back(work);
  for (auto& t : pool) t.join();
  head_progress.finish();
  if (!failure.empty()) throw Error("qk: " + failure);

  // 3. One safetensors file.
  std::vector<TensorWrite> t;
  t.push_back(tensor_i32("item", {N}, item_of.data()));
  t.push_back(tensor_i32("position", {N}, position.data()));
  t.push_back(tensor_i32("token_id", {N}, token_id.data()));
  t.push_back(tensor_f16("query_norm", {L, H, N}, q_norm.data()));
  t.push_back(tensor_f16("key_norm", {L, H, N}, k_norm.data()));
  t.push_back(tensor_f32("spearman", {L, H}, rho.data()));
  {
    std::vector<float> vn, ar;
    for (int64_t lh = 0; lh < L * H; ++lh) {
      vn.insert(vn.end(), vnorm[size_t(lh)].begin(), vnorm[size_t(lh)].end());
      ar.insert(ar.end(), rows[size_t(lh)].begin(), rows[size_t(lh)].end());
      std::vector<float>().swap(rows[size_t(lh)]);
    }
    t.push_back(tensor_f16("value_norm", {L, H, N}, vn.data()));
    t.push_back(tensor_i32("attention_offset", {N + 1}, row_start.data()));
    t.push_back(tensor_f16("attention", {L, H, int64_t(row_start.back())}, ar.data()));
  }
  std::vector<int32_t> ti;
  std::vector<float> tw;
  for (int64_t lh = 0; lh < L * H; ++lh) {
    ti.insert(ti.end(), topi[size_t(lh)].begin(), topi[size_t(lh)].end());
    tw.insert(tw.end(), topw[size_t(lh)].begin(), topw[size_t(lh)].end());
  }
  t.push_back(tensor_i32("topk_index", {L, H, N, K}, ti.data()));
  t.push_back(tensor_f16("topk_weight", {L, H, N, K}, tw.data()));
  std::string names;
  for (const auto& p : projections) {
    const std::string n = p.name + std::to_string(p.dims);
    names += (names.empty() ? "" : ",") + n;
    t.push_back(tensor_f16("projection." + n, {L, H, 2 * N, p.dims}, p.coords.data()));
  }
  if (info.image)
    t.push_back(tensor_u8("image", {int64_t(used.size()), info.image_size, info.image_size, 3}, pixels.data()));
  std::map<std::string, std::string> meta{
      {"format", "attnscope.qk"},
      {"version", "1"},
      {"model", ck.dir()},
      {"model_type", info.model_type},
      {"family", info.family},
      {"n_layers", std::to_string(L)},
      {"n_heads", std::to_string(H)},
      {"head_dim", std::to_string(hd)},
      {"causal", info.causal ? "true" : "false"},
      {"equalize", a.no_equalize ? "false" : "true"},
      {"top_k", std::to_string(K)},
      {"attention_max", std::to_string(a.attention_max)},
      {"projections", names},
      {"tokens", nlohmann::json(labels).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)},
      {"items", nlohmann::json(used).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)}};
  if (info.image) {
    meta["image_size"] = std::to_string(info.image_size);
    meta["patch_size"] = std::to_string(info.patch_size);
  }
  write_safetensors(a.out, t, meta);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cerr << "attnscope qk: " << used.size() << " items, " << N << " tokens, " << L * H << " heads, "
            << projections.size() << " projections each in " << secs << " s\n";
  std::cout << a.out << "\n";
  return 0;
}

}  // namespace attnscope::cli
