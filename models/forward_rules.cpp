#include "models/forward_rules.hpp"

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/array.hpp"

namespace attnlens {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// t + eps * sign0(t), sign0(0) = +1: zennit's and LXT's sign-aware stabiliser.
torch::Tensor stabilize(const torch::Tensor& t, double eps) {
  return t + eps * torch::where(t >= 0, torch::ones_like(t), -torch::ones_like(t));
}

struct IdentityRuleFunction : public torch::autograd::Function<IdentityRuleFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& h, std::int64_t kind) {
    auto out = apply_activation(h, static_cast<Activation>(kind));
    // LXT's plain +1e-10 (not sign-aware, spec 14.2 a): the reference's ratio.
    ctx->save_for_backward({out / (h + 1e-10)});
    return out;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    return {grad[0] * ctx->get_saved_variables()[0], torch::Tensor()};
  }
};

// zennit's generalised Gamma for one layer z = L(x) + b that is linear in x (a Linear, or the patch embedding's conv
// with stride = kernel), in the algebra that needs 3 products instead of zennit's 8. With w± = max/min(w, 0),
// x± likewise, and w^{γ±} = w + γ w±, the four modified products of spec 14.3 enter only as two sums:
//   o₀ + o₁ = L(x) + γ (L(x⁺; w⁺) + L(x⁻; w⁻)) + b^{γ+} = L(x) + γ/2 (L(x) + L(|x|; |w|)) + b^{γ+}
//   o₂ + o₃ = L(x) + γ (L(x⁺; w⁻) + L(x⁻; w⁺)) + b^{γ−} = L(x) + γ/2 (L(x) − L(|x|; |w|)) + b^{γ−}
// (x⁺w⁺ + x⁻w⁻ = (xw + |x||w|) / 2, x⁺w⁻ + x⁻w⁺ = (xw − |x||w|) / 2), and the four transposed products as two:
//   R_x = x⁺ Lᵀ(u⁺; w^{γ+}) + x⁻ Lᵀ(u⁺; w^{γ−}) + x⁺ Lᵀ(u⁻; w^{γ−}) + x⁻ Lᵀ(u⁻; w^{γ+})
//       = (1 + γ/2) x ⊙ Lᵀ(u⁺ + u⁻; w) + γ/2 |x| ⊙ Lᵀ(u⁺ − u⁻; |w|).
// So the backward costs one forward product and two transposed ones (the plain backward: one), where zennit's
// costs four and four; the values agree to float rounding (tests/cross/relevance_vs_pytorch.py runs zennit's form).
// Only one of u⁺, u⁻ is non-zero at an output (it depends on the sign of z), so u⁺ ± u⁻ = u and sign(z) u.
//
// The elementwise work around the products is two fused, vectorised loops (gamma_output_shares,
// gamma_input_relevance). Written as tensor operations it was about 40 passes over each layer's activations and cost
// twice as much as the two extra products themselves: attnlrp took 1.60x the passes it needs on the DeiT-tiny
// benchmark (bench/bench_models.cpp, forward+backward+gamma-1), 1.07-1.08x with these loops.

// Output (o, c, k) of a z laid out as [outer, channels, inner]: a Linear's [..., C] has inner 1, a conv's
// [B, C, H, W] has outer B and inner H·W.
struct ChannelLayout {
  std::int64_t outer, channels, inner;
  static ChannelLayout of(const torch::Tensor& z, std::int64_t stride) {
    if (stride == 0) return {z.numel() / z.size(-1), z.size(-1), 1};
    return {z.size(0), z.size(1), z.size(2) * z.size(3)};
  }
};

// zennit's sign-aware stabiliser, sign(0) = +1; written as selects, not branches, so that the loops below vectorise
// (with branches on the signs of random-looking activations, mispredictions cost more than the arithmetic).
template <typename T>
T stabilized(T d, T eps) {
  return d + (d >= 0 ? eps : -eps);
}

// One row (a Linear: the bias indexed by the element, Bias = const T*) or one channel's plane (a conv: Bias = T) of
// gamma_output_shares; restrict-qualified and branch-free so that GCC vectorises it.
template <typename T, typename Bias>
void gamma_shares_run(std::int64_t n, const T* __restrict g, const T* __restrict xw, T* __restrict m,
                      T* __restrict u_out, Bias b, Bias b_pos, Bias b_neg, T scale, T half, T eps) {
  auto at = [](auto v, std::int64_t k) {
    if constexpr (std::is_pointer_v<decltype(v)>) return v[k]; else return v;
  };
  for (std::int64_t k = 0; k < n; ++k) {
    const T z = xw[k] + at(b, k);
    // Selects as arithmetic on 0/1 (exact for finite values): GCC keeps `z > 0 ? a : b` of loaded values a branch.
    const T positive = z > 0 ? T(1) : T(0), negative = z < 0 ? T(1) : T(0), sign = positive - negative;
    const T bias = positive * at(b_pos, k) + (1 - positive) * at(b_neg, k);
    const T den = (xw[k] * scale + sign * half * m[k]) + bias;
    const T u = g[k] * z / stabilized(den, eps);  // 0 where z = 0
    u_out[k] = u;
    m[k] = sign * u;
  }
}

// From the output's gradient g, L(x) and L(|x|; |w|): u = g z / stab(den^{sign z}, 1e-6) (0 where z = 0) into `sum`
// and sign(z) u into `magnitude`'s storage (read there first).
void gamma_output_shares(const torch::Tensor& g, const torch::Tensor& xw, torch::Tensor& magnitude,
                         const torch::Tensor& b, double gamma, const ChannelLayout& at, torch::Tensor& sum) {
  AT_DISPATCH_FLOATING_TYPES(xw.scalar_type(), "gamma_output_shares", [&] {
    using T = scalar_t;
    const T *gp = g.data_ptr<T>(), *xwp = xw.data_ptr<T>(), *bp = b.data_ptr<T>();
    T *mp = magnitude.data_ptr<T>(), *sp = sum.data_ptr<T>();
    const auto scale = static_cast<T>(1 + gamma / 2), half = static_cast<T>(gamma / 2);
    const auto eps = static_cast<T>(1e-6), gam = static_cast<T>(gamma);
    std::vector<T> b_pos(static_cast<std::size_t>(at.channels)), b_neg(b_pos.size());  // b^{γ+}, b^{γ−}
    for (std::int64_t c = 0; c < at.channels; ++c) {
      b_pos[c] = bp[c] + gam * std::max(bp[c], T(0));
      b_neg[c] = bp[c] + gam * std::min(bp[c], T(0));
    }
    if (at.inner == 1)  // a Linear: rows of channels
      at::parallel_for(0, at.outer, std::max<std::int64_t>(1, 16384 / at.channels), [&](auto lo, auto hi) {
        for (auto r = lo; r < hi; ++r) {
          const auto i = r * at.channels;
          gamma_shares_run<T, const T*>(at.channels, gp + i, xwp + i, mp + i, sp + i, bp, b_pos.data(), b_neg.data(),
                                        scale, half, eps);
        }
      });
    else  // a conv: planes of one channel each
      at::parallel_for(0, at.outer * at.channels, std::max<std::int64_t>(1, 16384 / at.inner), [&](auto lo, auto hi) {
        for (auto oc = lo; oc < hi; ++oc) {
          const auto i = oc * at.inner, c = oc % at.channels;
          gamma_shares_run<T, T>(at.inner, gp + i, xwp + i, mp + i, sp + i, bp[c], b_pos[c], b_neg[c], scale, half,
                                 eps);
        }
      });
  });
}

// R_x = (1 + γ/2) x ⊙ t_sum + γ/2 |x| ⊙ t_signed, returned as the gradient R_x / stab(x, 1e-10), into t_sum.
template <typename T>
void gamma_input_run(std::int64_t n, const T* __restrict x, T* __restrict t_sum, const T* __restrict t_signed,
                     T scale, T half) {
  for (std::int64_t k = 0; k < n; ++k)
    t_sum[k] = (scale * x[k] * t_sum[k] + half * std::abs(x[k]) * t_signed[k]) / stabilized(x[k], T(1e-10));
}

void gamma_input_relevance(const torch::Tensor& x, torch::Tensor& t_sum, const torch::Tensor& t_signed,
                           double gamma) {
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "gamma_input_relevance", [&] {
    const auto *xp = x.data_ptr<scalar_t>(), *tp = t_signed.data_ptr<scalar_t>();
    auto* sp = t_sum.data_ptr<scalar_t>();
    const auto scale = static_cast<scalar_t>(1 + gamma / 2), half = static_cast<scalar_t>(gamma / 2);
    at::parallel_for(0, x.numel(), 16384, [&](auto lo, auto hi) {
      gamma_input_run<scalar_t>(hi - lo, xp + lo, sp + lo, tp + lo, scale, half);
    });
  });
}

struct GammaFunction : public torch::autograd::Function<GammaFunction> {
  // stride 0: torch::linear; stride > 0: conv2d with that stride (= kernel), no padding.
  static torch::Tensor apply_map(const torch::Tensor& x, const torch::Tensor& w, std::int64_t stride) {
    return stride == 0 ? torch::linear(x, w) : torch::conv2d(x, w, {}, stride);
  }
  static torch::Tensor transpose_map(const torch::Tensor& u, const torch::Tensor& w, std::int64_t stride) {
    return stride == 0 ? u.matmul(w) : torch::conv_transpose2d(u, w, {}, stride);
  }
  static torch::Tensor add_bias(const torch::Tensor& t, const torch::Tensor& b, std::int64_t stride) {
    return stride == 0 ? t + b : t + b.view({1, -1, 1, 1});
  }

  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b, double gamma, std::int64_t stride) {
    const auto xw = apply_map(x, w, stride);
    ctx->save_for_backward({x.contiguous(), xw});
    ctx->saved_data["w"] = w;
    ctx->saved_data["b"] = b.contiguous();
    ctx->saved_data["gamma"] = gamma;
    ctx->saved_data["stride"] = stride;
    return add_bias(xw, b, stride);
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const auto &x = saved[0], &xw = saved[1];
    const auto w = ctx->saved_data["w"].toTensor(), b = ctx->saved_data["b"].toTensor();
    const double gamma = ctx->saved_data["gamma"].toDouble();
    const std::int64_t stride = ctx->saved_data["stride"].toInt();
    const auto abs_w = w.abs();
    auto signed_shares = apply_map(x.abs(), abs_w, stride).contiguous();  // L(|x|; |w|), then sign(z) u
    auto shares = torch::empty_like(signed_shares);                         // u = u⁺ + u⁻
    gamma_output_shares(grad[0].contiguous(), xw.contiguous(), signed_shares, b, gamma,
                        ChannelLayout::of(xw, stride), shares);
    auto rx = transpose_map(shares, w, stride).contiguous();
    gamma_input_relevance(x, rx, transpose_map(signed_shares, abs_w, stride).contiguous(), gamma);
    return {rx, torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

// A custom autograd function takes no undefined tensors; a zero bias is the same rule (its γ parts are zero too).
torch::Tensor bias_or_zeros(const torch::Tensor& bias, const torch::Tensor& weight) {
  return bias.defined() ? bias : torch::zeros({weight.size(0)}, weight.options());
}

}  // namespace

torch::Tensor apply_activation(const torch::Tensor& h, Activation kind) {
  switch (kind) {
    case Activation::Gelu:
      return torch::gelu(h);
    case Activation::GeluTanh:
      return torch::gelu(h, "tanh");
    case Activation::QuickGelu:
      return h * torch::sigmoid(1.702 * h);
    case Activation::Silu:
      return torch::silu(h);
    case Activation::Tanh:
      return torch::tanh(h);
    case Activation::Relu:
      return torch::relu(h);
  }
  return h;
}

torch::Tensor identity_rule(const torch::Tensor& h, Activation kind) {
  return IdentityRuleFunction::apply(h, static_cast<std::int64_t>(kind));
}

torch::Tensor gamma_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                           double gamma) {
  return GammaFunction::apply(x, weight, bias_or_zeros(bias, weight), gamma, 0);
}

torch::Tensor gamma_conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                           double gamma, std::int64_t stride) {
  if (stride <= 0) throw InputError("gamma_conv2d: the stride must be > 0");
  return GammaFunction::apply(x, weight, bias_or_zeros(bias, weight), gamma, stride);
}

torch::Tensor epsilon_rule(const torch::Tensor& z, double epsilon) {
  if (!z.requires_grad() || epsilon == 0) return z;
  // Called on a layer's fresh output, so the hook sees all of z's gradient.
  auto out = z;
  const auto ratio = (z / stabilize(z, epsilon)).detach();
  out.register_hook([ratio](const torch::Tensor& g) { return g * ratio; });
  return out;
}

torch::Tensor ForwardRules::layer_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                       double eps) const {
  if (!lrp_active()) return torch::layer_norm(x, {x.size(-1)}, weight, bias, eps);
  // LXT's form (spec 14.2 b): biased variance of the centred input, σ detached.
  const auto centred = x - x.mean(-1, true);
  auto y = centred / (centred.pow(2).mean(-1, true) + eps).sqrt().detach();
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y;
}

torch::Tensor ForwardRules::activation(const torch::Tensor& h, Activation kind) const {
  return lrp_active() && h.requires_grad() ? identity_rule(h, kind) : apply_activation(h, kind);
}

torch::Tensor ForwardRules::linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                   LinearSite site) const {
  const bool gamma_here = lrp_active() && gamma_linear > 0 && x.requires_grad() &&
                          (site != LinearSite::AttentionProjection || gamma_attention_projections);
  if (gamma_here) return attnlens::gamma_linear(x, weight, bias, gamma_linear);
  const auto z = torch::linear(x, weight, bias);
  return lrp_active() ? epsilon_rule(z, epsilon) : z;
}

torch::Tensor ForwardRules::patch_conv(const torch::Tensor& images, const torch::Tensor& weight,
                                       const torch::Tensor& bias, std::int64_t stride) const {
  if (lrp_active() && gamma_conv > 0 && images.requires_grad())
    return gamma_conv2d(images, weight, bias, gamma_conv, stride);
  const auto z = torch::conv2d(images, weight, bias, stride);
  return lrp_active() ? epsilon_rule(z, epsilon) : z;
}

torch::Tensor ForwardRules::bilinear_product(const torch::Tensor& product) const {
  if (lrp == LrpRules::AttnLrp && product.requires_grad()) {
    auto p = product;
    p.register_hook([](const torch::Tensor& g) { return g / 2; });
    return p;
  }
  return product;
}

torch::Tensor ForwardRules::normalize(const torch::Tensor& x) const {
  const auto norm = x.norm(2, -1, true);
  return x / (lrp_active() ? norm.detach() : norm);
}

void ForwardRules::check() const {
  if (!(gamma_conv >= 0 && std::isfinite(gamma_conv)) || !(gamma_linear >= 0 && std::isfinite(gamma_linear)))
    throw InputError("gamma must be a finite number >= 0 (0 = the plain z-rule)");
  if (!(epsilon >= 0 && std::isfinite(epsilon)))
    throw InputError("epsilon must be a finite number >= 0 (0 = the plain z-rule)");
  if (key_factors.defined()) {
    const double lo = key_factors.min().item<double>(), hi = key_factors.max().item<double>();
    if (!(lo >= 0 && hi <= 1)) throw InputError("AtMan's suppression factors must lie in [0, 1]");
  }
}

}  // namespace attnlens
