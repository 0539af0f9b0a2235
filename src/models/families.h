// Constructors of each family's Model (internal); registry.cpp picks one by model_type.
#pragma once
#include <memory>

#include "attnscope/checkpoint.h"
#include "attnscope/model.h"

namespace attnscope {

std::unique_ptr<Model> make_bert_family(const Checkpoint& ckpt);   // bert, roberta, distilbert
std::unique_ptr<Model> make_llama_family(const Checkpoint& ckpt);  // llama, qwen2, mistral
std::unique_ptr<Model> make_vit(const Checkpoint& ckpt);           // vit

}  // namespace attnscope
