// CLIP (OpenAI / open_clip ViT-B/32 and ViT-B/16 names, Hugging Face CLIPModel) as a zero-shot image classifier:
// the image tower (patch convolution without bias, ln_pre, pre-norm blocks with QuickGELU or GELU as the checkpoint
// says, ln_post on CLS, projection), the text tower (causal pre-norm blocks, ln_final, the end-of-text token
// projected) and CLIP's byte-level BPE tokenizer. The classes are text prompts: logits are exp(logit_scale) times
// the cosine similarity of the image with each prompt, so every image method explains one prompt's similarity
// (MODELS.md C).
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "../core/api.hpp"
#include "checkpoint.hpp"
#include "image_classifier.hpp"
#include "vision_backbone.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

struct ClipConfig : ImageModelConfig {
  double layer_norm_eps = 1e-5;
  FeedForward image_activation = FeedForward::QuickGelu, text_activation = FeedForward::QuickGelu;
  int projection_dim = 512;  ///< the shared embedding width
  bool has_text_tower = false;
  int text_width = 0, text_depth = 0, text_heads = 0, context_length = 0, vocab_size = 0;
  double logit_scale = 100.0;  ///< exp of the stored log scale
};

/// Namings: "open_clip" (also OpenAI's state dict: visual.conv1.weight, visual.transformer.resblocks.N.*,
/// visual.proj, token_embedding, transformer.resblocks.N.*, text_projection, logit_scale) with open_clip_config.json
/// beside it (model_cfg.quick_gelu, vision_cfg, text_cfg), and "hf" (vision_model.*, text_model.*,
/// visual_projection, text_projection) with config.json (vision_config / text_config: hidden_act, heads, eps).
/// The prompts are tokenised with vocab.json and merges.txt of the model folder (CLIP flavour, context length from
/// the text position embeddings, padded with 0 as open_clip). Without prompts the model is a backbone whose logits
/// are the projected image embedding. A config that restates a width, a depth, a patch size or the vocabulary size
/// differently from the weights is an InputError, and so is a tokenizer whose vocabulary the text tower lacks.
class ClipModel : public ImageClassifier {
 public:
  static ClipModel load(const CheckpointTensors& weights, const ImageModelOptions& options);

  const ClipConfig& config() const override { return config_; }

  /// Projected image embeddings [B, E] (not normalised) for images [B, 3, H, W].
  torch::Tensor image_features(const torch::Tensor& images) const;
  /// Projected text embeddings [T, E] (not normalised) for token ids [T, L] (L <= context_length, int64): the
  /// features of each row's end-of-text token (the first `eot_id`).
  torch::Tensor text_features(const torch::Tensor& ids, std::int64_t eot_id) const;

 protected:
  torch::Tensor run(const torch::Tensor& images, ImageCapture* capture, const ForwardRules& rules) const override;

 private:
  torch::Tensor project_image(const torch::Tensor& images, ImageCapture* capture, const ForwardRules& rules) const;

  ClipConfig config_;
  VisionBackbone image_;
  torch::Tensor image_projection_;  ///< [D, E], applied as x @ proj
  torch::Tensor token_embedding_, text_positions_, final_norm_w_, final_norm_b_, text_projection_;  ///< [W, E]
  PreNormEncoder text_;
  torch::Tensor prompt_embeddings_;  ///< [C, E], each row L2-normalised
};

}  // namespace attnlens
ATTNLENS_API_END
