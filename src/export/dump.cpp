#include "attnscope/dump.h"

#include <nlohmann/json.hpp>

#include "attnscope/error.h"
#include "attnscope/safetensors.h"

namespace attnscope {

void write_dump(const std::string& path, const ModelInfo& info, const Encoding& enc, const std::string& text,
                const Trace& tr, const DumpOptions& o) {
  std::vector<TensorWrite> t;
  auto add = [&](const std::string& name, const Array& a) {
    t.push_back(o.f16 ? tensor_f16(name, a.shape, a.ptr()) : tensor_f32(name, a.shape, a.ptr()));
  };
  for (size_t l = 0; l < tr.attention.size(); ++l)
    if (!tr.attention[l].empty()) add("attention." + std::to_string(l), tr.attention[l]);
  for (size_t l = 0; l < tr.query.size(); ++l) {
    if (tr.query[l].empty()) continue;
    add("query." + std::to_string(l), tr.query[l]);
    add("key." + std::to_string(l), tr.key[l]);
    add("value." + std::to_string(l), tr.value[l]);
  }
  for (size_t n = 0; n < tr.hidden.size(); ++n) add("hidden." + std::to_string(n), tr.hidden[n]);
  if (!info.image) t.push_back(tensor_i64("input_ids", {int64_t(enc.ids.size())}, enc.ids.data()));
  if (enc.sentence_b_start())
    t.push_back(tensor_i64("token_type_ids", {int64_t(enc.type_ids.size())}, enc.type_ids.data()));
  nlohmann::json offsets = nlohmann::json::array();
  for (auto [b, e] : enc.offsets) offsets.push_back({b, e});
  std::map<std::string, std::string> meta{
      {"model_type", info.model_type},
      {"tokens", nlohmann::json(enc.display).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)},
      {"vocab_tokens", nlohmann::json(enc.tokens).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)},
      {"offsets", offsets.dump()},
      {"n_layers", std::to_string(info.n_layers)},
      {"n_heads", std::to_string(info.n_heads)},
      {"head_dim", std::to_string(info.head_dim)},
      {"causal", info.causal ? "true" : "false"},
      {info.image ? "image" : "text", text},
      {"attnscope_version", ATTNSCOPE_VERSION},
  };
  if (info.image) {
    meta["patch_grid"] = std::to_string(info.grid()) + "x" + std::to_string(info.grid());
    meta["patch_size"] = std::to_string(info.patch_size);
    meta["image_size"] = std::to_string(info.image_size);
  }
  for (const auto& [k, v] : o.extra) meta[k] = v;
  write_safetensors(path, t, meta);
}

}  // namespace attnscope
