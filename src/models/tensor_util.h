// Small libtorch helpers shared by the model families (internal).
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "attnscope/array.h"
#include "attnscope/checkpoint.h"

namespace attnscope {

// Reads a tensor as F32 after checking its shape; the error names tensor, expected, found.
torch::Tensor load_checked(const Checkpoint& ckpt, const std::string& name, const std::vector<int64_t>& shape);

// Wraps a float tensor as an Array without copying (the Array keeps the tensor alive).
Array to_array(torch::Tensor t);

}  // namespace attnscope
