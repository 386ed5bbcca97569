// `attnlens evaluate --text`'s engine: for each labelled text, every text method's token scores are compared with
// token blank-out (Spearman, top-k overlap) and scored by what the model does when the tokens are masked: deletion
// and insertion curves (tokens masked, or restored onto a fully masked text, most relevant first), SaCo over token
// groups, and the word attack (is the text still classified correctly with its k top-ranked words masked?). One
// result row per text and method, in the image evaluation's table format (evaluation_table.hpp), so the summaries
// and the report are the same.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../core/api.hpp"
#include "image_evaluation.hpp"
#include "text_applications.hpp"
#include "../explain/text_methods.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

struct TextEvaluationPlan {
  /// Text methods (text_method_names()); "blankout" is always scored as the oracle row and need not be listed.
  std::vector<std::string> methods{"raw", "rollout", "grad-rollout", "flow", "chefer", "attattr", "input-x-gradient"};
  std::vector<std::string> baselines{"random"};  ///< "random": uniform random token scores
  MethodSettings settings;
  AttAttrOptions attattr;
  double top_share = 0.2;  ///< top-k agreement over max(1, floor(share * words)) words
  int saco_groups = 10;    ///< SaCo's K, at most the number of words
  int attack_k = 5;        ///< the word attack masks the top 1..attack_k words
  std::uint64_t seed = 0;  ///< random baseline scores
  int batch = 64;          ///< texts per forward pass of the masked copies
};

/// The words of a text: every position but the special tokens ([CLS]/[SEP], <s>/</s>). Scores and masks cover
/// these only; a special token is structure, not evidence.
std::vector<int> word_positions(const TextModel& model, const std::vector<std::int64_t>& ids);

class TextEvaluator {
 public:
  /// InputError for an unknown method or baseline, or a setting a method rejects.
  TextEvaluator(const TextModel& model, TextEvaluationPlan plan);

  /// Methods, then baselines, then "blankout".
  const std::vector<std::string>& row_names() const { return rows_; }

  ~TextEvaluator();

  /// Scores text `item` of `texts`: the explained class is the predicted one; blank-out and the masks use [MASK]
  /// (<mask>). ImageScores::id holds the text. The metrics of images the text has no counterpart for stay NaN. The
  /// result depends on the text and its index alone (the random baseline's seed), not on the other texts, so a
  /// run split over processes gives the rows of one process.
  ImageScores evaluate(const LabelledTexts& texts, std::size_t item) const;
  /// Every text, in order.
  std::vector<ImageScores> evaluate(const LabelledTexts& texts, const ProgressFn& progress = {}) const;

 private:
  const TextModel& model_;
  TextEvaluationPlan plan_;
  std::vector<std::string> rows_;
  std::unique_ptr<const TextScorer> scorer_;  ///< the methods and blankout
};

}  // namespace attnlens
ATTNLENS_API_END
