#include "attnscope/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "attnscope/error.h"

namespace attnscope {

using json = nlohmann::json;

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F64:
      return "F64";
    case DType::F32:
      return "F32";
    case DType::F16:
      return "F16";
    case DType::BF16:
      return "BF16";
    case DType::I64:
      return "I64";
    case DType::I32:
      return "I32";
    case DType::I16:
      return "I16";
    case DType::I8:
      return "I8";
    case DType::U8:
      return "U8";
    case DType::BOOL:
      return "BOOL";
  }
  return "?";
}

size_t dtype_size(DType d) {
  switch (d) {
    case DType::F64:
    case DType::I64:
      return 8;
    case DType::F32:
    case DType::I32:
      return 4;
    case DType::F16:
    case DType::BF16:
    case DType::I16:
      return 2;
    case DType::I8:
    case DType::U8:
    case DType::BOOL:
      return 1;
  }
  return 0;
}

bool is_float(DType d) { return d == DType::F64 || d == DType::F32 || d == DType::F16 || d == DType::BF16; }

static bool parse_dtype(const std::string& s, DType* out) {
  static const std::pair<const char*, DType> table[] = {
      {"F64", DType::F64}, {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"I64", DType::I64},
      {"I32", DType::I32}, {"I16", DType::I16}, {"I8", DType::I8},   {"U8", DType::U8},     {"BOOL", DType::BOOL}};
  for (auto& [name, d] : table)
    if (s == name) {
      *out = d;
      return true;
    }
  return false;
}

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

float f16_to_f32(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal half: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400)) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3ff;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0);  // inf/nan
  if (absx >= 0x477ff000u) return sign | 0x7c00u;                                      // overflow to inf (>= 65520)
  if (absx < 0x38800000u) {                                                            // subnormal half or zero
    if (absx < 0x33000000u) return sign;                                               // < 2^-25 rounds to zero
    uint32_t e = absx >> 23, m = (absx & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e;  // 14 + (112 - e) + 1 ... maps to half subnormal
    uint32_t half = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1), mid = 1u << (shift - 1);
    if (rem > mid || (rem == mid && (half & 1))) ++half;
    return sign | half;
  }
  uint32_t h = ((absx - 0x38000000u) >> 13);
  uint32_t rem = absx & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;
  return sign | h;
}

float bf16_to_f32(uint16_t h) {
  uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t f32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffffu) > 0x7f800000u) return uint16_t((x >> 16) | 0x40);  // quiet nan
  x += 0x7fff + ((x >> 16) & 1);
  return uint16_t(x >> 16);
}

namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw Error(path + ": invalid safetensors file: " + what);
}

bool mul_overflow(uint64_t a, uint64_t b, uint64_t* out) { return __builtin_mul_overflow(a, b, out); }

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error(path + ": cannot open safetensors file: " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": expected a regular safetensors file, found something else");
  }
  size_ = size_t(st.st_size);
  if (size_ < 8) {
    ::close(fd);
    fail(path, "expected at least 8 bytes (header size), found " + std::to_string(size_));
  }
  void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) throw Error(path + ": cannot map file: " + std::strerror(errno));
  base_ = static_cast<const uint8_t*>(p);
  try {
    uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | base_[i];
    if (n > 100000000ull) fail(path, "header size " + std::to_string(n) + " exceeds the 100000000-byte limit");
    if (n > size_ - 8)
      fail(path, "header size " + std::to_string(n) + " exceeds the file size " + std::to_string(size_) + " - 8");
    data_start_ = 8 + size_t(n);
    std::string header(reinterpret_cast<const char*>(base_ + 8), size_t(n));
    if (header.empty() || header[0] != '{') fail(path, "expected the header to start with '{'");
    // Detect duplicate top-level names while parsing (a JSON object keeps only the last).
    std::set<std::string> seen;
    std::string duplicate;
    json::parser_callback_t cb = [&](int depth, json::parse_event_t ev, json& parsed) {
      if (ev == json::parse_event_t::key && depth == 1) {
        std::string k = parsed.get<std::string>();
        if (!seen.insert(k).second && duplicate.empty()) duplicate = k;
      }
      return true;
    };
    json h;
    try {
      h = json::parse(header, cb);
    } catch (const json::exception& e) {
      fail(path, std::string("header is not valid JSON (") + e.what() + ")");
    }
    if (!duplicate.empty()) fail(path, "tensor name '" + duplicate + "' appears twice in the header");
    if (!h.is_object()) fail(path, "expected the header to be a JSON object");
    std::vector<const TensorInfo*> order;
    for (auto& [name, v] : h.items()) {
      if (name == "__metadata__") {
        if (!v.is_object()) fail(path, "__metadata__ must be an object of strings");
        for (auto& [k, mv] : v.items()) {
          if (!mv.is_string()) fail(path, "__metadata__['" + k + "'] must be a string, found " + mv.type_name());
          metadata_[k] = mv.get<std::string>();
        }
        continue;
      }
      const std::string where = "tensor '" + name + "': ";
      if (!v.is_object()) fail(path, where + "expected an object with dtype, shape, data_offsets");
      TensorInfo t;
      t.name = name;
      if (!v.contains("dtype") || !v["dtype"].is_string()) fail(path, where + "missing string 'dtype'");
      if (!parse_dtype(v["dtype"].get<std::string>(), &t.dtype))
        fail(path, where + "unknown dtype '" + v["dtype"].get<std::string>() + "'");
      if (!v.contains("shape") || !v["shape"].is_array()) fail(path, where + "missing array 'shape'");
      uint64_t numel = 1;
      for (auto& d : v["shape"]) {
        if (!d.is_number_unsigned()) fail(path, where + "shape entries must be non-negative integers");
        uint64_t dim = d.get<uint64_t>();
        if (dim > uint64_t(INT64_MAX) || mul_overflow(numel, dim, &numel))
          fail(path, where + "shape " + v["shape"].dump() + " overflows");
        t.shape.push_back(int64_t(dim));
      }
      if (!v.contains("data_offsets") || !v["data_offsets"].is_array() || v["data_offsets"].size() != 2 ||
          !v["data_offsets"][0].is_number_unsigned() || !v["data_offsets"][1].is_number_unsigned())
        fail(path, where + "expected 'data_offsets' [begin, end] of non-negative integers");
      t.begin = v["data_offsets"][0].get<uint64_t>();
      t.end = v["data_offsets"][1].get<uint64_t>();
      if (t.end < t.begin)
        fail(path, where + "data_offsets end " + std::to_string(t.end) + " < begin " + std::to_string(t.begin));
      uint64_t nbytes;
      if (mul_overflow(numel, dtype_size(t.dtype), &nbytes))
        fail(path, where + "byte size of shape " + v["shape"].dump() + " overflows");
      if (t.end - t.begin != nbytes)
        fail(path, where + "expected " + std::to_string(nbytes) + " bytes for " + dtype_name(t.dtype) + " " +
                       shape_str(t.shape) + ", data_offsets span " + std::to_string(t.end - t.begin));
      tensors_.emplace(name, std::move(t));
    }
    for (auto& [name, t] : tensors_) order.push_back(&t);
    std::sort(order.begin(), order.end(), [](const TensorInfo* a, const TensorInfo* b) {
      return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    uint64_t pos = 0;
    for (const TensorInfo* t : order) {
      if (t->begin != pos)
        fail(path, "tensor '" + t->name + "' starts at byte " + std::to_string(t->begin) + ", expected " +
                       std::to_string(pos) + (t->begin > pos ? " (hole in the data buffer)" : " (overlap)"));
      pos = t->end;
    }
    if (uint64_t(data_start_) + pos != size_)
      fail(path, "expected file size 8 + " + std::to_string(n) + " + " + std::to_string(pos) + " = " +
                     std::to_string(uint64_t(data_start_) + pos) + ", found " + std::to_string(size_));
  } catch (...) {
    munmap(const_cast<uint8_t*>(base_), size_);
    base_ = nullptr;
    throw;
  }
}

SafetensorsFile::~SafetensorsFile() {
  if (base_) munmap(const_cast<uint8_t*>(base_), size_);
}

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw Error(path_ + ": missing tensor '" + name + "'");
  return it->second;
}

std::vector<float> SafetensorsFile::to_f32(const std::string& name) const {
  std::vector<float> out(size_t(info(name).numel()));
  to_f32(name, out.data());
  return out;
}

void SafetensorsFile::to_f32(const std::string& name, float* out) const {
  const TensorInfo& t = info(name);
  const uint8_t* src = bytes(t);
  const size_t n = size_t(t.numel());
  switch (t.dtype) {
    case DType::F32:
      std::memcpy(out, src, n * 4);
      break;
    case DType::F64:
      for (size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, src + 8 * i, 8);
        out[i] = float(d);
      }
      break;
    case DType::F16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = f16_to_f32(h);
      }
      break;
    case DType::BF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, src + 2 * i, 2);
        out[i] = bf16_to_f32(h);
      }
      break;
    default:
      throw Error(path_ + ": tensor '" + name + "': expected a float dtype (F32, F16, BF16, F64), found " +
                  dtype_name(t.dtype));
  }
}

static TensorWrite make_write(std::string name, DType dt, std::vector<int64_t> shape) {
  TensorWrite w;
  w.name = std::move(name);
  w.dtype = dt;
  w.shape = std::move(shape);
  int64_t n = 1;
  for (auto s : w.shape) n *= s;
  w.bytes.resize(size_t(n) * dtype_size(dt));
  return w;
}

TensorWrite tensor_f32(std::string name, std::vector<int64_t> shape, const float* data) {
  TensorWrite w = make_write(std::move(name), DType::F32, std::move(shape));
  if (!w.bytes.empty()) std::memcpy(w.bytes.data(), data, w.bytes.size());
  return w;
}

template <uint16_t (*Convert)(float)>
static TensorWrite tensor_half(std::string name, DType dt, std::vector<int64_t> shape, const float* data) {
  TensorWrite w = make_write(std::move(name), dt, std::move(shape));
  for (size_t i = 0; i < w.bytes.size() / 2; ++i) {
    uint16_t h = Convert(data[i]);
    std::memcpy(w.bytes.data() + 2 * i, &h, 2);
  }
  return w;
}

TensorWrite tensor_f16(std::string name, std::vector<int64_t> shape, const float* data) {
  return tensor_half<f32_to_f16>(std::move(name), DType::F16, std::move(shape), data);
}

TensorWrite tensor_bf16(std::string name, std::vector<int64_t> shape, const float* data) {
  return tensor_half<f32_to_bf16>(std::move(name), DType::BF16, std::move(shape), data);
}

TensorWrite tensor_i64(std::string name, std::vector<int64_t> shape, const int64_t* data) {
  TensorWrite w = make_write(std::move(name), DType::I64, std::move(shape));
  if (!w.bytes.empty()) std::memcpy(w.bytes.data(), data, w.bytes.size());
  return w;
}

TensorWrite tensor_i32(std::string name, std::vector<int64_t> shape, const int32_t* data) {
  TensorWrite w = make_write(std::move(name), DType::I32, std::move(shape));
  if (!w.bytes.empty()) std::memcpy(w.bytes.data(), data, w.bytes.size());
  return w;
}

TensorWrite tensor_u8(std::string name, std::vector<int64_t> shape, const uint8_t* data) {
  TensorWrite w = make_write(std::move(name), DType::U8, std::move(shape));
  if (!w.bytes.empty()) std::memcpy(w.bytes.data(), data, w.bytes.size());
  return w;
}

void write_safetensors(const std::string& path, const std::vector<TensorWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  json h = json::object();
  if (!metadata.empty()) h["__metadata__"] = metadata;
  uint64_t pos = 0;
  for (const auto& t : tensors) {
    if (h.contains(t.name)) throw Error(path + ": cannot write tensor '" + t.name + "' twice");
    h[t.name] = {{"dtype", dtype_name(t.dtype)}, {"shape", t.shape}, {"data_offsets", {pos, pos + t.bytes.size()}}};
    pos += t.bytes.size();
  }
  std::string header = h.dump();
  while (header.size() % 8) header.push_back(' ');
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw Error(path + ": cannot open for writing: " + std::strerror(errno));
  uint64_t n = header.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = (n >> (8 * i)) & 0xff;
  f.write(reinterpret_cast<const char*>(len), 8);
  f.write(header.data(), std::streamsize(header.size()));
  for (const auto& t : tensors) f.write(reinterpret_cast<const char*>(t.bytes.data()), std::streamsize(t.bytes.size()));
  f.close();
  if (!f) throw Error(path + ": write failed: " + std::strerror(errno));
}

}  // namespace attnscope
