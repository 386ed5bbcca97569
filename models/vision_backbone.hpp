// What the image families share: the patch embedding with its prefix tokens and position embeddings, and the stack
// of pre-norm Transformer blocks (x += ls1 * attn(norm1(x)); x += ls2 * ffn(norm2(x))) with every layer's attention
// recorded. ViT/DeiT/DINO, DeiT III, DINOv2 and CLIP's image tower differ only in the fields set here; CLIP's text
// tower runs the same blocks under a causal mask.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "../core/api.hpp"
#include "image_classifier.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// The block's feed-forward network.
enum class FeedForward {
  Gelu,       ///< fc2(gelu(fc1(x))), exact erf GELU (ViT, DeiT, DINO, DINOv2 S/B/L, CLIP laion)
  QuickGelu,  ///< fc2(q(fc1(x))), q(u) = u * sigmoid(1.702 u) (OpenAI CLIP)
  SwiGlu,     ///< fc2(silu(u1) * u2), [u1, u2] = the two halves of fc1(x) (DINOv2 ViT-g)
};

/// One pre-norm block. qkv is the fused projection (rows Q, K, V); ls1/ls2 are LayerScale's per-channel factors,
/// undefined where the family has none.
struct PreNormBlock {
  torch::Tensor norm1_w, norm1_b, qkv_w, qkv_b, proj_w, proj_b, ls1;
  torch::Tensor norm2_w, norm2_b, fc1_w, fc1_b, fc2_w, fc2_b, ls2;
};

/// The blocks with their shared settings.
struct PreNormEncoder {
  std::vector<PreNormBlock> blocks;
  int num_heads = 12;
  double layer_norm_eps = 1e-6;
  FeedForward feed_forward = FeedForward::Gelu;

  /// Runs x [B, N, D] through every block. `mask` (defined: [N, N], added to the scaled scores) is CLIP's causal
  /// mask. With `capture`, each layer's attention and scaled scores are appended to it (the scores keep their
  /// gradient when x requires one). `rules` change the operations (forward_rules.hpp).
  torch::Tensor run(torch::Tensor x, const torch::Tensor& mask, ImageCapture* capture,
                    const ForwardRules& rules = {}) const;
  void to(const torch::Device& device);
};

/// Images to tokens to final-norm token features. Token order: CLS, the distillation token, the registers, then the
/// patches row-major (MODELS.md A.5).
struct VisionBackbone {
  int patch_size = 16;
  torch::Tensor patch_w, patch_b;  ///< the patch convolution [D, C, p, p]; the bias is undefined for CLIP
  torch::Tensor cls_token;         ///< [1, 1, D]
  torch::Tensor dist_token;        ///< [1, 1, D], or undefined
  torch::Tensor registers;         ///< [1, R, D], or undefined; they get no position embedding
  /// [1, pos_prefix + gh * gw, D]: the position embeddings of the first pos_prefix tokens (CLS, distillation) and
  /// of the patches. pos_prefix 0 (DeiT III, timm's DINOv2 with registers): patches only, CLS carries none.
  torch::Tensor pos_embed;
  int pos_prefix = 1;
  torch::Tensor pre_norm_w, pre_norm_b;  ///< CLIP's ln_pre on the embedded tokens, or undefined
  PreNormEncoder encoder;
  torch::Tensor norm_w, norm_b;  ///< the final norm, on every token

  /// [B, N, D] for images [B, C, H, W] whose patch grid is the position embeddings' grid.
  torch::Tensor tokens(const torch::Tensor& images, ImageCapture* capture, const ForwardRules& rules = {}) const;
  /// Resizes the patch part of pos_embed from a gh x gw grid to new_h x new_w by `mode`; the prefix rows stay.
  void resize_positions(int gh, int gw, int new_h, int new_w, PositionResize mode);
  void to(const torch::Device& device);
};

}  // namespace attnlens
ATTNLENS_API_END
