#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/distance.hpp"
#include "core/heads.hpp"

namespace attnlens {
namespace {

// One layer of a 2x2 grid with a CLS prefix (N = 5); set(h, q, k, v) writes A[0][h][q][k].
struct Stack {
  Array a;
  Stack(int heads, int n) : a({1, heads, n, n}) {}
  void set(int h, int q, int k, double v) {
    const auto n = a.shape[2];
    a.data[(h * n + q) * n + k] = v;
  }
};

DistanceOptions grid_options(int prefix, int gh, int gw, bool renormalize) {
  DistanceOptions o;
  o.layout.prefix = prefix;
  o.layout.grid_h = gh;
  o.layout.grid_w = gw;
  o.renormalize = renormalize;
  return o;
}

TEST(Distance, HandComputedTwoByTwoGrid) {
  // Patch p (0..3) is token p + 1 at grid (p / 2, p % 2); the CLS row (query 0) is ignored, so it gets junk.
  Stack s(4, 5);
  for (int h = 0; h < 4; ++h) s.set(h, 0, 4, 1.0);
  for (int p = 0; p < 4; ++p) {
    const int q = p + 1;
    s.set(0, q, 0, .5), s.set(0, q, q, .5);          // half on CLS, half on itself: distance 0
    s.set(1, q, 1 + (3 - p), 1.0);                   // all on the diagonal-opposite patch: 16 sqrt 2
    s.set(2, q, 0, .5), s.set(2, q, 1 + (p ^ 1), .5);  // half on CLS, half on the horizontal neighbour
  }
  // Head 3 differs per query: 0 -> patch 1 (16); 1 -> itself (0); 2 -> half CLS, half patch 1 ((1,0)-(0,1): 16
  // sqrt 2); 3 -> all CLS (no patch mass).
  s.set(3, 1, 2, 1.0);
  s.set(3, 2, 2, 1.0);
  s.set(3, 3, 0, .5), s.set(3, 3, 2, .5);
  s.set(3, 4, 0, 1.0);
  const AttentionView v = AttentionView::of(s.a);
  const double r2 = std::sqrt(2.0);

  const Array ref = mean_attention_distance(v, grid_options(1, 2, 2, false));
  ASSERT_EQ(ref.shape, (std::vector<std::int64_t>{1, 4}));
  EXPECT_NEAR(ref.data[0], 0.0, 1e-12);
  EXPECT_NEAR(ref.data[1], 16 * r2, 1e-12);
  EXPECT_NEAR(ref.data[2], 8.0, 1e-12);                     // CLS mass counts as distance 0
  EXPECT_NEAR(ref.data[3], (16 + 0 + 8 * r2 + 0) / 4, 1e-12);

  const Array renorm = mean_attention_distance(v, grid_options(1, 2, 2, true));
  EXPECT_NEAR(renorm.data[0], 0.0, 1e-12);
  EXPECT_NEAR(renorm.data[1], 16 * r2, 1e-12);
  EXPECT_NEAR(renorm.data[2], 16.0, 1e-12);                 // patch part re-normalised to 1
  EXPECT_NEAR(renorm.data[3], (16 + 0 + 16 * r2 + 0) / 4, 1e-12);  // the all-CLS query contributes 0

  // A square grid is inferred when none is given; patch_size scales linearly.
  DistanceOptions inferred = grid_options(1, 0, 0, false);
  inferred.patch_size = 8;
  const Array half = mean_attention_distance(v, inferred);
  for (int h = 0; h < 4; ++h) EXPECT_NEAR(half.data[h], ref.data[h] / 2, 1e-12);
}

TEST(Distance, NonSquareGridUsesRowMajorPositions) {
  // 2 layers, 1 head, distilled prefix (P = 2) and a 2x3 grid (N = 8). Layer 0: query patch i -> patch (i+1) mod 6.
  // On 2x3 the steps are 1,1,sqrt5,1,1,sqrt5; on a transposed 3x2 grid they would be 1,sqrt2,1,sqrt2,1,sqrt5.
  // Layer 1: every query on patch 0 (distances 0,1,2,1,sqrt2,sqrt5).
  Array a({2, 1, 8, 8});
  for (int i = 0; i < 6; ++i) {
    a.data[(2 + i) * 8 + 2 + (i + 1) % 6] = 1.0;
    a.data[64 + (2 + i) * 8 + 2] = 1.0;
  }
  DistanceOptions o = grid_options(2, 2, 3, false);
  o.patch_size = 14;
  const Array out = mean_attention_distance(AttentionView::of(a), o);
  ASSERT_EQ(out.shape, (std::vector<std::int64_t>{2, 1}));
  EXPECT_NEAR(out.data[0], 14 * (4 + 2 * std::sqrt(5.0)) / 6, 1e-12);
  EXPECT_NEAR(out.data[1], 14 * (4 + std::sqrt(2.0) + std::sqrt(5.0)) / 6, 1e-12);
  const Array transposed = mean_attention_distance(AttentionView::of(a), grid_options(2, 3, 2, false));
  EXPECT_NEAR(transposed.data[0], 16 * (3 + 2 * std::sqrt(2.0) + std::sqrt(5.0)) / 6, 1e-12);
}

TEST(Distance, RejectsBadLayoutAndPatchSize) {
  const Array a({1, 1, 5, 5}, 0.2);
  const AttentionView v = AttentionView::of(a);
  EXPECT_THROW(mean_attention_distance(v, grid_options(1, 2, 3, false)), InputError);
  EXPECT_THROW(mean_attention_distance(v, grid_options(2, 0, 0, false)), InputError);  // 3 patches: not square
  DistanceOptions o = grid_options(1, 2, 2, false);
  o.patch_size = 0;
  EXPECT_THROW(mean_attention_distance(v, o), InputError);
}

TEST(Heads, HeadMapsLayoutOnTwoByThreeGrid) {
  // A[l][h][q][k] = 1000 l + 100 h + 10 q + k, prefix 1, 2x3 grid (N = 7).
  Array a({2, 2, 7, 7});
  for (int l = 0; l < 2; ++l)
    for (int h = 0; h < 2; ++h)
      for (int q = 0; q < 7; ++q)
        for (int k = 0; k < 7; ++k) a.data[((l * 2 + h) * 7 + q) * 7 + k] = 1000 * l + 100 * h + 10 * q + k;
  const AttentionView v = AttentionView::of(a);
  TokenLayout layout;
  layout.prefix = 1, layout.grid_h = 2, layout.grid_w = 3;
  const Array maps = head_maps(v, 1, 3, layout);
  ASSERT_EQ(maps.shape, (std::vector<std::int64_t>{2, 2, 3}));
  for (int h = 0; h < 2; ++h)
    for (int r = 0; r < 2; ++r)
      for (int c = 0; c < 3; ++c)
        EXPECT_EQ(maps.data[(h * 2 + r) * 3 + c], 1000 + 100 * h + 30 + 1 + r * 3 + c);
  EXPECT_THROW(head_maps(v, 2, 0, layout), InputError);
  EXPECT_THROW(head_maps(v, -1, 0, layout), InputError);
  EXPECT_THROW(head_maps(v, 0, 7, layout), InputError);
  EXPECT_THROW(head_maps(v, 0, -1, layout), InputError);
  layout.grid_w = 2;
  EXPECT_THROW(head_maps(v, 0, 0, layout), InputError);
}

Array one_map(std::vector<double> values) {
  Array m({1, 2, 2});
  m.data = std::move(values);
  return m;
}

TEST(Heads, ThresholdMasksKeepSmallestTopSetReachingTheMass) {
  // Ascending 0.1, 0.2, 0.3, 0.4; cumulative shares 0.1, 0.3000000000000000444, 0.6000000000000000888, 1.
  const Array m = one_map({.1, .4, .2, .3});
  // 0.6: keep cum > 0.4 -> {0.3, 0.4} (mass 0.7; {0.4} alone is 0.4 < 0.6).
  EXPECT_EQ(threshold_masks(m, .6).data, (std::vector<double>{0, 1, 0, 1}));
  // 0.7: the cut 1 - 0.7 and the share 0.1 + 0.2 round to the same double, and the rule is strict (>), so 0.2 is
  // dropped: kept mass 0.7 meets the threshold exactly with the boundary element 0.3 included.
  EXPECT_EQ(threshold_masks(m, .7).data, (std::vector<double>{0, 1, 0, 1}));
  EXPECT_EQ(threshold_masks(m, .75).data, (std::vector<double>{0, 1, 1, 1}));
  EXPECT_EQ(threshold_masks(m, .3).data, (std::vector<double>{0, 1, 0, 0}));
  EXPECT_EQ(threshold_masks(m, 1.0).data, (std::vector<double>{1, 1, 1, 1}));
  // Scale does not matter: shares are of the head's own total.
  EXPECT_EQ(threshold_masks(one_map({1, 4, 2, 3}), .6).data, (std::vector<double>{0, 1, 0, 1}));
}

TEST(Heads, ThresholdMasksExactBoundariesTiesAndZeros) {
  // Exactly representable: ascending 0@3, .25@0, .25@1, .5@2 (stable: the lower index sorts first among ties).
  const Array m = one_map({.25, .25, .5, 0});
  EXPECT_EQ(threshold_masks(m, .5).data, (std::vector<double>{0, 0, 1, 0}));   // cum .5 is not > .5
  EXPECT_EQ(threshold_masks(m, .75).data, (std::vector<double>{0, 1, 1, 0}));  // tie: the higher index is kept
  EXPECT_EQ(threshold_masks(m, 1.0).data, (std::vector<double>{1, 1, 1, 0}));  // zero entries never kept
  // Heads are independent; a head without mass keeps nothing.
  Array two({2, 2, 2});
  two.data = {0, 0, 0, 0, .1, .4, .2, .3};
  EXPECT_EQ(threshold_masks(two, .6).data, (std::vector<double>{0, 0, 0, 0, 0, 1, 0, 1}));
}

TEST(Heads, ThresholdMasksRejectBadInput) {
  const Array m = one_map({.1, .4, .2, .3});
  EXPECT_THROW(threshold_masks(m, 0.0), InputError);
  EXPECT_THROW(threshold_masks(m, 1.5), InputError);
  EXPECT_THROW(threshold_masks(m, std::nan("")), InputError);
  Array flat({4});
  EXPECT_THROW(threshold_masks(flat, .5), InputError);
}

}  // namespace
}  // namespace attnlens
