// The heatmap figure: formats, sizes, colours of the cells, labels, and bad output paths.
#include <cairo.h>
#include <gtest/gtest.h>

#include <map>

#include "attnscope/error.h"
#include "attnscope/render.h"
#include "test_util.h"

using namespace attnscope;

namespace {

Matrix matrix(int64_t n) {
  Matrix m;
  m.rows = m.cols = n;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) m.values.push_back(j <= i ? 1.0f / float(i + 1) : 0.0f);
    m.row_labels.push_back(" tok" + std::to_string(i));
  }
  m.col_labels = m.row_labels;
  return m;
}

std::map<uint32_t, int64_t> histogram(const std::string& png, int* w, int* h) {
  cairo_surface_t* s = cairo_image_surface_create_from_png(png.c_str());
  EXPECT_EQ(cairo_surface_status(s), CAIRO_STATUS_SUCCESS);
  *w = cairo_image_surface_get_width(s);
  *h = cairo_image_surface_get_height(s);
  std::map<uint32_t, int64_t> hist;
  const unsigned char* d = cairo_image_surface_get_data(s);
  for (int y = 0; y < *h; ++y)
    for (int x = 0; x < *w; ++x)
      hist[reinterpret_cast<const uint32_t*>(d + y * cairo_image_surface_get_stride(s))[x] & 0xffffff]++;
  cairo_surface_destroy(s);
  return hist;
}

uint32_t rgb(Rgb c) { return (uint32_t(c.r) << 16) | (uint32_t(c.g) << 8) | c.b; }

}  // namespace

TEST(Heatmap, PngHasRequestedSizeAndCellColours) {
  const std::string p = test::temp_dir("heat_png") + "/h.png";
  Matrix m;
  m.rows = m.cols = 2;
  m.values = {0.f, 1.f, 1.f, 0.f};
  m.row_labels = m.col_labels = {"a", "b"};
  HeatmapOptions o;
  render_heatmap(m, o, p);
  int w, h;
  auto hist = histogram(p, &w, &h);
  EXPECT_EQ(w, 1000);
  EXPECT_EQ(h, 800);
  // Two cells of the lowest and two of the highest viridis colour, each a large area.
  const Colormap& v = colormap("viridis");
  EXPECT_GT(hist[rgb(v.lut[0])], 2 * 100 * 100);
  EXPECT_GT(hist[rgb(v.lut[255])], 2 * 100 * 100);
  EXPECT_GT(hist[0xffffff], 50000);  // white background around the grid
}

TEST(Heatmap, CmapAndDpiChangeThePicture) {
  const std::string d = test::temp_dir("heat_cmap");
  Matrix m = matrix(5);
  HeatmapOptions o;
  o.cmap = "magma";
  o.dpi = 50;
  render_heatmap(m, o, d + "/m.png");
  int w, h;
  auto hist = histogram(d + "/m.png", &w, &h);
  EXPECT_EQ(w, 500);
  EXPECT_EQ(h, 400);
  EXPECT_GT(hist[rgb(colormap("magma").lut[255])], 500);  // the (0,0) cell = 1.0
  EXPECT_EQ(hist.count(rgb(colormap("viridis").lut[255])), 0u);
}

TEST(Heatmap, SvgAndPdfAreWritten) {
  const std::string d = test::temp_dir("heat_vec");
  Matrix m = matrix(6);
  HeatmapOptions o;
  o.annotate = true;
  render_heatmap(m, o, d + "/h.svg");
  render_heatmap(m, o, d + "/h.pdf");
  const std::string svg = test::read_file(d + "/h.svg");
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("width=\"720pt\""), std::string::npos);
  EXPECT_EQ(test::read_file(d + "/h.pdf").rfind("%PDF", 0), 0u);
}

TEST(Heatmap, ThousandTokensRender) {
  const std::string p = test::temp_dir("heat_1k") + "/h.png";
  render_heatmap(matrix(1024), HeatmapOptions{}, p);
  int w, h;
  auto hist = histogram(p, &w, &h);
  EXPECT_EQ(w, 1000);
  EXPECT_GT(hist.size(), 50u);
}

TEST(Heatmap, AxisLabelsEscapeControlCharactersAndCutLongTokens) {
  EXPECT_EQ(axis_label("a\nb\tc"), "a\\nb\\tc");
  EXPECT_EQ(axis_label(std::string("x\0y", 3)), "x\\x00y");
  EXPECT_EQ(axis_label("<b>bold</b>"), "<b>bold</b>");  // drawn as plain text, never markup
  const std::string cut = axis_label(std::string(100, 'w'));
  EXPECT_EQ(cut, std::string(24, 'w') + "\u2026");
}

TEST(Heatmap, BadOutputsAreErrors) {
  Matrix m = matrix(3);
  EXPECT_THROW(render_heatmap(m, HeatmapOptions{}, test::temp_dir("heat_bad") + "/h.jpg"), Error);
  EXPECT_THROW(render_heatmap(m, HeatmapOptions{}, "/nonexistent-dir/h.png"), Error);
  HeatmapOptions o;
  o.cmap = "rainbow-unicorn";
  EXPECT_THROW(render_heatmap(m, o, test::temp_dir("heat_bad2") + "/h.png"), Error);
}
