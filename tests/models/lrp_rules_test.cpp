// The LRP rules of the relevance method (src/models/lrp.cpp) on identical float64 inputs: one
// random layer per layout (pre-LN with GQA, RoPE and a gated MLP; post-LN with GELU) and the
// relevance that tests/reference/relevance_reference.py's module-style implementation (autograd
// relprops, as in Transformer-Explainability) propagates through it from a random signed R.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "attnscope/safetensors.h"
#include "lrp.h"
#include "test_util.h"

using namespace attnscope;

namespace {

torch::Tensor f64(const SafetensorsFile& f, const std::string& name) {
  if (!f.has(name)) return {};
  const TensorInfo& t = f.info(name);
  EXPECT_EQ(t.dtype, DType::F64) << name;
  return torch::from_blob(const_cast<uint8_t*>(f.bytes(t)), t.shape, torch::kFloat64).clone();
}

double rel(const torch::Tensor& ours, const torch::Tensor& theirs) {
  return (ours - theirs).abs().max().item<double>() / theirs.abs().max().item<double>();
}

}  // namespace

TEST(LrpRules, LayerMatchesModuleStyleReferenceOnIdenticalInputs) {
  for (const char* name : {"pre_gqa_rope_gated", "post_ln_gelu"}) {
    SCOPED_TRACE(name);
    SafetensorsFile f(test::data_dir() + "/relevance_reference/lrp_rules_" + name + ".safetensors");
    LrpLayer l;
    l.x = f64(f, "x"), l.attn_in = f64(f, "attn_in"), l.q = f64(f, "q"), l.k = f64(f, "k"), l.v = f64(f, "v");
    l.q_pre = f64(f, "q_pre"), l.k_pre = f64(f, "k_pre"), l.cos = f64(f, "cos"), l.sin = f64(f, "sin");
    l.probs = f64(f, "probs"), l.ctx = f64(f, "ctx"), l.attn_out = f64(f, "attn_out"), l.mid = f64(f, "mid");
    l.mlp_in = f64(f, "mlp_in"), l.gate = f64(f, "gate"), l.up = f64(f, "up"), l.act = f64(f, "act");
    l.mlp_out = f64(f, "mlp_out"), l.wq = f64(f, "wq"), l.wk = f64(f, "wk"), l.wv = f64(f, "wv");
    l.wo = f64(f, "wo"), l.w1 = f64(f, "w1"), l.w_up = f64(f, "w_up"), l.w2 = f64(f, "w2");
    torch::Tensor r_probs;
    const auto r_in = lrp::layer(l, f64(f, "r"), &r_probs);
    EXPECT_LT(rel(r_in, f64(f, "r_in")), 1e-10);
    EXPECT_LT(rel(r_probs, f64(f, "r_probs")), 1e-10);
    // The rules are not trivially zero: relevance reaches every input row.
    EXPECT_GT(r_in.abs().sum(-1).min().item<double>(), 0.0);
  }
}

TEST(LrpRules, AddConservesAndLinearIsAlphaOneBetaZero) {
  torch::manual_seed(3);
  auto a = torch::randn({1, 5, 7}, torch::kFloat64), b = torch::randn({1, 5, 7}, torch::kFloat64);
  auto r = torch::randn({1, 5, 7}, torch::kFloat64);
  auto [ra, rb] = lrp::add(a, b, r);
  EXPECT_NEAR((ra + rb).sum().item<double>(), r.sum().item<double>(), 1e-9);
  // alpha 1, beta 0 on positive inputs and weights: z-rule x_i w_ji / sum_i x_i w_ji, conserving R
  // (up to the 1e-9 stabiliser in the denominator).
  auto x = torch::rand({1, 4}, torch::kFloat64) + 0.1, w = torch::rand({3, 4}, torch::kFloat64) + 0.1;
  auto rr = torch::rand({1, 3}, torch::kFloat64);
  auto got = lrp::linear(x, w, rr);
  auto want = (x.unsqueeze(1) * w.unsqueeze(0) / torch::matmul(x, w.t()).unsqueeze(-1) * rr.unsqueeze(-1)).sum(1);
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-8);
  EXPECT_NEAR(got.sum().item<double>(), rr.sum().item<double>(), 1e-8);
}
