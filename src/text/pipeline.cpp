#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/pipeline.h"

#include <pcre2.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <array>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <queue>
#include <unordered_map>

#include "attnscope/error.h"
#include "text/unicode.h"

namespace attnscope::text {

using json = nlohmann::json;

namespace {

// ---------------------------------------------------------------- helpers

std::string str_or(const json& j, const char* key, const std::string& dflt) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return dflt;
  if (!j[key].is_string()) throw Error(std::string("'") + key + "': expected a string");
  return j[key].get<std::string>();
}
bool bool_or(const json& j, const char* key, bool dflt) {
  if (!j.is_object() || !j.contains(key) || j[key].is_null()) return dflt;
  if (!j[key].is_boolean()) throw Error(std::string("'") + key + "': expected true or false");
  return j[key].get<bool>();
}
std::string type_of(const json& j) { return j.is_object() ? j.value("type", std::string()) : std::string(); }
// j[key] without a copy (json::value copies, which costs for 100k-entry vocabularies).
const json& member(const json& j, const char* key) {
  static const json null_json;
  return j.is_object() && j.contains(key) ? j.at(key) : null_json;
}

// The GPT-2 byte -> code point table: printable bytes map to themselves, the other 68 to
// 256, 257, ... in byte order.
const std::array<uint32_t, 256>& byte_to_cp() {
  static const std::array<uint32_t, 256> t = [] {
    std::array<uint32_t, 256> r{};
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      r[size_t(b)] = printable ? uint32_t(b) : next++;
    }
    return r;
  }();
  return t;
}
const std::unordered_map<uint32_t, uint8_t>& cp_to_byte() {
  static const std::unordered_map<uint32_t, uint8_t> m = [] {
    std::unordered_map<uint32_t, uint8_t> r;
    for (int b = 0; b < 256; ++b) r[byte_to_cp()[size_t(b)]] = uint8_t(b);
    return r;
  }();
  return m;
}

std::string regex_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string("\\^$.|?*+()[]{}").find(c) != std::string::npos) out.push_back('\\');
    out.push_back(c);
  }
  return out;
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
      throw Error(where + ": cannot compile regex '" + pattern + "' at offset " + std::to_string(off) + ": " +
                  reinterpret_cast<char*>(buf));
    }
    pcre2_jit_compile(code_, PCRE2_JIT_COMPLETE);  // optional speed-up
  }
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-empty matches [b, e) in s.
  std::vector<std::pair<size_t, size_t>> matches(const std::string& s) const {
    std::vector<std::pair<size_t, size_t>> out;
    pcre2_match_data* md = pcre2_match_data_create_from_pattern(code_, nullptr);
    auto subject = reinterpret_cast<PCRE2_SPTR>(s.data());
    size_t pos = 0;
    while (pos <= s.size()) {
      int rc = pcre2_match(code_, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, md, nullptr);
      if (rc < 0) break;
      PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
      size_t mb = ov[0], me = ov[1];
      if (me == mb) {  // empty match: step one code point
        size_t step = 1;
        while (mb + step < s.size() && (static_cast<unsigned char>(s[mb + step]) & 0xC0) == 0x80) ++step;
        pos = mb + step;
        continue;
      }
      out.emplace_back(mb, me);
      pos = me;
    }
    pcre2_match_data_free(md);
    return out;
  }

 private:
  pcre2_code* code_ = nullptr;
};

// A pattern of the tokenizers library: {"String": "literal"} or {"Regex": "..."}.
std::unique_ptr<Regex> pattern_of(const json& p, const std::string& where) {
  if (p.is_object() && p.contains("String") && p["String"].is_string())
    return std::make_unique<Regex>(regex_escape(p["String"].get<std::string>()), where);
  if (p.is_object() && p.contains("Regex") && p["Regex"].is_string())
    return std::make_unique<Regex>(p["Regex"].get<std::string>(), where);
  throw Error(where + ": expected a pattern {\"String\": ...} or {\"Regex\": ...}");
}

// ---------------------------------------------------------------- splitting

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior behavior_of(const std::string& s, const std::string& where) {
  if (s == "Removed") return Behavior::Removed;
  if (s == "Isolated") return Behavior::Isolated;
  if (s == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (s == "MergedWithNext") return Behavior::MergedWithNext;
  if (s == "Contiguous") return Behavior::Contiguous;
  throw Error(where + ": unknown split behavior '" + s +
              "' (expected Removed, Isolated, MergedWithPrevious, MergedWithNext or Contiguous)");
}

// Splits t given the matched ranges (sorted, disjoint), like NormalizedString::split.
void split_by(const NText& t, const std::vector<std::pair<size_t, size_t>>& matches, Behavior bh, bool invert,
              std::vector<NText>& out) {
  // Every range of t tagged as match or not.
  std::vector<std::pair<std::pair<size_t, size_t>, bool>> parts;
  size_t pos = 0;
  for (auto m : matches) {
    if (m.first > pos) parts.push_back({{pos, m.first}, invert});
    parts.push_back({m, !invert});
    pos = m.second;
  }
  if (pos < t.s.size()) parts.push_back({{pos, t.s.size()}, invert});
  std::vector<std::pair<size_t, size_t>> pieces;
  switch (bh) {
    case Behavior::Removed:
      for (auto& [r, m] : parts)
        if (!m) pieces.push_back(r);
      break;
    case Behavior::Isolated:
      for (auto& [r, m] : parts) pieces.push_back(r);
      break;
    case Behavior::Contiguous: {
      bool prev_match = false;
      for (auto& [r, m] : parts) {
        if (m && prev_match && !pieces.empty())
          pieces.back().second = r.second;
        else
          pieces.push_back(r);
        prev_match = m;
      }
      break;
    }
    case Behavior::MergedWithPrevious: {
      bool prev_match = false;
      for (auto& [r, m] : parts) {
        if (m && !prev_match && !pieces.empty())
          pieces.back().second = r.second;
        else
          pieces.push_back(r);
        prev_match = m;
      }
      break;
    }
    case Behavior::MergedWithNext: {
      bool prev_match = false;
      for (auto& [r, m] : parts) {
        if (!m && prev_match && !pieces.empty())
          pieces.back().second = r.second;
        else
          pieces.push_back(r);
        prev_match = m;
      }
      break;
    }
  }
  for (auto [b, e] : pieces)
    if (e > b) out.push_back(t.slice(b, e));
}

// Matches of a per-character predicate, one per character.
template <class P>
std::vector<std::pair<size_t, size_t>> char_matches(const std::string& s, P&& pred) {
  std::vector<std::pair<size_t, size_t>> m;
  for (const CharAt& c : chars(s))
    if (pred(c.cp)) m.emplace_back(c.b, c.e);
  return m;
}

// ---------------------------------------------------------------- normalizers

struct Normalizer {
  virtual ~Normalizer() = default;
  virtual void apply(NText& t) const = 0;
};
using NormPtr = std::unique_ptr<Normalizer>;

struct BertNormalizer : Normalizer {
  bool clean = true, chinese = true, strip = true, lower = true;
  void apply(NText& t) const override {
    if (clean)
      map_chars(t, [](uint32_t c, std::vector<uint32_t>& o) {
        if (c == 0 || c == 0xFFFD) return;
        bool ws = c == '\t' || c == '\n' || c == '\r' || is_white_space(c);
        if (!ws && is_other(c)) return;
        o.push_back(ws ? ' ' : c);
      });
    if (chinese)
      map_chars(t, [](uint32_t c, std::vector<uint32_t>& o) {
        if (is_bert_chinese(c)) {
          o.insert(o.end(), {' ', c, ' '});
        } else {
          o.push_back(c);
        }
      });
    if (strip) {
      nfd(t, false);
      map_chars(t, [](uint32_t c, std::vector<uint32_t>& o) {
        if (!is_mark_nonspacing(c)) o.push_back(c);
      });
    }
    if (lower) map_chars(t, [](uint32_t c, std::vector<uint32_t>& o) { lowercase_into(c, o); });
  }
};

struct UnicodeForm : Normalizer {
  bool compose = false, compat = false;
  void apply(NText& t) const override { compose ? nfc(t, compat) : nfd(t, compat); }
};

struct Lowercase : Normalizer {
  void apply(NText& t) const override {
    map_chars(t, [](uint32_t c, std::vector<uint32_t>& o) { lowercase_into(c, o); });
  }
};

struct StripAccents : Normalizer {
  void apply(NText& t) const override {
    map_chars(t, [](uint32_t c, std::vector<uint32_t>& o) {
      if (!is_mark_nonspacing(c)) o.push_back(c);
    });
  }
};

struct Strip : Normalizer {
  bool left = true, right = true;
  void apply(NText& t) const override {
    auto cs = chars(t.s);
    size_t b = 0, e = cs.size();
    if (left)
      while (b < e && is_white_space(cs[b].cp)) ++b;
    if (right)
      while (e > b && is_white_space(cs[e - 1].cp)) --e;
    t = b < e ? t.slice(cs[b].b, cs[e - 1].e) : NText{};
  }
};

struct Prepend : Normalizer {
  std::string prefix;
  void apply(NText& t) const override {
    if (t.empty()) return;
    // The prefix stands for the first character of the text.
    auto cs = chars(t.s);
    Span sp = t.original(cs[0].b, cs[0].e);
    NText out;
    for (const CharAt& c : chars(prefix)) out.push(c.cp, sp);
    out.append(t);
    t = std::move(out);
  }
};

struct Replace : Normalizer {
  std::unique_ptr<Regex> re;
  std::string content;
  void apply(NText& t) const override {
    auto ms = re->matches(t.s);
    if (ms.empty()) return;
    NText out;
    size_t pos = 0;
    for (auto [b, e] : ms) {
      out.append(t.slice(pos, b));
      Span sp = t.original(b, e);
      for (const CharAt& c : chars(content)) out.push(c.cp, sp);
      pos = e;
    }
    out.append(t.slice(pos, t.s.size()));
    t = std::move(out);
  }
};

struct NormSequence : Normalizer {
  std::vector<NormPtr> items;
  void apply(NText& t) const override {
    for (const auto& n : items) n->apply(t);
  }
};

NormPtr make_normalizer(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j);
  const std::string w = where + ": normalizer " + type;
  if (type == "BertNormalizer") {
    auto n = std::make_unique<BertNormalizer>();
    n->clean = bool_or(j, "clean_text", true);
    n->chinese = bool_or(j, "handle_chinese_chars", true);
    n->lower = bool_or(j, "lowercase", true);
    n->strip = bool_or(j, "strip_accents", n->lower);
    return n;
  }
  if (type == "NFD" || type == "NFKD" || type == "NFC" || type == "NFKC") {
    auto n = std::make_unique<UnicodeForm>();
    n->compose = type == "NFC" || type == "NFKC";
    n->compat = type == "NFKD" || type == "NFKC";
    return n;
  }
  if (type == "Lowercase") return std::make_unique<Lowercase>();
  if (type == "StripAccents") return std::make_unique<StripAccents>();
  if (type == "Strip") {
    auto n = std::make_unique<Strip>();
    n->left = bool_or(j, "strip_left", true);
    n->right = bool_or(j, "strip_right", true);
    return n;
  }
  if (type == "Prepend") {
    auto n = std::make_unique<Prepend>();
    n->prefix = str_or(j, "prepend", "");
    return n;
  }
  if (type == "Replace") {
    auto n = std::make_unique<Replace>();
    n->re = pattern_of(j.value("pattern", json()), w);
    n->content = str_or(j, "content", "");
    return n;
  }
  if (type == "Sequence") {
    auto n = std::make_unique<NormSequence>();
    for (const auto& item : j.value("normalizers", json::array())) n->items.push_back(make_normalizer(item, where));
    return n;
  }
  throw Error(where + ": normalizer '" + type +
              "' is not supported (supported: BertNormalizer, NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, "
              "Strip, Prepend, Replace, Sequence)");
}

// ---------------------------------------------------------------- pre-tokenizers

struct PreTokenizer {
  virtual ~PreTokenizer() = default;
  // first: the split starts at the beginning of the input (Metaspace's prepend_scheme "first").
  virtual void apply(std::vector<NText>& pieces, bool first) const = 0;
};
using PrePtr = std::unique_ptr<PreTokenizer>;

template <class F>
void each_piece(std::vector<NText>& pieces, F&& f) {
  std::vector<NText> out;
  for (const NText& p : pieces) f(p, out);
  pieces = std::move(out);
}

const char* kByteLevelPattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct ByteLevelPre : PreTokenizer {
  bool add_prefix_space = false;
  std::unique_ptr<Regex> re;  // null when use_regex is false
  void apply(std::vector<NText>& pieces, bool) const override {
    each_piece(pieces, [&](const NText& p0, std::vector<NText>& out) {
      NText p = p0;
      if (add_prefix_space && !p.s.empty() && p.s[0] != ' ') {
        NText q;  // the added space stands for the first character, as in the library
        auto cs = chars(p.s);
        q.push(' ', p.original(cs[0].b, cs[0].e));
        q.append(p);
        p = std::move(q);
      }
      std::vector<NText> parts;
      if (re)
        split_by(p, re->matches(p.s), Behavior::Isolated, false, parts);
      else
        parts.push_back(p);
      for (NText& part : parts) {
        NText m;
        for (size_t i = 0; i < part.s.size(); ++i)
          m.push(byte_to_cp()[static_cast<unsigned char>(part.s[i])], part.al[i]);
        out.push_back(std::move(m));
      }
    });
  }
};

struct SplitPre : PreTokenizer {
  std::unique_ptr<Regex> re;
  Behavior bh = Behavior::Isolated;
  bool invert = false;
  void apply(std::vector<NText>& pieces, bool) const override {
    each_piece(pieces,
               [&](const NText& p, std::vector<NText>& out) { split_by(p, re->matches(p.s), bh, invert, out); });
  }
};

struct BertPre : PreTokenizer {
  void apply(std::vector<NText>& pieces, bool) const override {
    each_piece(pieces, [&](const NText& p, std::vector<NText>& out) {
      std::vector<NText> words;
      split_by(p, char_matches(p.s, is_white_space), Behavior::Removed, false, words);
      for (const NText& w : words) split_by(w, char_matches(w.s, is_bert_punctuation), Behavior::Isolated, false, out);
    });
  }
};

struct WhitespacePre : PreTokenizer {  // \w+|[^\w\s]+
  Regex re{R"(\w+|[^\w\s]+)", "Whitespace"};
  void apply(std::vector<NText>& pieces, bool) const override {
    each_piece(pieces, [&](const NText& p, std::vector<NText>& out) {
      split_by(p, re.matches(p.s), Behavior::Removed, true, out);
    });
  }
};

struct WhitespaceSplitPre : PreTokenizer {
  void apply(std::vector<NText>& pieces, bool) const override {
    each_piece(pieces, [&](const NText& p, std::vector<NText>& out) {
      split_by(p, char_matches(p.s, is_white_space), Behavior::Removed, false, out);
    });
  }
};

struct PunctuationPre : PreTokenizer {
  Behavior bh = Behavior::Isolated;
  void apply(std::vector<NText>& pieces, bool) const override {
    each_piece(pieces, [&](const NText& p, std::vector<NText>& out) {
      split_by(p, char_matches(p.s, is_bert_punctuation), bh, false, out);
    });
  }
};

struct DigitsPre : PreTokenizer {
  bool individual = false;
  void apply(std::vector<NText>& pieces, bool) const override {
    each_piece(pieces, [&](const NText& p, std::vector<NText>& out) {
      split_by(p, char_matches(p.s, is_numeric), individual ? Behavior::Isolated : Behavior::Contiguous, false, out);
    });
  }
};

enum class PrependScheme { Always, First, Never };

PrependScheme prepend_scheme_of(const json& j, const std::string& where) {
  if (j.contains("prepend_scheme") && j["prepend_scheme"].is_string()) {
    std::string s = j["prepend_scheme"];
    if (s == "always") return PrependScheme::Always;
    if (s == "first") return PrependScheme::First;
    if (s == "never") return PrependScheme::Never;
    throw Error(where + ": prepend_scheme '" + s + "' (expected always, first or never)");
  }
  return bool_or(j, "add_prefix_space", true) ? PrependScheme::Always : PrependScheme::Never;
}

struct MetaspacePre : PreTokenizer {
  std::string replacement = "\xe2\x96\x81";  // ▁
  PrependScheme scheme = PrependScheme::Always;
  bool split = true;
  void apply(std::vector<NText>& pieces, bool first) const override {
    uint32_t rep = chars(replacement).at(0).cp;
    each_piece(pieces, [&](const NText& p0, std::vector<NText>& out) {
      NText p = p0;
      map_chars(p, [&](uint32_t c, std::vector<uint32_t>& o) { o.push_back(c == ' ' ? rep : c); });
      bool prepend = scheme == PrependScheme::Always || (scheme == PrependScheme::First && first);
      if (prepend && p.s.compare(0, replacement.size(), replacement) != 0 && !p.empty()) {
        NText q;
        auto cs = chars(p.s);
        q.push(rep, p.original(cs[0].b, cs[0].e));
        q.append(p);
        p = std::move(q);
      }
      if (split)
        split_by(p, char_matches(p.s, [&](uint32_t c) { return c == rep; }), Behavior::MergedWithNext, false, out);
      else
        out.push_back(std::move(p));
    });
  }
};

struct PreSequence : PreTokenizer {
  std::vector<PrePtr> items;
  void apply(std::vector<NText>& pieces, bool first) const override {
    for (const auto& p : items) p->apply(pieces, first);
  }
};

PrePtr make_pre_tokenizer(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j);
  const std::string w = where + ": pre_tokenizer " + type;
  if (type == "ByteLevel") {
    auto p = std::make_unique<ByteLevelPre>();
    p->add_prefix_space = bool_or(j, "add_prefix_space", true);
    if (bool_or(j, "use_regex", true)) p->re = std::make_unique<Regex>(kByteLevelPattern, w);
    return p;
  }
  if (type == "Split") {
    auto p = std::make_unique<SplitPre>();
    p->re = pattern_of(j.value("pattern", json()), w);
    p->bh = behavior_of(str_or(j, "behavior", "Isolated"), w);
    p->invert = bool_or(j, "invert", false);
    return p;
  }
  if (type == "BertPreTokenizer") return std::make_unique<BertPre>();
  if (type == "Whitespace") return std::make_unique<WhitespacePre>();
  if (type == "WhitespaceSplit") return std::make_unique<WhitespaceSplitPre>();
  if (type == "Punctuation") {
    auto p = std::make_unique<PunctuationPre>();
    p->bh = behavior_of(str_or(j, "behavior", "Isolated"), w);
    return p;
  }
  if (type == "Digits") {
    auto p = std::make_unique<DigitsPre>();
    p->individual = bool_or(j, "individual_digits", false);
    return p;
  }
  if (type == "Metaspace") {
    auto p = std::make_unique<MetaspacePre>();
    p->replacement = str_or(j, "replacement", p->replacement);
    if (chars(p->replacement).size() != 1) throw Error(w + ": replacement: expected one character");
    p->scheme = prepend_scheme_of(j, w);
    p->split = bool_or(j, "split", true);
    return p;
  }
  if (type == "Sequence") {
    auto p = std::make_unique<PreSequence>();
    for (const auto& item : j.value("pretokenizers", json::array()))
      p->items.push_back(make_pre_tokenizer(item, where));
    return p;
  }
  throw Error(where + ": pre_tokenizer '" + type +
              "' is not supported (supported: ByteLevel, Split, BertPreTokenizer, Whitespace, WhitespaceSplit, "
              "Punctuation, Digits, Metaspace, Sequence)");
}

// ---------------------------------------------------------------- models

struct Piece {
  int64_t id;
  size_t b, e;  // bytes of the word
};

struct Vocab {
  std::unordered_map<std::string, int64_t> to_id;
  std::optional<int64_t> find(const std::string& s) const {
    auto it = to_id.find(s);
    if (it == to_id.end()) return std::nullopt;
    return it->second;
  }
};

struct WordModel {
  virtual ~WordModel() = default;
  virtual void tokenize(const std::string& word, std::vector<Piece>& out) const = 0;
  virtual std::string name() const = 0;
  Vocab vocab;
};

struct Bpe : WordModel {
  std::optional<int64_t> unk;
  std::string prefix, suffix;
  bool byte_fallback = false, fuse_unk = false, ignore_merges = false;
  std::array<std::optional<int64_t>, 256> byte_ids{};
  std::unordered_map<uint64_t, std::pair<int, int64_t>> merges;  // (a, b) -> (rank, merged id)
  static uint64_t key(int64_t a, int64_t b) { return (uint64_t(a) << 32) | uint64_t(uint32_t(b)); }

  std::string name() const override { return "BPE"; }

  void tokenize(const std::string& word, std::vector<Piece>& out) const override {
    if (word.empty()) return;
    if (ignore_merges)
      if (auto id = vocab.find(word)) {
        out.push_back({*id, 0, word.size()});
        return;
      }
    struct Sym {
      int64_t id;
      int prev, next;
      size_t b, e;
    };
    std::vector<Sym> syms;
    auto cs = chars(word);
    bool last_unk = false;
    for (size_t i = 0; i < cs.size(); ++i) {
      std::string s = word.substr(cs[i].b, cs[i].e - cs[i].b);
      if (i > 0 && !prefix.empty()) s = prefix + s;
      if (i + 1 == cs.size() && !suffix.empty()) s += suffix;
      if (auto id = vocab.find(s)) {
        syms.push_back({*id, 0, 0, cs[i].b, cs[i].e});
        last_unk = false;
        continue;
      }
      if (byte_fallback) {
        bool all = true;
        for (size_t k = cs[i].b; k < cs[i].e; ++k) all = all && byte_ids[static_cast<unsigned char>(word[k])];
        if (all) {
          for (size_t k = cs[i].b; k < cs[i].e; ++k)
            syms.push_back({*byte_ids[static_cast<unsigned char>(word[k])], 0, 0, k, k + 1});
          last_unk = false;
          continue;
        }
      }
      if (!unk) continue;  // no unknown token: the character is dropped, as the library does
      if (fuse_unk && last_unk) {
        syms.back().e = cs[i].e;
      } else {
        syms.push_back({*unk, 0, 0, cs[i].b, cs[i].e});
      }
      last_unk = true;
    }
    if (syms.empty()) return;
    for (size_t i = 0; i < syms.size(); ++i) {
      syms[i].prev = int(i) - 1;
      syms[i].next = i + 1 < syms.size() ? int(i) + 1 : -1;
    }
    struct Cand {
      int rank, left;
      int64_t lid, rid, new_id;
      bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
    };
    std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> pq;
    auto push = [&](int l) {
      if (l < 0) return;
      int r = syms[size_t(l)].next;
      if (r < 0) return;
      auto it = merges.find(key(syms[size_t(l)].id, syms[size_t(r)].id));
      if (it != merges.end()) pq.push({it->second.first, l, syms[size_t(l)].id, syms[size_t(r)].id, it->second.second});
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
    for (int i = 0; i >= 0; i = syms[size_t(i)].next)
      out.push_back({syms[size_t(i)].id, syms[size_t(i)].b, syms[size_t(i)].e});
  }
};

struct WordPiece : WordModel {
  int64_t unk = 0;
  std::string prefix = "##";
  size_t max_chars = 100;
  std::string name() const override { return "WordPiece"; }
  void tokenize(const std::string& word, std::vector<Piece>& out) const override {
    if (word.empty()) return;
    auto cs = chars(word);
    if (cs.size() > max_chars) {
      out.push_back({unk, 0, word.size()});
      return;
    }
    std::vector<Piece> pieces;
    size_t start = 0;
    while (start < cs.size()) {
      size_t end = cs.size();
      std::optional<int64_t> cur;
      while (start < end) {
        std::string sub = word.substr(cs[start].b, cs[end - 1].e - cs[start].b);
        if (start > 0) sub = prefix + sub;
        if ((cur = vocab.find(sub))) break;
        --end;
      }
      if (!cur) {
        out.push_back({unk, 0, word.size()});
        return;
      }
      pieces.push_back({*cur, cs[start].b, cs[end - 1].e});
      start = end;
    }
    out.insert(out.end(), pieces.begin(), pieces.end());
  }
};

void read_vocab_object(const json& v, Vocab& vocab, const std::string& where) {
  if (!v.is_object()) throw Error(where + ": model.vocab: expected an object token -> id");
  vocab.to_id.reserve(v.size());
  for (auto& [tok, id] : v.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0)
      throw Error(where + ": model.vocab['" + tok + "']: expected a non-negative integer id");
    vocab.to_id[tok] = id.get<int64_t>();
  }
}

std::optional<int64_t> unk_of(const json& m, const Vocab& vocab, const std::string& where) {
  std::string u = str_or(m, "unk_token", "");
  if (u.empty()) return std::nullopt;
  auto id = vocab.find(u);
  if (!id) throw Error(where + ": model.unk_token '" + u + "' is not in the vocabulary");
  return id;
}

std::pair<std::string, std::string> split_merge(const std::string& line, const std::string& where, size_t n) {
  size_t sp = line.find(' ');
  if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size() || line.find(' ', sp + 1) != std::string::npos)
    throw Error(where + ": merge " + std::to_string(n) + ": expected two tokens separated by one space, found '" +
                line + "'");
  return {line.substr(0, sp), line.substr(sp + 1)};
}

std::unique_ptr<WordModel> make_model(const json& m, const std::string& where) {
  const std::string type = m.is_object() ? m.value("type", std::string()) : std::string();
  if (type == "BPE" || (type.empty() && m.is_object() && m.contains("merges"))) {
    auto bpe = std::make_unique<Bpe>();
    read_vocab_object(member(m, "vocab"), bpe->vocab, where);
    bpe->unk = unk_of(m, bpe->vocab, where);
    bpe->prefix = str_or(m, "continuing_subword_prefix", "");
    bpe->suffix = str_or(m, "end_of_word_suffix", "");
    bpe->byte_fallback = bool_or(m, "byte_fallback", false);
    bpe->fuse_unk = bool_or(m, "fuse_unk", false);
    bpe->ignore_merges = bool_or(m, "ignore_merges", false);
    if (m.contains("dropout") && m["dropout"].is_number() && m["dropout"].get<double>() > 0)
      throw Error(where + ": model.dropout: BPE dropout is random; expected null or 0 for a deterministic tokenizer");
    for (int b = 0; b < 256; ++b) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
      bpe->byte_ids[size_t(b)] = bpe->vocab.find(buf);
    }
    static const json no_merges = json::array();
    const json& ms = m.contains("merges") ? member(m, "merges") : no_merges;
    if (!ms.is_array()) throw Error(where + ": model.merges: expected an array");
    size_t plen = bpe->prefix.size();
    for (size_t r = 0; r < ms.size(); ++r) {
      std::pair<std::string, std::string> ab;
      if (ms[r].is_string())
        ab = split_merge(ms[r].get<std::string>(), where, r);
      else if (ms[r].is_array() && ms[r].size() == 2 && ms[r][0].is_string() && ms[r][1].is_string())
        ab = {ms[r][0].get<std::string>(), ms[r][1].get<std::string>()};
      else
        throw Error(where + ": model.merges[" + std::to_string(r) + "]: expected \"a b\" or [\"a\", \"b\"]");
      std::string merged =
          ab.first + (plen && ab.second.compare(0, plen, bpe->prefix) == 0 ? ab.second.substr(plen) : ab.second);
      auto ia = bpe->vocab.find(ab.first), ib = bpe->vocab.find(ab.second), ic = bpe->vocab.find(merged);
      if (!ia || !ib || !ic)
        throw Error(where + ": merge " + std::to_string(r) + " ('" + ab.first + " " + ab.second +
                    "') uses a token missing from the vocabulary");
      bpe->merges.emplace(Bpe::key(*ia, *ib), std::make_pair(int(r), *ic));
    }
    return bpe;
  }
  if (type == "WordPiece") {
    auto wp = std::make_unique<WordPiece>();
    read_vocab_object(member(m, "vocab"), wp->vocab, where);
    auto unk = unk_of(m, wp->vocab, where);
    if (!unk) throw Error(where + ": model.unk_token: WordPiece needs an unknown token");
    wp->unk = *unk;
    wp->prefix = str_or(m, "continuing_subword_prefix", "##");
    wp->max_chars = size_t(m.value("max_input_chars_per_word", 100));
    return wp;
  }
  throw Error(where + ": model type '" + type + "' is not supported (supported: BPE, WordPiece)");
}

// ---------------------------------------------------------------- post-processors

struct SpecialToken {
  std::vector<int64_t> ids;
  std::vector<std::string> tokens;
};

struct Template {
  struct Item {
    bool special;
    std::string name;  // "A"/"B" or the special token's name
    int64_t type_id;
  };
  std::vector<Item> single, pair;
  std::map<std::string, SpecialToken> specials;
};

struct PostProcessor {
  virtual ~PostProcessor() = default;
  virtual void apply(Encoding& a, Encoding* b) const = 0;
};
using PostPtr = std::unique_ptr<PostProcessor>;

void add_special(Encoding& out, int64_t id, const std::string& tok, int64_t type_id) {
  out.ids.push_back(id);
  out.tokens.push_back(tok);
  out.display.push_back(tok);
  out.offsets.emplace_back(0, 0);
  out.special.push_back(true);
  out.type_ids.push_back(type_id);
  out.sequence.push_back(-1);
}

void add_seq(Encoding& out, const Encoding& s, int64_t type_id, int seq) {
  for (size_t i = 0; i < s.size(); ++i) {
    out.ids.push_back(s.ids[i]);
    out.tokens.push_back(s.tokens[i]);
    out.display.push_back(s.display[i]);
    out.offsets.push_back(s.offsets[i]);
    out.special.push_back(s.special[i]);
    out.type_ids.push_back(type_id);
    out.sequence.push_back(seq);
  }
}

struct TemplatePost : PostProcessor {
  Template t;
  void apply(Encoding& a, Encoding* b) const override {
    Encoding out;
    for (const auto& it : b ? t.pair : t.single) {
      if (!it.special) {
        const Encoding* s = it.name == "A" ? &a : b;
        if (s) add_seq(out, *s, it.type_id, it.name == "A" ? 0 : 1);
        continue;
      }
      const SpecialToken& st = t.specials.at(it.name);
      for (size_t k = 0; k < st.ids.size(); ++k) add_special(out, st.ids[k], st.tokens[k], it.type_id);
    }
    a = std::move(out);
  }
};

// Offsets without the spaces a byte-level token carries (ByteLevel/RobertaProcessing
// trim_offsets): leading/trailing "Ġ" (one space byte of the input each) and white space
// (an added token's stripped spaces) leave the token's offsets.
void trim_offsets(Encoding& e) {
  auto space_bytes = [](const CharAt& c) -> size_t {
    if (c.cp == 0x120) return 1;  // Ġ
    return is_white_space(c.cp) ? c.e - c.b : 0;
  };
  for (size_t i = 0; i < e.size(); ++i) {
    if (e.sequence[i] < 0) continue;
    auto cs = chars(e.tokens[i]);
    size_t lead = 0, trail = 0, k = 0;
    for (; k < cs.size() && space_bytes(cs[k]); ++k) lead += space_bytes(cs[k]);
    for (size_t r = cs.size(); r > 0 && space_bytes(cs[r - 1]); --r) trail += space_bytes(cs[r - 1]);
    auto& [ob, oe] = e.offsets[i];
    if (lead) ob = std::min(ob + lead, oe);
    if (trail && oe >= trail) oe = std::max(oe - trail, ob);
  }
}

struct ByteLevelPost : PostProcessor {
  bool trim = false;
  void apply(Encoding& a, Encoding* b) const override {
    Encoding out;
    add_seq(out, a, 0, 0);
    if (b) add_seq(out, *b, 1, 1);
    if (trim) trim_offsets(out);
    a = std::move(out);
  }
};

struct PostSequence : PostProcessor {
  std::vector<PostPtr> items;
  void apply(Encoding& a, Encoding* b) const override {
    // Only the first processor sees the pair; later ones adjust the merged encoding.
    bool first = true;
    for (const auto& p : items) {
      p->apply(a, first ? b : nullptr);
      first = false;
    }
  }
};

struct TrimOnly : PostProcessor {
  void apply(Encoding& a, Encoding*) const override { trim_offsets(a); }
};

std::pair<std::string, int64_t> token_pair(const json& j, const std::string& where) {
  if (!j.is_array() || j.size() != 2 || !j[0].is_string() || !j[1].is_number_integer())
    throw Error(where + ": expected [\"token\", id]");
  return {j[0].get<std::string>(), j[1].get<int64_t>()};
}

PostPtr make_post(const json& j, const std::string& where, bool nested = false) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j);
  const std::string w = where + ": post_processor " + type;
  auto simple_template = [](const std::string& cls, int64_t cls_id, const std::string& sep, int64_t sep_id,
                            bool roberta) {
    auto p = std::make_unique<TemplatePost>();
    p->t.specials["CLS"] = {{cls_id}, {cls}};
    p->t.specials["SEP"] = {{sep_id}, {sep}};
    p->t.single = {{true, "CLS", 0}, {false, "A", 0}, {true, "SEP", 0}};
    if (roberta)
      p->t.pair = {{true, "CLS", 0}, {false, "A", 0}, {true, "SEP", 0},
                   {true, "SEP", 0}, {false, "B", 0}, {true, "SEP", 0}};
    else
      p->t.pair = {{true, "CLS", 0}, {false, "A", 0}, {true, "SEP", 0}, {false, "B", 1}, {true, "SEP", 1}};
    return p;
  };
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto [sep, sep_id] = token_pair(j.value("sep", json()), w + ".sep");
    auto [cls, cls_id] = token_pair(j.value("cls", json()), w + ".cls");
    bool roberta = type == "RobertaProcessing";
    auto t = simple_template(cls, cls_id, sep, sep_id, roberta);
    if (roberta && bool_or(j, "trim_offsets", true)) {
      auto seq = std::make_unique<PostSequence>();
      seq->items.push_back(std::move(t));
      seq->items.push_back(std::make_unique<TrimOnly>());
      return seq;
    }
    return t;
  }
  if (type == "ByteLevel") {
    auto p = std::make_unique<ByteLevelPost>();
    p->trim = bool_or(j, "trim_offsets", true);
    if (nested) {
      if (p->trim) return std::make_unique<TrimOnly>();
      return nullptr;
    }
    return p;
  }
  if (type == "TemplateProcessing") {
    auto p = std::make_unique<TemplatePost>();
    const json specials = j.value("special_tokens", json::object());
    for (auto& [name, st] : specials.items()) {
      SpecialToken s;
      for (const auto& id : st.value("ids", json::array())) s.ids.push_back(id.get<int64_t>());
      for (const auto& tk : st.value("tokens", json::array())) s.tokens.push_back(tk.get<std::string>());
      if (s.ids.size() != s.tokens.size()) throw Error(w + ": special_tokens['" + name + "']: ids and tokens differ");
      p->t.specials[name] = s;
    }
    auto items = [&](const char* key, std::vector<Template::Item>& out) {
      for (const auto& it : j.value(key, json::array())) {
        if (it.contains("SpecialToken")) {
          const json& s = it["SpecialToken"];
          std::string id = s.value("id", std::string());
          if (!p->t.specials.count(id)) throw Error(w + ": " + key + ": special token '" + id + "' is not defined");
          out.push_back({true, id, s.value("type_id", int64_t(0))});
        } else if (it.contains("Sequence")) {
          const json& s = it["Sequence"];
          out.push_back({false, s.value("id", std::string("A")), s.value("type_id", int64_t(0))});
        } else {
          throw Error(w + ": " + key + ": expected SpecialToken or Sequence items");
        }
      }
    };
    items("single", p->t.single);
    items("pair", p->t.pair);
    return p;
  }
  if (type == "Sequence") {
    auto p = std::make_unique<PostSequence>();
    bool first = true;
    for (const auto& item : j.value("processors", json::array())) {
      auto q = make_post(item, where, !first);
      if (q) p->items.push_back(std::move(q));
      first = false;
    }
    return p;
  }
  throw Error(where + ": post_processor '" + type +
              "' is not supported (supported: BertProcessing, RobertaProcessing, ByteLevel, TemplateProcessing, "
              "Sequence)");
}

// ---------------------------------------------------------------- decoders

// Decoders work on byte strings; the caller turns the result into text (lossy for decode,
// \xNN escapes for display strings).
struct Decoder {
  virtual ~Decoder() = default;
  // display: decoding one token for a label (keep word-boundary spaces and ## prefixes).
  virtual void apply(std::vector<std::string>& toks, bool display) const = 0;
};
using DecPtr = std::unique_ptr<Decoder>;

struct ByteLevelDec : Decoder {
  void apply(std::vector<std::string>& toks, bool) const override {
    for (std::string& t : toks) {
      std::string bytes;
      bool ok = true;
      for (const CharAt& c : chars(t)) {
        auto it = cp_to_byte().find(c.cp);
        if (it == cp_to_byte().end()) {
          ok = false;
          break;
        }
        bytes.push_back(char(it->second));
      }
      if (ok) t = bytes;
    }
  }
};

struct WordPieceDec : Decoder {
  std::string prefix = "##";
  bool cleanup = true;
  void apply(std::vector<std::string>& toks, bool display) const override {
    if (display) return;
    for (size_t i = 0; i < toks.size(); ++i) {
      std::string& t = toks[i];
      if (i > 0) {
        if (t.compare(0, prefix.size(), prefix) == 0)
          t = t.substr(prefix.size());
        else
          t = " " + t;
      }
      if (cleanup) {
        static const std::pair<const char*, const char*> rules[] = {
            {" .", "."},   {" ?", "?"},   {" !", "!"},     {" ,", ","},     {" ' ", "'"},         {" n't", "n't"},
            {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}, {" do not", " don't"}};
        for (auto [from, to] : rules) {
          size_t pos = 0;
          while ((pos = t.find(from, pos)) != std::string::npos) {
            t.replace(pos, std::strlen(from), to);
            pos += std::strlen(to);
          }
        }
      }
    }
  }
};

struct MetaspaceDec : Decoder {
  std::string replacement = "\xe2\x96\x81";
  PrependScheme scheme = PrependScheme::Always;
  void apply(std::vector<std::string>& toks, bool display) const override {
    for (size_t i = 0; i < toks.size(); ++i) {
      std::string& t = toks[i];
      size_t pos = 0;
      while ((pos = t.find(replacement, pos)) != std::string::npos) {
        t.replace(pos, replacement.size(), " ");
        pos += 1;
      }
      if (!display && i == 0 && scheme != PrependScheme::Never && !t.empty() && t[0] == ' ') t.erase(0, 1);
    }
  }
};

struct ByteFallbackDec : Decoder {
  void apply(std::vector<std::string>& toks, bool) const override {
    std::vector<std::string> out;
    std::string run;
    bool in_run = false;
    for (const std::string& t : toks) {
      unsigned v = 0;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && std::sscanf(t.c_str() + 3, "%2X", &v) == 1) {
        run.push_back(char(v));
        in_run = true;
        continue;
      }
      if (in_run) out.push_back(run), run.clear(), in_run = false;
      out.push_back(t);
    }
    if (in_run) out.push_back(run);
    toks = std::move(out);
  }
};

struct FuseDec : Decoder {
  void apply(std::vector<std::string>& toks, bool display) const override {
    if (display) return;
    std::string all;
    for (const auto& t : toks) all += t;
    toks = {all};
  }
};

struct StripDec : Decoder {
  std::string content = " ";
  size_t start = 0, stop = 0;
  void apply(std::vector<std::string>& toks, bool display) const override {
    if (display) return;  // labels keep their word-boundary spaces
    for (std::string& t : toks) {
      size_t b = 0, e = t.size();
      for (size_t k = 0; k < start && t.compare(b, content.size(), content) == 0 && b + content.size() <= e; ++k)
        b += content.size();
      for (size_t k = 0;
           k < stop && e >= b + content.size() && t.compare(e - content.size(), content.size(), content) == 0; ++k)
        e -= content.size();
      t = t.substr(b, e - b);
    }
  }
};

struct ReplaceDec : Decoder {
  std::unique_ptr<Regex> re;
  std::string content;
  void apply(std::vector<std::string>& toks, bool) const override {
    for (std::string& t : toks) {
      auto ms = re->matches(t);
      if (ms.empty()) continue;
      std::string out;
      size_t pos = 0;
      for (auto [b, e] : ms) {
        out += t.substr(pos, b - pos) + content;
        pos = e;
      }
      t = out + t.substr(pos);
    }
  }
};

struct BpeDec : Decoder {
  std::string suffix = "</w>";
  void apply(std::vector<std::string>& toks, bool display) const override {
    for (size_t i = 0; i < toks.size(); ++i) {
      std::string& t = toks[i];
      size_t pos = 0;
      std::string rep = (i + 1 == toks.size() && !display) ? "" : " ";
      while ((pos = t.find(suffix, pos)) != std::string::npos) {
        t.replace(pos, suffix.size(), rep);
        pos += rep.size();
      }
    }
  }
};

struct DecSequence : Decoder {
  std::vector<DecPtr> items;
  void apply(std::vector<std::string>& toks, bool display) const override {
    for (const auto& d : items) d->apply(toks, display);
  }
};

DecPtr make_decoder(const json& j, const std::string& where) {
  if (j.is_null()) return nullptr;
  const std::string type = type_of(j);
  const std::string w = where + ": decoder " + type;
  if (type == "ByteLevel") return std::make_unique<ByteLevelDec>();
  if (type == "WordPiece") {
    auto d = std::make_unique<WordPieceDec>();
    d->prefix = str_or(j, "prefix", "##");
    d->cleanup = bool_or(j, "cleanup", true);
    return d;
  }
  if (type == "Metaspace") {
    auto d = std::make_unique<MetaspaceDec>();
    d->replacement = str_or(j, "replacement", d->replacement);
    d->scheme = prepend_scheme_of(j, w);
    return d;
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDec>();
  if (type == "Fuse") return std::make_unique<FuseDec>();
  if (type == "Strip") {
    auto d = std::make_unique<StripDec>();
    d->content = str_or(j, "content", " ");
    d->start = size_t(j.value("start", 0));
    d->stop = size_t(j.value("stop", 0));
    return d;
  }
  if (type == "Replace") {
    auto d = std::make_unique<ReplaceDec>();
    d->re = pattern_of(j.value("pattern", json()), w);
    d->content = str_or(j, "content", "");
    return d;
  }
  if (type == "BPEDecoder") {
    auto d = std::make_unique<BpeDec>();
    d->suffix = str_or(j, "suffix", "</w>");
    return d;
  }
  if (type == "Sequence") {
    auto d = std::make_unique<DecSequence>();
    for (const auto& item : j.value("decoders", json::array())) d->items.push_back(make_decoder(item, where));
    return d;
  }
  throw Error(where + ": decoder '" + type +
              "' is not supported (supported: ByteLevel, WordPiece, Metaspace, ByteFallback, Fuse, Strip, Replace, "
              "BPEDecoder, Sequence)");
}

// ---------------------------------------------------------------- the tokenizer

struct AddedToken {
  std::string content;
  int64_t id = 0;
  bool lstrip = false, rstrip = false, single_word = false, special = true;
};

class PipelineTokenizer final : public Tokenizer {
 public:
  PipelineTokenizer(const json& doc, std::vector<std::string> files, const std::string& where, std::string kind)
      : files_(std::move(files)) {
    if (!doc.is_object() || !doc.contains("model") || !doc["model"].is_object())
      throw Error(where + ": expected an object with a 'model' section");
    model_ = make_model(doc["model"], where);
    normalizer_ = make_normalizer(doc.value("normalizer", json()), where);
    pre_ = make_pre_tokenizer(doc.value("pre_tokenizer", json()), where);
    post_ = make_post(doc.value("post_processor", json()), where);
    decoder_ = make_decoder(doc.value("decoder", json()), where);
    for (const auto& a : doc.value("added_tokens", json::array())) {
      AddedToken t;
      t.content = str_or(a, "content", "");
      t.id = a.value("id", int64_t(-1));
      t.lstrip = bool_or(a, "lstrip", false);
      t.rstrip = bool_or(a, "rstrip", false);
      t.single_word = bool_or(a, "single_word", false);
      t.special = bool_or(a, "special", true);
      if (t.content.empty() || t.id < 0)
        throw Error(where + ": added_tokens: expected entries with 'content' and 'id'");
      added_.push_back(t);
    }
    int64_t max_id = -1;
    for (auto& [tok, id] : model_->vocab.to_id) max_id = std::max(max_id, id);
    for (auto& a : added_) max_id = std::max(max_id, a.id);
    id_to_token_.assign(size_t(max_id + 1), std::string());
    for (auto& [tok, id] : model_->vocab.to_id) id_to_token_[size_t(id)] = tok;
    is_added_.assign(id_to_token_.size(), false);
    for (auto& a : added_) {
      id_to_token_[size_t(a.id)] = a.content;
      is_added_[size_t(a.id)] = true;
    }
    bool byte_level = doc.value("decoder", json()).is_object() && type_of(doc["decoder"]) == "ByteLevel";
    kind_ = !kind.empty() ? kind : (byte_level ? "byte-level " : "") + model_->name();
  }

  Encoding encode(const std::string& text) const override {
    Encoding a = encode_plain(text, "text");
    finish(a, nullptr);
    return a;
  }

  Encoding encode_pair(const std::string& a_text, const std::string& b_text) const override {
    Encoding a = encode_plain(a_text, "text");
    Encoding b = encode_plain(b_text, "text-b");
    finish(a, &b);
    return a;
  }

  std::string decode(const std::vector<int64_t>& ids) const override {
    std::vector<std::string> toks;
    for (int64_t id : ids) toks.push_back(id_to_token(id));
    return utf8_lossy(run_decoder(toks, false));
  }

  int64_t vocab_size() const override { return int64_t(id_to_token_.size()); }
  std::optional<int64_t> token_to_id(const std::string& t) const override {
    for (const auto& a : added_)
      if (a.content == t) return a.id;
    return model_->vocab.find(t);
  }
  std::string id_to_token(int64_t id) const override {
    if (id < 0 || size_t(id) >= id_to_token_.size())
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary (size " +
                  std::to_string(id_to_token_.size()) + ")");
    return id_to_token_[size_t(id)];
  }
  std::string display_of(int64_t id) const override {
    std::vector<std::string> one{id_to_token(id)};
    if (is_added_[size_t(id)]) return one[0];
    return utf8_escape_invalid(run_decoder(one, true));
  }
  std::string kind() const override { return kind_; }
  std::vector<std::string> files() const override { return files_; }

 private:
  std::string run_decoder(std::vector<std::string> toks, bool display) const {
    if (decoder_) {
      // Added tokens are not byte-level or byte-fallback pieces; the library decodes them
      // as they are. Decode runs of ordinary tokens between them.
      decoder_->apply(toks, display);
    } else if (!display) {
      std::string all;
      for (size_t i = 0; i < toks.size(); ++i) all += (i ? " " : "") + toks[i];
      return all;
    }
    std::string all;
    for (const auto& t : toks) all += t;
    return all;
  }

  void finish(Encoding& a, Encoding* b) const {
    auto plain = [](Encoding& e, int seq) {
      e.type_ids.assign(e.size(), seq);
      e.sequence.assign(e.size(), seq);
    };
    plain(a, 0);
    if (b) plain(*b, 1);
    if (post_) {
      post_->apply(a, b);
      return;
    }
    if (b) {
      Encoding out;
      add_seq(out, a, 0, 0);
      add_seq(out, *b, 1, 1);
      a = std::move(out);
    }
  }

  Encoding encode_plain(const std::string& text, const char* what) const {
    if (auto bad = find_invalid_utf8(text))
      throw Error(std::string(what) + ": expected valid UTF-8, found an invalid byte sequence at byte " +
                  std::to_string(*bad));
    Encoding enc;
    size_t pos = 0;
    while (pos < text.size()) {
      size_t best = std::string::npos;
      const AddedToken* hit = nullptr;
      for (const auto& a : added_) {
        size_t p = find_added(text, a, pos);
        if (p != std::string::npos && (p < best || (p == best && a.content.size() > hit->content.size()))) {
          best = p;
          hit = &a;
        }
      }
      if (!hit) {
        encode_segment(text, pos, text.size(), enc);
        break;
      }
      size_t tb = best, te = best + hit->content.size();
      if (hit->lstrip)
        while (tb > pos && is_white_space(static_cast<unsigned char>(text[tb - 1]))) --tb;
      if (hit->rstrip)
        while (te < text.size() && is_white_space(static_cast<unsigned char>(text[te]))) ++te;
      encode_segment(text, pos, tb, enc);
      enc.ids.push_back(hit->id);
      enc.tokens.push_back(text.substr(tb, te - tb));  // with the spaces lstrip/rstrip took, as the library does
      enc.display.push_back(hit->content);
      enc.offsets.emplace_back(tb, te);
      enc.special.push_back(hit->special);
      pos = te;
    }
    return enc;
  }

  static bool word_char_at(const std::string& s, size_t i, bool before) {
    // The code point just before (or at) byte i is alphanumeric or '_'.
    if (before) {
      if (i == 0) return false;
      size_t k = i - 1;
      while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
      uint32_t cp = chars(s.substr(k, i - k)).at(0).cp;
      return cp == '_' || is_alphanumeric(cp);
    }
    if (i >= s.size()) return false;
    size_t len = 1;
    while (i + len < s.size() && (static_cast<unsigned char>(s[i + len]) & 0xC0) == 0x80) ++len;
    uint32_t cp = chars(s.substr(i, len)).at(0).cp;
    return cp == '_' || is_alphanumeric(cp);
  }

  static size_t find_added(const std::string& text, const AddedToken& a, size_t from) {
    size_t p = from;
    while ((p = text.find(a.content, p)) != std::string::npos) {
      if (!a.single_word || (!word_char_at(text, p, true) && !word_char_at(text, p + a.content.size(), false)))
        return p;
      ++p;
    }
    return p;
  }

  void encode_segment(const std::string& text, size_t begin, size_t end, Encoding& enc) const {
    if (begin >= end) return;
    NText t = NText::from_original(text, begin, end);
    if (normalizer_) normalizer_->apply(t);
    std::vector<NText> pieces{std::move(t)};
    if (pre_) pre_->apply(pieces, begin == 0);
    std::vector<Piece> out;
    for (const NText& p : pieces) {
      out.clear();
      model_->tokenize(p.s, out);
      for (const Piece& pc : out) {
        enc.ids.push_back(pc.id);
        enc.tokens.push_back(id_to_token_[size_t(pc.id)]);
        enc.display.push_back(display_of(pc.id));
        Span sp = p.original(pc.b, pc.e);
        enc.offsets.emplace_back(sp.first, sp.second);
        enc.special.push_back(false);
      }
    }
  }

  std::vector<std::string> files_;
  std::unique_ptr<WordModel> model_;
  NormPtr normalizer_;
  PrePtr pre_;
  PostPtr post_;
  DecPtr decoder_;
  std::vector<AddedToken> added_;
  std::vector<std::string> id_to_token_;
  std::vector<bool> is_added_;
  std::string kind_;
};

}  // namespace

std::unique_ptr<Tokenizer> tokenizer_from_json(const json& doc, std::vector<std::string> files,
                                               const std::string& where, const std::string& kind_hint) {
  try {
    return std::make_unique<PipelineTokenizer>(doc, std::move(files), where, kind_hint);
  } catch (const json::exception& e) {
    throw Error(where + ": unexpected value in the tokenizer description (" + e.what() + ")");
  } catch (const Error& e) {
    std::string m = e.what();
    if (m.rfind(where, 0) == 0) throw;
    throw Error(where + ": " + m);
  }
}

}  // namespace attnscope::text
