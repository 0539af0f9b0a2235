// safetensors: a validating, memory-mapped reader and a writer.
// Format and validation rules: ../shared/reference/models.md (safetensors).
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace attnscope {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

const char* dtype_name(DType d);
size_t dtype_size(DType d);
bool is_float(DType d);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte offsets into the data buffer, end exclusive
  int64_t numel() const;
};

std::string shape_str(const std::vector<int64_t>& shape);  // "[3, 4]"

class SafetensorsFile {
 public:
  // Maps and validates the whole file; throws Error naming the file and the broken rule.
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;  // throws if absent
  const uint8_t* bytes(const TensorInfo& t) const { return base_ + data_start_ + t.begin; }

  // Any float dtype (F64/F32/F16/BF16) converted to float32, row-major.
  std::vector<float> to_f32(const std::string& name) const;
  void to_f32(const std::string& name, float* out) const;  // out holds numel() floats

 private:
  std::string path_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  size_t data_start_ = 0;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Writing. Tensors are laid out in the order given; data is little-endian row-major.
struct TensorWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
TensorWrite tensor_f32(std::string name, std::vector<int64_t> shape, const float* data);
TensorWrite tensor_f16(std::string name, std::vector<int64_t> shape, const float* data);
TensorWrite tensor_bf16(std::string name, std::vector<int64_t> shape, const float* data);
TensorWrite tensor_i64(std::string name, std::vector<int64_t> shape, const int64_t* data);
TensorWrite tensor_i32(std::string name, std::vector<int64_t> shape, const int32_t* data);
TensorWrite tensor_u8(std::string name, std::vector<int64_t> shape, const uint8_t* data);

void write_safetensors(const std::string& path, const std::vector<TensorWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Half-precision conversions (round to nearest even).
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);
float bf16_to_f32(uint16_t h);
uint16_t f32_to_bf16(float f);

}  // namespace attnscope
