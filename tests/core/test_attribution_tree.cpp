#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/attribution_tree.hpp"

namespace attnlens {
namespace {

// S = [L, N, N] per-layer attribution; set(l, i, j, v) writes S_l[i][j] (row i = query).
struct Layers {
  Array s;
  Layers(int L, int N) : s({L, N, N}) {}
  void set(int l, int i, int j, double v) {
    const auto n = s.shape[1];
    s.data[(l * n + i) * n + j] = v;
  }
};

void expect_edge(const TreeEdge& e, int parent, int child, int layer, double value) {
  EXPECT_EQ(e.parent, parent);
  EXPECT_EQ(e.child, child);
  EXPECT_EQ(e.layer, layer);
  EXPECT_DOUBLE_EQ(e.value, value);
}

// 12 layers, 8 tokens, tau 0.4. Every layer has S_l[1][1] = 1 (a diagonal entry, never an edge), so each layer's
// normaliser |max(S_l[1:, :])| is 1 unless a larger entry is set.
Layers twelve_layer_case() {
  Layers x(12, 8);
  for (int l = 0; l < 12; ++l) x.set(l, 1, 1, 1.0);
  // Layer 10 gives the root's children: P[2][0] = 0.5 and P[2][3] = 1 pass; P[2][4] = 0.4 is not > 0.4; the root's
  // own diagonal is never a child. Row 3 -> 7 would attach 7 if layer 10 were also scanned by the main loop.
  x.set(10, 2, 0, 0.5), x.set(10, 2, 3, 1.0), x.set(10, 2, 4, 0.4), x.set(10, 2, 2, 0.9), x.set(10, 3, 7, 1.0);
  // Layer 11 only feeds the root choice: 2 -> 7 would attach 7 if the last layer gave the root's children. The
  // negative 2 -> 5 would drop row 2 below row 3 if negatives were not zeroed in C; 5 -> 5 and the big [CLS] row
  // would win if the diagonal or row 0 were not zeroed (row 1's diagonal sums to 12 as well).
  x.set(11, 2, 7, 1.0), x.set(11, 2, 6, 5.0), x.set(11, 2, 5, -6.0), x.set(11, 5, 5, 20.0), x.set(11, 0, 3, 20.0);
  // Layer 9 (normaliser 2): 3 is a leaf -> it becomes fixed and 4 a leaf at (12*0 - 1)/12; then 3 is fixed -> 5 gets
  // the minimum height (-1/12 by then); 3 -> 6 has P = 0.35 < tau although its raw value 0.7 is above it.
  x.set(9, 3, 4, 2.0), x.set(9, 3, 5, 1.0), x.set(9, 3, 6, 0.7);
  // Layer 8: leaf 4 -> 6 at (12*(-1/12) - 1)/12 = -1/6.
  x.set(8, 4, 6, 1.0);
  // Layer 7: the fixed root -> absent 1 at the minimum height, -1/6 (a leaf parent would give 10/12).
  x.set(7, 2, 1, 1.0);
  // Layer 6: every entry passes tau but none is an edge: (leaf 5, leaf 6), (fixed 3, leaf 5), j = 2 fixed,
  // i = 7 absent, and the [CLS] row (leaf 0 -> absent 7) is never a parent.
  x.set(6, 5, 6, 1.0), x.set(6, 3, 5, 0.9), x.set(6, 5, 2, 0.9), x.set(6, 7, 1, 0.9), x.set(6, 0, 7, 10.0);
  // Layer 5: 6 -> 7 below tau. Layer 0 (normaliser 2): leaf 6 -> 7 at (12*(-1/6) - 1)/12 = -1/4.
  x.set(5, 6, 7, 0.3);
  x.set(0, 6, 7, 2.0);
  return x;
}

TEST(AttributionTree, HandBuiltTwelveLayers) {
  const AttributionTree t = attribution_tree(twelve_layer_case().s);
  // Row sums of C (x 1/20): row 0 = 30 and row 1 = 12, row 5 = 21.9 with their diagonal, all zeroed; row 2 = 8.9
  // (2.9 with its negative entry), row 3 = 5.6.
  EXPECT_EQ(t.root, 2);
  EXPECT_EQ(t.layers, 12);
  ASSERT_EQ(t.edges.size(), 7u);
  expect_edge(t.edges[0], 2, 0, 10, 0.5);  // token 0 can be a child of the root
  expect_edge(t.edges[1], 2, 3, 10, 1.0);
  expect_edge(t.edges[2], 3, 4, 9, 1.0);
  expect_edge(t.edges[3], 3, 5, 9, 0.5);
  expect_edge(t.edges[4], 4, 6, 8, 1.0);
  expect_edge(t.edges[5], 2, 1, 7, 1.0);
  expect_edge(t.edges[6], 6, 7, 0, 1.0);

  const TreeStatus L = TreeStatus::leaf, F = TreeStatus::fixed;
  const std::vector<TreeStatus> status = {L, L, F, F, F, L, F, L};
  const std::vector<double> height = {0.0, -1.0 / 6, 11.0 / 12, 0.0, -1.0 / 12, -1.0 / 12, -1.0 / 6, -0.25};
  ASSERT_EQ(t.nodes.size(), 8u);
  for (int k = 0; k < 8; ++k) {
    EXPECT_EQ(t.nodes[k].token, k);
    EXPECT_EQ(t.nodes[k].status, status[k]) << "token " << k;
    EXPECT_NEAR(t.nodes[k].height, height[k], 1e-15) << "token " << k;
  }
}

TEST(AttributionTree, RootSkipsTheClsRow) {
  // Token 0's row has by far the largest sum: the reference zeroes it and would also fall back to the second best,
  // so the root is token 2, the best of the other rows.
  Layers x(12, 4);
  x.set(11, 0, 1, 100.0), x.set(11, 0, 3, 100.0);
  x.set(11, 2, 1, 2.0), x.set(11, 3, 1, 1.0), x.set(11, 1, 2, 0.5);
  EXPECT_EQ(attribution_tree(x.s).root, 2);
}

TEST(AttributionTree, ChildlessRootStaysLeafAndHeightsStepDown) {
  // No layer-10 child: the root (1) stays a leaf, so at layer 9 it attaches 2 at (12 * 11/12 - 1)/12 = 10/12 and
  // becomes fixed; 2, attached in the same layer, is then a leaf parent for 3 at 9/12. Token 0 stays absent.
  Layers x(12, 4);
  for (int l = 0; l < 12; ++l) x.set(l, 1, 1, 1.0);
  x.set(11, 1, 3, 5.0);
  x.set(9, 1, 2, 1.0), x.set(9, 2, 3, 0.5);
  const AttributionTree t = attribution_tree(x.s);
  EXPECT_EQ(t.root, 1);
  ASSERT_EQ(t.edges.size(), 2u);
  expect_edge(t.edges[0], 1, 2, 9, 1.0);
  expect_edge(t.edges[1], 2, 3, 9, 0.5);
  EXPECT_EQ(t.nodes[0].status, TreeStatus::absent);
  EXPECT_EQ(t.nodes[1].status, TreeStatus::fixed);
  EXPECT_EQ(t.nodes[2].status, TreeStatus::fixed);
  EXPECT_EQ(t.nodes[3].status, TreeStatus::leaf);
  EXPECT_DOUBLE_EQ(t.nodes[1].height, 11.0 / 12);
  EXPECT_DOUBLE_EQ(t.nodes[2].height, 10.0 / 12);
  EXPECT_DOUBLE_EQ(t.nodes[3].height, 9.0 / 12);
  EXPECT_EQ(t.nodes[0].height, 0.0);

  // tau = 0.6: the 0.5 entry no longer passes, 3 is never attached and 2 stays a leaf.
  const AttributionTree strict = attribution_tree(x.s, 0.6);
  ASSERT_EQ(strict.edges.size(), 1u);
  EXPECT_EQ(strict.nodes[2].status, TreeStatus::leaf);
  EXPECT_EQ(strict.nodes[3].status, TreeStatus::absent);
}

TEST(AttributionTree, GeneralisedDepthThree) {
  // L = 3: the root's children come from layer 1 (L-2), the main loop runs over layer 0 only, heights use 3.
  Layers x(3, 4);
  x.set(0, 2, 3, 1.0);
  x.set(1, 1, 2, 1.0);
  x.set(1, 2, 3, 1.0);  // a layer-1 entry the main loop must not use: 3 would hang below 2 at layer 1
  x.set(2, 1, 3, 2.0);  // the last layer only decides the root (row 1 = 3 + ... > row 2)
  const AttributionTree t = attribution_tree(x.s);
  EXPECT_EQ(t.root, 1);
  EXPECT_EQ(t.layers, 3);
  ASSERT_EQ(t.edges.size(), 2u);
  expect_edge(t.edges[0], 1, 2, 1, 1.0);
  expect_edge(t.edges[1], 2, 3, 0, 1.0);
  EXPECT_DOUBLE_EQ(t.nodes[1].height, 2.0 / 3);
  EXPECT_EQ(t.nodes[2].height, 0.0);              // a root child keeps 0, as in the reference
  EXPECT_DOUBLE_EQ(t.nodes[3].height, -1.0 / 3);  // (3*0 - 1)/3
}

TEST(AttributionTree, GeneralisedDepthTwoHasOnlyRootChildren) {
  Layers x(2, 3);
  x.set(0, 1, 2, 1.0);
  x.set(0, 2, 0, 0.9);  // no main loop at L = 2, so 2 never gets a child
  const AttributionTree t = attribution_tree(x.s);
  EXPECT_EQ(t.root, 1);
  ASSERT_EQ(t.edges.size(), 1u);
  expect_edge(t.edges[0], 1, 2, 0, 1.0);
  EXPECT_DOUBLE_EQ(t.nodes[1].height, 0.5);
  EXPECT_EQ(t.nodes[0].status, TreeStatus::absent);
}

TEST(AttributionTree, AllZeroInputTiesToTheLastToken) {
  // Every row sum is 0: numpy's reversed argsort puts the largest index first, so the root is N-1 (never [CLS]);
  // zero normalisers give no edges.
  const AttributionTree t = attribution_tree(Array({12, 5, 5}));
  EXPECT_EQ(t.root, 4);
  EXPECT_TRUE(t.edges.empty());
  EXPECT_EQ(t.nodes[4].status, TreeStatus::leaf);
  EXPECT_DOUBLE_EQ(t.nodes[4].height, 11.0 / 12);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(t.nodes[k].status, TreeStatus::absent);
}

TEST(AttributionTree, RejectsBadInput) {
  EXPECT_THROW(attribution_tree(Array({12, 4})), InputError);
  EXPECT_THROW(attribution_tree(Array({12, 1, 4, 4})), InputError);
  EXPECT_THROW(attribution_tree(Array({12, 4, 5})), InputError);
  EXPECT_THROW(attribution_tree(Array({1, 4, 4})), InputError);   // L < 2
  EXPECT_THROW(attribution_tree(Array({12, 1, 1})), InputError);  // N < 2
  EXPECT_THROW(attribution_tree(Array({2, 3, 3}), std::nan("")), InputError);
  Layers x(2, 3);
  x.set(1, 2, 1, std::numeric_limits<double>::quiet_NaN());
  EXPECT_THROW(attribution_tree(x.s), InputError);
  x.set(1, 2, 1, std::numeric_limits<double>::infinity());
  EXPECT_THROW(attribution_tree(x.s), InputError);
  x.set(1, 2, 1, 1.0);
  EXPECT_NO_THROW(attribution_tree(x.s));
}

}  // namespace
}  // namespace attnlens
