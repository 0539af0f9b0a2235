// The AttentionViz atlas: a corpus dataset written by `attnscope qk` (.qk, safetensors) turned into
// ONE self-contained HTML file with the matrix, single, sentence and image views (web/src/atlas*.ts).
// Format of the embedded data: web/src/atlasdata.ts.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace attnscope {

struct AtlasOptions {
  std::string title;                     // empty: the model's folder name
  std::vector<std::string> projections;  // e.g. {"umap2", "pca3"}; empty = every projection in the file
  int64_t layer = 0, head = 0;           // the head the single view opens with
};

// Reads and checks the .qk file (one-line Error naming the file and what is wrong) and returns the
// whole HTML document.
std::string atlas_html(const std::string& qk_path, const AtlasOptions& opts);

// True when the safetensors file at path says it is a .qk dataset (metadata format attnscope.qk).
bool is_qk_file(const std::string& path);

// Standard base64 (RFC 4648, with padding) of n bytes.
std::string base64(const uint8_t* data, size_t n);

}  // namespace attnscope
