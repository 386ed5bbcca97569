// How a forward pass is changed for the methods that explain by changing the model: relevance propagation written
// as modified gradients (AttnLRP, CP-LRP: spec 14, LXT's "efficient" form, so one ordinary backward pass and input x
// gradient give the relevance), AG-CAM's detached attention inputs (spec 17), AtMan's suppressed keys (spec 18),
// and the extra tensors Beyond Intuition reads (spec 16). Every family's forward pass takes these rules; the
// default ForwardRules is the plain model, and its operations are then the plain ones.
#pragma once

#include <torch/torch.h>

#include <cstdint>

#include "../core/api.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// Relevance rules of one backward pass (spec 14.2). Both keep every parameter frozen.
enum class LrpRules {
  None,     ///< the plain model
  /// AttnLRP: LayerNorm's σ a constant, the identity rule on activations, the gradients of the products q kᵀ and
  /// A·V halved (the uniform rule; q and k get ¼, v ½), softmax's ordinary backward (its Taylor rule)
  AttnLrp,
  /// CP-LRP: the same outside attention; q and k detached, so the attention probabilities are constant weights
  Cp,
};

/// Where a linear layer sits: zennit's generalised Gamma rule is applied by site (spec 14.3, 14.4a).
enum class LinearSite { AttentionProjection, FeedForward, Head };

/// The element-wise activations the families use, for the identity rule.
enum class Activation { Gelu, GeluTanh, QuickGelu, Silu, Tanh, Relu };

struct ForwardRules {
  LrpRules lrp = LrpRules::None;
  /// zennit's generalised Gamma on the patch embedding (0: the plain z-rule). LRP only.
  double gamma_conv = 0.0;
  /// Gamma on the feed-forward linears and the classifier head (0: none). LRP only.
  double gamma_linear = 0.0;
  /// Also Gamma(gamma_linear) on qkv and the attention output projection. LXT's torchvision ViT never reaches them
  /// (its attention bypasses the module calls), so its reference maps have them off.
  bool gamma_attention_projections = false;
  /// The ε-rule on the linear layers and the patch embedding that have no Gamma (spec 14.10.1): the gradient at
  /// their output z is scaled by z / (z + ε·sign(z)), sign(0) = +1, so R_x = x ⊙ Wᵀ(R_z / (z + ε·sign(z))). 0 (the
  /// default) is LXT's efficient form, the plain z-rule. LRP only.
  double epsilon = 0.0;
  /// AG-CAM: each block's attention input (the norm1 output) is detached and made a leaf, so no gradient flows from
  /// an attention branch into the layers below while dy/dA is still defined.
  bool detach_attention_input = false;
  /// AtMan, [B, N]: in every layer, head and query row the scores less the row's minimum are multiplied column by
  /// column by these factors (1 = unchanged) before the softmax. Undefined: no suppression.
  torch::Tensor key_factors;
  bool record_scores = false;  ///< keep the scaled scores' values (ImageCapture::scores)
  /// Keep each block's input and the value projection V·W_projᵀ without its bias (ImageCapture::block_input,
  /// value_proj): Beyond Intuition's token-wise ratio and AtMan's embedding similarity.
  bool record_values = false;

  bool lrp_active() const { return lrp != LrpRules::None; }

  /// LayerNorm over the last dimension; under LRP with σ treated as a constant (recomputed by hand, so values can
  /// differ from the fused kernel by ~1e-7).
  torch::Tensor layer_norm(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                           double eps) const;
  /// The activation; under LRP with the identity rule (backward: grad * φ(h) / (h + 1e-10), spec 14.2 a).
  torch::Tensor activation(const torch::Tensor& h, Activation kind) const;
  /// x Wᵀ + b; under LRP with Gamma where the site has one, else with the ε-rule when epsilon > 0.
  torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                       LinearSite site) const;
  /// The patch embedding conv2d (stride = kernel); under LRP with Gamma(gamma_conv) when it is > 0, else with the
  /// ε-rule when epsilon > 0.
  torch::Tensor patch_conv(const torch::Tensor& images, const torch::Tensor& weight, const torch::Tensor& bias,
                           std::int64_t stride) const;
  /// A bilinear product's output whose gradient AttnLRP halves (the uniform rule); unchanged otherwise.
  torch::Tensor bilinear_product(const torch::Tensor& product) const;
  /// x / ‖x‖ over the last dimension; under LRP with the norm a constant (CLIP's cosine head).
  torch::Tensor normalize(const torch::Tensor& x) const;
  /// InputError for a negative or non-finite gamma or epsilon, or AtMan factors outside [0, 1].
  void check() const;
};

/// zennit's generalised Gamma rule as a gradient rewrite (spec 14.3, LXT's zennit patch): forward x Wᵀ + b; backward
/// R = g ⊙ z split by the four γ-modified products, then returned as R_x / stab(x). Exposed for tests.
torch::Tensor gamma_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                           double gamma);
/// The same for a conv2d with stride = kernel size and no padding (the patch embedding).
torch::Tensor gamma_conv2d(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                           double gamma, std::int64_t stride);
/// z unchanged, with the ε-rule's backward: the incoming gradient times z / (z + ε·sign(z)), sign(0) = +1.
torch::Tensor epsilon_rule(const torch::Tensor& z, double epsilon);
/// φ(h) with the identity rule's backward.
torch::Tensor identity_rule(const torch::Tensor& h, Activation kind);
/// φ(h) with its ordinary backward.
torch::Tensor apply_activation(const torch::Tensor& h, Activation kind);

}  // namespace attnlens
ATTNLENS_API_END
