#include "models/text_model.hpp"

#include <algorithm>
#include <filesystem>

#include "core/array.hpp"
#include "models/roberta.hpp"

namespace attnlens {

namespace fs = std::filesystem;

TextModel load_text_model(const std::string& path, const TextModelSettings& s) {
  const torch::Device device = s.device == "cuda" ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  std::unique_ptr<TextClassifier> model = load_text_classifier(path, device);
  const TextClassifierConfig& c = model->config();
  const fs::path dir = fs::is_directory(path) ? fs::path(path) : fs::path(path).parent_path();
  TextTokenizerSettings t;
  t.kind = c.family == "roberta" ? "roberta" : "wordpiece";
  if (s.lowercase && t.kind != "wordpiece")
    throw InputError("--cased/--lowercase set WordPiece's casing; " + c.family + " has a byte-level BPE tokenizer");
  t.lowercase = s.lowercase;
  t.max_length = s.max_length > 0 ? std::min(s.max_length, c.max_positions) : c.max_positions;
  if (t.max_length < 3) throw InputError("--max-length must be at least 3");
  TextTokenizer tokenizer = TextTokenizer::load(dir.string(), t);
  const Vocabulary& vocab = tokenizer.vocabulary();
  if (vocab.size() != c.vocab_size)
    throw InputError(vocab.name() + " has " + std::to_string(vocab.size()) +
                     " tokens but the model's word embeddings have " + std::to_string(c.vocab_size) +
                     " rows: they do not belong together");
  if (const auto* roberta = dynamic_cast<const RobertaClassifier*>(model.get())) {
    // Positions count from the padding index, so the tokenizer's <pad> must be it.
    if (tokenizer.pad_id() != roberta->padding_idx())
      throw InputError(vocab.name() + ": <pad> is id " + std::to_string(tokenizer.pad_id()) +
                       " but the model's pad_token_id is " + std::to_string(roberta->padding_idx()));
  }
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

std::string text_label(const TextClassifierConfig& c, std::int64_t k) {
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
  TextIntervention iv;
  iv.head_mask = head_mask;
  for (size_t begin = 0; begin < ids.size(); begin += static_cast<size_t>(batch)) {
    const size_t end = std::min(ids.size(), begin + static_cast<size_t>(batch));
    const std::vector<std::vector<std::int64_t>> rows(ids.begin() + static_cast<std::ptrdiff_t>(begin),
                                                      ids.begin() + static_cast<std::ptrdiff_t>(end));
    const TextBatch b = make_text_batch(rows, {}, m.tokenizer.pad_id());
    const auto pred = m.model->forward(b, iv).argmax(1).to(torch::kCPU);
    for (std::int64_t i = 0; i < pred.size(0); ++i) out.push_back(pred[i].item<std::int64_t>());
  }
  return out;
}

}  // namespace attnlens
