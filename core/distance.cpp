#include "core/distance.hpp"

#include <cmath>

namespace attnlens {

Array mean_attention_distance(const AttentionView& attention, const DistanceOptions& options) {
  const TokenLayout layout = TokenLayout::resolve(attention.tokens, options.layout.prefix, options.layout.grid_h,
                                                  options.layout.grid_w);
  if (!(options.patch_size > 0.0 && std::isfinite(options.patch_size)))
    throw InputError("patch size must be a positive number, got " + std::to_string(options.patch_size));
  const int L = attention.layers, H = attention.heads, N = attention.tokens;
  const int P = layout.prefix, G = layout.patches(), W = layout.grid_w;
  if (G < 1) throw InputError("mean attention distance needs at least one patch token");

  // Pixel distance between every pair of patches, shared by all layers and heads.
  std::vector<double> dist(static_cast<std::size_t>(G) * G);
  for (int i = 0; i < G; ++i)
    for (int j = 0; j < G; ++j) {
      // sqrt of the squared sum, as np.linalg.norm does (std::hypot may round differently).
      const double dr = i / W - j / W, dc = i % W - j % W;
      dist[static_cast<std::size_t>(i) * G + j] = options.patch_size * std::sqrt(dr * dr + dc * dc);
    }

  Array out({L, H});
  for (int l = 0; l < L; ++l)
    for (int h = 0; h < H; ++h) {
      const double* a = attention.matrix(l, h);
      double total = 0.0;
      for (int i = 0; i < G; ++i) {
        const double* row = a + static_cast<std::size_t>(P + i) * N + P;
        const double* d = dist.data() + static_cast<std::size_t>(i) * G;
        double weighted = 0.0, mass = 0.0;
        for (int j = 0; j < G; ++j) {
          weighted += row[j] * d[j];
          mass += row[j];
        }
        if (!options.renormalize)
          total += weighted;
        else if (mass != 0.0)  // a query with no patch mass has no distance to speak of; it counts as 0
          total += weighted / mass;
      }
      out.data[static_cast<std::size_t>(l) * H + h] = total / G;
    }
  return out;
}

}  // namespace attnlens
