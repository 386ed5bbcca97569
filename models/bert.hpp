// BERT sentence classifiers (Hugging Face BertForSequenceClassification) in LibTorch, loaded from safetensors
// (spec section 10(c); legacy LayerNorm.gamma/beta names too), with every layer's attention captured, and the two
// interventions AttAttr needs: replacing one layer's attention by a given tensor (integrated gradients) and masking
// heads after the softmax (pruning).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "../core/api.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

struct BertConfig {
  int vocab_size = 30522;
  int hidden_size = 768;
  int num_layers = 12;
  int num_heads = 12;
  int intermediate_size = 3072;
  int max_positions = 512;
  int type_vocab_size = 2;
  int num_labels = 2;
  double layer_norm_eps = 1e-12;  ///< Hugging Face's default; AttAttr's own BERT used 1e-5
  /// Added to the attention scores of padding keys: -10000 (original BERT, AttAttr) or the float minimum (recent
  /// Hugging Face). Only batches with padding see the difference.
  double mask_value = -10000.0;
  bool do_lower_case = true;
  std::vector<std::string> labels;  ///< class names (config.json id2label), empty when unknown
  std::string naming;               ///< "hf" or "hf-legacy" (LayerNorm gamma/beta)
  int head_dim() const { return hidden_size / num_heads; }
};

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
struct BertIntervention {
  /// [L, H] multipliers applied to the attention probabilities after the softmax (0 prunes a head); undefined = none.
  torch::Tensor head_mask;
  /// With replaced_layer >= 0: that layer uses `replaced_attention` ([B, H, T, T]) instead of its softmax output.
  /// Integrated gradients on attention (AttAttr) passes alpha * A here as a leaf that requires grad.
  int replaced_layer = -1;
  torch::Tensor replaced_attention;
};

/// What one forward (and, when asked, one backward) pass records.
struct BertCapture {
  torch::Tensor logits;                       ///< [B, C]
  std::vector<torch::Tensor> attention;       ///< per layer [B, H, T, T], post-softmax (after any head mask)
  std::vector<torch::Tensor> hidden_in;       ///< per layer, its input hidden states [B, T, D]
  std::vector<torch::Tensor> attention_grad;  ///< per layer d(target)/dA (with gradients)
  std::vector<torch::Tensor> scores_grad;     ///< per layer d(target)/d(scaled pre-softmax scores)
  /// [B, T, D] output of the embedding layer: LayerNorm(word + position + type). Not the sum before the LayerNorm:
  /// LayerNorm is scale-invariant, so the sum times its gradient is zero up to rounding for every token.
  torch::Tensor embeddings;
  torch::Tensor embeddings_grad;              ///< d(target)/d(embeddings) (with gradients)
};

/// What capture differentiates: the target class's logit, or its softmax probability (AttAttr's F).
enum class TargetKind { Logit, Probability };

class BertClassifier {
 public:
  /// Loads `path`: a .safetensors file or a folder holding model.safetensors (and config.json, vocab.txt). The
  /// architecture comes from the tensor shapes; config.json adds heads, eps, labels and casing. Names may carry the
  /// "bert." prefix or not. A missing or mis-shaped tensor is an InputError naming it.
  static BertClassifier load(const std::string& path, const torch::Device& device = torch::kCPU);

  const BertConfig& config() const { return config_; }
  const torch::Device& device() const { return device_; }

  /// Logits [B, C], recording nothing.
  torch::Tensor forward(const TextBatch& batch, const BertIntervention& intervention = {}) const;

  /// One forward pass recording attention and hidden states; with `targets` (one class per text, negative = the
  /// predicted class) also one backward pass of the sum over texts of the target's logit or probability.
  BertCapture capture(const TextBatch& batch, const std::vector<std::int64_t>& targets = {},
                      TargetKind kind = TargetKind::Logit, const BertIntervention& intervention = {}) const;

  /// The layers from `first_layer` on, applied to hidden states [B, T, D] (from BertCapture::hidden_in), then the
  /// pooler and classifier: integrated gradients reuse the unchanged lower layers instead of recomputing them.
  torch::Tensor forward_from(const torch::Tensor& hidden, const torch::Tensor& attention_mask, int first_layer,
                             const BertIntervention& intervention = {}, BertCapture* capture = nullptr) const;

  /// Word + position + token-type embeddings [B, T, D] before the embedding LayerNorm.
  torch::Tensor embed(const TextBatch& batch) const;
  /// The embedding layer's output: LayerNorm(embed(batch)), the input of layer 0.
  torch::Tensor embedding_output(const TextBatch& batch) const;
  /// Everything after `embed`: LayerNorm, the layers, pooler and classifier.
  torch::Tensor classify_embeddings(const torch::Tensor& embeddings, const torch::Tensor& attention_mask,
                                    const BertIntervention& intervention = {}, BertCapture* capture = nullptr) const;

 private:
  struct Layer {
    torch::Tensor q_w, q_b, k_w, k_b, v_w, v_b, out_w, out_b, ln1_w, ln1_b, inter_w, inter_b, ffn_w, ffn_b, ln2_w,
        ln2_b;
  };
  void check_batch(const TextBatch& batch) const;

  BertConfig config_;
  torch::Device device_{torch::kCPU};
  torch::Tensor word_emb_, pos_emb_, type_emb_, emb_ln_w_, emb_ln_b_, pooler_w_, pooler_b_, cls_w_, cls_b_;
  std::vector<Layer> layers_;
  std::string activation_ = "gelu";
};

}  // namespace attnlens
ATTNLENS_API_END
