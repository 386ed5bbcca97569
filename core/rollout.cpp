#include "core/rollout.hpp"

#include <algorithm>
#include <cmath>

namespace attnlens {
namespace {

using Matrix = std::vector<double>;

// Calls chosen(e), in index order, for the k = floor(N*N*ratio) smallest entries, ties by lower flat index. O(N^2):
// the k-th smallest value is a threshold (nth_element on a copy); everything below it is chosen, and of the entries
// equal to it the ones with the lowest indices until there are k.
template <typename Chosen>
void for_each_smallest(const double* matrix, int n, double ratio, Chosen&& chosen) {
  if (n < 0) throw InputError("matrix size must be non-negative");
  if (!(ratio >= 0.0 && ratio <= 1.0)) throw InputError("discard ratio must be in [0, 1]");
  const std::int64_t total = static_cast<std::int64_t>(n) * n;
  // Same double product as Python's int(N*N*ratio), so k agrees with the reference at exact boundaries.
  const auto k = std::min(total, static_cast<std::int64_t>(std::floor(static_cast<double>(n) * n * ratio)));
  if (k == 0) return;
  if (std::any_of(matrix, matrix + total, [](double v) { return std::isnan(v); }))
    throw InputError("cannot discard entries of a matrix that contains NaN");
  std::vector<double> values(matrix, matrix + total);
  std::nth_element(values.begin(), values.begin() + (k - 1), values.end());
  const double threshold = values[static_cast<std::size_t>(k - 1)];
  std::int64_t ties = k - std::count_if(matrix, matrix + total, [&](double v) { return v < threshold; });
  for (std::int64_t e = 0; e < total; ++e) {
    const double v = matrix[e];
    if (v < threshold || (v == threshold && ties-- > 0)) chosen(e);
  }
}

// out = a * b for n x n matrices in i-k-j order (rows of b and out stream contiguously). Zero entries of a (common
// after discarding) are skipped, and four rows of b are folded into each pass over the output row to cut its loads
// and stores; the additions still happen in k order, so the result rounds exactly like the plain loop.
void multiply(const double* a, const double* b, double* out, int n) {
  std::vector<int> ks(n);
  std::vector<double> as(n);
  for (int i = 0; i < n; ++i) {
    const double* a_row = a + static_cast<std::size_t>(i) * n;
    int m = 0;
    for (int k = 0; k < n; ++k)
      if (a_row[k] != 0.0) {
        ks[m] = k;
        as[m++] = a_row[k];
      }
    double* o = out + static_cast<std::size_t>(i) * n;
    std::fill(o, o + n, 0.0);
    auto row = [&](int t) { return b + static_cast<std::size_t>(ks[t]) * n; };
    int t = 0;
    for (; t + 4 <= m; t += 4) {
      const double *b0 = row(t), *b1 = row(t + 1), *b2 = row(t + 2), *b3 = row(t + 3);
      const double a0 = as[t], a1 = as[t + 1], a2 = as[t + 2], a3 = as[t + 3];
      for (int j = 0; j < n; ++j) o[j] = (((o[j] + a0 * b0[j]) + a1 * b1[j]) + a2 * b2[j]) + a3 * b3[j];
    }
    for (; t < m; ++t) {
      const double* bt = row(t);
      for (int j = 0; j < n; ++j) o[j] += as[t] * bt[j];
    }
  }
}

void validate(const AttentionView& attention, const RolloutOptions& o) {
  const int L = attention.layers, N = attention.tokens;
  if (L < 1 || N < 1 || attention.heads < 1)
    throw InputError("rollout needs at least one layer, head and token");
  if (!(o.discard_ratio >= 0.0 && o.discard_ratio < 1.0))
    throw InputError("discard ratio must be in [0, 1), got " + std::to_string(o.discard_ratio));
  if (o.start_layer < 0 || o.start_layer >= L)
    throw InputError("start layer must be in [0, " + std::to_string(L) + "), got " + std::to_string(o.start_layer));
  if (o.prefix_tokens < 0 || o.prefix_tokens >= N)
    throw InputError("prefix tokens must be in [0, " + std::to_string(N) + "), got " +
                     std::to_string(o.prefix_tokens));
  switch (o.mode) {
    case RolloutMode::Abnar:
      break;
    case RolloutMode::VitExplainReference:
      if (o.residual == Residual::None)
        throw InputError("--residual none is not part of vit-explain's computation");
      break;
    case RolloutMode::Chefer:
      if (o.fusion != HeadFusion::Mean)
        throw InputError("Chefer rollout averages heads; use head fusion mean (or the abnar mode)");
      if (o.discard_ratio != 0.0)
        throw InputError("Chefer rollout does not discard; use discard ratio 0 (or the abnar mode)");
      if (o.residual == Residual::None)
        throw InputError("Chefer rollout always adds the identity; --residual none is not part of it");
      break;
  }
}

// vit-explain's per-layer matrix (spec 1.2): discard all but flat index 0, a = (F + I)/2, then the published
// normalisation `a / a.sum(dim=-1)`, which broadcasts as a[i][j] / s[j].
void vit_explain_layer(double* f, int n, double ratio) {
  discard_smallest(f, n, ratio, DiscardProtection::FirstEntry);
  for (int i = 0; i < n; ++i) {
    f[static_cast<std::size_t>(i) * n + i] += 1.0;
    for (int j = 0; j < n; ++j) f[static_cast<std::size_t>(i) * n + j] /= 2.0;
  }
  std::vector<double> s(n, 0.0);
  for (int j = 0; j < n; ++j)
    for (int k = 0; k < n; ++k) s[j] += f[static_cast<std::size_t>(j) * n + k];
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) f[static_cast<std::size_t>(i) * n + j] /= s[j];
}

// Abnar/Chefer per-layer matrix: discard, then the residual with true row normalisation.
void abnar_layer(double* f, int n, const RolloutOptions& o) {
  // CLS/distillation attention survives the discard (spec 12.3).
  discard_smallest(f, n, o.discard_ratio, DiscardProtection::PrefixRowsColumns, o.prefix_tokens);
  if (o.residual == Residual::None) return;
  for (int i = 0; i < n; ++i) {
    double* row = f + static_cast<std::size_t>(i) * n;
    row[i] += 1.0;
    double sum = 0.0;
    for (int j = 0; j < n; ++j) sum += row[j];
    if (sum == 0.0) continue;
    for (int j = 0; j < n; ++j) row[j] /= sum;
  }
}

}  // namespace

void discard_smallest(double* matrix, int n, double ratio, DiscardProtection protection, int prefix) {
  for_each_smallest(matrix, n, ratio, [&](std::int64_t e) {
    const bool kept = protection == DiscardProtection::FirstEntry ? e == 0
                      : protection == DiscardProtection::PrefixRowsColumns ? (e / n < prefix || e % n < prefix)
                                                                           : false;
    if (!kept) matrix[e] = 0.0;
  });
}

std::vector<std::int64_t> smallest_entries(const double* matrix, int n, double ratio) {
  std::vector<std::int64_t> indices;
  for_each_smallest(matrix, n, ratio, [&](std::int64_t e) { indices.push_back(e); });
  std::stable_sort(indices.begin(), indices.end(),
                   [&](std::int64_t a, std::int64_t b) { return matrix[a] < matrix[b]; });  // (value, index)
  return indices;
}

namespace {

// Fuses the heads of the layers from start_layer on (earlier layers never enter the product).
Array fused_from_start(const AttentionView& attention, const RolloutOptions& options) {
  AttentionView used = attention;
  used.data = attention.matrix(options.start_layer, 0);
  used.layers = attention.layers - options.start_layer;
  return fuse_heads(used, options.fusion);
}

// The matrix layer l contributes to the product, written into `layer`.
void layer_matrix(const Array& fused, int l, const RolloutOptions& options, int N, Matrix& layer) {
  const std::size_t nn = static_cast<std::size_t>(N) * N;
  const auto first = fused.data.begin() + (l - options.start_layer) * nn;
  std::copy(first, first + nn, layer.begin());
  if (options.mode == RolloutMode::VitExplainReference)
    vit_explain_layer(layer.data(), N, options.discard_ratio);
  else
    abnar_layer(layer.data(), N, options);
}

}  // namespace

Array rollout_row(const AttentionView& attention, const RolloutOptions& options, int row) {
  validate(attention, options);
  const int L = attention.layers, N = attention.tokens;
  if (row < 0 || row >= N) throw InputError("rollout row must be in [0, " + std::to_string(N) + ")");
  const Array fused = fused_from_start(attention, options);
  Array v({N});
  v.data[row] = 1.0;
  Matrix layer(static_cast<std::size_t>(N) * N), next(N);
  for (int l = L - 1; l >= options.start_layer; --l) {
    layer_matrix(fused, l, options, N, layer);
    std::fill(next.begin(), next.end(), 0.0);
    for (int k = 0; k < N; ++k) {
      const double vk = v.data[k];
      if (vk == 0.0) continue;
      const double* m = layer.data() + static_cast<std::size_t>(k) * N;
      for (int j = 0; j < N; ++j) next[j] += vk * m[j];
    }
    std::copy(next.begin(), next.end(), v.data.begin());
  }
  return v;
}

Array rollout(const AttentionView& attention, const RolloutOptions& options) {
  validate(attention, options);
  const int L = attention.layers, N = attention.tokens, start = options.start_layer;
  const std::size_t nn = static_cast<std::size_t>(N) * N;
  const Array fused = fused_from_start(attention, options);
  Array out({L - start, N, N});
  Matrix layer(nn);
  for (int l = start; l < L; ++l) {
    layer_matrix(fused, l, options, N, layer);
    double* joint = out.data.data() + (l - start) * nn;
    // vit-explain's R = a * I equals a bit for bit, so every mode starts the chain with the first matrix itself.
    if (l == start)
      std::copy(layer.begin(), layer.end(), joint);
    else
      multiply(layer.data(), joint - nn, joint, N);
  }
  return out;
}

}  // namespace attnlens
