#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/gradient_methods.hpp"
#include "tests/support/arrays.hpp"

namespace attnlens {
namespace {

using testing::expect_near;
using testing::make;

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

// The hand-worked case: L = 2, H = 2, N = 3, layer-major then head-major.
//   A[0][0] = [[1/2,1/4,1/4],[1/4,1/2,1/4],[1/4,1/4,1/2]]   A[0][1] = [[1/2,1/2,0],[0,1/2,1/2],[1/2,0,1/2]]
//   A[1][0] = [[1/4,1/4,1/2],[1/2,1/4,1/4],[0,1/2,1/2]]     A[1][1] = [[1,0,0],[1/4,3/4,0],[1/4,1/4,1/2]]
//   G[0][0] = [[2,-2,0],[-4,2,3],[-4,0,2]]                  G[0][1] = [[0,2,2],[2,-2,0],[2,2,0]]
//   G[1][0] = [[4,-4,2],[2,3,0],[0,-2,2]]                   G[1][1] = [[1,3,1],[-4,0,5],[2,4,-2]]
// Elementwise products A[l][h] ⊙ G[l][h] (same layer):
//   layer 0: h0 [[1,-1/2,0],[-1,1,3/4],[-1,0,1]]            h1 [[0,1,0],[0,-1,0],[1,0,0]]
//   layer 1: h0 [[1,-1,1],[1,3/4,0],[0,-1,1]]               h1 [[1,0,0],[-1,0,0],[1/2,1,-1]]
Array hand_attention() {
  return make({2, 2, 3, 3}, {.5, .25, .25, .25, .5, .25, .25, .25, .5,  //
                             .5, .5, 0, 0, .5, .5, .5, 0, .5,           //
                             .25, .25, .5, .5, .25, .25, 0, .5, .5,     //
                             1, 0, 0, .25, .75, 0, .25, .25, .5});
}
Array hand_gradient() {
  return make({2, 2, 3, 3}, {2, -2, 0, -4, 2, 3, -4, 0, 2,  //
                             0, 2, 2, 2, -2, 0, 2, 2, 0,    //
                             4, -4, 2, 2, 3, 0, 0, -2, 2,   //
                             1, 3, 1, -4, 0, 5, 2, 4, -2});
}

GradRolloutOptions options(GradRolloutMode mode, double ratio) {
  GradRolloutOptions o;
  o.mode = mode;
  o.discard_ratio = ratio;
  return o;
}

// Fixed, discard 0. F = mean_h then clamp:
//   F0 = mean [[1/2,1/4,0],[-1/2,0,3/8],[0,0,1/2]] -> clamp [[1/2,1/4,0],[0,0,3/8],[0,0,1/2]]
//   (F0+I)/2 = [[3/4,1/8,0],[0,1/2,3/16],[0,0,3/4]], row sums 7/8, 11/16, 3/4
//   a0 = [[6/7,1/7,0],[0,8/11,3/11],[0,0,1]]
//   F1 = mean [[1,-1/2,1/2],[0,3/8,0],[1/4,0,0]] -> clamp [[1,0,1/2],[0,3/8,0],[1/4,0,0]]
//   a1 = rownorm(F1+I) = [[4/5,0,1/5],[0,1,0],[1/5,0,4/5]]
//   R = a1·a0 = [[24/35,4/35,1/5],[0,8/11,3/11],[6/35,1/35,4/5]]
// Clamping after the mean matters: entry [0][1] of layer 0 has head products -1/2 and 1 -> 1/4 (Chefer: 1/2).
TEST(GradRollout, FixedHandComputed) {
  const Array a = hand_attention(), g = hand_gradient();
  const Array r = grad_rollout(AttentionView::of(a), AttentionView::of(g), options(GradRolloutMode::Fixed, 0.0));
  EXPECT_EQ(r.shape, (std::vector<std::int64_t>{3, 3}));
  expect_near(r.data, {24. / 35, 4. / 35, 1. / 5, 0, 8. / 11, 3. / 11, 6. / 35, 1. / 35, 4. / 5}, 1e-15);
}

// Fixed, discard 0.8: k = floor(9*0.8) = 7 smallest of each clamped F (ties by lower flat index).
//   F0 = [[1/2,1/4,0],[0,0,3/8],[0,0,1/2]]: chosen = zeros {2,3,4,6,7}, 1/4 at 1, 3/8 at 5 (next is 1/2: no tie).
//        Index 1 is in the CLS row (protected); index 5 = [1][2] is zeroed -> F0 = [[1/2,1/4,0],[0,0,0],[0,0,1/2]]
//        a0 = [[6/7,1/7,0],[0,1,0],[0,0,1]]
//   F1 = [[1,0,1/2],[0,3/8,0],[1/4,0,0]]: chosen = zeros {1,3,5,7,8}, 1/4 at 6 ([2][0], CLS column: protected),
//        3/8 at 4 ([1][1], zeroed); a1 = [[4/5,0,1/5],[0,1,0],[1/5,0,4/5]] (row 1 was already the identity row)
//   R = a1·a0 = [[24/35,4/35,1/5],[0,1,0],[6/35,1/35,4/5]]
TEST(GradRollout, FixedDiscardProtectsPrefix) {
  const Array a = hand_attention(), g = hand_gradient();
  const Array r = grad_rollout(AttentionView::of(a), AttentionView::of(g), options(GradRolloutMode::Fixed, 0.8));
  expect_near(r.data, {24. / 35, 4. / 35, 1. / 5, 0, 1, 0, 6. / 35, 1. / 35, 4. / 5}, 1e-15);
  // Without a protected prefix, layer 0 also loses [0][1] and layer 1 loses [2][0]:
  //   a0 = [[1,0,0],[0,1,0],[0,0,1]] (row 0 of (F0+I)/2 = [3/4,0,0]); a1 = [[4/5,0,1/5],[0,1,0],[0,0,1]]
  GradRolloutOptions o = options(GradRolloutMode::Fixed, 0.8);
  o.prefix_tokens = 0;
  expect_near(grad_rollout(AttentionView::of(a), AttentionView::of(g), o).data, {.8, 0, .2, 0, 1, 0, 0, 0, 1}, 1e-15);
}

// VitExplainReference, discard 0.3 (k = floor(2.7) = 2). Attention of layer l meets the gradient of layer 1-l:
//   A0 ⊙ G1: h0 [[2,-1,1/2],[1/2,3/2,0],[0,-1/2,1]]  h1 [[1/2,3/2,0],[0,0,5/2],[1,0,-1]]
//            mean [[5/4,1/4,1/4],[1/4,3/4,5/4],[1/2,-1/4,0]] -> clamp: [2][1] = 0
//            k = 2 smallest = the zeros at 7, 8 (next 1/4): nothing changes
//            (F+I)/2 = [[9/8,1/8,1/8],[1/8,7/8,5/8],[1/4,0,1/2]], row sums s = [11/8, 13/8, 3/4]
//            column quirk a[i][j] /= s[j]: a0 = [[9/11,1/13,1/6],[1/11,7/13,5/6],[2/11,0,2/3]]
//   A1 ⊙ G0: h0 [[1/2,-1/2,0],[-2,1/2,3/4],[0,0,1]]  h1 [[0,0,0],[1/2,-3/2,0],[1/2,1/2,0]]
//            mean [[1/4,-1/4,0],[-3/4,-1/2,3/8],[1/4,1/4,1/2]] -> clamp [[1/4,0,0],[0,0,3/8],[1/4,1/4,1/2]]
//            k = 2: zeros at 1, 2 (no-op); (F+I)/2 = [[5/8,0,0],[0,1/2,3/16],[1/8,1/8,3/4]], s = [5/8,11/16,1]
//            a1 = [[1,0,0],[0,8/11,3/16],[1/5,2/11,3/4]]
//   R = a1·a0 = [[9/11,1/13,1/6],[97/968,56/143,193/264],[383/1210,81/715,113/165]]
TEST(GradRollout, VitExplainReferenceHandComputed) {
  const Array a = hand_attention(), g = hand_gradient();
  const Array r = grad_rollout(AttentionView::of(a), AttentionView::of(g),
                               options(GradRolloutMode::VitExplainReference, 0.3));
  expect_near(r.data,
              {9. / 11, 1. / 13, 1. / 6, 97. / 968, 56. / 143, 193. / 264, 383. / 1210, 81. / 715, 113. / 165},
              1e-15);
}

// VitExplainReference, discard 0.8 (k = 7), nothing protected:
//   layer 0 (A0 ⊙ G1), clamped F = [[5/4,1/4,1/4],[1/4,3/4,5/4],[1/2,0,0]]: the 7 smallest are 0 (7, 8),
//     1/4 (1, 2, 3), 1/2 (6), 3/4 (4); next is 5/4. Left: [[5/4,0,0],[0,0,5/4],[0,0,0]].
//     (F+I)/2 = [[9/8,0,0],[0,1/2,5/8],[0,0,1/2]], s = [9/8, 9/8, 1/2] -> a0 = [[1,0,0],[0,4/9,5/4],[0,0,1]]
//   layer 1 (A1 ⊙ G0), clamped F = [[1/4,0,0],[0,0,3/8],[1/4,1/4,1/2]]: 0 (1,2,3,4), 1/4 (0, 6, 7); next 3/8.
//     Flat index 0 (CLS->CLS) is discarded (invisible here: a1[0][0] = 1 with or without it; the NumPy
//     cross-check below catches a protected index 0). Left: [[0,0,0],[0,0,3/8],[0,0,1/2]].
//     (F+I)/2 = [[1/2,0,0],[0,1/2,3/16],[0,0,3/4]], s = [1/2, 11/16, 3/4] -> a1 = [[1,0,0],[0,8/11,1/4],[0,0,1]]
//   R = a1·a0 = [[1,0,0],[0,32/99,51/44],[0,0,1]]   (row 1 sums to > 1: the column quirk)
TEST(GradRollout, VitExplainReferenceDiscardsClsEntries) {
  const Array a = hand_attention(), g = hand_gradient();
  const Array r = grad_rollout(AttentionView::of(a), AttentionView::of(g),
                               options(GradRolloutMode::VitExplainReference, 0.8));
  expect_near(r.data, {1, 0, 0, 0, 32. / 99, 51. / 44, 0, 0, 1}, 1e-15);
}

// Chefer, start 0 (each head's product clamped, then averaged):
//   Ā0 = mean([[1,0,0],[0,1,3/4],[0,0,1]], [[0,1,0],[0,0,0],[1,0,0]]) = [[1/2,1/2,0],[0,1/2,3/8],[1/2,0,1/2]]
//   R = I + Ā0·I = [[3/2,1/2,0],[0,3/2,3/8],[1/2,0,3/2]]
//   Ā1 = mean([[1,0,1],[1,3/4,0],[0,0,1]], [[1,0,0],[0,0,0],[1/2,1,0]]) = [[1,0,1/2],[1/2,3/8,0],[1/4,1/2,1/2]]
//   Ā1·R = [[7/4,1/2,3/4],[3/4,13/16,9/64],[5/8,7/8,15/16]]
//   R = [[13/4,1,3/4],[3/4,37/16,33/64],[9/8,7/8,39/16]]
// Start 1: R = I + Ā1 = [[2,0,1/2],[1/2,11/8,0],[1/4,1/2,3/2]]
TEST(Chefer, HandComputed) {
  const Array a = hand_attention(), g = hand_gradient();
  const AttentionView av = AttentionView::of(a), gv = AttentionView::of(g);
  const Array r = chefer_relevance(av, gv);
  EXPECT_EQ(r.shape, (std::vector<std::int64_t>{3, 3}));
  expect_near(r.data, {3.25, 1, .75, .75, 37. / 16, 33. / 64, 9. / 8, 7. / 8, 39. / 16}, 1e-15);
  expect_near(chefer_relevance(av, gv, 1).data, {2, 0, .5, .5, 11. / 8, 0, .25, .5, 1.5}, 1e-15);
}

struct RandomCase {
  Array attention, gradient;
};

// Softmax attention rows and signed normal gradients.
RandomCase random_case(int L, int H, int N, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  RandomCase c{testing::random_softmax_stack(L, H, N, rng), Array({L, H, N, N})};
  for (double& x : c.gradient.data) x = normal(rng);
  return c;
}

std::vector<double> matmul(const std::vector<double>& a, const std::vector<double>& b, int n) {
  std::vector<double> c(static_cast<std::size_t>(n) * n, 0.0);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      for (int k = 0; k < n; ++k) c[i * n + j] += a[i * n + k] * b[k * n + j];
  return c;
}

// R = (I + Ā_(L-1)) ··· (I + Ā_s), built right to left as a plain product of independently formed factors.
TEST(Chefer, ClosedFormProduct) {
  const int L = 4, H = 3, N = 7;
  const RandomCase c = random_case(L, H, N, 7);
  for (int start = 0; start < L; ++start) {
    std::vector<double> expected(N * N, 0.0);
    for (int i = 0; i < N; ++i) expected[i * N + i] = 1.0;
    for (int b = start; b < L; ++b) {
      std::vector<double> factor(N * N, 0.0);
      for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) {
          double s = 0.0;
          for (int h = 0; h < H; ++h) {
            const std::size_t e = ((static_cast<std::size_t>(b) * H + h) * N + i) * N + j;
            s += std::max(0.0, c.attention.data[e] * c.gradient.data[e]);
          }
          factor[i * N + j] = s / H + (i == j ? 1.0 : 0.0);
        }
      expected = matmul(factor, expected, N);
    }
    const Array r = chefer_relevance(AttentionView::of(c.attention), AttentionView::of(c.gradient), start);
    expect_near(r.data, expected, 1e-12);
    EXPECT_GT(r.data[0], 1.0);  // the relevances are not normalised
  }
}

// A head-fused view ([L,N,N], one head) is a valid single-head input.
TEST(Chefer, SingleHeadStack) {
  const Array a = make({1, 2, 2}, {.75, .25, .5, .5});
  const Array g = make({1, 2, 2}, {2, -4, 1, 2});
  // Ā = max(0, [[3/2,-1],[1/2,1]]) = [[3/2,0],[1/2,1]]; R = I + Ā.
  expect_near(chefer_relevance(AttentionView::of(a), AttentionView::of(g)).data, {2.5, 0, .5, 2}, 1e-15);
}

TEST(GradRollout, ReferenceAndFixedDifferWithNegativeProductsAndDiscard) {
  const int L = 4, H = 3, N = 10;
  const RandomCase c = random_case(L, H, N, 11);
  int negative = 0;
  for (std::size_t e = 0; e < c.attention.data.size(); ++e) negative += c.attention.data[e] * c.gradient.data[e] < 0;
  ASSERT_GT(negative, static_cast<int>(c.attention.data.size() / 4));

  const AttentionView av = AttentionView::of(c.attention), gv = AttentionView::of(c.gradient);
  GradRolloutOptions fixed;  // defaults: Fixed, discard 0.9, one prefix token
  EXPECT_EQ(fixed.mode, GradRolloutMode::Fixed);
  EXPECT_EQ(fixed.discard_ratio, 0.9);
  EXPECT_EQ(fixed.prefix_tokens, 1);
  GradRolloutOptions ref = fixed;
  ref.mode = GradRolloutMode::VitExplainReference;
  const Array rf = grad_rollout(av, gv, fixed), rr = grad_rollout(av, gv, ref);
  EXPECT_GT(max_abs_diff(rf.data, rr.data), 1e-2);

  // Fixed: every factor is row-stochastic, so R is; the reference's column quirk breaks that.
  double worst_fixed = 0, worst_ref = 0;
  for (int i = 0; i < N; ++i) {
    double sf = 0, sr = 0;
    for (int j = 0; j < N; ++j) sf += rf.data[i * N + j], sr += rr.data[i * N + j];
    worst_fixed = std::max(worst_fixed, std::abs(sf - 1));
    worst_ref = std::max(worst_ref, std::abs(sr - 1));
  }
  EXPECT_LT(worst_fixed, 1e-12);
  EXPECT_GT(worst_ref, 1e-3);
  for (double x : rf.data) EXPECT_GE(x, 0.0);
  // Fixed keeps the CLS row strictly positive: its entries are never discarded and propagate through the product.
  EXPECT_GT(*std::min_element(rf.data.begin(), rf.data.begin() + N), 0.0) << "CLS row lost mass";

  // The reference applies the reversed pairing itself: handing it the reversed stack is a different computation...
  Array reversed = c.gradient;
  const std::size_t block = static_cast<std::size_t>(H) * N * N;
  for (int l = 0; l < L; ++l)
    std::copy(c.gradient.data.begin() + (L - 1 - l) * block, c.gradient.data.begin() + (L - l) * block,
              reversed.data.begin() + l * block);
  const AttentionView rv = AttentionView::of(reversed);
  EXPECT_GT(max_abs_diff(grad_rollout(av, rv, ref).data, rr.data), 1e-3);
  // ...and with the pairing undone (reversed stack) and no discard, the column quirk alone still separates the
  // modes: the clamped F is not row-stochastic, so the row sums s are not all equal and a[i][j]/s[j] != a[i][j]/s[i].
  ref.discard_ratio = fixed.discard_ratio = 0.0;
  EXPECT_GT(max_abs_diff(grad_rollout(av, rv, ref).data, grad_rollout(av, gv, fixed).data), 1e-3);
}

// One layer (the reversed pairing is then the identity), no discard: both modes against the direct formula
// a = (max(0, mean_h(A ⊙ G)) + I)/2 divided by row sums s[i] (Fixed) or s[j] (reference).
TEST(GradRollout, SingleLayerMatchesDirectFormula) {
  const RandomCase c = random_case(1, 2, 4, 3);
  const int N = 4;
  std::vector<double> f(N * N);
  for (int e = 0; e < N * N; ++e)
    f[e] = std::max(0.0, (c.attention.data[e] * c.gradient.data[e] +
                          c.attention.data[N * N + e] * c.gradient.data[N * N + e]) / 2);
  std::vector<double> half(N * N), s(N, 0.0);
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) s[i] += half[i * N + j] = (f[i * N + j] + (i == j)) / 2;
  std::vector<double> want_fixed(N * N), want_ref(N * N);
  for (int i = 0; i < N; ++i)
    for (int j = 0; j < N; ++j) {
      want_fixed[i * N + j] = half[i * N + j] / s[i];
      want_ref[i * N + j] = half[i * N + j] / s[j];
    }
  const AttentionView av = AttentionView::of(c.attention), gv = AttentionView::of(c.gradient);
  expect_near(grad_rollout(av, gv, options(GradRolloutMode::Fixed, 0.0)).data, want_fixed, 1e-15);
  expect_near(grad_rollout(av, gv, options(GradRolloutMode::VitExplainReference, 0.0)).data, want_ref, 1e-15);
}

// ---- NumPy cross-checks -------------------------------------------------------------------------------------------

// vit_grad_rollout.py's grad_rollout loop transcribed to NumPy, fed the way its hooks fill the lists: attentions
// in forward order (forward hook), gradients in backward order L-1..0 (backward hook), then zip. Batch dimension 1
// kept so that `a / a.sum(axis=-1)` broadcasts exactly like the torch code (the column quirk). torch.topk's
// tie order is unspecified; a stable argsort picks lower indices first, as attnlens does.
// Then a literal transcription of attnlens' Fixed mode (same-layer pairing, prefix protected, row normalisation),
// and the Chefer ViT notebook loop (avg_heads + apply_self_attention_rules, R += cam @ R).
constexpr const char* kReferenceNumpy = R"PY(
import sys
import numpy as np
L, H, N = 3, 2, 6
att = np.fromfile(sys.argv[1], dtype='<f8').reshape(L, H, N, N)
grad = np.fromfile(sys.argv[2], dtype='<f8').reshape(L, H, N, N)
out = sys.argv[3]

def grad_rollout(attentions, gradients, discard_ratio):
    result = np.eye(attentions[0].shape[-1])
    for attention, g in zip(attentions, gradients):
        weights = g
        attention_heads_fused = (attention * weights).mean(axis=1)
        attention_heads_fused[attention_heads_fused < 0] = 0
        flat = attention_heads_fused.reshape(attention_heads_fused.shape[0], -1)
        assert np.shares_memory(flat, attention_heads_fused)
        k = int(flat.shape[-1] * discard_ratio)
        indices = np.argsort(flat[0], kind='stable')[:k]
        #indices = indices[indices != 0]
        flat[0, indices] = 0
        I = np.eye(attention_heads_fused.shape[-1])
        a = (attention_heads_fused + 1.0 * I) / 2
        a = a / a.sum(axis=-1)
        result = np.matmul(a, result)
    return result[0]

def fixed_grad_rollout(att, grad, discard_ratio, prefix):
    result = np.eye(N)
    for l in range(L):
        fused = (att[l] * grad[l]).mean(axis=0)
        fused[fused < 0] = 0
        flat = fused.reshape(-1)
        k = int(flat.size * discard_ratio)
        for e in np.argsort(flat, kind='stable')[:k]:
            if e // N >= prefix and e % N >= prefix:
                flat[e] = 0
        a = (fused + np.eye(N)) / 2
        a = a / a.sum(axis=-1, keepdims=True)
        result = a @ result
    return result

def avg_heads(cam, grad):
    cam = cam.reshape(-1, cam.shape[-2], cam.shape[-1])
    grad = grad.reshape(-1, grad.shape[-2], grad.shape[-1])
    cam = grad * cam
    cam = cam.clip(min=0).mean(axis=0)
    return cam

def apply_self_attention_rules(R_ss, cam_ss):
    return np.matmul(cam_ss, R_ss)

def generate_relevance(att, grad, start_layer):
    R = np.eye(N, N)
    for blk in range(start_layer, L):
        cam = avg_heads(att[blk][None], grad[blk][None])
        R += apply_self_attention_rules(R, cam)
    return R

attentions, gradients = [], []
for l in range(L):
    attentions.append(att[l][None].copy())
for l in reversed(range(L)):
    gradients.append(grad[l][None].copy())
results = [grad_rollout(attentions, gradients, 0.9), grad_rollout(attentions, gradients, 0.5),
           fixed_grad_rollout(att, grad, 0.5, 1), generate_relevance(att, grad, 0), generate_relevance(att, grad, 1)]
np.stack(results).astype('<f8').tofile(out)
)PY";

bool have_numpy() { return std::system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0; }

// Runs kReferenceNumpy on the case; returns the stacked [5,N,N] results.
std::vector<double> run_numpy(const RandomCase& c, int N) {
  const auto dir = std::filesystem::temp_directory_path() / ("attnlens_grad_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto att = dir / "att.f64", grad = dir / "grad.f64", out = dir / "out.f64", script = dir / "ref.py";
  auto write = [](const std::filesystem::path& p, const std::vector<double>& v) {
    std::ofstream(p, std::ios::binary)
        .write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(double)));
  };
  write(att, c.attention.data);
  write(grad, c.gradient.data);
  std::ofstream(script) << kReferenceNumpy;
  const std::string cmd =
      "/usr/bin/python3 " + script.string() + " " + att.string() + " " + grad.string() + " " + out.string();
  const int rc = std::system(cmd.c_str());
  std::vector<double> results(static_cast<std::size_t>(5) * N * N, std::numeric_limits<double>::quiet_NaN());
  if (rc == 0)
    std::ifstream(out, std::ios::binary)
        .read(reinterpret_cast<char*>(results.data()), static_cast<std::streamsize>(results.size() * 8));
  std::filesystem::remove_all(dir);
  EXPECT_EQ(rc, 0) << cmd;
  return results;
}

std::vector<double> part(const std::vector<double>& all, int index, int N) {
  const std::size_t nn = static_cast<std::size_t>(N) * N;
  return {all.begin() + index * nn, all.begin() + (index + 1) * nn};
}

TEST(GradRollout, MatchesVitExplainNumpy) {
  if (!have_numpy()) GTEST_SKIP() << "/usr/bin/python3 with numpy not available";
  const int L = 3, H = 2, N = 6;
  const RandomCase c = random_case(L, H, N, 20240612);
  const std::vector<double> expected = run_numpy(c, N);
  const AttentionView av = AttentionView::of(c.attention), gv = AttentionView::of(c.gradient);
  const Array ref09 = grad_rollout(av, gv, options(GradRolloutMode::VitExplainReference, 0.9));
  expect_near(ref09.data, part(expected, 0, N), 1e-10);
  expect_near(grad_rollout(av, gv, options(GradRolloutMode::VitExplainReference, 0.5)).data, part(expected, 1, N),
              1e-10);
  expect_near(grad_rollout(av, gv, options(GradRolloutMode::Fixed, 0.5)).data, part(expected, 2, N), 1e-10);
  // The discard must have mattered, or the check would not cover it.
  EXPECT_GT(max_abs_diff(ref09.data, grad_rollout(av, gv, options(GradRolloutMode::VitExplainReference, 0.0)).data),
            1e-3);
}

TEST(Chefer, MatchesNotebookNumpy) {
  if (!have_numpy()) GTEST_SKIP() << "/usr/bin/python3 with numpy not available";
  const int L = 3, H = 2, N = 6;
  const RandomCase c = random_case(L, H, N, 20240612);
  const std::vector<double> expected = run_numpy(c, N);
  const AttentionView av = AttentionView::of(c.attention), gv = AttentionView::of(c.gradient);
  expect_near(chefer_relevance(av, gv).data, part(expected, 3, N), 1e-10);
  expect_near(chefer_relevance(av, gv, 1).data, part(expected, 4, N), 1e-10);
}

// ---- Input validation ---------------------------------------------------------------------------------------------

template <typename F>
void expect_input_error(F&& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "expected InputError containing \"" << fragment << "\"";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(GradRollout, RejectsBadInput) {
  const Array a = hand_attention(), g = hand_gradient();
  const AttentionView av = AttentionView::of(a), gv = AttentionView::of(g);
  const GradRolloutOptions def;

  AttentionView fewer = gv;
  fewer.layers = 1;
  expect_input_error([&] { grad_rollout(av, fewer, def); },
                     "gradient shape [1,2,3,3] must match attention shape [2,2,3,3]");
  AttentionView one_head = gv;
  one_head.heads = 1;
  expect_input_error([&] { grad_rollout(av, one_head, def); }, "must match attention shape");
  const Array g4({2, 2, 4, 4}, 0.0);
  expect_input_error([&] { grad_rollout(av, AttentionView::of(g4), def); },
                     "gradient shape [2,2,4,4] must match attention shape [2,2,3,3]");
  expect_input_error([&] { grad_rollout(AttentionView{}, AttentionView{}, def); },
                     "needs at least one layer, head and token");

  Array bad = g;
  bad.data[9 + 4] = std::numeric_limits<double>::quiet_NaN();  // layer 0, head 1, row 1, column 1
  expect_input_error([&] { grad_rollout(av, AttentionView::of(bad), def); },
                     "gradient holds NaN at layer 0, head 1, row 1, column 1");
  bad = g;
  bad.data[35] = -std::numeric_limits<double>::infinity();
  expect_input_error([&] { grad_rollout(av, AttentionView::of(bad), def); },
                     "gradient holds Inf at layer 1, head 1, row 2, column 2");
  Array bad_att = a;
  bad_att.data[18] = std::numeric_limits<double>::infinity();
  expect_input_error([&] { grad_rollout(AttentionView::of(bad_att), gv, def); },
                     "attention holds Inf at layer 1, head 0, row 0, column 0");

  for (double r : {-0.1, 1.0, std::numeric_limits<double>::quiet_NaN()}) {
    GradRolloutOptions o;
    o.discard_ratio = r;
    expect_input_error([&] { grad_rollout(av, gv, o); }, "discard ratio must be in [0, 1)");
  }
  for (int p : {-1, 3}) {
    GradRolloutOptions o;
    o.prefix_tokens = p;
    expect_input_error([&] { grad_rollout(av, gv, o); }, "prefix tokens must be in [0, 3)");
  }
}

TEST(Chefer, RejectsBadInput) {
  const Array a = hand_attention(), g = hand_gradient();
  const AttentionView av = AttentionView::of(a), gv = AttentionView::of(g);
  AttentionView fewer = gv;
  fewer.layers = 1;
  expect_input_error([&] { chefer_relevance(av, fewer); },
                     "Chefer relevance: gradient shape [1,2,3,3] must match attention shape [2,2,3,3]");
  Array bad = g;
  bad.data[0] = std::numeric_limits<double>::quiet_NaN();
  expect_input_error([&] { chefer_relevance(av, AttentionView::of(bad)); },
                     "gradient holds NaN at layer 0, head 0, row 0, column 0");
  expect_input_error([&] { chefer_relevance(av, gv, -1); }, "start layer must be in [0, 2), got -1");
  expect_input_error([&] { chefer_relevance(av, gv, 2); }, "start layer must be in [0, 2), got 2");
}

}  // namespace
}  // namespace attnlens

namespace attnlens {
namespace {

TEST(GradRolloutRow, RowVariantsEqualTheFullMatrices) {
  const int L = 4, H = 2, N = 8;
  const RandomCase c = random_case(L, H, N, 11);
  const AttentionView av = AttentionView::of(c.attention), gv = AttentionView::of(c.gradient);
  for (GradRolloutMode mode : {GradRolloutMode::Fixed, GradRolloutMode::VitExplainReference})
    for (int row : {0, 5}) {
      GradRolloutOptions o;
      o.mode = mode;
      o.discard_ratio = 0.6;
      const Array full = grad_rollout(av, gv, o), got = grad_rollout_row(av, gv, o, row);
      for (int k = 0; k < N; ++k) EXPECT_NEAR(got.data[k], full.data[row * N + k], 1e-14);
    }
  for (int start : {0, 2})
    for (int row : {0, 3}) {
      const Array full = chefer_relevance(av, gv, start), got = chefer_relevance_row(av, gv, row, start);
      for (int k = 0; k < N; ++k) EXPECT_NEAR(got.data[k], full.data[row * N + k], 1e-12);
    }
  EXPECT_THROW(grad_rollout_row(av, gv, {}, -1), InputError);
  EXPECT_THROW(chefer_relevance_row(av, gv, N), InputError);
}

// Grad-SAM with one layer and one head is the column mean of A ⊙ max(0, G) (spec 20).
TEST(GradSam, OneHeadIsTheColumnMeanOfAttentionTimesPositiveGradient) {
  const Array a = make({1, 1, 2, 2}, {0.25, 0.75, 0.5, 0.5});
  const Array g = make({1, 1, 2, 2}, {2.0, -1.0, -3.0, 4.0});
  const Array s = grad_sam(AttentionView::of(a), AttentionView::of(g));
  // column 0: (0.25*2 + 0.5*0)/2; column 1: (0.75*0 + 0.5*4)/2
  expect_near(s.data, {0.25, 1.0}, 1e-15);
  // Two layers and heads average: the same block twice gives the same scores.
  const Array a2 = make({2, 2, 2, 2}, {0.25, 0.75, 0.5, 0.5, 0.25, 0.75, 0.5, 0.5, 0.25, 0.75, 0.5, 0.5, 0.25, 0.75,
                                       0.5, 0.5});
  const Array g2 = make({2, 2, 2, 2}, {2.0, -1.0, -3.0, 4.0, 2.0, -1.0, -3.0, 4.0, 2.0, -1.0, -3.0, 4.0, 2.0, -1.0,
                                       -3.0, 4.0});
  expect_near(grad_sam(AttentionView::of(a2), AttentionView::of(g2)).data, {0.25, 1.0}, 1e-15);
  // axis = rows: one score per query token, the row mean: row 0 (0.25*2 + 0)/2, row 1 (0 + 0.5*4)/2.
  expect_near(grad_sam(AttentionView::of(a), AttentionView::of(g), GradSamAxis::Rows).data, {0.25, 1.0}, 1e-15);
  const Array g3 = make({1, 1, 2, 2}, {2.0, 4.0, -3.0, 1.0});  // rows (0.5+3)/2, 0.5/2; columns 0.5/2, (3+0.5)/2
  expect_near(grad_sam(AttentionView::of(a), AttentionView::of(g3), GradSamAxis::Rows).data, {1.75, 0.25}, 1e-15);
  expect_near(grad_sam(AttentionView::of(a), AttentionView::of(g3)).data, {0.25, 1.75}, 1e-15);
  EXPECT_THROW(parse_grad_sam_axis("keys"), InputError);
}

// AG-CAM's worked example (spec 17.3): L = 2, H = 2, N = 3, the CLS row only.
TEST(AgCam, WorkedExample) {
  Array s({2, 2, 3, 3}), g({2, 2, 3, 3});
  const double rows_s[4][3] = {{0, 1, -1}, {2, 0, 0}, {0, .5, .5}, {1, -2, 3}};
  const double rows_g[4][3] = {{.3, -.2, .4}, {.1, .5, -.1}, {0, .2, .2}, {0, -1, 1}};
  for (int m = 0; m < 4; ++m)
    for (int j = 0; j < 3; ++j) {
      s.data[static_cast<std::size_t>(m) * 9 + j] = rows_s[m][j];
      g.data[static_cast<std::size_t>(m) * 9 + j] = rows_g[m][j];
      s.data[static_cast<std::size_t>(m) * 9 + 3 + j] = 5.0;  // another row: must not count
      g.data[static_cast<std::size_t>(m) * 9 + 3 + j] = 5.0;
    }
  const Array out = agcam_row(AttentionView::of(s), AttentionView::of(g), 0);
  EXPECT_NEAR(out.data[1], 0.374492, 1e-6);
  EXPECT_NEAR(out.data[2], 1.184643, 1e-6);
  EXPECT_THROW(agcam_row(AttentionView::of(s), AttentionView::of(g), 3), InputError);
}

// Beyond Intuition's worked example (spec 16.6): one block, two heads, two tokens.
TEST(BeyondIntuition, HeadWeightsOfTheWorkedExample) {
  const Array a = make({1, 2, 2, 2}, {.5, .5, .2, .8, .9, .1, .4, .6});
  const Array g = make({1, 2, 2, 2}, {1, 0, 0, -1, .2, 0, 0, .1});
  const Array r = bi_head_relevance(AttentionView::of(a), AttentionView::of(g), 0);
  // w = (0.869565, 0.130435); R = I + Ã
  expect_near(r.data, {1.552174, 0.447826, 0.226087, 1.773913}, 1e-6);
  // Scaling the gradient by c > 0 leaves the head weights alone (spec 16.7 test 3).
  Array g3 = g;
  for (double& v : g3.data) v *= 7.0;
  expect_near(bi_head_relevance(AttentionView::of(a), AttentionView::of(g3), 0).data, r.data, 1e-12);
  EXPECT_THROW(bi_head_relevance(AttentionView::of(a), AttentionView::of(g), 1), InputError);
}

TEST(BeyondIntuition, TokenWiseScalesColumnsByTheRatios) {
  const Array a = make({1, 1, 2, 2}, {.5, .5, .2, .8});
  const Array o = make({1, 2}, {5.0, 0.5});  // the spec's ratio example: ||(3,4)||/||(1,0)||, ||(0,1)||/||(0,2)||
  // R = I + A diag(o) = [[1 + 2.5, 0.25], [1, 1 + 0.4]]
  expect_near(bi_token_relevance(AttentionView::of(a), o, 0).data, {3.5, 0.25, 1.0, 1.4}, 1e-12);
  EXPECT_THROW(bi_token_relevance(AttentionView::of(a), make({1, 3}, {1, 1, 1}), 0), InputError);
}

}  // namespace
}  // namespace attnlens
