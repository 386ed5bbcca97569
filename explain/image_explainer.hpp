// Explaining an image classifier's decisions with several methods at once: one forward pass per batch
// (and one backward pass when a method needs gradients) serves every attention-graph method, and each image's
// AttentionRecord holds only what they read; the methods that run the model themselves (model_method.hpp) then run
// on each image. What `attnlens explain` runs, and the shortest way to explain images from C++.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/api.hpp"
#include "../models/image_classifier.hpp"
#include "method.hpp"
#include "model_method.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// One method's map of one image, and the seconds it took beyond the shared pass.
struct MethodMap {
  std::string method;
  Array map;  ///< [grid_h, grid_w], or [H, grid_h, grid_w] for per-head methods
  double seconds = 0.0;
};

class ImageExplainer {
 public:
  /// `methods` by name (image_method_names(); "all" for every one). InputError for an unknown name or a setting a
  /// method rejects.
  ImageExplainer(std::vector<std::string> methods, const MethodSettings& settings);

  /// The method names, in the order given.
  const std::vector<std::string>& names() const { return names_; }
  bool needs_gradients() const { return gradients_; }
  /// InputError when a method cannot explain this model with these settings (call before running anything).
  void check(const ImageModelConfig& config) const;

  /// Runs `model` on images [B, 3, H, W] (normalised): one forward pass recording the attention, and when a
  /// method needs gradients one backward pass of each image's `category` logit (negative: its predicted class).
  ImageCapture capture(const ImageClassifier& model, const torch::Tensor& images, std::int64_t category = -1) const;

  /// What the methods need of image `b` of `capture`: the full [L,H,N,N] attention and/or its head mean [L,N,N]
  /// (converting 1/H of the data is most of what head-mean methods save), and the gradients when needed.
  AttentionRecord record(const ImageCapture& capture, std::int64_t b, const TokenLayout& layout) const;

  /// Every method's map of image `b` of `images` (the batch `capture` came from) for class `target` (>= 0), in the
  /// order of names(): the attention-graph methods from the capture, the others by running `model` again.
  std::vector<MethodMap> explain(const ImageClassifier& model, const ImageCapture& capture,
                                 const torch::Tensor& images, std::int64_t b, std::int64_t target,
                                 const TokenLayout& layout) const;

 private:
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<ExplanationMethod>> methods_;             ///< by position in names_, or null
  std::vector<std::unique_ptr<ModelExplanationMethod>> model_methods_;  ///< the same
  bool gradients_ = false, full_attention_ = false, head_mean_ = false;
};

/// The token layout of a model's input: its prefix tokens (CLS, distillation, registers) and patch grid.
TokenLayout token_layout(const ImageModelConfig& config);

}  // namespace attnlens
ATTNLENS_API_END
