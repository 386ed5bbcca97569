// Internal to attnlens (not installed): the relevance rules of chefer-lrp (spec 15.3, as the closed forms of 15.8a)
// and one traced explanation, so that the tests can check each rule, the conservation at every block and the
// variants against each other. explain/chefer_lrp.cpp says what the method computes.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../core/api.hpp"
#include "../core/array.hpp"
#include "../models/image_classifier.hpp"
#include "../models/text_classifier.hpp"

ATTNLENS_API_BEGIN
namespace attnlens::chefer_lrp {

/// a / (b + 1e-9) where b != 0, 0 where b == 0: the reference's safe_divide, not sign-aware (spec 15.2).
torch::Tensor safe_divide(const torch::Tensor& a, const torch::Tensor& b);
/// Linear, alpha 1 beta 0 (layers_ours): the relevance of x [..., in] from R [..., out] and weight [out, in]; the
/// bias takes none.
torch::Tensor linear_relprop(const torch::Tensor& R, const torch::Tensor& x, const torch::Tensor& weight);
/// Add(x0, x1), z-rule then rescaled so that the two parts total |A|/(|A|+|B|) and |B|/(|A|+|B|) of sum R (sums
/// over the whole tensors): (relevance of x0, of x1).
std::pair<torch::Tensor, torch::Tensor> add_relprop(const torch::Tensor& R, const torch::Tensor& x0,
                                                    const torch::Tensor& x1);
/// Clone: the relevance of x from that of its copies, x * sum_k safe_divide(R_k, x).
torch::Tensor clone_relprop(const std::vector<torch::Tensor>& R, const torch::Tensor& x);
/// z-rule of the matrix product a b (the last two dimensions), NOT halved: (relevance of a, of b).
std::pair<torch::Tensor, torch::Tensor> matmul_relprop(const torch::Tensor& R, const torch::Tensor& a,
                                                       const torch::Tensor& b);
/// zB rule of a convolution with kernel = stride = `stride` and no padding (the patch embedding): the relevance of
/// images x [B, C, H, W] from R [B, D, H / stride, W / stride], bounds = each image's min and max over all values.
torch::Tensor patch_conv_relprop(const torch::Tensor& R, const torch::Tensor& x, const torch::Tensor& weight,
                                 std::int64_t stride);

enum class Variant { TransformerAttribution, Rollout, LastLayer, Full };
/// transformer_attribution, rollout, last_layer, full; InputError listing them for another name.
Variant parse_variant(const std::string& name);

/// What the image and the text passes both give: one forward, one backward and one relevance pass for a class.
struct AttentionTrace {
  torch::Tensor logits;  ///< [1, C] of the method's own forward pass
  /// Per block (layer) [H, N, N]: the attention A, d(logit)/dA, and R_A, the halved LRP relevance of A (attn_cam).
  std::vector<torch::Tensor> attention, attention_grad, attention_relevance;
  torch::Tensor head_relevance;  ///< [D], the relevance of the head's input (the final CLS / first-token features)
};

/// An image's passes.
struct Trace : AttentionTrace {
  std::vector<torch::Tensor> block_relevance;  ///< per block the relevance of its input x, [N, D]
  /// Full pass only: the top-level Add's parts (the tokens [N, D], or the patches [G, D] for DeiT III whose CLS has
  /// no position embedding; the position embeddings) and the input's relevance summed over channels, [H, W].
  torch::Tensor token_relevance, position_relevance, pixel_relevance;
};

/// InputError unless `model` is a ViT/DeiT or DeiT III with one CLS head. `full`: also below the blocks.
Trace trace(const ImageClassifier& model, const torch::Tensor& image, std::int64_t target, bool full);
/// The [grid_h, grid_w] map of a variant from block `start_layer` on; `ablation`: last_layer weighs R_A by dy/dA
/// (the reference's is_ablation).
Array patch_map(const Trace& trace, Variant variant, int start_layer, const ImageModelConfig& config,
                bool ablation = false);

/// The same passes over a text classifier (spec 15.7, BERT_explainability; RoBERTa and DistilBERT by the same rules,
/// their heads being BERT's pooler-and-classifier shape): one text, no padding.
struct TextTrace : AttentionTrace {
  std::vector<torch::Tensor> layer_relevance;  ///< per layer the relevance of its input, [T, D]
};
TextTrace trace_text(const TextClassifier& model, const TextBatch& text, std::int64_t target);
/// The token scores [T] ([CLS]/[SEP] included) of a variant: transformer_attribution (the row-normalising rollout
/// of mean_h max(0, dA * R_A) + I from `start_layer`, -1 = the last, then [0] = min of the row), last_layer
/// (mean_h max(0, R_A) of the last layer, row 0, [0] = 0), full (the encoder input's relevance summed over the
/// width, [0] = 0). InputError for rollout, which the BERT reference does not have.
std::vector<double> token_scores(const TextTrace& trace, Variant variant, int start_layer);

}  // namespace attnlens::chefer_lrp
ATTNLENS_API_END
