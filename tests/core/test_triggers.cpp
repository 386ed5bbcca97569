#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "core/triggers.hpp"

namespace attnlens {
namespace {

using Ids = std::vector<std::int64_t>;
constexpr std::int64_t CLS = 101, SEP = 102;

// [L, H, N, N] attribution; set(l, h, i, j, v).
struct Attr {
  Array a;
  Attr(int L, int H, int N) : a({L, H, N, N}) {}
  void set(int l, int h, int i, int j, double v) {
    const auto H = a.shape[1], n = a.shape[2];
    a.data[((l * H + h) * n + i) * n + j] = v;
  }
  void matrix(int l, int h, const std::vector<double>& m) {
    const auto n = static_cast<int>(a.shape[2]);
    for (int k = 0; k < n * n; ++k) set(l, h, k / n, k % n, m[k]);
  }
};

TriggerPattern pattern(int q1, int k1, double v1, int q2, int k2, double v2) {
  TriggerPattern p;
  p.top[0] = {q1, k1};
  p.top[1] = {q2, k2};
  p.value[0] = v1;
  p.value[1] = v2;
  return p;
}

TEST(Triggers, MinePicksStrictlyLargestLayerMax) {
  Attr x(2, 2, 2);
  x.matrix(0, 0, {0.1, 0.3, 0.2, 0.0});
  x.matrix(0, 1, {0.5, 0.1, 0.4, 0.2});  // layer 0's max 0.5 is in head 1
  x.matrix(1, 0, {0.5, 0.0, 0.45, 0.0});  // layer 1 ties at 0.5: strict > keeps layer 0
  const TriggerPattern p = mine_pattern(x.a);
  EXPECT_EQ(p.layer, 0);
  EXPECT_EQ(p.head, 1);
  EXPECT_EQ(p.top[0].query, 0);
  EXPECT_EQ(p.top[0].key, 0);
  EXPECT_DOUBLE_EQ(p.value[0], 0.5);
  EXPECT_EQ(p.top[1].query, 1);  // 0.4 at flat index 2
  EXPECT_EQ(p.top[1].key, 0);
  EXPECT_DOUBLE_EQ(p.value[1], 0.4);

  x.set(1, 0, 1, 1, 0.6);  // now layer 1 is strictly larger: its head 0, top 0.6 at (1,1) then 0.5 at (0,0)
  const TriggerPattern q = mine_pattern(x.a);
  EXPECT_EQ(q.layer, 1);
  EXPECT_EQ(q.head, 0);
  EXPECT_EQ(q.top[0].query, 1);
  EXPECT_EQ(q.top[0].key, 1);
  EXPECT_EQ(q.top[1].query, 0);
  EXPECT_EQ(q.top[1].key, 0);
  EXPECT_DOUBLE_EQ(q.sum(), 1.1);
}

TEST(Triggers, MineTiesWithinALayerAndTopTwo) {
  // Heads 0 and 2 share layer 0's max: torch.argmax takes the first, head 0.
  Attr x(1, 3, 2);
  x.matrix(0, 0, {0.1, 0.7, 0.7, 0.2});
  x.matrix(0, 1, {0.0, 0.0, 0.0, 0.0});
  x.matrix(0, 2, {0.7, 0.6, 0.0, 0.0});
  const TriggerPattern p = mine_pattern(x.a);
  EXPECT_EQ(p.head, 0);
  // np.argsort(flat)[::-1] on [0.1, 0.7, 0.7, 0.2]: ascending [0, 3, 1, 2], reversed [2, 1, 3, 0].
  EXPECT_EQ(p.top[0].query, 1);
  EXPECT_EQ(p.top[0].key, 0);
  EXPECT_EQ(p.top[1].query, 0);
  EXPECT_EQ(p.top[1].key, 1);

  // A tie for second place: [0.9, 0.3, 0.3, 0.1] -> reversed argsort [0, 2, 1, 3].
  Attr y(1, 1, 2);
  y.matrix(0, 0, {0.9, 0.3, 0.3, 0.1});
  const TriggerPattern q = mine_pattern(y.a);
  EXPECT_EQ(q.top[0].query, 0);
  EXPECT_EQ(q.top[0].key, 0);
  EXPECT_EQ(q.top[1].query, 1);
  EXPECT_EQ(q.top[1].key, 0);

  // All negative: the largest (least negative) entries still win.
  Attr z(1, 1, 2);
  z.matrix(0, 0, {-0.5, -0.1, -0.3, -0.2});
  const TriggerPattern r = mine_pattern(z.a);
  EXPECT_EQ(r.top[0].key, 1);
  EXPECT_DOUBLE_EQ(r.value[0], -0.1);
  EXPECT_DOUBLE_EQ(r.value[1], -0.2);
}

TEST(Triggers, MineRejectsBadShapes) {
  EXPECT_THROW(mine_pattern(Array({2, 2, 2})), InputError);
  EXPECT_THROW(mine_pattern(Array({1, 1, 2, 3})), InputError);
  EXPECT_THROW(mine_pattern(Array({1, 1, 1, 1})), InputError);  // no second entry
  EXPECT_THROW(mine_pattern(Array({0, 1, 2, 2})), InputError);
  Attr x(1, 1, 2);
  x.set(0, 0, 1, 1, std::numeric_limits<double>::quiet_NaN());
  EXPECT_THROW(mine_pattern(x.a), InputError);
}

TEST(Triggers, SelectionStopsAtFirstWeakPattern) {
  // Sums 0.05, 0.5, 0.01, 0.3, 0.05: descending, ties in input order -> 1, 3, 0, 4 | 2 (0.01 < 0.02 stops).
  const std::vector<TriggerPattern> ps = {pattern(1, 1, 0.03, 1, 2, 0.02), pattern(1, 1, 0.3, 1, 2, 0.2),
                                          pattern(1, 1, 0.01, 1, 2, 0.0), pattern(1, 1, 0.2, 1, 2, 0.1),
                                          pattern(1, 1, 0.04, 1, 2, 0.01)};
  EXPECT_EQ(select_patterns(ps), (std::vector<std::size_t>{1, 3, 0, 4}));
  EXPECT_EQ(select_patterns(ps, 0.02, true), (std::vector<std::size_t>{1, 3, 0, 4}));
  // Threshold 0.06: the 0.05 pair is already below.
  EXPECT_EQ(select_patterns(ps, 0.06), (std::vector<std::size_t>{1, 3}));
}

TEST(Triggers, SelectionReferenceDropsLastWhenNoneIsBelow) {
  const std::vector<TriggerPattern> ps = {pattern(1, 1, 0.1, 1, 2, 0.0), pattern(1, 1, 0.2, 1, 2, 0.0),
                                          pattern(1, 1, 0.02, 1, 2, 0.0)};  // exactly 0.02 is not below
  EXPECT_EQ(select_patterns(ps), (std::vector<std::size_t>{1, 0, 2}));
  EXPECT_EQ(select_patterns(ps, 0.02, true), (std::vector<std::size_t>{1, 0}));
  EXPECT_TRUE(select_patterns({}).empty());
  EXPECT_TRUE(select_patterns({}, 0.02, true).empty());
  EXPECT_TRUE(select_patterns({pattern(1, 1, 0.01, 1, 2, 0.0)}).empty());
  EXPECT_THROW(select_patterns({pattern(1, 1, std::nan(""), 1, 2, 0.0)}), InputError);
}

// Source: [CLS] 11 12 13 14 [SEP] 21 22 23 [SEP] (sep = 5, len = 10).
const Ids kSource = {CLS, 11, 12, 13, 14, SEP, 21, 22, 23, SEP};

TEST(Triggers, TokensFromTopPairs) {
  // top-1 (2, 7); top-2 (4, 0) with 0.1/1.0 < 0.2: top-1 only -> 12 in A at 2/4, 22 in B at (7-5)/(10-2-5).
  const TriggerPattern p = pattern(2, 7, 1.0, 4, 0, 0.1);
  const auto t = trigger_tokens(p, kSource, 5);
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].token, 12);
  EXPECT_EQ(t[0].segment, 0);
  EXPECT_DOUBLE_EQ(t[0].relative, 0.5);
  EXPECT_EQ(t[1].token, 22);
  EXPECT_EQ(t[1].segment, 1);
  EXPECT_EQ(t[1].source_position, 7);
  EXPECT_DOUBLE_EQ(t[1].relative, 2.0 / 3);

  // `all`, or a ratio of exactly 0.2, adds the top-2 pair; [CLS] (0) is dropped, 14 sits at 4/4 = 1.
  for (const auto& u : {trigger_tokens(p, kSource, 5, true), trigger_tokens(pattern(2, 7, 1.0, 4, 0, 0.2), kSource, 5)}) {
    ASSERT_EQ(u.size(), 3u);
    EXPECT_EQ(u[0].token, 12);
    EXPECT_EQ(u[1].token, 14);
    EXPECT_DOUBLE_EQ(u[1].relative, 1.0);
    EXPECT_EQ(u[2].token, 22);
  }
  // Repeated positions count once; [SEP] positions (5 and the last) are dropped.
  const auto d = trigger_tokens(pattern(3, 3, 1.0, 5, 9, 0.9), kSource, 5);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].token, 13);
  EXPECT_TRUE(trigger_tokens(pattern(5, 9, 1.0, 0, 0, 0.0), kSource, 5).empty());
}

TEST(Triggers, TokensRejectBadPositions) {
  EXPECT_THROW(trigger_tokens(pattern(2, 10, 1.0, 1, 1, 0.0), kSource, 5), InputError);
  EXPECT_THROW(trigger_tokens(pattern(2, 3, 1.0, 1, 1, 0.0), kSource, 0), InputError);
  EXPECT_THROW(trigger_tokens(pattern(2, 3, 1.0, 1, 1, 0.0), kSource, 10), InputError);
  EXPECT_THROW(trigger_tokens(pattern(0, 0, 1.0, 0, 0, 0.0), Ids{CLS}, 0), InputError);
}

Trigger trig(std::int64_t token, int segment, double relative) {
  Trigger t;
  t.token = token;
  t.segment = segment;
  t.relative = relative;
  return t;
}

TEST(Triggers, InsertIntoBothSegments) {
  // A = 31..35 (5), B = 41..44 (4). A: round(6 * 0.5) = 3. B: round(5 * 2/3) = round(3.33) = 3; the +1 rule looks
  // at the previous insertion of the same segment only, so B's 3 is not bumped by A's 3.
  const Ids target = {CLS, 31, 32, 33, 34, 35, SEP, 41, 42, 43, 44, SEP};
  const TokenSequence r = insert_triggers({trig(12, 0, 0.5), trig(22, 1, 2.0 / 3)}, target, 6);
  EXPECT_EQ(r.ids, (Ids{CLS, 31, 32, 33, 12, 34, 35, SEP, 41, 42, 43, 22, 44, SEP}));
  EXPECT_EQ(r.sep, 7);

  // B = 41, 42: round(3 * 2/3) = 2 -> appended at the end of B.
  const TokenSequence s = insert_triggers({trig(22, 1, 2.0 / 3)}, Ids{CLS, 31, SEP, 41, 42, SEP}, 2);
  EXPECT_EQ(s.ids, (Ids{CLS, 31, SEP, 41, 42, 22, SEP}));
}

TEST(Triggers, InsertRoundsHalfToEven) {
  // A of 4: (4 + 1) * 0.5 = 2.5 -> 2 (half up would give 3).
  const TokenSequence r = insert_triggers({trig(12, 0, 0.5)}, Ids{CLS, 31, 32, 33, 34, SEP}, 5);
  EXPECT_EQ(r.ids, (Ids{CLS, 31, 32, 12, 33, 34, SEP}));
  // A of 6: 7 * 0.5 = 3.5 -> 4 (half down or truncation would give 3).
  const TokenSequence s = insert_triggers({trig(12, 0, 0.5)}, Ids{CLS, 31, 32, 33, 34, 35, 36, SEP}, 7);
  EXPECT_EQ(s.ids, (Ids{CLS, 31, 32, 33, 34, 12, 35, 36, SEP}));
  EXPECT_EQ(s.sep, 8);
}

TEST(Triggers, InsertBumpsACollision) {
  // A of 1, two triggers (n = 2, 3 slots): round(3 * 0.2) = 1, round(3 * 0.4) = 1 -> bumped to 2 (after the first).
  const TokenSequence r = insert_triggers({trig(12, 0, 0.2), trig(13, 0, 0.4)}, Ids{CLS, 31, SEP}, 2);
  EXPECT_EQ(r.ids, (Ids{CLS, 31, 12, 13, SEP}));
  // A of 3 (5 slots): 0.2 -> 1, 0.4 -> 2, 0.5 -> round(2.5) = 2 -> bumped to 3: 31 12 13 14 32 33.
  const TokenSequence s =
      insert_triggers({trig(12, 0, 0.2), trig(13, 0, 0.4), trig(14, 0, 0.5)}, Ids{CLS, 31, 32, 33, SEP}, 4);
  EXPECT_EQ(s.ids, (Ids{CLS, 31, 12, 13, 14, 32, 33, SEP}));
}

TEST(Triggers, MinedPatternEndToEnd) {
  // Source kSource, pattern (1 -> 8) with a weak second pair: 11 at 1/4 of A and 23 at 3/3 of B. Target A = 31 32 33
  // (4 slots: round(1.0) = 1), B = 41 (2 slots: round(2.0) = 2, appended).
  const auto t = trigger_tokens(pattern(1, 8, 0.9, 3, 3, 0.1), kSource, 5);
  const TokenSequence r = insert_triggers(t, Ids{CLS, 31, 32, 33, SEP, 41, SEP}, 4);
  EXPECT_EQ(r.ids, (Ids{CLS, 31, 11, 32, 33, SEP, 41, 23, SEP}));
}

TEST(Triggers, SingleSentenceTargetDropsBTriggers) {
  const TokenSequence r = insert_triggers({trig(12, 0, 1.0), trig(22, 1, 0.5)}, Ids{CLS, 31, 32, SEP}, 3);
  EXPECT_EQ(r.ids, (Ids{CLS, 31, 32, 12, SEP}));
  EXPECT_EQ(r.sep, 4);
}

TEST(Triggers, InsertTruncatesLikeTheReference) {
  // After insertion A has 6 and B 5 tokens; 12 tokens leave 9: pop A (longer), then B (tie), 5 + 4.
  const Ids target = {CLS, 31, 32, 33, 34, 35, SEP, 41, 42, 43, 44, SEP};
  const TokenSequence r = insert_triggers({trig(12, 0, 0.0), trig(22, 1, 0.0)}, target, 6, 12);
  EXPECT_EQ(r.ids, (Ids{CLS, 12, 31, 32, 33, 34, SEP, 22, 41, 42, 43, SEP}));
  // Single sentence: A cut to max - 2.
  const TokenSequence s = insert_triggers({trig(12, 0, 0.0)}, Ids{CLS, 31, 32, SEP}, 3, 4);
  EXPECT_EQ(s.ids, (Ids{CLS, 12, 31, SEP}));
  EXPECT_THROW(insert_triggers({}, target, 6, 2), InputError);
  EXPECT_THROW(insert_triggers({}, Ids{CLS}, 0), InputError);
  EXPECT_THROW(insert_triggers({trig(12, 2, 0.5)}, target, 6), InputError);
}

TEST(Triggers, RoundHalfEvenMatchesPython) {
  EXPECT_EQ(round_half_even(0.5), 0.0);
  EXPECT_EQ(round_half_even(1.5), 2.0);
  EXPECT_EQ(round_half_even(2.5), 2.0);
  EXPECT_EQ(round_half_even(3.5), 4.0);
  EXPECT_EQ(round_half_even(-1.5), -2.0);
  EXPECT_EQ(round_half_even(-2.5), -2.0);
  EXPECT_EQ(round_half_even(2.4999999999999996), 2.0);
  EXPECT_EQ(round_half_even(2.5000000000000004), 3.0);
  EXPECT_EQ(round_half_even(7.0), 7.0);
}

}  // namespace
}  // namespace attnlens
