// Faithfulness metrics on plain arrays (no LibTorch): rank correlation, top-k agreement, areas under curves, and
// localisation against a ground-truth box. The model-backed measurements that produce the inputs are in
// eval/perturbation.hpp; the protocols are spec section 8.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "../core/api.hpp"
#include "../core/array.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// Ranks 1..n, ties sharing their average rank (scipy.stats.rankdata's "average", what spearmanr uses).
std::vector<double> average_ranks(const std::vector<double>& values);

/// Spearman's rho as scipy.stats.spearmanr computes it: Pearson's correlation of the average ranks. When either side
/// is constant the correlation is undefined; it is then 0, as the reference scripts replace NaN by 0 (spec 8.1).
/// Throws InputError when the lengths differ or are below 2.
double spearman(const std::vector<double>& a, const std::vector<double>& b);

/// Indices by descending value; equal values keep ascending index order, so every ordering is reproducible
/// (torch.topk leaves the order of ties unspecified).
std::vector<int> descending_order(const std::vector<double>& values);

/// floor(share * n), at least 1 (spec 8.1: 10% of 196 patches is 19).
int top_k_count(std::size_t n, double share);

/// |top_k(a) ∩ top_k(b)| / k with descending_order's tie rule. Throws InputError when lengths differ or k is out of
/// [1, n].
double top_k_overlap(const std::vector<double>& a, const std::vector<double>& b, int k);

/// Trapezoid-rule area under y(x), x ascending. Throws InputError when lengths differ or are below 2.
double trapezoid_auc(const std::vector<double>& x, const std::vector<double>& y);

/// A curve given at k/n, k = 0..n (n >= 1), sampled at `fractions` in [0, 1] by linear interpolation: how the
/// deletion and insertion curves of different lengths (patches, words) are stored at common fractions.
std::vector<double> resample_curve(const std::vector<double>& curve, const std::vector<double>& fractions);

/// SaCo, the salience-guided faithfulness coefficient (Wu et al., CVPR 2024; spec 19.1 step 4, the official
/// aggregation): over all group pairs i < j, w = s_i - s_j where impact_i >= impact_j, else -(s_i - s_j);
/// SaCo = sum w / sum |w|, in [-1, 1]. `salience` are the groups' salience sums (most salient first), `impact` the
/// drops p(c|x) - p(c|x with the group perturbed). NaN when every weight is 0 (a constant map; the reference raises).
/// InputError for vectors of different sizes.
double saco(const std::vector<double>& salience, const std::vector<double>& impact);

/// Where an explanation points, against the object's box [x0, y0, x1, y1) in model-input pixels.
struct Localization {
  bool hit = false;          ///< pointing game: the centre of the top patch lies inside the box
  double mass_inside = 0.0;  ///< share of the positive relevance that falls inside the box
};

/// Scores a patch map [gh, gw] whose patches are patch_h x patch_w pixels. The top patch is the first maximum in
/// row-major order. Relevance is spread evenly over each patch's pixels and negative values count as 0; a map with no
/// positive relevance says nothing, and is scored as a uniform map would be (mass = the box's share of the image).
/// Throws InputError for a non-[gh,gw] map, a non-positive patch size or an empty box.
Localization localize(const Array& map, int patch_h, int patch_w, const std::array<int, 4>& box_xyxy);

/// Baseline maps [gh, gw] that know nothing about the model:
/// uniform random values in [0, 1), reproducible per (seed, index) whatever order images are processed in;
Array random_map(int grid_h, int grid_w, std::uint64_t seed, std::uint64_t index);
/// and a centre prior, exp(-d^2 / (2 sigma^2)) with d the distance of the patch centre from the image centre and
/// sigma a quarter of the shorter side (objects tend to be photographed, and pasted, near the middle).
Array centre_prior_map(int grid_h, int grid_w);

/// Mean and standard deviation (numpy's np.std, ddof = 0, as the reference scripts print) of the finite values,
/// and how many there were (NaN entries are images where a metric does not apply).
struct MeanStd {
  double mean = 0.0, std = 0.0;
  std::size_t count = 0;
};
MeanStd mean_std(const std::vector<double>& values);

}  // namespace attnlens
ATTNLENS_API_END
