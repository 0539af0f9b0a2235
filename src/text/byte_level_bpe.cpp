// Byte-level BPE (GPT-2 / RoBERTa style): added tokens split the raw text, the ByteLevel
// regex splits the rest, bytes map to printable code points, merges apply by rank.
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>

#include "attnscope/error.h"
#include "attnscope/tokenizer.h"

namespace attnscope {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// The GPT-2 byte -> code point table: printable bytes map to themselves, the other 68 to
// 256, 257, ... in byte order.
std::array<uint32_t, 256> byte_to_codepoint() {
  std::array<uint32_t, 256> t{};
  uint32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    t[b] = printable ? uint32_t(b) : next++;
  }
  return t;
}

class Regex {
 public:
  Regex(const std::string& pattern, const std::string& where) {
    int err = 0;
    PCRE2_SIZE off = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.c_str()), pattern.size(),
                          PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &err, &off, nullptr);
    if (!code_) {
      PCRE2_UCHAR buf[256];
      pcre2_get_error_message(err, buf, sizeof(buf));
      throw Error(where + ": cannot compile pre-tokenizer regex at offset " + std::to_string(off) + ": " +
                  reinterpret_cast<char*>(buf));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // optional speed-up; falls back if unsupported
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Splits s[begin,end) into pieces: every match, and every gap between matches.
  void split(const std::string& s, size_t begin, size_t end, std::vector<std::pair<size_t, size_t>>& out) const {
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    size_t pos = begin;
    auto subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    while (pos < end) {
      int rc = pcre2_match(code_, subject, end, pos, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) break;
      PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      size_t mb = ov[0], me = ov[1];
      if (mb > pos) out.emplace_back(pos, mb);
      if (me == mb) {  // empty match: step one code point
        size_t step = 1;
        while (mb + step < end && (static_cast<unsigned char>(s[mb + step]) & 0xC0) == 0x80) ++step;
        out.emplace_back(mb, mb + step);
        pos = mb + step;
        continue;
      }
      out.emplace_back(mb, me);
      pos = me;
    }
    if (pos < end) out.emplace_back(pos, end);
    pcre2_match_data_free(md);
  }

 private:
  pcre2_code* code_ = nullptr;
};

struct AddedToken {
  std::string content;
  int64_t id = 0;
  bool lstrip = false, rstrip = false, special = true;
};

class ByteLevelBpe final : public Tokenizer {
 public:
  ByteLevelBpe(std::unordered_map<std::string, int64_t> vocab,
               const std::vector<std::pair<std::string, std::string>>& merges, std::vector<AddedToken> added,
               bool add_prefix_space, std::vector<std::string> files, const std::string& where)
      : vocab_(std::move(vocab)),
        added_(std::move(added)),
        add_prefix_space_(add_prefix_space),
        files_(std::move(files)),
        regex_(kGpt2Pattern, where) {
    int64_t max_id = -1;
    for (auto& [tok, id] : vocab_) max_id = std::max(max_id, id);
    for (auto& a : added_) max_id = std::max(max_id, a.id);
    id_to_token_.assign(size_t(max_id + 1), std::string());
    for (auto& [tok, id] : vocab_) {
      if (id < 0) throw Error(where + ": vocabulary id of '" + tok + "' is negative");
      id_to_token_[size_t(id)] = tok;
    }
    for (auto& a : added_) {
      id_to_token_[size_t(a.id)] = a.content;
      added_ids_.push_back(a.id);
    }
    auto b2c = byte_to_codepoint();
    for (int b = 0; b < 256; ++b) {
      std::string ch;
      append_utf8(ch, b2c[b]);
      cp_to_byte_[b2c[b]] = uint8_t(b);
      auto it = vocab_.find(ch);
      if (it == vocab_.end())
        throw Error(where + ": byte-level vocabulary lacks the token for byte " + std::to_string(b) + " ('" + ch +
                    "')");
      byte_id_[b] = it->second;
    }
    int rank = 0;
    for (const auto& [a, b] : merges) {
      auto ia = vocab_.find(a), ib = vocab_.find(b), ic = vocab_.find(a + b);
      if (ia == vocab_.end() || ib == vocab_.end() || ic == vocab_.end())
        throw Error(where + ": merge " + std::to_string(rank) + " ('" + a + " " + b +
                    "') uses a token missing from the vocabulary");
      merges_.emplace(key(ia->second, ib->second), std::make_pair(rank, ic->second));
      ++rank;
    }
  }

  Encoding encode(const std::string& text) const override {
    if (auto bad = find_invalid_utf8(text))
      throw Error("text: expected valid UTF-8, found an invalid byte sequence at byte " + std::to_string(*bad));
    Encoding enc;
    // 1. added tokens split the raw text.
    size_t pos = 0;
    while (pos < text.size()) {
      size_t best = std::string::npos;
      const AddedToken* hit = nullptr;
      for (const auto& a : added_) {
        if (a.content.empty()) continue;
        size_t p = text.find(a.content, pos);
        if (p != std::string::npos && (p < best || (p == best && a.content.size() > hit->content.size()))) {
          best = p;
          hit = &a;
        }
      }
      if (!hit) {
        encode_plain(text, pos, text.size(), enc);
        break;
      }
      size_t tb = best, te = best + hit->content.size();
      if (hit->lstrip)
        while (tb > pos && std::isspace(static_cast<unsigned char>(text[tb - 1]))) --tb;
      if (hit->rstrip)
        while (te < text.size() && std::isspace(static_cast<unsigned char>(text[te]))) ++te;
      encode_plain(text, pos, tb, enc);
      enc.ids.push_back(hit->id);
      enc.tokens.push_back(hit->content);
      enc.display.push_back(hit->content);
      enc.offsets.emplace_back(tb, te);
      enc.special.push_back(hit->special);
      pos = te;
    }
    return enc;
  }

  std::string decode(const std::vector<int64_t>& ids) const override {
    std::string bytes;
    for (int64_t id : ids) {
      if (id < 0 || size_t(id) >= id_to_token_.size())
        throw Error("decode: token id " + std::to_string(id) + " is outside the vocabulary");
      if (std::find(added_ids_.begin(), added_ids_.end(), id) != added_ids_.end()) {
        bytes += id_to_token_[size_t(id)];
        continue;
      }
      for (uint32_t cp : utf8_codepoints(id_to_token_[size_t(id)])) {
        auto it = cp_to_byte_.find(cp);
        if (it != cp_to_byte_.end())
          bytes.push_back(char(it->second));
        else
          append_utf8(bytes, cp);
      }
    }
    return utf8_lossy(bytes);
  }

  int64_t vocab_size() const override { return int64_t(id_to_token_.size()); }
  std::optional<int64_t> token_to_id(const std::string& t) const override {
    for (const auto& a : added_)
      if (a.content == t) return a.id;
    auto it = vocab_.find(t);
    if (it == vocab_.end()) return std::nullopt;
    return it->second;
  }
  std::string id_to_token(int64_t id) const override {
    if (id < 0 || size_t(id) >= id_to_token_.size())
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary");
    return id_to_token_[size_t(id)];
  }
  std::string kind() const override { return "byte-level BPE"; }
  std::vector<std::string> files() const override { return files_; }

 private:
  static uint64_t key(int64_t a, int64_t b) { return (uint64_t(a) << 32) | uint64_t(uint32_t(b)); }

  void encode_plain(const std::string& text, size_t begin, size_t end, Encoding& enc) const {
    if (begin >= end) return;
    std::string buf;
    const std::string* src = &text;
    size_t shift = 0;  // offsets in buf are shifted by the prefix space
    if (add_prefix_space_ && begin == 0 && text[0] != ' ') {
      buf = " " + text.substr(begin, end - begin);
      src = &buf;
      end = buf.size();
      begin = 0;
      shift = 1;
    }
    std::vector<std::pair<size_t, size_t>> pieces;
    regex_.split(*src, begin, end, pieces);
    for (auto [pb, pe] : pieces) bpe_word(*src, pb, pe, enc, shift);
  }

  struct Sym {
    int64_t id;
    int prev, next;
    size_t b, e;  // bytes of the piece
  };

  void bpe_word(const std::string& s, size_t pb, size_t pe, Encoding& enc, size_t shift) const {
    std::vector<Sym> syms;
    syms.reserve(pe - pb);
    for (size_t i = pb; i < pe; ++i)
      syms.push_back(
          {byte_id_[static_cast<unsigned char>(s[i])], int(syms.size()) - 1, int(syms.size()) + 1, i, i + 1});
    if (syms.empty()) return;
    syms.back().next = -1;
    struct Cand {
      int rank;
      int left;
      int64_t lid, rid, new_id;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> pq;
    auto push = [&](int l) {
      if (l < 0) return;
      int r = syms[size_t(l)].next;
      if (r < 0) return;
      auto it = merges_.find(key(syms[size_t(l)].id, syms[size_t(r)].id));
      if (it != merges_.end())
        pq.push({it->second.first, l, syms[size_t(l)].id, syms[size_t(r)].id, it->second.second});
    };
    for (int i = 0; i + 1 < int(syms.size()); ++i) push(i);
    std::vector<bool> dead(syms.size(), false);
    while (!pq.empty()) {
      Cand c = pq.top();
      pq.pop();
      Sym& l = syms[size_t(c.left)];
      if (dead[size_t(c.left)] || l.id != c.lid || l.next < 0) continue;
      Sym& r = syms[size_t(l.next)];
      if (r.id != c.rid) continue;
      l.id = c.new_id;
      l.e = r.e;
      dead[size_t(l.next)] = true;
      l.next = r.next;
      if (r.next >= 0) syms[size_t(r.next)].prev = c.left;
      push(l.prev);
      push(c.left);
    }
    for (int i = 0; i >= 0; i = syms[size_t(i)].next) {
      const Sym& sy = syms[size_t(i)];
      enc.ids.push_back(sy.id);
      enc.tokens.push_back(id_to_token_[size_t(sy.id)]);
      enc.display.push_back(utf8_escape_invalid(s.substr(sy.b, sy.e - sy.b)));
      // With a prefix space the buffer is one byte longer than the text it stands for.
      enc.offsets.emplace_back(sy.b >= shift ? sy.b - shift : 0, sy.e - shift);
      enc.special.push_back(false);
    }
  }

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<AddedToken> added_;
  std::vector<int64_t> added_ids_;
  bool add_prefix_space_ = false;
  std::vector<std::string> files_;
  Regex regex_;
  std::vector<std::string> id_to_token_;
  std::array<int64_t, 256> byte_id_{};
  std::unordered_map<uint32_t, uint8_t> cp_to_byte_;
  std::unordered_map<uint64_t, std::pair<int, int64_t>> merges_;
};

json read_json(const fs::path& p) {
  std::ifstream f(p);
  if (!f) throw Error(p.string() + ": cannot read (expected a JSON file)");
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    throw Error(p.string() + ": expected valid JSON, found a parse error (" + e.what() + ")");
  }
}

std::pair<std::string, std::string> split_merge(const std::string& line, const std::string& where, size_t n) {
  size_t sp = line.find(' ');
  if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() || line.find(' ', sp + 1) != std::string::npos)
    throw Error(where + ": merge " + std::to_string(n) + ": expected two tokens separated by one space, found '" +
                line + "'");
  return {line.substr(0, sp), line.substr(sp + 1)};
}

std::unique_ptr<Tokenizer> from_tokenizer_json(const fs::path& p) {
  const std::string where = p.string();
  json j = read_json(p);
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
    throw Error(where + ": expected an object with a 'model' section");
  const json& m = j["model"];
  const std::string type = m.value("type", std::string("BPE"));
  if (type != "BPE")
    throw Error(where + ": model type '" + type + "' is not supported yet (supported: BPE with ByteLevel)");
  const json& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : json();
  if (!pre.is_object() || pre.value("type", "") != "ByteLevel")
    throw Error(where + ": pre_tokenizer " +
                (pre.is_object() ? "'" + pre.value("type", std::string("?")) + "'" : std::string("null")) +
                " is not supported yet (supported: ByteLevel)");
  bool add_prefix_space = pre.value("add_prefix_space", false);
  if (!m.contains("vocab") || !m["vocab"].is_object())
    throw Error(where + ": model.vocab: expected an object token -> id");
  std::unordered_map<std::string, int64_t> vocab;
  for (auto& [tok, id] : m["vocab"].items()) {
    if (!id.is_number_integer()) throw Error(where + ": model.vocab['" + tok + "']: expected an integer id");
    vocab[tok] = id.get<int64_t>();
  }
  std::vector<std::pair<std::string, std::string>> merges;
  if (m.contains("merges") && m["merges"].is_array()) {
    for (const auto& e : m["merges"]) {
      if (e.is_string())
        merges.push_back(split_merge(e.get<std::string>(), where, merges.size()));
      else if (e.is_array() && e.size() == 2 && e[0].is_string() && e[1].is_string())
        merges.emplace_back(e[0].get<std::string>(), e[1].get<std::string>());
      else
        throw Error(where + ": model.merges[" + std::to_string(merges.size()) +
                    "]: expected \"a b\" or [\"a\", \"b\"]");
    }
  }
  std::vector<AddedToken> added;
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& a : j["added_tokens"]) {
      AddedToken t;
      t.content = a.value("content", std::string());
      t.id = a.value("id", int64_t(-1));
      t.lstrip = a.value("lstrip", false);
      t.rstrip = a.value("rstrip", false);
      t.special = a.value("special", true);
      if (t.content.empty() || t.id < 0)
        throw Error(where + ": added_tokens: expected entries with 'content' and 'id'");
      added.push_back(t);
    }
  }
  return std::make_unique<ByteLevelBpe>(std::move(vocab), merges, std::move(added), add_prefix_space,
                                        std::vector<std::string>{where}, where);
}

std::unique_ptr<Tokenizer> from_vocab_merges(const fs::path& vocab_path, const fs::path& merges_path,
                                             const fs::path& dir) {
  json v = read_json(vocab_path);
  if (!v.is_object()) throw Error(vocab_path.string() + ": expected an object token -> id");
  std::unordered_map<std::string, int64_t> vocab;
  for (auto& [tok, id] : v.items()) {
    if (!id.is_number_integer()) throw Error(vocab_path.string() + ": '" + tok + "': expected an integer id");
    vocab[tok] = id.get<int64_t>();
  }
  std::ifstream f(merges_path);
  if (!f) throw Error(merges_path.string() + ": cannot read merges");
  std::vector<std::pair<std::string, std::string>> merges;
  std::string line;
  size_t lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (lineno == 1 && line.rfind("#version", 0) == 0)) continue;
    merges.push_back(split_merge(line, merges_path.string() + " line " + std::to_string(lineno), merges.size()));
  }
  // GPT-2's slow tokenizer treats <|endoftext|> (and any added_tokens_decoder entries) as special.
  std::vector<AddedToken> added;
  std::vector<std::string> files{vocab_path.string(), merges_path.string()};
  const fs::path cfg = dir / "tokenizer_config.json";
  std::error_code ec;
  if (fs::exists(cfg, ec)) {
    json c = read_json(cfg);
    files.push_back(cfg.string());
    if (c.contains("added_tokens_decoder") && c["added_tokens_decoder"].is_object())
      for (auto& [id, a] : c["added_tokens_decoder"].items()) {
        AddedToken t;
        t.id = std::stoll(id);
        t.content = a.value("content", std::string());
        t.lstrip = a.value("lstrip", false);
        t.rstrip = a.value("rstrip", false);
        t.special = a.value("special", true);
        if (!t.content.empty()) added.push_back(t);
      }
  }
  if (added.empty())
    if (auto it = vocab.find("<|endoftext|>"); it != vocab.end())
      added.push_back({"<|endoftext|>", it->second, false, false, true});
  return std::make_unique<ByteLevelBpe>(std::move(vocab), merges, std::move(added), false, std::move(files),
                                        vocab_path.string());
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir) {
  const fs::path d(model_dir);
  std::error_code ec;
  if (fs::exists(d / "tokenizer.json", ec)) return from_tokenizer_json(d / "tokenizer.json");
  if (fs::exists(d / "vocab.json", ec) && fs::exists(d / "merges.txt", ec))
    return from_vocab_merges(d / "vocab.json", d / "merges.txt", d);
  throw Error(model_dir + ": missing tokenizer files (expected tokenizer.json, or vocab.json + merges.txt)");
}

}  // namespace attnscope
