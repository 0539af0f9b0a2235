#include "attnscope/report.h"

#include <cmath>
#include <cstdio>

#include "attnscope/error.h"

namespace attnscope {

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o.push_back(c);
    }
  }
  return o;
}

namespace {

std::string background(double s, bool signed_scores) {
  char buf[64];
  if (!signed_scores || s >= 0)
    std::snprintf(buf, sizeof buf, "rgba(26,150,65,%.3f)", std::min(1.0, std::fabs(s)));
  else
    std::snprintf(buf, sizeof buf, "rgba(215,48,39,%.3f)", std::min(1.0, -s));
  return buf;
}

std::string num(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

std::string report_html(const Report& r) {
  if (r.tokens.size() != r.scores.size()) throw Error("report: expected one score per token");
  std::string h;
  h += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n";
  h += "<title>" + html_escape(r.title) + " — attnscope</title>\n<style>\n";
  h += "body{font:14px 'DejaVu Sans',system-ui,sans-serif;margin:24px;color:#1a1a1a}"
       "h1{font-size:18px}.notes{color:#555;font-size:12px;margin-bottom:16px}"
       ".tokens{line-height:2.1;max-width:70em}.tok{padding:2px 3px;margin:1px;border:1px solid #ddd;"
       "border-radius:3px;white-space:pre}.tok.here{border:2px solid #111}"
       "table{border-collapse:collapse;font:11px 'DejaVu Sans Mono',monospace;margin-top:16px}"
       "td,th{border:1px solid #e2e2e2;padding:2px 4px;text-align:right}th{background:#f4f5f7;white-space:pre}\n";
  h += "</style>\n</head>\n<body>\n<h1>" + html_escape(r.title) + "</h1>\n<div class=\"notes\">";
  for (const auto& n : r.notes) h += html_escape(n) + "<br>\n";
  h += "</div>\n";
  if (!r.tokens.empty()) {
    h += "<div class=\"tokens\">";
    for (size_t i = 0; i < r.tokens.size(); ++i) {
      const std::string value = i < r.raw.size() ? num(r.raw[i], 4) : num(r.scores[i], 4);
      h += "<span class=\"tok" + std::string(int64_t(i) == r.highlight ? " here" : "") +
           "\" style=\"background:" + background(r.scores[i], r.signed_scores) + "\" title=\"" + std::to_string(i) +
           ": " + value + "\">" + html_escape(axis_label(r.tokens[i])) + "</span>";
    }
    h += "</div>\n";
  }
  const Matrix& t = r.table;
  if (t.rows > 0) {
    double mx = 0;
    for (float v : t.values)
      if (std::isfinite(v)) mx = std::max(mx, double(std::fabs(v)));
    h += "<table>\n<tr><th></th>";
    for (int64_t c = 0; c < t.cols; ++c) h += "<th>" + html_escape(axis_label(t.col_labels[size_t(c)])) + "</th>";
    h += "</tr>\n";
    for (int64_t rr = 0; rr < t.rows; ++rr) {
      h += "<tr><th>" + html_escape(axis_label(t.row_labels[size_t(rr)])) + "</th>";
      for (int64_t c = 0; c < t.cols; ++c) {
        const float v = t.at(rr, c);
        if ((r.lower_triangle && c > rr) || !std::isfinite(v)) {
          h += "<td></td>";
          continue;
        }
        h += "<td style=\"background:" + background(mx > 0 ? v / mx : 0, true) + "\">" + num(v, r.decimals) + "</td>";
      }
      h += "</tr>\n";
    }
    h += "</table>\n";
  }
  h += "</body>\n</html>\n";
  return h;
}

}  // namespace attnscope
