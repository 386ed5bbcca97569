// Model-backed faithfulness measurements on images (spec 8.1, 8.2): blank-out scores, RISE deletion/insertion curves
// and Chefer's positive/negative perturbation. Every perturbed copy of an image is queued and run through the model
// in batches, built only when its batch runs (a 224-pixel image perturbed 2,000 times would need gigabytes at once).
#pragma once

#include <torch/torch.h>

#include <array>
#include <vector>

#include "../core/api.hpp"
#include "../core/array.hpp"
#include "../models/image_classifier.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// The model's input space: pixels x in [0, 1] enter the model as (x - mean) / std per channel (RGB). "Black" is
/// pixel value 0 before normalisation (spec 8.1), i.e. -mean/std after it.
struct InputSpace {
  std::array<double, 3> mean{0.5, 0.5, 0.5};
  std::array<double, 3> std{0.5, 0.5, 0.5};

  torch::Tensor black() const;                              ///< [3,1,1] normalised value of a black pixel
  torch::Tensor to_pixels(const torch::Tensor& x) const;    ///< normalised [.,3,H,W] -> [0,1] pixels
  torch::Tensor from_pixels(const torch::Tensor& x) const;  ///< [0,1] pixels -> normalised
};

/// Per-patch values [gh, gw] spread over each patch's pixels: [gh * patch, gw * patch].
torch::Tensor patch_pixels(const torch::Tensor& grid, std::int64_t patch);

/// Perturbed copies of one normalised image [3,H,W], each keeping some pixels and blacking out the rest.
class PerturbationBatch {
 public:
  /// `grid_h` x `grid_w` patches must tile the image exactly (a ViT's input). `batch` images per forward pass.
  /// Removed pixels become black, or `fill` ([3,1,1], normalised) when it is defined.
  PerturbationBatch(const ImageClassifier& model, torch::Tensor image, InputSpace space, int batch,
                    torch::Tensor fill = {});

  /// Queues a copy keeping the patches with keep[p] != 0 (row-major over the grid); returns its index.
  std::size_t add_patches(std::vector<std::uint8_t> keep);
  /// Queues a copy keeping the pixels where keep [H,W] (bool) is true; returns its index.
  std::size_t add_pixels(torch::Tensor keep);
  std::size_t size() const { return jobs_.size(); }
  std::int64_t height() const { return image_.size(1); }
  std::int64_t width() const { return image_.size(2); }

  /// Runs every queued copy; class probabilities [size(), C] (softmax of the logits), float64 on the CPU.
  torch::Tensor run() const;

 private:
  struct Job {
    std::vector<std::uint8_t> patches;  // empty for a pixel job
    torch::Tensor pixels;
  };
  const ImageClassifier& model_;
  torch::Tensor image_, black_;
  int batch_;
  std::vector<Job> jobs_;
};

/// Blank-out (spec 8.1): p(c|x) - p(c|x with patch p black) for every patch, [gh, gw], c = `target`.
/// `clean_probability` receives p(c|x). One batch of patches + 1 images (in chunks of `batch`).
/// Drops smaller than kBlankOutTieTolerance are set to 0: occluding a patch that is black already, or that the
/// model ignores, changes p only by float32 rounding (1e-8 .. 1e-7 here), and ranking such patches by rounding noise
/// would make Spearman and top-k numbers differ between two correct implementations. They tie instead.
Array blank_out(const ImageClassifier& model, const torch::Tensor& image, std::int64_t target,
                const InputSpace& space, int batch, double* clean_probability = nullptr);
inline constexpr double kBlankOutTieTolerance = 1e-6;

/// RISE deletion and insertion on patch steps (spec 8.2): p(target) after blacking out the k most relevant patches
/// (deletion) or after restoring them onto a black image (insertion), k = 0..P. Queued into `queue`; the indices of
/// the P + 1 copies of each curve are returned.
struct CurveJobs {
  std::vector<std::size_t> deletion, insertion;
};
CurveJobs queue_deletion_insertion(PerturbationBatch& queue, const std::vector<double>& relevance);

/// Chefer et al.'s perturbation (spec 8.2): the map [gh,gw] upsampled bilinearly to the image (align_corners =
/// false), then the floor(H*W*s) most relevant pixels (positive) or least relevant (negative; the negated map)
/// blacked out for s = 0.1 .. 0.9. Returns the indices of the 9 positive then 9 negative copies.
std::vector<std::size_t> queue_perturbation(PerturbationBatch& queue, const Array& map);

/// The fractions of queue_perturbation's steps, 0.1 .. 0.9.
const std::vector<double>& perturbation_steps();

/// How SaCo's pixel groups are bounded (spec 19.1 step 2): group i ends at ceil(i*HW/K) (the paper's equal sizes,
/// default) or at int(i*HW/K) (the third-party reproduction).
enum class SacoBoundaries { Ceil, Floor };

/// SaCo's K perturbed copies (spec 19.1): the map [gh,gw] upsampled bilinearly to the image, pixels ranked by it
/// (most salient first, ties in pixel order), split into `groups` groups; copy i replaces the pixels of group i
/// alone with the queue's fill (SaCo: the image's per-channel mean). Returns the copies' indices and the groups'
/// salience sums.
struct SacoJobs {
  std::vector<std::size_t> copies;
  std::vector<double> salience;
};
SacoJobs queue_saco(PerturbationBatch& queue, const Array& map, int groups = 10,
                    SacoBoundaries boundaries = SacoBoundaries::Ceil);

}  // namespace attnlens
ATTNLENS_API_END
