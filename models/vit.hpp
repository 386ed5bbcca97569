// Vision Transformers (ViT, DeiT, distilled DeiT, DINO backbones) in LibTorch, loaded from safetensors in timm or
// Hugging Face naming (spec section 10), with every layer's attention captured for explanations.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "../core/api.hpp"
#include "../core/array.hpp"
#include "arrays.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

struct VitConfig {
  int image_height = 224, image_width = 224;  ///< input size the position embeddings are resampled to
  int patch_size = 16;
  int embed_dim = 768;
  int depth = 12;
  int num_heads = 12;
  int mlp_hidden = 3072;
  int in_chans = 3;
  int num_classes = 1000;       ///< 0 for a bare backbone (DINO): logits are then the final CLS features
  bool distilled = false;       ///< DeiT distilled: CLS + distillation token, logits = mean of both heads
  double layer_norm_eps = 1e-6; ///< timm/DINO 1e-6; Hugging Face conversions 1e-12 (their config's value)
  std::string naming;           ///< "timm" or "hf": which tensor names the weights used
  std::vector<std::string> labels;  ///< class names (config.json), empty when unknown
  std::string preprocess;       ///< preprocessing preset the model expects ("timm-vit", ..., or "none")
  std::vector<double> mean{0.5, 0.5, 0.5}, std{0.5, 0.5, 0.5};  ///< for preset "none": normalisation only

  int prefix_tokens() const { return distilled ? 2 : 1; }
  int grid_h() const { return image_height / patch_size; }
  int grid_w() const { return image_width / patch_size; }
  int tokens() const { return prefix_tokens() + grid_h() * grid_w(); }
};

/// What one forward (and, when asked, one backward) pass records.
struct VitCapture {
  torch::Tensor logits;                        ///< [B, C]
  std::vector<torch::Tensor> attention;        ///< per layer [B, H, N, N], post-softmax
  std::vector<torch::Tensor> attention_grad;   ///< per layer d(target logit)/dA (with gradients)
  std::vector<torch::Tensor> scores_grad;      ///< per layer d(target logit)/d(scaled pre-softmax scores)
  torch::Tensor input_grad;                    ///< [B, 3, H, W] d(target logit)/d(input) (with gradients)
};

class VisionTransformer {
 public:
  /// Loads `path`: a .safetensors file, or a folder holding model.safetensors (and config.json). The naming (timm,
  /// Hugging Face ViT/DeiT, DINO's teacher./backbone./module. prefixes) is detected; config.json beside the weights
  /// supplies heads, eps, labels and preprocessing, otherwise they are inferred from the tensor shapes. A missing or
  /// mis-shaped tensor is an InputError naming it. `image_size` > 0 resamples the position embeddings.
  static VisionTransformer load(const std::string& path, const torch::Device& device = torch::kCPU,
                                int image_size = 0);

  const VitConfig& config() const { return config_; }
  const torch::Device& device() const { return device_; }

  /// Logits [B, C] for images [B, 3, H, W] (already normalised), without recording anything.
  torch::Tensor forward(const torch::Tensor& images) const;
  /// The same logits with autograd recording, so a loss can be differentiated with respect to the input (attacks).
  torch::Tensor differentiable_forward(const torch::Tensor& images) const;

  /// One forward pass recording every layer's attention; with `targets` (one class per image, negative = the
  /// predicted class) also one backward pass of sum_b logits[b, targets[b]] recording the attention, score and
  /// input gradients.
  VitCapture capture(const torch::Tensor& images, const std::vector<std::int64_t>& targets = {}) const;

 private:
  struct Block {
    torch::Tensor norm1_w, norm1_b, qkv_w, qkv_b, proj_w, proj_b, norm2_w, norm2_b, fc1_w, fc1_b, fc2_w, fc2_b;
  };
  torch::Tensor run(const torch::Tensor& images, VitCapture* capture) const;

  VitConfig config_;
  torch::Device device_{torch::kCPU};
  torch::Tensor patch_w_, patch_b_, cls_token_, dist_token_, pos_embed_, norm_w_, norm_b_;
  torch::Tensor head_w_, head_b_, head_dist_w_, head_dist_b_;
  std::vector<Block> blocks_;
};

}  // namespace attnlens
ATTNLENS_API_END
