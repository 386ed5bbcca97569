#include "models/text_model.hpp"

#include <algorithm>
#include <filesystem>

#include "core/array.hpp"

namespace attnlens {

namespace fs = std::filesystem;

TextModel load_text_model(const std::string& path, const TextModelSettings& s) {
  const torch::Device device = s.device == "cuda" ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  BertClassifier model = BertClassifier::load(path, device);
  const fs::path dir = fs::is_directory(path) ? fs::path(path) : fs::path(path).parent_path();
  if (!fs::exists(dir / "vocab.txt")) throw InputError("no vocab.txt beside the model in " + dir.string());
  Vocabulary vocab = Vocabulary::load((dir / "vocab.txt").string());
  if (vocab.size() != model.config().vocab_size)
    throw InputError((dir / "vocab.txt").string() + " has " + std::to_string(vocab.size()) +
                     " tokens but the model's word embeddings have " + std::to_string(model.config().vocab_size) +
                     " rows: they do not belong together");
  TokenizerOptions t;
  t.lowercase = s.lowercase.value_or(model.config().do_lower_case);
  t.max_length = s.max_length > 0 ? std::min(s.max_length, model.config().max_positions) : model.config().max_positions;
  if (t.max_length < 3) throw InputError("--max-length must be at least 3");
  WordPieceTokenizer tokenizer(std::move(vocab), t);
  return TextModel{path, std::move(model), std::move(tokenizer)};
}

EncodedText encode_text(const TextModel& m, const std::string& text) {
  EncodedText e;
  e.text = text;
  e.encoding = m.tokenizer.encode(text);
  if (e.encoding.ids.size() <= 2) throw InputError("text has no tokens: '" + text + "'");
  e.batch = make_text_batch({e.encoding.ids}, {e.encoding.token_type_ids}, 0);
  return e;
}

std::string text_label(const BertConfig& c, std::int64_t k) {
  if (k >= 0 && k < static_cast<std::int64_t>(c.labels.size())) return c.labels[static_cast<size_t>(k)];
  return std::to_string(k);
}

std::int64_t vocabulary_id(const TextModel& m, const std::string& token, const std::string& option) {
  const auto id = m.tokenizer.vocabulary().find(token);
  if (!id) throw InputError(option + " '" + token + "' is not in the vocabulary");
  return *id;
}

std::vector<double> class_probabilities(const torch::Tensor& logits) {
  const auto p = torch::softmax(logits, -1).reshape({-1}).to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(p.data_ptr<double>(), p.data_ptr<double>() + p.numel());
}

std::vector<std::int64_t> predict_classes(const TextModel& m, const std::vector<std::vector<std::int64_t>>& ids,
                                          const torch::Tensor& head_mask, int batch) {
  std::vector<std::int64_t> out;
  BertIntervention iv;
  iv.head_mask = head_mask;
  for (size_t begin = 0; begin < ids.size(); begin += static_cast<size_t>(batch)) {
    const size_t end = std::min(ids.size(), begin + static_cast<size_t>(batch));
    const std::vector<std::vector<std::int64_t>> rows(ids.begin() + static_cast<std::ptrdiff_t>(begin),
                                                      ids.begin() + static_cast<std::ptrdiff_t>(end));
    const TextBatch b = make_text_batch(rows, {}, m.tokenizer.pad_id());
    const auto pred = m.model.forward(b, iv).argmax(1).to(torch::kCPU);
    for (std::int64_t i = 0; i < pred.size(0); ++i) out.push_back(pred[i].item<std::int64_t>());
  }
  return out;
}

}  // namespace attnlens
