// BERT, RoBERTa and DistilBERT forward + capture against the independent PyTorch reference
// (tests/reference/bert_reference.py) on random checkpoints with Hugging Face names, task
// prefixes, old gamma/beta LayerNorm names, masked-LM heads and F32/F16/BF16 weights.
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

class BertReference : public ::testing::TestWithParam<std::string> {};

TEST_P(BertReference, AttentionQkvHiddenAndLogitsMatch) {
  const std::string dir = test::data_dir() + "/bert_reference/" + GetParam();
  Checkpoint ck(dir);
  auto model = load_model(ck);
  EXPECT_EQ(model->info().family, "bert");
  EXPECT_FALSE(model->info().causal);
  SafetensorsFile ref(dir + "/reference.safetensors");
  ModelInput in{test::read_i64(ref, "input_ids"), test::read_i64(ref, "token_type_ids"), {}};
  TraceOptions o;
  o.qkv = o.hidden = true;
  o.logits = ref.has("logits");
  EXPECT_EQ(model->info().head, o.logits ? "mlm" : "");
  Trace tr = model->forward(in, o);
  const int64_t T = int64_t(in.ids.size());
  test::expect_trace_matches(tr, ref, model->info().n_heads);
  ASSERT_EQ(tr.attention[0].shape[1], T);
  // Bidirectional: a query attends to keys after it.
  double after = 0;
  const Array& a0 = tr.attention[0];
  for (int64_t j = 1; j < T; ++j) after += a0.ptr()[j];
  EXPECT_GT(after, 0.1);
}

INSTANTIATE_TEST_SUITE_P(RandomCheckpoints, BertReference,
                         ::testing::Values("bert_mlm_pair", "bert_gamma_beta_f16", "roberta_mlm_bf16",
                                           "distilbert_mlm"));

TEST(BertModel, TokenTypesChangeTheResultAndAreChecked) {
  Checkpoint ck(test::data_dir() + "/bert_reference/bert_mlm_pair");
  auto m = load_model(ck);
  EXPECT_EQ(m->info().type_vocab_size, 2);
  ModelInput a{{5, 6, 7, 8}, {0, 0, 0, 0}, {}}, b{{5, 6, 7, 8}, {0, 0, 1, 1}, {}};
  Trace ta = m->forward(a, TraceOptions{}), tb = m->forward(b, TraceOptions{});
  double d = 0;
  for (int64_t i = 0; i < ta.attention[0].numel(); ++i)
    d += std::fabs(ta.attention[0].ptr()[i] - tb.attention[0].ptr()[i]);
  EXPECT_GT(d, 1e-3);
  ModelInput bad{{5, 6}, {0, 2}, {}};
  EXPECT_THROW(m->forward(bad, TraceOptions{}), Error);
  ModelInput short_types{{5, 6}, {0}, {}};
  EXPECT_THROW(m->forward(short_types, TraceOptions{}), Error);
}

TEST(BertModel, RobertaPositionsLeaveRoomForThePaddingOffset) {
  Checkpoint ck(test::data_dir() + "/bert_reference/roberta_mlm_bf16");
  auto m = load_model(ck);
  EXPECT_EQ(m->info().max_positions, 34 - 2);  // max_position_embeddings - pad_token_id - 1
  EXPECT_EQ(m->info().weight_dtype, "BF16");
  EXPECT_FALSE(m->info().tied_head);
  std::vector<int64_t> ids(33, 5);
  try {
    m->forward(ids, TraceOptions{});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("33 tokens exceed"), std::string::npos) << e.what();
  }
}

TEST(BertModel, NoHeadMeansNoPredictions) {
  Checkpoint ck(test::data_dir() + "/bert_reference/bert_gamma_beta_f16");
  auto m = load_model(ck);
  TraceOptions o;
  o.logits = true;
  try {
    m->forward({1, 2, 3}, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no masked-LM head"), std::string::npos) << e.what();
  }
}

}  // namespace
