// Exact attention flow: spec vectors, agreement with LEMON's general Preflow, brute-force min-cut certificates,
// capacity bounds, and the Metzger reversal.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "core/attention_flow.hpp"
#include "core/layered_flow.hpp"
#include "core/rollout.hpp"
#include "tests/support/lemon_maxflow.hpp"

namespace attnlens {
namespace {

// Spec section 13: head-mean matrices of a 2-layer, 3-token stack.
Array spec_stack() {
  Array a({2, 1, 3, 3});
  a.data = {.6, .3, .1, .2, .5, .3, .1, .1, .8, .2, .7, .1, .3, .3, .4, .5, .25, .25};
  return a;
}

// Random stacks of the kinds the solver must handle: dense softmax rows with the half identity (the normal case,
// where the cheap cut bound is usually tight), and sparse rows without residual (where it is not, so the
// push-relabel fallback runs).
Array random_capacities(int layers, int tokens, unsigned seed, bool sparse) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> logits(0.0, 2.0);
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  Array c({layers, tokens, tokens});
  for (int l = 0; l < layers; ++l)
    for (int q = 0; q < tokens; ++q) {
      double* row = c.data.data() + (static_cast<size_t>(l) * tokens + q) * tokens;
      double sum = 0.0;
      for (int k = 0; k < tokens; ++k) {
        row[k] = sparse ? (uniform(rng) < 0.3 ? uniform(rng) : 0.0) : std::exp(logits(rng));
        sum += row[k];
      }
      if (sum == 0.0) row[q] = sum = 1.0;
      for (int k = 0; k < tokens; ++k) row[k] = sparse ? row[k] / sum : 0.5 * row[k] / sum + (k == q ? 0.5 : 0.0);
    }
  return c;
}

const double* layer_matrix(const Array& c, int l) {
  const auto n = static_cast<size_t>(c.shape[1]);
  return c.data.data() + static_cast<size_t>(l) * n * n;
}

TEST(AttentionFlow, SpecVectorRawAndNormalised) {
  const Array stack = spec_stack();
  const Array caps = flow_capacities(AttentionView::of(stack), Residual::Half);
  const Array all = attention_flow_all(caps);
  ASSERT_EQ(all.shape, (std::vector<std::int64_t>{2, 3, 3}));
  const double raw[3][3] = {{.75, .55, .25}, {.3, .85, .4}, {.4, .325, .8}};
  const double normalised[3][3] = {
      {.483871, .354839, .161290}, {.193548, .548387, .258065}, {.262295, .213115, .524590}};
  for (int q = 0; q < 3; ++q) {
    double sum = 0.0;
    for (int k = 0; k < 3; ++k) sum += all.data[9 + q * 3 + k];
    for (int k = 0; k < 3; ++k) {
      EXPECT_NEAR(all.data[9 + q * 3 + k], raw[q][k], 1e-12) << "layer 2, q " << q << ", k " << k;
      EXPECT_NEAR(all.data[9 + q * 3 + k] / sum, normalised[q][k], 5e-7);
    }
  }
  // Layer 1: one arc per pair, so the flow is the residual-augmented attention itself: 0.5 A1 + 0.5 I.
  EXPECT_NEAR(all.data[0], 0.8, 1e-15);
  EXPECT_NEAR(all.data[1], 0.15, 1e-15);
  EXPECT_NEAR(all.data[5], 0.15, 1e-15);
  const Array cls = attention_flow_from(caps, 2, 0);
  for (int k = 0; k < 3; ++k) EXPECT_NEAR(cls.data[k], raw[0][k], 1e-12);
}

TEST(AttentionFlow, AgreesWithLemonPreflowOnRandomStacks) {
  for (bool sparse : {false, true})
    for (unsigned seed = 1; seed <= 6; ++seed) {
      const int layers = 2 + static_cast<int>(seed % 4), tokens = 5 + static_cast<int>(seed * 3 % 11);
      const Array caps = random_capacities(layers, tokens, seed, sparse);
      const Array all = attention_flow_all(caps);
      std::vector<double> expected(tokens);
      for (int l = 1; l <= layers; ++l)
        for (int q = 0; q < tokens; ++q) {
          testing::lemon_flows_to_each_input(caps.data.data(), layers, tokens, l, q, expected.data());
          for (int k = 0; k < tokens; ++k)
            ASSERT_NEAR(all.data[(static_cast<size_t>(l - 1) * tokens + q) * tokens + k], expected[k], 1e-9)
                << (sparse ? "sparse" : "dense") << " seed " << seed << " source (" << l << "," << q << ") sink "
                << k;
        }
    }
}

// Minimum cut by enumeration: every subset of the internal nodes (layers 1..L-1) on the source side; the other
// inputs have no outgoing arcs, so they sit on the source side for free. Independent of any max-flow code.
double brute_force_min_cut(const Array& caps, int token, int sink) {
  const int layers = static_cast<int>(caps.shape[0]), n = static_cast<int>(caps.shape[1]);
  const int internal = (layers - 1) * n;
  double best = 1e300;
  for (long long mask = 0; mask < (1LL << internal); ++mask) {
    auto in_source_side = [&](int l, int k) {
      if (l == layers) return k == token;  // other top-layer nodes are unreachable; on the sink side they cost 0
      if (l == 0) return k != sink;
      return ((mask >> ((l - 1) * n + k)) & 1) != 0;
    };
    double cut = 0.0;
    for (int l = layers; l >= 1; --l)
      for (int q = 0; q < n; ++q) {
        if (!in_source_side(l, q)) continue;
        if (l == layers && q != token) continue;
        for (int k = 0; k < n; ++k)
          if (!in_source_side(l - 1, k)) cut += layer_matrix(caps, l - 1)[q * n + k];
      }
    best = std::min(best, cut);
  }
  return best;
}

TEST(AttentionFlow, EqualsBruteForceMinCut) {
  for (bool sparse : {false, true})
    for (unsigned seed = 10; seed < 16; ++seed) {
      const int layers = 3, tokens = 4;  // 8 internal nodes: 256 cuts per pair
      const Array caps = random_capacities(layers, tokens, seed, sparse);
      const Array flows = attention_flow_from(caps, layers, 0);
      for (int k = 0; k < tokens; ++k)
        EXPECT_NEAR(flows.data[k], brute_force_min_cut(caps, 0, k), 1e-12) << "seed " << seed << " sink " << k;
    }
}

TEST(AttentionFlow, WithinCapacityBoundsAndAboveRollout) {
  const int layers = 6, tokens = 20;
  const Array caps = random_capacities(layers, tokens, 77, false);
  const Array all = attention_flow_all(caps);
  // Rollout routes each unit proportionally; the part ending at k is a feasible flow, so it bounds flow from below.
  Array stack = caps;
  stack.shape = {layers, 1, tokens, tokens};
  RolloutOptions ro;
  ro.residual = Residual::None;  // caps already carry the residual
  const Array joint = rollout(AttentionView::of(stack), ro);
  for (int l = 1; l <= layers; ++l)
    for (int q = 0; q < tokens; ++q)
      for (int k = 0; k < tokens; ++k) {
        const double f = all.data[(static_cast<size_t>(l - 1) * tokens + q) * tokens + k];
        double out = 0.0, in = 0.0;
        for (int j = 0; j < tokens; ++j) out += layer_matrix(caps, l - 1)[q * tokens + j];
        for (int j = 0; j < tokens; ++j) in += layer_matrix(caps, 0)[j * tokens + k];
        EXPECT_LE(f, out + 1e-12);
        EXPECT_LE(f, in + 1e-12);
        EXPECT_GE(f, joint.data[(static_cast<size_t>(l - 1) * tokens + q) * tokens + k] - 1e-12);
      }
}

TEST(AttentionFlow, ThreadsGiveIdenticalResults) {
  const Array caps = random_capacities(4, 12, 5, true);
  long long last = 0, calls = 0;
  const Array one = attention_flow_all(caps, 1);
  const Array two = attention_flow_all(caps, 2, [&](long long done, long long total) {
    EXPECT_EQ(total, 48);
    EXPECT_GT(done, last);
    last = done;
    ++calls;
  });
  EXPECT_EQ(one.data, two.data);
  EXPECT_EQ(calls, 48);
}

TEST(AttentionFlow, RejectsBadArguments) {
  const Array caps = random_capacities(2, 3, 1, false);
  EXPECT_THROW(attention_flow_from(caps, 0, 0), InputError);
  EXPECT_THROW(attention_flow_from(caps, 3, 0), InputError);
  EXPECT_THROW(attention_flow_from(caps, 2, 3), InputError);
  EXPECT_THROW(attention_flow_all(caps, -1), InputError);
  Array bad({2, 3, 4});
  EXPECT_THROW(attention_flow_all(bad), InputError);
}

// Metzger's orientation built explicitly for LEMON: arcs up from (l-1, k) to (l, q) with capacity C[l-1][q][k].
double lemon_upward_flow(const Array& caps, int input, int output) {
  using Graph = lemon::SmartDigraph;
  const int layers = static_cast<int>(caps.shape[0]), n = static_cast<int>(caps.shape[1]);
  Graph g;
  std::vector<Graph::Node> nodes(static_cast<size_t>(layers + 1) * n);
  for (auto& node : nodes) node = g.addNode();
  Graph::ArcMap<double> cap(g);
  for (int l = 1; l <= layers; ++l)
    for (int q = 0; q < n; ++q)
      for (int k = 0; k < n; ++k) {
        const double w = layer_matrix(caps, l - 1)[q * n + k];
        if (w > 0.0) cap[g.addArc(nodes[(l - 1) * n + k], nodes[l * n + q])] = w;
      }
  lemon::Preflow<Graph, Graph::ArcMap<double>> preflow(g, cap, nodes[input], nodes[layers * n + output]);
  preflow.runMinCut();
  return preflow.flowValue();
}

TEST(MetzgerFlow, PerTokenMatchesExplicitUpwardGraph) {
  for (bool sparse : {false, true}) {
    const Array caps = random_capacities(4, 9, 3, sparse);
    const Array scores = metzger_flow(caps, 0, MetzgerForm::PerToken);
    for (int k = 0; k < 9; ++k) EXPECT_NEAR(scores.data[k], lemon_upward_flow(caps, k, 0), 1e-9);
  }
}

TEST(MetzgerFlow, ShapleyFormIsOneMaximumFlow) {
  for (bool sparse : {false, true}) {
    const int layers = 4, tokens = 9;
    const Array caps = random_capacities(layers, tokens, 21, sparse);
    const Array shares = metzger_flow(caps, 2, MetzgerForm::Shapley);
    // The total is the value of one max flow from all inputs (super-source) to the output node.
    double total = 0.0;
    for (double s : shares.data) {
      EXPECT_GE(s, -1e-15);
      total += s;
    }
    using Graph = lemon::SmartDigraph;
    Graph g;
    std::vector<Graph::Node> nodes(static_cast<size_t>(layers + 1) * tokens);
    for (auto& node : nodes) node = g.addNode();
    const Graph::Node super = g.addNode();
    Graph::ArcMap<double> cap(g);
    for (int k = 0; k < tokens; ++k) cap[g.addArc(super, nodes[k])] = 1e9;
    for (int l = 1; l <= layers; ++l)
      for (int q = 0; q < tokens; ++q)
        for (int k = 0; k < tokens; ++k) {
          const double w = layer_matrix(caps, l - 1)[q * tokens + k];
          if (w > 0.0) cap[g.addArc(nodes[(l - 1) * tokens + k], nodes[l * tokens + q])] = w;
        }
    lemon::Preflow<Graph, Graph::ArcMap<double>> preflow(g, cap, super, nodes[layers * tokens + 2]);
    preflow.runMinCut();
    EXPECT_NEAR(total, preflow.flowValue(), 1e-9) << (sparse ? "sparse" : "dense");
    // No input can give more than its own max flow to the output.
    const Array per_token = metzger_flow(caps, 2, MetzgerForm::PerToken);
    for (int k = 0; k < tokens; ++k) EXPECT_LE(shares.data[k], per_token.data[k] + 1e-12);
  }
}

TEST(LayeredMaxFlow, SolverIsReusableAcrossSources) {
  const Array caps = random_capacities(5, 11, 8, true);
  LayeredMaxFlow solver(caps.data.data(), 5, 11);
  std::vector<double> a(11), b(11), expected(11);
  solver.flows_to_each_input(5, 3, a.data());
  solver.flows_to_each_input(2, 7, b.data());
  solver.flows_to_each_input(5, 3, b.data());  // again, after another source: no state leaks between calls
  testing::lemon_flows_to_each_input(caps.data.data(), 5, 11, 5, 3, expected.data());
  for (int k = 0; k < 11; ++k) {
    EXPECT_EQ(a[k], b[k]);
    EXPECT_NEAR(a[k], expected[k], 1e-9);
  }
}

}  // namespace
}  // namespace attnlens
