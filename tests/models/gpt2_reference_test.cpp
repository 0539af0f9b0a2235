// GPT-2 forward and capture against the independent PyTorch reference
// (tests/reference/gpt2_reference.py, F32) on random checkpoints with Hugging Face names.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "attnscope/checkpoint.h"
#include "attnscope/model.h"
#include "attnscope/safetensors.h"
#include "test_util.h"

using namespace attnscope;

namespace {

class Gpt2Reference : public ::testing::TestWithParam<std::string> {};

TEST_P(Gpt2Reference, AttentionQkvHiddenAndLogitsMatch) {
  const std::string dir = test::data_dir() + "/gpt2_reference/" + GetParam();
  Checkpoint ck(dir);
  auto model = load_model(ck);
  SafetensorsFile ref(dir + "/reference.safetensors");
  const std::vector<int64_t> ids = test::read_i64(ref, "input_ids");
  TraceOptions o;
  o.qkv = o.hidden = o.logits = true;
  Trace tr = model->forward(ids, o);
  test::expect_trace_matches(tr, ref, model->info().n_heads);
  ASSERT_EQ(int64_t(tr.attention.size()), model->info().n_layers);
  EXPECT_EQ(tr.attention[0].shape[1], int64_t(ids.size()));
  for (const Array& a : tr.attention) test::expect_causal(a);
}

INSTANTIATE_TEST_SUITE_P(RandomCheckpoints, Gpt2Reference,
                         ::testing::Values("tiny_48x3x1", "five_layers_untied", "f16_inverse_layer_idx",
                                           "bf16_sharded"));

TEST(Gpt2Model, ReportsModelFacts) {
  Checkpoint ck(test::data_dir() + "/gpt2_reference/five_layers_untied");
  auto m = load_model(ck);
  const ModelInfo& i = m->info();
  EXPECT_EQ(i.family, "gpt2");
  EXPECT_EQ(i.n_layers, 5);
  EXPECT_EQ(i.n_heads, 4);
  EXPECT_EQ(i.head_dim, 16);
  EXPECT_EQ(i.d_ff, 100);
  EXPECT_FALSE(i.tied_head);
  // wte 211*64 + wpe 40*64 + 5 blocks + ln_f + lm_head 211*64
  const int64_t D = 64, I = 100, block = 2 * D + D * 3 * D + 3 * D + D * D + D + 2 * D + D * I + I + I * D + D;
  EXPECT_EQ(i.n_params, 211 * D + 40 * D + 5 * block + 2 * D + 211 * D);
}

TEST(Gpt2Model, OnlyWhatIsAskedIsKept) {
  Checkpoint ck(test::data_dir() + "/gpt2_reference/tiny_48x3x1");
  auto m = load_model(ck);
  TraceOptions o;
  o.attention = false;
  Trace tr = m->forward({1, 2, 3}, o);
  EXPECT_TRUE(tr.attention.empty());
  EXPECT_TRUE(tr.query.empty());
  EXPECT_TRUE(tr.hidden.empty());
  EXPECT_TRUE(tr.logits.empty());
}

TEST(Gpt2Model, ChosenLayersAreKeptAndEqualTheFullRun) {
  Checkpoint ck(test::data_dir() + "/gpt2_reference/five_layers_untied");
  auto m = load_model(ck);
  const std::vector<int64_t> ids{5, 17, 3, 99, 42, 7};
  Trace all = m->forward(ids, TraceOptions{});
  TraceOptions o;
  o.layers = {3};
  o.qkv = true;
  Trace one = m->forward(ids, o);
  ASSERT_EQ(one.attention.size(), 5u);
  for (size_t l = 0; l < 5; ++l) EXPECT_EQ(one.attention[l].empty(), l != 3) << l;
  EXPECT_TRUE(one.query[0].empty());
  EXPECT_FALSE(one.query[3].empty());
  for (int64_t i = 0; i < all.attention[3].numel(); ++i)
    ASSERT_EQ(all.attention[3].ptr()[i], one.attention[3].ptr()[i]);
  o.layers = {5};
  EXPECT_THROW(m->forward(ids, o), std::exception);
}

}  // namespace
