#include "models/forward_rules.hpp"

#include <cmath>

#include "core/array.hpp"

namespace attnlens {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// t + eps * sign0(t), sign0(0) = +1: zennit's and LXT's sign-aware stabiliser.
torch::Tensor stabilize(const torch::Tensor& t, double eps) {
  return t + eps * torch::where(t >= 0, torch::ones_like(t), -torch::ones_like(t));
}

torch::Tensor positive_part(const torch::Tensor& w, double gamma) { return w + gamma * w.clamp_min(0); }
torch::Tensor negative_part(const torch::Tensor& w, double gamma) { return w + gamma * w.clamp_max(0); }

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

// The four γ-modified products of one layer (spec 14.3), for a linear map `apply(input, weight, bias)` and its
// transpose `back(u, weight)`.
template <class Apply, class Back>
torch::Tensor gamma_backward(const torch::Tensor& x, const torch::Tensor& z, const torch::Tensor& g,
                             const torch::Tensor& w, const torch::Tensor& b, double gamma, Apply apply, Back back) {
  const auto wp = positive_part(w, gamma), wn = negative_part(w, gamma);
  const torch::Tensor bp = b.defined() ? positive_part(b, gamma) : torch::Tensor();
  const torch::Tensor bn = b.defined() ? negative_part(b, gamma) : torch::Tensor();
  const auto xp = x.clamp_min(0), xn = x.clamp_max(0);
  const auto relevance = g * z;
  const auto up = relevance * (z > 0).to(z.dtype()) / stabilize(apply(xp, wp, bp) + apply(xn, wn, {}), 1e-6);
  const auto un = relevance * (z < 0).to(z.dtype()) / stabilize(apply(xp, wn, bn) + apply(xn, wp, {}), 1e-6);
  const auto rx = xp * back(up, wp) + xn * back(up, wn) + xp * back(un, wn) + xn * back(un, wp);
  return rx / stabilize(x, 1e-10);
}

struct GammaLinearFunction : public torch::autograd::Function<GammaLinearFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b, double gamma) {
    auto z = torch::linear(x, w, b);
    ctx->save_for_backward({x, z});
    ctx->saved_data["w"] = w;
    ctx->saved_data["b"] = b;
    ctx->saved_data["gamma"] = gamma;
    return z;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const auto w = ctx->saved_data["w"].toTensor();
    const auto b = ctx->saved_data["b"].isTensor() ? ctx->saved_data["b"].toTensor() : torch::Tensor();
    const auto apply = [](const torch::Tensor& in, const torch::Tensor& wt, const torch::Tensor& bias) {
      return torch::linear(in, wt, bias);
    };
    const auto back = [](const torch::Tensor& u, const torch::Tensor& wt) { return u.matmul(wt); };
    return {gamma_backward(saved[0], saved[1], grad[0], w, b, ctx->saved_data["gamma"].toDouble(), apply, back),
            torch::Tensor(), torch::Tensor(), torch::Tensor()};
  }
};

struct GammaConvFunction : public torch::autograd::Function<GammaConvFunction> {
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, const torch::Tensor& w,
                               const torch::Tensor& b, double gamma, std::int64_t stride) {
    auto z = torch::conv2d(x, w, b, stride);
    ctx->save_for_backward({x, z});
    ctx->saved_data["w"] = w;
    ctx->saved_data["b"] = b;
    ctx->saved_data["gamma"] = gamma;
    ctx->saved_data["stride"] = stride;
    return z;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    const auto saved = ctx->get_saved_variables();
    const auto w = ctx->saved_data["w"].toTensor();
    const auto b = ctx->saved_data["b"].isTensor() ? ctx->saved_data["b"].toTensor() : torch::Tensor();
    const std::int64_t stride = ctx->saved_data["stride"].toInt();
    const auto apply = [stride](const torch::Tensor& in, const torch::Tensor& wt, const torch::Tensor& bias) {
      return torch::conv2d(in, wt, bias, stride);
    };
    const auto back = [stride](const torch::Tensor& u, const torch::Tensor& wt) {
      return torch::conv_transpose2d(u, wt, {}, stride);
    };
    return {gamma_backward(saved[0], saved[1], grad[0], w, b, ctx->saved_data["gamma"].toDouble(), apply, back),
            torch::Tensor(), torch::Tensor(), torch::Tensor(), torch::Tensor()};
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
  return GammaLinearFunction::apply(x, weight, bias_or_zeros(bias, weight), gamma);
}

torch::Tensor gamma_conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                           double gamma, std::int64_t stride) {
  return GammaConvFunction::apply(x, weight, bias_or_zeros(bias, weight), gamma, stride);
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
  return gamma_here ? attnlens::gamma_linear(x, weight, bias, gamma_linear) : torch::linear(x, weight, bias);
}

torch::Tensor ForwardRules::patch_conv(const torch::Tensor& images, const torch::Tensor& weight,
                                       const torch::Tensor& bias, std::int64_t stride) const {
  if (lrp_active() && gamma_conv > 0 && images.requires_grad())
    return gamma_conv2d(images, weight, bias, gamma_conv, stride);
  return torch::conv2d(images, weight, bias, stride);
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
  if (key_factors.defined()) {
    const double lo = key_factors.min().item<double>(), hi = key_factors.max().item<double>();
    if (!(lo >= 0 && hi <= 1)) throw InputError("AtMan's suppression factors must lie in [0, 1]");
  }
}

}  // namespace attnlens
