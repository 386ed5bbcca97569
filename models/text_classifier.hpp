// The interface every text-classifier family implements (BERT, DistilBERT, RoBERTa: post-norm Transformer encoders
// with a head on the first token), and what the text methods and applications use through it: one forward pass,
// one capture of every layer's attention (and its gradient), the layers from a given one on (for integrated
// gradients), the embedding layer's output (for input x gradient), and the interventions AttAttr and head pruning
// make. load_text_classifier() picks the family from a checkpoint's tensor names.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/api.hpp"
#include "forward_rules.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// What every family's checkpoint gives: sizes from the tensor shapes, the rest from config.json.
struct TextClassifierConfig {
  std::string family;  ///< "bert", "distilbert" or "roberta"
  int vocab_size = 0;
  int hidden_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int intermediate_size = 0;
  int max_positions = 0;    ///< most tokens per text (RoBERTa: its position rows less padding_idx + 1)
  int type_vocab_size = 0;  ///< token-type rows (0: the family has none, DistilBERT)
  int num_labels = 0;
  double layer_norm_eps = 1e-12;
  /// Added to the attention scores of padding keys (BERT: -10000 as AttAttr and the original BERT, or config.json's
  /// attention_mask_value); DistilBERT and RoBERTa use the float minimum, as Hugging Face does now. Only batches
  /// with padding see it.
  double mask_value = -10000.0;
  std::string hidden_act = "gelu";  ///< gelu (exact), gelu_new / gelu_pytorch_tanh, relu
  std::vector<std::string> labels;  ///< class names (config.json id2label), empty when unknown
  std::string naming;               ///< the tensor naming found ("hf", "hf-legacy", "hf-bare", ...)
  int head_dim() const { return hidden_size / num_heads; }
};

/// The feed-forward activation of config.json's hidden_act (gelu, gelu_new / gelu_pytorch_tanh, relu).
Activation activation_of(const std::string& hidden_act);

/// A batch of encoded texts, [B, T] int64 each. attention_mask: 1 for real tokens, 0 for padding.
struct TextBatch {
  torch::Tensor input_ids, token_type_ids, attention_mask;
  std::int64_t size() const { return input_ids.size(0); }
  std::int64_t length() const { return input_ids.size(1); }
};

/// Builds a TextBatch from id lists of possibly different lengths (padded with `pad_id` at the end).
TextBatch make_text_batch(const std::vector<std::vector<std::int64_t>>& ids,
                          const std::vector<std::vector<std::int64_t>>& token_types, std::int64_t pad_id = 0);

/// Optional interventions on a forward pass.
struct TextIntervention {
  /// [L, H] multipliers applied to the attention probabilities after the softmax (0 prunes a head); undefined = none.
  torch::Tensor head_mask;
  /// With replaced_layer >= 0: that layer uses `replaced_attention` ([B, H, T, T]) instead of its softmax output.
  /// Integrated gradients on attention (AttAttr) passes alpha * A here as a leaf that requires grad.
  int replaced_layer = -1;
  torch::Tensor replaced_attention;
  /// How the pass's operations are changed (LRP rules, AG-CAM's detached attention inputs, AtMan's suppressed keys,
  /// the extra records). zennit's Gamma is an image rule: LXT's BERT map has none, so the gammas are not read here.
  ForwardRules rules;
};

/// What one forward (and, when asked, one backward) pass records.
struct TextCapture {
  torch::Tensor logits;                       ///< [B, C]
  std::vector<torch::Tensor> attention;       ///< per layer [B, H, T, T], post-softmax (after any head mask)
  std::vector<torch::Tensor> hidden_in;       ///< per layer, its input hidden states [B, T, D]
  std::vector<torch::Tensor> attention_grad;  ///< per layer d(target)/dA (with gradients)
  std::vector<torch::Tensor> scores_grad;     ///< per layer d(target)/d(scaled pre-softmax scores)
  /// [B, T, D] output of the embedding layer: LayerNorm(word + position (+ type)). Not the sum before the
  /// LayerNorm: LayerNorm is scale-invariant, so the sum times its gradient is zero up to rounding for every token.
  torch::Tensor embeddings;
  torch::Tensor embeddings_grad;              ///< d(target)/d(embeddings) (with gradients)
  std::vector<torch::Tensor> scores;          ///< per layer the scaled, masked scores (ForwardRules::record_scores)
  std::vector<torch::Tensor> value_proj;      ///< per layer V·W_outᵀ, no bias, [B, T, D] (record_values)
};

/// What capture differentiates: the target class's logit, or its softmax probability (AttAttr's F).
enum class TargetKind { Logit, Probability };

class TextClassifier {
 public:
  /// One post-norm encoder layer: attention (separate Q, K, V), output projection, LayerNorm, feed-forward,
  /// LayerNorm. Every family stores these tensors, under its own names.
  struct EncoderLayer {
    torch::Tensor q_w, q_b, k_w, k_b, v_w, v_b, out_w, out_b, ln1_w, ln1_b, ffn_in_w, ffn_in_b, ffn_out_w, ffn_out_b,
        ln2_w, ln2_b;
  };

  /// The head every family has: the first token's final hidden state -> dense -> activation -> classifier (BERT's
  /// pooler then classifier, RoBERTa's classifier.dense/out_proj, DistilBERT's pre_classifier/classifier).
  struct TokenHead {
    torch::Tensor dense_w, dense_b, out_w, out_b;
    Activation activation = Activation::Tanh;
  };

  virtual ~TextClassifier() = default;

  const TextClassifierConfig& config() const { return config_; }
  /// The encoder layers' weights, for methods that propagate relevance through them by explicit rules (chefer-lrp).
  const std::vector<EncoderLayer>& layers() const { return layers_; }
  virtual TokenHead token_head() const = 0;
  const torch::Device& device() const { return device_; }

  /// Logits [B, C], recording nothing.
  torch::Tensor forward(const TextBatch& batch, const TextIntervention& intervention = {}) const;

  /// One forward pass recording attention and hidden states; with `targets` (one class per text, negative = the
  /// predicted class) also one backward pass of the sum over texts of the target's logit or probability.
  TextCapture capture(const TextBatch& batch, const std::vector<std::int64_t>& targets = {},
                      TargetKind kind = TargetKind::Logit, const TextIntervention& intervention = {}) const;

  /// The layers from `first_layer` on, applied to hidden states [B, T, D] (from TextCapture::hidden_in), then the
  /// family's head: integrated gradients reuse the unchanged lower layers instead of recomputing them.
  torch::Tensor forward_from(const torch::Tensor& hidden, const torch::Tensor& attention_mask, int first_layer,
                             const TextIntervention& intervention = {}, TextCapture* capture = nullptr) const;

  /// The embedding sum [B, T, D] before the embedding LayerNorm (word + position, and token type where the family
  /// has one). InputError for ids out of range or a text longer than the positions.
  virtual torch::Tensor embed(const TextBatch& batch) const = 0;
  /// The word embeddings alone [B, T, D]: the part of embed() that LXT reads relevance at.
  virtual torch::Tensor word_embeddings(const TextBatch& batch) const = 0;
  /// The embedding layer's output: LayerNorm(embed(batch)), the input of layer 0.
  torch::Tensor embedding_output(const TextBatch& batch) const;
  /// Everything after `embed`: LayerNorm, the layers and the head.
  torch::Tensor classify_embeddings(const torch::Tensor& embeddings, const torch::Tensor& attention_mask,
                                    const TextIntervention& intervention = {}, TextCapture* capture = nullptr) const;

 protected:
  /// How the attention scores are formed, as each reference writes it: Hugging Face BERT and RoBERTa scale the
  /// product, (q k^T) * s, and add the mask; DistilBERT scales the queries, (q * s) k^T, and fills masked keys.
  enum class ScoreForm { ScaleProduct, ScaleQuery };

  TextClassifier() = default;
  TextClassifier(const TextClassifier&) = default;
  TextClassifier& operator=(const TextClassifier&) = default;
  TextClassifier(TextClassifier&&) = default;
  TextClassifier& operator=(TextClassifier&&) = default;

  /// [B, T, D] hidden states after the last layer -> logits [B, C], every operation as `rules` say.
  virtual torch::Tensor head(const torch::Tensor& hidden, const ForwardRules& rules) const = 0;
  /// Checks ids (and token types where the family has them) and the length against the config.
  void check_batch(const TextBatch& batch) const;
  /// Moves every tensor (the layers, the embedding LayerNorm and those listed) to `device`.
  void to_device(const torch::Device& device, const std::vector<torch::Tensor*>& family_tensors);
  /// The checks every family makes once its config is read: heads divide the width, labels match the classes,
  /// a supported activation. `config_path` names config.json in messages.
  void check_config(const std::string& weights_path, const std::string& config_path) const;

  TextClassifierConfig config_;
  torch::Device device_{torch::kCPU};
  std::vector<EncoderLayer> layers_;
  torch::Tensor emb_ln_w_, emb_ln_b_;
  ScoreForm score_form_ = ScoreForm::ScaleProduct;
};

/// Loads a text classifier from `path` (a .safetensors file or a folder with model.safetensors and config.json),
/// its family found from the tensor names: BERT (bert.embeddings..., BertForSequenceClassification), DistilBERT
/// (distilbert.transformer..., DistilBertForSequenceClassification) or RoBERTa (roberta.encoder... with a
/// classifier.dense/out_proj head, RobertaForSequenceClassification). InputError naming the families tried and what
/// each lacked when none fits, and for any tensor or config key that does not fit the family.
std::unique_ptr<TextClassifier> load_text_classifier(const std::string& path,
                                                     const torch::Device& device = torch::kCPU);

}  // namespace attnlens
ATTNLENS_API_END
