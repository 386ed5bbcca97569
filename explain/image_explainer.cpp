#include "explain/image_explainer.hpp"

#include <chrono>

#include "models/arrays.hpp"

namespace attnlens {

ImageExplainer::ImageExplainer(std::vector<std::string> names, const MethodSettings& settings) {
  if (names.size() == 1 && names[0] == "all") names = image_method_names();
  names_ = names;
  for (const auto& name : names) {
    if (is_model_method(name)) {
      model_methods_.push_back(make_model_method(name, settings));
      methods_.emplace_back();
      continue;
    }
    methods_.push_back(make_method(name, settings));
    model_methods_.emplace_back();
    gradients_ |= methods_.back()->needs_gradients();
    (methods_.back()->uses_head_mean() ? head_mean_ : full_attention_) = true;
  }
}

void ImageExplainer::check(const ImageModelConfig& config) const {
  for (const auto& m : model_methods_)
    if (m) m->check(config);
}

ImageCapture ImageExplainer::capture(const ImageClassifier& model, const torch::Tensor& images,
                                   std::int64_t category) const {
  if (gradients_ && model.config().num_classes == 0)
    throw InputError("gradient methods need a classifier head; this is a backbone");
  const std::vector<std::int64_t> targets(static_cast<size_t>(images.size(0)), category);
  return model.capture(images, gradients_ ? targets : std::vector<std::int64_t>{});
}

AttentionRecord ImageExplainer::record(const ImageCapture& cap, std::int64_t b, const TokenLayout& layout) const {
  AttentionRecord record;
  if (full_attention_) record.attention = image_layers(cap.attention, b);
  if (head_mean_) record.head_mean = image_layers_head_mean(cap.attention, b);
  if (gradients_) {
    record.attention_grad = image_layers(cap.attention_grad, b);
    record.scores_grad = image_layers(cap.scores_grad, b);
  }
  record.layout = layout;
  return record;
}

std::vector<MethodMap> ImageExplainer::explain(const ImageClassifier& model, const ImageCapture& capture,
                                               const torch::Tensor& images, std::int64_t b, std::int64_t target,
                                               const TokenLayout& layout) const {
  const AttentionRecord rec = record(capture, b, layout);
  std::vector<MethodMap> out;
  for (size_t i = 0; i < names_.size(); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    MethodMap m;
    m.method = names_[i];
    m.map = methods_[i] ? methods_[i]->explain(rec) : model_methods_[i]->explain_image(model, images[b], target);
    m.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.push_back(std::move(m));
  }
  return out;
}

TokenLayout token_layout(const ImageModelConfig& c) {
  return TokenLayout::resolve(c.tokens(), c.prefix_tokens(), c.grid_h(), c.grid_w());
}

}  // namespace attnlens
