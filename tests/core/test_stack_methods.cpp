// core/stack_methods: the stack-level entry points that the CLI's `attention` commands and the Python module share.
#include <gtest/gtest.h>

#include <random>
#include <thread>

#include "core/gradient_methods.hpp"
#include "core/stack_methods.hpp"
#include "tests/support/arrays.hpp"

namespace attnlens {
namespace {

using testing::expect_near;
using testing::make;
using testing::random_softmax_stack;

// A text-shaped stack: 32 tokens, 31 after [CLS], which form no square grid.
Array text_stack() {
  std::mt19937_64 rng(7);
  return random_softmax_stack(3, 2, 32, rng);
}

TEST(StackMethods, TextShapedStacksNeedNoGridWhereNoGridIsUsed) {
  const Array a = text_stack();
  const AttentionView v = AttentionView::of(a);
  RawSettings raw;
  raw.query_row = 0;
  EXPECT_EQ(raw_attention(v, raw).array.shape, (std::vector<std::int64_t>{32}));
  RolloutSettings rollout;
  rollout.query_row = 5;
  rollout.patches_only = true;
  EXPECT_EQ(attention_rollout(v, rollout).array.shape, (std::vector<std::int64_t>{31}));
  FlowSettings flow;
  EXPECT_EQ(attention_flow(v, flow).array.shape, (std::vector<std::int64_t>{32}));
  MetzgerSettings metzger;
  EXPECT_EQ(attention_flow_metzger(v, metzger).array.shape, (std::vector<std::int64_t>{32}));
  // The methods that lay tokens out on a grid ask for one.
  DistanceSettings distance;
  distance.patch_size = 16;
  EXPECT_THROW(attention_distance(v, distance), InputError);
  distance.grid_h = 1;
  distance.grid_w = 31;
  EXPECT_EQ(attention_distance(v, distance).array.shape, (std::vector<std::int64_t>{3, 2}));
  HeadMapsSettings heads;
  EXPECT_THROW(attention_head_maps(v, heads), InputError);
}

TEST(StackMethods, AGivenGridIsCheckedEvenWhereUnused) {
  const Array a = text_stack();
  RawSettings raw;
  raw.grid_h = 5;
  raw.grid_w = 5;  // 25 patches, not 31
  EXPECT_THROW(raw_attention(AttentionView::of(a), raw), InputError);
}

TEST(StackMethods, QueryRowPatchesOnlyAndScaleShapeTheResult) {
  // One layer, one head, N = 3: row 1 = [0.2, 0.3, 0.5].
  const Array a = make({1, 1, 3, 3}, {1, 0, 0, 0.2, 0.3, 0.5, 0, 0, 1});
  RawSettings s;
  s.query_row = 1;
  s.patches_only = true;
  s.scale = Scale::Max;
  const LabeledArray r = raw_attention(AttentionView::of(a), s);
  EXPECT_EQ(r.dims, (DimNames{"key"}));
  expect_near(r.array.data, {0.6, 1.0}, 1e-15);
  s.scale = Scale::MinMax;
  expect_near(raw_attention(AttentionView::of(a), s).array.data, {0.0, 1.0}, 1e-15);
  s.query_row.reset();
  const LabeledArray m = raw_attention(AttentionView::of(a), s);
  EXPECT_EQ(m.dims, (DimNames{"query", "key"}));
  EXPECT_EQ(m.array.shape, (std::vector<std::int64_t>{3, 2}));
}

TEST(StackMethods, OptionsOutOfRangeAreInputErrors) {
  const Array a = text_stack();
  const AttentionView v = AttentionView::of(a);
  RolloutSettings r;
  r.discard_ratio = 1.0;
  EXPECT_THROW(attention_rollout(v, r), InputError);
  r.discard_ratio = 0.0;
  r.start_layer = 3;
  EXPECT_THROW(attention_rollout(v, r), InputError);
  r.start_layer = 0;
  r.query_row = 32;
  EXPECT_THROW(attention_rollout(v, r), InputError);
  r.query_row.reset();
  r.prefix_tokens = 32;
  EXPECT_THROW(attention_rollout(v, r), InputError);
  FlowSettings f;
  f.threads = -1;
  EXPECT_THROW(attention_flow(v, f), InputError);
  RawSettings raw;
  raw.layer = -4;
  EXPECT_THROW(raw_attention(v, raw), InputError);
  raw.layer = -3;
  EXPECT_NO_THROW(raw_attention(v, raw));
  EXPECT_THROW(parse_scale("log"), InputError);
}

TEST(StackMethods, GradientMethodsMatchTheCoreFunctionsAndCheckShapes) {
  std::mt19937_64 rng(11);
  const Array a = random_softmax_stack(2, 3, 6, rng);
  Array g = random_softmax_stack(2, 3, 6, rng);
  for (double& x : g.data) x -= 0.15;  // gradients take both signs
  const AttentionView av = AttentionView::of(a), gv = AttentionView::of(g);
  GradientRolloutSettings s;
  s.query_row = 0;
  GradRolloutOptions core;
  expect_near(attention_gradient_rollout(av, gv, s).array.data, select_row(grad_rollout(av, gv, core), 0).data, 1e-15);
  CheferSettings c;
  c.start_layer = 1;
  expect_near(attention_chefer(av, gv, c).array.data, chefer_relevance(av, gv, 1).data, 1e-15);
  c.start_layer = 2;
  EXPECT_THROW(attention_chefer(av, gv, c), InputError);
  const Array other = random_softmax_stack(2, 3, 5, rng);
  EXPECT_THROW(attention_gradient_rollout(av, AttentionView::of(other), s), InputError);
}

TEST(StackMethods, ACancelledFlowStopsWithCancelled) {
  std::mt19937_64 rng(3);
  const Array a = random_softmax_stack(4, 2, 40, rng);
  FlowSettings s;
  s.scope_all = true;
  CancelFlag cancel{true};
  EXPECT_THROW(attention_flow(AttentionView::of(a), s, {}, &cancel), Cancelled);
  cancel = false;
  long long last = 0;
  const LabeledArray r = attention_flow(
      AttentionView::of(a), s, [&](long long done, long long) { last = done; }, &cancel);
  EXPECT_EQ(last, 4 * 40);
  EXPECT_EQ(r.array.shape, (std::vector<std::int64_t>{4, 40, 40}));
}

TEST(StackMethods, RowSumProblemsAreWarningsOrStrictErrors) {
  Array a = make({1, 1, 2, 2}, {0.6, 0.6, 0.5, 0.5});
  const AttentionView v = AttentionView::of(a);
  const std::string warning = check_attention_stack(v, true, false, "x.npy");
  EXPECT_NE(warning.find("rows of 'x.npy' do not sum to 1"), std::string::npos) << warning;
  EXPECT_NE(warning.find("layer 0, head 0, row 0"), std::string::npos) << warning;
  EXPECT_THROW(check_attention_stack(v, true, true, "x.npy"), InputError);
  a.data = {0.5, 0.5, 0.5, 0.5};
  EXPECT_EQ(check_attention_stack(AttentionView::of(a), true, true, "x.npy"), "");
}

}  // namespace
}  // namespace attnlens
