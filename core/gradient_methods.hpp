// Gradient-weighted attention methods (spec sections 2 and 4.1) on plain arrays, so they stay LibTorch-free: a model
// layer runs the forward and backward passes and hands over the attention stack and its gradient stack.
//
// Both stacks are [L,H,N,N] (or [L,N,N] for one head) in forward layer order: attention[l][h] is the post-softmax
// attention of layer l, head h (rows = queries), and gradient[l][h] is the gradient of the target class LOGIT (not
// its probability) with respect to that layer's attention, or, for an exact vit-explain reproduction, with respect
// to its scaled pre-softmax scores (see GradRolloutMode). The two views must have the same shape.
#pragma once

#include <string>

#include "api.hpp"
#include "array.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

enum class GradRolloutMode {
  /// The intended computation: attention of layer l is paired with the gradient of layer l, prefix rows/columns
  /// are never discarded, and (F + I)/2 is truly row-normalised.
  Fixed,
  /// jacobgil/vit-explain `vit_grad_rollout.py` exactly, quirks included (spec 2):
  ///  * layer ORDER: its forward hooks collect attention 0..L-1 but its backward hook collects gradients L-1..0, and
  ///    `zip` pairs them, so attention of layer l meets the gradient of layer L-1-l. This mode applies that reversed
  ///    pairing itself: pass the gradients in forward layer order, exactly as for Fixed;
  ///  * gradient KIND: its legacy backward hook on `attn_drop` sees the gradient w.r.t. the scaled pre-softmax
  ///    scores, not w.r.t. the attention. The function cannot tell the two apart: pass the SCORE gradients for exact
  ///    reproduction (passing dL/dA gives the reference's loop on the gradient it meant to use);
  ///  * discard protects nothing (the line keeping flat index 0 is commented out), so CLS entries can be zeroed;
  ///  * normalisation `a / a.sum(dim=-1)` divides every COLUMN j by the sum of ROW j (jacobgil/vit-explain#16).
  VitExplainReference,
};

struct GradRolloutOptions {
  GradRolloutMode mode = GradRolloutMode::Fixed;
  /// Share of the N*N fused entries (smallest first, ties by lower flat index) set to 0 per layer, in [0, 1).
  /// 0.9 is vit-explain's default (`VITAttentionGradRollout(discard_ratio=0.9)`); k = floor(N*N*ratio).
  double discard_ratio = 0.9;
  /// Fixed mode: the first prefix_tokens rows and columns (CLS, distillation) still count when choosing the k
  /// smallest entries but are never zeroed, as in the Abnar rollout mode. Must be in [0, N); unused by the
  /// reference mode.
  int prefix_tokens = 1;
};

/// Gradient attention rollout (vit-explain, spec 2). Per layer l in forward order, with R = I at the start:
///   F = mean_h(A_l ⊙ G_p(l))      p(l) = l (Fixed) or L-1-l (VitExplainReference)
///   F[F < 0] = 0                   clamp AFTER the head mean (Chefer clamps each head before averaging)
///   discard the k = floor(N*N*discard_ratio) smallest entries of F (see the modes for what is protected)
///   a = (F + I)/2, normalised: Fixed a[i][j] /= sum_k a[i][k]; reference a[i][j] /= sum_k a[j][k]
///   R = a · R                      (deeper layer on the left)
/// Returns the final R, [N,N]; the explanation is row 0 over the patch columns (vit-explain: R[0, P:], then / max).
/// Throws InputError when the views differ in shape, are empty, hold NaN/Inf, or an option is out of range.
Array grad_rollout(const AttentionView& attention, const AttentionView& gradient, const GradRolloutOptions& options);

/// Chefer et al. 2021 generic attention-model explainability (Transformer-MM-Explainability, rules 5-6; spec 4.1).
/// R = I; for each layer b = start_layer..L-1 in forward order:
///   Ā_b = mean_h( max(0, G_b ⊙ A_b) )   (clamp each head's product, THEN average)
///   R ← R + Ā_b · R
/// i.e. R = (I + Ā_(L-1)) ··· (I + Ā_start). No normalisation anywhere. gradient must be dLogit/dA (post-softmax).
/// Returns R, [N,N]; the explanation is row 0 without the prefix columns (the notebook's R[0, 1:]).
/// Throws InputError when the views differ in shape, are empty, hold NaN/Inf, or start_layer is not in [0, L).
Array chefer_relevance(const AttentionView& attention, const AttentionView& gradient, int start_layer = 0);

/// Row `row` of grad_rollout / chefer_relevance only, [N]: the same per-layer matrices propagated as a row vector
/// from the deepest layer, O(L N^2) instead of O(L N^3); equal up to floating-point summation order.
Array grad_rollout_row(const AttentionView& attention, const AttentionView& gradient, const GradRolloutOptions& options,
                       int row);
Array chefer_relevance_row(const AttentionView& attention, const AttentionView& gradient, int row,
                           int start_layer = 0);

/// Which tokens Grad-SAM scores: Columns, one score per KEY token j (the mean over query rows; the spec's reading
/// of the paper), or Rows, one per QUERY token i (the mean over keys; what other third-party code computes).
enum class GradSamAxis { Columns, Rows };
/// "columns" or "rows"; InputError otherwise.
GradSamAxis parse_grad_sam_axis(const std::string& name);

/// Grad-SAM (Barkan et al. 2021, spec 20): with H = A ⊙ max(0, G), s_j = mean over layers l, heads h and query
/// rows i of H[l][h][i][j] (Columns), or s_i = the mean over l, h and keys j (Rows); [N].
Array grad_sam(const AttentionView& attention, const AttentionView& gradient,
               GradSamAxis axis = GradSamAxis::Columns);

/// AG-CAM (Leem & Seo 2024, spec 17) for query row `row`: out_j = sum_l sum_h max(0, G[l][h][row][j]) *
/// sigmoid(S[l][h][row][j]), [N]. `scores` are the scaled pre-softmax scores S; `gradient` is dy/dA taken in a
/// model whose attention inputs are detached (ForwardRules::detach_attention_input).
Array agcam_row(const AttentionView& scores, const AttentionView& gradient, int row);

/// Beyond Intuition's head-wise aggregation (Chen et al. 2023, spec 16.2 step 2): R = I; for each 0-based block
/// b >= first_block, w_h = I_h / sum I with I_h = mean_{i,j} |(A_h^T G_h)[i][j]|, R <- R + (sum_h w_h A_h) R.
/// Returns R, [N,N]. InputError unless first_block is in [0, L).
Array bi_head_relevance(const AttentionView& attention, const AttentionView& gradient, int first_block);

/// Beyond Intuition's token-wise aggregation (spec 16.3): R = I; for b >= first_block, with o = ratios[b] ([L,N]:
/// ||V W_proj^T||_2 / ||z||_2 per token), R <- R + (mean_h A_h diag(o)) R. Returns R, [N,N].
Array bi_token_relevance(const AttentionView& attention, const Array& ratios, int first_block);

}  // namespace attnlens
ATTNLENS_API_END
