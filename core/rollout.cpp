#include "core/rollout.hpp"

#include <algorithm>
#include <cmath>

namespace attnlens {
namespace {

using Matrix = std::vector<double>;

struct Entry {
  double value;
  std::int64_t index;
};

// A strict weak order on any input (NaN sorts last), as the standard algorithms require.
bool entry_less(const Entry& a, const Entry& b) {
  const bool na = std::isnan(a.value), nb = std::isnan(b.value);
  if (na != nb) return nb;
  if (!na && a.value != b.value) return a.value < b.value;
  return a.index < b.index;
}

// The k = floor(N*N*ratio) smallest entries under the total order (value, index), NaN last; unordered.
// nth_element keeps this linear: a heap-based partial sort dominated the whole rollout at discard 0.9.
std::vector<Entry> select_smallest(const double* matrix, int n, double ratio) {
  if (n < 0) throw InputError("matrix size must be non-negative");
  if (!(ratio >= 0.0 && ratio <= 1.0)) throw InputError("discard ratio must be in [0, 1]");
  const std::int64_t total = static_cast<std::int64_t>(n) * n;
  // Same double product as Python's int(N*N*ratio), so k agrees with the reference at exact boundaries.
  const auto k = std::min(total, static_cast<std::int64_t>(std::floor(static_cast<double>(n) * n * ratio)));
  std::vector<Entry> entries(static_cast<std::size_t>(total));
  for (std::int64_t e = 0; e < total; ++e) entries[e] = {matrix[e], e};
  std::nth_element(entries.begin(), entries.begin() + k, entries.end(), entry_less);
  entries.resize(static_cast<std::size_t>(k));
  return entries;
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
  for (const Entry& e : select_smallest(f, n, ratio))
    if (e.index != 0) f[e.index] = 0.0;
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
  const int p = o.prefix_tokens;
  // The prefix rows/columns still take part in choosing the k smallest, they are just never zeroed: so the ratio
  // keeps meaning "share of all N*N entries considered", and CLS/distillation attention survives (spec 12.3).
  for (const Entry& e : select_smallest(f, n, o.discard_ratio))
    if (e.index / n >= p && e.index % n >= p) f[e.index] = 0.0;
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

std::vector<std::int64_t> smallest_entries(const double* matrix, int n, double ratio) {
  std::vector<Entry> entries = select_smallest(matrix, n, ratio);
  std::sort(entries.begin(), entries.end(), entry_less);
  std::vector<std::int64_t> indices(entries.size());
  for (std::size_t e = 0; e < entries.size(); ++e) indices[e] = entries[e].index;
  return indices;
}

Array rollout(const AttentionView& attention, const RolloutOptions& options) {
  validate(attention, options);
  const int L = attention.layers, N = attention.tokens, start = options.start_layer;
  const std::size_t nn = static_cast<std::size_t>(N) * N;
  AttentionView used = attention;  // layers before start_layer never enter the product
  used.data = attention.matrix(start, 0);
  used.layers = L - start;
  const Array fused = fuse_heads(used, options.fusion);
  Array out({L - start, N, N});
  Matrix layer(nn);
  for (int l = start; l < L; ++l) {
    const auto first = fused.data.begin() + (l - start) * nn;
    std::copy(first, first + nn, layer.begin());
    if (options.mode == RolloutMode::VitExplainReference)
      vit_explain_layer(layer.data(), N, options.discard_ratio);
    else
      abnar_layer(layer.data(), N, options);
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
