// Attention on an image: the picture, and the picture under the upsampled patch map.
#include <cairo.h>
#include <pango/pangocairo.h>

#include <algorithm>
#include <cmath>

#include "attnscope/error.h"
#include "attnscope/render.h"
#include "figure.h"

namespace attnscope {

namespace {

void text(cairo_t* cr, const std::string& s, double pt, double x, double y, double ax, double ay) {
  PangoLayout* l = pango_cairo_create_layout(cr);
  PangoFontDescription* fd = pango_font_description_from_string("DejaVu Sans");
  pango_font_description_set_absolute_size(fd, pt * PANGO_SCALE);
  pango_layout_set_font_description(l, fd);
  pango_font_description_free(fd);
  pango_layout_set_text(l, s.c_str(), int(s.size()));  // plain text, never markup
  PangoRectangle ink, logical;
  pango_layout_get_extents(l, &ink, &logical);
  cairo_move_to(cr, x - ax * logical.width / PANGO_SCALE, y - ay * logical.height / PANGO_SCALE);
  pango_cairo_show_layout(cr, l);
  g_object_unref(l);
}

// Bilinear sample of the grid map at (u, v) in [0, 1]^2, with cell centres at (i + 0.5) / g.
double sample(const std::vector<float>& m, int64_t g, double u, double v) {
  double x = std::clamp(u * double(g) - 0.5, 0.0, double(g - 1)),
         y = std::clamp(v * double(g) - 0.5, 0.0, double(g - 1));
  int64_t x0 = int64_t(x), y0 = int64_t(y), x1 = std::min(x0 + 1, g - 1), y1 = std::min(y0 + 1, g - 1);
  double fx = x - double(x0), fy = y - double(y0);
  auto at = [&](int64_t r, int64_t c) { return double(m[size_t(r * g + c)]); };
  return (at(y0, x0) * (1 - fx) + at(y0, x1) * fx) * (1 - fy) + (at(y1, x0) * (1 - fx) + at(y1, x1) * fx) * fy;
}

}  // namespace

void render_image_attention(const uint8_t* rgb, int width, int height, int64_t grid, const std::vector<float>& map,
                            const OverlayOptions& o, const std::string& path) {
  if (grid <= 0 || map.size() != size_t(grid * grid) || width <= 0 || height <= 0)
    throw Error("overlay: expected a grid x grid map and a non-empty image");
  if (!(o.alpha >= 0 && o.alpha <= 1)) throw Error("--alpha: expected a value in 0..1");
  if (!(o.dpi > 0) || !(o.width_in > 0) || !(o.height_in > 0) || o.width_in * o.dpi > 32000 ||
      o.height_in * o.dpi > 32000)
    throw Error("--size/--dpi: expected a positive figure size of at most 32000 px per side");
  const Colormap& cm = colormap(o.cmap);
  check_figure_path(path);  // before any work
  const double W = o.width_in * o.dpi, H = o.height_in * o.dpi, pt = o.dpi / 72.0;
  const double title_h = o.title.empty() ? 8 * pt : 26 * pt, pad = 10 * pt, bar_w = 14 * pt, bar_gap = 8 * pt,
               tick_w = 40 * pt;
  const double side = std::max(16.0, std::min((W - 3 * pad - bar_gap - bar_w - tick_w) / 2, H - title_h - 2 * pad));
  const int S = std::max(16, int(side));
  // The two panels as pixels: the image (nearest), and the image blended with the map.
  const float mx = *std::max_element(map.begin(), map.end());
  cairo_surface_t* img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, S, S);
  cairo_surface_t* over = cairo_image_surface_create(CAIRO_FORMAT_RGB24, S, S);
  cairo_surface_flush(img);
  cairo_surface_flush(over);
  auto* pi = cairo_image_surface_get_data(img);
  auto* po = cairo_image_surface_get_data(over);
  const int si = cairo_image_surface_get_stride(img), so = cairo_image_surface_get_stride(over);
  for (int y = 0; y < S; ++y)
    for (int x = 0; x < S; ++x) {
      const int sx = std::min(width - 1, int((x + 0.5) * width / S)),
                sy = std::min(height - 1, int((y + 0.5) * height / S));
      const uint8_t* px = rgb + (size_t(sy) * size_t(width) + size_t(sx)) * 3;
      const double t = mx > 0 ? sample(map, grid, (x + 0.5) / S, (y + 0.5) / S) / mx : 0.0;
      const Rgb c = cm.at(t);
      auto put = [](uint8_t* row, int x, double r, double g, double b) {
        uint32_t v = (uint32_t(std::lround(r)) << 16) | (uint32_t(std::lround(g)) << 8) | uint32_t(std::lround(b));
        reinterpret_cast<uint32_t*>(row)[x] = v;
      };
      put(pi + y * si, x, px[0], px[1], px[2]);
      put(po + y * so, x, (1 - o.alpha) * px[0] + o.alpha * c.r, (1 - o.alpha) * px[1] + o.alpha * c.g,
          (1 - o.alpha) * px[2] + o.alpha * c.b);
    }
  cairo_surface_mark_dirty(img);
  cairo_surface_mark_dirty(over);

  // Drawn through write_figure (PNG/SVG/PDF by extension, errors naming the path).
  auto draw = [&](cairo_t* cr, bool) {
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    if (!o.title.empty()) text(cr, o.title, 12 * pt, W / 2, 8 * pt, 0.5, 0);
    const double y0 = title_h + pad, x0 = pad, x1 = 2 * pad + S;
    for (auto [surf, x] : {std::make_pair(img, x0), std::make_pair(over, x1)}) {
      cairo_save(cr);
      cairo_set_source_surface(cr, surf, x, y0);
      cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
      cairo_paint(cr);
      cairo_restore(cr);
    }
    // Patch grid on the overlay, faint.
    cairo_set_source_rgba(cr, 1, 1, 1, 0.25);
    cairo_set_line_width(cr, std::max(0.5, 0.6 * pt));
    for (int64_t k = 1; k < grid; ++k) {
      const double d = double(k) * S / double(grid);
      cairo_move_to(cr, x1 + d, y0);
      cairo_line_to(cr, x1 + d, y0 + S);
      cairo_move_to(cr, x1, y0 + d);
      cairo_line_to(cr, x1 + S, y0 + d);
    }
    cairo_stroke(cr);
    // Colour bar: 0 .. max.
    const double bx = x1 + S + bar_gap;
    cairo_surface_t* bar = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 1, 256);
    cairo_surface_flush(bar);
    for (int i = 0; i < 256; ++i) {  // top row = the maximum
      const Rgb c = cm.lut[size_t(255 - i)];
      *reinterpret_cast<uint32_t*>(cairo_image_surface_get_data(bar) + i * cairo_image_surface_get_stride(bar)) =
          (uint32_t(c.r) << 16) | (uint32_t(c.g) << 8) | uint32_t(c.b);
    }
    cairo_surface_mark_dirty(bar);
    cairo_save(cr);
    cairo_translate(cr, bx, y0);
    cairo_scale(cr, bar_w, S / 256.0);
    cairo_set_source_surface(cr, bar, 0, 0);
    cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
    cairo_rectangle(cr, 0, 0, 1, 256);
    cairo_fill(cr);
    cairo_restore(cr);
    cairo_surface_destroy(bar);
    cairo_set_source_rgb(cr, 0.1, 0.1, 0.1);
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.3g", double(mx));
    text(cr, buf, 9 * pt, bx + bar_w + 3 * pt, y0, 0, 0);
    text(cr, "0", 9 * pt, bx + bar_w + 3 * pt, y0 + S, 0, 1);
  };
  try {
    write_figure(path, o.width_in, o.height_in, o.dpi, draw);
  } catch (...) {
    cairo_surface_destroy(img);
    cairo_surface_destroy(over);
    throw;
  }
  cairo_surface_destroy(img);
  cairo_surface_destroy(over);
}

}  // namespace attnscope
