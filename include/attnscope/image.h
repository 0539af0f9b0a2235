// Images for vision models: decoding (PNG via libpng, JPEG via libjpeg: the libraries PIL uses,
// so pixels match the Python pipeline), PIL's resize filters, and the Hugging Face image
// processor steps (preprocessor_config.json: resize, rescale, normalize).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "attnscope/array.h"

namespace attnscope {

struct Image {
  int width = 0, height = 0, channels = 0;  // channels: 1 (gray) or 3 (RGB)
  std::vector<uint8_t> data;                // row-major, channels interleaved
};

// PNG or JPEG (by content, not extension). Throws Error naming the file and the problem.
Image load_image(const std::string& path);
// PIL's convert("L") / convert("RGB").
Image convert_channels(const Image& im, int channels);
// PIL's Image.resize with resample 0 nearest, 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming.
Image resize(const Image& im, int width, int height, int resample);

struct ImageProcessor {
  bool do_resize = true, do_rescale = true, do_normalize = true;
  int height = 224, width = 224, resample = 2;
  double rescale_factor = 1.0 / 255.0;
  std::vector<float> mean{0.5f, 0.5f, 0.5f}, std{0.5f, 0.5f, 0.5f};
  std::vector<std::string> files;  // the preprocessor_config.json read, if any
  // preprocessor_config.json of a model folder; defaults (size = image_size) when absent.
  static ImageProcessor load(const std::string& model_dir, int64_t image_size, int64_t channels);
};

// The image as the model's input: [channels, height, width] float32, exactly as
// ViTImageProcessor computes it (channels converted first, like PIL's convert).
Array preprocess(const Image& im, const ImageProcessor& p, int64_t channels);

}  // namespace attnscope
