#include "core/array.hpp"

#include <limits>
#include <string>

namespace attnlens {

namespace {

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

}  // namespace

Array::Array(std::vector<std::int64_t> shape_in, double fill) : shape(std::move(shape_in)) {
  // Checked product: a corrupt shape must fail here rather than as a huge or wrapped allocation.
  std::int64_t n = 1;
  for (std::int64_t e : shape) {
    if (e < 0) throw InputError("array shape " + shape_text(shape) + " has a negative extent");
    if (e != 0 && n > std::numeric_limits<std::int64_t>::max() / e)
      throw InputError("array shape " + shape_text(shape) + " is too large");
    n *= e;
  }
  data.assign(static_cast<std::size_t>(n), fill);
}

std::int64_t Array::size() const {
  std::int64_t n = 1;
  for (std::int64_t e : shape) n *= e;
  return n;
}

std::string Array::shape_string() const { return shape_text(shape); }

AttentionView AttentionView::of(const Array& a) {
  const auto bad = [&]() {
    return InputError("attention must have shape [L,H,N,N] or [L,N,N], got " + a.shape_string());
  };
  if (a.rank() != 3 && a.rank() != 4) throw bad();
  for (std::int64_t e : a.shape)
    if (e <= 0 || e > std::numeric_limits<int>::max()) throw bad();
  const std::int64_t n = a.shape[a.shape.size() - 1];
  if (a.shape[a.shape.size() - 2] != n) throw bad();
  if (static_cast<std::int64_t>(a.data.size()) != a.size())
    throw InputError("attention array holds " + std::to_string(a.data.size()) + " values but shape " +
                     a.shape_string() + " needs " + std::to_string(a.size()));

  AttentionView v;
  v.data = a.data.data();
  v.layers = static_cast<int>(a.shape[0]);
  v.heads = a.rank() == 4 ? static_cast<int>(a.shape[1]) : 1;
  v.tokens = static_cast<int>(n);
  return v;
}

TokenLayout TokenLayout::resolve(int tokens, int prefix, int grid_h, int grid_w) {
  if (tokens <= 0) throw InputError("attention has no tokens (N = " + std::to_string(tokens) + ")");
  if (prefix < 0 || prefix >= tokens)
    throw InputError("prefix P = " + std::to_string(prefix) + " must be at least 0 and less than the N = " +
                     std::to_string(tokens) + " tokens");
  const int patches = tokens - prefix;

  TokenLayout layout;
  layout.prefix = prefix;
  if (grid_h == 0 && grid_w == 0) {
    int side = 0;
    while (static_cast<std::int64_t>(side + 1) * (side + 1) <= patches) ++side;
    if (side * side != patches)
      throw InputError("N-P = " + std::to_string(patches) +
                       " patches do not form a square grid; pass --grid HxW (N = " + std::to_string(tokens) +
                       " tokens, P = " + std::to_string(prefix) + " prefix tokens)");
    layout.grid_h = layout.grid_w = side;
    return layout;
  }
  const std::string grid = std::to_string(grid_h) + "x" + std::to_string(grid_w);
  if (grid_h <= 0 || grid_w <= 0) throw InputError("grid " + grid + " must have positive height and width");
  if (static_cast<std::int64_t>(grid_h) * grid_w != patches)
    throw InputError("grid " + grid + " has " + std::to_string(static_cast<std::int64_t>(grid_h) * grid_w) +
                     " patches but N-P = " + std::to_string(patches) + " (N = " + std::to_string(tokens) +
                     " tokens, P = " + std::to_string(prefix) + " prefix tokens)");
  layout.grid_h = grid_h;
  layout.grid_w = grid_w;
  return layout;
}

}  // namespace attnlens
