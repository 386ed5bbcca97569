#include "core/layered_flow.hpp"

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <limits>
#include <vector>

// Push-relabel (Goldberg-Tarjan) specialised to the layered attention graph.
//
// Why not a general library: the graph is dense between adjacent layers and nothing else, so arcs need no adjacency
// lists. Node (l, a) has N "down" arcs to (l-1, b), residual C[l-1][a][b] - F[l-1][a][b] (one row of a matrix), and
// N "up" arcs to (l+1, c), residual F[l][c][a] (one row of the transposed flow FT[l]). Scans are contiguous.
//
// Why warm starts: every sink of one source shares the flow above the input layer. After solving for sink v, the
// flow into v is cancelled, which leaves a valid preflow (the cancelled amounts become excess at layer-1 nodes), and
// push-relabel continues towards the next sink from there instead of from scratch.
//
// Only phase 1 of push-relabel runs: once no node below label n holds excess, the sink's excess is the max-flow value
// (the residual graph then has a saturated cut); turning the preflow into a flow is not needed for the value.

namespace attnlens {

namespace {

// Excess or residual below this is treated as zero. Capacities are attention weights in [0, 1] and the flows we
// report are compared to 1e-9, so 1e-14 keeps floating-point dust from triggering pushes without moving any answer.
constexpr double kEps = 1e-14;

}  // namespace

struct LayeredMaxFlow::Impl {
  const double* cap;  // C[l][a][b]: arc (l+1, a) -> (l, b)
  int layers;
  int n;
  std::vector<double> cap_t;     // CT[l][b][a], to scan the arcs entering a node contiguously
  std::vector<double> in_cap;    // in_cap[l][b] = sum_a C[l][a][b], the capacity entering node (l, b)

  // Per-source state. Residuals are stored, not flows: down arcs of (l+1, a) are the row a of down[l] (C - F),
  // up arcs of (l, b) are the row b of up[l] (F transposed). A push updates one entry of each.
  int top = 0;                 // source layer
  int source = 0;              // source token
  std::vector<double> down;    // [top][n][n]
  std::vector<double> up;      // [top][n][n]
  std::vector<double> excess;  // per node id = l * n + a
  std::vector<int> label;
  std::vector<int> current;    // current-arc pointer in [0, 2n): [0,n) down arcs, [n,2n) up arcs
  std::vector<int> label_count;
  std::vector<std::vector<int>> buckets;  // active nodes by label (may hold stale entries)
  std::vector<int> bfs_queue;
  int sink = -1;          // the input node the flow goes to, or -1 with all_inputs
  bool all_inputs = false; // every input node is a sink (one flow to a super-sink)
  int max_active = -1;
  double delivered = 0.0;  // flow that has reached the sink(s)
  // Greedy phase state.
  std::vector<int> next_child;     // per node: next child offset to try
  std::vector<char> dead;          // per node: no residual path straight down to the sink
  std::vector<size_t> touched;     // entries of down/up changed since the last reset
  long long work_since_relabel = 0;

  Impl(const double* c, int L, int N)
      : cap(c), layers(L), n(N), cap_t(static_cast<size_t>(L) * N * N), in_cap(static_cast<size_t>(L) * N, 0.0) {
    for (int l = 0; l < L; ++l) {
      const double* m = c + mat(l);
      double* t = cap_t.data() + mat(l);
      for (int a = 0; a < N; ++a)
        for (int b = 0; b < N; ++b) {
          t[static_cast<size_t>(b) * N + a] = m[static_cast<size_t>(a) * N + b];
          in_cap[static_cast<size_t>(l) * N + b] += m[static_cast<size_t>(a) * N + b];
        }
    }
  }

  bool is_sink(int node) const { return all_inputs ? node < n : node == sink; }
  size_t mat(int l) const { return static_cast<size_t>(l) * n * n; }
  size_t row(int l, int a) const { return mat(l) + static_cast<size_t>(a) * n; }
  int num_nodes() const { return (top + 1) * n; }

  void start_source(int l_src, int token) {
    top = l_src;
    source = token;
    down.assign(cap, cap + mat(top));
    up.assign(mat(top), 0.0);
    // Sized per source, but without giving memory back: the all-sources scope calls this L*N times.
    excess.assign(static_cast<size_t>(num_nodes()), 0.0);
    label.assign(static_cast<size_t>(num_nodes()), 0);
    current.assign(static_cast<size_t>(num_nodes()), 0);
    if (buckets.size() < static_cast<size_t>(num_nodes() + 1)) buckets.resize(static_cast<size_t>(num_nodes() + 1));
    label_count.assign(static_cast<size_t>(num_nodes() + 1), 0);
    sink = -1;
    all_inputs = false;
    next_child.assign(static_cast<size_t>(num_nodes()), 0);
    dead.assign(static_cast<size_t>(num_nodes()), 0);
  }

  // Back to zero flow: cheap when only the greedy phase ran (it logs what it touched).
  void reset_flow(bool full) {
    if (full) {
      down.assign(cap, cap + mat(top));
      std::fill(up.begin(), up.end(), 0.0);
    } else {
      for (size_t k : touched) {
        down[k] = cap[k];
        up[k] = 0.0;
      }
    }
    touched.clear();
    std::fill(excess.begin(), excess.end(), 0.0);
  }

  // Phase-1 preflow for push-relabel: saturate what is left of the source's arcs.
  void saturate_source() {
    const int token = source;
    double* d = down.data() + row(top - 1, token);
    for (int b = 0; b < n; ++b) {
      if (d[b] <= 0.0) continue;
      up[row(top - 1, b) + token] = cap[row(top - 1, token) + b];
      excess[static_cast<size_t>(top - 1) * n + b] += d[b];
      d[b] = 0.0;
    }
  }

  // Exact distance-to-sink labels by reverse BFS over residual arcs; unreachable nodes get num_nodes().
  void global_relabel() {
    const int nn = num_nodes();
    std::fill(label.begin(), label.end(), nn);
    std::fill(label_count.begin(), label_count.end(), 0);
    for (int d = 0; d <= nn; ++d) buckets[d].clear();
    max_active = -1;
    bfs_queue.clear();
    for (int k = 0; k < n; ++k)
      if (is_sink(k)) {
        label[k] = 0;
        bfs_queue.push_back(k);
      }
    for (size_t head = 0; head < bfs_queue.size(); ++head) {
      const int w = bfs_queue[head];
      const int l = w / n, b = w % n;
      const int next = label[w] + 1;
      // Down arcs from (l+1, c) into (l, b): residual C[l][c][b] - F[l][c][b] = CT[l][b][c] - up[l][b][c].
      // The top layer holds only the source, which keeps label num_nodes().
      if (l + 1 < top) {
        const double* ct = cap_t.data() + row(l, b);
        const double* f = up.data() + row(l, b);
        int* lab = label.data() + static_cast<size_t>(l + 1) * n;
        for (int c = 0; c < n; ++c)
          if (lab[c] == nn && ct[c] - f[c] > kEps) {
            lab[c] = next;
            bfs_queue.push_back((l + 1) * n + c);
          }
      }
      // Up arcs from (l-1, c) into (l, b): residual F[l-1][b][c] = C[l-1][b][c] - down[l-1][b][c].
      if (l >= 1) {
        const double* c0 = cap + row(l - 1, b);
        const double* d = down.data() + row(l - 1, b);
        int* lab = label.data() + static_cast<size_t>(l - 1) * n;
        for (int c = 0; c < n; ++c)
          if (lab[c] == nn && c0[c] - d[c] > kEps) {
            lab[c] = next;
            bfs_queue.push_back((l - 1) * n + c);
          }
      }
    }
    for (int u = 0; u < nn; ++u) {
      current[u] = 0;
      if (label[u] < nn) {
        ++label_count[label[u]];
        if (!is_sink(u) && excess[u] > kEps) activate(u);
      }
    }
    work_since_relabel = 0;
  }

  void activate(int u) {
    buckets[label[u]].push_back(u);
    max_active = std::max(max_active, label[u]);
  }

  void receive(int w, double delta) {
    if (is_sink(w)) {
      delivered += delta;
      return;
    }
    const bool was_inactive = excess[w] <= kEps;
    excess[w] += delta;
    if (was_inactive && excess[w] > kEps && label[w] < num_nodes()) activate(w);
  }

  // Arcs of node (l, a) that can be admissible: down arcs unless it is an input, up arcs unless its only upper
  // neighbour is the source (whose label num_nodes() never admits a push in phase 1).
  int arcs_begin(int l) const { return l >= 1 ? 0 : n; }
  int arcs_end(int l) const { return l < top - 1 ? 2 * n : n; }

  void relabel_or_gap(int u) {
    const int nn = num_nodes();
    const int l = u / n, a = u % n;
    int best = nn - 1;  // new label nn when no residual arc leads anywhere useful
    int best_arc = arcs_begin(l);
    if (l >= 1) {
      const double* d = down.data() + row(l - 1, a);
      const int* lab = label.data() + static_cast<size_t>(l - 1) * n;
      for (int b = 0; b < n; ++b)
        if (d[b] > kEps && lab[b] < best) {
          best = lab[b];
          best_arc = b;
        }
    }
    if (l < top - 1) {
      const double* f = up.data() + row(l, a);
      const int* lab = label.data() + static_cast<size_t>(l + 1) * n;
      for (int c = 0; c < n; ++c)
        if (f[c] > kEps && lab[c] < best) {
          best = lab[c];
          best_arc = n + c;
        }
    }
    work_since_relabel += arcs_end(l) - arcs_begin(l);
    const int old = label[u];
    if (--label_count[old] == 0) {
      // Gap: no node has label `old` any more, so nodes above it cannot reach the sink.
      for (int x = 0; x < nn; ++x)
        if (label[x] > old && label[x] < nn) {
          --label_count[label[x]];
          label[x] = nn;
        }
      label[u] = nn;
      return;
    }
    label[u] = best + 1;
    current[u] = best_arc;
    if (label[u] < nn) ++label_count[label[u]];
  }

  void discharge(int u) {
    const int nn = num_nodes();
    const int l = u / n, a = u % n;
    while (excess[u] > kEps && label[u] < nn) {
      const int target = label[u] - 1;
      int i = std::max(current[u], arcs_begin(l));
      if (i < n) {
        double* d = down.data() + row(l - 1, a);
        const int* lab = label.data() + static_cast<size_t>(l - 1) * n;
        for (; i < n; ++i) {
          if (lab[i] != target || d[i] <= kEps) continue;
          double* f = &up[row(l - 1, i) + a];
          const double delta = std::min(excess[u], d[i]);
          if (delta >= d[i]) {  // saturate exactly: residual 0, flow = capacity
            *f = cap[row(l - 1, a) + i];
            d[i] = 0.0;
          } else {
            d[i] -= delta;
            *f += delta;
          }
          excess[u] -= delta;
          receive((l - 1) * n + i, delta);
          if (excess[u] <= kEps) break;
        }
      }
      if (excess[u] > kEps && l < top - 1) {
        double* f = up.data() + row(l, a);
        const int* lab = label.data() + static_cast<size_t>(l + 1) * n;
        for (int c = std::max(i, n) - n; c < n; ++c) {
          if (lab[c] != target || f[c] <= kEps) continue;
          double* d = &down[row(l, c) + a];
          const double delta = std::min(excess[u], f[c]);
          if (delta >= f[c]) {  // cancel the whole flow: residual down = capacity again
            *d = cap[row(l, c) + a];
            f[c] = 0.0;
          } else {
            f[c] -= delta;
            *d += delta;
          }
          excess[u] -= delta;
          receive((l + 1) * n + c, delta);
          if (excess[u] <= kEps) {
            i = n + c;
            break;
          }
        }
      }
      if (excess[u] <= kEps) {
        current[u] = i;
        break;
      }
      relabel_or_gap(u);
    }
  }

  double source_out_capacity() const {
    double total = 0.0;
    for (int b = 0; b < n; ++b) total += cap[row(top - 1, source) + b];
    return total;
  }

  // A cut bound for one sink: each layer-1 node has either its arc to the sink cut or all its entering arcs; the
  // source's out-capacity bounds everything. A flow that reaches it is a maximum flow.
  double sink_cut_bound(int v) const {
    double total = 0.0;
    for (int a = 0; a < n; ++a) {
      const double to_sink = cap[row(0, a) + v];
      const double into = top - 1 == 1 ? cap[row(1, source) + a] : in_cap[static_cast<size_t>(n) + a];
      total += std::min(to_sink, into);
    }
    return std::min(total, source_out_capacity());
  }

  // Blocking flow straight down the DAG (Dinic's first phase: in the untouched graph every source-sink path has
  // length `top`), as a depth-first search that splits a node's amount over its children, with current-arc pointers
  // and dead-end marks, until the flow reaches `bound`. Each scan starts at the sink's column, so the residual
  // identity path is tried first.
  double greedy_flow(double bound) {
    std::fill(next_child.begin(), next_child.end(), 0);
    std::fill(dead.begin(), dead.end(), 0);
    return send_down(top, source, bound);
  }

  // Moves up to `limit` from node (l, a) towards the sink; returns the amount moved.
  double send_down(int l, int a, double limit) {
    const int u = l * n + a;
    if (l == 1) {
      if (!all_inputs) {
        const size_t k = row(0, a) + sink;
        const double moved = std::min(limit, down[k]);
        if (moved > kEps) move(0, a, sink, moved);
        if (down[k] <= kEps) dead[u] = 1;
        return moved > kEps ? moved : 0.0;
      }
      // Every input is a sink: fill the arcs in order, the node's own token first.
      double total = 0.0;
      const double* d = down.data() + row(0, a);
      for (int j = 0; j < n && limit - total > kEps; ++j) {
        const int k = a + j < n ? a + j : a + j - n;
        const double moved = std::min(limit - total, d[k]);
        if (moved > kEps) {
          move(0, a, k, moved);
          total += moved;
        }
      }
      if (limit - total > kEps) dead[u] = 1;
      return total;
    }
    double total = 0.0;
    const double* d = down.data() + row(l - 1, a);
    const char* dead_below = dead.data() + static_cast<size_t>(l - 1) * n;
    const int scan_start = all_inputs ? a : sink;
    int& j = next_child[u];
    for (; j < n; ++j) {
      int b = scan_start + j;
      if (b >= n) b -= n;
      if (d[b] <= kEps || dead_below[b]) continue;
      const double ask = std::min(limit - total, d[b]);
      const double got = send_down(l - 1, b, ask);
      if (got > 0.0) {
        move(l - 1, a, b, got);
        total += got;
      }
      if (limit - total <= kEps) return total;  // keep j: this arc may have room left
    }
    dead[u] = 1;
    return total;
  }

  // Adds `amount` of flow to the arc (l+1, a) -> (l, b), saturating exactly when it is (nearly) full.
  void move(int l, int a, int b, double amount) {
    const size_t kd = row(l, a) + b;
    const size_t ku = row(l, b) + a;
    if (down[kd] - amount <= kEps) {
      down[kd] = 0.0;
      up[ku] = cap[kd];
    } else {
      down[kd] -= amount;
      up[ku] += amount;
    }
    touched.push_back(kd);
    touched.push_back(ku);
  }

  // Max flow to the current sink(s), given a cut capacity `bound` it cannot exceed. When `inflow` is given, the
  // flow entering each input node is written there. Leaves the state at zero flow.
  double solve(double bound, double* inflow) {
    // "The flow meets the cut": both are sums of the same capacities, so they agree to rounding.
    const double tolerance = 1e-12;
    delivered = greedy_flow(bound);
    bool only_greedy = true;
    if (delivered < bound - tolerance) {
      // Exact fallback: push-relabel (phase 1) from the greedy flow.
      only_greedy = false;
      saturate_source();
      global_relabel();
      const int nn = num_nodes();
      const long long relabel_budget = 6LL * n * n * top + static_cast<long long>(nn);
      while (max_active >= 0 && delivered < bound - tolerance) {
        auto& bucket = buckets[max_active];
        if (bucket.empty()) {
          --max_active;
          continue;
        }
        const int u = bucket.back();
        bucket.pop_back();
        if (label[u] != max_active || excess[u] <= kEps) continue;  // stale entry
        discharge(u);
        if (excess[u] > kEps && label[u] < nn) activate(u);
        if (work_since_relabel > relabel_budget) global_relabel();
      }
    }
    if (inflow != nullptr)
      for (int k = 0; k < n; ++k) {
        const double* f = up.data() + row(0, k);
        double sum = 0.0;
        for (int a = 0; a < n; ++a) sum += f[a];
        inflow[k] = sum;
      }
    const double value = delivered;
    reset_flow(!only_greedy);
    return value;
  }
};

LayeredMaxFlow::LayeredMaxFlow(const double* capacities, int layers, int tokens)
    : impl_(std::make_unique<Impl>(capacities, layers, tokens)) {}
LayeredMaxFlow::~LayeredMaxFlow() = default;
LayeredMaxFlow::LayeredMaxFlow(LayeredMaxFlow&&) noexcept = default;
LayeredMaxFlow& LayeredMaxFlow::operator=(LayeredMaxFlow&&) noexcept = default;

void LayeredMaxFlow::flows_to_each_input(int layer, int token, double* out) {
  Impl& s = *impl_;
  assert(layer >= 1 && layer <= s.layers && token >= 0 && token < s.n);
  if (layer == 1) {  // one layer of arcs: each max flow is a single arc
    for (int k = 0; k < s.n; ++k) out[k] = s.cap[static_cast<size_t>(token) * s.n + k];
    return;
  }
  s.start_source(layer, token);
  for (int k = 0; k < s.n; ++k) {
    s.sink = k;
    out[k] = s.solve(s.sink_cut_bound(k), nullptr);
  }
}

double LayeredMaxFlow::flow_to_all_inputs(int layer, int token, double* out) {
  Impl& s = *impl_;
  assert(layer >= 1 && layer <= s.layers && token >= 0 && token < s.n);
  if (layer == 1) {
    double total = 0.0;
    for (int k = 0; k < s.n; ++k) total += out[k] = s.cap[static_cast<size_t>(token) * s.n + k];
    return total;
  }
  s.start_source(layer, token);
  s.all_inputs = true;
  return s.solve(s.source_out_capacity(), out);
}

}  // namespace attnlens
