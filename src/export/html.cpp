#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "attnscope/error.h"
#include "attnscope/report.h"
#include "attnscope/safetensors.h"
#include "attnscope/view.h"
#include "viewer_asset.h"

namespace attnscope {

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void put_u12(std::string& out, unsigned q) {
  out.push_back(kB64[(q >> 6) & 63]);
  out.push_back(kB64[q & 63]);
}

unsigned quantize_unit(float v) {
  if (!(v > 0)) return 0;  // also NaN
  if (v >= 1) return 4095;
  return unsigned(double(v) * 4095.0 + 0.5);  // round half up; v*4095 >= 0
}

// Appends n weights (12 bits, 2 characters each) without per-character growth checks.
void put_row(std::string& out, const float* v, int64_t n) {
  const size_t at = out.size();
  out.resize(at + 2 * size_t(n));
  char* p = out.data() + at;
  for (int64_t j = 0; j < n; ++j) {
    const unsigned q = quantize_unit(v[j]);
    p[2 * j] = kB64[q >> 6];
    p[2 * j + 1] = kB64[q & 63];
  }
}

void check_shape(const Array& a, const std::vector<int64_t>& want, const std::string& what) {
  if (a.empty() || a.shape != want)
    throw Error(what + ": expected shape " + shape_str(want) + ", found " + (a.empty() ? "none" : shape_str(a.shape)));
}

}  // namespace

std::string shorten_utf8(const std::string& s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t cut = max_bytes > 3 ? max_bytes - 3 : 0;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // a character boundary
  return s.substr(0, cut) + "...";
}

std::string encode_u12(const float* v, size_t n) {
  std::string out;
  out.reserve(2 * n);
  put_row(out, v, int64_t(n));
  return out;
}

namespace {

std::string write_view(const ViewData& d, const ViewOptions& o, const std::vector<int64_t>& layer_ids,
                       const std::vector<int64_t>& head_ids, int64_t n_heads_model);

// A [heads, a, b] array restricted to some heads.
Array pick_heads(const Array& a, const std::vector<int64_t>& heads) {
  const int64_t per = a.numel() / a.dim(0);
  std::vector<int64_t> shape = a.shape;
  shape[0] = int64_t(heads.size());
  Array out = Array::zeros(shape);
  for (size_t k = 0; k < heads.size(); ++k)
    std::copy(a.ptr() + heads[k] * per, a.ptr() + (heads[k] + 1) * per, out.mutable_ptr() + int64_t(k) * per);
  return out;
}

std::vector<int64_t> checked_ids(const std::vector<int64_t>& ids, int64_t n, const std::string& what) {
  std::vector<int64_t> out;
  if (ids.empty()) {
    for (int64_t i = 0; i < n; ++i) out.push_back(i);
    return out;
  }
  for (int64_t i : ids) {
    if (i < 0 || i >= n) throw Error(what + " " + std::to_string(i) + ": expected 0.." + std::to_string(n - 1));
    if (std::find(out.begin(), out.end(), i) == out.end()) out.push_back(i);
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// JSON that can sit inside <script>: '<', '>', '&' and U+2028/2029 only occur inside JSON strings,
// where their \u escapes mean the same, so "</script>" in a token cannot end the element.
std::string script_safe_json(const nlohmann::json& j) {
  const std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string o;
  o.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '<')
      o += "\\u003c";
    else if (c == '>')
      o += "\\u003e";
    else if (c == '&')
      o += "\\u0026";
    else if (c == '\xE2' && i + 2 < s.size() && s[i + 1] == '\x80' && (s[i + 2] == '\xA8' || s[i + 2] == '\xA9')) {
      o += s[i + 2] == '\xA8' ? "\\u2028" : "\\u2029";
      i += 2;
    } else
      o.push_back(c);
  }
  return o;
}

// The start of every page attnscope writes, up to and including <body>.
std::string html_document_start(const std::string& title) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  // Nothing may be fetched: no network, no other file. Downloads (exports) are blob: URLs.
  h += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'; "
       "style-src 'unsafe-inline'; img-src data: blob:\">\n";
  h += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  h += "<meta name=\"generator\" content=\"attnscope " ATTNSCOPE_VERSION "\">\n";
  h += "<title>" + html_escape(title) + " — attnscope</title>\n</head>\n<body>\n";
  return h;
}

std::string view_html(const ViewData& d, const ViewOptions& o) {
  if (o.include_layers.empty() && o.include_heads.empty()) return write_view(d, o, {}, {}, d.n_heads);
  const std::vector<int64_t> ls = checked_ids(o.include_layers, d.n_layers, "--include-layers");
  const std::vector<int64_t> hs = checked_ids(o.include_heads, d.n_heads, "--include-heads");
  if (int64_t(d.attention.size()) != d.n_layers)
    throw Error("view: expected attention for " + std::to_string(d.n_layers) + " layers, found " +
                std::to_string(d.attention.size()));
  ViewData sub = d;
  sub.attention.clear();
  sub.query.clear();
  sub.key.clear();
  for (int64_t l : ls) {
    sub.attention.push_back(pick_heads(d.attention[size_t(l)], hs));
    if (!d.query.empty()) {
      sub.query.push_back(pick_heads(d.query.at(size_t(l)), hs));
      sub.key.push_back(pick_heads(d.key.at(size_t(l)), hs));
    }
  }
  sub.n_layers = int64_t(ls.size());
  sub.n_heads = int64_t(hs.size());
  ViewOptions so = o;
  auto at = [](const std::vector<int64_t>& v, int64_t x) { return std::find(v.begin(), v.end(), x) - v.begin(); };
  so.layer = at(ls, o.layer);
  if (so.layer == int64_t(ls.size()))
    throw Error("--layer " + std::to_string(o.layer) + ": expected one of the included layers");
  so.heads.clear();
  for (int64_t h : o.heads) {
    const int64_t k = at(hs, h);
    if (k == int64_t(hs.size())) throw Error("--heads " + std::to_string(h) + ": expected one of the included heads");
    so.heads.push_back(k);
  }
  return write_view(sub, so, ls, hs, d.n_heads);
}

namespace {

std::string write_view(const ViewData& d, const ViewOptions& o, const std::vector<int64_t>& layer_ids,
                       const std::vector<int64_t>& head_ids, int64_t n_heads_model) {
  const int64_t N = int64_t(d.tokens.size()), H = d.n_heads, L = d.n_layers;
  if (N == 0) throw Error("view: expected at least one token, found none");
  if (L <= 0 || int64_t(d.attention.size()) != L)
    throw Error("view: expected attention for " + std::to_string(L) + " layers, found " +
                std::to_string(d.attention.size()));
  for (int64_t l = 0; l < L; ++l)
    check_shape(d.attention[size_t(l)], {H, N, N}, "view: attention." + std::to_string(l));
  const bool has_qk = !d.query.empty();
  for (const auto& v : o.views)
    if (v != "head" && v != "model" && v != "neuron")
      throw Error("--view " + v + ": expected head, model, neuron or all");
  if (o.views.empty()) throw Error("--view: expected at least one view");
  const bool wants_neuron = std::find(o.views.begin(), o.views.end(), "neuron") != o.views.end();
  if (wants_neuron && !has_qk)
    throw Error("--view neuron: needs query/key vectors, found none (from a dump: write it with attnscope dump --qkv)");
  if (has_qk) {
    if (int64_t(d.query.size()) != L || int64_t(d.key.size()) != L)
      throw Error("view: expected query/key for " + std::to_string(L) + " layers, found " +
                  std::to_string(d.query.size()));
    for (int64_t l = 0; l < L; ++l) {
      check_shape(d.query[size_t(l)], {H, N, d.head_dim}, "view: query." + std::to_string(l));
      check_shape(d.key[size_t(l)], {H, N, d.head_dim}, "view: key." + std::to_string(l));
    }
  }
  if (o.layer < 0 || o.layer >= L)
    throw Error("--layer " + std::to_string(o.layer) + ": expected 0.." + std::to_string(L - 1));
  for (int64_t h : o.heads)
    if (h < 0 || h >= H) throw Error("--heads " + std::to_string(h) + ": expected 0.." + std::to_string(H - 1));
  if (std::find(o.views.begin(), o.views.end(), o.initial_view) == o.views.end())
    throw Error("view: initial view " + o.initial_view + " is not among the views written");

  // Causal models store the lower triangle only (the rest is exactly zero by construction).
  const bool lower = d.causal;
  std::vector<std::string> attn_el(static_cast<size_t>(L)), qk_el(static_cast<size_t>(L));
  for (int64_t l = 0; l < L; ++l) {
    const float* a = d.attention[size_t(l)].ptr();
    std::string enc;
    enc.reserve(size_t(2 * H * (lower ? N * (N + 1) / 2 : N * N)));
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < N; ++i) {
        const float* row = a + (h * N + i) * N;
        put_row(enc, row, lower ? i + 1 : N);
      }
    attn_el[size_t(l)] =
        "<script type=\"text/plain\" id=\"attnscope-attn-" + std::to_string(l) + "\">" + enc + "</script>\n";
  }
  nlohmann::json scales = nlohmann::json::array();
  if (has_qk) {
    const int64_t per = N * d.head_dim;
    for (int64_t l = 0; l < L; ++l) {
      nlohmann::json ls = nlohmann::json::array();
      std::string enc;
      enc.reserve(size_t(4 * H * per));
      for (int64_t h = 0; h < H; ++h) {
        nlohmann::json hs = nlohmann::json::array();
        for (const Array* src : {&d.query[size_t(l)], &d.key[size_t(l)]}) {
          const float* v = src->ptr() + h * per;
          float mx = 0;
          for (int64_t t = 0; t < per; ++t)
            if (std::isfinite(v[t])) mx = std::max(mx, std::fabs(v[t]));
          const double scale = mx > 0 ? mx : 1;
          hs.push_back(scale);
          for (int64_t t = 0; t < per; ++t) {
            const double x = std::isfinite(v[t]) ? v[t] / scale : 0;
            put_u12(enc, unsigned(std::clamp<long>(std::lround(x * 2047.0) + 2048, 1, 4095)));
          }
        }
        ls.push_back(hs);
      }
      scales.push_back(ls);
      qk_el[size_t(l)] =
          "<script type=\"text/plain\" id=\"attnscope-qk-" + std::to_string(l) + "\">" + enc + "</script>\n";
    }
  }
  nlohmann::json meta{{"format", "attnscope-view"},
                      {"version", 1},
                      {"title", d.title},
                      {"model_type", d.model_type},
                      {"n_layers", L},
                      {"n_heads", H},
                      {"n_kv_heads", d.n_kv_heads ? d.n_kv_heads : n_heads_model},
                      {"n_heads_model", n_heads_model},
                      {"layer_ids", nullptr},
                      {"head_ids", nullptr},
                      {"head_dim", d.head_dim},
                      {"causal", d.causal},
                      {"tokens", d.tokens},
                      {"sentence_b_start", nullptr},
                      {"segments", nullptr},
                      {"image", nullptr},
                      {"source", d.source},
                      {"attention", {{"encoding", "u12"}, {"layout", lower ? "lower" : "dense"}}},
                      {"qk", nullptr},
                      {"views", o.views},
                      {"initial", {{"view", o.initial_view}, {"layer", o.layer}, {"heads", o.heads}}}};
  if (d.sentence_b_start) meta["sentence_b_start"] = *d.sentence_b_start;
  if (!d.segments.empty()) meta["segments"] = d.segments;
  if (d.grid) meta["image"] = {{"grid", d.grid}, {"patch_size", d.patch_size}, {"image_size", d.image_size}};
  if (has_qk) meta["qk"] = {{"encoding", "u12s"}, {"scales", scales}};
  if (o.heads.empty()) meta["initial"]["heads"] = nullptr;
  if (!layer_ids.empty()) meta["layer_ids"] = layer_ids;
  if (!head_ids.empty()) meta["head_ids"] = head_ids;

  size_t total = viewer_script_size() + 4096;
  for (size_t l = 0; l < size_t(L); ++l) total += attn_el[l].size() + qk_el[l].size();
  std::string html;
  html.reserve(total);
  html += html_document_start(d.title);
  html += "<script type=\"application/json\" id=\"attnscope-meta\">" + script_safe_json(meta) + "</script>\n";
  // The first layer shown comes before the viewer script and the rest after it: the viewer starts
  // and draws while the browser is still reading the other layers (first paint does not wait for
  // a 200 MB file to be parsed).
  const size_t first = size_t(o.layer);
  html += attn_el[first];
  if (o.initial_view == "neuron") html += qk_el[first];
  html += "<script>\n";
  html.append(viewer_script(), viewer_script_size());
  html += "\n</script>\n";
  for (size_t l = 0; l < size_t(L); ++l) {
    if (l != first) html += attn_el[l];
    if (l != first || o.initial_view != "neuron") html += qk_el[l];
  }
  html += "</body>\n</html>\n";
  return html;
}

}  // namespace

ViewData view_data_from_dump(const std::string& path) {
  SafetensorsFile f(path);
  const auto& meta = f.metadata();
  ViewData d;
  auto squeeze = [&](const std::string& name, size_t rank) {
    TensorInfo t = f.info(name);
    std::vector<int64_t> shape = t.shape;
    if (shape.size() == rank + 1 && shape[0] == 1) shape.erase(shape.begin());  // a batch of one
    if (shape.size() != rank)
      throw Error(path + ": " + name + ": expected " + std::to_string(rank) + " dimensions (batch 1), found " +
                  shape_str(t.shape));
    Array a = Array::zeros(shape);
    f.to_f32(name, a.mutable_ptr());
    return a;
  };
  int64_t L = 0;
  while (f.has("attention." + std::to_string(L))) ++L;
  if (L == 0) throw Error(path + ": expected tensors attention.0, attention.1, ... (a dump), found none");
  for (int64_t l = 0; l < L; ++l) {
    Array a = squeeze("attention." + std::to_string(l), 3);
    if (l > 0 && a.shape != d.attention[0].shape)
      throw Error(path + ": attention." + std::to_string(l) + ": expected shape " + shape_str(d.attention[0].shape) +
                  " like attention.0, found " + shape_str(a.shape));
    if (a.dim(1) != a.dim(2))
      throw Error(path + ": attention." + std::to_string(l) + ": expected [heads, tokens, tokens], found " +
                  shape_str(a.shape));
    const float* p = a.ptr();
    for (int64_t t = 0; t < a.numel(); ++t)
      if (!(p[t] >= -1e-3f && p[t] <= 1.001f))
        throw Error(path + ": attention." + std::to_string(l) + ": expected probabilities in [0, 1], found " +
                    std::to_string(p[t]));
    d.attention.push_back(a);
  }
  d.n_layers = L;
  d.n_heads = d.attention[0].dim(0);
  const int64_t N = d.attention[0].dim(1);
  auto get = [&](const std::string& k) -> std::optional<std::string> {
    auto it = meta.find(k);
    return it == meta.end() ? std::nullopt : std::optional<std::string>(it->second);
  };
  if (auto t = get("tokens")) {
    nlohmann::json j = nlohmann::json::parse(*t, nullptr, false);
    if (!j.is_array()) throw Error(path + ": metadata tokens: expected a JSON array of strings");
    for (const auto& e : j) {
      if (!e.is_string()) throw Error(path + ": metadata tokens: expected a JSON array of strings");
      d.tokens.push_back(e.get<std::string>());
    }
    if (int64_t(d.tokens.size()) != N)
      throw Error(path + ": metadata tokens: expected " + std::to_string(N) + " tokens (the attention's size), found " +
                  std::to_string(d.tokens.size()));
  } else {
    for (int64_t i = 0; i < N; ++i) d.tokens.push_back(std::to_string(i));
  }
  d.model_type = get("model_type").value_or("model");
  if (auto c = get("causal")) {
    d.causal = *c == "true";
  } else {  // no flag: causal when every layer is exactly zero above the diagonal
    d.causal = true;
    for (const auto& a : d.attention)
      for (int64_t h = 0; h < d.n_heads && d.causal; ++h)
        for (int64_t i = 0; i < N && d.causal; ++i)
          for (int64_t j = i + 1; j < N; ++j)
            if (a.ptr()[(h * N + i) * N + j] != 0) {
              d.causal = false;
              break;
            }
  }
  if (f.has("query.0") && f.has("key.0")) {
    for (int64_t l = 0; l < L; ++l) {
      const std::string q = "query." + std::to_string(l), k = "key." + std::to_string(l);
      if (!f.has(q) || !f.has(k)) throw Error(path + ": expected " + q + " and " + k + " (query/key for every layer)");
      d.query.push_back(squeeze(q, 3));
      d.key.push_back(squeeze(k, 3));
      for (const Array* a : {&d.query.back(), &d.key.back()})
        if (a->dim(0) != d.n_heads || a->dim(1) != N || a->dim(2) != d.query[0].dim(2))
          throw Error(path + ": " + (a == &d.key.back() ? k : q) + ": expected [" + std::to_string(d.n_heads) + ", " +
                      std::to_string(N) + ", head_dim], found " + shape_str(a->shape));
    }
    d.head_dim = d.query[0].dim(2);
  } else if (auto hd = get("head_dim")) {
    d.head_dim = std::atoll(hd->c_str());
  }
  d.n_kv_heads = d.n_heads;
  if (auto b = get("sentence_b_start")) d.sentence_b_start = std::atoll(b->c_str());
  if (d.sentence_b_start && (*d.sentence_b_start <= 0 || *d.sentence_b_start >= N))
    throw Error(path + ": metadata sentence_b_start: expected 1.." + std::to_string(N - 1) + ", found " +
                std::to_string(*d.sentence_b_start));
  if (auto g = get("patch_grid")) d.grid = std::atoll(g->c_str());
  if (auto p = get("patch_size")) d.patch_size = std::atoll(p->c_str());
  if (auto s = get("image_size")) d.image_size = std::atoll(s->c_str());
  d.source = get("text").value_or(get("image").value_or(""));
  d.title = d.model_type + ": " + shorten_utf8(d.source, 60);
  return d;
}

}  // namespace attnscope
