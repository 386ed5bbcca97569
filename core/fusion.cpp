#include "core/fusion.hpp"

#include <algorithm>

namespace attnlens {

Array fuse_heads(const AttentionView& attention, HeadFusion fusion) {
  const int L = attention.layers, H = attention.heads, N = attention.tokens;
  if (H < 1) throw InputError("head fusion needs at least one head, got " + std::to_string(H));
  const std::size_t nn = static_cast<std::size_t>(N) * N;
  Array out({L, N, N});
  for (int l = 0; l < L; ++l) {
    double* dst = out.data.data() + l * nn;
    std::copy(attention.matrix(l, 0), attention.matrix(l, 0) + nn, dst);
    for (int h = 1; h < H; ++h) {
      const double* src = attention.matrix(l, h);
      switch (fusion) {
        case HeadFusion::Mean:
          for (std::size_t e = 0; e < nn; ++e) dst[e] += src[e];
          break;
        case HeadFusion::Max:
          for (std::size_t e = 0; e < nn; ++e) dst[e] = std::max(dst[e], src[e]);
          break;
        case HeadFusion::Min:
          for (std::size_t e = 0; e < nn; ++e) dst[e] = std::min(dst[e], src[e]);
          break;
      }
    }
    // Sum then divide (not a running mean) to match the references' `mean` / `sum / H` rounding.
    if (fusion == HeadFusion::Mean && H > 1)
      for (std::size_t e = 0; e < nn; ++e) dst[e] /= H;
  }
  return out;
}

void normalize_rows(Array& stack) {
  if (stack.rank() != 3 || stack.shape[1] != stack.shape[2])
    throw InputError("normalize_rows expects a [L,N,N] stack, got " + stack.shape_string());
  const std::int64_t N = stack.shape[2];
  const std::int64_t rows = stack.shape[0] * N;
  for (std::int64_t r = 0; r < rows; ++r) {
    double* row = stack.data.data() + r * N;
    double sum = 0.0;
    for (std::int64_t j = 0; j < N; ++j) sum += row[j];
    if (sum == 0.0) continue;  // an all-zero row carries no mass to spread; dividing would make NaNs
    for (std::int64_t j = 0; j < N; ++j) row[j] /= sum;
  }
}

Array add_residual(const Array& fused, Residual residual) {
  if (fused.rank() != 3 || fused.shape[1] != fused.shape[2])
    throw InputError("add_residual expects a [L,N,N] stack, got " + fused.shape_string());
  Array out = fused;
  if (residual == Residual::None) return out;
  const std::int64_t N = fused.shape[2];
  for (std::int64_t l = 0; l < fused.shape[0]; ++l)
    for (std::int64_t i = 0; i < N; ++i) out.data[(l * N + i) * N + i] += 1.0;
  normalize_rows(out);
  return out;
}

}  // namespace attnlens
