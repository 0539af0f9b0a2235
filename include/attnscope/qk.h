// AttentionViz's joint query-key data (Yeh et al., IEEE VIS 2023): every head's query and key
// vectors over a corpus, aligned so that distance in a joint embedding reflects attention, and
// the measures the atlas shows. Facts: ../shared/reference/views.md (AttentionViz).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace attnscope {

struct QkAlignment {
  std::vector<float> delta;  // added to every key: mean(q) - mean(k)
  double scale = 1;          // keys x scale, queries / scale (1 without equalisation)
};

// In place, for one head's queries q and keys k ([n, hd] each): keys shifted by mean(q) - mean(k)
// (q . (k + delta) = q . k + q . delta, a constant per query, so every softmax row is unchanged);
// with equalize, keys x c and queries / c with c = sqrt(mean |q| / mean |k + delta|) (dot
// products unchanged, mean norms equal).
QkAlignment align_queries_keys(float* q, float* k, int64_t n, int64_t hd, bool equalize);

// Spearman correlation between q_i . k_j and the distance |q_i - k_j| over the query-key pairs the
// model compares (same item; keys up to the query for causal models), on up to max_pairs pairs
// taken at an even stride. item: per token, items in contiguous runs in position order.
// AttentionViz reports about -0.78 on average over GPT-2's heads.
double qk_distance_spearman(const float* q, const float* k, int64_t hd, const std::vector<int32_t>& item, bool causal,
                            int64_t max_pairs);

}  // namespace attnscope
