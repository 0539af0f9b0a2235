// The explain subcommand (src/cli/explain.cpp).
#pragma once
#include <string>

#include "attnscope/attribution.h"
#include "attnscope/explain.h"
#include "cli.h"

namespace attnscope::cli {

struct ExplainArgs {
  std::string method, out, position;
  bool all_rows = false, sigmoid = false;
  RolloutOptions rollout;
  int64_t layer = -1, max_new_tokens = 20;
  double p = 2;
  // Gradient and perturbation methods.
  std::string target, target_kind, baseline = "zero", reduce;  // target_kind "": logit (continuation: logprob)
  int64_t target_id = -1;
  bool continuation = false;      // attribute each of -n greedily generated tokens
  std::string continuation_text;  // ... or of this given continuation
  AttributionOptions attribution;
};

void add_explain(CLI::App* c, Common& common, ExplainArgs& a);
int run_explain(const Common& o, const ExplainArgs& a);

}  // namespace attnscope::cli
