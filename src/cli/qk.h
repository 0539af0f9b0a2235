// The qk subcommand (src/cli/qk.cpp): AttentionViz's joint query-key data over a corpus.
#pragma once
#include <string>

#include "cli.h"

namespace attnscope::cli {

struct QkArgs {
  std::string corpus, out, projections = "pca,tsne,umap", dims = "2,3";
  int64_t max_tokens = 10000, top_k = 8, attention_max = 256, tsne_iterations = 750, neighbours = 15,
          spearman_pairs = 20000;
  double perplexity = 30;
  bool no_equalize = false;
};

void add_qk(CLI::App* c, Common& common, QkArgs& a);
int run_qk(const Common& o, const QkArgs& a);

}  // namespace attnscope::cli
