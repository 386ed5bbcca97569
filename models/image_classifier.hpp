// The one interface every image model family implements (ViT/DeiT/DINO, DeiT III, DINOv2, CLIP): its token layout
// and input, logits with and without autograd, and a capture of every layer's attention (and, for a target class,
// the gradients). Explanations, evaluation, attacks and the CLI take an ImageClassifier; load_image_classifier()
// tells the family from the checkpoint's tensor names and config files.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "../core/api.hpp"
#include "forward_rules.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

struct VisionBackbone;  // vision_backbone.hpp

/// What every image family shares: input size, patch grid, prefix tokens, classes and preprocessing.
struct ImageModelConfig {
  std::string family;  ///< "vit" (ViT, DeiT, distilled DeiT, DINO), "deit3", "dinov2", "clip"
  std::string naming;  ///< tensor names the weights used: "timm", "hf", "hub" (DINOv2's own), "open_clip"
  int image_height = 224, image_width = 224;  ///< input size the position embeddings are resampled to
  int patch_size = 16;
  int in_chans = 3;
  int embed_dim = 768;
  int depth = 12;
  int num_heads = 12;
  int num_classes = 1000;  ///< 0 for a bare backbone: logits are then its features
  int register_tokens = 0;  ///< DINOv2 registers: prefix tokens after CLS, without position embedding
  bool distilled = false;   ///< DeiT distilled: a distillation token after CLS
  std::vector<std::string> labels;  ///< class names (config.json, or CLIP's prompts), empty when unknown
  std::string preprocess;           ///< preprocessing preset the model expects ("timm-vit", ..., or "none")
  std::vector<double> mean{0.5, 0.5, 0.5}, std{0.5, 0.5, 0.5};  ///< for preset "none": normalisation only

  /// Tokens before the patch grid: CLS, the distillation token, the registers. Explanations cover the patches only.
  int prefix_tokens() const { return 1 + (distilled ? 1 : 0) + register_tokens; }
  int grid_h() const { return image_height / patch_size; }
  int grid_w() const { return image_width / patch_size; }
  int tokens() const { return prefix_tokens() + grid_h() * grid_w(); }
  /// "CLS", "CLS + distillation", "CLS + 4 registers": what the prefix tokens are, for messages.
  std::string prefix_description() const;
};

/// What one forward (and, when asked, one backward) pass records.
struct ImageCapture {
  torch::Tensor logits;                       ///< [B, C]
  std::vector<torch::Tensor> attention;       ///< per layer [B, H, N, N], post-softmax
  std::vector<torch::Tensor> attention_grad;  ///< per layer d(target logit)/dA (with gradients)
  std::vector<torch::Tensor> scores_grad;     ///< per layer d(target logit)/d(scaled pre-softmax scores)
  torch::Tensor input_grad;                   ///< [B, 3, H, W] d(target logit)/d(input) (with gradients)
  std::vector<torch::Tensor> scores;          ///< per layer the scaled scores (ForwardRules::record_scores)
  std::vector<torch::Tensor> block_input;     ///< per layer its input [B, N, D] (ForwardRules::record_values)
  std::vector<torch::Tensor> value_proj;      ///< per layer V·W_projᵀ, no bias, [B, N, D] (record_values)
};

/// How a position-embedding grid is resized to another input size (MODELS.md A.6): the sources differ, and the
/// results differ by up to 0.7 on unit-scale embeddings, so each checkpoint gets its source's mode.
enum class PositionResize {
  Bicubic,           ///< bicubic to the new size (align_corners false): HF Dinov2Model, HF CLIP, attnlens' ViT
  BicubicAntialias,  ///< the same with antialiasing: timm's resample_abs_pos_embed, DINOv2 with registers
  BicubicOffset,     ///< DINOv2's own non-register code: scale factor (new + 0.1) / old, no antialiasing
};
/// "bicubic", "bicubic-antialias", "offset"; InputError for another name.
PositionResize parse_position_resize(const std::string& name);

struct ImageModelOptions {
  torch::Device device = torch::kCPU;
  int image_size = 0;  ///< > 0: run at this square input size (position embeddings resampled); 0: the family's
  std::optional<PositionResize> position_resize;  ///< unset: the checkpoint source's own mode
  std::vector<std::string> prompts;  ///< CLIP: the zero-shot classes, one text prompt each (an error elsewhere)
};

class ImageClassifier {
 public:
  virtual ~ImageClassifier() = default;

  virtual const ImageModelConfig& config() const = 0;
  const torch::Device& device() const { return device_; }

  /// Logits [B, C] for images [B, 3, H, W] (already normalised), without recording anything; `rules` change the
  /// pass (AtMan's suppressed keys).
  torch::Tensor forward(const torch::Tensor& images, const ForwardRules& rules = {}) const;
  /// The same logits with autograd recording, so a loss can be differentiated with respect to the input (attacks).
  torch::Tensor differentiable_forward(const torch::Tensor& images) const;
  /// One forward pass recording every layer's attention; with `targets` (one class per image, negative = the
  /// predicted class) also one backward pass of sum_b logits[b, targets[b]] recording the attention, score and
  /// input gradients. Under `rules` those gradients are the modified ones (LRP: input x input_grad is the
  /// relevance).
  ImageCapture capture(const torch::Tensor& images, const std::vector<std::int64_t>& targets = {},
                       const ForwardRules& rules = {}) const;

  /// The patch embedding, blocks and final norm, for methods that run the layers themselves (chefer-lrp keeps
  /// every layer's input); null for the families that do not expose them (DINOv2, CLIP).
  virtual const VisionBackbone* vision_backbone() const { return nullptr; }
  /// (weight [C, D], bias [C]) of the linear head when the logits are exactly that head on the final CLS features;
  /// undefined tensors otherwise (a backbone, a distilled DeiT's two heads, CLIP's prompts).
  virtual std::pair<torch::Tensor, torch::Tensor> cls_head() const { return {}; }

 protected:
  /// The family's forward pass: logits, appending each layer's attention and pre-softmax scores to `capture`
  /// when it is not null (their gradients are read after the backward pass), every operation as `rules` say.
  /// InputError for another input shape.
  virtual torch::Tensor run(const torch::Tensor& images, ImageCapture* capture, const ForwardRules& rules) const = 0;
  /// InputError unless images are [B, in_chans, image_height, image_width].
  void check_input(const torch::Tensor& images) const;

  torch::Device device_{torch::kCPU};
};

/// Loads `path` (a .safetensors file, or a folder holding model.safetensors and its config files) as the family its
/// tensor names and config say: ViT/DeiT/DINO, DeiT III, DINOv2 or CLIP, in each family's namings. A checkpoint
/// that matches no family is an InputError listing the families tried and the tensors each looked for.
std::unique_ptr<ImageClassifier> load_image_classifier(const std::string& path, const ImageModelOptions& options = {});

}  // namespace attnlens
ATTNLENS_API_END
