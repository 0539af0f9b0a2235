// Unicode facts the tokenizers need (utf8proc tables) and NText: normalized text that
// remembers, for every byte, which bytes of the original input it came from.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace attnscope::text {

using Span = std::pair<uint32_t, uint32_t>;  // [begin, end) bytes of the original text

// Rust's char::is_whitespace (the White_Space property).
bool is_white_space(uint32_t cp);
// General category checks (Unicode tables of utf8proc).
bool is_punctuation(uint32_t cp);      // P*
bool is_other(uint32_t cp);            // C* (control, format, unassigned, private use, surrogate)
bool is_mark_nonspacing(uint32_t cp);  // Mn
bool is_numeric(uint32_t cp);          // N* (Rust's char::is_numeric)
bool is_alphanumeric(uint32_t cp);     // L* or N*
// BERT's definitions (the tokenizers library's BertNormalizer / BertPreTokenizer).
bool is_bert_chinese(uint32_t cp);
bool is_bert_punctuation(uint32_t cp);

struct NText {
  std::string s;         // UTF-8
  std::vector<Span> al;  // one per byte of s

  static NText from_original(const std::string& text, size_t begin, size_t end);
  bool empty() const { return s.empty(); }
  // Range of original bytes covered by s[b, e).
  Span original(size_t b, size_t e) const;
  void push(uint32_t cp, Span span);
  void append(const NText& o);
  NText slice(size_t b, size_t e) const;
};

// One code point of an NText with its byte range in s.
struct CharAt {
  uint32_t cp;
  size_t b, e;
};
std::vector<CharAt> chars(const std::string& s);

// Rewrites t code point by code point: f(cp, out) appends the replacement code points
// (none = drop); every output code point keeps the span of the code point it came from.
template <class F>
void map_chars(NText& t, F&& f) {
  NText out;
  out.s.reserve(t.s.size());
  out.al.reserve(t.al.size());
  std::vector<uint32_t> rep;
  for (const CharAt& c : chars(t.s)) {
    rep.clear();
    f(c.cp, rep);
    Span sp = t.original(c.b, c.e);
    for (uint32_t r : rep) out.push(r, sp);
  }
  t = std::move(out);
}

// Unicode normalization forms, keeping alignment.
void nfd(NText& t, bool compat);
void nfc(NText& t, bool compat);
// Full lowercase mapping (Rust's char::to_lowercase).
void lowercase_into(uint32_t cp, std::vector<uint32_t>& out);

}  // namespace attnscope::text
