// Explanations of a BERT classifier's decision that run the model again (LibTorch): AttAttr (integrated gradients
// on attention, spec 5), token blank-out (spec 8.1) and input x gradient. The attention-graph methods (raw,
// rollout, flow, grad-rollout, chefer) work on what one capture recorded and live behind explain/method.hpp.
#pragma once

#include <cstdint>
#include <vector>

#include "core/array.hpp"
#include "models/bert.hpp"

namespace attnlens {

/// Which Riemann sum approximates the integral over alpha in [0, 1]: the paper's right sum (alpha = k/m,
/// k = 1..m) or the reference code's left sum (k = 0..m-1, alpha = 0 included, 1 excluded).
enum class RiemannSum { Right, Left };

struct AttAttrOptions {
  int steps = 20;                       ///< m (the paper's 20; the reference code uses 64 for its attribution scores)
  RiemannSum riemann = RiemannSum::Right;
  int batch = 0;                        ///< alphas per forward/backward; 0 = all m at once
  std::vector<int> layers;              ///< layers to attribute; empty = all
};

/// AttAttr for one text (batch of size 1, no padding) and target class `target` (>= 0): for each layer l, the
/// attention probabilities A of that layer are replaced by alpha*A (all heads at once, A from the unperturbed pass)
/// and Attr_l = A/m * sum_k dF(alpha_k A)/dA, with F the target's softmax probability. The layers below l are run
/// once and shared by all alphas; the m alphas of a layer run as one batch. Returns [L, H, T, T] (zeros for layers
/// not asked for).
Array attattr(const BertClassifier& model, const TextBatch& text, std::int64_t target, const AttAttrOptions& options);

/// The same numbers computed the straightforward way: every alpha of every layer its own full forward and backward
/// pass from the embeddings (what the reference code's per-example loop costs). For benchmarks and tests.
Array attattr_one_by_one(const BertClassifier& model, const TextBatch& text, std::int64_t target,
                         const AttAttrOptions& options);

/// Per-token score of an AttAttr tensor [L,H,T,T]: the attribution of all attention paid TO token j
/// (sum over layers, heads and query rows of column j).
std::vector<double> attattr_token_scores(const Array& attribution);

/// Head importance of one example (spec 5): I[l][h] = max_{i,j} Attr[l][h][i][j], as [L, H].
Array attattr_head_importance(const Array& attribution);

/// Token blank-out for one text: each position t (special tokens included, as Abnar & Zuidema's script) replaced
/// by `replacement_id`; score[t] = p(target | text) - p(target | text with t replaced) (signed: positive = the
/// token supported the target). All T variants run as one batch (split by `batch` when > 0).
std::vector<double> token_blankout(const BertClassifier& model, const TextBatch& text, std::int64_t target,
                                   std::int64_t replacement_id, int batch = 0);

/// Input x gradient on the embedding layer's output e = LayerNorm(word + position + type) (as captum's layer
/// attributions on BERT's embeddings): score[t] = sum_d e[t,d] * d(target logit)/d e[t,d]. Taken before the
/// LayerNorm it would be zero for every token (LayerNorm is scale-invariant). A gradient baseline.
std::vector<double> input_x_gradient(const BertClassifier& model, const TextBatch& text, std::int64_t target);

}  // namespace attnlens
