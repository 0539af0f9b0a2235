// Gradient attributions: against an independent float64 PyTorch computation on a GPT-2 checkpoint
// (tests/reference/attribution_reference.py), against central finite differences for every family,
// and integrated gradients' completeness.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>

#include "attnscope/attribution.h"
#include "attnscope/checkpoint.h"
#include "attnscope/error.h"
#include "attnscope/model.h"
#include "test_util.h"

using namespace attnscope;

namespace {

std::unique_ptr<Model> load(const std::string& dir) { return load_model(Checkpoint(test::data_dir() + "/" + dir)); }

nlohmann::json expected() {
  std::ifstream f(test::data_dir() + "/attribution_reference/attribution_expected.json");
  return nlohmann::json::parse(f);
}

double max_abs(const nlohmann::json& a) {
  double m = 0;
  for (const auto& row : a)
    for (const auto& v : row) m = std::max(m, std::fabs(v.get<double>()));
  return m;
}

// Largest |ours - theirs| over a [T, D] attribution, relative to the largest |theirs|.
double rel_diff(const Array& ours, const nlohmann::json& theirs) {
  double d = 0;
  const int64_t D = ours.dim(1);
  for (int64_t t = 0; t < ours.dim(0); ++t)
    for (int64_t k = 0; k < D; ++k) d = std::max(d, std::fabs(ours.ptr()[t * D + k] - theirs[t][k].get<double>()));
  return d / max_abs(theirs);
}

}  // namespace

TEST(Attribution, MatchesFloat64PyTorchOnGpt2) {
  const auto e = expected();
  auto m = load("gpt2_reference/five_layers_untied");
  ModelInput in;
  in.ids = e["ids"].get<std::vector<int64_t>>();
  Target t{e["position"], e["target"], "logit"};
  AttributionOptions o;
  o.method = "saliency";
  const Attribution s = attribute(*m, in, t, Array::zeros(m->features(in).shape), o);
  EXPECT_NEAR(s.value, e["value"].get<double>(), 1e-5);
  EXPECT_LT(rel_diff(s.attr, e["saliency"]), 1e-4);
  o.method = "grad-x-input";
  EXPECT_LT(rel_diff(attribute(*m, in, t, Array::zeros(m->features(in).shape), o).attr, e["grad_x_input"]), 1e-4);
  o.method = "integrated-gradients";
  o.steps = 32;
  o.batch = 5;  // 32 path points in 7 passes with gradients, then F(x) and F(x') in one forward
  const Attribution ig = attribute(*m, in, t, Array::zeros(m->features(in).shape), o);
  EXPECT_LT(rel_diff(ig.attr, e["ig32"]), 1e-4);
  EXPECT_NEAR(ig.baseline_value, e["ig32_baseline_value"].get<double>(), 1e-5);
  EXPECT_EQ(ig.passes, 8);
  o.method = "occlusion";
  o.steps = 50;
  o.window = 2;  // 6 windows of 2 tokens, stride 1: the tokens inside get the mean drop
  o.batch = 4;
  const Attribution oc = attribute(*m, in, t, Array::zeros(m->features(in).shape), o);
  ASSERT_EQ(oc.per_unit.size(), e["occlusion_w2"].size());
  for (size_t k = 0; k < oc.per_unit.size(); ++k) EXPECT_NEAR(oc.per_unit[k], e["occlusion_w2"][k].get<double>(), 1e-4);
  EXPECT_EQ(oc.passes, 2);  // 7 inputs (x and 6 windows), 4 per pass
  o.window = 1;
  o.batch = 16;
  o.method = "grad-attention";
  for (bool sign : {false, true}) {
    o.signed_evidence = sign;
    const Attribution g = attribute(*m, in, t, Array::zeros(m->features(in).shape), o);
    const auto& want = e[sign ? "grad_attention_signed" : "grad_attention"];
    ASSERT_EQ(g.per_unit.size(), want.size());
    for (size_t k = 0; k < want.size(); ++k) EXPECT_NEAR(g.per_unit[k], want[k].get<double>(), 1e-5) << k;
  }
}

// One row per continuation token (Captum's LLM attribution with layer integrated gradients on the
// word embeddings): against the float64 PyTorch rows of attribution_reference.py.
TEST(Attribution, ContinuationRowsMatchFloat64PyTorch) {
  const auto e = expected();
  auto m = load("gpt2_reference/five_layers_untied");
  const auto prompt = e["ids"].get<std::vector<int64_t>>();
  const auto cont = e["continuation_ids"].get<std::vector<int64_t>>();
  AttributionOptions o;
  o.method = "integrated-gradients";
  o.steps = 32;
  const int64_t P = int64_t(prompt.size()), D = m->info().d_model;
  const ContinuationAttribution r = attribute_continuation(*m, prompt, cont, Array::zeros({P, D}), "logprob", o, "sum");
  ASSERT_EQ(r.rows.size(), cont.size());
  for (size_t i = 0; i < cont.size(); ++i) {
    const auto& want = e["continuation_ig32_rows"][i];
    ASSERT_EQ(r.rows[i].size(), want.size());
    double scale = 0;
    for (const auto& v : want) scale = std::max(scale, std::fabs(v.get<double>()));
    for (size_t k = 0; k < want.size(); ++k) EXPECT_NEAR(r.rows[i][k], want[k].get<double>(), 1e-4 * scale) << i;
    EXPECT_NEAR(r.values[i], e["continuation_values"][i].get<double>(), 1e-5);
  }
  EXPECT_EQ(r.passes, int64_t(cont.size()) * 3);  // per row: 32 path points in 2 passes, then F(x), F(x')
  EXPECT_THROW(attribute_continuation(*m, prompt, cont, Array::zeros({P + 1, D}), "logprob", o, "sum"), Error);
}

// <grad F, v> against (F(x + eps v) - F(x - eps v)) / (2 eps) in a random direction, per family.
TEST(Attribution, GradientsMatchCentralDifferencesForEveryFamily) {
  struct Case {
    std::string dir;
    bool image;
    int64_t position;
  };
  for (const Case& c :
       {Case{"gpt2_reference/tiny_48x3x1", false, 4}, Case{"bert_reference/bert_mlm_pair", false, 2},
        Case{"bert_reference/roberta_mlm_bf16", false, 3}, Case{"bert_reference/distilbert_mlm", false, 1},
        Case{"llama_reference/llama_gqa_headdim", false, 5}, Case{"llama_reference/qwen2_bias_tied_bf16", false, 5},
        Case{"vit_reference/vit_cls_bilinear_jpeg", true, 0}}) {
    SCOPED_TRACE(c.dir);
    auto m = load(c.dir);
    const ModelInfo& info = m->info();
    std::mt19937 rng(7);
    ModelInput in;
    if (c.image) {
      in.pixels = Array::zeros({info.channels, info.image_size, info.image_size});
      std::normal_distribution<float> g(0, 1);
      for (int64_t k = 0; k < in.pixels.numel(); ++k) in.pixels.mutable_ptr()[k] = g(rng);
    } else {
      std::uniform_int_distribution<int64_t> id(5, info.vocab_size - 1);
      for (int k = 0; k < 8; ++k) in.ids.push_back(id(rng));
    }
    const Array x = m->features(in);
    Array v = Array::zeros(x.shape), plus = Array::zeros(x.shape), minus = Array::zeros(x.shape);
    std::normal_distribution<float> g(0, 1);
    double xs = 0;
    for (int64_t k = 0; k < x.numel(); ++k) xs = std::max(xs, double(std::fabs(x.ptr()[k])));
    const double eps = 1e-2 * xs;
    for (int64_t k = 0; k < x.numel(); ++k) {
      v.mutable_ptr()[k] = g(rng);
      plus.mutable_ptr()[k] = float(x.ptr()[k] + eps * v.ptr()[k]);
      minus.mutable_ptr()[k] = float(x.ptr()[k] - eps * v.ptr()[k]);
    }
    Target t{c.position, 3, "logprob"};
    Gradients gr = m->gradients(in, {x, plus, minus}, t, {});
    double dot = 0;
    for (int64_t k = 0; k < x.numel(); ++k) dot += double(gr.grad.ptr()[k]) * v.ptr()[k];
    const double fd = (gr.value[1] - gr.value[2]) / (2 * eps);
    EXPECT_NEAR(dot, fd, 2e-2 * std::max(1.0, std::fabs(fd))) << "directional derivative";
    EXPECT_GT(std::fabs(dot), 1e-6) << "a gradient that is not zero";
  }
}

// (Not on a Llama: with a zero baseline its first RMSNorm sees x' = 0 exactly, where the path's
// gradient is a spike of height 1/sqrt(eps) — no quadrature follows it; GPT-2 and BERT add position
// embeddings, so x' is not 0 inside the model.)
TEST(Attribution, IntegratedGradientsCompletenessImprovesWithSteps) {
  auto m = load("gpt2_reference/five_layers_untied");
  ModelInput in;
  for (int k = 0; k < 9; ++k) in.ids.push_back(3 + 5 * k);
  Target t{8, 7, "logit"};
  const Array zero = Array::zeros(m->features(in).shape);
  AttributionOptions o;
  o.method = "integrated-gradients";
  double prev = 1e9;
  for (int64_t steps : {2, 8, 64}) {
    o.steps = steps;
    const Attribution r = attribute(*m, in, t, zero, o);
    double sum = 0;
    for (int64_t k = 0; k < r.attr.numel(); ++k) sum += r.attr.ptr()[k];
    EXPECT_NEAR(r.delta, sum - (r.value - r.baseline_value), 1e-6);
    EXPECT_LE(std::fabs(r.delta), prev + 1e-9) << steps;
    prev = std::fabs(r.delta);
  }
  EXPECT_LT(prev, 1e-3 * std::max(1.0, std::fabs(attribute(*m, in, t, zero, o).value)));
  // The batch size changes the passes, not the numbers.
  o.steps = 10;
  o.batch = 1;
  const Attribution a = attribute(*m, in, t, zero, o);
  o.batch = 12;
  const Attribution b = attribute(*m, in, t, zero, o);
  EXPECT_EQ(a.passes, 12);  // 10 path points, then F(x) and F(x')
  EXPECT_EQ(b.passes, 2);
  for (int64_t k = 0; k < a.attr.numel(); ++k) EXPECT_NEAR(a.attr.ptr()[k], b.attr.ptr()[k], 1e-5);
}

TEST(Attribution, IntegrationRulesIntegratePolynomials) {
  for (const char* rule : {"gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid"}) {
    std::vector<double> a, w;
    integration_points(rule, 6, &a, &w);
    double s = 0, x1 = 0;
    for (size_t k = 0; k < a.size(); ++k) s += w[k], x1 += w[k] * a[k];
    EXPECT_NEAR(s, 1, 1e-12) << rule;
    if (std::string(rule) != "riemann_left" && std::string(rule) != "riemann_right")
      EXPECT_NEAR(x1, 0.5, 1e-12) << rule;
  }
  std::vector<double> a, w;
  integration_points("gausslegendre", 5, &a, &w);  // exact up to degree 9
  double x9 = 0;
  for (size_t k = 0; k < a.size(); ++k) x9 += w[k] * std::pow(a[k], 9);
  EXPECT_NEAR(x9, 0.1, 1e-12);
  EXPECT_THROW(integration_points("simpson", 5, &a, &w), Error);
}

TEST(Attribution, ReductionsFollowTheirDefinitions) {
  Array a = Array::zeros({2, 2});
  float v[4] = {3, 4, -1, 0};
  std::copy(v, v + 4, a.mutable_ptr());
  auto l2 = reduce_attribution(a, "l2");
  EXPECT_NEAR(l2[0], 5.0 / 6, 1e-12);
  EXPECT_NEAR(l2[1], 1.0 / 6, 1e-12);
  auto sum = reduce_attribution(a, "sum");  // (7, -1) / sqrt(50)
  EXPECT_NEAR(sum[0], 7 / std::sqrt(50.0), 1e-12);
  EXPECT_NEAR(sum[1], -1 / std::sqrt(50.0), 1e-12);
  auto sg = reduce_attribution(a, "signed");  // (7, -1) / 8
  EXPECT_NEAR(sg[0], 7.0 / 8, 1e-12);
  EXPECT_NEAR(sg[1], -1.0 / 8, 1e-12);
  EXPECT_THROW(reduce_attribution(a, "max"), Error);
}

// Chefer et al. CVPR 2021 relevance against tests/reference/relevance_reference.py: a float64
// module-style implementation of the published rules (autograd relprops, as in
// Transformer-Explainability) on GPT-2, BERT, RoBERTa BF16, DistilBERT, Llama GQA + RoPE, Qwen2
// BF16 and two ViTs: the relevance and gradient at every layer's attention, and the rows.
TEST(Attribution, RelevanceMatchesFloat64ModuleStyleLrpForEveryFamily) {
  std::ifstream f(test::data_dir() + "/relevance_reference/relevance_expected.json");
  ASSERT_TRUE(f.good()) << "run relevance_reference_generate first";
  const auto all = nlohmann::json::parse(f);
  ASSERT_EQ(all.size(), 8u);
  for (const auto& e : all) {
    SCOPED_TRACE(e["name"].get<std::string>());
    auto m = load(e["dir"].get<std::string>());
    SafetensorsFile ref(test::data_dir() + "/" + e["dir"].get<std::string>() + "/reference.safetensors");
    ModelInput in;
    if (m->info().image) {
      const auto px = ref.to_f32("pixel_values");
      in.pixels = Array::zeros({m->info().channels, m->info().image_size, m->info().image_size});
      std::copy(px.begin(), px.end(), in.pixels.mutable_ptr());
    } else {
      in.ids = test::read_i64(ref, "input_ids");
      if (ref.has("token_type_ids")) in.type_ids = test::read_i64(ref, "token_type_ids");
    }
    const Target t{e["position"], e["target"], "logit"};
    const Relevance r = m->relevance(in, t);
    EXPECT_NEAR(r.value, e["value"].get<double>(), 1e-4);
    ASSERT_EQ(r.attention_relevance.size(), e["layers"].size());
    for (size_t l = 0; l < r.attention_relevance.size(); ++l) {
      for (const char* what : {"relevance", "grad"}) {
        const Array& ours = std::string(what) == "grad" ? r.attention_grad[l] : r.attention_relevance[l];
        const auto& theirs = e["layers"][l][what];
        double d = 0, scale = 0;
        const int64_t H = ours.dim(0), T = ours.dim(1);
        for (int64_t h = 0; h < H; ++h)
          for (int64_t i = 0; i < T; ++i)
            for (int64_t j = 0; j < T; ++j) {
              const double w = theirs[h][i][j].get<double>();
              d = std::max(d, std::fabs(ours.ptr()[(h * T + i) * T + j] - w));
              scale = std::max(scale, std::fabs(w));
            }
        // Gradients: 1e-5 of the largest value. Relevance maps: LRP's ratio rules (R / Z, and the add
        // rule's rescaling by a sum) amplify the float32 forward's rounding where denominators are
        // near 0, so 2e-4 of the largest value, or 3x what the reference itself moves between
        // float64 and float32 / float32-sized input noise. (The rules alone: LrpRules, 1e-10.)
        const bool g = std::string(what) == "grad";
        const double spread = g ? 0.0 : e["f32_spread"]["layers"][l].get<double>();
        EXPECT_LT(spread, 1e-2 * scale) << "the reference's own float32 floor would excuse anything at layer " << l;
        EXPECT_LE(d, std::max((g ? 1e-5 : 2e-4) * scale, 3 * spread))
            << what << " at layer " << l << ": max |diff| " << d << " of max " << scale << ", float32 spread "
            << spread;
      }
    }
    AttributionOptions o;
    o.method = "grad-attention";  // ICCV 2021 on the same gradients
    for (bool sign : {false, true}) {
      o.signed_evidence = sign;
      const Attribution a = attribute(*m, in, t, Array::zeros(m->features(in).shape), o);
      const auto& want = e[sign ? "grad_attention_signed" : "grad_attention"];
      ASSERT_EQ(a.per_unit.size(), want.size());
      for (size_t k = 0; k < want.size(); ++k)
        EXPECT_NEAR(a.per_unit[k], want[k].get<double>(), 1e-5) << "grad-attention";
    }
    o.method = "relevance";
    for (const char* row : {"row", "row_signed", "row_start1"}) {
      if (e[row].is_null()) continue;
      o.signed_evidence = std::string(row) == "row_signed";
      o.start_layer = std::string(row) == "row_start1" ? 1 : 0;
      const Attribution a = attribute(*m, in, t, Array::zeros(m->features(in).shape), o);
      ASSERT_EQ(a.per_unit.size(), e[row].size());
      const double tol = std::max(1e-5, 3 * e["f32_spread"][row].get<double>());
      for (size_t k = 0; k < a.per_unit.size(); ++k) EXPECT_NEAR(a.per_unit[k], e[row][k].get<double>(), tol) << row;
    }
  }
}
