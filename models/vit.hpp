// Vision Transformers (ViT, DeiT, distilled DeiT, DINO backbones) in LibTorch, loaded from safetensors in timm or
// Hugging Face naming (spec section 10), with every layer's attention captured for explanations.
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "../core/api.hpp"
#include "../core/array.hpp"
#include "checkpoint.hpp"
#include "image_classifier.hpp"
#include "vision_backbone.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// ViT/DeiT/DINO settings beyond what every image family has.
struct VitConfig : ImageModelConfig {
  int mlp_hidden = 3072;
  double layer_norm_eps = 1e-6;  ///< timm/DINO 1e-6; Hugging Face conversions 1e-12 (their config's value)
};

/// ViT, DeiT, distilled DeiT and DINO (v1) backbones, in timm names (patch_embed.proj.weight, blocks.N.attn.qkv.*,
/// dist_token, head_dist) or Hugging Face ViT/DeiT names (vit./deit./no prefix, separate query/key/value,
/// cls_classifier, distillation_classifier). config.json beside the weights supplies heads, eps, labels and
/// preprocessing, otherwise they are inferred from the tensor shapes. Logits of a distilled DeiT are the mean of its
/// two heads; a backbone without head (DINO) gives the final CLS features.
class VisionTransformer : public ImageClassifier {
 public:
  /// Loads `path`: a .safetensors file, or a folder holding model.safetensors (and config.json). A missing or
  /// mis-shaped tensor is an InputError naming it. options.image_size > 0 resamples the position embeddings
  /// (bicubic, as timm's resampling, unless options.position_resize says otherwise).
  static VisionTransformer load(const std::string& path, const ImageModelOptions& options = {});
  /// The same from an opened checkpoint; `config_path` is the config.json to read (absent: none).
  static VisionTransformer load(const CheckpointTensors& weights, const std::string& config_path,
                                const ImageModelOptions& options);

  const VitConfig& config() const override { return config_; }
  const VisionBackbone* vision_backbone() const override { return &backbone_; }
  /// Undefined for a distilled DeiT (its logits average two heads) and a backbone.
  std::pair<torch::Tensor, torch::Tensor> cls_head() const override;

 protected:
  torch::Tensor run(const torch::Tensor& images, ImageCapture* capture, const ForwardRules& rules) const override;

 private:
  VitConfig config_;
  VisionBackbone backbone_;
  torch::Tensor head_w_, head_b_, head_dist_w_, head_dist_b_;
};

}  // namespace attnlens
ATTNLENS_API_END
