// The dump format (../shared/DESIGN.md): a safetensors file with attention.<l>,
// optional query/key/value.<l>, hidden.<n>, input_ids, and metadata.
#pragma once
#include <map>
#include <string>

#include "attnscope/model.h"
#include "attnscope/tokenizer.h"

namespace attnscope {

struct DumpOptions {
  bool f16 = false;                          // F16 instead of F32 for float tensors
  std::map<std::string, std::string> extra;  // more metadata (text_b, sentence_b_start, predictions, ...)
};

void write_dump(const std::string& path, const ModelInfo& info, const Encoding& enc, const std::string& text,
                const Trace& trace, const DumpOptions& opts);

}  // namespace attnscope
