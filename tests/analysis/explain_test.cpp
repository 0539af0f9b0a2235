// Rollout, flow, the generation table and activation energy against independent references:
// numpy products and networkx's own max-flow (tests/reference/explain_reference.py).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "attnscope/error.h"
#include "attnscope/explain.h"
#include "attnscope/safetensors.h"
#include "test_util.h"

using namespace attnscope;

namespace {

struct Ref {
  std::map<std::string, std::vector<Array>> att;
  std::vector<Array> hidden;
  nlohmann::json expected;
};

Array load(const SafetensorsFile& f, const std::string& name) {
  Array a = Array::zeros(f.info(name).shape);
  f.to_f32(name, a.mutable_ptr());
  return a;
}

const Ref& ref() {
  static Ref r = [] {
    Ref x;
    const std::string dir = test::data_dir() + "/explain_reference";
    SafetensorsFile f(dir + "/explain.safetensors");
    for (int l = 0; f.has("enc." + std::to_string(l)); ++l) x.att["enc"].push_back(load(f, "enc." + std::to_string(l)));
    for (int l = 0; f.has("dec." + std::to_string(l)); ++l) x.att["dec"].push_back(load(f, "dec." + std::to_string(l)));
    for (int l = 0; f.has("hidden." + std::to_string(l)); ++l)
      x.hidden.push_back(load(f, "hidden." + std::to_string(l)));
    std::ifstream in(dir + "/explain_expected.json");
    x.expected = nlohmann::json::parse(in);
    return x;
  }();
  return r;
}

double worst(const Square& got, const nlohmann::json& want) {
  double w = 0;
  for (int64_t i = 0; i < got.n; ++i)
    for (int64_t j = 0; j < got.n; ++j) w = std::max(w, std::fabs(got.at(i, j) - want[i][j].get<double>()));
  return w;
}

}  // namespace

TEST(Explain, RolloutMatchesTheNumpyProductForEveryFusionDiscardAndStart) {
  for (const auto& c : ref().expected["rollout"]) {
    RolloutOptions o;
    o.fusion = c["fusion"];
    o.discard_ratio = c["discard"];
    o.start_layer = c["start"];
    const Square r = attention_rollout(ref().att.at(c["case"]), o);
    EXPECT_LT(worst(r, c["value"]), 1e-9)
        << c["case"] << " " << o.fusion << " " << o.discard_ratio << " " << o.start_layer;
    for (int64_t i = 0; i < r.n; ++i) {  // rows of a product of row-stochastic matrices sum to 1
      double s = 0;
      for (int64_t j = 0; j < r.n; ++j) s += r.at(i, j);
      EXPECT_NEAR(s, 1, 1e-12);
    }
  }
}

TEST(Explain, FlowMatchesNetworkxMaxFlowForEveryPair) {
  for (const auto& c : ref().expected["flow"]) {
    RolloutOptions o;
    o.fusion = c["fusion"];
    o.discard_ratio = c["discard"];
    o.start_layer = c["start"];
    const Square f = attention_flow(ref().att.at(c["case"]), o, {});
    EXPECT_LT(worst(f, c["value"]), 1e-9) << c["case"] << " " << o.fusion;
    // One row only: the same numbers, other rows left at 0.
    const Square one = attention_flow(ref().att.at(c["case"]), o, {2});
    for (int64_t j = 0; j < f.n; ++j) {
      EXPECT_NEAR(one.at(2, j), f.at(2, j), 1e-12);
      EXPECT_EQ(one.at(0, j), 0);
    }
  }
}

TEST(Explain, MaxFlowSolvesTheTextbookNetwork) {
  std::vector<FlowEdge> edges;
  for (const auto& e : ref().expected["clrs"]["edges"]) edges.push_back({e[0], e[1], e[2]});
  EXPECT_NEAR(max_flow(6, edges, 0, 5), ref().expected["clrs"]["value"].get<double>(), 1e-12);
  EXPECT_NEAR(max_flow(6, edges, 0, 5), 23, 1e-12);
  EXPECT_THROW(max_flow(6, edges, 0, 0), Error);
  EXPECT_THROW(max_flow(6, edges, 0, 9), Error);
}

TEST(Explain, GenerationTableHasTheMethodsPropertiesAndMatchesTheReference) {
  const auto& c = ref().expected["generation"];
  const int64_t prompt = c["prompt"];
  const Square g = generation_attention(ref().att.at("dec"), prompt);
  EXPECT_LT(worst(g, c["value"]), 1e-9);
  for (int64_t t = 0; t < g.n; ++t) {
    double s = 0;
    for (int64_t j = 0; j < g.n; ++j) s += g.at(t, j);
    EXPECT_NEAR(s, 1, 1e-12) << "row " << t;
    if (t >= prompt) {
      EXPECT_EQ(g.at(t, 0), 0) << "first column";
      EXPECT_EQ(g.at(t, t), 0) << "diagonal of a generated row";
      for (int64_t j = t + 1; j < g.n; ++j) EXPECT_EQ(g.at(t, j), 0);
    } else {
      EXPECT_EQ(g.at(t, t), 1) << "prompt rows are the identity";
    }
  }
  const Square s = sigmoid_display(g, prompt);
  for (int64_t t = prompt; t < g.n; ++t)
    for (int64_t j = 1; j < t; ++j) {
      EXPECT_GT(s.at(t, j), 0);
      EXPECT_LT(s.at(t, j), 1);
      for (int64_t k = 1; k < t; ++k)  // monotone in the value
        if (g.at(t, j) < g.at(t, k)) EXPECT_LT(s.at(t, j), s.at(t, k));
    }
  EXPECT_THROW(generation_attention(ref().att.at("dec"), 0), Error);
}

TEST(Explain, ActivationEnergyIsTheNormalisedPowerSum) {
  const auto e2 = activation_energy(ref().hidden, 2);
  const auto e1 = activation_energy(ref().hidden, 1);
  for (size_t l = 0; l < e2.size(); ++l)
    for (size_t t = 0; t < e2[l].size(); ++t) {
      EXPECT_NEAR(e2[l][t], ref().expected["activation"][l][t].get<double>(), 1e-6);
      EXPECT_NEAR(e1[l][t], ref().expected["activation_p1"][l][t].get<double>(), 1e-6);
    }
  EXPECT_THROW(activation_energy(ref().hidden, 0), Error);
}

TEST(Explain, BadOptionsAreErrors) {
  RolloutOptions o;
  o.fusion = "median";
  EXPECT_THROW(attention_rollout(ref().att.at("enc"), o), Error);
  o.fusion = "mean";
  o.discard_ratio = 1;
  EXPECT_THROW(attention_rollout(ref().att.at("enc"), o), Error);
  o.discard_ratio = 0;
  o.start_layer = 3;
  EXPECT_THROW(attention_rollout(ref().att.at("enc"), o), Error);
  EXPECT_THROW(attention_rollout({}, RolloutOptions{}), Error);
}
