#include <cstdio>
#include <string>

#include "attnscope/tokenizer.h"

namespace attnscope {

// Length of a valid UTF-8 sequence at s[i], or 0 when invalid (overlong, surrogate,
// > U+10FFFF, truncated, stray continuation byte).
static size_t valid_seq_len(const std::string& s, size_t i, uint32_t* cp_out) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const size_t n = s.size();
  unsigned char c = b(i);
  if (c < 0x80) {
    *cp_out = c;
    return 1;
  }
  size_t len;
  uint32_t cp, min;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
    min = 0x80;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
    min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
    min = 0x10000;
  } else
    return 0;
  if (i + len > n) return 0;
  for (size_t k = 1; k < len; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  *cp_out = cp;
  return len;
}

std::optional<size_t> find_invalid_utf8(const std::string& s) {
  uint32_t cp;
  for (size_t i = 0; i < s.size();) {
    size_t len = valid_seq_len(s, i, &cp);
    if (!len) return i;
    i += len;
  }
  return std::nullopt;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(char(cp));
  } else if (cp < 0x800) {
    out.push_back(char(0xC0 | (cp >> 6)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(char(0xE0 | (cp >> 12)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(char(0xF0 | (cp >> 18)));
    out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(char(0x80 | (cp & 0x3F)));
  }
}

std::string utf8_lossy(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  uint32_t cp;
  for (size_t i = 0; i < s.size();) {
    size_t len = valid_seq_len(s, i, &cp);
    if (len) {
      out.append(s, i, len);
      i += len;
      continue;
    }
    // One U+FFFD per maximal invalid subpart (as Rust's String::from_utf8_lossy does).
    append_utf8(out, 0xFFFD);
    const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = b(i);
    size_t want = (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 1;
    size_t k = 1;
    for (; k < want && i + k < s.size(); ++k) {
      unsigned char d = b(i + k);
      unsigned char lo = 0x80, hi = 0xBF;
      if (k == 1) {
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
      }
      if (d < lo || d > hi) break;
    }
    i += k;
  }
  return out;
}

std::string utf8_escape_invalid(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  uint32_t cp;
  static const char* hex = "0123456789abcdef";
  for (size_t i = 0; i < s.size();) {
    size_t len = valid_seq_len(s, i, &cp);
    if (len) {
      out.append(s, i, len);
      i += len;
      continue;
    }
    const auto b = static_cast<unsigned char>(s[i++]);
    out += "\\x";
    out.push_back(hex[b >> 4]);
    out.push_back(hex[b & 15]);
  }
  return out;
}

std::string escape_controls(const std::string& s, size_t max_codepoints) {
  std::string out;
  size_t n = 0;
  for (uint32_t cp : utf8_codepoints(s)) {
    if (++n > max_codepoints) {
      out += "\u2026";
      break;
    }
    if (cp == '\n')
      out += "\\n";
    else if (cp == '\r')
      out += "\\r";
    else if (cp == '\t')
      out += "\\t";
    else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", cp);
      out += buf;
    } else {
      append_utf8(out, cp);
    }
  }
  return out;
}

std::vector<uint32_t> utf8_codepoints(const std::string& s) {
  std::vector<uint32_t> out;
  uint32_t cp;
  for (size_t i = 0; i < s.size();) {
    size_t len = valid_seq_len(s, i, &cp);
    if (!len) {
      out.push_back(0xFFFD);
      ++i;
      continue;
    }
    out.push_back(cp);
    i += len;
  }
  return out;
}

}  // namespace attnscope
