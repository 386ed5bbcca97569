// RoBERTa sentence classifiers (Hugging Face RobertaForSequenceClassification; MODELS.md E, F.5) in LibTorch: a
// TextClassifier with BERT's post-norm encoder, positions counted from the padding index (real tokens get
// padding_idx + 1, + 2, ...; padding gets padding_idx), the single token-type row added to every token, and the
// dense + tanh + out_proj head on <s>. There is no pooler.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "../core/api.hpp"
#include "text_classifier.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

class RobertaClassifier : public TextClassifier {
 public:
  /// Loads `path` (a .safetensors file or a folder with model.safetensors and config.json): names with the
  /// "roberta." prefix or without. Sizes come from the tensor shapes; config.json gives num_attention_heads
  /// (default width/64), layer_norm_eps (1e-5 in the published checkpoints; Hugging Face's default 1e-12 when the
  /// key is absent), hidden_act, pad_token_id (the padding index, default 1) and labels, and must agree with the
  /// weights on vocab_size, hidden_size and num_hidden_layers. A roberta.pooler in the file is not used.
  static RobertaClassifier load(const std::string& path, const torch::Device& device = torch::kCPU);

  /// Word + position (from the padding index) + token-type embeddings [B, T, D] before the LayerNorm.
  torch::Tensor word_embeddings(const TextBatch& batch) const override;
  torch::Tensor embed(const TextBatch& batch) const override;
  /// The padding index: the id of <pad>, and the position every padding token gets.
  std::int64_t padding_idx() const { return padding_idx_; }

  TokenHead token_head() const override { return {dense_w_, dense_b_, out_w_, out_b_, Activation::Tanh}; }

 private:
  /// classifier.dense, tanh, classifier.out_proj on <s>.
  torch::Tensor head(const torch::Tensor& hidden, const ForwardRules& rules) const override;

  torch::Tensor word_emb_, pos_emb_, type_emb_, dense_w_, dense_b_, out_w_, out_b_;
  std::int64_t padding_idx_ = 1;
};

}  // namespace attnlens
ATTNLENS_API_END
