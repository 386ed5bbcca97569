#include "core/gradient_methods.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/rollout.hpp"

namespace attnlens {
namespace {

std::string shape_of(const AttentionView& v) {
  return "[" + std::to_string(v.layers) + "," + std::to_string(v.heads) + "," + std::to_string(v.tokens) + "," +
         std::to_string(v.tokens) + "]";
}

void check_finite(const AttentionView& v, const char* what) {
  const std::size_t nn = static_cast<std::size_t>(v.tokens) * v.tokens;
  for (int l = 0; l < v.layers; ++l)
    for (int h = 0; h < v.heads; ++h) {
      const double* m = v.matrix(l, h);
      for (std::size_t e = 0; e < nn; ++e)
        if (!std::isfinite(m[e]))
          throw InputError(std::string(what) + " holds " + (std::isnan(m[e]) ? "NaN" : "Inf") + " at layer " +
                           std::to_string(l) + ", head " + std::to_string(h) + ", row " +
                           std::to_string(e / v.tokens) + ", column " + std::to_string(e % v.tokens));
    }
}

// Shapes first (cheap, clearest message), then values.
void check_pair(const AttentionView& attention, const AttentionView& gradient, const char* method) {
  if (attention.layers < 1 || attention.heads < 1 || attention.tokens < 1 || attention.data == nullptr)
    throw InputError(std::string(method) + " needs at least one layer, head and token, got attention " +
                     shape_of(attention));
  if (gradient.layers != attention.layers || gradient.heads != attention.heads ||
      gradient.tokens != attention.tokens || gradient.data == nullptr)
    throw InputError(std::string(method) + ": gradient shape " + shape_of(gradient) +
                     " must match attention shape " + shape_of(attention) + " ([L,H,N,N])");
  check_finite(attention, "attention");
  check_finite(gradient, "gradient");
}

// out = a * b for n x n row-major matrices (i-k-j order; zero entries of a, common after discarding, are skipped).
void multiply(const double* a, const double* b, double* out, int n) {
  const std::size_t N = static_cast<std::size_t>(n);
  std::fill(out, out + N * N, 0.0);
  for (std::size_t i = 0; i < N; ++i) {
    double* o = out + i * N;
    for (std::size_t k = 0; k < N; ++k) {
      const double aik = a[i * N + k];
      if (aik == 0.0) continue;
      const double* bk = b + k * N;
      for (std::size_t j = 0; j < N; ++j) o[j] += aik * bk[j];
    }
  }
}

// f = mean_h(a_h ⊙ g_h) with the products summed in head order, then divided by H (torch's mean).
void head_mean_product(const AttentionView& attention, int layer, const AttentionView& gradient, int grad_layer,
                       bool clamp_each_head, double* f) {
  const std::size_t nn = static_cast<std::size_t>(attention.tokens) * attention.tokens;
  std::fill(f, f + nn, 0.0);
  for (int h = 0; h < attention.heads; ++h) {
    const double* a = attention.matrix(layer, h);
    const double* g = gradient.matrix(grad_layer, h);
    if (clamp_each_head)
      for (std::size_t e = 0; e < nn; ++e) f[e] += std::max(0.0, g[e] * a[e]);
    else
      for (std::size_t e = 0; e < nn; ++e) f[e] += a[e] * g[e];
  }
  for (std::size_t e = 0; e < nn; ++e) f[e] /= attention.heads;
}

}  // namespace

namespace {

void check_grad_rollout(const AttentionView& attention, const AttentionView& gradient, const GradRolloutOptions& o) {
  check_pair(attention, gradient, "gradient rollout");
  const int N = attention.tokens;
  if (!(o.discard_ratio >= 0.0 && o.discard_ratio < 1.0))
    throw InputError("discard ratio must be in [0, 1), got " + std::to_string(o.discard_ratio));
  if (o.prefix_tokens < 0 || o.prefix_tokens >= N)
    throw InputError("prefix tokens must be in [0, " + std::to_string(N) + "), got " +
                     std::to_string(o.prefix_tokens));
  if (o.mode != GradRolloutMode::Fixed && o.mode != GradRolloutMode::VitExplainReference)
    throw InputError("unknown gradient rollout mode");
}

// The matrix a_l layer l contributes (spec 2 steps 1-4), written into f.
void grad_rollout_layer(const AttentionView& attention, const AttentionView& gradient, const GradRolloutOptions& o,
                        int l, std::vector<double>& f, std::vector<double>& sums) {
  const int L = attention.layers, N = attention.tokens, p = o.prefix_tokens;
  const std::size_t n = static_cast<std::size_t>(N);
  const bool reference = o.mode == GradRolloutMode::VitExplainReference;
  head_mean_product(attention, l, gradient, reference ? L - 1 - l : l, /*clamp_each_head=*/false, f.data());
  for (double& x : f)
    if (x < 0.0) x = 0.0;
  // Fixed never zeroes the prefix rows/columns; the reference zeroes whatever was chosen (flat index 0 included).
  discard_smallest(f.data(), N, o.discard_ratio,
                   reference ? DiscardProtection::None : DiscardProtection::PrefixRowsColumns, p);
  for (std::size_t i = 0; i < n; ++i) {
    f[i * n + i] += 1.0;
    for (std::size_t j = 0; j < n; ++j) f[i * n + j] /= 2.0;
  }
  for (std::size_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (std::size_t k = 0; k < n; ++k) s += f[i * n + k];
    sums[i] = s;  // >= 1/2: F >= 0 after the clamp and the diagonal holds (F_ii + 1)/2
  }
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < n; ++j) f[i * n + j] /= reference ? sums[j] : sums[i];
}

// v <- v * m (+ v when add_identity): one row through one layer.
void row_times(std::vector<double>& v, const std::vector<double>& m, bool add_identity, std::vector<double>& next) {
  const std::size_t n = v.size();
  if (add_identity)
    next = v;
  else
    std::fill(next.begin(), next.end(), 0.0);
  for (std::size_t k = 0; k < n; ++k) {
    const double vk = v[k];
    if (vk == 0.0) continue;
    const double* row = m.data() + k * n;
    for (std::size_t j = 0; j < n; ++j) next[j] += vk * row[j];
  }
  v.swap(next);
}

Array unit_row(int n, int row) {
  if (row < 0 || row >= n) throw InputError("row must be in [0, " + std::to_string(n) + "), got " + std::to_string(row));
  Array v({n});
  v.data[static_cast<std::size_t>(row)] = 1.0;
  return v;
}

}  // namespace

Array grad_rollout(const AttentionView& attention, const AttentionView& gradient, const GradRolloutOptions& o) {
  check_grad_rollout(attention, gradient, o);
  const int L = attention.layers, N = attention.tokens;
  const std::size_t n = static_cast<std::size_t>(N), nn = n * n;
  Array r({N, N});
  for (std::size_t i = 0; i < n; ++i) r.data[i * n + i] = 1.0;
  std::vector<double> f(nn), next(nn), sums(n);
  for (int l = 0; l < L; ++l) {
    grad_rollout_layer(attention, gradient, o, l, f, sums);
    multiply(f.data(), r.data.data(), next.data(), N);
    std::copy(next.begin(), next.end(), r.data.begin());
  }
  return r;
}

Array grad_rollout_row(const AttentionView& attention, const AttentionView& gradient, const GradRolloutOptions& o,
                       int row) {
  check_grad_rollout(attention, gradient, o);
  const int N = attention.tokens;
  Array out = unit_row(N, row);
  std::vector<double> v = out.data, f(static_cast<std::size_t>(N) * N), sums(N), next(N);
  for (int l = attention.layers - 1; l >= 0; --l) {
    grad_rollout_layer(attention, gradient, o, l, f, sums);
    row_times(v, f, /*add_identity=*/false, next);
  }
  out.data = v;
  return out;
}

namespace {

void check_chefer(const AttentionView& attention, const AttentionView& gradient, int start_layer) {
  check_pair(attention, gradient, "Chefer relevance");
  const int L = attention.layers;
  if (start_layer < 0 || start_layer >= L)
    throw InputError("start layer must be in [0, " + std::to_string(L) + "), got " + std::to_string(start_layer));
}

}  // namespace

Array chefer_relevance(const AttentionView& attention, const AttentionView& gradient, int start_layer) {
  check_chefer(attention, gradient, start_layer);
  const int L = attention.layers, N = attention.tokens;
  const std::size_t n = static_cast<std::size_t>(N), nn = n * n;
  Array r({N, N});
  for (std::size_t i = 0; i < n; ++i) r.data[i * n + i] = 1.0;
  std::vector<double> abar(nn), update(nn);
  for (int b = start_layer; b < L; ++b) {
    head_mean_product(attention, b, gradient, b, /*clamp_each_head=*/true, abar.data());
    multiply(abar.data(), r.data.data(), update.data(), N);  // R += Ā·R, the product taken before adding
    for (std::size_t e = 0; e < nn; ++e) r.data[e] += update[e];
  }
  return r;
}

Array chefer_relevance_row(const AttentionView& attention, const AttentionView& gradient, int row, int start_layer) {
  check_chefer(attention, gradient, start_layer);
  const int N = attention.tokens;
  Array out = unit_row(N, row);
  std::vector<double> v = out.data, abar(static_cast<std::size_t>(N) * N), next(N);
  // Row of (I + Ā_{L-1}) ... (I + Ā_s): v <- v + v Ā_b from the deepest block down.
  for (int b = attention.layers - 1; b >= start_layer; --b) {
    head_mean_product(attention, b, gradient, b, /*clamp_each_head=*/true, abar.data());
    row_times(v, abar, /*add_identity=*/true, next);
  }
  out.data = v;
  return out;
}

namespace {

void check_first_block(int first_block, int layers, const char* method) {
  if (first_block < 0 || first_block >= layers)
    throw InputError(std::string(method) + ": the first block must be in [0, " + std::to_string(layers) + "), got " +
                     std::to_string(first_block));
}

Array identity(int n) {
  Array r({n, n});
  for (int i = 0; i < n; ++i) r.data[static_cast<std::size_t>(i) * n + i] = 1.0;
  return r;
}

// R <- R + M R for an [n,n] M.
void add_product(const std::vector<double>& m, Array& r, std::vector<double>& scratch) {
  const int n = static_cast<int>(r.shape[0]);
  multiply(m.data(), r.data.data(), scratch.data(), n);
  for (std::size_t e = 0; e < r.data.size(); ++e) r.data[e] += scratch[e];
}

}  // namespace

GradSamAxis parse_grad_sam_axis(const std::string& name) {
  if (name == "columns") return GradSamAxis::Columns;
  if (name == "rows") return GradSamAxis::Rows;
  throw InputError("--grad-sam-axis must be columns (a score per key token) or rows (per query token), got '" +
                   name + "'");
}

Array grad_sam(const AttentionView& attention, const AttentionView& gradient, GradSamAxis axis) {
  check_pair(attention, gradient, "Grad-SAM");
  const int L = attention.layers, H = attention.heads, N = attention.tokens;
  Array out({N});
  for (int l = 0; l < L; ++l)
    for (int h = 0; h < H; ++h) {
      const double *a = attention.matrix(l, h), *g = gradient.matrix(l, h);
      for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j) {
          const std::size_t e = static_cast<std::size_t>(i) * N + j;
          out.data[axis == GradSamAxis::Columns ? j : i] += a[e] * std::max(0.0, g[e]);
        }
    }
  const double count = static_cast<double>(L) * H * N;
  for (double& v : out.data) v /= count;
  return out;
}

Array agcam_row(const AttentionView& scores, const AttentionView& gradient, int row) {
  check_pair(scores, gradient, "AG-CAM");
  const int L = scores.layers, H = scores.heads, N = scores.tokens;
  if (row < 0 || row >= N) throw InputError("AG-CAM: query row " + std::to_string(row) + " is out of range");
  Array out({N});
  for (int l = 0; l < L; ++l)
    for (int h = 0; h < H; ++h) {
      const double* s = scores.matrix(l, h) + static_cast<std::size_t>(row) * N;
      const double* g = gradient.matrix(l, h) + static_cast<std::size_t>(row) * N;
      for (int j = 0; j < N; ++j) out.data[j] += std::max(0.0, g[j]) / (1.0 + std::exp(-s[j]));
    }
  return out;
}

Array bi_head_relevance(const AttentionView& attention, const AttentionView& gradient, int first_block) {
  check_pair(attention, gradient, "Beyond Intuition");
  const int L = attention.layers, H = attention.heads, N = attention.tokens;
  check_first_block(first_block, L, "Beyond Intuition");
  const std::size_t nn = static_cast<std::size_t>(N) * N;
  Array r = identity(N);
  std::vector<double> weighted(nn), scratch(nn), transposed(nn), importance(static_cast<std::size_t>(H));
  for (int b = first_block; b < L; ++b) {
    double total = 0.0;
    for (int h = 0; h < H; ++h) {  // I_h = mean |A_h^T G_h|
      const double* a = attention.matrix(b, h);
      for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j)
          transposed[static_cast<std::size_t>(j) * N + i] = a[static_cast<std::size_t>(i) * N + j];
      multiply(transposed.data(), gradient.matrix(b, h), scratch.data(), N);
      double sum = 0.0;
      for (double v : scratch) sum += std::abs(v);
      importance[h] = sum / static_cast<double>(nn);
      total += importance[h];
    }
    std::fill(weighted.begin(), weighted.end(), 0.0);
    for (int h = 0; h < H; ++h) {
      // All-zero gradients (a block the target does not depend on) give no weights: the reference divides 0 by 0.
      const double w = total > 0 ? importance[h] / total : 1.0 / H;
      const double* a = attention.matrix(b, h);
      for (std::size_t e = 0; e < nn; ++e) weighted[e] += w * a[e];
    }
    add_product(weighted, r, scratch);
  }
  return r;
}

Array bi_token_relevance(const AttentionView& attention, const Array& ratios, int first_block) {
  check_finite(attention, "attention");
  const int L = attention.layers, H = attention.heads, N = attention.tokens;
  if (ratios.rank() != 2 || ratios.shape[0] != L || ratios.shape[1] != N)
    throw InputError("Beyond Intuition: token ratios must be [" + std::to_string(L) + "," + std::to_string(N) + "]");
  check_first_block(first_block, L, "Beyond Intuition (token-wise)");
  const std::size_t nn = static_cast<std::size_t>(N) * N;
  Array r = identity(N);
  std::vector<double> scaled(nn), scratch(nn);
  for (int b = first_block; b < L; ++b) {
    std::fill(scaled.begin(), scaled.end(), 0.0);
    const double* o = ratios.data.data() + static_cast<std::size_t>(b) * N;
    for (int h = 0; h < H; ++h) {
      const double* a = attention.matrix(b, h);
      for (int i = 0; i < N; ++i)
        for (int j = 0; j < N; ++j)
          scaled[static_cast<std::size_t>(i) * N + j] += a[static_cast<std::size_t>(i) * N + j] * o[j] / H;
    }
    add_product(scaled, r, scratch);
  }
  return r;
}

}  // namespace attnlens
