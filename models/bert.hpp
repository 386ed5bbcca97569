// BERT sentence classifiers (Hugging Face BertForSequenceClassification) in LibTorch, loaded from safetensors
// (spec section 10(c); legacy LayerNorm.gamma/beta names too): a TextClassifier (models/text_classifier.hpp) with
// BERT's embeddings (word + position + token type) and its pooler head.
#pragma once

#include <torch/torch.h>

#include <string>

#include "../core/api.hpp"
#include "text_classifier.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

class BertClassifier : public TextClassifier {
 public:
  /// Loads `path`: a .safetensors file or a folder holding model.safetensors (and config.json, vocab.txt). The
  /// architecture comes from the tensor shapes; config.json adds heads, eps, activation, the padding mask value and
  /// labels, and must agree with the weights on vocab_size, hidden_size and num_hidden_layers. Names may carry the
  /// "bert." prefix or not. A missing or mis-shaped tensor is an InputError naming it.
  static BertClassifier load(const std::string& path, const torch::Device& device = torch::kCPU);

  /// Word + position + token-type embeddings [B, T, D] before the embedding LayerNorm.
  torch::Tensor word_embeddings(const TextBatch& batch) const override;
  torch::Tensor embed(const TextBatch& batch) const override;

  TokenHead token_head() const override { return {pooler_w_, pooler_b_, cls_w_, cls_b_, Activation::Tanh}; }

 private:
  /// The pooler (tanh of a dense layer on [CLS]) and the classifier.
  torch::Tensor head(const torch::Tensor& hidden, const ForwardRules& rules) const override;

  torch::Tensor word_emb_, pos_emb_, type_emb_, pooler_w_, pooler_b_, cls_w_, cls_b_;
};

}  // namespace attnlens
ATTNLENS_API_END
