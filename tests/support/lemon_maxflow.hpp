// The general-purpose baseline: LEMON's Preflow (push-relabel, highest label, global relabelling) on the same
// layered attention graph. Tests use it as the independent solver to agree with; bench/ measures against it.
#pragma once

#include <lemon/preflow.h>
#include <lemon/smart_graph.h>

#include <vector>

namespace attnlens::testing {

/// out[k] = max-flow from node (layer, token) to input (0, k), one Preflow run per sink, on the graph of the layers
/// below the source (the reference builds all layers; arcs above the source cannot carry its flow).
inline void lemon_flows_to_each_input(const double* capacities, int layers, int tokens, int layer, int token,
                                      double* out) {
  (void)layers;
  using Graph = lemon::SmartDigraph;
  Graph g;
  const int n = tokens;
  std::vector<Graph::Node> nodes(static_cast<size_t>(layer + 1) * n);
  for (auto& node : nodes) node = g.addNode();
  Graph::ArcMap<double> cap(g);
  for (int l = layer; l >= 1; --l) {
    const double* c = capacities + static_cast<size_t>(l - 1) * n * n;
    for (int q = 0; q < n; ++q) {
      if (l == layer && q != token) continue;
      for (int k = 0; k < n; ++k) {
        const double w = c[static_cast<size_t>(q) * n + k];
        if (w <= 0.0) continue;  // like networkx from_numpy_array: zero entries are no edges
        cap[g.addArc(nodes[static_cast<size_t>(l) * n + q], nodes[static_cast<size_t>(l - 1) * n + k])] = w;
      }
    }
  }
  const Graph::Node source = nodes[static_cast<size_t>(layer) * n + token];
  for (int k = 0; k < n; ++k) {
    lemon::Preflow<Graph, Graph::ArcMap<double>> preflow(g, cap, source, nodes[k]);
    preflow.runMinCut();  // phase 1 gives the value; phase 2 only turns the preflow into a flow
    out[k] = preflow.flowValue();
  }
}

}  // namespace attnlens::testing
