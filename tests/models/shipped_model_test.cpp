// The models that ship in models/ load through the same code as any checkpoint and have learned
// something: attention structure, next-token loss, digits (not what a random model does).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iterator>
#include <map>
#include <nlohmann/json.hpp>

#include "attnscope/checkpoint.h"
#include "attnscope/image.h"
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

TEST(ShippedModel, LlamaMobyHasLearnedHeadsPredictsAndGenerates) {
  Checkpoint ck(test::source_dir() + "/models/llama-moby");
  auto model = load_model(ck);
  const ModelInfo& i = model->info();
  EXPECT_EQ(i.family, "llama");
  EXPECT_EQ(i.n_heads, 4);
  EXPECT_EQ(i.n_kv_heads, 2);  // grouped-query attention
  auto tok = load_tokenizer(ck.dir());
  EXPECT_EQ(tok->kind(), "SentencePiece");
  const std::string text =
      "The old captain walked slowly along the harbour, counting the ships that had come home before the storm, "
      "and then he sat down. His dog, a large grey animal, lay at his feet and slept.";
  Encoding enc = tok->encode(text);
  ASSERT_EQ(enc.ids[0], 1);  // <s>, as LlamaTokenizer adds it
  TraceOptions o;
  o.logits = true;
  Trace tr = model->forward(enc.ids, o);
  double best = 0;
  for (const auto& h : scores(tr, enc)) best = std::max({best, h.previous, h.delimiter});
  EXPECT_GT(best, 0.3);
  // Next-token loss on unseen text, far below a uniform guess over the vocabulary.
  const int64_t V = tr.logits.shape[1], T = int64_t(enc.size());
  double nll = 0;
  for (int64_t t = 0; t + 1 < T; ++t) {
    const float* row = tr.logits.ptr() + t * V;
    double mx = *std::max_element(row, row + V), z = 0;
    for (int64_t v = 0; v < V; ++v) z += std::exp(double(row[v]) - mx);
    nll += -(double(row[enc.ids[size_t(t + 1)]]) - mx - std::log(z)) / double(T - 1);
  }
  EXPECT_LT(nll, std::log(double(V)) - 2.0) << "mean next-token loss " << nll;
  std::printf("llama-moby: best head %.3f, next-token loss %.3f (uniform %.3f)\n", best, nll, std::log(double(V)));
  GenerateOptions g;
  g.max_new_tokens = 12;
  auto gen = model->generate(tok->encode("Call me Ishmael.").ids, g, nullptr);
  EXPECT_GT(gen.ids.size(), tok->encode("Call me Ishmael.").ids.size());
}

TEST(ShippedModel, VitMnistReadsTheSampleDigits) {
  const std::string dir = test::source_dir() + "/models/vit-mnist";
  Checkpoint ck(dir);
  auto model = load_model(ck);
  const ModelInfo& i = model->info();
  EXPECT_EQ(i.head, "classifier");
  EXPECT_EQ(i.labels.size(), 10u);
  ImageProcessor proc = ImageProcessor::load(dir, i.image_size, i.channels);
  auto labels = nlohmann::json::parse(test::read_file(dir + "/samples/labels.json"));
  ASSERT_EQ(labels.size(), 20u);
  int right = 0;
  for (auto& [name, y] : labels.items()) {
    ModelInput in;
    in.pixels = preprocess(load_image(dir + "/samples/" + name), proc, i.channels);
    TraceOptions o;
    o.logits = true;
    o.attention = false;
    Trace tr = model->forward(in, o);
    const float* l = tr.logits.ptr();
    right += int64_t(std::max_element(l, l + 10) - l) == y.get<int64_t>();
  }
  // The held-out accuracy is in the model's README; two held-out digits of each class here.
  EXPECT_GE(right, 18) << right << "/20";
  std::printf("vit-mnist: %d/20 sample digits right\n", right);
}

// The BERT predicts masked words of text it never saw (models/bert-moby/heldout.txt: paragraphs
// from the held-out end of the book) far better than always guessing the most frequent of them.
TEST(ShippedModel, BertMobyFillsMasksInUnseenText) {
  Checkpoint ck(test::source_dir() + "/models/bert-moby");
  auto model = load_model(ck);
  const ModelInfo& i = model->info();
  EXPECT_EQ(i.family, "bert");
  EXPECT_EQ(i.head, "mlm");
  auto tok = load_tokenizer(ck.dir());
  std::ifstream f(ck.dir() + "/heldout.txt");
  const std::string text((std::istreambuf_iterator<char>(f)), {});
  const int64_t mask = *mask_token_id(*tok);
  int64_t right = 0, n = 0, seen = 0;
  std::map<int64_t, int64_t> freq;
  // Paragraph by paragraph; every other whole word (a piece that neither continues nor is
  // continued by a ## piece) masked on its own.
  for (size_t b = 0; b < text.size();) {
    size_t e = text.find("\n\n", b);
    if (e == std::string::npos) e = text.size();
    const std::string para = text.substr(b, e - b);
    b = e + 2;
    if (para.size() < 20) continue;
    Encoding enc = tok->encode(para);
    ASSERT_LE(int64_t(enc.size()), i.max_positions);
    const int64_t T = int64_t(enc.size());
    for (int64_t t = 1; t + 1 < T; ++t) {
      const auto& s = enc.tokens[size_t(t)];
      if (enc.special[size_t(t)] || s.rfind("##", 0) == 0 || enc.tokens[size_t(t + 1)].rfind("##", 0) == 0) continue;
      if (++seen % 2) continue;
      std::vector<int64_t> masked = enc.ids;
      masked[size_t(t)] = mask;
      TraceOptions o;
      o.attention = false;
      o.logits = true;
      Trace tr = model->forward(masked, o);
      const float* row = tr.logits.ptr() + t * i.vocab_size;
      right += std::max_element(row, row + i.vocab_size) - row == enc.ids[size_t(t)];
      ++freq[enc.ids[size_t(t)]];
      ++n;
    }
  }
  int64_t most = 0;
  for (auto [id, c] : freq) most = std::max(most, c);
  const double acc = double(right) / double(n), base = double(most) / double(n);
  std::printf("bert-moby: %lld masked words, accuracy %.3f, most frequent word %.3f\n", (long long)n, acc, base);
  EXPECT_GT(n, 300);
  EXPECT_GE(acc, base + 0.10);
}
