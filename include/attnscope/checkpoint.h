// A Hugging Face model folder: config.json, safetensors weights (one file or a sharded
// index) and tokenizer files. A model argument is a folder or a repo id found in the
// Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub).
#pragma once
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "attnscope/safetensors.h"

namespace attnscope {

// config.json with errors that name the file and the key.
class Config {
 public:
  Config() = default;
  Config(std::string path, nlohmann::json j) : path_(std::move(path)), j_(std::move(j)) {}
  static Config load(const std::string& path);

  const std::string& path() const { return path_; }
  const nlohmann::json& json() const { return j_; }
  bool has(const std::string& key) const { return j_.contains(key) && !j_[key].is_null(); }
  int64_t get_int(const std::string& key) const;  // required, positive-or-zero integer
  int64_t get_int(const std::string& key, int64_t fallback) const;
  double get_double(const std::string& key, double fallback) const;
  double get_double(const std::string& key) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;

 private:
  std::string path_;
  nlohmann::json j_;
};

// Resolves a model argument to a folder. Throws Error saying where it looked.
std::string resolve_model_dir(const std::string& model_arg);

class Checkpoint {
 public:
  explicit Checkpoint(const std::string& model_arg);

  const std::string& dir() const { return dir_; }
  const Config& config() const { return config_; }
  std::string model_type() const { return config_.get_string("model_type"); }

  bool has(const std::string& name) const { return where_.count(name) != 0; }
  const TensorInfo& info(const std::string& name) const;
  std::vector<float> read_f32(const std::string& name) const;
  void read_f32(const std::string& name, float* out) const;
  std::vector<std::string> tensor_names() const;
  std::vector<std::string> files_used() const;  // config + weight files, absolute paths
  const std::string& file_of(const std::string& name) const;
  // The mapped file that holds a tensor; shared so that zero-copy views can keep it alive.
  std::shared_ptr<const SafetensorsFile> file_holding(const std::string& name) const;

 private:
  std::string dir_;
  Config config_;
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> where_;
};

// Path of the model that ships with attnscope (models/gpt2-moby), found via
// $ATTNSCOPE_MODELS, next to the executable, or in the source tree.
std::string default_model_dir();

}  // namespace attnscope
