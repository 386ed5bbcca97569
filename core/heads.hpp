// Per-head attention maps of one query row and DINO's mass-threshold masks (spec section 7).
#pragma once

#include "api.hpp"
#include "array.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

/// [H, grid_h, grid_w]: A[layer][h][query_row][prefix + i] laid out on the patch grid (prefix columns dropped).
Array head_maps(const AttentionView& attention, int layer, int query_row, const TokenLayout& layout);

/// [H, grid_h, grid_w] of 0/1 per head map: the smallest set of largest entries whose mass is at least
/// `threshold` of the head's total (DINO visualize_attention.py; the boundary element is kept). threshold in (0,1].
Array threshold_masks(const Array& maps, double threshold);

}  // namespace attnlens
ATTNLENS_API_END
