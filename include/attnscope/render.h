// Figures for papers: colormaps and the attention heatmap (cairo + pango), PNG/SVG/PDF by
// the output file's extension.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace attnscope {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

struct Colormap {
  std::string name;
  std::array<Rgb, 256> lut;
  Rgb at(double t) const;  // t in [0, 1], clamped
};

// viridis, magma, inferno, plasma, cividis, gray, coolwarm (diverging), rdbu_r (diverging).
const Colormap& colormap(const std::string& name);  // throws Error listing the names
std::vector<std::string> colormap_names();

// A labelled matrix: values[r * cols + c].
struct Matrix {
  int64_t rows = 0, cols = 0;
  std::vector<float> values;
  std::vector<std::string> row_labels, col_labels;
  float at(int64_t r, int64_t c) const { return values[size_t(r * cols + c)]; }
};

struct HeatmapOptions {
  std::string title = "Attention Heatmap";
  std::string x_label = "Input Tokens";   // keys
  std::string y_label = "Output Tokens";  // queries
  std::string cmap = "viridis";
  bool annotate = false;  // values in the cells, 4 decimals
  double width_in = 10, height_in = 8, dpi = 100;
  std::optional<double> vmin, vmax;  // default: the data's range
  bool centered = false;             // diverging: symmetric range around 0
};

// Writes a PNG, SVG or PDF (by extension). Throws Error for an unknown extension or an
// output path that cannot be written.
void render_heatmap(const Matrix& m, const HeatmapOptions& opts, const std::string& path);

struct OverlayOptions {
  std::string title;
  std::string cmap = "inferno";
  double alpha = 0.6;  // opacity of the attention layer
  double width_in = 8, height_in = 4.4, dpi = 100;
};

// An image and, beside it, the same image under a grid x grid attention map (bilinearly
// upsampled, scaled to its maximum), with a colour bar. rgb: width*height*3 bytes.
void render_image_attention(const uint8_t* rgb, int width, int height, int64_t grid, const std::vector<float>& map,
                            const OverlayOptions& opts, const std::string& path);

// Tokens as text, each on a box coloured by its score (Captum's text view): scores in [-1, 1]
// (signed: negative red, positive green) or [0, 1] (unsigned: white to green). Tokens wrap into
// lines of width_in; the figure's height follows. `highlight` outlines one token (the position
// being explained).
struct TokenScoresOptions {
  std::string title;
  std::string legend;  // under the tokens, e.g. how the scores were scaled
  bool signed_scores = false;
  int64_t highlight = -1;
  double width_in = 10, dpi = 100;
};
void render_token_scores(const std::vector<std::string>& tokens, const std::vector<float>& scores,
                         const TokenScoresOptions& opts, const std::string& path);

// Captum's robust scaling: t = the |value| at which the cumulative sum of the sorted |values|
// reaches `share` of their total; returns clip(v / t, -1, 1) (and t through `threshold`).
std::vector<float> robust_scale(const std::vector<double>& values, double share = 0.98, double* threshold = nullptr);

// How a token string is shown on an axis: control characters escaped, long ones cut.
std::string axis_label(const std::string& token);

// Checks that path ends in .png, .svg or .pdf and can be created; returns the extension.
std::string check_figure_path(const std::string& path);

}  // namespace attnscope
