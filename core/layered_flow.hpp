// Exact maximum flow on the layered graphs built from attention (spec 3).
//
// Graph: nodes (l, k) for layer l = 0..L (0 = input embeddings) and token k < N; a directed edge from (l, q) down to
// (l-1, k) with capacity C[l-1][q][k]. Only adjacent layers are joined, so flow from a node at layer l uses layers
// below it only. This solver is specialised for that structure (dense per-layer storage, one source for many sinks);
// tests check it against LEMON's general Preflow and min-cut certificates.
#pragma once

#include <memory>
#include <vector>

#include "api.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

class LayeredMaxFlow {
 public:
  /// `capacities` is C[L][N][N] in C order (non-negative); it must outlive the solver.
  LayeredMaxFlow(const double* capacities, int layers, int tokens);
  ~LayeredMaxFlow();
  LayeredMaxFlow(LayeredMaxFlow&&) noexcept;
  LayeredMaxFlow& operator=(LayeredMaxFlow&&) noexcept;

  /// out[k] = value of the maximum flow from node (layer, token) to input node (0, k), for every k < N.
  /// layer in 1..L. Each value is exact up to floating-point summation order.
  void flows_to_each_input(int layer, int token, double* out);

  /// One maximum flow from node (layer, token) to a super-sink joined to every input node with unbounded capacity.
  /// Writes the flow entering each input node to out[k] and returns the total. (A maximum flow need not be unique;
  /// this one is the solver's, see attention_flow.hpp.)
  double flow_to_all_inputs(int layer, int token, double* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace attnlens
ATTNLENS_API_END
