// The explanation methods that run the model themselves, behind one small interface: relevance propagation as
// modified gradients (attnlrp, cp-lrp), gradients in a changed graph (agcam) or along a path (bi-attn,
// bi-attn-token), and attention manipulation (atman), on images and, where the method applies, on text. The
// attention-graph methods (method.hpp) read one recorded pass; these need the model, so they live beside it
// (LibTorch).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/api.hpp"
#include "../core/array.hpp"
#include "../models/image_classifier.hpp"
#include "../models/text_classifier.hpp"
#include "method.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

class ModelExplanationMethod {
 public:
  virtual ~ModelExplanationMethod() = default;
  virtual std::string name() const = 0;
  /// InputError when a setting does not fit the model (a start layer beyond its depth, a backbone without classes).
  /// Callers check before the first image, so bad settings write nothing.
  virtual void check(const ImageModelConfig& config) const;
  /// False when the method cannot explain this architecture whatever the settings (chefer-lrp on DINOv2): "all"
  /// leaves it out there, and check() says why when it is asked for by name.
  virtual bool applies_to(const ImageModelConfig&) const { return true; }
  /// Relevance of each patch, [grid_h, grid_w], of one image [3, H, W] (normalised) for class `target` (>= 0); not
  /// rescaled, signed where the method is.
  virtual Array explain_image(const ImageClassifier& model, const torch::Tensor& image, std::int64_t target) const = 0;
  /// True when the method explains a text classifier's tokens too.
  virtual bool explains_text() const { return false; }
  /// Relevance of every token [T] ([CLS]/[SEP] included) of one text (a batch of one, no padding) for class `target`
  /// (>= 0). InputError unless explains_text().
  virtual std::vector<double> explain_text(const TextClassifier& model, const TextBatch& text,
                                           std::int64_t target) const;
  /// Model passes per explanation, in forward-pass equivalents (a backward counts as two forwards), for the cost
  /// columns: what the method needs, whatever the implementation.
  virtual double passes(const ImageModelConfig& config) const = 0;
};

/// agcam, bi-attn, bi-attn-token, atman, attnlrp, cp-lrp, chefer-lrp.
const std::vector<std::string>& model_method_names();
bool is_model_method(const std::string& name);
/// InputError for an unknown name or a setting out of range (gamma < 0, steps < 1, ...).
std::unique_ptr<ModelExplanationMethod> make_model_method(const std::string& name, const MethodSettings& settings);
/// Every image method: method_names() then model_method_names().
const std::vector<std::string>& image_method_names();
/// What "all" means for one model: image_method_names() less the model methods that do not apply to its
/// architecture (ModelExplanationMethod::applies_to).
std::vector<std::string> image_method_names(const ImageModelConfig& config);

// The factories behind make_model_method, one per file in explain/.
std::unique_ptr<ModelExplanationMethod> make_agcam(const MethodSettings&);
std::unique_ptr<ModelExplanationMethod> make_bi_attn(const MethodSettings&);
std::unique_ptr<ModelExplanationMethod> make_bi_attn_token(const MethodSettings&);
std::unique_ptr<ModelExplanationMethod> make_atman(const MethodSettings&);
std::unique_ptr<ModelExplanationMethod> make_attnlrp(const MethodSettings&);
std::unique_ptr<ModelExplanationMethod> make_cp_lrp(const MethodSettings&);
std::unique_ptr<ModelExplanationMethod> make_chefer_lrp(const MethodSettings&);

}  // namespace attnlens
ATTNLENS_API_END
