#include "figure.h"

#include <cairo-pdf.h>
#include <cairo-svg.h>

#include <cmath>

#include "attnscope/error.h"

namespace attnscope {

void write_figure(const std::string& path, double width_in, double height_in, double dpi,
                  const std::function<void(cairo_t*, bool)>& draw) {
  const std::string ext = check_figure_path(path);
  const double W = width_in * dpi, H = height_in * dpi;
  cairo_surface_t* s = nullptr;
  if (ext == ".png")
    s = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, int(std::lround(W)), int(std::lround(H)));
  else if (ext == ".svg")
    s = cairo_svg_surface_create(path.c_str(), width_in * 72, height_in * 72);
  else
    s = cairo_pdf_surface_create(path.c_str(), width_in * 72, height_in * 72);
  if (cairo_surface_status(s) != CAIRO_STATUS_SUCCESS) {
    std::string why = cairo_status_to_string(cairo_surface_status(s));
    cairo_surface_destroy(s);
    throw Error("-o " + path + ": cannot create the figure (" + why + ")");
  }
  cairo_t* cr = cairo_create(s);
  if (ext != ".png") cairo_scale(cr, 72.0 / dpi, 72.0 / dpi);
  draw(cr, ext != ".png");
  cairo_status_t st = cairo_status(cr);
  cairo_destroy(cr);
  if (ext == ".png" && st == CAIRO_STATUS_SUCCESS) st = cairo_surface_write_to_png(s, path.c_str());
  cairo_surface_finish(s);
  if (st == CAIRO_STATUS_SUCCESS) st = cairo_surface_status(s);
  cairo_surface_destroy(s);
  if (st != CAIRO_STATUS_SUCCESS)
    throw Error("-o " + path + ": cannot write the figure (" + cairo_status_to_string(st) + ")");
}

}  // namespace attnscope
