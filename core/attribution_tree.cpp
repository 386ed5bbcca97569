#include "core/attribution_tree.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <string>

namespace attnlens {

namespace {

// numpy's float64 add.reduce over a contiguous axis (pairwise summation: < 8 values one by one, up to 128 values in
// 8 interleaved partial sums, longer runs split in halves at multiples of 8). The root is an argmax over row sums,
// so summing in numpy's order keeps near-ties resolved as the reference resolves them.
double numpy_sum(const double* a, std::size_t n) {
  if (n < 8) {
    double s = 0.0;
    for (std::size_t i = 0; i < n; ++i) s += a[i];
    return s;
  }
  if (n <= 128) {
    double r[8];
    for (int k = 0; k < 8; ++k) r[k] = a[k];
    std::size_t i = 8;
    for (; i < n - n % 8; i += 8)
      for (int k = 0; k < 8; ++k) r[k] += a[i + k];
    double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) s += a[i];
    return s;
  }
  std::size_t half = n / 2;
  half -= half % 8;
  return numpy_sum(a, half) + numpy_sum(a + half, n - half);
}

void check_input(const Array& s, double threshold) {
  if (s.rank() != 3 || s.shape[1] != s.shape[2])
    throw InputError("attribution tree expects per-layer attribution [L, N, N], got " + s.shape_string());
  if (s.shape[0] < 2)
    throw InputError("attribution tree needs at least 2 layers (root children come from layer L-2), got " +
                     std::to_string(s.shape[0]));
  if (s.shape[1] < 2) throw InputError("attribution tree needs at least 2 tokens, got " + std::to_string(s.shape[1]));
  if (!std::isfinite(threshold)) throw InputError("attribution tree threshold must be finite");
  const std::int64_t N = s.shape[1];
  for (std::size_t k = 0; k < s.data.size(); ++k)
    if (!std::isfinite(s.data[k])) {
      const auto n = static_cast<std::size_t>(N);
      throw InputError("attribution tree: non-finite value at layer " + std::to_string(k / (n * n)) + ", row " +
                       std::to_string(k / n % n) + ", column " + std::to_string(k % n));
    }
}

}  // namespace

AttributionTree attribution_tree(const Array& S, double tau) {
  check_input(S, tau);
  const int L = static_cast<int>(S.shape[0]);
  const int N = static_cast<int>(S.shape[1]);
  const std::size_t NN = static_cast<std::size_t>(N) * N;

  // P_l = S_l / |max(S_l[1:, :])|, then P_l * [P_l > tau]. The [CLS] query row is left out of the normaliser but
  // not of P. A normaliser of exactly 0 would make numpy produce NaN/inf, and NaN entries slip through the
  // reference's `P < tau` skip test and attach arbitrary tokens; such a layer (every non-[CLS] attribution <= 0
  // with the largest exactly 0) contributes no edge here instead.
  std::vector<double> P(S.data.size(), 0.0);
  for (int l = 0; l < L; ++l) {
    const double* s = S.data.data() + l * NN;
    const double m = *std::max_element(s + N, s + NN);
    const double scale = std::fabs(m);
    if (scale == 0.0) continue;
    double* p = P.data() + l * NN;
    for (std::size_t k = 0; k < NN; ++k) {
      const double v = s[k] / scale;
      // Literal thresholding: values <= tau become 0, which the later `< tau` test skips only when tau > 0.
      p[k] = v > tau ? v : 0.0;
    }
  }
  auto p_at = [&](int l, int i, int j) { return P[l * NN + static_cast<std::size_t>(i) * N + j]; };

  // Root: C = sum_l S_l / |max(sum_l S_l)| (numpy adds the layers one after another), diagonal, negatives and the
  // [CLS] row zeroed; the best row sum, or the second best when the best is token 0.
  std::vector<double> C(NN, 0.0);
  for (int l = 0; l < L; ++l)
    for (std::size_t k = 0; k < NN; ++k) C[k] += S.data[l * NN + k];
  for (double v : C)
    if (!std::isfinite(v)) throw InputError("attribution tree: the sum over layers overflows");
  const double c_scale = std::fabs(*std::max_element(C.begin(), C.end()));
  std::vector<double> row_sum(static_cast<std::size_t>(N), 0.0);
  // A zero normaliser (no positive entry at all) leaves C all zero: every row ties, as numpy's all-NaN C does.
  if (c_scale != 0.0) {
    for (int i = 0; i < N; ++i) {
      double* c = C.data() + static_cast<std::size_t>(i) * N;
      for (int j = 0; j < N; ++j) {
        const double v = c[j] / c_scale;
        c[j] = (i == 0 || i == j || !(v > 0.0)) ? 0.0 : v;
      }
      row_sum[i] = numpy_sum(c, static_cast<std::size_t>(N));
    }
  }
  // np.argsort(..)[::-1]: descending; among equal sums the larger index first (the reversed order of numpy's stable
  // small-array sort, and what numpy 1.24 gives for all-equal arrays of any length; its larger sorts are unstable).
  std::vector<int> order(static_cast<std::size_t>(N));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return row_sum[a] < row_sum[b]; });
  std::reverse(order.begin(), order.end());
  // Row 0 is zeroed and no row sum is negative, so with this tie order the fallback cannot fire for finite input;
  // it is kept because it is the reference's rule.
  const int root = order[0] != 0 ? order[0] : order[1];

  AttributionTree tree;
  tree.root = root;
  tree.layers = L;
  tree.nodes.resize(static_cast<std::size_t>(N));
  for (int t = 0; t < N; ++t) tree.nodes[t].token = t;
  auto status = [&](int t) -> TreeStatus& { return tree.nodes[t].status; };
  auto height = [&](int t) -> double& { return tree.nodes[t].height; };
  const double Ld = L;

  // The root's children come from layer L-2 (10 for BERT-base), not the last layer; token 0 may be one of them.
  height(root) = (Ld - 1.0) / Ld;
  status(root) = TreeStatus::leaf;
  const int root_layer = L - 2;
  for (int i = 0; i < N; ++i) {
    if (i == root || !(p_at(root_layer, root, i) > tau)) continue;
    status(i) = TreeStatus::leaf;  // its height stays 0 (reference quirk)
    status(root) = TreeStatus::fixed;
    tree.edges.push_back({root, i, root_layer, p_at(root_layer, root, i)});
  }

  for (int l = L - 3; l >= 0; --l) {
    for (int i = 1; i < N; ++i) {  // the [CLS] query row never gives a parent
      for (int j = 0; j < N; ++j) {
        const double p = p_at(l, i, j);
        if (p < tau || status(i) == TreeStatus::absent) continue;
        if (status(j) == TreeStatus::fixed) continue;
        // The reference also skips an existing edge and the (leaf, leaf) and (fixed, leaf) pairs; with the checks
        // above that leaves exactly "j absent", so only new tokens are attached and each gets one parent.
        if (status(j) != TreeStatus::absent) continue;
        if (status(i) == TreeStatus::leaf) {
          status(i) = TreeStatus::fixed;
          status(j) = TreeStatus::leaf;
          height(j) = (height(i) * Ld - 1.0) / Ld;
        } else {
          status(j) = TreeStatus::leaf;
          // min(height_list) over every token: absent ones count with their initial 0.
          double lowest = height(0);
          for (int t = 1; t < N; ++t) lowest = std::min(lowest, height(t));
          height(j) = lowest;
        }
        tree.edges.push_back({i, j, l, p});
      }
    }
  }
  return tree;
}

}  // namespace attnlens
