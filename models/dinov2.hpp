// DINOv2 (facebookresearch/dinov2; timm vit_*_patch14_dinov2; Hugging Face Dinov2Model, Dinov2WithRegistersModel and
// their ForImageClassification heads): a ViT with LayerScale, 0 or 4 register tokens after CLS (no position
// embedding), the SwiGLU feed-forward of ViT-g, and position embeddings resampled to the input size exactly as the
// checkpoint's own code does (MODELS.md A).
#pragma once

#include <torch/torch.h>

#include <string>

#include "../core/api.hpp"
#include "checkpoint.hpp"
#include "image_classifier.hpp"
#include "vision_backbone.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

struct Dinov2Config : ImageModelConfig {
  int mlp_hidden = 1536;  ///< the feed-forward's hidden width (SwiGLU: each half of the packed fc1)
  bool swiglu = false;
  double layer_norm_eps = 1e-6;
  /// Hugging Face's classifier reads [CLS, mean of the patch tokens] (2D features); timm's head the CLS token only.
  bool head_on_patch_mean = false;
  PositionResize position_resize = PositionResize::Bicubic;  ///< how the 37x37 grid was resized to the input
};

/// Namings: "hub" (the original state dict: mask_token, register_tokens, blocks.N.ls1.gamma, mlp.w12/w3 for ViT-g;
/// chunked blocks.C.N.* read flat), "timm" (reg_token, the CLS position row folded into cls_token for the register
/// models, SwiGLU packed in mlp.fc1), "hf" (embeddings.*, encoder.layer.N.*, layer_scale1.lambda1, weights_in/out,
/// classifier [C, 2D]; prefix dinov2., dinov2_with_registers. or none). The model runs at 224 x 224 by default (the
/// official evaluation transform and Hugging Face's processor: resize 256, centre crop 224); position embeddings are
/// resampled by the source's own rule unless options.position_resize says otherwise: hub without registers
/// "offset", hub and Hugging Face with registers and timm "bicubic-antialias", Hugging Face without registers
/// "bicubic". Without a classifier the model is a backbone (logits = the final CLS features).
class Dinov2 : public ImageClassifier {
 public:
  static Dinov2 load(const CheckpointTensors& weights, const ImageModelOptions& options);

  const Dinov2Config& config() const override { return config_; }

 protected:
  torch::Tensor run(const torch::Tensor& images, ImageCapture* capture, const ForwardRules& rules) const override;

 private:
  Dinov2Config config_;
  VisionBackbone backbone_;
  torch::Tensor head_w_, head_b_;
};

}  // namespace attnlens
ATTNLENS_API_END
