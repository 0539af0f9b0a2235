#include "tensor_util.h"

#include "attnscope/error.h"

namespace attnscope {

torch::Tensor load_checked(const Checkpoint& ckpt, const std::string& name, const std::vector<int64_t>& shape) {
  if (!ckpt.has(name))
    throw Error(ckpt.dir() + ": missing tensor '" + name + "' (expected shape " + shape_str(shape) + ")");
  const TensorInfo& info = ckpt.info(name);
  if (info.shape != shape)
    throw Error(ckpt.file_of(name) + ": tensor '" + name + "': expected shape " + shape_str(shape) +
                " (from config.json), found " + shape_str(info.shape));
  if (!is_float(info.dtype))
    throw Error(ckpt.file_of(name) + ": tensor '" + name + "': expected a float dtype, found " +
                dtype_name(info.dtype));
  // F32 weights are used in place from the read-only mapping: no copy, pages load on first
  // touch. An in-place write to such a tensor would fault, so code that trains makes its own
  // weights (gpt2::Weights::random). Other dtypes are converted once.
  auto file = ckpt.file_holding(name);
  const uint8_t* src = file->bytes(info);
  if (info.dtype == DType::F32 && reinterpret_cast<uintptr_t>(src) % alignof(float) == 0) {
    return torch::from_blob(
        const_cast<uint8_t*>(src), shape, [file](void*) {}, torch::kFloat32);
  }
  torch::Tensor t = torch::empty(shape, torch::kFloat32);
  ckpt.read_f32(name, t.data_ptr<float>());
  return t;
}

Array to_array(torch::Tensor t) {
  t = t.detach().to(torch::kFloat32).contiguous();
  Array a;
  a.shape = t.sizes().vec();
  auto* holder = new torch::Tensor(t);
  a.data = std::shared_ptr<const float>(holder->data_ptr<float>(), [holder](const float*) { delete holder; });
  return a;
}

}  // namespace attnscope
