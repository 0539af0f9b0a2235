// The model that ships in models/gpt2-moby loads through the same code as any checkpoint and
// has learned attention structure (not the near-uniform maps of a random model).
#include <gtest/gtest.h>

#include "attnscope/checkpoint.h"
#include "attnscope/model.h"
#include "attnscope/tokenizer.h"
#include "test_util.h"

using namespace attnscope;

namespace {

struct HeadScores {
  double previous = 0;   // mean weight on key i-1 over queries i >= 2
  double delimiter = 0;  // mean weight on the latest "." (or the latest ",") before query i
};

// Mean weight a head puts on the latest earlier occurrence of `delim` (when that is not simply
// the previous token), over the queries that have one.
double latest_delimiter_score(const Array& a, int64_t h, const Encoding& enc, const std::string& delim) {
  const int64_t T = int64_t(enc.size());
  int64_t last = -1, n = 0;
  double sum = 0;
  for (int64_t i = 1; i < T; ++i) {
    if (enc.display[size_t(i - 1)] == delim) last = i - 1;
    if (last >= 0 && last < i - 1) {
      sum += a.ptr()[(h * T + i) * T + last];
      ++n;
    }
  }
  return n ? sum / double(n) : 0;
}

std::vector<HeadScores> scores(const Trace& tr, const Encoding& enc) {
  const int64_t T = int64_t(enc.size());
  std::vector<HeadScores> out;
  for (const Array& a : tr.attention)
    for (int64_t h = 0; h < a.shape[0]; ++h) {
      HeadScores s;
      for (int64_t i = 2; i < T; ++i) s.previous += a.ptr()[(h * T + i) * T + i - 1] / double(T - 2);
      s.delimiter = std::max(latest_delimiter_score(a, h, enc, "."), latest_delimiter_score(a, h, enc, ","));
      out.push_back(s);
    }
  return out;
}

}  // namespace

TEST(ShippedModel, HasLearnedHeads) {
  Checkpoint ck(test::source_dir() + "/models/gpt2-moby");
  auto model = load_model(ck);
  auto tok = load_tokenizer(ck.dir());
  // Not from the training text.
  const std::string text =
      "The old captain walked slowly along the harbour, counting the ships that had come home before the storm, "
      "and then he sat down. His dog, a large grey animal, lay at his feet and slept.";
  Encoding enc = tok->encode(text);
  Trace tr = model->forward(enc.ids, TraceOptions{});
  double best_prev = 0, best_delim = 0;
  for (const auto& h : scores(tr, enc)) {
    best_prev = std::max(best_prev, h.previous);
    best_delim = std::max(best_delim, h.delimiter);
  }
  // A uniform causal head puts about 1/(i+1) on any one key: ~0.06 averaged over this text.
  // A trained model has a head that follows the previous token or the latest delimiter.
  EXPECT_GT(std::max(best_prev, best_delim), 0.3) << "previous-token " << best_prev << ", delimiter " << best_delim;
  RecordProperty("best_previous_token_score", std::to_string(best_prev));
  RecordProperty("best_delimiter_score", std::to_string(best_delim));
  std::printf("best previous-token head %.3f, best delimiter head %.3f\n", best_prev, best_delim);
}
