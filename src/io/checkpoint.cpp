#include "attnscope/checkpoint.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "attnscope/error.h"

namespace attnscope {

namespace fs = std::filesystem;
using json = nlohmann::json;

Config Config::load(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw Error(path + ": cannot read config (expected a JSON file)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": expected valid JSON, found a parse error (" + e.what() + ")");
  }
  if (!j.is_object()) throw Error(path + ": expected a JSON object, found " + std::string(j.type_name()));
  return Config(path, std::move(j));
}

int64_t Config::get_int(const std::string& key) const {
  if (!has(key)) throw Error(path_ + ": missing required key '" + key + "' (an integer)");
  const auto& v = j_[key];
  if (!v.is_number_integer() || v.get<int64_t>() < 0)
    throw Error(path_ + ": key '" + key + "': expected a non-negative integer, found " + v.dump());
  return v.get<int64_t>();
}
int64_t Config::get_int(const std::string& key, int64_t fallback) const { return has(key) ? get_int(key) : fallback; }
double Config::get_double(const std::string& key) const {
  if (!has(key)) throw Error(path_ + ": missing required key '" + key + "' (a number)");
  const auto& v = j_[key];
  if (!v.is_number()) throw Error(path_ + ": key '" + key + "': expected a number, found " + v.dump());
  return v.get<double>();
}
double Config::get_double(const std::string& key, double fallback) const {
  return has(key) ? get_double(key) : fallback;
}
bool Config::get_bool(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  const auto& v = j_[key];
  if (!v.is_boolean()) throw Error(path_ + ": key '" + key + "': expected true or false, found " + v.dump());
  return v.get<bool>();
}
std::string Config::get_string(const std::string& key) const {
  if (!has(key)) throw Error(path_ + ": missing required key '" + key + "' (a string)");
  const auto& v = j_[key];
  if (!v.is_string()) throw Error(path_ + ": key '" + key + "': expected a string, found " + v.dump());
  return v.get<std::string>();
}
std::string Config::get_string(const std::string& key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

static std::string read_trimmed(const fs::path& p) {
  std::ifstream f(p);
  std::string s;
  std::getline(f, s);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

static std::vector<fs::path> hub_caches() {
  std::vector<fs::path> out;
  if (const char* c = std::getenv("HF_HUB_CACHE"); c && *c) out.emplace_back(c);
  if (const char* h = std::getenv("HF_HOME"); h && *h) out.push_back(fs::path(h) / "hub");
  if (const char* home = std::getenv("HOME"); home && *home)
    out.push_back(fs::path(home) / ".cache" / "huggingface" / "hub");
  return out;
}

std::string resolve_model_dir(const std::string& arg) {
  std::error_code ec;
  if (arg.empty()) throw Error("--model: expected a model folder or a Hugging Face repo id, found an empty string");
  if (fs::is_directory(arg, ec)) return fs::absolute(arg).lexically_normal().string();
  if (fs::exists(arg, ec)) throw Error("--model " + arg + ": expected a folder with config.json, found a file");
  // A repo id "org/name" (or "name") in the Hugging Face cache.
  const bool looks_like_id =
      arg.find("..") == std::string::npos && arg.front() != '/' && std::count(arg.begin(), arg.end(), '/') <= 1;
  std::string tried;
  if (looks_like_id) {
    std::string folder = "models--" + arg;
    for (size_t p; (p = folder.find('/')) != std::string::npos;) folder.replace(p, 1, "--");
    for (const auto& cache : hub_caches()) {
      fs::path repo = cache / folder;
      tried += (tried.empty() ? "" : ", ") + repo.string();
      if (!fs::is_directory(repo, ec)) continue;
      std::string rev = read_trimmed(repo / "refs" / "main");
      fs::path snap;
      if (!rev.empty() && fs::is_directory(repo / "snapshots" / rev, ec)) {
        snap = repo / "snapshots" / rev;
      } else if (fs::is_directory(repo / "snapshots", ec)) {  // no refs/main: a single snapshot
        for (auto& e : fs::directory_iterator(repo / "snapshots", ec))
          if (e.is_directory()) {
            snap = e.path();
            break;
          }
      }
      if (snap.empty())
        throw Error("--model " + arg + ": found " + repo.string() +
                    " in the Hugging Face cache but no snapshot (expected refs/main and snapshots/<hash>/)");
      return snap.string();
    }
  }
  throw Error("--model " + arg + ": expected a model folder or a repo id in the Hugging Face cache, found neither" +
              (tried.empty() ? std::string() : " (looked in " + tried + ")"));
}

Checkpoint::Checkpoint(const std::string& model_arg) : dir_(resolve_model_dir(model_arg)) {
  const fs::path d(dir_);
  std::error_code ec;
  if (!fs::exists(d / "config.json", ec))
    throw Error(dir_ + ": missing config.json (expected a Hugging Face model folder)");
  config_ = Config::load((d / "config.json").string());
  std::vector<std::string> weight_files;
  const fs::path index = d / "model.safetensors.index.json";
  if (fs::exists(d / "model.safetensors", ec)) {
    weight_files.push_back((d / "model.safetensors").string());
  } else if (fs::exists(index, ec)) {
    std::ifstream f(index);
    json j;
    try {
      j = nlohmann::json::parse(f);
    } catch (const nlohmann::json::exception& e) {
      throw Error(index.string() + ": expected valid JSON, found a parse error (" + e.what() + ")");
    }
    if (!j.contains("weight_map") || !j["weight_map"].is_object())
      throw Error(index.string() + ": missing object 'weight_map' (tensor name -> file)");
    std::map<std::string, std::string> wanted;  // tensor -> file
    for (auto& [name, file] : j["weight_map"].items()) {
      if (!file.is_string()) throw Error(index.string() + ": weight_map['" + name + "'] must be a file name");
      const std::string fname = file.get<std::string>();
      if (fname.find('/') != std::string::npos || fname == "..")
        throw Error(index.string() + ": weight_map['" + name + "']: expected a file name in the folder, found '" +
                    fname + "'");
      wanted[name] = fname;
      if (std::find(weight_files.begin(), weight_files.end(), (d / fname).string()) == weight_files.end())
        weight_files.push_back((d / fname).string());
    }
    for (const auto& wf : weight_files)
      if (!fs::exists(wf, ec)) throw Error(index.string() + ": names shard " + wf + ", which is missing");
    for (const auto& wf : weight_files) files_.push_back(std::make_shared<SafetensorsFile>(wf));
    for (const auto& [name, fname] : wanted) {
      const SafetensorsFile* owner = nullptr;
      for (const auto& f2 : files_)
        if (f2->path() == (d / fname).string()) owner = f2.get();
      if (!owner->has(name))
        throw Error(index.string() + ": weight_map says '" + name + "' is in " + fname +
                    ", but that file has no such tensor");
      where_[name] = owner;
    }
    return;
  } else {
    throw Error(dir_ + ": missing weights (expected model.safetensors or model.safetensors.index.json)");
  }
  for (const auto& wf : weight_files) files_.push_back(std::make_shared<SafetensorsFile>(wf));
  for (const auto& f : files_)
    for (const auto& [name, t] : f->tensors()) where_[name] = f.get();
}

const TensorInfo& Checkpoint::info(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw Error(dir_ + ": missing tensor '" + name + "'");
  return it->second->info(name);
}

std::vector<float> Checkpoint::read_f32(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw Error(dir_ + ": missing tensor '" + name + "'");
  return it->second->to_f32(name);
}

void Checkpoint::read_f32(const std::string& name, float* out) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw Error(dir_ + ": missing tensor '" + name + "'");
  it->second->to_f32(name, out);
}

const std::string& Checkpoint::file_of(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw Error(dir_ + ": missing tensor '" + name + "'");
  return it->second->path();
}

std::shared_ptr<const SafetensorsFile> Checkpoint::file_holding(const std::string& name) const {
  auto it = where_.find(name);
  if (it == where_.end()) throw Error(dir_ + ": missing tensor '" + name + "'");
  for (const auto& f : files_)
    if (f.get() == it->second) return f;
  return nullptr;
}

std::vector<std::string> Checkpoint::tensor_names() const {
  std::vector<std::string> out;
  for (const auto& [n, f] : where_) out.push_back(n);
  return out;
}

std::vector<std::string> Checkpoint::files_used() const {
  std::vector<std::string> out{config_.path()};
  for (const auto& f : files_) out.push_back(f->path());
  return out;
}

std::string default_model_dir() {
  namespace fs = std::filesystem;
  std::error_code ec;
  const char* name = "gpt2-moby";
  if (const char* env = std::getenv("ATTNSCOPE_MODELS"); env && *env) return (fs::path(env) / name).string();
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n > 0) {
    fs::path exe(std::string(buf, size_t(n)));
    for (fs::path p = exe.parent_path(); !p.empty() && p != p.root_path(); p = p.parent_path()) {
      if (fs::exists(p / "models" / name / "config.json", ec)) return (p / "models" / name).string();
      if (fs::exists(p / "share" / "attnscope" / "models" / name / "config.json", ec))
        return (p / "share" / "attnscope" / "models" / name).string();
    }
  }
#ifdef ATTNSCOPE_SOURCE_DIR
  return (fs::path(ATTNSCOPE_SOURCE_DIR) / "models" / name).string();
#else
  return (fs::path("models") / name).string();
#endif
}

}  // namespace attnscope
