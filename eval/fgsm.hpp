// FGSM restricted to a mask (spec 8.3): iterated signed-gradient steps on the pixels inside a mask only, until the
// prediction changes (untargeted) or becomes the target class (targeted). Tests whether the region an explanation
// points at is where the model is most easily fooled.
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "../core/api.hpp"
#include "../explain/method.hpp"
#include "../models/image_classifier.hpp"
#include "perturbation.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

struct FgsmSettings {
  double epsilon = 1.0 / 255.0;  ///< step in pixel units ([0,1] scale)
  int max_iterations = 100;
  std::int64_t target = -1;  ///< -1: untargeted (move away from the original prediction)
};

struct FgsmResult {
  bool success = false;
  int iterations = 0;         ///< steps taken (max_iterations when it failed); 0 when nothing had to change
  std::int64_t original = 0;  ///< the prediction before the attack
  std::int64_t final_class = 0;
  torch::Tensor adversarial;  ///< [3,H,W] pixels in [0,1]
};

/// Attacks every image of `images` (normalised, [B,3,H,W]) at once, each inside its own mask [B,H,W] (1 = may
/// change): x <- clip(x + eps * M * sign(grad_x CE(f(x), y0)), 0, 1) untargeted, or x <- clip(x - eps * M *
/// sign(grad_x CE(f(x), t)), 0, 1) targeted, in pixel space with the normalisation inside the model. An image stops
/// as soon as it succeeds; only the images still running go through the model.
std::vector<FgsmResult> masked_fgsm(const ImageClassifier& model, const torch::Tensor& images,
                                    const torch::Tensor& masks, const InputSpace& space, const FgsmSettings& settings);

/// The study of `attnlens attack fgsm`: masked FGSM with one mask per method and region (an "arm"): a method's top
/// `area` of patches (inside), the rest of the image (outside), or a random set of as many patches (one arm for all
/// methods, method "-"). If an explanation is faithful, attacking inside it flips the prediction sooner.
struct FgsmStudySettings {
  std::vector<std::string> methods{"raw", "rollout", "grad-rollout", "flow", "chefer"};
  std::vector<std::string> regions{"inside", "outside", "random"};
  double area = 0.1;  ///< share of the patches in a method's mask, in (0, 1)
  FgsmSettings attack;
  std::uint64_t seed = 0;  ///< of the random masks, which depend on the seed and the image's data-set index only
};

struct FgsmArm {
  std::string method;  ///< "-" for the random arm
  std::string region;  ///< inside | outside | random
};

/// What one arm did to one batch.
struct FgsmArmBatch {
  std::vector<FgsmResult> results;  ///< per image
  torch::Tensor masks;              ///< [B,H,W], 1 where the attack could change pixels
};

class FgsmStudy {
 public:
  /// InputError for an unknown region or method, an area outside (0, 1), heads as a mask method, a backbone
  /// without classifier, or a target the model does not have.
  FgsmStudy(const ImageClassifier& model, const InputSpace& space, const FgsmStudySettings& settings);

  /// Methods' arms first (in method order, then region order), the random arm last.
  const std::vector<FgsmArm>& arms() const { return arms_; }
  /// Patches in every mask: top_k_count(patches, area).
  int patches_attacked() const { return k_; }

  /// Attacks images [B,3,H,W] (normalised), the first being data-set item `first_index`, with every arm: one capture
  /// (and one backward when a mask method needs gradients) gives every method's map, then one batched attack per arm.
  std::vector<FgsmArmBatch> attack(const torch::Tensor& images, std::size_t first_index) const;

 private:
  const ImageClassifier& model_;
  InputSpace space_;
  FgsmStudySettings settings_;
  std::vector<std::unique_ptr<ExplanationMethod>> methods_;
  bool gradients_ = false;
  std::vector<FgsmArm> arms_;
  int k_ = 0;
};

/// An arm over a data set: success rate and iterations, a failure counting as max_iterations + 1 (so that medians
/// and histograms see it).
struct FgsmArmSummary {
  std::vector<double> iterations;  ///< per image
  std::size_t successes = 0;
  double success_rate() const;
  double median_iterations() const;  ///< > max_iterations when most attacks failed
  std::vector<double> iterations_of_successes(int max_iterations) const;
  void add(const FgsmResult& result, int max_iterations);
};

}  // namespace attnlens
ATTNLENS_API_END
