// Mean attention distance per layer and head (Dosovitskiy et al. Fig. 7; probing-vits; spec section 6).
#pragma once

#include "api.hpp"
#include "array.hpp"

ATTNLENS_API_BEGIN
namespace attnlens {

struct DistanceOptions {
  TokenLayout layout;        ///< prefix rows/columns are dropped; patches on layout's grid
  double patch_size = 16.0;  ///< pixels per patch side, so distances are in input pixels
  /// false (reference): prefix columns dropped without re-normalising, so mass on CLS counts as distance 0.
  /// true: each query row's patch part is re-normalised to sum to 1 first.
  bool renormalize = false;
};

/// [L,H]: mean over query patches i of sum_j A[i,j] * patch_size * ||pos(i) - pos(j)||.
Array mean_attention_distance(const AttentionView& attention, const DistanceOptions& options);

}  // namespace attnlens
ATTNLENS_API_END
