// A small self-contained HTML page for an explanation: tokens on coloured backgrounds and/or a
// labelled table of numbers. Everything from the user (tokens, text) is escaped; no script, no
// reference outside the file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "attnscope/render.h"

namespace attnscope {

struct Report {
  std::string title;
  std::vector<std::string> notes;  // lines under the title (method, options, target)
  // Highlighted tokens: scores in [-1, 1] (signed) or [0, 1]; empty = no token view.
  std::vector<std::string> tokens;
  std::vector<float> scores;
  std::vector<double> raw;  // the unscaled values shown on hover
  bool signed_scores = false;
  int64_t highlight = -1;
  // A table (e.g. the generation table): values with `decimals` digits; cells with NaN are blank.
  Matrix table;
  int decimals = 4;
  bool lower_triangle = false;  // blank the cells above the diagonal
};

std::string report_html(const Report& r);
std::string html_escape(const std::string& s);

}  // namespace attnscope
