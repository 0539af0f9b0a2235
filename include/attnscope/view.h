// Interactive views (head, model, neuron) as ONE self-contained HTML file: the viewer script
// (web/, built by Vite at build time and embedded in the binary), its style and the data, with no
// reference to anything outside the file. Format of the embedded data: web/src/data.ts.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "attnscope/array.h"

namespace attnscope {

struct ViewData {
  std::string title;       // shown in the page title and toolbar
  std::string model_type;  // e.g. "gpt2"
  std::string source;      // the text, or the image path
  int64_t n_layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0;
  bool causal = false;
  std::vector<std::string> tokens;                   // display strings
  std::optional<int64_t> sentence_b_start;           // sentence pairs
  std::vector<int64_t> segments;                     // token types (pairs), or empty
  int64_t grid = 0, patch_size = 0, image_size = 0;  // image models
  std::vector<Array> attention;                      // per layer [heads, N, N]
  std::vector<Array> query, key;                     // per layer [heads, N, head_dim] (neuron view), or empty
};

struct ViewOptions {
  std::vector<std::string> views{"head", "model", "neuron"};  // which views the file offers
  std::string initial_view = "head";
  int64_t layer = 0;           // initial layer
  std::vector<int64_t> heads;  // initial active heads (empty = all)
  // BertViz's include_layers / include_heads: only these layers and heads are written (and shown,
  // under their own numbers); empty = all.
  std::vector<int64_t> include_layers, include_heads;
};

// Checks shapes (one-line Error naming what is wrong) and returns the whole HTML document.
std::string view_html(const ViewData& data, const ViewOptions& opts);

// The 12-bit text encodings of web/src/data.ts (exposed for tests).
std::string encode_u12(const float* values, size_t n);  // values in [0, 1]

// The start of every HTML page attnscope writes, up to and including <body>: charset, a
// Content-Security-Policy that forbids every fetch, viewport, generator and the escaped title.
std::string html_document_start(const std::string& title);

// JSON that can sit inside <script> (no "</script>" can end the element early).
std::string script_safe_json(const nlohmann::json& j);

// s cut to at most max_bytes at a UTF-8 character boundary, with "..." when cut.
std::string shorten_utf8(const std::string& s, size_t max_bytes);

// Reads a dump (attention.<l>, optional query/key.<l>, metadata tokens/model_type/...); tolerant
// of dumps written by other programs (see README: a dump from Hugging Face in Python).
ViewData view_data_from_dump(const std::string& path);

}  // namespace attnscope
