// eval/metrics: hand-computed cases and invariants.
#include <gtest/gtest.h>

#include <cmath>

#include "eval/metrics.hpp"

namespace attnlens {
namespace {

TEST(Metrics, AverageRanksShareTies) {
  // scipy.stats.rankdata([10, 20, 20, 5, 20]) = [2, 4, 4, 1, 4].
  EXPECT_EQ(average_ranks({10, 20, 20, 5, 20}), (std::vector<double>{2, 4, 4, 1, 4}));
  EXPECT_EQ(average_ranks({3, 1, 2}), (std::vector<double>{3, 1, 2}));
}

TEST(Metrics, SpearmanHandComputed) {
  // Without ties rho = 1 - 6 sum d^2 / (n (n^2 - 1)): ranks a = 1..5, b = 2,1,4,3,5 -> d^2 sum 4 -> 1 - 24/120 = 0.8.
  EXPECT_NEAR(spearman({1, 2, 3, 4, 5}, {20, 10, 40, 30, 50}), 0.8, 1e-12);
  EXPECT_NEAR(spearman({1, 2, 3}, {3, 2, 1}), -1.0, 1e-12);
  // With ties, Pearson on average ranks: a ranks 1, 2.5, 2.5, 4 and b ranks 1, 2, 3, 4, centred -1.5, 0, 0, 1.5 and
  // -1.5, -0.5, 0.5, 1.5: sab = 4.5, saa = 4.5, sbb = 5 -> 4.5 / sqrt(22.5) = 0.9486833 (scipy gives the same).
  EXPECT_NEAR(spearman({1, 2, 2, 3}, {1, 2, 3, 4}), 4.5 / std::sqrt(22.5), 1e-12);
  // A constant side: undefined, reported as 0 (the references' NaN -> 0).
  EXPECT_EQ(spearman({1, 1, 1}, {1, 2, 3}), 0.0);
  EXPECT_THROW(spearman({1, 2}, {1, 2, 3}), InputError);
  EXPECT_THROW(spearman({1}, {1}), InputError);
}

TEST(Metrics, SpearmanIsInvariantToMonotoneMaps) {
  const std::vector<double> a{0.3, 0.1, 0.9, 0.5, 0.7, 0.2}, b{1, 5, 2, 6, 3, 4};
  std::vector<double> a3;
  for (double v : a) a3.push_back(std::exp(3 * v));
  EXPECT_NEAR(spearman(a, b), spearman(a3, b), 1e-12);
  EXPECT_NEAR(spearman(a, b), spearman(b, a), 1e-12);
}

TEST(Metrics, TopKOverlapAndTies) {
  EXPECT_EQ(top_k_count(196, 0.1), 19);  // spec 8.1: floor(19.6)
  EXPECT_EQ(top_k_count(64, 0.1), 6);
  EXPECT_EQ(top_k_count(5, 0.1), 1);
  EXPECT_EQ(top_k_count(10, 0.3), 3);  // 0.3 * 10 is 3.0000000000000004 in floating point; still 3
  // top-2 of a = {0, 3}; of b = {3, 1}: one in common.
  EXPECT_DOUBLE_EQ(top_k_overlap({9, 1, 2, 8}, {5, 6, 0, 7}, 2), 0.5);
  EXPECT_DOUBLE_EQ(top_k_overlap({1, 2, 3}, {1, 2, 3}, 3), 1.0);
  // Ties go to the lower index: top-1 of {5, 5} is index 0.
  EXPECT_EQ(descending_order({5, 5, 7}), (std::vector<int>{2, 0, 1}));
  EXPECT_THROW(top_k_overlap({1, 2}, {1, 2}, 3), InputError);
}

TEST(Metrics, TrapezoidAuc) {
  EXPECT_DOUBLE_EQ(trapezoid_auc({0, 0.5, 1}, {1, 1, 0}), 0.75);
  // Chefer's perturbation axis: accuracy 1 at 0, falling linearly to 0.1 at 0.9 -> 0.9 * (1 + 0.1) / 2.
  std::vector<double> x, y;
  for (int i = 0; i <= 9; ++i) x.push_back(i / 10.0), y.push_back(1.0 - i / 10.0);
  EXPECT_NEAR(trapezoid_auc(x, y), 0.495, 1e-12);
}

TEST(Metrics, LocalizationPointingAndMass) {
  // 2x2 grid of 7-pixel patches (a 14x14 image); the box covers the left column exactly.
  Array map({2, 2});
  map.data = {1.0, 0.0, 3.0, 0.0};  // top patch (1,0), centre (3.5, 10.5) -> inside
  Localization l = localize(map, 7, 7, {0, 0, 7, 14});
  EXPECT_TRUE(l.hit);
  EXPECT_DOUBLE_EQ(l.mass_inside, 1.0);
  // The right column holds all relevance; a box x in [0, 11) takes 4 of its 7 pixel columns. The top patch is the
  // first maximum, (0,1), whose centre x = 10.5 is inside [0, 11) but not inside [0, 10).
  map.data = {0.0, 2.0, 0.0, 2.0};
  l = localize(map, 7, 7, {0, 0, 11, 14});
  EXPECT_TRUE(l.hit);
  EXPECT_NEAR(l.mass_inside, 4.0 / 7.0, 1e-12);
  l = localize(map, 7, 7, {0, 0, 10, 14});  // centre 10.5 is outside [0, 10)
  EXPECT_FALSE(l.hit);
  EXPECT_NEAR(l.mass_inside, 3.0 / 7.0, 1e-12);
  // Negative relevance counts as 0; a map without positive relevance scores as uniform (box share of the image).
  map.data = {-1.0, -2.0, -3.0, -4.0};
  EXPECT_NEAR(localize(map, 7, 7, {0, 0, 7, 7}).mass_inside, 0.25, 1e-12);
  EXPECT_THROW(localize(map, 7, 7, {3, 3, 3, 9}), InputError);
  EXPECT_THROW(localize(Array({4}), 7, 7, {0, 0, 7, 7}), InputError);
}

TEST(Metrics, BaselineMaps) {
  const Array a = random_map(8, 8, 0, 5), b = random_map(8, 8, 0, 5), c = random_map(8, 8, 0, 6);
  EXPECT_EQ(a.data, b.data);  // reproducible per (seed, index)
  EXPECT_NE(a.data, c.data);
  for (double v : a.data) EXPECT_TRUE(v >= 0.0 && v < 1.0);
  const Array centre = centre_prior_map(8, 8);
  // The four central patches share the maximum; corners are the minimum; symmetric.
  EXPECT_DOUBLE_EQ(centre.data[3 * 8 + 3], centre.data[4 * 8 + 4]);
  EXPECT_GT(centre.data[3 * 8 + 3], centre.data[0]);
  EXPECT_DOUBLE_EQ(centre.data[0], centre.data[63]);
  // sigma = 2 patches: a corner centre is 3.5 patches from the middle on each axis -> exp(-24.5 / 8).
  EXPECT_NEAR(centre.data[0], std::exp(-24.5 / 8.0), 1e-12);
}

TEST(Metrics, MeanStdSkipsNaN) {
  const MeanStd m = mean_std({1.0, 3.0, NAN});
  EXPECT_EQ(m.count, 2u);
  EXPECT_DOUBLE_EQ(m.mean, 2.0);
  EXPECT_DOUBLE_EQ(m.std, 1.0);  // ddof = 0, as np.std
  EXPECT_EQ(mean_std({NAN}).count, 0u);
}

// SaCo's worked example and its limits (spec 19.3).
TEST(Metrics, SacoWorkedExample) {
  EXPECT_NEAR(saco({4, 3, 2, 1}, {0.5, 0.1, 0.3, 0.0}), 0.8, 1e-15);  // F = 8, W = 10
  EXPECT_DOUBLE_EQ(saco({4, 3, 2, 1}, {0.4, 0.3, 0.2, 0.1}), 1.0);
  EXPECT_DOUBLE_EQ(saco({4, 3, 2, 1}, {0.1, 0.2, 0.3, 0.4}), -1.0);
  // K = 2: the sign of the impact order; a tie counts as agreement.
  EXPECT_DOUBLE_EQ(saco({2, 1}, {0.1, 0.3}), -1.0);
  EXPECT_DOUBLE_EQ(saco({2, 1}, {0.3, 0.3}), 1.0);
  // Invariant to a positive affine map of the salience (Δs scales by a).
  EXPECT_NEAR(saco({4 * 3 + 1, 3 * 3 + 1, 2 * 3 + 1, 1 * 3 + 1}, {0.5, 0.1, 0.3, 0.0}), 0.8, 1e-15);
  EXPECT_TRUE(std::isnan(saco({1, 1, 1}, {0.3, 0.2, 0.1})));  // a constant map: every weight 0
  EXPECT_THROW(saco({1, 2}, {0.1}), InputError);
}

TEST(Metrics, ResampleCurveInterpolatesLinearly) {
  // A curve at 0, 1/2, 1 sampled at 0, 1/4, 3/4, 1.
  const auto y = resample_curve({1.0, 0.5, 0.0}, {0.0, 0.25, 0.75, 1.0});
  ASSERT_EQ(y.size(), 4u);
  EXPECT_DOUBLE_EQ(y[0], 1.0);
  EXPECT_DOUBLE_EQ(y[1], 0.75);
  EXPECT_DOUBLE_EQ(y[2], 0.25);
  EXPECT_DOUBLE_EQ(y[3], 0.0);
  EXPECT_THROW(resample_curve({1.0}, {0.5}), InputError);
}

}  // namespace
}  // namespace attnlens
