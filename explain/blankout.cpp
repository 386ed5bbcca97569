// Token blank-out (Abnar & Zuidema's text protocol, spec 8.1): the change in the target probability when one
// token is replaced.
#include "explain/text_methods.hpp"

namespace attnlens {

std::vector<double> token_blankout(const TextClassifier& model, const TextBatch& text, std::int64_t target,
                                   std::int64_t replacement_id, int batch) {
  if (text.size() != 1) throw InputError("blank-out explains one text at a time");
  if (replacement_id < 0 || replacement_id >= model.config().vocab_size)
    throw InputError("blank-out replacement token id is out of range");
  const std::int64_t T = text.length();
  const double base = torch::softmax(model.forward(text), 1)[0][target].item<double>();
  std::vector<double> scores(static_cast<size_t>(T));
  const std::int64_t chunk = batch > 0 ? batch : T;
  for (std::int64_t begin = 0; begin < T; begin += chunk) {
    const std::int64_t n = std::min(chunk, T - begin);
    TextBatch variants{text.input_ids.repeat({n, 1}), text.token_type_ids.repeat({n, 1}),
                       text.attention_mask.repeat({n, 1})};
    for (std::int64_t k = 0; k < n; ++k) variants.input_ids[k][begin + k] = replacement_id;
    const auto p = torch::softmax(model.forward(variants), 1).select(1, target).to(torch::kCPU, torch::kFloat64);
    for (std::int64_t k = 0; k < n; ++k) scores[static_cast<size_t>(begin + k)] = base - p[k].item<double>();
  }
  return scores;
}

}  // namespace attnlens
