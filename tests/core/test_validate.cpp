#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "core/array.hpp"
#include "core/validate.hpp"

namespace attnlens {
namespace {

// Runs `f`, expects InputError, and returns its message for substring checks.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected InputError";
  return "";
}

// [L,H,N,N] stack whose rows are uniform (sum exactly 1 for N a power of two).
Array uniform(int L, int H, int N) { return Array({L, H, N, N}, 1.0 / N); }

TEST(ArrayBasics, ConstructorSizeAndShapeString) {
  Array a({2, 3, 4}, 0.5);
  EXPECT_EQ(a.size(), 24);
  EXPECT_EQ(a.rank(), 3);
  ASSERT_EQ(a.data.size(), 24u);
  EXPECT_DOUBLE_EQ(a.data[23], 0.5);
  EXPECT_EQ(a.shape_string(), "[2,3,4]");

  Array scalar(std::vector<std::int64_t>{});
  EXPECT_EQ(scalar.size(), 1);
  EXPECT_EQ(scalar.data.size(), 1u);
  EXPECT_EQ(scalar.shape_string(), "[]");

  Array empty({3, 0});
  EXPECT_EQ(empty.size(), 0);
  EXPECT_TRUE(empty.data.empty());
}

TEST(ArrayBasics, NegativeOrOverflowingExtentThrows) {
  EXPECT_NE(error_of([] { Array({2, -1}); }).find("negative"), std::string::npos);
  const std::int64_t big = std::int64_t{1} << 40;
  EXPECT_THROW(Array({big, big}), InputError);
}

TEST(ArrayAttentionView, Rank4) {
  Array a({2, 3, 4, 4});
  for (std::size_t i = 0; i < a.data.size(); ++i) a.data[i] = static_cast<double>(i);
  const AttentionView v = AttentionView::of(a);
  EXPECT_EQ(v.layers, 2);
  EXPECT_EQ(v.heads, 3);
  EXPECT_EQ(v.tokens, 4);
  // (layer 1, head 2) starts after 1*3+2 = 5 matrices of 16.
  EXPECT_DOUBLE_EQ(v.matrix(1, 2)[0], 80.0);
  EXPECT_DOUBLE_EQ(v.matrix(0, 1)[5], 21.0);
}

TEST(ArrayAttentionView, Rank3IsOneHead) {
  Array a({5, 3, 3}, 1.0 / 3);
  const AttentionView v = AttentionView::of(a);
  EXPECT_EQ(v.layers, 5);
  EXPECT_EQ(v.heads, 1);
  EXPECT_EQ(v.tokens, 3);
  EXPECT_EQ(v.matrix(4, 0), a.data.data() + 36);
}

TEST(ArrayAttentionView, RejectsBadShapes) {
  EXPECT_EQ(error_of([] { AttentionView::of(Array({2, 3, 4})); }),
            "attention must have shape [L,H,N,N] or [L,N,N], got [2,3,4]");
  EXPECT_NE(error_of([] { AttentionView::of(Array({4, 4})); }).find("got [4,4]"), std::string::npos);
  EXPECT_NE(error_of([] { AttentionView::of(Array({1, 1, 2, 4, 4})); }).find("got [1,1,2,4,4]"),
            std::string::npos);
  EXPECT_THROW(AttentionView::of(Array({0, 4, 4})), InputError);
  EXPECT_THROW(AttentionView::of(Array({1, 0, 4, 4})), InputError);
  EXPECT_THROW(AttentionView::of(Array({1, 2, 0, 0})), InputError);
  EXPECT_THROW(AttentionView::of(Array({1, 2, 3, 4})), InputError);
}

TEST(TokenLayoutResolve, InfersSquareGrid) {
  const TokenLayout t = TokenLayout::resolve(197, 1);
  EXPECT_EQ(t.prefix, 1);
  EXPECT_EQ(t.grid_h, 14);
  EXPECT_EQ(t.grid_w, 14);
  EXPECT_EQ(t.patches(), 196);

  const TokenLayout deit = TokenLayout::resolve(198, 2);  // CLS + distillation token
  EXPECT_EQ(deit.grid_h, 14);
  const TokenLayout none = TokenLayout::resolve(16, 0);
  EXPECT_EQ(none.grid_w, 4);
  EXPECT_EQ(TokenLayout::resolve(2, 1).grid_h, 1);
}

TEST(TokenLayoutResolve, ExplicitGrid) {
  const TokenLayout t = TokenLayout::resolve(13, 1, 3, 4);
  EXPECT_EQ(t.grid_h, 3);
  EXPECT_EQ(t.grid_w, 4);
  EXPECT_EQ(t.prefix, 1);
  EXPECT_THROW(TokenLayout::resolve(13, 1, 4, 4), InputError);
  EXPECT_THROW(TokenLayout::resolve(13, 1, 12, 0), InputError);
  EXPECT_THROW(TokenLayout::resolve(13, 1, -3, -4), InputError);
}

TEST(TokenLayoutResolve, NonSquareAndBadPrefix) {
  EXPECT_NE(error_of([] { TokenLayout::resolve(8, 1); })
                .find("N-P = 7 patches do not form a square grid; pass --grid HxW"),
            std::string::npos);
  EXPECT_THROW(TokenLayout::resolve(5, -1), InputError);
  EXPECT_THROW(TokenLayout::resolve(5, 5), InputError);
  EXPECT_THROW(TokenLayout::resolve(0, 0), InputError);
}

TEST(ValidateAttention, UniformRowsAreExact) {
  Array a = uniform(2, 3, 4);
  const AttentionCheck c = check_attention(AttentionView::of(a));
  EXPECT_EQ(c.max_row_sum_error, 0.0);
}

TEST(ValidateAttention, ReportsWorstRow) {
  Array a = uniform(3, 2, 4);
  // layer 1, head 1, row 2 sums to 1.5; layer 2, head 0, row 0 to 0.8.
  a.data[((1 * 2 + 1) * 4 + 2) * 4 + 3] += 0.5;
  a.data[((2 * 2 + 0) * 4 + 0) * 4 + 1] -= 0.2;
  const AttentionCheck c = check_attention(AttentionView::of(a));
  EXPECT_NEAR(c.max_row_sum_error, 0.5, 1e-15);
  EXPECT_EQ(c.worst_layer, 1);
  EXPECT_EQ(c.worst_head, 1);
  EXPECT_EQ(c.worst_row, 2);

  // Ties go to the first row in C order.
  a.data[((2 * 2 + 1) * 4 + 3) * 4 + 0] += 0.5;
  const AttentionCheck tie = check_attention(AttentionView::of(a));
  EXPECT_EQ(tie.worst_layer, 1);
  EXPECT_EQ(tie.worst_row, 2);
  const AttentionCheck clean = check_attention(AttentionView::of(uniform(2, 2, 4)));
  EXPECT_EQ(clean.worst_layer + clean.worst_head + clean.worst_row, 0);
}

TEST(ValidateAttention, NanNamesPosition) {
  Array a = uniform(3, 1, 8);
  a.data[((2 * 1 + 0) * 8 + 5) * 8 + 7] = std::nan("");
  EXPECT_EQ(error_of([&] { check_attention(AttentionView::of(a)); }),
            "attention contains NaN at layer 2, head 0, row 5, column 7");
}

TEST(ValidateAttention, InfAndNegativeNamePosition) {
  Array a = uniform(1, 2, 4);
  a.data[((0 * 2 + 1) * 4 + 3) * 4 + 0] = std::numeric_limits<double>::infinity();
  const std::string inf = error_of([&] { check_attention(AttentionView::of(a)); });
  EXPECT_NE(inf.find("Inf at layer 0, head 1, row 3, column 0"), std::string::npos) << inf;

  Array b = uniform(1, 2, 4);
  b.data[((0 * 2 + 0) * 4 + 1) * 4 + 2] = -0.25;
  const std::string neg = error_of([&] { check_attention(AttentionView::of(b)); });
  EXPECT_NE(neg.find("negative"), std::string::npos) << neg;
  EXPECT_NE(neg.find("-0.25"), std::string::npos) << neg;
  EXPECT_NE(neg.find("layer 0, head 0, row 1, column 2"), std::string::npos) << neg;
}

TEST(ValidateAttention, NegativeZeroIsFine) {
  Array a = uniform(1, 1, 2);
  a.data[0] = -0.0;
  a.data[1] = 1.0;
  EXPECT_NO_THROW(check_attention(AttentionView::of(a)));
}

}  // namespace
}  // namespace attnlens
