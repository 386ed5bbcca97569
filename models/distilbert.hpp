// DistilBERT sentence classifiers (Hugging Face DistilBertForSequenceClassification; MODELS.md D, F.4) in LibTorch:
// a TextClassifier with word + position embeddings (no token types), post-norm layers whose queries are scaled
// before the product and whose padding keys are filled with the float minimum, LayerNorm eps 1e-12 everywhere, and
// the pre_classifier + ReLU head on the first token.
#pragma once

#include <torch/torch.h>

#include <string>

#include "../core/api.hpp"
#include "text_classifier.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

class DistilBertClassifier : public TextClassifier {
 public:
  /// Loads `path` (a .safetensors file or a folder with model.safetensors and config.json): names with the
  /// "distilbert." prefix or without (a bare DistilBertModel saved with the head). Sizes come from the tensor
  /// shapes; config.json gives n_heads (default dim/64), activation and labels, and must agree with the weights on
  /// dim, n_layers, hidden_dim and vocab_size. A stored position table is used as it is (also a sinusoidal one).
  static DistilBertClassifier load(const std::string& path, const torch::Device& device = torch::kCPU);

  /// Word + position embeddings [B, T, D] before the embedding LayerNorm; token types are ignored.
  torch::Tensor word_embeddings(const TextBatch& batch) const override;
  torch::Tensor embed(const TextBatch& batch) const override;

  TokenHead token_head() const override { return {pre_w_, pre_b_, cls_w_, cls_b_, Activation::Relu}; }

 private:
  /// pre_classifier, ReLU, classifier on the first token.
  torch::Tensor head(const torch::Tensor& hidden, const ForwardRules& rules) const override;

  torch::Tensor word_emb_, pos_emb_, pre_w_, pre_b_, cls_w_, cls_b_;
};

}  // namespace attnlens
ATTNLENS_API_END
