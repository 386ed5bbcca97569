// Explaining an image classifier's decisions with several methods at once: one forward pass per batch
// (and one backward pass when a method needs gradients) serves every method, and each image's AttentionRecord holds
// only what the methods read. What `attnlens explain` runs, and the shortest way to explain images from C++.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/api.hpp"
#include "../models/image_classifier.hpp"
#include "method.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

class ImageExplainer {
 public:
  /// `methods` by name (method_names(); "all" for every one). InputError for an unknown name or a setting a method
  /// rejects.
  ImageExplainer(std::vector<std::string> methods, const MethodSettings& settings);

  const std::vector<std::unique_ptr<ExplanationMethod>>& methods() const { return methods_; }
  bool needs_gradients() const { return gradients_; }

  /// Runs `model` on images [B, 3, H, W] (normalised): one forward pass recording the attention, and when a
  /// method needs gradients one backward pass of each image's `category` logit (negative: its predicted class).
  ImageCapture capture(const ImageClassifier& model, const torch::Tensor& images, std::int64_t category = -1) const;

  /// What the methods need of image `b` of `capture`: the full [L,H,N,N] attention and/or its head mean [L,N,N]
  /// (converting 1/H of the data is most of what head-mean methods save), and the gradients when needed.
  AttentionRecord record(const ImageCapture& capture, std::int64_t b, const TokenLayout& layout) const;

 private:
  std::vector<std::unique_ptr<ExplanationMethod>> methods_;
  bool gradients_ = false, full_attention_ = false, head_mean_ = false;
};

/// The token layout of a model's input: its prefix tokens (CLS, distillation, registers) and patch grid.
TokenLayout token_layout(const ImageModelConfig& config);

}  // namespace attnlens
ATTNLENS_API_END
