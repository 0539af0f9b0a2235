// A read-only float array with a shape, shared between the engine and its consumers
// (renderers, exporters) without exposing libtorch in their headers. The engine makes one
// from a tensor without copying; the tensor stays alive as long as any Array refers to it.
#pragma once
#include <cstdint>
#include <memory>
#include <numeric>
#include <vector>

namespace attnscope {

struct Array {
  std::vector<int64_t> shape;         // row-major
  std::shared_ptr<const float> data;  // shape-product floats, contiguous

  int64_t numel() const { return std::accumulate(shape.begin(), shape.end(), int64_t{1}, std::multiplies<>()); }
  int64_t dim(int i) const { return shape.at(i < 0 ? shape.size() + i : i); }
  const float* ptr() const { return data.get(); }
  bool empty() const { return !data; }

  // An owning array of zeros.
  static Array zeros(std::vector<int64_t> shape) {
    Array a;
    a.shape = std::move(shape);
    std::shared_ptr<float> buf(new float[a.numel()](), std::default_delete<float[]>());
    a.data = buf;
    return a;
  }
  float* mutable_ptr() { return const_cast<float*>(data.get()); }  // only for arrays you made
};

}  // namespace attnscope
