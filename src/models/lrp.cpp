#include "lrp.h"

namespace attnscope::lrp {

namespace {

// [B, T, H*hd] <-> [B, H, T, hd]
torch::Tensor split_heads(const torch::Tensor& t, int64_t H) {
  return t.view({t.size(0), t.size(1), H, t.size(2) / H}).permute({0, 2, 1, 3});
}
torch::Tensor merge_heads(const torch::Tensor& t) {
  return t.permute({0, 2, 1, 3}).reshape({t.size(0), t.size(2), t.size(1) * t.size(3)});
}

torch::Tensor rotate_half(const torch::Tensor& x) {
  const int64_t h = x.size(-1) / 2;
  return torch::cat({-x.narrow(-1, h, h), x.narrow(-1, 0, h)}, -1);
}

// y = pre * cos + rotate_half(pre) * sin, gradient x input: pre * J^T (r / y), where
// J^T s = s * cos - rotate_half(s * sin) (rotate_half's transpose is its negative).
torch::Tensor rope(const torch::Tensor& pre, const torch::Tensor& y, const torch::Tensor& r, const torch::Tensor& cos,
                   const torch::Tensor& sin) {
  auto s = safe_divide(r, y);
  return pre * (s * cos - rotate_half(s * sin));
}

// Key/value heads shared by `rep` query heads each (GQA): the clone rule over the repeats.
torch::Tensor unrepeat(const torch::Tensor& kv, const torch::Tensor& r, int64_t rep) {
  if (rep == 1) return r;
  auto s = safe_divide(r, kv.repeat_interleave(rep, 1));  // (B, H, T, hd)
  return kv * s.view({kv.size(0), kv.size(1), rep, kv.size(2), kv.size(3)}).sum(2);
}

}  // namespace

torch::Tensor safe_divide(const torch::Tensor& a, const torch::Tensor& b) {
  auto den = b.clamp_min(1e-9) + b.clamp_max(1e-9);
  den = den + den.eq(0).to(den.scalar_type()) * 1e-9;
  return a / den * b.ne(0).to(b.scalar_type());
}

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& r) {
  auto pw = w.clamp_min(0), nw = w.clamp_max(0);
  auto px = x.clamp_min(0), nx = x.clamp_max(0);
  auto s = safe_divide(r, torch::matmul(px, pw.t()) + torch::matmul(nx, nw.t()));
  return px * torch::matmul(s, pw) + nx * torch::matmul(s, nw);
}

std::pair<torch::Tensor, torch::Tensor> add(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& r) {
  auto s = safe_divide(r, a + b);
  auto ra = a * s, rb = b * s;
  auto sa = ra.sum().abs(), sb = rb.sum().abs(), total = r.sum();
  auto fa = safe_divide(sa, sa + sb) * total, fb = safe_divide(sb, sa + sb) * total;
  return {ra * safe_divide(fa, ra.sum()), rb * safe_divide(fb, rb.sum())};
}

torch::Tensor clone(const torch::Tensor& x, const std::vector<torch::Tensor>& rs) {
  auto acc = torch::zeros_like(x);
  for (const auto& r : rs) acc = acc + safe_divide(r, x);
  return x * acc;
}

torch::Tensor layer(const LrpLayer& l, const torch::Tensor& r, torch::Tensor* r_probs) {
  // MLP sublayer: out = mid + mlp_out; mlp_out = w2 act; act = f(w1 mlp_in) [* (w_up mlp_in)].
  auto [r_mid_res, r_mlp_out] = add(l.mid, l.mlp_out, r);
  auto r_act = linear(l.act, l.w2, r_mlp_out);
  torch::Tensor r_mlp_in;
  if (l.w_up.defined()) {
    auto s = safe_divide(r_act, l.act);
    auto r_gate = l.gate * (l.up * s) / 2, r_up = l.up * (l.gate * s) / 2;
    r_mlp_in = clone(l.mlp_in, {linear(l.mlp_in, l.w1, r_gate), linear(l.mlp_in, l.w_up, r_up)});
  } else {
    r_mlp_in = linear(l.mlp_in, l.w1, r_act);
  }
  auto r_mid = clone(l.mid, {r_mid_res, r_mlp_in});

  // Attention sublayer: mid = x + attn_out; attn_out = wo ctx; ctx = probs v; probs = softmax(q k^T).
  auto [r_x_res, r_attn_out] = add(l.x, l.attn_out, r_mid);
  const int64_t H = l.q.size(1), rep = H / l.k.size(1);
  auto r_ctx = split_heads(linear(l.ctx, l.wo, r_attn_out), H);  // (B, H, T, hd)
  auto kx = rep == 1 ? l.k : l.k.repeat_interleave(rep, 1);
  auto vx = rep == 1 ? l.v : l.v.repeat_interleave(rep, 1);
  auto s = safe_divide(r_ctx, torch::matmul(l.probs, vx));
  auto r_a = l.probs * torch::matmul(s, vx.transpose(-1, -2)) / 2;
  auto r_vx = vx * torch::matmul(l.probs.transpose(-1, -2), s) / 2;
  *r_probs = r_a;
  auto s2 = safe_divide(r_a, torch::matmul(l.q, kx.transpose(-1, -2)));  // the scale passes relevance through
  auto r_q = l.q * torch::matmul(s2, kx) / 2;
  auto r_k = unrepeat(l.k, kx * torch::matmul(s2.transpose(-1, -2), l.q) / 2, rep);
  auto r_v = unrepeat(l.v, r_vx, rep);
  if (l.cos.defined()) {
    r_q = rope(l.q_pre, l.q, r_q, l.cos, l.sin);
    r_k = rope(l.k_pre, l.k, r_k, l.cos, l.sin);
  }
  auto r_attn_in =
      clone(l.attn_in, {linear(l.attn_in, l.wq, merge_heads(r_q)), linear(l.attn_in, l.wk, merge_heads(r_k)),
                        linear(l.attn_in, l.wv, merge_heads(r_v))});
  return clone(l.x, {r_x_res, r_attn_in});
}

}  // namespace attnscope::lrp
