// A text classifier ready to use: a BERT-family model with the tokenizer of its folder, texts encoded for it, and
// predictions over many texts. What every text command and the text applications (eval/text_applications.hpp)
// start from.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "../core/api.hpp"
#include "../io/wordpiece.hpp"
#include "bert.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

struct TextModelSettings {
  std::string device = "cpu";     ///< cpu | cuda
  int max_length = 0;             ///< tokens per text incl. [CLS]/[SEP]; 0 = the model's position count
  std::optional<bool> lowercase;  ///< override config.json's do_lower_case
};

struct TextModel {
  std::string path;
  BertClassifier model;
  WordPieceTokenizer tokenizer;
};

/// Loads a model folder (model.safetensors, config.json, vocab.txt) or a .safetensors file with vocab.txt beside
/// it. InputError for a missing vocabulary, a vocabulary that does not match the embeddings, or max_length < 3.
TextModel load_text_model(const std::string& path, const TextModelSettings& settings = {});

/// One text ready for the model (a batch of one, no padding).
struct EncodedText {
  std::string text;
  Encoding encoding;  ///< encoding.truncated tells whether the text was cut to the tokenizer's max_length
  TextBatch batch;
};
/// InputError for a text with no tokens besides [CLS] and [SEP].
EncodedText encode_text(const TextModel& model, const std::string& text);

/// Display name of class `c` (its number when the model has no labels).
std::string text_label(const BertConfig& config, std::int64_t c);

/// The id of vocabulary token `token`; InputError naming `option` when it is not in the vocabulary.
std::int64_t vocabulary_id(const TextModel& model, const std::string& token, const std::string& option);

/// Softmax probability of each class, [C], for logits of one text.
std::vector<double> class_probabilities(const torch::Tensor& logits);

/// The predicted class of each encoded text, in padded batches of `batch`; `head_mask` ([L, H], 0 = pruned) as in
/// BertIntervention.
std::vector<std::int64_t> predict_classes(const TextModel& model, const std::vector<std::vector<std::int64_t>>& ids,
                                          const torch::Tensor& head_mask = {}, int batch = 64);

}  // namespace attnlens
ATTNLENS_API_END
