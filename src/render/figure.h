// Private to src/render: text drawn with pango (plain text, never markup) and one way to make a
// PNG/SVG/PDF figure from a drawing function.
#pragma once
#include <cairo.h>
#include <pango/pangocairo.h>

#include <cmath>
#include <functional>
#include <memory>
#include <string>

#include "attnscope/render.h"

namespace attnscope {

struct Text {
  PangoLayout* layout;
  double w = 0, h = 0;  // logical extents in user units
};

class Painter {
 public:
  Painter(cairo_t* cr, double px_per_pt) : cr_(cr), f_(px_per_pt) {
    ctx_ = pango_cairo_create_context(cr);
    pango_cairo_context_set_resolution(ctx_, 72.0);
  }
  ~Painter() { g_object_unref(ctx_); }

  // Lays out plain text (never markup: token strings are user data).
  std::unique_ptr<PangoLayout, void (*)(void*)> layout(const std::string& s, double pt, bool bold = false) {
    PangoLayout* l = pango_layout_new(ctx_);
    PangoFontDescription* fd = pango_font_description_from_string("DejaVu Sans");
    pango_font_description_set_absolute_size(fd, pt * f_ * PANGO_SCALE);
    if (bold) pango_font_description_set_weight(fd, PANGO_WEIGHT_BOLD);
    pango_layout_set_font_description(l, fd);
    pango_font_description_free(fd);
    pango_layout_set_text(l, s.c_str(), int(s.size()));
    return {l, g_object_unref};
  }
  static void size(PangoLayout* l, double* w, double* h) {
    PangoRectangle ink, logical;
    pango_layout_get_extents(l, &ink, &logical);
    *w = double(logical.width) / PANGO_SCALE;
    *h = double(logical.height) / PANGO_SCALE;
  }
  // Draws with the anchor at (x, y); ax, ay in {0, 0.5, 1} pick left/centre/right, top/middle/bottom.
  void draw(const std::string& s, double pt, double x, double y, double ax, double ay, double angle = 0,
            bool bold = false) {
    auto l = layout(s, pt, bold);
    double w, h;
    size(l.get(), &w, &h);
    cairo_save(cr_);
    cairo_translate(cr_, x, y);
    cairo_rotate(cr_, angle);
    cairo_move_to(cr_, -ax * w, -ay * h);
    pango_cairo_update_layout(cr_, l.get());
    pango_cairo_show_layout(cr_, l.get());
    cairo_restore(cr_);
  }
  double width(const std::string& s, double pt) {
    auto l = layout(s, pt);
    double w, h;
    size(l.get(), &w, &h);
    return w;
  }
  double height(double pt) {
    auto l = layout("Ag", pt);
    double w, h;
    size(l.get(), &w, &h);
    return h;
  }

 private:
  cairo_t* cr_;
  PangoContext* ctx_;
  double f_;
};

inline double luminance(Rgb c) {
  auto lin = [](double v) {
    v /= 255.0;
    return v <= 0.03928 ? v / 12.92 : std::pow((v + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * lin(c.r) + 0.7152 * lin(c.g) + 0.0722 * lin(c.b);
}

// Creates the surface the extension asks for (PNG in pixels; SVG/PDF in points, scaled so that
// drawing code works in pixels at `dpi`), runs draw(cr, vector) and writes the file; throws Error
// naming the path when cairo fails.
void write_figure(const std::string& path, double width_in, double height_in, double dpi,
                  const std::function<void(cairo_t*, bool)>& draw);

}  // namespace attnscope
