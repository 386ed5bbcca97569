#include "core/array.hpp"

#ifdef __linux__
#include <sys/mman.h>
#endif

#include <cstdint>
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

// Fresh memory is zero-filled by the kernel on first touch, one 4 KB page fault at a time: for the 45 MB of doubles
// of a ViT-B attention stack that is 11,000 faults, which cost more than reading the file (`attention raw` spent 68 of
// its 96 ms in the kernel). With transparent huge pages in "madvise" mode (Debian's default), advising a large
// buffer before its first touch lets the kernel fault it in 2 MB at a time.
void reserve_large(std::vector<double>& data, std::size_t n) {
#ifdef __linux__
  constexpr std::size_t kHuge = std::size_t{2} << 20;
  if (n * sizeof(double) < 4 * kHuge) return;
  data.reserve(n);
  const auto begin = reinterpret_cast<std::uintptr_t>(data.data());
  const std::uintptr_t first = (begin + kHuge - 1) & ~(kHuge - 1), last = (begin + n * sizeof(double)) & ~(kHuge - 1);
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);  // a hint: may fail
#else
  (void)data;
  (void)n;
#endif
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
  reserve_large(data, static_cast<std::size_t>(n));
  data.assign(static_cast<std::size_t>(n), fill);
}

std::int64_t Array::size() const {
  std::int64_t n = 1;
  for (std::int64_t e : shape) n *= e;
  return n;
}

std::string Array::shape_string() const { return shape_text(shape); }

AttentionView AttentionView::of(const Array& a) {
  AttentionView v = of(a.data.data(), a.shape);
  if (static_cast<std::int64_t>(a.data.size()) != a.size())
    throw InputError("attention array holds " + std::to_string(a.data.size()) + " values but shape " +
                     a.shape_string() + " needs " + std::to_string(a.size()));
  return v;
}

AttentionView AttentionView::of(const double* data, const std::vector<std::int64_t>& shape) {
  const auto bad = [&]() {
    return InputError("attention must have shape [L,H,N,N] or [L,N,N], got " + shape_text(shape));
  };
  if (shape.size() != 3 && shape.size() != 4) throw bad();
  for (std::int64_t e : shape)
    if (e <= 0 || e > std::numeric_limits<int>::max()) throw bad();
  const std::int64_t n = shape[shape.size() - 1];
  if (shape[shape.size() - 2] != n) throw bad();

  AttentionView v;
  v.data = data;
  v.layers = static_cast<int>(shape[0]);
  v.heads = shape.size() == 4 ? static_cast<int>(shape[1]) : 1;
  v.tokens = static_cast<int>(n);
  return v;
}

TokenLayout TokenLayout::resolve(int tokens, int prefix, int grid_h, int grid_w) {
  if (tokens <= 0) throw InputError("attention has no tokens (N = " + std::to_string(tokens) + ")");
  if (prefix < 0 || prefix >= tokens)
    throw InputError("prefix P = " + std::to_string(prefix) +
                     " must be at least 0 and less than the N = " + std::to_string(tokens) + " tokens");
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
