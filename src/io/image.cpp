#include "attnscope/image.h"

#include <jpeglib.h>
#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "attnscope/error.h"

namespace attnscope {

namespace {

std::vector<uint8_t> read_all(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) throw Error(path + ": expected an image file, found a folder");
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(path + ": cannot read the image file");
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

Image decode_png(const std::vector<uint8_t>& bytes, const std::string& path) {
  png_image img{};
  img.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&img, bytes.data(), bytes.size()))
    throw Error(path + ": expected a PNG image, found a corrupt file (" + img.message + ")");
  const bool gray = !(img.format & PNG_FORMAT_FLAG_COLOR);
  img.format = gray ? PNG_FORMAT_GRAY : PNG_FORMAT_RGBA;  // alpha is dropped below, as PIL's convert("RGB") does
  Image out;
  out.width = int(img.width);
  out.height = int(img.height);
  std::vector<uint8_t> buf(PNG_IMAGE_SIZE(img));
  if (!png_image_finish_read(&img, nullptr, buf.data(), 0, nullptr)) {
    std::string msg = img.message;
    png_image_free(&img);
    throw Error(path + ": expected a PNG image, found a corrupt file (" + msg + ")");
  }
  if (gray) {
    out.channels = 1;
    out.data = std::move(buf);
  } else {
    out.channels = 3;
    out.data.resize(size_t(out.width) * size_t(out.height) * 3);
    for (size_t i = 0, n = size_t(out.width) * size_t(out.height); i < n; ++i)
      for (int c = 0; c < 3; ++c) out.data[i * 3 + size_t(c)] = buf[i * 4 + size_t(c)];
  }
  return out;
}

struct JpegError {
  jpeg_error_mgr mgr;
  jmp_buf jump;
  char msg[JMSG_LENGTH_MAX];
};

Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& path) {
  jpeg_decompress_struct cinfo{};
  JpegError err{};
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = [](j_common_ptr c) {
    auto* e = reinterpret_cast<JpegError*>(c->err);
    (*c->err->format_message)(c, e->msg);
    std::longjmp(e->jump, 1);
  };
  err.mgr.output_message = [](j_common_ptr) {};  // warnings stay quiet
  Image out;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    throw Error(path + ": expected a JPEG image, found a corrupt file (" + err.msg + ")");
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&cinfo, TRUE);
  const bool gray = cinfo.jpeg_color_space == JCS_GRAYSCALE;
  cinfo.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  out.width = int(cinfo.output_width);
  out.height = int(cinfo.output_height);
  out.channels = int(cinfo.output_components);
  out.data.resize(size_t(out.width) * size_t(out.height) * size_t(out.channels));
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out.data.data() + size_t(cinfo.output_scanline) * size_t(out.width) * size_t(out.channels);
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return out;
}

// PIL's resampling filters (libImaging/Resample.c).
struct Filter {
  double support;
  double (*f)(double);
};
double box_f(double x) { return (x > -0.5 && x <= 0.5) ? 1.0 : 0.0; }
double bilinear_f(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}
double hamming_f(double x) {
  x = std::fabs(x);
  if (x == 0.0) return 1.0;
  if (x >= 1.0) return 0.0;
  x = x * M_PI;
  return std::sin(x) / x * (0.54 + 0.46 * std::cos(x));
}
double bicubic_f(double x) {
  const double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}
double sinc(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return std::sin(x) / x;
}
double lanczos_f(double x) { return (x > -3.0 && x < 3.0) ? sinc(x) * sinc(x / 3) : 0.0; }

constexpr int kPrecisionBits = 32 - 8 - 2;

// Fixed-point coefficients of one axis: for each output index, [xmin, xmin + n) of the input.
struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;  // xmin, n per output
  std::vector<int> k;       // ksize per output
};

Coeffs precompute(int in_size, int out_size, const Filter& filter) {
  const double scale = double(in_size) / double(out_size);
  const double filterscale = std::max(scale, 1.0);
  const double support = filter.support * filterscale;
  Coeffs c;
  c.ksize = int(std::ceil(support)) * 2 + 1;
  c.bounds.resize(size_t(out_size) * 2);
  c.k.assign(size_t(out_size) * size_t(c.ksize), 0);
  std::vector<double> kk(size_t(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    int xmin = int(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = int(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      double w = filter.f((x + xmin - center + 0.5) * ss);
      kk[size_t(x)] = w;
      ww += w;
    }
    for (int x = 0; x < c.ksize; ++x) {
      double w = x < xmax ? (ww != 0.0 ? kk[size_t(x)] / ww : kk[size_t(x)]) : 0.0;
      c.k[size_t(xx) * size_t(c.ksize) + size_t(x)] =
          w < 0 ? int(-0.5 + w * (1 << kPrecisionBits)) : int(0.5 + w * (1 << kPrecisionBits));
    }
    c.bounds[size_t(xx) * 2] = xmin;
    c.bounds[size_t(xx) * 2 + 1] = xmax;
  }
  return c;
}

uint8_t clip8(int64_t v) {
  if (v >= (int64_t(1) << kPrecisionBits) * 256) return 255;
  if (v <= 0) return 0;
  return uint8_t(v >> kPrecisionBits);
}

}  // namespace

Image load_image(const std::string& path) {
  std::vector<uint8_t> bytes = read_all(path);
  static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (bytes.size() >= 8 && std::equal(bytes.begin(), bytes.begin() + 8, png_sig)) return decode_png(bytes, path);
  if (bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF) return decode_jpeg(bytes, path);
  throw Error(path + ": expected a PNG or JPEG image, found " +
              (bytes.empty() ? std::string("an empty file") : std::string("another kind of file")));
}

Image convert_channels(const Image& im, int channels) {
  if (im.channels == channels) return im;
  Image out;
  out.width = im.width;
  out.height = im.height;
  out.channels = channels;
  const size_t n = size_t(im.width) * size_t(im.height);
  out.data.resize(n * size_t(channels));
  if (channels == 3 && im.channels == 1) {
    for (size_t i = 0; i < n; ++i) out.data[i * 3] = out.data[i * 3 + 1] = out.data[i * 3 + 2] = im.data[i];
  } else if (channels == 1 && im.channels == 3) {
    for (size_t i = 0; i < n; ++i)  // PIL's L = R*299/1000 + G*587/1000 + B*114/1000 in 16-bit fixed point
      out.data[i] =
          uint8_t((im.data[i * 3] * 19595 + im.data[i * 3 + 1] * 38470 + im.data[i * 3 + 2] * 7471 + 0x8000) >> 16);
  } else {
    throw Error("image: cannot convert " + std::to_string(im.channels) + " channels to " + std::to_string(channels));
  }
  return out;
}

Image resize(const Image& im, int width, int height, int resample) {
  if (width <= 0 || height <= 0)
    throw Error("image: resize to " + std::to_string(width) + "x" + std::to_string(height));
  if (width == im.width && height == im.height) return im;
  const int C = im.channels;
  Image out;
  out.width = width;
  out.height = height;
  out.channels = C;
  out.data.resize(size_t(width) * size_t(height) * size_t(C));
  if (resample == 0) {
    // Nearest, as PIL's ImagingScaleAffine: positions accumulate in double (so rounding matches),
    // and pixels that map outside the source stay 0.
    const double ax = double(im.width) / width, ay = double(im.height) / height;
    std::vector<int> xin(size_t(width), -1);
    double xo = ax * 0.5;
    for (int x = 0; x < width; ++x, xo += ax) {
      int xi = xo < 0.0 ? -1 : int(xo);
      if (xi >= 0 && xi < im.width) xin[size_t(x)] = xi;
    }
    double yo = ay * 0.5;
    for (int y = 0; y < height; ++y, yo += ay) {
      int yi = yo < 0.0 ? -1 : int(yo);
      if (yi < 0 || yi >= im.height) continue;
      for (int x = 0; x < width; ++x) {
        if (xin[size_t(x)] < 0) continue;
        for (int c = 0; c < C; ++c)
          out.data[(size_t(y) * size_t(width) + size_t(x)) * size_t(C) + size_t(c)] =
              im.data[(size_t(yi) * size_t(im.width) + size_t(xin[size_t(x)])) * size_t(C) + size_t(c)];
      }
    }
    return out;
  }
  Filter f;
  switch (resample) {
    case 1:
      f = {3.0, lanczos_f};
      break;
    case 2:
      f = {1.0, bilinear_f};
      break;
    case 3:
      f = {2.0, bicubic_f};
      break;
    case 4:
      f = {0.5, box_f};
      break;
    case 5:
      f = {1.0, hamming_f};
      break;
    default:
      throw Error("resample " + std::to_string(resample) + ": expected 0..5 (PIL's filters)");
  }
  // Horizontal pass (to an 8-bit intermediate, like PIL), then vertical.
  Image mid = im;
  if (width != im.width) {
    Coeffs h = precompute(im.width, width, f);
    mid.width = width;
    mid.data.assign(size_t(width) * size_t(im.height) * size_t(C), 0);
    for (int y = 0; y < im.height; ++y)
      for (int x = 0; x < width; ++x) {
        const int xmin = h.bounds[size_t(x) * 2], n = h.bounds[size_t(x) * 2 + 1];
        const int* k = &h.k[size_t(x) * size_t(h.ksize)];
        for (int c = 0; c < C; ++c) {
          int64_t ss = int64_t(1) << (kPrecisionBits - 1);
          for (int i = 0; i < n; ++i)
            ss += int64_t(im.data[(size_t(y) * size_t(im.width) + size_t(xmin + i)) * size_t(C) + size_t(c)]) * k[i];
          mid.data[(size_t(y) * size_t(width) + size_t(x)) * size_t(C) + size_t(c)] = clip8(ss);
        }
      }
  }
  if (height == im.height) return mid;
  Coeffs v = precompute(im.height, height, f);
  for (int y = 0; y < height; ++y) {
    const int ymin = v.bounds[size_t(y) * 2], n = v.bounds[size_t(y) * 2 + 1];
    const int* k = &v.k[size_t(y) * size_t(v.ksize)];
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < C; ++c) {
        int64_t ss = int64_t(1) << (kPrecisionBits - 1);
        for (int i = 0; i < n; ++i)
          ss += int64_t(mid.data[(size_t(ymin + i) * size_t(width) + size_t(x)) * size_t(C) + size_t(c)]) * k[i];
        out.data[(size_t(y) * size_t(width) + size_t(x)) * size_t(C) + size_t(c)] = clip8(ss);
      }
  }
  return out;
}

ImageProcessor ImageProcessor::load(const std::string& model_dir, int64_t image_size, int64_t channels) {
  ImageProcessor p;
  p.height = p.width = int(image_size);
  p.mean.assign(size_t(channels), 0.5f);
  p.std.assign(size_t(channels), 0.5f);
  const std::string path = model_dir + "/preprocessor_config.json";
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return p;
  p.files.push_back(path);
  nlohmann::json j;
  try {
    std::ifstream f(path);
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": expected valid JSON, found a parse error (" + e.what() + ")");
  }
  try {
    p.do_resize = j.value("do_resize", true);
    p.do_rescale = j.value("do_rescale", true);
    p.do_normalize = j.value("do_normalize", true);
    p.resample = j.value("resample", 2);
    p.rescale_factor = j.value("rescale_factor", 1.0 / 255.0);
    if (j.contains("size")) {
      const auto& s = j["size"];
      if (s.is_number_integer()) {
        p.height = p.width = s.get<int>();
      } else if (s.is_object() && s.contains("height") && s.contains("width")) {
        p.height = s["height"].get<int>();
        p.width = s["width"].get<int>();
      } else {
        throw Error(path + ": size: expected {\"height\": H, \"width\": W} or an integer");
      }
    }
    auto vec = [&](const char* key, std::vector<float>& out) {
      if (!j.contains(key)) return;
      out.clear();
      if (j[key].is_number())
        out.assign(size_t(channels), j[key].get<float>());
      else
        for (const auto& v : j[key]) out.push_back(v.get<float>());
      if (int64_t(out.size()) != channels)
        throw Error(path + ": " + key + ": expected " + std::to_string(channels) + " values (one per channel), found " +
                    std::to_string(out.size()));
    };
    vec("image_mean", p.mean);
    vec("image_std", p.std);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": unexpected value (" + e.what() + ")");
  }
  if (p.resample < 0 || p.resample > 5)
    throw Error(path + ": resample " + std::to_string(p.resample) + ": expected 0..5");
  if (p.do_resize && (p.height != image_size || p.width != image_size))
    throw Error(path + ": size " + std::to_string(p.height) + "x" + std::to_string(p.width) +
                " differs from the model's image_size " + std::to_string(image_size));
  return p;
}

Array preprocess(const Image& im0, const ImageProcessor& p, int64_t channels) {
  Image im = convert_channels(im0, int(channels));
  if (p.do_resize) im = resize(im, p.width, p.height, p.resample);
  const int64_t H = im.height, W = im.width, C = channels;
  auto* buf = new float[size_t(C * H * W)];
  Array a;
  a.shape = {C, H, W};
  a.data = std::shared_ptr<const float>(buf, [](const float* q) { delete[] q; });
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        // As numpy does it: rescale in float64 then to float32, normalize in float32.
        float v = float(im.data[size_t((y * W + x) * C + c)]);
        if (p.do_rescale) v = float(double(im.data[size_t((y * W + x) * C + c)]) * p.rescale_factor);
        if (p.do_normalize) v = (v - p.mean[size_t(c)]) / p.std[size_t(c)];
        buf[(c * H + y) * W + x] = v;
      }
  return a;
}

}  // namespace attnscope
