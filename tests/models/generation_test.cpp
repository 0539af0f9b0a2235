// Generation with the key/value cache for every decoder family: the same tokens as the
// reference's greedy loop (a full forward per step, tests/reference/*_reference.py), and the
// attention row of every step equal to the full forward's row over the whole sequence.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "attnscope/checkpoint.h"
#include "attnscope/error.h"
#include "attnscope/model.h"
#include "attnscope/safetensors.h"
#include "test_util.h"

using namespace attnscope;

namespace {

double max_diff(const Array& a, const Array& b) {
  EXPECT_EQ(a.shape, b.shape);
  double m = 0;
  for (int64_t i = 0; i < std::min(a.numel(), b.numel()); ++i)
    m = std::max(m, double(std::fabs(a.ptr()[i] - b.ptr()[i])));
  return m;
}

class Generation : public ::testing::TestWithParam<std::string> {};

TEST_P(Generation, GreedyMatchesTheReferenceAndStepRowsMatchTheFullForward) {
  const std::string dir = test::data_dir() + "/" + GetParam();
  Checkpoint ck(dir);
  auto m = load_model(ck);
  SafetensorsFile ref(dir + "/reference.safetensors");
  const auto want = test::read_i64(ref, "greedy_ids");
  const std::vector<int64_t> prompt(want.begin(), want.begin() + 5);
  GenerateOptions o;
  o.max_new_tokens = 8;
  auto g = m->generate(prompt, o, nullptr);
  // The engine feeds the last token as well; the reference stops at the same token.
  EXPECT_EQ(g.ids, want);
  EXPECT_EQ(g.prompt_length, 5u);
  const int64_t T = int64_t(g.ids.size());
  Trace full = m->forward(g.ids, TraceOptions{});
  ASSERT_EQ(g.attention.size(), full.attention.size());
  for (size_t l = 0; l < full.attention.size(); ++l) {
    EXPECT_EQ(g.attention[l].shape, (std::vector<int64_t>{m->info().n_heads, T, T}));
    EXPECT_LT(max_diff(g.attention[l], full.attention[l]), 1e-5) << "layer " << l;
  }
  // Without the cache: the same tokens and rows.
  o.use_cache = false;
  auto g2 = m->generate(prompt, o, nullptr);
  EXPECT_EQ(g2.ids, g.ids);
  for (size_t l = 0; l < g.attention.size(); ++l) EXPECT_LT(max_diff(g.attention[l], g2.attention[l]), 1e-5);
}

INSTANTIATE_TEST_SUITE_P(Decoders, Generation,
                         ::testing::Values("gpt2_reference/tiny_48x3x1", "gpt2_reference/five_layers_untied",
                                           "llama_reference/llama_gqa_headdim", "llama_reference/qwen2_bias_tied_bf16",
                                           "llama_reference/llama3_rope_scaling_f16",
                                           "llama_reference/mistral_linear_scaling"),
                         [](const auto& info) {
                           std::string s = info.param;
                           return s.substr(s.find('/') + 1);
                         });

TEST(GenerationOptions, SamplingIsSeededStopsAndLimitsAreChecked) {
  Checkpoint ck(test::data_dir() + "/llama_reference/llama_gqa_headdim");
  auto m = load_model(ck);
  GenerateOptions o;
  o.max_new_tokens = 10;
  o.temperature = 1.5;
  o.top_k = 20;
  o.seed = 7;
  auto a = m->generate({3, 4, 5}, o, nullptr), b = m->generate({3, 4, 5}, o, nullptr);
  EXPECT_EQ(a.ids, b.ids);
  o.seed = 8;
  auto c = m->generate({3, 4, 5}, o, nullptr);
  o.temperature = 0;
  auto greedy = m->generate({3, 4, 5}, o, nullptr);
  EXPECT_TRUE(c.ids != a.ids || a.ids != greedy.ids);  // sampling varies with the seed or departs from greedy
  // The caller's stop: after 2 new tokens.
  auto s = m->generate({3, 4, 5}, o, [](const std::vector<int64_t>& ids) { return ids.size() >= 5; });
  EXPECT_EQ(s.ids.size(), 5u);
  EXPECT_TRUE(s.stopped_by_caller);
  o.max_new_tokens = 100;  // 3 + 100 > 64 positions
  EXPECT_THROW(m->generate({3, 4, 5}, o, nullptr), Error);
  Checkpoint bert(test::data_dir() + "/bert_reference/bert_mlm_pair");
  o.max_new_tokens = 2;
  try {
    load_model(bert)->generate({3, 4}, o, nullptr);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is an encoder"), std::string::npos) << e.what();
  }
}

}  // namespace
