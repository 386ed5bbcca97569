// `attnlens evaluate`'s engine: for each image, every explanation method's map is scored against what the model
// does when the image is perturbed (blank-out, deletion/insertion, positive/negative perturbation; spec 8.1, 8.2)
// and against where the object is (localisation). One result row per image and method; rows are written as they
// are computed (eval/evaluation_table.hpp) so a stopped run can resume.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <vector>

#include "../core/api.hpp"
#include "../core/array.hpp"
#include "perturbation.hpp"
#include "../explain/method.hpp"
#include "../explain/model_method.hpp"
#include "../models/image_classifier.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// Which measurements to take.
struct EvaluationMetrics {
  bool blankout = true, deletion = true, insertion = true, positive = true, negative = true, localization = true,
       saco = true;
  /// blankout, deletion, insertion, positive, negative, localization, saco
  static const std::vector<std::string>& names();
  /// "a,b,c" or "all"; InputError naming an unknown metric.
  static EvaluationMetrics parse(const std::string& list);
};

/// Curves are stored at these fractions for plotting (deletion/insertion resampled linearly from the patch steps;
/// AUCs come from the full curves): 0, 0.05, ..., 1.
const std::vector<double>& curve_fractions();
/// Fractions of the positive/negative perturbation flags: 0 (unperturbed), 0.1, ..., 0.9.
const std::vector<double>& perturbation_fractions();

/// One method (or baseline) on one image. NaN where a metric was not taken.
struct MethodScores {
  std::string method;
  double milliseconds = 0.0;  ///< the method's cost on this image: its share of the model pass(es) + its own work
  double spearman_blankout = NAN, top_overlap_blankout = NAN;
  double deletion_auc = NAN, insertion_auc = NAN;
  std::vector<double> deletion_curve, insertion_curve;     ///< at curve_fractions(), empty when not taken
  double positive_auc = NAN, negative_auc = NAN;           ///< top-1 accuracy AUC, trapezoid over 0 .. 0.9
  std::vector<double> positive_correct, negative_correct;  ///< 0/1 at perturbation_fractions()
  double pointing_hit = NAN, mass_in_box = NAN;
  double saco = NAN;  ///< SaCo over 10 pixel groups (spec 19), NaN for a constant map
  double word_attack_auc = NAN;  ///< texts only: share of k = 0..K top words masked at which the gold label holds
  std::vector<double> spearman_vs;  ///< against every row of ImageEvaluator::row_names(), in that order
};

struct ImageScores {
  std::size_t index = 0;  ///< position in the (selected) data set
  std::string id;
  int label = -1;  ///< ground truth, -1 when unknown
  std::int64_t predicted = 0;
  double probability = 0.0;  ///< p(predicted | image)
  std::vector<MethodScores> methods;
  std::vector<Array> maps;  ///< each row's patch map [gh,gw], for the gallery (not stored in the table)
};

/// One image as the evaluator takes it: normalised tensor, label, object box in model-input pixels.
struct EvaluationImage {
  std::size_t index = 0;
  std::string id;
  torch::Tensor tensor;  ///< [3,H,W] normalised
  int label = -1;
  std::optional<std::array<int, 4>> box;  ///< [x0,y0,x1,y1)
};

struct EvaluationPlan {
  std::vector<std::string> methods{"raw", "rollout", "grad-rollout", "flow", "chefer"};
  /// Baselines scored like methods: "random" (uniform random maps) and "centre" (a centre prior).
  std::vector<std::string> baselines{"random", "centre"};
  EvaluationMetrics metrics;
  MethodSettings settings;
  double top_share = 0.1;  ///< top-k agreement over floor(share * patches) patches (spec 8.1)
  std::uint64_t seed = 0;  ///< random baseline maps
  int batch = 64;          ///< images per forward pass of the perturbed copies
};

class ImageEvaluator {
 public:
  /// Throws InputError for an unknown method or baseline, a per-head method (heads), a backbone without classes, or
  /// a method that cannot explain this model.
  ImageEvaluator(const ImageClassifier& model, InputSpace space, EvaluationPlan plan);

  /// Methods, then baselines, then "blankout" when that metric is on (the occlusion map ranks patches as well).
  const std::vector<std::string>& row_names() const { return rows_; }
  const EvaluationPlan& plan() const { return plan_; }

  /// Scores images one by one: each with its own model pass, so its numbers do not depend on which images are
  /// evaluated with it, then its perturbed copies in batches.
  std::vector<ImageScores> evaluate(const std::vector<EvaluationImage>& images) const;

 private:
  const ImageClassifier& model_;
  InputSpace space_;
  EvaluationPlan plan_;
  std::vector<std::unique_ptr<ExplanationMethod>> methods_;             ///< by position in plan_.methods, or null
  std::vector<std::unique_ptr<ModelExplanationMethod>> model_methods_;  ///< the same
  std::vector<std::string> rows_;
  bool gradients_ = false;
};

}  // namespace attnlens
ATTNLENS_API_END
