// The tokenizers-library pipeline, read from a tokenizer.json document: added tokens split
// the raw text, then normalizer -> pre-tokenizer -> model (BPE, WordPiece) per piece, then
// the post-processor (special tokens, type ids) and a decoder for text and display strings.
#pragma once
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "attnscope/tokenizer.h"

namespace attnscope::text {

// `where` names the source in error messages (a file, or "vocab.txt + tokenizer_config.json").
std::unique_ptr<Tokenizer> tokenizer_from_json(const nlohmann::json& doc, std::vector<std::string> files,
                                               const std::string& where, const std::string& kind_hint = "");

}  // namespace attnscope::text
