#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "attnscope/array.h"
#include "attnscope/model.h"
#include "attnscope/safetensors.h"

namespace attnscope::test {

std::string data_dir();  // build/testdata (fixtures write here)
std::string source_dir();
std::string temp_dir(const std::string& name);  // fresh folder under data_dir()/tmp
void write_file(const std::string& path, const std::string& bytes);
std::string read_file(const std::string& path);
bool file_exists(const std::string& path);

// Largest |a[i] - ref[i]| (and an EXPECT that the sizes agree), for reference comparisons.
double max_abs_diff(const Array& a, const std::vector<float>& ref);
// Every layer's attention ([heads, T, T], within att_tol), q/k/v (within tol), the n_layers + 1
// hidden states and, when the file has them, the logits of a trace against a reference file
// written by tests/reference/*_reference.py.
void expect_trace_matches(const Trace& tr, const SafetensorsFile& ref, int64_t n_heads, double att_tol = 1e-5,
                          double tol = 1e-4);
// [heads, T, T] attention of a causal model: exact zeros above the diagonal, rows summing to 1.
void expect_causal(const Array& attention);
// An I64 tensor of a safetensors file (input ids, token types).
std::vector<int64_t> read_i64(const SafetensorsFile& f, const std::string& name);

struct Run {
  int code = 0;
  std::string out, err;
};
// Runs the attnscope binary with the arguments (no shell); stdin from /dev/null.
Run run_cli(const std::vector<std::string>& args);

// A small valid GPT-2 checkpoint with the real GPT-2 tokenizer files (from models/gpt2-moby).
// n_embd 8, 2 heads, 2 layers, n_positions 16, F32, "transformer." prefix.
std::string make_small_gpt2(const std::string& dir);

}  // namespace attnscope::test
