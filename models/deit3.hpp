// DeiT III (timm deit3_*; facebookresearch/deit models_v2 vit_models): a ViT whose position embeddings cover the
// patches only (the CLS token carries none) and whose blocks scale both branches by LayerScale (MODELS.md B).
#pragma once

#include <torch/torch.h>

#include <string>
#include <utility>

#include "../core/api.hpp"
#include "checkpoint.hpp"
#include "image_classifier.hpp"
#include "vision_backbone.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

struct Deit3Config : ImageModelConfig {
  int mlp_hidden = 1536;
  double layer_norm_eps = 1e-6;
};

/// timm names (cls_token, pos_embed [1, G, D], blocks.N.ls1.gamma / ls2.gamma, head) or the original file's
/// (blocks.N.gamma_1 / gamma_2). Heads: config.json's num_heads, else timm's "architecture" (deit3_small: 6,
/// medium: 8, base: 12, large and huge: 16), else width / 64. Preprocessing timm-deit (crop 0.9, ImageNet mean/std,
/// the *_224.fb_in1k weights'; the others use crop 1.0: --resize S --crop S). A file without head is a backbone.
class Deit3 : public ImageClassifier {
 public:
  static Deit3 load(const CheckpointTensors& weights, const ImageModelOptions& options);

  const Deit3Config& config() const override { return config_; }
  const VisionBackbone* vision_backbone() const override { return &backbone_; }
  std::pair<torch::Tensor, torch::Tensor> cls_head() const override { return {head_w_, head_b_}; }

 protected:
  torch::Tensor run(const torch::Tensor& images, ImageCapture* capture, const ForwardRules& rules) const override;

 private:
  Deit3Config config_;
  VisionBackbone backbone_;
  torch::Tensor head_w_, head_b_;
};

}  // namespace attnlens
ATTNLENS_API_END
