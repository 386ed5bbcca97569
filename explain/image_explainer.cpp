#include "explain/image_explainer.hpp"

#include "models/arrays.hpp"

namespace attnlens {

ImageExplainer::ImageExplainer(std::vector<std::string> names, const MethodSettings& settings) {
  if (names.size() == 1 && names[0] == "all") names = method_names();
  for (const auto& name : names) {
    methods_.push_back(make_method(name, settings));
    gradients_ |= methods_.back()->needs_gradients();
    (methods_.back()->uses_head_mean() ? head_mean_ : full_attention_) = true;
  }
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

TokenLayout token_layout(const ImageModelConfig& c) {
  return TokenLayout::resolve(c.tokens(), c.prefix_tokens(), c.grid_h(), c.grid_w());
}

}  // namespace attnlens
