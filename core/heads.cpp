#include "core/heads.hpp"

#include <algorithm>
#include <numeric>

namespace attnlens {

Array head_maps(const AttentionView& attention, int layer, int query_row, const TokenLayout& layout) {
  const TokenLayout grid = TokenLayout::resolve(attention.tokens, layout.prefix, layout.grid_h, layout.grid_w);
  if (layer < 0 || layer >= attention.layers)
    throw InputError("layer must be in [0, " + std::to_string(attention.layers) + "), got " + std::to_string(layer));
  if (query_row < 0 || query_row >= attention.tokens)
    throw InputError("query row must be in [0, " + std::to_string(attention.tokens) + "), got " +
                     std::to_string(query_row));
  const int H = attention.heads, G = grid.patches();
  Array out({H, grid.grid_h, grid.grid_w});
  for (int h = 0; h < H; ++h) {
    const double* row = attention.matrix(layer, h) + static_cast<std::size_t>(query_row) * attention.tokens;
    std::copy(row + grid.prefix, row + grid.prefix + G, out.data.begin() + static_cast<std::size_t>(h) * G);
  }
  return out;
}

Array threshold_masks(const Array& maps, double threshold) {
  if (!(threshold > 0.0 && threshold <= 1.0))
    throw InputError("threshold must be in (0, 1], got " + std::to_string(threshold));
  if (maps.rank() != 3) throw InputError("threshold masks expect [H, grid_h, grid_w] maps, got " + maps.shape_string());
  Array out(maps.shape);
  const std::size_t G = static_cast<std::size_t>(maps.shape[1] * maps.shape[2]);
  std::vector<std::size_t> order(G);
  for (std::int64_t h = 0; h < maps.shape[0]; ++h) {
    const double* v = maps.data.data() + h * G;
    double* mask = out.data.data() + h * G;
    // DINO uses torch.sort (tie order unspecified); a stable sort makes ties deterministic: among equal values the
    // higher index counts as larger, so it is the one kept when the cut falls inside a run of ties.
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [v](std::size_t a, std::size_t b) { return v[a] < v[b]; });
    double total = 0.0;  // summed in sorted order, like torch.sum over the sorted values
    for (std::size_t k : order) total += v[k];
    if (total == 0.0) continue;  // no mass to cover: nothing is kept
    // DINO's rule, literally: keep where the inclusive cumulative share of the ascending values is > 1 - threshold.
    const double cut = 1.0 - threshold;
    double cumulative = 0.0;
    for (std::size_t k : order) {
      cumulative += v[k] / total;
      mask[k] = cumulative > cut ? 1.0 : 0.0;
    }
  }
  return out;
}

}  // namespace attnlens
