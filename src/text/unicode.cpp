#include "text/unicode.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>

#include "attnscope/tokenizer.h"

namespace attnscope::text {

namespace {
utf8proc_category_t cat(uint32_t cp) { return utf8proc_category(utf8proc_int32_t(cp)); }
int ccc(uint32_t cp) { return utf8proc_get_property(utf8proc_int32_t(cp))->combining_class; }

std::string utf8proc_apply(const std::string& s, int options) {
  utf8proc_uint8_t* dst = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()), utf8proc_ssize_t(s.size()),
                                    &dst, utf8proc_option_t(options));
  if (n < 0) return s;  // input is validated UTF-8 before it gets here
  std::string out(reinterpret_cast<char*>(dst), size_t(n));
  std::free(dst);
  return out;
}
}  // namespace

bool is_white_space(uint32_t c) {
  return (c >= 0x9 && c <= 0xD) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
         c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

bool is_punctuation(uint32_t cp) {
  auto k = cat(cp);
  return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

bool is_other(uint32_t cp) {
  auto k = cat(cp);
  return k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF || k == UTF8PROC_CATEGORY_CS ||
         k == UTF8PROC_CATEGORY_CO || k == UTF8PROC_CATEGORY_CN;
}

bool is_mark_nonspacing(uint32_t cp) { return cat(cp) == UTF8PROC_CATEGORY_MN; }

bool is_numeric(uint32_t cp) {
  auto k = cat(cp);
  return k == UTF8PROC_CATEGORY_ND || k == UTF8PROC_CATEGORY_NL || k == UTF8PROC_CATEGORY_NO;
}

bool is_alphanumeric(uint32_t cp) {
  auto k = cat(cp);
  return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) || is_numeric(cp);
}

// The ranges of the tokenizers library, including its 0x2B920 (not 0x2B820) start.
bool is_bert_chinese(uint32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_bert_punctuation(uint32_t c) {
  bool ascii = (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
  return ascii || is_punctuation(c);
}

std::vector<CharAt> chars(const std::string& s) {
  std::vector<CharAt> out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    len = std::min(len, s.size() - i);
    uint32_t cp = len == 1 ? c : (c & (0xFF >> (len + 1)));
    for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.push_back({cp, i, i + len});
    i += len;
  }
  return out;
}

NText NText::from_original(const std::string& text, size_t begin, size_t end) {
  NText t;
  t.s = text.substr(begin, end - begin);
  t.al.resize(t.s.size());
  for (size_t i = 0; i < t.s.size(); ++i) t.al[i] = {uint32_t(begin + i), uint32_t(begin + i + 1)};
  return t;
}

Span NText::original(size_t b, size_t e) const {
  if (b >= e || b >= al.size()) return b < al.size() ? Span{al[b].first, al[b].first} : Span{0, 0};
  Span sp = al[b];
  for (size_t i = b + 1; i < e; ++i) {
    sp.first = std::min(sp.first, al[i].first);
    sp.second = std::max(sp.second, al[i].second);
  }
  return sp;
}

void NText::push(uint32_t cp, Span span) {
  size_t before = s.size();
  append_utf8(s, cp);
  al.insert(al.end(), s.size() - before, span);
}

void NText::append(const NText& o) {
  s += o.s;
  al.insert(al.end(), o.al.begin(), o.al.end());
}

NText NText::slice(size_t b, size_t e) const {
  NText t;
  t.s = s.substr(b, e - b);
  t.al.assign(al.begin() + long(b), al.begin() + long(e));
  return t;
}

void lowercase_into(uint32_t cp, std::vector<uint32_t>& out) {
  if (cp == 0x130) {  // the one unconditional multi-code-point lowercase mapping
    out.push_back('i');
    out.push_back(0x307);
    return;
  }
  out.push_back(uint32_t(utf8proc_tolower(utf8proc_int32_t(cp))));
}

void nfd(NText& t, bool compat) {
  struct Cp {
    uint32_t cp;
    Span sp;
  };
  std::vector<Cp> cps;
  utf8proc_int32_t buf[32];
  for (const CharAt& c : chars(t.s)) {
    int last = 0;
    utf8proc_ssize_t n = utf8proc_decompose_char(
        utf8proc_int32_t(c.cp), buf, 32, utf8proc_option_t(UTF8PROC_DECOMPOSE | (compat ? UTF8PROC_COMPAT : 0)), &last);
    Span sp = t.original(c.b, c.e);
    if (n < 0 || n > 32) {
      cps.push_back({c.cp, sp});
      continue;
    }
    for (utf8proc_ssize_t k = 0; k < n; ++k) cps.push_back({uint32_t(buf[k]), sp});
  }
  // Canonical ordering: stable sort of every run of non-starters by combining class.
  for (size_t i = 0; i < cps.size();) {
    if (ccc(cps[i].cp) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && ccc(cps[j].cp) != 0) ++j;
    std::stable_sort(cps.begin() + long(i), cps.begin() + long(j),
                     [](const Cp& a, const Cp& b) { return ccc(a.cp) < ccc(b.cp); });
    i = j;
  }
  NText out;
  for (const Cp& c : cps) out.push(c.cp, c.sp);
  t = std::move(out);
}

// Composition joins code points, so each output code point takes the union span of the
// segment it came from. Segments start at a starter; neighbouring segments are merged when
// composing them together differs from composing them apart (Hangul jamo, rare starter pairs).
void nfc(NText& t, bool compat) {
  bool ascii = std::all_of(t.s.begin(), t.s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) return;
  const int opts = UTF8PROC_STABLE | UTF8PROC_COMPOSE | (compat ? UTF8PROC_COMPAT : 0);
  auto cs = chars(t.s);
  std::vector<std::pair<size_t, size_t>> segs;  // byte ranges of t.s
  for (const CharAt& c : cs) {
    if (segs.empty() || ccc(c.cp) == 0)
      segs.emplace_back(c.b, c.e);
    else
      segs.back().second = c.e;
  }
  std::vector<std::pair<size_t, size_t>> merged;
  std::string cur_norm;
  for (auto seg : segs) {
    std::string n = utf8proc_apply(t.s.substr(seg.first, seg.second - seg.first), opts);
    if (!merged.empty()) {
      auto& last = merged.back();
      std::string joint = utf8proc_apply(t.s.substr(last.first, seg.second - last.first), opts);
      if (joint != cur_norm + n) {
        last.second = seg.second;
        cur_norm = joint;
        continue;
      }
    }
    merged.push_back(seg);
    cur_norm = n;
  }
  NText out;
  for (auto [b, e] : merged) {
    std::string n = utf8proc_apply(t.s.substr(b, e - b), opts);
    auto in_chars = chars(t.s.substr(b, e - b));
    auto out_chars = chars(n);
    // Like the tokenizers library: output character k stands for input character k (a
    // composed character for its base, the marks it absorbed are dropped); extra output
    // characters (compatibility expansions) stand for the last input character.
    for (size_t k = 0; k < out_chars.size(); ++k) {
      const CharAt& src = in_chars[std::min(k, in_chars.size() - 1)];
      out.push(out_chars[k].cp, t.original(b + src.b, b + src.e));
    }
  }
  t = std::move(out);
}

}  // namespace attnscope::text
