// Finding and reading a model folder's tokenizer files. The older formats (vocab.json +
// merges.txt, vocab.txt) become the same pipeline description the tokenizers library builds
// when it converts them (transformers' convert_slow_tokenizer), so one implementation runs all.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "attnscope/error.h"
#include "attnscope/tokenizer.h"
#include "text/pipeline.h"

namespace attnscope {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::optional<size_t> Encoding::sentence_b_start() const {
  for (size_t i = 0; i < sequence.size(); ++i)
    if (sequence[i] == 1 || (type_ids.size() > i && type_ids[i] == 1)) return i;
  return std::nullopt;
}

std::optional<int64_t> mask_token_id(const Tokenizer& tok) {
  for (const char* m : {"[MASK]", "<mask>"})
    if (auto id = tok.token_to_id(m)) return id;
  return std::nullopt;
}

namespace {

json read_json(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw Error(p.string() + ": cannot read (expected a JSON file)");
  // Parsing from memory is about twice as fast as from the stream.
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  try {
    return json::parse(bytes);
  } catch (const json::exception& e) {
    throw Error(p.string() + ": expected valid JSON, found a parse error (" + e.what() + ")");
  }
}

// tokenizer_config.json, or an empty object.
json read_config(const fs::path& dir, std::vector<std::string>& files) {
  std::error_code ec;
  const fs::path cfg = dir / "tokenizer_config.json";
  if (!fs::exists(cfg, ec)) return json::object();
  files.push_back(cfg.string());
  json c = read_json(cfg);
  return c.is_object() ? c : json::object();
}

// A special token entry of tokenizer_config.json: a string or {"content": ...}.
std::string special_of(const json& cfg, const char* key, const std::string& dflt) {
  if (!cfg.contains(key)) return dflt;
  const json& v = cfg[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return dflt;
}

std::string model_type_of(const fs::path& dir) {
  std::error_code ec;
  if (!fs::exists(dir / "config.json", ec)) return "";
  try {
    std::ifstream f(dir / "config.json");
    json c = json::parse(f);
    return c.is_object() ? c.value("model_type", std::string()) : std::string();
  } catch (const json::exception&) {
    return "";  // config.json errors are reported by the model loader, which names the key
  }
}

void add_token(json& added, const std::string& content, int64_t id, bool lstrip = false) {
  added.push_back({{"id", id},
                   {"content", content},
                   {"single_word", false},
                   {"lstrip", lstrip},
                   {"rstrip", false},
                   {"normalized", false},
                   {"special", true}});
}

std::unique_ptr<Tokenizer> from_vocab_merges(const fs::path& dir) {
  const fs::path vocab_path = dir / "vocab.json", merges_path = dir / "merges.txt";
  std::vector<std::string> files{vocab_path.string(), merges_path.string()};
  json vocab = read_json(vocab_path);
  if (!vocab.is_object()) throw Error(vocab_path.string() + ": expected an object token -> id");
  for (auto& [tok, id] : vocab.items())
    if (!id.is_number_integer()) throw Error(vocab_path.string() + ": '" + tok + "': expected an integer id");
  std::ifstream f(merges_path);
  if (!f) throw Error(merges_path.string() + ": cannot read merges");
  json merges = json::array();
  std::string line;
  size_t lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (lineno == 1 && line.rfind("#version", 0) == 0)) continue;
    size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() || line.find(' ', sp + 1) != std::string::npos)
      throw Error(merges_path.string() + " line " + std::to_string(lineno) +
                  ": expected two tokens separated by one space, found '" + line + "'");
    merges.push_back(line);
  }
  json cfg = read_config(dir, files);
  const std::string cls_name = cfg.value("tokenizer_class", std::string());
  const bool roberta = model_type_of(dir) == "roberta" || cls_name.rfind("Roberta", 0) == 0;
  const bool prefix_space = cfg.value("add_prefix_space", false);
  json doc = {{"model", {{"type", "BPE"}}},
              {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", prefix_space}, {"use_regex", true}}},
              {"decoder", {{"type", "ByteLevel"}}},
              {"added_tokens", json::array()}};
  json& added = doc["added_tokens"];
  if (cfg.contains("added_tokens_decoder") && cfg["added_tokens_decoder"].is_object()) {
    for (auto& [id, a] : cfg["added_tokens_decoder"].items()) {
      json t = a;
      t["id"] = std::stoll(id);
      added.push_back(t);
    }
  }
  auto id_of = [&](const std::string& t) -> int64_t {
    if (!vocab.contains(t)) throw Error(vocab_path.string() + ": special token '" + t + "' is not in the vocabulary");
    return vocab[t].get<int64_t>();
  };
  if (roberta) {
    std::string bos = special_of(cfg, "bos_token", "<s>"), eos = special_of(cfg, "eos_token", "</s>");
    std::string cls = special_of(cfg, "cls_token", bos), sep = special_of(cfg, "sep_token", eos);
    if (added.empty()) {
      const std::pair<const char*, const char*> roles[] = {
          {"bos_token", "<s>"}, {"pad_token", "<pad>"}, {"eos_token", "</s>"}, {"unk_token", "<unk>"}};
      for (auto [key, dflt] : roles) {
        const std::string t = special_of(cfg, key, dflt);
        if (vocab.contains(t)) add_token(added, t, id_of(t));
      }
      std::string mask = special_of(cfg, "mask_token", "<mask>");
      if (vocab.contains(mask)) add_token(added, mask, id_of(mask), true);
    }
    doc["post_processor"] = {{"type", "RobertaProcessing"},
                             {"sep", {sep, id_of(sep)}},
                             {"cls", {cls, id_of(cls)}},
                             {"trim_offsets", true},
                             {"add_prefix_space", prefix_space}};
  } else {
    // GPT-2's slow tokenizer treats <|endoftext|> as special.
    if (added.empty() && vocab.contains("<|endoftext|>")) add_token(added, "<|endoftext|>", id_of("<|endoftext|>"));
    doc["post_processor"] = {{"type", "ByteLevel"}, {"trim_offsets", false}};
  }
  doc["model"]["vocab"] = std::move(vocab);  // moved, not copied: 50k+ entries
  doc["model"]["merges"] = std::move(merges);
  return text::tokenizer_from_json(doc, files, vocab_path.string());
}

std::unique_ptr<Tokenizer> from_vocab_txt(const fs::path& dir) {
  const fs::path vocab_path = dir / "vocab.txt";
  std::vector<std::string> files{vocab_path.string()};
  std::ifstream f(vocab_path);
  if (!f) throw Error(vocab_path.string() + ": cannot read (expected one WordPiece token per line)");
  json vocab = json::object();
  std::string line;
  int64_t id = 0;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!vocab.contains(line)) vocab[line] = id;  // the first occurrence wins, like load_vocab
    ++id;
  }
  if (id == 0) throw Error(vocab_path.string() + ": expected one WordPiece token per line, found an empty file");
  json cfg = read_config(dir, files);
  const bool lower = cfg.value("do_lower_case", true);
  json strip = cfg.contains("strip_accents") ? cfg["strip_accents"] : json();
  const std::string unk = special_of(cfg, "unk_token", "[UNK]"), sep = special_of(cfg, "sep_token", "[SEP]"),
                    cls = special_of(cfg, "cls_token", "[CLS]"), pad = special_of(cfg, "pad_token", "[PAD]"),
                    mask = special_of(cfg, "mask_token", "[MASK]");
  auto id_of = [&](const std::string& t) -> int64_t {
    if (!vocab.contains(t)) throw Error(vocab_path.string() + ": special token '" + t + "' is not in the vocabulary");
    return vocab[t].get<int64_t>();
  };
  json added = json::array();
  for (const auto& t : {pad, unk, cls, sep, mask})
    if (vocab.contains(t)) add_token(added, t, id_of(t));
  json doc = {
      {"normalizer",
       {{"type", "BertNormalizer"},
        {"clean_text", true},
        {"handle_chinese_chars", cfg.value("tokenize_chinese_chars", true)},
        {"strip_accents", strip},
        {"lowercase", lower}}},
      {"pre_tokenizer", {{"type", "BertPreTokenizer"}}},
      {"model",
       {{"type", "WordPiece"},
        {"vocab", vocab},
        {"unk_token", unk},
        {"continuing_subword_prefix", "##"},
        {"max_input_chars_per_word", 100}}},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::parse(R"([{"SpecialToken":{"id":"CLS","type_id":0}},{"Sequence":{"id":"A","type_id":0}},
                                  {"SpecialToken":{"id":"SEP","type_id":0}}])")},
        {"pair", json::parse(R"([{"SpecialToken":{"id":"CLS","type_id":0}},{"Sequence":{"id":"A","type_id":0}},
                                {"SpecialToken":{"id":"SEP","type_id":0}},{"Sequence":{"id":"B","type_id":1}},
                                {"SpecialToken":{"id":"SEP","type_id":1}}])")},
        {"special_tokens",
         {{"CLS", {{"id", "CLS"}, {"ids", {id_of(cls)}}, {"tokens", {cls}}}},
          {"SEP", {{"id", "SEP"}, {"ids", {id_of(sep)}}, {"tokens", {sep}}}}}}}},
      {"decoder", {{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}},
      {"added_tokens", added}};
  return text::tokenizer_from_json(doc, files, vocab_path.string());
}

}  // namespace

std::unique_ptr<Tokenizer> load_sentencepiece(const std::string& path, const std::string& model_dir);

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir) {
  const fs::path d(model_dir);
  std::error_code ec;
  if (fs::exists(d / "tokenizer.json", ec)) {
    const fs::path p = d / "tokenizer.json";
    return text::tokenizer_from_json(read_json(p), {p.string()}, p.string());
  }
  if (fs::exists(d / "vocab.json", ec) && fs::exists(d / "merges.txt", ec)) return from_vocab_merges(d);
  if (fs::exists(d / "vocab.txt", ec)) return from_vocab_txt(d);
  if (fs::exists(d / "tokenizer.model", ec)) return load_sentencepiece((d / "tokenizer.model").string(), model_dir);
  throw Error(model_dir +
              ": missing tokenizer files (expected tokenizer.json, vocab.json + merges.txt, vocab.txt or "
              "tokenizer.model)");
}

}  // namespace attnscope
