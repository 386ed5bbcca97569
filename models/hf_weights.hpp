// Tensors of a Hugging Face text-classifier checkpoint (internal to attnlens_models): the base model's names under
// a prefix found in the file ("bert.", "distilbert.", "roberta." or none, for a bare base model saved with a head),
// the head's names without it, and the legacy LayerNorm.gamma/beta spelling of TensorFlow-converted files.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "io/safetensors.hpp"
#include "models/text_classifier.hpp"

namespace attnlens {

class HfWeights {
 public:
  /// `marker`: a base-model tensor every file of the family has ("embeddings.word_embeddings.weight"); its prefix
  /// is the base model's. `head_prefixes`: names that never carry the prefix ("classifier.", "pre_classifier.").
  HfWeights(const SafetensorsFile& file, std::string file_name, const std::string& marker,
            std::vector<std::string> head_prefixes);

  bool legacy() const { return legacy_; }
  const std::string& prefix() const { return prefix_; }
  const std::string& file_name() const { return file_name_; }
  /// The name in the file of `name` (base or head tensor).
  std::string resolve(const std::string& name) const;
  bool has(const std::string& name) const;
  /// InputError "<file>: missing tensor '<name>'" when absent.
  std::vector<std::int64_t> shape_of(const std::string& name) const;
  /// The tensor as float32, checked against `shape` (-1 = any extent).
  torch::Tensor get(const std::string& name, const std::vector<std::int64_t>& shape) const;
  /// 1 + the largest N of tensors named <prefix><stem>N.... (0 when there are none).
  int count_layers(const std::string& stem) const;

 private:
  const SafetensorsFile& file_;
  std::string file_name_;
  std::string prefix_;
  std::vector<std::string> head_prefixes_;
  bool legacy_ = false;
};

/// Where a family keeps each tensor of a post-norm encoder layer, relative to "<stem>N." (each a module name:
/// ".weight" and ".bias" are appended).
struct EncoderLayerNames {
  std::string stem, query, key, value, out, norm1, ffn_in, ffn_out, norm2;
};
/// BERT's and RoBERTa's names ("encoder.layer.N.attention.self.query", ...).
const EncoderLayerNames& bert_layer_names();
/// DistilBERT's ("transformer.layer.N.attention.q_lin", ..., "sa_layer_norm", "ffn.lin1", "output_layer_norm").
const EncoderLayerNames& distilbert_layer_names();

/// `layers` encoder layers named by `names`: width D, feed-forward F, every shape checked.
std::vector<TextClassifier::EncoderLayer> read_encoder_layers(const HfWeights& w, const EncoderLayerNames& names,
                                                              int layers, std::int64_t D, std::int64_t F);

}  // namespace attnlens
