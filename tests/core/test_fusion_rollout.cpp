#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "core/fusion.hpp"
#include "core/rollout.hpp"
#include "tests/support/arrays.hpp"

namespace attnlens {
namespace {

using testing::expect_near;
using testing::make;

// Matrix l (row-major N x N) of a [K,N,N] result.
std::vector<double> slice(const Array& a, int l) {
  const std::size_t nn = static_cast<std::size_t>(a.shape[1] * a.shape[2]);
  return {a.data.begin() + l * nn, a.data.begin() + (l + 1) * nn};
}

// Spec 13 head-mean matrices.
const std::vector<double> kA1 = {.6, .3, .1, .2, .5, .3, .1, .1, .8};
const std::vector<double> kA2 = {.2, .7, .1, .3, .3, .4, .5, .25, .25};
const std::vector<double> kRollout2 = {.5175, .355, .1275, .195, .52, .285, .24375, .1625, .59375};

// Two heads per layer whose mean is the spec matrix: +/- a perturbation that keeps every row stochastic.
Array spec_two_heads() {
  const std::vector<double> d = {.05, -.05, 0, 0, .05, -.05, -.05, 0, .05};
  std::vector<double> data;
  for (const auto* a : {&kA1, &kA2}) {
    for (int e = 0; e < 9; ++e) data.push_back((*a)[e] + d[e]);
    for (int e = 0; e < 9; ++e) data.push_back((*a)[e] - d[e]);
  }
  return make({2, 2, 3, 3}, data);
}

// 1 layer, 2 heads, N = 2: mean [[.6,.4],[.6,.4]], max [[.9,.7],[.8,.6]], min [[.3,.1],[.4,.2]].
Array two_by_two() { return make({1, 2, 2, 2}, {.9, .1, .4, .6, .3, .7, .8, .2}); }

TEST(Fusion, MeanMaxMinOverHeads) {
  const Array a = two_by_two();
  const AttentionView v = AttentionView::of(a);
  const Array mean = fuse_heads(v, HeadFusion::Mean);
  EXPECT_EQ(mean.shape, (std::vector<std::int64_t>{1, 2, 2}));
  expect_near(mean.data, {.6, .4, .6, .4}, 1e-15);
  expect_near(fuse_heads(v, HeadFusion::Max).data, {.9, .7, .8, .6}, 0);
  expect_near(fuse_heads(v, HeadFusion::Min).data, {.3, .1, .4, .2}, 0);
}

TEST(Fusion, ThreeByThreeMaxMinPerLayer) {
  // Layer 0 heads: A1 and its transpose; layer 1 heads: A2 and A2 with rows reversed.
  const Array a = make({2, 2, 3, 3}, {.6, .3, .1, .2, .5, .3, .1, .1, .8,  .6, .2, .1, .3, .5, .1, .1, .3, .8,
                                      .2, .7, .1, .3, .3, .4, .5, .25, .25, .5, .25, .25, .3, .3, .4, .2, .7, .1});
  const AttentionView v = AttentionView::of(a);
  expect_near(fuse_heads(v, HeadFusion::Max).data,
              {.6, .3, .1, .3, .5, .3, .1, .3, .8, .5, .7, .25, .3, .3, .4, .5, .7, .25}, 0);
  expect_near(fuse_heads(v, HeadFusion::Min).data,
              {.6, .2, .1, .2, .5, .1, .1, .1, .8, .2, .25, .1, .3, .3, .4, .2, .25, .1}, 0);
}

TEST(Fusion, FusedStackIsCopied) {
  const Array a = make({2, 3, 3}, [] { auto d = kA1; d.insert(d.end(), kA2.begin(), kA2.end()); return d; }());
  for (HeadFusion f : {HeadFusion::Mean, HeadFusion::Max, HeadFusion::Min}) {
    const Array out = fuse_heads(AttentionView::of(a), f);
    EXPECT_EQ(out.shape, a.shape);
    EXPECT_EQ(out.data, a.data);
  }
}

TEST(Fusion, ResidualHalfRowNormalisesAndNoneCopies) {
  const Array fused = make({1, 2, 2}, {.9, .7, .8, .6});
  // (F + I) = [[1.9,.7],[.8,1.6]], row sums 2.6 and 2.4.
  expect_near(add_residual(fused, Residual::Half).data, {1.9 / 2.6, .7 / 2.6, .8 / 2.4, 1.6 / 2.4}, 1e-15);
  EXPECT_EQ(add_residual(fused, Residual::None).data, fused.data);
  // For a row-stochastic matrix it is exactly the paper's 0.5 A + 0.5 I.
  const Array stochastic = make({1, 3, 3}, kA1);
  expect_near(add_residual(stochastic, Residual::Half).data, {.8, .15, .05, .1, .75, .15, .05, .05, .9}, 1e-15);
}

TEST(Fusion, NormalizeRowsLeavesZeroRows) {
  Array s = make({2, 2, 2}, {1, 3, 0, 0, 0, 0, 2, 2});
  normalize_rows(s);
  expect_near(s.data, {.25, .75, 0, 0, 0, 0, .5, .5}, 0);
  Array bad = make({1, 2, 3}, {1, 2, 3, 4, 5, 6});
  EXPECT_THROW(normalize_rows(bad), InputError);
}

TEST(Rollout, Spec13VectorAllLayers) {
  const Array fused = make({2, 3, 3}, [] { auto d = kA1; d.insert(d.end(), kA2.begin(), kA2.end()); return d; }());
  const Array out = rollout(AttentionView::of(fused), {});
  ASSERT_EQ(out.shape, (std::vector<std::int64_t>{2, 3, 3}));
  expect_near(slice(out, 0), {.8, .15, .05, .1, .75, .15, .05, .05, .9}, 1e-12);
  expect_near(slice(out, 1), kRollout2, 1e-12);
  for (int l = 0; l < 2; ++l)
    for (int i = 0; i < 3; ++i)
      EXPECT_NEAR(out.data[l * 9 + i * 3] + out.data[l * 9 + i * 3 + 1] + out.data[l * 9 + i * 3 + 2], 1.0, 1e-12);
}

TEST(Rollout, Spec13VectorFromHeadsInEveryMode) {
  // With mean fusion and no discard the rows of F sum to 1, so vit-explain's column quirk divides by 1.
  const Array heads = spec_two_heads();
  for (RolloutMode mode : {RolloutMode::Abnar, RolloutMode::Chefer, RolloutMode::VitExplainReference}) {
    RolloutOptions o;
    o.mode = mode;
    expect_near(slice(rollout(AttentionView::of(heads), o), 1), kRollout2, 1e-12);
  }
}

TEST(Rollout, ResidualNoneMultipliesRawMatrices) {
  const Array heads = spec_two_heads();
  RolloutOptions o;
  o.residual = Residual::None;
  // A2 * A1 row 0: [.2*.6+.7*.2+.1*.1, .2*.3+.7*.5+.1*.1, .2*.1+.7*.3+.1*.8] = [.27,.42,.31] (A1 * A2 would differ).
  const Array out = rollout(AttentionView::of(heads), o);
  expect_near({out.data.begin() + 9, out.data.begin() + 12}, {.27, .42, .31}, 1e-12);
}

TEST(Rollout, VitExplainColumnQuirkWithMaxFusion) {
  // F = max = [[.9,.7],[.8,.6]]; a = (F+I)/2 = [[.95,.35],[.4,.8]]; s = row sums = [1.3, 1.2].
  // Reference: a[i][j] / s[j] = [[.95/1.3, .35/1.2], [.4/1.3, .8/1.2]].
  // Fixed (Abnar): a[i][j] / s[i] = [[.95/1.3, .35/1.3], [.4/1.2, .8/1.2]]: both off-diagonal entries differ.
  const Array a = two_by_two();
  RolloutOptions o;
  o.fusion = HeadFusion::Max;
  o.mode = RolloutMode::VitExplainReference;
  const Array ref = rollout(AttentionView::of(a), o);
  expect_near(ref.data, {.95 / 1.3, .35 / 1.2, .4 / 1.3, .8 / 1.2}, 1e-15);
  o.mode = RolloutMode::Abnar;
  const Array fixed = rollout(AttentionView::of(a), o);
  expect_near(fixed.data, {.95 / 1.3, .35 / 1.3, .4 / 1.2, .8 / 1.2}, 1e-15);
  EXPECT_GT(std::abs(ref.data[1] - fixed.data[1]), 0.02);
}

TEST(Rollout, SmallestEntriesTiesByLowerIndex) {
  const std::vector<double> m = {.5, .1, .2, .1, .9, .3, .05, .4, .6};
  // k = floor(9 * ratio); sorted (value, index): .05@6, .1@1, .1@3, .2@2, ...
  EXPECT_EQ(smallest_entries(m.data(), 3, 0.0), (std::vector<std::int64_t>{}));
  EXPECT_EQ(smallest_entries(m.data(), 3, 0.3), (std::vector<std::int64_t>{6, 1}));  // 2.7 -> 2: tie broken to 1
  EXPECT_EQ(smallest_entries(m.data(), 3, 0.4), (std::vector<std::int64_t>{6, 1, 3}));
  EXPECT_EQ(smallest_entries(m.data(), 3, 0.5), (std::vector<std::int64_t>{6, 1, 3, 2}));
  // Python int(100 * 0.29) == 28 because 100 * 0.29 == 28.999999999999996 in double.
  const std::vector<double> big(100, 1.0);
  EXPECT_EQ(smallest_entries(big.data(), 10, 0.29).size(), 28u);
  EXPECT_EQ(smallest_entries(big.data(), 10, 0.29).back(), 27);
}

TEST(Rollout, VitExplainDiscardProtectsOnlyIndexZero) {
  // F = [[.1,.9],[.6,.4]], ratio .5 -> k = 2: indices 0 (.1) and 3 (.4); 0 is dropped from the list, 3 zeroed.
  // a = ([[.1,.9],[.6,0]] + I)/2 = [[.55,.45],[.3,.5]]; s = [1, .8]; a[i][j]/s[j] = [[.55,.5625],[.3,.625]].
  const Array a = make({1, 1, 2, 2}, {.1, .9, .6, .4});
  RolloutOptions o;
  o.mode = RolloutMode::VitExplainReference;
  o.discard_ratio = 0.5;
  expect_near(rollout(AttentionView::of(a), o).data, {.55, .5625, .3, .625}, 1e-15);
}

TEST(Rollout, DiscardZeroesPatchEntriesAndAbnarProtectsPrefix) {
  // Sorted entries: .05@3 (row 1, col 0 = CLS column), .1@7 (row 2, col 1), .2@0 (CLS->CLS), ...
  const std::vector<double> f = {.2, .5, .3, .05, .6, .35, .3, .1, .6};
  const Array a = make({1, 1, 3, 3}, f);
  auto zeroed = [&](std::vector<int> idx) {
    Array z = a;
    for (int i : idx) z.data[i] = 0;
    return z;
  };
  auto run = [](const Array& x, RolloutMode mode, double ratio, int prefix) {
    RolloutOptions o;
    o.mode = mode;
    o.discard_ratio = ratio;
    o.prefix_tokens = prefix;
    return rollout(AttentionView::of(x), o).data;
  };
  // ratio .34 -> k = floor(3.06) = 3: candidates {3, 7, 0}.
  // Reference: 0 protected, 3 (CLS column) and 7 zeroed.
  expect_near(run(a, RolloutMode::VitExplainReference, .34, 1),
              run(zeroed({3, 7}), RolloutMode::VitExplainReference, 0, 1), 0);
  // Abnar with one prefix token: row 0 / column 0 protected, only 7 zeroed.
  expect_near(run(a, RolloutMode::Abnar, .34, 1), run(zeroed({7}), RolloutMode::Abnar, 0, 1), 0);
  // Abnar with no prefix protects nothing.
  expect_near(run(a, RolloutMode::Abnar, .34, 0), run(zeroed({3, 7, 0}), RolloutMode::Abnar, 0, 0), 0);
  // The protected candidates still count towards k: ratio .25 -> k = 2 = {3, 7}; 7 alone is zeroed.
  expect_near(run(a, RolloutMode::Abnar, .25, 1), run(zeroed({7}), RolloutMode::Abnar, 0, 1), 0);
  // And discarding really changes the result.
  EXPECT_NE(run(a, RolloutMode::Abnar, .34, 1), run(a, RolloutMode::Abnar, 0, 1));
}

TEST(Rollout, StartLayerSkipsEarlierLayers) {
  // Layers: garbage, A1, A2. Starting at 1 must equal the spec rollout of (A1, A2).
  std::vector<double> d = {.9, .05, .05, .05, .9, .05, .05, .05, .9};
  d.insert(d.end(), kA1.begin(), kA1.end());
  d.insert(d.end(), kA2.begin(), kA2.end());
  const Array a = make({3, 3, 3}, d);
  for (RolloutMode mode : {RolloutMode::Abnar, RolloutMode::Chefer, RolloutMode::VitExplainReference}) {
    RolloutOptions o;
    o.mode = mode;
    o.start_layer = 1;
    const Array out = rollout(AttentionView::of(a), o);
    ASSERT_EQ(out.shape, (std::vector<std::int64_t>{2, 3, 3}));
    expect_near(slice(out, 0), {.8, .15, .05, .1, .75, .15, .05, .05, .9}, 1e-12);
    expect_near(slice(out, 1), kRollout2, 1e-12);
    o.start_layer = 2;
    EXPECT_EQ(rollout(AttentionView::of(a), o).shape, (std::vector<std::int64_t>{1, 3, 3}));
  }
}

TEST(Rollout, RejectsInvalidOptions) {
  const Array a = spec_two_heads();
  const AttentionView v = AttentionView::of(a);
  auto throws = [&](auto edit) {
    RolloutOptions o;
    edit(o);
    EXPECT_THROW(rollout(v, o), InputError);
  };
  throws([](RolloutOptions& o) { o.discard_ratio = 1.0; });
  throws([](RolloutOptions& o) { o.discard_ratio = -0.1; });
  throws([](RolloutOptions& o) { o.discard_ratio = std::nan(""); });
  throws([](RolloutOptions& o) { o.start_layer = 2; });
  throws([](RolloutOptions& o) { o.start_layer = -1; });
  throws([](RolloutOptions& o) { o.prefix_tokens = 3; });
  throws([](RolloutOptions& o) { o.prefix_tokens = -1; });
  throws([](RolloutOptions& o) { o.mode = RolloutMode::Chefer; o.fusion = HeadFusion::Max; });
  throws([](RolloutOptions& o) { o.mode = RolloutMode::Chefer; o.fusion = HeadFusion::Min; });
  throws([](RolloutOptions& o) { o.mode = RolloutMode::Chefer; o.discard_ratio = 0.1; });
  throws([](RolloutOptions& o) { o.mode = RolloutMode::Chefer; o.residual = Residual::None; });
  try {
    RolloutOptions o;
    o.mode = RolloutMode::VitExplainReference;
    o.residual = Residual::None;
    rollout(v, o);
    ADD_FAILURE() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--residual none is not part of vit-explain"), std::string::npos);
  }
}

// vit_rollout.py transcribed to NumPy: `a / a.sum(axis=-1)` broadcasts exactly like the torch code (column quirk).
constexpr const char* kVitExplainNumpy = R"PY(
import sys
import numpy as np
L, H, N = 3, 2, 5
att = np.fromfile(sys.argv[1], dtype='<f8').reshape(L, H, N, N)
result = np.eye(N)
for attention in att:
    fused = attention.max(axis=0)
    flat = fused.reshape(-1)
    k = int(flat.size * 0.3)
    indices = np.argsort(flat, kind='stable')[:k]
    indices = indices[indices != 0]
    flat[indices] = 0
    a = (fused + 1.0 * np.eye(N)) / 2
    a = a / a.sum(axis=-1)
    result = a @ result
result.astype('<f8').tofile(sys.argv[2])
)PY";

TEST(Rollout, VitExplainMatchesIndependentNumpy) {
  if (std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 with numpy not available";
  const int L = 3, H = 2, N = 5;
  std::mt19937_64 rng(20240611);
  const Array att = testing::random_softmax_stack(L, H, N, rng);
  const auto dir = std::filesystem::temp_directory_path() / ("attnlens_rollout_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto in = dir / "att.f64", out = dir / "r.f64", script = dir / "vit_rollout.py";
  std::ofstream(in, std::ios::binary)
      .write(reinterpret_cast<const char*>(att.data.data()), static_cast<std::streamsize>(att.data.size() * 8));
  std::ofstream(script) << kVitExplainNumpy;
  const std::string cmd = "/usr/bin/python3 " + script.string() + " " + in.string() + " " + out.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  std::vector<double> expected(N * N);
  std::ifstream(out, std::ios::binary).read(reinterpret_cast<char*>(expected.data()), N * N * 8);
  std::filesystem::remove_all(dir);

  RolloutOptions o;
  o.mode = RolloutMode::VitExplainReference;
  o.fusion = HeadFusion::Max;
  o.discard_ratio = 0.3;
  const std::vector<double> got = slice(rollout(AttentionView::of(att), o), L - 1);
  expect_near({got.begin(), got.begin() + N}, {expected.begin(), expected.begin() + N}, 1e-10);  // R[0], the map
  expect_near(got, expected, 1e-10);
}

}  // namespace
}  // namespace attnlens

namespace attnlens {
namespace {

// rollout_row is the last joint matrix's row, computed as a vector-matrix chain: check it on every mode.
TEST(RolloutRow, EqualsTheRowOfTheFullProduct) {
  std::mt19937_64 rng(5);
  const int L = 4, H = 3, N = 9;
  const Array a = testing::random_softmax_stack(L, H, N, rng);
  const AttentionView view = AttentionView::of(a);
  for (RolloutMode mode : {RolloutMode::Abnar, RolloutMode::VitExplainReference, RolloutMode::Chefer})
    for (int row : {0, 4}) {
      RolloutOptions o;
      o.mode = mode;
      if (mode != RolloutMode::Chefer) {
        o.fusion = HeadFusion::Max;
        o.discard_ratio = 0.5;
      }
      o.start_layer = 1;
      const Array full = rollout(view, o);
      const Array got = rollout_row(view, o, row);
      const std::size_t last = static_cast<std::size_t>(full.shape[0] - 1) * N * N;
      for (int k = 0; k < N; ++k)
        EXPECT_NEAR(got.data[k], full.data[last + row * N + k], 1e-14) << "mode " << static_cast<int>(mode);
    }
  EXPECT_THROW(rollout_row(view, {}, N), InputError);
}

}  // namespace
}  // namespace attnlens
