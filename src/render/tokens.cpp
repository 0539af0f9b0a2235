// Tokens on coloured boxes, wrapped into lines: the text view of an explanation.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "attnscope/error.h"
#include "attnscope/render.h"
#include "figure.h"

namespace attnscope {

std::vector<float> robust_scale(const std::vector<double>& v, double share, double* threshold) {
  std::vector<double> a(v.size());
  for (size_t i = 0; i < v.size(); ++i) a[i] = std::fabs(v[i]);
  std::sort(a.begin(), a.end());
  const double total = std::accumulate(a.begin(), a.end(), 0.0);
  double t = a.empty() ? 0 : a.back(), run = 0;
  for (double x : a) {
    run += x;
    if (total > 0 && run >= share * total) {
      t = x;
      break;
    }
  }
  if (threshold) *threshold = t;
  std::vector<float> out(v.size(), 0.f);
  if (t > 0)
    for (size_t i = 0; i < v.size(); ++i) out[i] = float(std::clamp(v[i] / t, -1.0, 1.0));
  return out;
}

namespace {

Rgb score_colour(double s, bool signed_scores) {
  auto mix = [](Rgb a, Rgb b, double t) {
    auto c = [&](uint8_t x, uint8_t y) { return uint8_t(std::lround(x + (double(y) - x) * t)); };
    return Rgb{c(a.r, b.r), c(a.g, b.g), c(a.b, b.b)};
  };
  const Rgb white{255, 255, 255}, green{26, 150, 65}, red{215, 48, 39};
  if (!signed_scores) return mix(white, green, std::clamp(s, 0.0, 1.0));
  return s >= 0 ? mix(white, green, std::min(1.0, s)) : mix(white, red, std::min(1.0, -s));
}

struct Placed {
  double x, y, w;
};

}  // namespace

void render_token_scores(const std::vector<std::string>& tokens, const std::vector<float>& scores,
                         const TokenScoresOptions& o, const std::string& path) {
  if (tokens.empty() || tokens.size() != scores.size())
    throw Error("token scores: expected one score per token, found " + std::to_string(scores.size()) + " for " +
                std::to_string(tokens.size()) + " tokens");
  if (!(o.dpi > 0) || !(o.width_in > 0) || o.width_in * o.dpi > 32000)
    throw Error("token scores: expected a positive figure width of at most 32000 px");
  check_figure_path(path);
  const double f = o.dpi / 72.0, pt = 11, pad = 3 * f, gap = 2 * f, margin = 14 * f;
  const double W = o.width_in * o.dpi;
  // Lay out on a scratch surface with the same scale, then draw for real.
  std::vector<Placed> at;
  double height = 0, line_h = 0, title_h = 0;
  {
    cairo_surface_t* scratch = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, 8, 8);
    cairo_t* cr = cairo_create(scratch);
    {
      Painter p(cr, f);
      line_h = p.height(pt) + 2 * pad;
      title_h = o.title.empty() ? 0 : p.height(13) + 8 * f;
      double x = margin, y = margin + title_h;
      for (const auto& t : tokens) {
        const double w = p.width(axis_label(t), pt) + 2 * pad;
        if (x + w > W - margin && x > margin) x = margin, y += line_h + gap;
        at.push_back({x, y, w});
        x += w + gap;
      }
      height = y + line_h + margin + (o.legend.empty() ? 0 : p.height(9) + 6 * f);
    }
    cairo_destroy(cr);
    cairo_surface_destroy(scratch);
  }
  if (height > 32000) throw Error("token scores: " + std::to_string(tokens.size()) + " tokens do not fit one figure");
  write_figure(path, o.width_in, height / o.dpi, o.dpi, [&](cairo_t* cr, bool) {
    Painter p(cr, f);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    if (!o.title.empty()) {
      cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
      p.draw(o.title, 13, margin, margin, 0, 0, 0, true);
    }
    for (size_t i = 0; i < tokens.size(); ++i) {
      const Rgb c = score_colour(scores[i], o.signed_scores);
      cairo_rectangle(cr, at[i].x, at[i].y, at[i].w, line_h);
      cairo_set_source_rgb(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0);
      cairo_fill_preserve(cr);
      const bool mark = int64_t(i) == o.highlight;
      cairo_set_source_rgb(cr, mark ? 0.1 : 0.8, mark ? 0.1 : 0.8, mark ? 0.1 : 0.8);
      cairo_set_line_width(cr, (mark ? 2.0 : 0.5) * f);
      cairo_stroke(cr);
      const double lum = luminance(c);
      cairo_set_source_rgb(cr, lum < 0.35 ? 1 : 0.05, lum < 0.35 ? 1 : 0.05, lum < 0.35 ? 1 : 0.05);
      p.draw(axis_label(tokens[i]), pt, at[i].x + pad, at[i].y + line_h / 2, 0, 0.5);
    }
    if (!o.legend.empty()) {
      cairo_set_source_rgb(cr, 0.35, 0.35, 0.35);
      p.draw(o.legend, 9, margin, height - margin, 0, 1);
    }
  });
}

}  // namespace attnscope
