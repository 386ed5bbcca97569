// Explanations of a text classifier's decision that run the model again (LibTorch): AttAttr (integrated gradients
// on attention, spec 5), token blank-out (spec 8.1) and input x gradient. The attention-graph methods (raw,
// rollout, flow, grad-rollout, chefer) work on what one capture recorded and live behind explain/method.hpp.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../core/api.hpp"
#include "../core/array.hpp"
#include "method.hpp"
#include "model_method.hpp"
#include "../models/text_classifier.hpp"
#include "../models/text_model.hpp"

ATTNLENS_API_BEGIN
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
Array attattr(const TextClassifier& model, const TextBatch& text, std::int64_t target, const AttAttrOptions& options);

/// The same numbers computed the straightforward way: every alpha of every layer its own full forward and backward
/// pass from the embeddings (what the reference code's per-example loop costs). For benchmarks and tests.
Array attattr_one_by_one(const TextClassifier& model, const TextBatch& text, std::int64_t target,
                         const AttAttrOptions& options);

/// Per-token score of an AttAttr tensor [L,H,T,T]: the attribution of all attention paid TO token j
/// (sum over layers, heads and query rows of column j).
std::vector<double> attattr_token_scores(const Array& attribution);

/// Head importance of one example (spec 5): I[l][h] = max_{i,j} Attr[l][h][i][j], as [L, H].
Array attattr_head_importance(const Array& attribution);

/// Token blank-out for one text: each position t (special tokens included, as Abnar & Zuidema's script) replaced
/// by `replacement_id`; score[t] = p(target | text) - p(target | text with t replaced) (signed: positive = the
/// token supported the target). All T variants run as one batch (split by `batch` when > 0).
std::vector<double> token_blankout(const TextClassifier& model, const TextBatch& text, std::int64_t target,
                                   std::int64_t replacement_id, int batch = 0);

/// Input x gradient on the embedding layer's output e = LayerNorm(word + position + type) (as captum's layer
/// attributions on BERT's embeddings): score[t] = sum_d e[t,d] * d(target logit)/d e[t,d]. Taken before the
/// LayerNorm it would be zero for every token (LayerNorm is scale-invariant). A gradient baseline.
std::vector<double> input_x_gradient(const TextClassifier& model, const TextBatch& text, std::int64_t target);

/// The methods that explain a text's tokens: the attention-graph ones, attattr, blankout, input-x-gradient, and the
/// relevance methods that run the model again (agcam, bi-attn, bi-attn-token, atman, attnlrp, cp-lrp).
const std::vector<std::string>& text_method_names();

/// Token scores of one text by several methods at once, sharing one capture (and one backward pass, when a method
/// needs gradients) among the attention-graph methods: what `explain --text` and the word attack both need.
/// "random" may be among the methods: it is a baseline the caller draws itself, and gets no scores here.
class TextScorer {
 public:
  /// `blank_id`: the token blank-out substitutes (needed only when "blankout" is among the methods). InputError for
  /// an unknown method or an image-only one.
  TextScorer(const TextModel& model, std::vector<std::string> methods, const MethodSettings& settings,
             const AttAttrOptions& attattr, std::int64_t blank_id);

  struct Scores {
    std::vector<double> probabilities;  ///< of every class, from the capture the attention methods share
    std::int64_t target = -1;           ///< the class explained (the predicted one when score() got -1)
    std::map<std::string, std::vector<double>> by_method;  ///< [T] per method, special tokens included
    Array attention;                    ///< [L,H,T,T]
    Array attattr;                      ///< [L,H,T,T] when attattr was asked for
  };

  /// Scores for class `target`; a negative target explains the predicted class (known after the one capture).
  /// `seconds`, when given, accumulates the time of the capture ("forward_backward") and of each method.
  Scores score(const EncodedText& text, std::int64_t target, std::map<std::string, double>* seconds = nullptr) const;

 private:
  const TextModel& model_;
  std::vector<std::string> methods_;
  std::vector<std::unique_ptr<ExplanationMethod>> graph_;
  std::vector<std::unique_ptr<ModelExplanationMethod>> relevance_;  ///< the methods that run the model again
  AttAttrOptions attattr_;
  std::int64_t blank_id_;
  bool gradients_ = false;
};

}  // namespace attnlens
ATTNLENS_API_END
