// Plain arrays exchanged by the LibTorch-free layers (core, io, cli).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "api.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// Bad user input (file contents, shapes, option values). The CLI turns it into one line on stderr and exit code 2.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Names of an array's dimensions, e.g. {"layer","query","key"}: CSV index columns, JSON "dims".
using DimNames = std::vector<std::string>;

/// Owning dense array of doubles in C (row-major) order.
struct Array {
  std::vector<std::int64_t> shape;
  std::vector<double> data;

  Array() = default;
  /// Allocates prod(shape) elements set to `fill`. Throws InputError on a negative extent.
  explicit Array(std::vector<std::int64_t> shape, double fill = 0.0);

  /// Number of elements (product of the extents; 1 for rank 0).
  std::int64_t size() const;
  int rank() const { return static_cast<int>(shape.size()); }
  /// "[2,3,4]" for messages.
  std::string shape_string() const;
};

/// Non-owning view of an attention stack A[layer][head][query][key] in C order (rows = queries, post-softmax).
/// A head-fused stack [L,N,N] is viewed with heads == 1.
struct AttentionView {
  const double* data = nullptr;
  int layers = 0;
  int heads = 0;
  int tokens = 0;

  /// Pointer to the tokens x tokens matrix of (layer, head).
  const double* matrix(int layer, int head) const {
    return data + (static_cast<std::size_t>(layer) * heads + head) * tokens * tokens;
  }
  /// Views a rank-4 [L,H,N,N] or rank-3 [L,N,N] array. Throws InputError for other ranks or non-square matrices.
  static AttentionView of(const Array& a);
  /// The same checks for C-order values owned elsewhere (e.g. a NumPy buffer of prod(shape) doubles): no copy.
  static AttentionView of(const double* data, const std::vector<std::int64_t>& shape);
};

/// Token layout shared by every method: `prefix` tokens (CLS, distillation) then a grid_h x grid_w patch grid.
struct TokenLayout {
  int prefix = 1;
  int grid_h = 0;
  int grid_w = 0;

  int patches() const { return grid_h * grid_w; }
  /// Checks tokens == prefix + grid_h*grid_w; with grid 0x0 infers a square grid from tokens - prefix.
  /// Throws InputError when the patches do not form the grid.
  static TokenLayout resolve(int tokens, int prefix, int grid_h = 0, int grid_w = 0);
};

}  // namespace attnlens
ATTNLENS_API_END
