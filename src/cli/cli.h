// What the subcommands share: the model/text/image options and turning them into model input.
#pragma once
#include <CLI/CLI.hpp>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "attnscope/model.h"
#include "attnscope/tokenizer.h"

namespace attnscope::cli {

struct Common {
  std::string model, text, text_file, text_b, image;
  bool truncate = false;
  bool has_text() const { return !text.empty() || !text_file.empty(); }
  bool has_input() const { return has_text() || !image.empty(); }
};

void add_model(CLI::App* c, Common& o);
void add_text(CLI::App* c, Common& o);
std::string model_dir(const Common& o);  // --model, or the shipped default
std::string read_text(const Common& o);  // --text / --text-file, checked UTF-8

// An image model's input: the preprocessed pixels, and token labels [CLS], r0c0, r0c1, ...
struct Prepared {
  Encoding enc;
  ModelInput in;
  std::string source;  // the text, or the image path
};

// Loads the tokenizer (text models) and turns --text/--text-b or --image into the model input.
Prepared prepare(const Common& o, const Model& m, const std::string& dir, std::unique_ptr<Tokenizer>& tok);
bool wants_logits(const Model& m, const Tokenizer* tok, const Encoding& enc);
// What the output head predicts (next token, every [MASK], or the top classes), k per position.
nlohmann::json predictions(const Model& m, const Tokenizer* tok, const Encoding& enc, const Trace& tr, int64_t k);

}  // namespace attnscope::cli
