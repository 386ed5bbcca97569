// Input x gradient on the token embeddings: the gradient baseline the attention methods are compared with.
#include "explain/text_methods.hpp"

namespace attnlens {

std::vector<double> input_x_gradient(const TextClassifier& model, const TextBatch& text, std::int64_t target) {
  if (text.size() != 1) throw InputError("input x gradient explains one text at a time");
  const TextCapture cap = model.capture(text, {target}, TargetKind::Logit);
  const auto s = (cap.embeddings[0] * cap.embeddings_grad[0]).sum(1).to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
}

}  // namespace attnlens
