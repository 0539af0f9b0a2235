// The seed heatmap (seaborn's look): cells, token labels on both axes, colour bar, title.
#include <cairo-pdf.h>
#include <cairo-svg.h>
#include <cairo.h>
#include <pango/pangocairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "attnscope/error.h"
#include "attnscope/render.h"
#include "attnscope/tokenizer.h"
#include "figure.h"

namespace attnscope {

std::string axis_label(const std::string& token) { return escape_controls(token, 24); }

std::string check_figure_path(const std::string& path) {
  namespace fs = std::filesystem;
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  if (ext != ".png" && ext != ".svg" && ext != ".pdf")
    throw Error("-o " + path + ": expected a file ending in .png, .svg or .pdf, found '" +
                (ext.empty() ? "no extension" : ext) + "'");
  std::error_code ec;
  fs::path parent = fs::path(path).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec))
    throw Error("-o " + path + ": cannot write, folder '" + parent.string() + "' does not exist");
  {
    const bool existed = fs::exists(path, ec);
    std::ofstream probe(path, std::ios::app);
    if (!probe) throw Error("-o " + path + ": cannot write (permission denied or not a file)");
    probe.close();
    if (!existed) fs::remove(path, ec);
  }
  return ext;
}

namespace {

std::vector<double> nice_ticks(double lo, double hi, int* decimals) {
  double range = hi - lo, raw = range / 5.0, mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  *decimals = std::max(0, int(-std::floor(std::log10(step) + 1e-9)) + (std::fabs(step / mag - 2.5) < 1e-9 ? 1 : 0));
  std::vector<double> t;
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step)
    t.push_back(std::fabs(v) < step * 1e-9 ? 0 : v);
  return t;
}

// Every `step`-th label of n, chosen so labels of height h fit cells of size cell.
int64_t label_step(double cell, double h) { return std::max<int64_t>(1, int64_t(std::ceil(h * 1.15 / cell))); }

void draw(cairo_t* cr, const Matrix& m, const HeatmapOptions& o, bool vector) {
  const double f = o.dpi / 72.0;  // px per pt
  const double W = o.width_in * o.dpi, H = o.height_in * o.dpi, pad = 0.12 * o.dpi;
  const Colormap& cmap = colormap(o.cmap);
  Painter p(cr, f);

  double vmin = o.vmin.value_or(0), vmax = o.vmax.value_or(0);
  if (!o.vmin || !o.vmax) {
    float lo = INFINITY, hi = -INFINITY;
    for (float v : m.values)
      if (std::isfinite(v)) {
        lo = std::min(lo, v);
        hi = std::max(hi, v);
      }
    if (!std::isfinite(lo)) {
      lo = 0;
      hi = 1;
    }
    if (o.centered) {
      hi = std::max(std::fabs(lo), std::fabs(hi));
      lo = -hi;
    }
    if (!o.vmin) vmin = lo;
    if (!o.vmax) vmax = hi;
  }
  if (vmax <= vmin) {
    double d = std::max(std::fabs(vmin) * 0.05, 0.05);
    vmin -= d;
    vmax += d;
  }

  // White background.
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_paint(cr);
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);

  const double title_pt = 12, label_pt = 10, max_tick_pt = 10, min_tick_pt = 5, tick_len = 3.5 * f;
  std::vector<std::string> rl, cl;
  for (const auto& s : m.row_labels) rl.push_back(axis_label(s));
  for (const auto& s : m.col_labels) cl.push_back(axis_label(s));

  // Colour bar geometry and its tick labels.
  int dec = 2;
  std::vector<double> ticks = nice_ticks(vmin, vmax, &dec);
  auto fmt = [&](double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.*f", dec, v);
    return std::string(b);
  };
  double cb_label_w = 0;
  for (double t : ticks) cb_label_w = std::max(cb_label_w, p.width(fmt(t), label_pt));
  const double cb_w = 0.22 * o.dpi, cb_gap = 0.25 * o.dpi;
  const double right = pad + cb_label_w + tick_len + 2 * f + cb_w + cb_gap;
  const double top = pad + (o.title.empty() ? 0 : p.height(title_pt) + pad);

  // Guess the tick font, measure labels, place the grid, refine. Key labels lie flat when every
  // one fits its column (as seaborn does), else they are turned upright.
  double tick_pt = max_tick_pt, left = 0, bottom = 0, gx = 0, gy = 0, gw = 0, gh = 0;
  int64_t rstep = 1, cstep = 1;
  bool x_flat = false;
  for (int pass = 0; pass < 3; ++pass) {
    double rw = 0, cw = 0;
    for (int64_t i = 0; i < m.rows; i += rstep) rw = std::max(rw, p.width(rl[size_t(i)], tick_pt));
    for (int64_t j = 0; j < m.cols; j += cstep) cw = std::max(cw, p.width(cl[size_t(j)], tick_pt));
    const double lh = o.y_label.empty() ? 0 : p.height(label_pt) + pad * 0.5;
    const double bh = o.x_label.empty() ? 0 : p.height(label_pt) + pad * 0.5;
    left = pad + lh + rw + tick_len + 2 * f;
    bottom = pad + bh + (x_flat ? p.height(tick_pt) : cw) + tick_len + 2 * f;
    gx = left;
    gy = top;
    gw = std::max(10.0, W - left - right);
    gh = std::max(10.0, H - top - bottom);
    const double cell = std::min(gw / double(m.cols), gh / double(m.rows));
    tick_pt = std::clamp(cell / f / 1.3, min_tick_pt, max_tick_pt);
    rstep = label_step(gh / double(m.rows), p.height(tick_pt));
    cstep = label_step(gw / double(m.cols), p.height(tick_pt));
    double cw_now = 0;
    for (int64_t j = 0; j < m.cols; ++j) cw_now = std::max(cw_now, p.width(cl[size_t(j)], tick_pt));
    x_flat = cstep == 1 && cw_now <= 0.92 * gw / double(m.cols);
  }
  const double cw = gw / double(m.cols), ch = gh / double(m.rows);

  // Cells: rectangles in vector output for small matrices, else one nearest-neighbour image.
  if (vector && m.rows * m.cols <= 160 * 160) {
    for (int64_t i = 0; i < m.rows; ++i)
      for (int64_t j = 0; j < m.cols; ++j) {
        // NaN cells are blank (white): "no value", e.g. above a table's diagonal.
        Rgb c = std::isfinite(m.at(i, j)) ? cmap.at((m.at(i, j) - vmin) / (vmax - vmin)) : Rgb{255, 255, 255};
        cairo_set_source_rgb(cr, c.r / 255.0, c.g / 255.0, c.b / 255.0);
        cairo_rectangle(cr, gx + double(j) * cw, gy + double(i) * ch, cw + (j + 1 < m.cols ? 0.3 : 0),
                        ch + (i + 1 < m.rows ? 0.3 : 0));
        cairo_fill(cr);
      }
  } else {
    cairo_surface_t* img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, int(m.cols), int(m.rows));
    unsigned char* px = cairo_image_surface_get_data(img);
    const int stride = cairo_image_surface_get_stride(img);
    for (int64_t i = 0; i < m.rows; ++i) {
      auto* row = reinterpret_cast<uint32_t*>(px + i * stride);
      for (int64_t j = 0; j < m.cols; ++j) {
        Rgb c = std::isfinite(m.at(i, j)) ? cmap.at((m.at(i, j) - vmin) / (vmax - vmin)) : Rgb{255, 255, 255};
        row[j] = (uint32_t(c.r) << 16) | (uint32_t(c.g) << 8) | c.b;
      }
    }
    cairo_surface_mark_dirty(img);
    cairo_save(cr);
    cairo_translate(cr, gx, gy);
    cairo_scale(cr, cw, ch);
    cairo_set_source_surface(cr, img, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_rectangle(cr, 0, 0, double(m.cols), double(m.rows));
    cairo_fill(cr);
    cairo_restore(cr);
    cairo_surface_destroy(img);
  }

  if (o.annotate) {
    const double ref = p.width("0.0000", 10);
    const double apt = std::min({10.0, 10.0 * cw * 0.88 / ref, ch * 0.7 / f});
    for (int64_t i = 0; i < m.rows; ++i)
      for (int64_t j = 0; j < m.cols; ++j) {
        if (!std::isfinite(m.at(i, j))) continue;
        Rgb c = cmap.at((m.at(i, j) - vmin) / (vmax - vmin));
        if (luminance(c) > 0.408)
          cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
        else
          cairo_set_source_rgb(cr, 1, 1, 1);
        char b[32];
        std::snprintf(b, sizeof b, "%.4f", double(m.at(i, j)));
        p.draw(b, apt, gx + (double(j) + 0.5) * cw, gy + (double(i) + 0.5) * ch, 0.5, 0.5);
      }
  }

  // Ticks and token labels.
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  cairo_set_line_width(cr, 0.8 * f);
  for (int64_t i = 0; i < m.rows; i += rstep) {
    const double y = gy + (double(i) + 0.5) * ch;
    cairo_move_to(cr, gx, y);
    cairo_line_to(cr, gx - tick_len, y);
    cairo_stroke(cr);
    p.draw(rl[size_t(i)], tick_pt, gx - tick_len - 2 * f, y, 1.0, 0.5);
  }
  for (int64_t j = 0; j < m.cols; j += cstep) {
    const double x = gx + (double(j) + 0.5) * cw;
    cairo_move_to(cr, x, gy + gh);
    cairo_line_to(cr, x, gy + gh + tick_len);
    cairo_stroke(cr);
    if (x_flat)
      p.draw(cl[size_t(j)], tick_pt, x, gy + gh + tick_len + 1 * f, 0.5, 0.0);
    else
      p.draw(cl[size_t(j)], tick_pt, x, gy + gh + tick_len + 2 * f, 1.0, 0.5, -M_PI / 2);
  }
  if (!o.x_label.empty()) p.draw(o.x_label, label_pt, gx + gw / 2, H - pad, 0.5, 1.0);
  if (!o.y_label.empty()) p.draw(o.y_label, label_pt, pad, gy + gh / 2, 0.5, 0.0, -M_PI / 2);
  if (!o.title.empty()) p.draw(o.title, title_pt, gx + gw / 2, pad, 0.5, 0.0);

  // Colour bar.
  const double bx = gx + gw + cb_gap, by = gy, bh = gh;
  cairo_pattern_t* grad = cairo_pattern_create_linear(0, by + bh, 0, by);
  for (int k = 0; k < 256; ++k) {
    Rgb c = cmap.lut[size_t(k)];
    cairo_pattern_add_color_stop_rgb(grad, k / 255.0, c.r / 255.0, c.g / 255.0, c.b / 255.0);
  }
  cairo_rectangle(cr, bx, by, cb_w, bh);
  cairo_set_source(cr, grad);
  cairo_fill(cr);
  cairo_pattern_destroy(grad);
  cairo_set_source_rgb(cr, 0.15, 0.15, 0.15);
  for (double t : ticks) {
    const double y = by + bh - (t - vmin) / (vmax - vmin) * bh;
    cairo_move_to(cr, bx + cb_w, y);
    cairo_line_to(cr, bx + cb_w + tick_len, y);
    cairo_stroke(cr);
    p.draw(fmt(t), label_pt, bx + cb_w + tick_len + 2 * f, y, 0.0, 0.5);
  }
}

}  // namespace

void render_heatmap(const Matrix& m, const HeatmapOptions& o, const std::string& path) {
  if (m.rows <= 0 || m.cols <= 0 || m.values.size() != size_t(m.rows * m.cols) ||
      m.row_labels.size() != size_t(m.rows) || m.col_labels.size() != size_t(m.cols))
    throw Error("heatmap: expected a non-empty matrix with one label per row and column");
  if (!(o.dpi > 0) || !(o.width_in > 0) || !(o.height_in > 0) || o.width_in * o.dpi > 32000 ||
      o.height_in * o.dpi > 32000) {
    char found[96];
    std::snprintf(found, sizeof found, "%gx%g in at %g dpi", o.width_in, o.height_in, o.dpi);
    throw Error(std::string("--size/--dpi: expected a positive figure size of at most 32000 px per side, found ") +
                found);
  }
  colormap(o.cmap);  // unknown names fail before any file is touched
  write_figure(path, o.width_in, o.height_in, o.dpi, [&](cairo_t* cr, bool vector) { draw(cr, m, o, vector); });
}

}  // namespace attnscope
