// ViT: the image pipeline (decode, PIL resize filters, rescale, normalize) and the model against
// the independent reference (tests/reference/vit_reference.py: PIL + PyTorch) on random checkpoints.
#include <gtest/gtest.h>

#include <cmath>

#include "attnscope/checkpoint.h"
#include "attnscope/error.h"
#include "attnscope/image.h"
#include "attnscope/model.h"
#include "attnscope/safetensors.h"
#include "test_util.h"

using namespace attnscope;

namespace {

std::string input_of(const std::string& dir) {
  return test::file_exists(dir + "/input.jpg") ? dir + "/input.jpg" : dir + "/input.png";
}

class VitReference : public ::testing::TestWithParam<std::string> {};

TEST_P(VitReference, PixelsAttentionHiddenAndLogitsMatch) {
  const std::string dir = test::data_dir() + "/vit_reference/" + GetParam();
  Checkpoint ck(dir);
  auto model = load_model(ck);
  const ModelInfo& info = model->info();
  EXPECT_TRUE(info.image);
  SafetensorsFile ref(dir + "/reference.safetensors");
  ImageProcessor proc = ImageProcessor::load(dir, info.image_size, info.channels);
  Array px = preprocess(load_image(input_of(dir)), proc, info.channels);
  // The same pixels as PIL + numpy (every filter, JPEG decoding by the same libjpeg).
  EXPECT_LT(test::max_abs_diff(px, ref.to_f32("pixel_values")), 1e-6);
  ModelInput in;
  in.pixels = px;
  TraceOptions o;
  o.qkv = o.hidden = true;
  o.logits = ref.has("logits");
  EXPECT_EQ(info.head, o.logits ? "classifier" : "");
  Trace tr = model->forward(in, o);
  test::expect_trace_matches(tr, ref, info.n_heads);
  ASSERT_EQ(int64_t(tr.attention.size()), info.n_layers);
  EXPECT_EQ(tr.attention[0].shape[1], info.grid() * info.grid() + 1);
  if (o.logits) EXPECT_EQ(info.labels.at(1), "class 1 \xe2\x9c\x93");
}

INSTANTIATE_TEST_SUITE_P(RandomCheckpoints, VitReference,
                         ::testing::Values("vit_cls_bilinear_jpeg", "vit_gray_bicubic_f16", "vit_nearest_rgba_bf16",
                                           "vit_lanczos_gray_png"));

TEST(Image, CorruptAndUnsupportedFilesAreNamed) {
  const std::string d = test::temp_dir("images_bad");
  auto expect = [](const std::string& path, const std::string& what) {
    try {
      load_image(path);
      FAIL() << path;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    }
  };
  test::write_file(d + "/text.png", "hello, not an image");
  expect(d + "/text.png", "expected a PNG or JPEG image, found another kind of file");
  test::write_file(d + "/empty.jpg", "");
  expect(d + "/empty.jpg", "found an empty file");
  const std::string good = test::data_dir() + "/vit_reference/vit_gray_bicubic_f16/input.png";
  std::string png = test::read_file(good);
  test::write_file(d + "/cut.png", png.substr(0, png.size() / 2));
  expect(d + "/cut.png", "expected a PNG image, found a corrupt file");
  std::string jpg = test::read_file(test::data_dir() + "/vit_reference/vit_cls_bilinear_jpeg/input.jpg");
  test::write_file(d + "/cut.jpg", jpg.substr(0, 40));
  expect(d + "/cut.jpg", "expected a JPEG image, found a corrupt file");
  expect(d + "/missing.png", "cannot read the image file");
  expect(d, "expected an image file, found a folder");
}

TEST(Image, TextIntoAVitAndPixelsIntoTextModelsAreErrors) {
  Checkpoint ck(test::data_dir() + "/vit_reference/vit_cls_bilinear_jpeg");
  auto m = load_model(ck);
  EXPECT_THROW(m->forward({1, 2, 3}, TraceOptions{}), Error);
  ModelInput wrong;
  wrong.pixels = Array::zeros({3, 16, 16});
  EXPECT_THROW(m->forward(wrong, TraceOptions{}), Error);
}

}  // namespace
