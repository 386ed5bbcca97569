// A text classifier ready to use: a BERT, DistilBERT or RoBERTa model with the tokenizer of its folder (WordPiece or
// byte-level BPE), texts encoded for it, and predictions over many texts. What every text command and the text
// applications (eval/text_applications.hpp) start from.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "../core/api.hpp"
#include "../io/text_tokenizer.hpp"
#include "text_classifier.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

struct TextModelSettings {
  std::string device = "cpu";     ///< cpu | cuda
  int max_length = 0;             ///< tokens per text incl. the special tokens; 0 = the model's position count
  std::optional<bool> lowercase;  ///< override the folder's do_lower_case (WordPiece only)
};

struct TextModel {
  std::string path;
  std::unique_ptr<TextClassifier> model;
  TextTokenizer tokenizer;
};

/// Loads a model folder (model.safetensors, config.json and the tokenizer's files) or a .safetensors file with
/// them beside it. The family comes from the tensor names (load_text_classifier); BERT and DistilBERT take
/// vocab.txt (WordPiece), RoBERTa vocab.json + merges.txt (byte-level BPE). InputError for missing tokenizer
/// files, a vocabulary that does not match the embeddings (or, for RoBERTa, a <pad> that is not the padding
/// index), --lowercase on a BPE tokenizer, or max_length < 3.
TextModel load_text_model(const std::string& path, const TextModelSettings& settings = {});

/// One text ready for the model (a batch of one, no padding).
struct EncodedText {
  std::string text;
  Encoding encoding;  ///< encoding.truncated tells whether the text was cut to the tokenizer's max_length
  TextBatch batch;
};
/// InputError for a text with no tokens besides the special ones ([CLS] and [SEP], <s> and </s>).
EncodedText encode_text(const TextModel& model, const std::string& text);

/// Display name of class `c` (its number when the model has no labels).
std::string text_label(const TextClassifierConfig& config, std::int64_t c);

/// The id of vocabulary token `token`; InputError naming `option` when it is not in the vocabulary.
std::int64_t vocabulary_id(const TextModel& model, const std::string& token, const std::string& option);

/// Softmax probability of each class, [C], for logits of one text.
std::vector<double> class_probabilities(const torch::Tensor& logits);

/// The predicted class of each encoded text, in padded batches of `batch`; `head_mask` ([L, H], 0 = pruned) as in
/// TextIntervention.
std::vector<std::int64_t> predict_classes(const TextModel& model, const std::vector<std::vector<std::int64_t>>& ids,
                                          const torch::Tensor& head_mask = {}, int batch = 64);

}  // namespace attnlens
ATTNLENS_API_END
