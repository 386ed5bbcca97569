// AttAttr's applications and the word attack on a text classifier, as library functions (the `prune`, `tree`,
// `triggers` and `attack words` commands only parse options, call these and write files): head pruning (Hao et
// al. 2021), attribution trees and adversarial triggers (spec 5), and the word-substitution attack that tests whether
// an explanation's top tokens are what the decision rests on.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "../core/api.hpp"
#include "../core/attention_flow.hpp"
#include "../core/attribution_tree.hpp"
#include "../explain/text_methods.hpp"
#include "../io/text_dataset.hpp"
#include "../models/text_model.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// Labelled texts encoded for a model.
struct LabelledTexts {
  std::vector<TextExample> examples;
  std::vector<EncodedText> encoded;
  std::vector<std::vector<std::int64_t>> ids;  ///< encoded[i].encoding.ids
  int truncated = 0;                           ///< texts cut to the tokenizer's max_length
};
/// Encodes `examples`; InputError (naming `source`) for a text without a gold label or with a label the model does
/// not have.
LabelledTexts encode_labelled(const TextModel& model, std::vector<TextExample> examples, const std::string& source);

/// Share of texts whose predicted class is the gold label.
double accuracy_of(const std::vector<std::int64_t>& predicted, const std::vector<TextExample>& examples);

// ---- head pruning ----

struct HeadPruningSettings {
  AttAttrOptions attattr;
  int importance_examples = 200;  ///< texts whose attribution ranks the heads (the reference's 200)
  std::uint64_t seed = 0;         ///< of the random order
  int batch = 64;                 ///< texts per padded forward pass when the accuracies are measured
};
struct HeadPruningResult {
  std::size_t importance_examples = 0;
  Array importance_attattr;    ///< [L,H]: sum over texts of each head's largest attribution (gold label targeted)
  Array importance_attention;  ///< [L,H]: the same with each head's largest attention weight
  std::vector<double> rates;   ///< 0, 0.1, ..., 1: share of heads pruned, least important first
  std::vector<int> heads_pruned;
  /// Accuracy at each rate for the orders "attattr", "attention" and "random", in that order.
  std::vector<std::pair<std::string, std::vector<double>>> accuracy;
};
/// Head importance from `texts` (the first importance_examples), then accuracy on all of `texts` with 0%..100% of
/// the heads masked after the softmax. `importance_progress` counts texts, `evaluation_progress` the texts whose
/// predictions are done. Composed of the steps below, which `attnlens prune` shares among processes.
HeadPruningResult prune_heads(const TextModel& model, const LabelledTexts& texts, const HeadPruningSettings& settings,
                              const ProgressFn& importance_progress = {}, const ProgressFn& evaluation_progress = {});

/// Step 1, one text: each head's largest attribution (AttAttr, gold label targeted) and largest attention weight,
/// [L,H] each. The importances are their sums over the first importance_examples texts, in text order.
struct HeadImportance {
  Array attattr, attention;
};
HeadImportance text_head_importance(const TextModel& model, const LabelledTexts& texts, std::size_t index,
                                    const AttAttrOptions& attattr);

/// Step 2: the orders in which heads are pruned, least important first: "attattr" and "attention" (ascending
/// summed importance, ties in head order) and "random" (shuffled with `seed`). Heads as layer * H + head.
std::vector<std::pair<std::string, std::vector<int>>> pruning_orders(const Array& importance_attattr,
                                                                     const Array& importance_attention,
                                                                     std::uint64_t seed);
/// The pruned shares 0, 0.1, ..., 1, and how many of `heads` each prunes (floor).
std::vector<double> pruning_rates();
int heads_pruned(double rate, int heads);

/// Step 3, texts [first, first + count) in one padded batch: the predicted class with each order's first
/// heads_pruned(rate) heads masked, [order][rate][text].
std::vector<std::vector<std::vector<std::int64_t>>> pruned_predictions(
    const TextModel& model, const LabelledTexts& texts, std::size_t first, std::size_t count,
    const std::vector<std::pair<std::string, std::vector<int>>>& orders);

// ---- attribution tree ----

struct TextTree {
  std::vector<double> probabilities;
  std::int64_t predicted = 0, target = 0;
  Array attattr;  ///< [L,H,T,T]
  AttributionTree tree;
};
/// AttAttr of one text for `target` (negative: the predicted class), summed over heads per layer, and its
/// attribution tree with edge threshold `threshold` (spec 5: 0.4).
TextTree text_attribution_tree(const TextModel& model, const EncodedText& text, std::int64_t target, double threshold,
                               const AttAttrOptions& attattr);

// ---- adversarial triggers ----

struct TriggerSettings {
  AttAttrOptions attattr;
  double threshold = 0.02;  ///< keep patterns until the first whose sum is below
  bool all = false;         ///< both token pairs of a pattern (the reference's --if_all)
  bool reference = false;   ///< also drop the last pattern when none falls below (the reference code)
};
struct TriggerAccuracy {
  int gold_label = 0;
  std::size_t texts = 0;
  double before = 0.0, after = 0.0;
};
struct LabelTrigger {
  int label = 0;  ///< the gold label of the training text the pattern came from
  std::string source_text;
  std::vector<std::string> tokens;
  double sum = 0.0;                       ///< the pattern's attribution
  std::vector<TriggerAccuracy> accuracy;  ///< on the test texts of every gold label
};
struct TriggerResult {
  std::size_t mined = 0, kept = 0;
  std::vector<LabelTrigger> triggers;  ///< one per label that has a kept pattern, by label
};
/// Mines one pattern per training text (the predicted class as target), keeps the strong ones, and inserts each
/// label's strongest pattern's tokens into every test text; `progress` counts the mined training texts.
TriggerResult find_triggers(const TextModel& model, const LabelledTexts& train, const LabelledTexts& test,
                            const TriggerSettings& settings, const ProgressFn& progress = {});

// ---- word attack ----

struct WordAttackSettings {
  std::vector<std::string> methods{"raw", "rollout", "flow", "attattr", "blankout", "random"};
  int max_k = 5;                     ///< k = 1..max_k words replaced
  std::int64_t replacement_id = -1;  ///< the token the top words become ([MASK] when negative)
  std::uint64_t seed = 0;            ///< of the random baseline
  AttAttrOptions attattr;
};
/// One text of the word attack.
struct WordAttackText {
  std::int64_t clean = 0;                           ///< the prediction for the text as it is
  std::vector<std::vector<std::int64_t>> attacked;  ///< [method][k - 1]: with the method's top k words replaced
};

/// The word attack, one text at a time (so that the texts can be shared among processes): every method ranks the
/// words (not [CLS]/[SEP]) for the predicted class and the top k become the replacement. "random" ranks at random,
/// seeded by the settings' seed and the text's index only.
class WordAttack {
 public:
  /// InputError for max_k < 1 or an unknown method.
  WordAttack(const TextModel& model, const WordAttackSettings& settings);
  WordAttackText attack(const LabelledTexts& texts, std::size_t index) const;

 private:
  const TextModel& model_;
  WordAttackSettings settings_;
  std::int64_t replacement_;
  std::unique_ptr<const TextScorer> scorer_;
};

struct WordAttackResult {
  /// Accuracy for k = 0..max_k per method (k = 0: the texts as they are), in the order of the settings' methods.
  std::vector<std::pair<std::string, std::vector<double>>> accuracy;
};
/// Accuracy against the gold labels from every text's attack (`attacked[i]` for `examples[i]`).
WordAttackResult word_attack_accuracy(const std::vector<WordAttackText>& attacked,
                                      const std::vector<TextExample>& examples, const WordAttackSettings& settings);
/// Every text in turn, then word_attack_accuracy; `progress` counts texts.
WordAttackResult attack_words(const TextModel& model, const LabelledTexts& texts, const WordAttackSettings& settings,
                              const ProgressFn& progress = {});

}  // namespace attnlens
ATTNLENS_API_END
