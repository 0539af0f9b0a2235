// Llama, Qwen2 and Mistral forward + capture against the independent PyTorch reference
// (tests/reference/llama_reference.py): GQA (2 kv heads for 6 query heads), head_dim != hidden/heads,
// q/k/v biases, RoPE with linear and llama3 scaling, tied/separate heads, F32/F16/BF16, sharded.
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

class LlamaReference : public ::testing::TestWithParam<std::string> {};

TEST_P(LlamaReference, AttentionQkvHiddenAndLogitsMatch) {
  const std::string dir = test::data_dir() + "/llama_reference/" + GetParam();
  Checkpoint ck(dir);
  auto model = load_model(ck);
  EXPECT_EQ(model->info().family, "llama");
  SafetensorsFile ref(dir + "/reference.safetensors");
  auto ids = test::read_i64(ref, "input_ids");
  TraceOptions o;
  o.qkv = o.hidden = o.logits = true;
  Trace tr = model->forward(ids, o);
  const int64_t T = int64_t(ids.size()), H = model->info().n_heads;
  test::expect_trace_matches(tr, ref, H);
  ASSERT_EQ(int64_t(tr.attention.size()), model->info().n_layers);
  for (size_t l = 0; l < tr.attention.size(); ++l) {
    EXPECT_EQ(tr.key[l].shape, (std::vector<int64_t>{H, T, model->info().head_dim}));  // expanded per query head
    test::expect_causal(tr.attention[l]);
  }
}

INSTANTIATE_TEST_SUITE_P(RandomCheckpoints, LlamaReference,
                         ::testing::Values("llama_gqa_headdim", "qwen2_bias_tied_bf16", "llama3_rope_scaling_f16",
                                           "mistral_linear_scaling"));

TEST(LlamaModel, ReportsGqaFacts) {
  Checkpoint ck(test::data_dir() + "/llama_reference/llama_gqa_headdim");
  auto m = load_model(ck);
  const ModelInfo& i = m->info();
  EXPECT_EQ(i.n_heads, 6);
  EXPECT_EQ(i.n_kv_heads, 2);
  EXPECT_EQ(i.head_dim, 12);
  EXPECT_FALSE(i.tied_head);
  EXPECT_EQ(i.head, "lm");
  const int64_t D = 48, Q = 72, K = 24, I = 64, V = 100;
  const int64_t layer = 2 * D + Q * D + 2 * K * D + D * Q + 3 * I * D;
  EXPECT_EQ(i.n_params, V * D + D + 2 * layer + V * D);
}

TEST(LlamaModel, BadConfigsAreNamed) {
  const std::string src = test::data_dir() + "/llama_reference/llama_gqa_headdim";
  auto with = [&](const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
    const std::string d = test::temp_dir(name);
    test::write_file(d + "/model.safetensors", test::read_file(src + "/model.safetensors"));
    auto j = nlohmann::json::parse(test::read_file(src + "/config.json"));
    edit(j);
    test::write_file(d + "/config.json", j.dump());
    return d;
  };
  auto expect = [](const std::string& dir, const std::string& what) {
    try {
      Checkpoint ck(dir);
      load_model(ck);
      FAIL() << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  expect(with("llama_kv5", [](auto& j) { j["num_key_value_heads"] = 5; }), "multiple of num_key_value_heads");
  expect(with("llama_yarn",
              [](auto& j) {
                j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
              }),
         "rope_scaling type 'yarn' is not supported");
  expect(with("llama_tied",
              [](auto& j) {
                j["tie_word_embeddings"] = true;
                j["head_dim"] = 10;
              }),
         "expected shape [60, 48] (from config.json), found [72, 48]");
}

}  // namespace
