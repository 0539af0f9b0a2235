// safetensors: every validation rule of reference/models.md, with hostile files written on
// purpose, plus dtype conversions and a write/read round trip.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "attnscope/error.h"
#include "attnscope/safetensors.h"
#include "test_util.h"

using namespace attnscope;

namespace {

std::string le64(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char((n >> (8 * i)) & 0xff);
  return s;
}

// A file from a header string and a data buffer of `data_bytes` zero bytes.
std::string file_with(const std::string& header, size_t data_bytes, const std::string& name) {
  std::string path = test::temp_dir("st_" + name) + "/x.safetensors";
  test::write_file(path, le64(header.size()) + header + std::string(data_bytes, '\0'));
  return path;
}

// Expects an Error whose one-line message names the file and contains `what`.
void expect_invalid(const std::string& path, const std::string& what) {
  try {
    SafetensorsFile f(path);
    FAIL() << "accepted " << path << ", expected an error containing '" << what << "'";
  } catch (const Error& e) {
    std::string m = e.what();
    EXPECT_NE(m.find(path), std::string::npos) << m;
    EXPECT_NE(m.find(what), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
  }
}

}  // namespace

TEST(Safetensors, RejectsFileShorterThanHeaderSize) {
  std::string p = test::temp_dir("st_short") + "/x.safetensors";
  test::write_file(p, "abc");
  expect_invalid(p, "at least 8 bytes");
}

TEST(Safetensors, RejectsHeaderSizeOverLimit) {
  std::string p = test::temp_dir("st_huge") + "/x.safetensors";
  test::write_file(p, le64(100000001ull) + "{}");
  expect_invalid(p, "100000000-byte limit");
}

TEST(Safetensors, RejectsHeaderSizeBeyondFile) {
  std::string p = test::temp_dir("st_beyond") + "/x.safetensors";
  test::write_file(p, le64(1000) + "{}");
  expect_invalid(p, "exceeds the file size");
}

TEST(Safetensors, RejectsHeaderSizeThatWouldOverflow) {
  std::string p = test::temp_dir("st_overflow") + "/x.safetensors";
  test::write_file(p, le64(~0ull) + "{}");
  expect_invalid(p, "limit");
}

TEST(Safetensors, RejectsNonJsonHeader) { expect_invalid(file_with("{not json}", 0, "nonjson"), "not valid JSON"); }

TEST(Safetensors, RejectsHeaderNotStartingWithBrace) {
  expect_invalid(file_with("[1, 2]  ", 0, "array"), "start with '{'");
}

TEST(Safetensors, RejectsDuplicateNames) {
  expect_invalid(
      file_with(
          R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
          8, "dup"),
      "appears twice");
}

TEST(Safetensors, RejectsUnknownDtype) {
  expect_invalid(file_with(R"({"a":{"dtype":"F8","shape":[1],"data_offsets":[0,1]}})", 1, "dtype"),
                 "unknown dtype 'F8'");
}

TEST(Safetensors, RejectsNegativeShape) {
  expect_invalid(file_with(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, "negshape"),
                 "non-negative");
}

TEST(Safetensors, RejectsShapeProductOverflow) {
  expect_invalid(
      file_with(R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,4]}})", 4, "shapeovf"),
      "overflows");
}

TEST(Safetensors, RejectsEndBeforeBegin) {
  expect_invalid(file_with(R"({"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}})", 4, "endbegin"), "< begin");
}

TEST(Safetensors, RejectsSizeMismatch) {
  expect_invalid(file_with(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4, "mismatch"),
                 "expected 8 bytes for F32 [2]");
}

TEST(Safetensors, RejectsHoleBetweenTensors) {
  expect_invalid(
      file_with(
          R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
          12, "hole"),
      "hole");
}

TEST(Safetensors, RejectsOverlap) {
  expect_invalid(
      file_with(
          R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
          8, "overlap"),
      "overlap");
}

TEST(Safetensors, RejectsDataNotStartingAtZero) {
  expect_invalid(file_with(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8, "notzero"), "hole");
}

TEST(Safetensors, RejectsTrailingBytes) {
  expect_invalid(file_with(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 9, "trailing"),
                 "expected file size");
}

TEST(Safetensors, RejectsTruncatedData) {
  expect_invalid(file_with(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 10, "truncated"),
                 "expected file size");
}

TEST(Safetensors, RejectsNonStringMetadata) {
  expect_invalid(file_with(R"({"__metadata__":{"k":1}})", 0, "meta"), "must be a string");
}

TEST(Safetensors, RejectsMissingOffsets) {
  expect_invalid(file_with(R"({"a":{"dtype":"F32","shape":[1]}})", 4, "nooffsets"), "data_offsets");
}

TEST(Safetensors, AcceptsEmptyTensorsScalarsAndPaddedHeader) {
  std::string h =
      R"({"e":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"s":{"dtype":"F64","shape":[],"data_offsets":[0,8]},"__metadata__":{"k":"v"}})";
  while (h.size() % 8) h += ' ';
  std::string p = test::temp_dir("st_ok") + "/x.safetensors";
  double v = 2.5;
  std::string data(8, '\0');
  std::memcpy(data.data(), &v, 8);
  test::write_file(p, le64(h.size()) + h + data);
  SafetensorsFile f(p);
  EXPECT_EQ(f.info("e").numel(), 0);
  EXPECT_EQ(f.info("s").shape.size(), 0u);
  EXPECT_EQ(f.to_f32("s")[0], 2.5f);
  EXPECT_EQ(f.metadata().at("k"), "v");
  EXPECT_THROW(f.info("missing"), Error);
}

TEST(Safetensors, RoundTripsEveryFloatDtype) {
  std::vector<float> v{0.f, 1.f, -2.5f, 3.140625f, 65504.f, 0.0009765625f, -6.1035156e-05f, 5.9604645e-08f};
  std::string p = test::temp_dir("st_roundtrip") + "/x.safetensors";
  std::vector<int64_t> ids{1, -2, 3};
  write_safetensors(p,
                    {tensor_f32("f32", {2, 4}, v.data()), tensor_f16("f16", {8}, v.data()),
                     tensor_bf16("bf16", {8}, v.data()), tensor_i64("ids", {3}, ids.data())},
                    {{"note", "x"}});
  SafetensorsFile f(p);
  EXPECT_EQ(f.to_f32("f32"), v);
  auto h = f.to_f32("f16");
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(h[i], v[i]) << i;  // all exactly representable in F16
  auto b = f.to_f32("bf16");
  for (size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(b[i], v[i], std::fabs(v[i]) * 4e-3) << i;
  EXPECT_EQ(f.info("ids").dtype, DType::I64);
  EXPECT_THROW(f.to_f32("ids"), Error);
}

TEST(Safetensors, HalfConversionRoundsToNearestEven) {
  EXPECT_EQ(f32_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(f32_to_f16(1.0f + 1.0f / 2048), 0x3c00);  // halfway: ties to even
  EXPECT_EQ(f32_to_f16(1.0f + 3.0f / 2048), 0x3c02);  // halfway: ties to even (up)
  EXPECT_EQ(f32_to_f16(70000.f), 0x7c00);             // overflow to inf
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(f16_to_f32(0x0001), 5.9604645e-08f);  // smallest subnormal
  EXPECT_EQ(f32_to_f16(5.9604645e-08f), 0x0001);
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3f80);
  EXPECT_TRUE(std::isnan(f16_to_f32(0x7e00)));
  for (uint32_t h = 0; h < 0x7c00; ++h) ASSERT_EQ(f32_to_f16(f16_to_f32(uint16_t(h))), h) << h;  // every finite half
}
