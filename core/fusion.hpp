// Head fusion and the residual (identity) term that every graph method applies per layer (spec sections 1, 3).
#pragma once

#include "api.hpp"
#include "array.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

enum class HeadFusion { Mean, Max, Min };
enum class Residual {
  Half,  ///< (A + I) with rows re-normalised to sum to 1; equals 0.5 A + 0.5 I for row-stochastic A
  None   ///< matrices used as given
};

/// Elementwise mean / max / min over heads: [L,H,N,N] -> [L,N,N]. A fused view (heads == 1) is copied.
Array fuse_heads(const AttentionView& attention, HeadFusion fusion);

/// Applies `residual` to each [N,N] matrix of a fused stack [L,N,N] (a copy for Residual::None).
Array add_residual(const Array& fused, Residual residual);

/// Divides every row of each [N,N] matrix of a [L,N,N] stack by its sum (rows summing to 0 stay 0).
void normalize_rows(Array& stack);

}  // namespace attnlens
ATTNLENS_API_END
