#include "attnscope/atlas.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "attnscope/error.h"
#include "attnscope/report.h"
#include "attnscope/safetensors.h"
#include "attnscope/view.h"
#include "viewer_asset.h"

namespace attnscope {

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The .qk file, checked: every tensor the atlas reads, with the shapes `attnscope qk` writes.
struct Qk {
  const SafetensorsFile& f;
  int64_t L = 0, H = 0, N = 0, K = 0, M = 0, items = 0;

  [[noreturn]] void fail(const std::string& what) const { throw Error(f.path() + ": " + what); }
  const TensorInfo& need(const std::string& name, DType dt, const std::vector<int64_t>& shape) const {
    if (!f.has(name)) fail("expected a tensor '" + name + "' (written by attnscope qk), found none");
    const TensorInfo& t = f.info(name);
    if (t.dtype != dt) fail(name + ": expected dtype " + dtype_name(dt) + ", found " + dtype_name(t.dtype));
    if (t.shape != shape) fail(name + ": expected shape " + shape_str(shape) + ", found " + shape_str(t.shape));
    return t;
  }
  std::string meta(const std::string& key) const {
    auto it = f.metadata().find(key);
    if (it == f.metadata().end()) fail("expected metadata '" + key + "', found none");
    return it->second;
  }
  int64_t meta_int(const std::string& key, int64_t lo) const {
    const std::string v = meta(key);
    try {
      size_t used = 0;
      const long long x = std::stoll(v, &used);
      if (used == v.size() && x >= lo) return x;
    } catch (const std::exception&) {
    }
    fail("metadata " + key + ": expected an integer >= " + std::to_string(lo) + ", found '" + v + "'");
  }
  const int32_t* i32(const TensorInfo& t) const { return reinterpret_cast<const int32_t*>(f.bytes(t)); }
};

void put_b64(std::string& out, const uint8_t* p, size_t n) {
  const size_t at = out.size();
  out.resize(at + (n + 2) / 3 * 4);
  char* o = out.data() + at;
  size_t i = 0;
  for (; i + 3 <= n; i += 3, o += 4) {
    const uint32_t v = uint32_t(p[i]) << 16 | uint32_t(p[i + 1]) << 8 | p[i + 2];
    o[0] = kB64[v >> 18], o[1] = kB64[(v >> 12) & 63], o[2] = kB64[(v >> 6) & 63], o[3] = kB64[v & 63];
  }
  if (i < n) {
    const uint32_t v = uint32_t(p[i]) << 16 | (i + 1 < n ? uint32_t(p[i + 1]) << 8 : 0);
    o[0] = kB64[v >> 18], o[1] = kB64[(v >> 12) & 63];
    o[2] = i + 1 < n ? kB64[(v >> 6) & 63] : '=';
    o[3] = '=';
  }
}

void element(std::string& html, const std::string& id, const uint8_t* p, size_t n) {
  html += "<script type=\"text/plain\" id=\"attnscope-atlas-" + id + "\">";
  put_b64(html, p, n);
  html += "</script>\n";
}

}  // namespace

std::string base64(const uint8_t* data, size_t n) {
  std::string s;
  put_b64(s, data, n);
  return s;
}

bool is_qk_file(const std::string& path) {
  SafetensorsFile f(path);
  auto it = f.metadata().find("format");
  return it != f.metadata().end() && it->second == "attnscope.qk";
}

std::string atlas_html(const std::string& path, const AtlasOptions& o) {
  SafetensorsFile f(path);
  Qk q{f};
  if (q.meta("format") != "attnscope.qk")
    q.fail("expected metadata format 'attnscope.qk' (a file from attnscope qk), found '" + q.meta("format") + "'");
  if (q.meta("version") != "1") q.fail("expected version 1, found '" + q.meta("version") + "'");
  q.L = q.meta_int("n_layers", 1), q.H = q.meta_int("n_heads", 1), q.K = q.meta_int("top_k", 1);
  const int64_t L = q.L, H = q.H, K = q.K;
  if (!f.has("item")) q.fail("expected a tensor 'item' (written by attnscope qk), found none");
  q.N = f.info("item").numel();
  const int64_t N = q.N;
  if (N < 1) q.fail("item: expected at least one token, found none");
  const TensorInfo& item = q.need("item", DType::I32, {N});
  const TensorInfo& position = q.need("position", DType::I32, {N});
  const TensorInfo& qn = q.need("query_norm", DType::F16, {L, H, N});
  const TensorInfo& kn = q.need("key_norm", DType::F16, {L, H, N});
  const TensorInfo& vn = q.need("value_norm", DType::F16, {L, H, N});
  q.need("spearman", DType::F32, {L, H});
  const TensorInfo& ti = q.need("topk_index", DType::I32, {L, H, N, K});
  const TensorInfo& tw = q.need("topk_weight", DType::F16, {L, H, N, K});
  const TensorInfo& off = q.need("attention_offset", DType::I32, {N + 1});
  if (!f.has("attention")) q.fail("expected a tensor 'attention' (written by attnscope qk), found none");
  q.M = f.info("attention").shape.size() == 3 ? f.info("attention").shape[2] : -1;
  const TensorInfo& att = q.need("attention", DType::F16, {L, H, std::max<int64_t>(q.M, 0)});

  nlohmann::json tokens = nlohmann::json::parse(q.meta("tokens"), nullptr, false);
  nlohmann::json items = nlohmann::json::parse(q.meta("items"), nullptr, false);
  if (!tokens.is_array() || int64_t(tokens.size()) != N)
    q.fail("metadata tokens: expected a JSON array of " + std::to_string(N) + " strings");
  if (!items.is_array() || items.empty()) q.fail("metadata items: expected a JSON array of the corpus items");
  q.items = int64_t(items.size());
  // Items are consecutive runs of tokens with positions 0, 1, ...; offsets grow by whole rows.
  const int32_t* it = q.i32(item);
  const int32_t* pos = q.i32(position);
  const int32_t* ro = q.i32(off);
  std::vector<int64_t> start(size_t(q.items), -1);
  for (int64_t i = 0; i < N; ++i) {
    if (it[i] < 0 || it[i] >= q.items || (i > 0 && it[i] < it[i - 1]))
      q.fail("item[" + std::to_string(i) + "]: expected non-decreasing item numbers below " + std::to_string(q.items) +
             ", found " + std::to_string(it[i]));
    if (start[size_t(it[i])] < 0) start[size_t(it[i])] = i;
    if (pos[i] != i - start[size_t(it[i])])
      q.fail("position[" + std::to_string(i) + "]: expected " + std::to_string(i - start[size_t(it[i])]) + ", found " +
             std::to_string(pos[i]));
    if (ro[i + 1] < ro[i] || ro[i + 1] - ro[i] > pos[i] + 1 + 65535)
      q.fail("attention_offset[" + std::to_string(i + 1) + "]: expected offsets that grow by whole rows");
  }
  if (ro[0] != 0 || ro[N] != q.M)
    q.fail("attention_offset: expected 0 .. " + std::to_string(q.M) + ", found " + std::to_string(ro[0]) + " .. " +
           std::to_string(ro[N]));

  // Top keys as positions within the query's item (16 bits; 65535 = none).
  std::vector<uint16_t> top(size_t(H * N * K));
  const int32_t* tix = q.i32(ti);
  std::vector<std::string> names;
  for (const auto& [name, t] : f.tensors())
    if (name.rfind("projection.", 0) == 0) names.push_back(name.substr(11));
  std::vector<std::string> chosen = o.projections.empty() ? names : o.projections;
  for (const auto& p : chosen)
    if (std::find(names.begin(), names.end(), p) == names.end()) {
      std::string have;
      for (const auto& n : names) have += (have.empty() ? "" : ",") + n;
      throw Error("--projections " + p + ": " + path + " has " + (have.empty() ? "no projections" : have));
    }
  if (chosen.empty()) q.fail("expected at least one projection.* tensor, found none");
  nlohmann::json proj = nlohmann::json::array();
  for (const auto& p : chosen) {
    const TensorInfo& t = f.info("projection." + p);
    if (t.shape.size() != 4) q.fail("projection." + p + ": expected [layers, heads, 2N, dims]");
    const int64_t d = t.shape[3];
    if (d != 2 && d != 3) q.fail("projection." + p + ": expected 2 or 3 dimensions, found " + std::to_string(d));
    q.need("projection." + p, DType::F16, {L, H, 2 * N, d});
    proj.push_back({{"name", p}, {"dims", d}});
  }
  const bool image = f.has("image");
  int64_t S = 0, P = 0;
  if (image) {
    S = q.meta_int("image_size", 1), P = q.meta_int("patch_size", 1);
    if (S % P) q.fail("image_size " + std::to_string(S) + " is not a multiple of patch_size " + std::to_string(P));
    q.need("image", DType::U8, {q.items, S, S, 3});
  }
  if (o.layer < 0 || o.layer >= L)
    throw Error("--layer " + std::to_string(o.layer) + ": expected 0.." + std::to_string(L - 1));
  if (o.head < 0 || o.head >= H)
    throw Error("--head " + std::to_string(o.head) + ": expected 0.." + std::to_string(H - 1));

  std::vector<std::vector<float>> spearman(static_cast<size_t>(L), std::vector<float>(static_cast<size_t>(H)));
  {
    std::vector<float> r = f.to_f32("spearman");
    for (int64_t l = 0; l < L; ++l)
      for (int64_t h = 0; h < H; ++h)
        spearman[size_t(l)][size_t(h)] = std::isfinite(r[size_t(l * H + h)]) ? r[size_t(l * H + h)] : 0.0f;
  }
  std::string title = o.title;
  if (title.empty()) {
    auto m = f.metadata().find("model");
    title = std::filesystem::path(m == f.metadata().end() ? path : m->second).filename().string() + " atlas";
  }
  nlohmann::json meta{{"format", "attnscope-atlas"},
                      {"version", 1},
                      {"title", title},
                      {"model_type", q.meta("model_type")},
                      {"n_layers", L},
                      {"n_heads", H},
                      {"head_dim", q.meta_int("head_dim", 1)},
                      {"causal", q.meta("causal") == "true"},
                      {"equalize", q.meta("equalize") == "true"},
                      {"top_k", K},
                      {"n", N},
                      {"attention_rows", q.M},
                      {"tokens", tokens},
                      {"items", items},
                      {"projections", proj},
                      {"spearman", spearman},
                      {"image", nullptr},
                      {"initial", {{"layer", o.layer}, {"head", o.head}}}};
  if (image) meta["image"] = {{"image_size", S}, {"patch_size", P}, {"grid", S / P}};

  std::string html;
  size_t total = viewer_script_size() + 4096 + size_t(N) * 64;
  total += (f.info("attention").end - f.info("attention").begin) * 4 / 3 + size_t(L * H * N * K) * 16 / 3;
  for (const auto& p : chosen) total += (f.info("projection." + p).end - f.info("projection." + p).begin) * 4 / 3;
  html.reserve(total);
  html += html_document_start(title);
  html += "<script type=\"application/json\" id=\"attnscope-atlas\">" + script_safe_json(meta) + "</script>\n";
  auto raw = [&](const std::string& id, const TensorInfo& t, uint64_t from = 0, uint64_t bytes = UINT64_MAX) {
    element(html, id, f.bytes(t) + from, size_t(std::min(bytes, t.end - t.begin - from)));
  };
  raw("item", item);
  raw("offset", off);
  raw("qnorm", qn);
  raw("knorm", kn);
  raw("vnorm", vn);
  if (image) raw("image", f.info("image"));
  for (const auto& p : chosen) {
    const TensorInfo& t = f.info("projection." + p);
    const uint64_t per = (t.end - t.begin) / uint64_t(L);
    for (int64_t l = 0; l < L; ++l) raw("proj-" + p + "-" + std::to_string(l), t, per * uint64_t(l), per);
  }
  const uint64_t att_per = uint64_t(H * q.M) * 2, tw_per = uint64_t(H * N * K) * 2;
  for (int64_t l = 0; l < L; ++l) {
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < N; ++i)
        for (int64_t k = 0; k < K; ++k) {
          const int32_t j = tix[((l * H + h) * N + i) * K + k];
          uint16_t& t = top[size_t((h * N + i) * K + k)];
          if (j < 0) {
            t = 0xFFFF;
            continue;
          }
          if (j >= N || it[j] != it[i] || pos[j] > 0xFFFE)
            q.fail("topk_index[" + std::to_string(l) + "][" + std::to_string(h) + "][" + std::to_string(i) +
                   "]: expected a token of the same item, found " + std::to_string(j));
          t = uint16_t(pos[j]);
        }
    element(html, "topk-" + std::to_string(l), reinterpret_cast<const uint8_t*>(top.data()), top.size() * 2);
    raw("topw-" + std::to_string(l), tw, tw_per * uint64_t(l), tw_per);
    raw("attn-" + std::to_string(l), att, att_per * uint64_t(l), att_per);
  }
  html += "<script>\n";
  html.append(viewer_script(), viewer_script_size());
  html += "\n</script>\n</body>\n</html>\n";
  return html;
}

}  // namespace attnscope
