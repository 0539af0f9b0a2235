#include "test_util.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "attnscope/safetensors.h"

#ifndef ATTNSCOPE_BIN
#define ATTNSCOPE_BIN ""  // suites without the CLI
#endif

namespace attnscope::test {

namespace fs = std::filesystem;

std::string data_dir() { return ATTNSCOPE_TEST_DATA; }
std::string source_dir() { return ATTNSCOPE_SOURCE_DIR; }

std::string temp_dir(const std::string& name) {
  // Per process: ctest runs tests of one binary in parallel processes.
  fs::path p = fs::path(data_dir()) / "tmp" / (name + "." + std::to_string(getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

static std::string slurp_fd(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, size_t(n));
  return s;
}

Run run_cli(const std::vector<std::string>& args) {
  std::string out_path = fs::path(data_dir()) / ("cli_out_" + std::to_string(getpid()));
  std::string err_path = out_path + ".err";
  pid_t pid = fork();
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int o = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int e = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(in, 0);
    dup2(o, 1);
    dup2(e, 2);
    std::vector<char*> argv;
    std::string bin = ATTNSCOPE_BIN;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(bin.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  Run r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out_path);
  r.err = read_file(err_path);
  fs::remove(out_path);
  fs::remove(err_path);
  return r;
}

std::string make_small_gpt2(const std::string& dir) {
  fs::create_directories(dir);
  const int64_t V = 50257, D = 8, P = 16, L = 2, I = 32;
  nlohmann::json cfg{
      {"model_type", "gpt2"},      {"n_embd", D},     {"n_head", 2},  {"n_layer", L},
      {"n_positions", P},          {"vocab_size", V}, {"n_inner", I}, {"activation_function", "gelu_new"},
      {"layer_norm_epsilon", 1e-5}};
  write_file(dir + "/config.json", cfg.dump(2));
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 0.5f);
  std::vector<TensorWrite> t;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = nd(rng);
    t.push_back(tensor_f32("transformer." + name, shape, v.data()));
  };
  add("wte.weight", {V, D});
  add("wpe.weight", {P, D});
  for (int l = 0; l < L; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    add(p + "ln_1.weight", {D});
    add(p + "ln_1.bias", {D});
    add(p + "attn.c_attn.weight", {D, 3 * D});
    add(p + "attn.c_attn.bias", {3 * D});
    add(p + "attn.c_proj.weight", {D, D});
    add(p + "attn.c_proj.bias", {D});
    add(p + "ln_2.weight", {D});
    add(p + "ln_2.bias", {D});
    add(p + "mlp.c_fc.weight", {D, I});
    add(p + "mlp.c_fc.bias", {I});
    add(p + "mlp.c_proj.weight", {I, D});
    add(p + "mlp.c_proj.bias", {D});
  }
  add("ln_f.weight", {D});
  add("ln_f.bias", {D});
  write_safetensors(dir + "/model.safetensors", t, {{"format", "pt"}});
  for (const char* f : {"vocab.json", "merges.txt"})
    fs::copy_file(source_dir() + "/models/gpt2-moby/" + f, dir + "/" + f, fs::copy_options::overwrite_existing);
  return dir;
}

}  // namespace attnscope::test

namespace attnscope::test {
double max_abs_diff(const Array& a, const std::vector<float>& ref) {
  EXPECT_EQ(size_t(a.numel()), ref.size());
  double m = 0;
  for (size_t i = 0; i < ref.size() && i < size_t(a.numel()); ++i)
    m = std::max(m, std::fabs(double(a.ptr()[i]) - ref[i]));
  return m;
}

void expect_trace_matches(const Trace& tr, const SafetensorsFile& ref, int64_t n_heads, double att_tol, double tol) {
  const size_t L = tr.attention.size();
  ASSERT_GT(L, 0u);
  ASSERT_EQ(tr.query.size(), L);
  ASSERT_EQ(tr.hidden.size(), L + 1);
  for (size_t l = 0; l < L; ++l) {
    const std::string s = std::to_string(l);
    const Array& a = tr.attention[l];
    ASSERT_EQ(a.shape.size(), 3u);
    EXPECT_EQ(a.shape[0], n_heads);
    EXPECT_EQ(a.shape[1], a.shape[2]);
    EXPECT_LT(max_abs_diff(a, ref.to_f32("attention." + s)), att_tol) << "attention, layer " << l;
    EXPECT_LT(max_abs_diff(tr.query[l], ref.to_f32("query." + s)), tol) << "query, layer " << l;
    EXPECT_LT(max_abs_diff(tr.key[l], ref.to_f32("key." + s)), tol) << "key, layer " << l;
    EXPECT_LT(max_abs_diff(tr.value[l], ref.to_f32("value." + s)), tol) << "value, layer " << l;
  }
  for (size_t n = 0; n <= L; ++n)
    EXPECT_LT(max_abs_diff(tr.hidden[n], ref.to_f32("hidden." + std::to_string(n))), tol) << "hidden " << n;
  if (ref.has("logits")) {
    ASSERT_FALSE(tr.logits.empty());
    EXPECT_LT(max_abs_diff(tr.logits, ref.to_f32("logits")), tol);
  }
}

void expect_causal(const Array& a) {
  ASSERT_EQ(a.shape.size(), 3u);
  const int64_t T = a.shape[1];
  for (int64_t h = 0; h < a.shape[0]; ++h)
    for (int64_t i = 0; i < T; ++i) {
      double sum = 0;
      for (int64_t j = 0; j < T; ++j) {
        const float v = a.ptr()[(h * T + i) * T + j];
        if (j > i) ASSERT_EQ(v, 0.0f) << "head " << h << ", query " << i << ", key " << j;
        sum += v;
      }
      ASSERT_NEAR(sum, 1.0, 1e-5) << "head " << h << ", query " << i;
    }
}

std::vector<int64_t> read_i64(const SafetensorsFile& f, const std::string& name) {
  const TensorInfo& t = f.info(name);
  EXPECT_EQ(t.dtype, DType::I64) << name;
  std::vector<int64_t> v(size_t(t.numel()));
  std::memcpy(v.data(), f.bytes(t), v.size() * sizeof(int64_t));
  return v;
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(path, ec);
}
}  // namespace attnscope::test
