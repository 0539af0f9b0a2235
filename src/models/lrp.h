// Layer-wise relevance propagation for the `relevance` method of Chefer, Gur & Wolf, CVPR 2021
// ("Transformer Interpretability Beyond Attention Visualization"), with the rules of their
// Transformer-Explainability code: LRP-alpha-beta (alpha 1, beta 0) for linear layers, norms,
// activations and softmax pass relevance through, gradient x input for the two attention matmuls
// (each operand's share halved), for element-wise products (halved) and for RoPE, the residual add
// re-normalised to conserve the total. Facts: ../shared/reference/explain.md. Internal (libtorch).
#pragma once
#include <torch/torch.h>

#include <utility>
#include <vector>

namespace attnscope {

// What one layer's propagation needs, recorded by a forward pass (Capture::lrp). Tensors are
// [B, ...]; weights [out, in] as nn.Linear stores them. Every family's layer is
//   mid = x + attn_out  (pre-LN)   or  LN(x + attn_out)   (post-LN, BERT)
//   out = mid + mlp_out            or  LN(mid + mlp_out)
// with attn_in = x or a norm of it and mlp_in = mid or a norm of it. Norms pass relevance through,
// so both orders propagate the same way.
struct LrpLayer {
  torch::Tensor x, attn_in;                    // [B, T, D]
  torch::Tensor q, k, v;                       // [B, H, T, hd]; k, v [B, KV, T, hd] (GQA: not repeated)
  torch::Tensor q_pre, k_pre, cos, sin;        // RoPE: q, k before the rotation; cos/sin [T, hd]
  torch::Tensor probs;                         // [B, H, T, T]
  torch::Tensor ctx, attn_out;                 // [B, T, H*hd] into the output projection; its output
  torch::Tensor mid, mlp_in;                   // [B, T, D]
  torch::Tensor gate, up;                      // gated MLP: act(gate_proj(mlp_in)), up_proj(mlp_in)
  torch::Tensor act, mlp_out;                  // [B, T, I] into the last projection; its output [B, T, D]
  torch::Tensor wq, wk, wv, wo, w1, w_up, w2;  // w1: the first (gate) projection; w_up: gated MLP only
};

// One linear layer of the output head, top first: input ([B, in] or [B, T, in]) and weight [out, in].
struct LrpLinear {
  torch::Tensor in, w;
};

namespace lrp {

// a / b where b != 0, else 0, with Transformer-Explainability's stabiliser (b + 1e-9).
torch::Tensor safe_divide(const torch::Tensor& a, const torch::Tensor& b);
// y = x w^T (bias ignored): LRP-alpha-beta with alpha 1, beta 0. r: [.., out] -> [.., in].
torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& r);
// a + b: gradient x input, then each share scaled so that |share| totals split r.sum().
std::pair<torch::Tensor, torch::Tensor> add(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& r);
// x used by several branches with relevance rs: x * sum(rs / x).
torch::Tensor clone(const torch::Tensor& x, const std::vector<torch::Tensor>& rs);
// Relevance r at the layer's output -> relevance at its input x; *r_probs gets the relevance at
// the attention probabilities ([B, H, T, T]).
torch::Tensor layer(const LrpLayer& l, const torch::Tensor& r, torch::Tensor* r_probs);

}  // namespace lrp
}  // namespace attnscope
