// Gradient and perturbation attributions with Captum's definitions, computed through
// Model::gradients (features = the word-embedding output for text, the pixels for images), and the
// gradient-weighted attention rule of Chefer et al. (ICCV 2021). Facts: ../shared/reference/explain.md.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "attnscope/array.h"
#include "attnscope/model.h"

namespace attnscope {

struct AttributionOptions {
  std::string method;  // saliency | grad-x-input | integrated-gradients | occlusion | grad-attention | relevance
  int64_t steps = 50;  // integrated gradients: integration points
  std::string rule = "gausslegendre";  // or riemann_left | riemann_right | riemann_middle | riemann_trapezoid
  int64_t batch = 16;                  // inputs per forward/backward pass (bounds memory)
  int64_t window = 1;                  // occlusion: tokens per occluded window (images: one patch)
  int64_t stride = 1;                  // occlusion: tokens between window starts (Captum's strides)
  bool signed_evidence = false;        // grad-attention, relevance: keep negative evidence (no (.)+)
  int64_t start_layer = 0;             // relevance: first layer of the rollout
};

struct Attribution {
  Array attr;                    // per feature, the features' shape (empty for occlusion/grad-attention)
  double value = 0;              // F(x)
  double baseline_value = 0;     // F(x') (integrated gradients, occlusion: F with everything occluded is not used)
  double delta = 0;              // integrated gradients: sum(attr) - (F(x) - F(x'))
  std::vector<double> per_unit;  // occlusion: per token/patch the mean drop F(x) - F(x occluded) of the windows
                                 // covering it; grad-attention, relevance: the row
  int64_t passes = 0;            // forward/backward passes run
};

// Integration points and weights on [0, 1] (Captum's approximation methods).
void integration_points(const std::string& rule, int64_t steps, std::vector<double>* alphas,
                        std::vector<double>* weights);

// baseline: features of the reference input x' (same shape as model.features(in)); used by
// integrated gradients (x') and occlusion (the replacement values).
Attribution attribute(const Model& model, const ModelInput& in, const Target& target, const Array& baseline,
                      const AttributionOptions& o);

// Captum's LLM attribution (LLMGradientAttribution / LLMAttribution) of a continuation: for
// continuation token i the input is prompt + continuation[0..i), F is `kind` (Captum: logprob) of
// continuation[i] at the last position, the baseline replaces the prompt's features only
// (prompt_baseline: [P, D], the generated positions keep theirs), and row i scores the P prompt
// tokens: the raw per-token sum over the feature dimension ("l2": the L2 norm) of attr, or the
// method's own per-token scores (occlusion, grad-attention, relevance).
struct ContinuationAttribution {
  std::vector<std::vector<double>> rows;  // [continuation][prompt]
  std::vector<double> values;             // F per continuation token
  std::vector<double> deltas;             // integrated gradients: convergence delta per row
  int64_t passes = 0;
};
ContinuationAttribution attribute_continuation(const Model& model, const std::vector<int64_t>& prompt,
                                               const std::vector<int64_t>& continuation, const Array& prompt_baseline,
                                               const std::string& kind, const AttributionOptions& o,
                                               const std::string& reduce);

// Per-token (rows of a [T, D] attribution) or per-patch ([C, H, W] with the patch size) scores:
// "l2" = L2 norm, normalised to sum 1 (unsigned; Ecco, LIT grad-norm); "sum" = sum over the
// feature dimension divided by the L2 norm of those sums (signed; transformers-interpret);
// "signed" = sum, scaled so the absolute values sum to 1 (LIT grad-dot-input).
std::vector<double> reduce_attribution(const Array& attr, const std::string& how, int64_t patch = 0);

}  // namespace attnscope
